//! Vendor egress limits: bytes from clients to a destination, metered per
//! (rule, source group, destination group) across every connection, in
//! fixed windows aligned to the epoch. When a meter passes its limit, new
//! connections under it are refused and open tunnels under it are told to
//! close (they watch [`Meter::tripped`]).
//!
//! With `--quota-redis`, meters are pooled across gateway replicas
//! ([`pool`]): the count and the decision are the whole fleet's.

pub mod pool;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// What a meter counts under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MeterKey {
    /// The rule carrying the limit.
    pub rule: String,
    /// The client's group the rule matched.
    pub from: String,
    /// The destination's group the rule matched.
    pub to: String,
}

/// One limit's counter.
#[derive(Debug)]
pub struct Meter {
    limit: AtomicU64,
    window_ms: AtomicU64,
    /// (window number, bytes in that window)
    used: Mutex<(u64, u64)>,
    tripped: watch::Sender<u64>,
    /// The shared side, with `--quota-redis`.
    pooled: Option<pool::Pooled>,
}

impl Meter {
    fn new(limit: u64, window_ms: u64, pooled: Option<pool::Pooled>) -> Self {
        Meter {
            limit: AtomicU64::new(limit),
            window_ms: AtomicU64::new(window_ms.max(1)),
            used: Mutex::new((0, 0)),
            tripped: watch::Sender::new(0),
            pooled,
        }
    }

    /// Wake every tunnel watching this meter: the limit is spent.
    fn trip(&self, now_ms: u64) {
        self.tripped.send_replace(self.window(now_ms) + 1);
    }

    /// Whether the meter is shared with other replicas.
    pub fn is_pooled(&self) -> bool {
        self.pooled.is_some()
    }

    /// Before `bytes` are sent on a tunnel: count them and say whether they
    /// may go. A pooled meter first waits for Redis to take this replica's
    /// bytes when it holds a batch's worth (once per batch, not per chunk).
    pub async fn admit(&self, bytes: u64) -> bool {
        if let Some(p) = &self.pooled {
            let batch = p.pool.batch();
            while p.pool.is_up() && p.pending.load(Ordering::Relaxed) + bytes > batch {
                let handed = p.handed_over.notified();
                p.pool.wake();
                if tokio::time::timeout(std::time::Duration::from_secs(2), handed)
                    .await
                    .is_err()
                {
                    break;
                }
                if p.pending.load(Ordering::Relaxed) == 0 {
                    break;
                }
            }
        }
        self.add(bytes)
    }

    fn window(&self, now_ms: u64) -> u64 {
        now_ms / self.window_ms.load(Ordering::Relaxed).max(1)
    }

    /// Count `bytes` sent now; returns whether the meter is still within
    /// its limit. Passing the limit wakes every tunnel watching it.
    pub fn add(&self, bytes: u64) -> bool {
        let now = now_ms();
        if let Some(p) = &self.pooled {
            p.touched.store(now, Ordering::Relaxed);
            let pending = p.pending.fetch_add(bytes, Ordering::Relaxed) + bytes;
            if p.pool.is_up() {
                if pending >= p.pool.batch() {
                    p.pool.wake();
                }
                let seen = p.estimate.load(Ordering::Relaxed).saturating_add(pending);
                if seen > self.limit.load(Ordering::Relaxed) {
                    self.trip(now);
                    return false;
                }
                return true;
            }
            if p.fail == pool::FailMode::Closed {
                self.trip(now);
                return false;
            }
            // Open: this replica's own count against the whole limit.
            p.pool.unshared_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        self.add_local(bytes, now)
    }

    fn add_local(&self, bytes: u64, now: u64) -> bool {
        let window = self.window(now);
        let limit = self.limit.load(Ordering::Relaxed);
        let total = {
            let Ok(mut used) = self.used.lock() else {
                return false;
            };
            if used.0 != window {
                *used = (window, 0);
            }
            used.1 = used.1.saturating_add(bytes);
            used.1
        };
        if total > limit {
            self.trip(now);
            return false;
        }
        true
    }

    /// Whether the current window is already past the limit (or, pooled,
    /// the fleet's estimate is; or Redis is down and the limit fails
    /// closed).
    pub fn exceeded(&self) -> bool {
        if let Some(p) = &self.pooled {
            p.touched.store(now_ms(), Ordering::Relaxed);
            if p.pool.is_up() {
                return self.used() > self.limit.load(Ordering::Relaxed);
            }
            if p.fail == pool::FailMode::Closed {
                return true;
            }
        }
        let window = self.window(now_ms());
        self.used
            .lock()
            .map(|u| u.0 == window && u.1 > self.limit.load(Ordering::Relaxed))
            .unwrap_or(true)
    }

    /// Bytes counted in the current window (pooled: by the whole fleet,
    /// as last estimated, plus what this replica has not handed over).
    pub fn used(&self) -> u64 {
        if let Some(p) = &self.pooled
            && p.pool.is_up()
        {
            return p
                .estimate
                .load(Ordering::Relaxed)
                .saturating_add(p.pending.load(Ordering::Relaxed));
        }
        let window = self.window(now_ms());
        self.used
            .lock()
            .map(|u| if u.0 == window { u.1 } else { 0 })
            .unwrap_or(0)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// A receiver that changes when the meter passes its limit.
    pub fn tripped(&self) -> watch::Receiver<u64> {
        self.tripped.subscribe()
    }
}

/// Every meter, by key. Meters survive policy reloads (the limit is
/// updated from the new rule), so a reload does not reset a vendor's count.
#[derive(Debug, Default)]
pub struct Meters {
    map: Mutex<HashMap<MeterKey, Arc<Meter>>>,
    pool: Option<Arc<pool::Pool>>,
}

impl Meters {
    /// Meters, pooled through `pool` when given.
    pub fn new(pool: Option<Arc<pool::Pool>>) -> Meters {
        Meters {
            map: Mutex::default(),
            pool,
        }
    }

    /// The pool, with `--quota-redis`.
    pub fn pool(&self) -> Option<&Arc<pool::Pool>> {
        self.pool.as_ref()
    }

    /// The meter for `key`, created or updated with `limit` per
    /// `window_ms`; `exfiltration` when the rule sends to a vendor the
    /// policy says receives personal data (its pooled limit fails closed
    /// by default).
    pub fn meter(
        &self,
        key: &MeterKey,
        limit: u64,
        window_ms: u64,
        exfiltration: bool,
    ) -> Option<Arc<Meter>> {
        let mut map = self.map.lock().ok()?;
        let meter = map.entry(key.clone()).or_insert_with(|| {
            let pooled = self.pool.as_ref().map(|pool| pool::Pooled {
                pool: Arc::clone(pool),
                key: format!(
                    "cordon:quota:{window_ms}:{}:{}:{}",
                    key.rule, key.from, key.to
                ),
                fail: pool.fail_mode(exfiltration),
                pending: AtomicU64::new(0),
                estimate: AtomicU64::new(0),
                touched: AtomicU64::new(now_ms()),
                handed_over: tokio::sync::Notify::new(),
            });
            // A new pooled meter learns the fleet's count at once.
            if let Some(pool) = &self.pool {
                pool.wake();
            }
            Arc::new(Meter::new(limit, window_ms, pooled))
        });
        meter.limit.store(limit, Ordering::Relaxed);
        meter.window_ms.store(window_ms.max(1), Ordering::Relaxed);
        Some(meter.clone())
    }

    /// The pooled meters.
    pub fn pooled(&self) -> Vec<Arc<Meter>> {
        self.map
            .lock()
            .map(|m| m.values().filter(|v| v.is_pooled()).cloned().collect())
            .unwrap_or_default()
    }

    /// (key, used, limit) for every meter, for metrics.
    pub fn snapshot(&self) -> Vec<(MeterKey, u64, u64)> {
        let Ok(map) = self.map.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = map
            .iter()
            .map(|(k, m)| (k.clone(), m.used(), m.limit()))
            .collect();
        out.sort_by(|a, b| (&a.0.rule, &a.0.from, &a.0.to).cmp(&(&b.0.rule, &b.0.from, &b.0.to)));
        out
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
