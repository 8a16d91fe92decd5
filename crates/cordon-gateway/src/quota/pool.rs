//! Egress limits shared by gateway replicas through Redis.
//!
//! Each replica counts the bytes it lets through locally and hands them to
//! Redis in batches: a tunnel waits for Redis only when its replica holds
//! a batch's worth of bytes Redis has not seen, so the hot path does not
//! wait on every chunk, and the replicas together let through at most the
//! limit plus one batch each. Redis keeps one counter per limit and
//! window; a replica judges with the two-window estimate (this window's
//! count plus the previous one's weighted by how much of it still lies
//! within one window of now), so the edge of a fixed window is no
//! doubling of the limit. One Lua script adds and reads atomically.
//!
//! When Redis cannot be reached, a limit fails as configured: closed
//! refuses what it meters, open meters locally, counts what went unshared,
//! and says so in the log and the metrics; bytes held during an outage are
//! handed over when Redis is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Add this replica's bytes to the current window's counter and read the
/// previous window's: `{current, previous}`.
const SCRIPT: &str = r"
local current = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
return {current, previous}
";

/// How long one Redis call may take before Redis counts as down.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// How often meters in use are brought up to date without a full batch.
const REFRESH: Duration = Duration::from_millis(250);

/// What a pooled limit does while Redis cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    /// Keep metering locally, against the whole limit, and say so.
    Open,
    /// Refuse what the limit meters.
    Closed,
}

/// Where shared limits are kept, and how.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// `redis://HOST:PORT[/DB]`.
    pub url: String,
    /// The failure mode of every limit; `None`: closed for limits on
    /// rules that send to a vendor the policy says receives personal data
    /// (exfiltration controls), open for the others.
    pub fail: Option<FailMode>,
    /// Bytes a replica lets through before Redis must have seen them.
    pub batch: u64,
}

/// The connection to Redis and its state, shared by every pooled meter.
pub struct Pool {
    config: PoolConfig,
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    up: AtomicBool,
    wake: Notify,
    /// Redis calls that failed.
    pub errors: AtomicU64,
    /// Bytes let through unshared while Redis was down (fail open).
    pub unshared_bytes: AtomicU64,
    /// Whether the outage was logged.
    said_down: AtomicBool,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("up", &self.is_up())
            .field("batch", &self.config.batch)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool for `config`; nothing is connected yet.
    ///
    /// # Errors
    /// The URL is not a Redis URL.
    pub fn new(config: PoolConfig) -> Result<Pool, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("--quota-redis `{}`: {e}", config.url))?;
        Ok(Pool {
            config,
            client,
            connection: tokio::sync::Mutex::new(None),
            // Down until Redis first answers: a limit failing closed
            // refuses until the fleet's count can be known.
            up: AtomicBool::new(false),
            wake: Notify::new(),
            errors: AtomicU64::new(0),
            unshared_bytes: AtomicU64::new(0),
            said_down: AtomicBool::new(false),
        })
    }

    /// Whether the last call to Redis succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Bytes a replica lets through between hand-overs.
    pub fn batch(&self) -> u64 {
        self.config.batch.max(1)
    }

    /// The failure mode of a limit; `exfiltration` when the rule sends to
    /// a vendor the policy says receives personal data.
    pub fn fail_mode(&self, exfiltration: bool) -> FailMode {
        self.config.fail.unwrap_or(if exfiltration {
            FailMode::Closed
        } else {
            FailMode::Open
        })
    }

    /// Ask for a hand-over now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn set_up(&self, up: bool, error: Option<&str>) {
        let was = self.up.swap(up, Ordering::Relaxed);
        match (was, up) {
            (true, false) | (false, false)
                if error.is_some() && (was || !self.said_down.swap(true, Ordering::Relaxed)) =>
            {
                tracing::error!(
                    error = error.unwrap_or("?"),
                    "the shared egress-limit store (Redis) is unreachable: limits failing closed refuse, limits failing open meter this replica only"
                )
            }
            (false, true) => {
                self.said_down.store(false, Ordering::Relaxed);
                tracing::info!("the shared egress-limit store (Redis) answers");
            }
            _ => {}
        }
    }

    /// Run `call` on the connection (made first if there is none); a
    /// failure or a silence of a second drops the connection.
    async fn call<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, String> {
        let mut guard = self.connection.lock().await;
        if guard.is_none() {
            let c =
                tokio::time::timeout(CALL_TIMEOUT, self.client.get_multiplexed_async_connection())
                    .await
                    .map_err(|_| "no connection within 1 s".to_string())?
                    .map_err(|e| e.to_string())?;
            *guard = Some(c);
        }
        let Some(connection) = guard.as_mut() else {
            return Err("no connection".to_string());
        };
        let outcome =
            tokio::time::timeout(CALL_TIMEOUT, command.query_async::<T>(connection)).await;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                *guard = None;
                Err(e.to_string())
            }
            Err(_) => {
                *guard = None;
                Err("no answer within 1 s".to_string())
            }
        }
    }

    /// Whether Redis answers; the pool's state follows.
    pub async fn ping(&self) -> bool {
        let outcome = self.call::<String>(redis::cmd("PING")).await;
        match outcome {
            Ok(_) => {
                self.set_up(true, None);
                true
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.set_up(false, Some(&e));
                false
            }
        }
    }

    /// Add `bytes` to `key`'s counter for `window` and read the previous
    /// window's.
    async fn exchange(
        &self,
        key: &str,
        window: u64,
        window_ms: u64,
        bytes: u64,
    ) -> Result<(u64, u64), String> {
        let mut command = redis::cmd("EVAL");
        command
            .arg(SCRIPT)
            .arg(2)
            .arg(format!("{key}:{window}"))
            .arg(format!("{key}:{}", window.saturating_sub(1)))
            .arg(bytes)
            .arg(window_ms.saturating_mul(2));
        self.call::<(u64, u64)>(command).await
    }
}

/// A meter's shared side.
#[derive(Debug)]
pub struct Pooled {
    pub(super) pool: Arc<Pool>,
    /// The Redis key of the limit (without the window).
    pub(super) key: String,
    pub(super) fail: FailMode,
    /// Bytes let through here that Redis has not seen.
    pub(super) pending: AtomicU64,
    /// The estimate Redis gave last (all replicas, this replica's handed
    /// over bytes included).
    pub(super) estimate: AtomicU64,
    /// When the meter was last used (ms), so idle meters are not polled.
    pub(super) touched: AtomicU64,
    /// Woken after every hand-over attempt.
    pub(super) handed_over: Notify,
}

impl Pooled {
    /// Hand this meter's pending bytes to Redis and take the new estimate.
    /// Returns the estimate, or `None` when Redis is down.
    pub(super) async fn hand_over(&self, window_ms: u64, now_ms: u64) -> Option<u64> {
        let take = self.pending.load(Ordering::Relaxed);
        let window_ms = window_ms.max(1);
        let window = now_ms / window_ms;
        let outcome = self.pool.exchange(&self.key, window, window_ms, take).await;
        let result = match outcome {
            Ok((current, previous)) => {
                self.pending.fetch_sub(take, Ordering::Relaxed);
                let elapsed = now_ms % window_ms;
                // The previous window's share still within one window of now.
                let weight = (window_ms - elapsed) as f64 / window_ms as f64;
                let estimate = current.saturating_add((previous as f64 * weight) as u64);
                self.estimate.store(estimate, Ordering::Relaxed);
                self.pool.set_up(true, None);
                Some(estimate)
            }
            Err(e) => {
                self.pool.errors.fetch_add(1, Ordering::Relaxed);
                self.pool.set_up(false, Some(&e));
                None
            }
        };
        self.handed_over.notify_waiters();
        result
    }
}

/// Keep every pooled meter in use handed over: at once when one holds a
/// batch, and every 250 ms otherwise (so a replica learns what the others
/// sent). Runs until the gateway stops.
pub async fn hand_over_loop(pool: Arc<Pool>, meters: Arc<super::Meters>) {
    pool.ping().await;
    loop {
        tokio::select! {
            () = pool.wake.notified() => {}
            () = tokio::time::sleep(REFRESH) => {}
        }
        let now = super::now_ms();
        let mut asked = false;
        for meter in meters.pooled() {
            let Some(p) = &meter.pooled else { continue };
            let window_ms = meter.window_ms.load(Ordering::Relaxed);
            let recent = now.saturating_sub(p.touched.load(Ordering::Relaxed)) < 5_000;
            if p.pending.load(Ordering::Relaxed) == 0 && !recent {
                continue;
            }
            asked = true;
            if let Some(estimate) = p.hand_over(window_ms, now).await
                && estimate > meter.limit()
            {
                meter.trip(now);
            }
        }
        // Nothing in use: still keep the store's state known.
        if !asked {
            pool.ping().await;
        }
    }
}
