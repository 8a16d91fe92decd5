//! What every listener shares once a client is accepted: its permit, its
//! identity, dialling the checked address, relaying, and the records.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use cordon_flow::sources::cordon::gateway::GatewayEvent;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::Shared;
use crate::decide::{Outcome, judge_address};
use crate::identity::Identity;
use crate::record::ConnRecord;
use crate::target::Target;
use crate::tunnel::{ChunkSource, Counters, Inspect, SeenSni, Stop, relay};

/// Connections open per client address.
pub type ClientCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// A client's place among the connection limits, released on drop.
pub struct ConnPermit {
    _total: OwnedSemaphorePermit,
    client: IpAddr,
    counts: ClientCounts,
}

impl ConnPermit {
    /// Take a place for `client`, or `None` when a limit is reached.
    pub fn take(
        total: &Arc<tokio::sync::Semaphore>,
        counts: &ClientCounts,
        client: IpAddr,
        per_client: usize,
    ) -> Option<ConnPermit> {
        let permit = total.clone().try_acquire_owned().ok()?;
        let mut map = counts.lock().ok()?;
        let n = map.entry(client).or_insert(0);
        if *n >= per_client {
            return None;
        }
        *n += 1;
        Some(ConnPermit {
            _total: permit,
            client,
            counts: counts.clone(),
        })
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Ok(mut map) = self.counts.lock()
            && let Some(n) = map.get_mut(&self.client)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.client);
            }
        }
    }
}

/// One accepted client connection.
pub struct ClientConn {
    /// Gateway state.
    pub shared: Arc<Shared>,
    /// The client's address.
    pub client: SocketAddr,
    /// Its identity from the address or its certificate.
    pub identity: Identity,
    /// Its place among the limits (held by tunnels too).
    pub permit: ConnPermit,
    /// The upstream HTTP connection kept alive between this client's
    /// requests: (address, host, connection).
    pub http_upstream: Mutex<Option<(SocketAddr, String, crate::body::Upstream)>>,
    /// Whether a task watches the kept upstream for reloads that revoke it.
    pub upstream_watched: std::sync::atomic::AtomicBool,
    /// Dropped with the connection: what watches it stops.
    pub closed: tokio::sync::watch::Sender<()>,
}

/// Watch the upstream kept alive for `conn`: when a reload (a policy or a
/// response) no longer allows the address and host it goes to, drop it,
/// which closes it. One task per client connection, ending with it.
pub fn watch_kept_upstream(conn: &Arc<ClientConn>) {
    if conn
        .upstream_watched
        .swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        return;
    }
    let weak = Arc::downgrade(conn);
    let mut generation = conn.shared.generation.subscribe();
    let mut closed = conn.closed.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = generation.changed() => if r.is_err() { return },
                _ = closed.changed() => return,
            }
            let Some(conn) = weak.upgrade() else { return };
            let Ok(mut slot) = conn.http_upstream.lock() else {
                return;
            };
            let Some((addr, host, _)) = slot.as_ref() else {
                continue;
            };
            let Ok(target) =
                crate::target::parse_authority(&format!("{host}:{}", addr.port()), None)
            else {
                *slot = None;
                continue;
            };
            let shared = conn.shared.clone();
            let now = judge_address(
                &shared,
                &shared.policy(),
                &conn.identity,
                &target,
                addr.ip(),
            );
            if !now.verdict.passes() {
                tracing::info!(upstream = %addr, host = %host, reason = now.reason, "closed a kept-alive upstream the reload revokes");
                *slot = None;
            }
        }
    });
}

/// Log the decision for `rec` and count it.
pub async fn log_decision(shared: &Shared, rec: &ConnRecord) {
    let record = rec.record(GatewayEvent::Decision);
    shared
        .metrics
        .decision(record.verdict, record.rule.as_deref(), &record.reason);
    shared.log.write(&record).await;
}

/// Log both records of a connection refused before anything was relayed.
pub async fn log_refusal(shared: &Shared, rec: &ConnRecord) {
    log_decision(shared, rec).await;
    log_close(shared, rec).await;
}

/// Log the close record for `rec` and count its bytes.
pub async fn log_close(shared: &Shared, rec: &ConnRecord) {
    let vendor = rec.outcome.as_ref().map_or("other", |o| o.vendor.as_str());
    shared
        .metrics
        .bytes(vendor, "out", rec.bytes_out.load(Ordering::Relaxed));
    shared
        .metrics
        .bytes(vendor, "in", rec.bytes_in.load(Ordering::Relaxed));
    shared.log.write(&rec.record(GatewayEvent::Close)).await;
}

/// Connect to one of the checked addresses. On failure the outcome is
/// changed to say why (502 refused or unreachable, 504 timed out).
pub async fn dial(shared: &Shared, rec: &mut ConnRecord, target: &Target) -> Option<TcpStream> {
    let outcome = rec.outcome.as_mut()?;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + shared.config.limits.connect_timeout;
    let mut last_error = String::new();
    let mut timed_out = false;
    for ip in outcome.addrs.clone() {
        let addr = SocketAddr::new(ip, target.port);
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                rec.upstream = Some(addr);
                rec.connect_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                return Some(stream);
            }
            Ok(Err(e)) => last_error = format!("{addr}: {e}"),
            Err(_) => {
                last_error = format!("{addr}: no answer in time");
                timed_out = true;
                break;
            }
        }
    }
    rec.connect_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    outcome.status = if timed_out { 504 } else { 502 };
    outcome.reason = "connect";
    outcome.detail = format!("cannot connect to {target}: {last_error}");
    None
}

/// Resolves when the tunnel for `rec` must end: a reload that no longer
/// allows it, its egress limit tripped elsewhere, or the end of the
/// shutdown drain.
pub async fn stop_signal(
    shared: Arc<Shared>,
    identity: Identity,
    target: Target,
    outcome: Outcome,
    ip: IpAddr,
) -> Stop {
    let mut generation = shared.generation.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut tripped = outcome
        .meter
        .as_ref()
        .filter(|_| !outcome.meter_audit)
        .map(|m| m.tripped());
    let drain = shared.config.limits.drain;
    loop {
        tokio::select! {
            Ok(()) = generation.changed() => {
                let policy = shared.policy();
                let now = judge_address(&shared, &policy, &identity, &target, ip);
                if now.reason == "response" {
                    return Stop::Response(now.detail);
                }
                if !now.verdict.passes() {
                    let rule = now.rule.map(|r| format!(" (rule `{r}`)")).unwrap_or_default();
                    return Stop::Revoked(format!("the reloaded policy denies this tunnel: {}{rule}", now.reason));
                }
            }
            Ok(()) = async {
                match &mut tripped {
                    Some(t) => t.changed().await,
                    None => std::future::pending().await,
                }
            } => return Stop::Quota,
            Ok(()) = shutdown.changed() => {
                tokio::time::sleep(drain).await;
                return Stop::Shutdown;
            }
            else => std::future::pending::<()>().await,
        }
    }
}

/// Relay an allowed, dialled connection and write its close record.
#[expect(clippy::too_many_arguments, reason = "the parts of one tunnel")]
pub async fn run_tunnel<CS, CW>(
    conn: Arc<ClientConn>,
    mut rec: ConnRecord,
    target: Target,
    client_read: CS,
    client_write: CW,
    upstream: TcpStream,
    prefix: BytesMut,
    inspect: Option<Inspect>,
) where
    CS: ChunkSource,
    CW: AsyncWrite + Unpin,
{
    let shared = conn.shared.clone();
    let Some(outcome) = rec.outcome.clone() else {
        return;
    };
    let ip = rec
        .upstream
        .map_or_else(|| outcome.addrs.first().copied(), |a| Some(a.ip()));
    let Some(ip) = ip else { return };
    shared.metrics.active.fetch_add(1, Ordering::Relaxed);
    let counters = Counters {
        out: Arc::new(AtomicU64::new(0)),
        inbound: Arc::new(AtomicU64::new(0)),
        last: AtomicU64::new(0),
        meter: outcome.meter.clone().map(|m| (m, outcome.meter_audit)),
    };
    let seen: SeenSni = Arc::default();
    let (up_read, up_write) = upstream.into_split();
    let stop = stop_signal(shared.clone(), rec.identity.clone(), target, outcome, ip);
    let end = relay(
        client_read,
        client_write,
        up_read,
        up_write,
        prefix,
        &counters,
        inspect.map(|i| (i, seen.clone())),
        shared.config.limits.idle_timeout,
        stop,
    )
    .await;
    if let Ok(s) = seen.lock()
        && s.is_some()
    {
        rec.sni.clone_from(&s);
    }
    rec.bytes_out
        .store(counters.out.load(Ordering::Relaxed), Ordering::Relaxed);
    rec.bytes_in
        .store(counters.inbound.load(Ordering::Relaxed), Ordering::Relaxed);
    match end {
        None => {}
        Some(Stop::Idle) => rec.ended("idle", "no bytes either way for the idle timeout".into()),
        Some(Stop::Quota) => rec.ended("quota", "the rule's egress limit was spent".into()),
        Some(Stop::Revoked(why)) => rec.ended("policy-reload", why),
        Some(Stop::Response(why)) => {
            shared
                .metrics
                .decision(cordon_core::Verdict::Deny, None, "response");
            rec.ended("response", why);
        }
        Some(Stop::Fronting(why)) => {
            shared
                .metrics
                .decision(cordon_core::Verdict::Deny, None, "domain-fronting");
            rec.ended("domain-fronting", why);
        }
        Some(Stop::Shutdown) => rec.ended("shutdown", "the gateway shut down".into()),
    }
    shared.metrics.active.fetch_sub(1, Ordering::Relaxed);
    log_close(&shared, &rec).await;
    drop(conn);
}
