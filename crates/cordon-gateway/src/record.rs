//! The decision log: two JSON lines per connection ([`GatewayRecord`]),
//! written in order by one task. Writers wait when the log falls behind
//! rather than drop records: a security log that loses lines under load is
//! worse than a gateway that slows down.

use cordon_core::Verdict;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use cordon_flow::sources::cordon::gateway::{GatewayEvent, GatewayRecord};
use cordon_flow::{Flow, FlowSource};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::decide::Outcome;
use crate::identity::Identity;
use crate::quota::now_ms;

/// Where records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// Appended to a file.
    File(PathBuf),
    /// Standard output.
    Stdout,
}

/// The sending side of the log.
#[derive(Clone, Debug)]
pub struct RecordLog {
    tx: Option<mpsc::Sender<String>>,
    /// Records handed to the writer, and records it has written: equal
    /// when everything sent is on disk.
    sent: std::sync::Arc<AtomicU64>,
    written: std::sync::Arc<AtomicU64>,
}

impl RecordLog {
    /// A log that writes nowhere.
    pub fn disabled() -> RecordLog {
        RecordLog {
            tx: None,
            sent: std::sync::Arc::default(),
            written: std::sync::Arc::default(),
        }
    }

    /// Wait until every record sent so far is written (or `within` ends):
    /// how a stopping gateway makes sure its last close records are in
    /// the log.
    pub async fn flushed(&self, within: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.written.load(Ordering::Acquire) >= self.sent.load(Ordering::Acquire) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Start the writer task for `target`.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub async fn start(target: LogTarget) -> std::io::Result<RecordLog> {
        let (tx, mut rx) = mpsc::channel::<String>(4096);
        let mut out: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = match &target {
            LogTarget::Stdout => Box::new(tokio::io::stdout()),
            LogTarget::File(path) => Box::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await?,
            ),
        };
        let written = std::sync::Arc::new(AtomicU64::new(0));
        let done = written.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Some(line) = rx.recv().await {
                let mut lines = 1;
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
                while let Ok(line) = rx.try_recv() {
                    lines += 1;
                    buf.extend_from_slice(line.as_bytes());
                    buf.push(b'\n');
                    if buf.len() > 1 << 20 {
                        break;
                    }
                }
                if out.write_all(&buf).await.is_err() || out.flush().await.is_err() {
                    tracing::error!("cannot write the decision log");
                }
                // Counted written even when the write failed: nothing
                // waits forever for a log that cannot be written.
                done.fetch_add(lines, Ordering::Release);
                buf.clear();
            }
        });
        Ok(RecordLog {
            tx: Some(tx),
            sent: std::sync::Arc::default(),
            written,
        })
    }

    /// Write one record (waits if the writer is behind).
    pub async fn write(&self, record: &GatewayRecord) {
        let Some(tx) = &self.tx else { return };
        if let Ok(line) = serde_json::to_string(record) {
            // Counted before it is queued, so `flushed` never sees a record
            // in the channel as written.
            self.sent.fetch_add(1, Ordering::Release);
            if tx.send(line).await.is_err() {
                self.sent.fetch_sub(1, Ordering::Release);
            }
        }
    }
}

/// One connection's record as it is built up.
#[derive(Debug)]
pub struct ConnRecord {
    /// The id.
    pub conn_id: String,
    /// `connect`, `http`, `transparent-tls`, `transparent-http`.
    pub mode: &'static str,
    /// The client.
    pub client: SocketAddr,
    /// Who the client is.
    pub identity: Identity,
    /// The identity's name for the log.
    pub identity_name: Option<String>,
    /// The target as requested.
    pub requested: String,
    /// The normalised hostname, when the target was a name.
    pub hostname: Option<String>,
    /// The requested port.
    pub port: u16,
    /// TLS server name seen.
    pub sni: Option<String>,
    /// The address dialled.
    pub upstream: Option<SocketAddr>,
    /// Connect time, milliseconds.
    pub connect_ms: Option<f64>,
    /// The decision (absent when the target was refused before deciding).
    pub outcome: Option<Outcome>,
    /// Reason and detail when no outcome (bad target, auth).
    pub refusal: Option<(&'static str, String, u16)>,
    /// Bytes client → destination.
    pub bytes_out: AtomicU64,
    /// Bytes destination → client.
    pub bytes_in: AtomicU64,
    /// The final reason when the connection ended for a reason of its own.
    pub end: Mutex<Option<(&'static str, String)>>,
    started: Instant,
    started_ms: u64,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl ConnRecord {
    /// A record for a new connection.
    pub fn new(mode: &'static str, client: SocketAddr, identity: Identity) -> ConnRecord {
        let started_ms = now_ms();
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed) + 1;
        ConnRecord {
            conn_id: format!("g-{}-{n}", process_epoch()),
            mode,
            client,
            identity,
            identity_name: None,
            requested: String::new(),
            hostname: None,
            port: 0,
            sni: None,
            upstream: None,
            connect_ms: None,
            outcome: None,
            refusal: None,
            bytes_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            end: Mutex::new(None),
            started: Instant::now(),
            started_ms,
        }
    }

    /// Mark why the connection ended (quota, idle, reload, fronting...).
    pub fn ended(&self, reason: &'static str, detail: String) {
        if let Ok(mut e) = self.end.lock()
            && e.is_none()
        {
            *e = Some((reason, detail));
        }
    }

    /// The record for `event`.
    pub fn record(&self, event: GatewayEvent) -> GatewayRecord {
        let dst = self
            .upstream
            .or_else(|| {
                self.outcome
                    .as_ref()
                    .and_then(|o| o.addrs.first())
                    .map(|ip| SocketAddr::new(*ip, self.port))
            })
            .unwrap_or_else(|| SocketAddr::new(unspecified(self.client), self.port));
        let mut flow = Flow::new(FlowSource::Gateway, self.client.ip(), dst.ip(), 6);
        flow.src_port = self.client.port();
        flow.dst_port = dst.port();
        flow.start_ms = self.started_ms as i64;
        flow.hostname = self.hostname.clone();
        let closing = event == GatewayEvent::Close;
        let duration_ms = self.started.elapsed().as_millis() as u64;
        flow.end_ms = if closing {
            (self.started_ms + duration_ms) as i64
        } else {
            flow.start_ms
        };
        flow.bytes_out = self.bytes_out.load(Ordering::Relaxed);
        flow.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        flow.direction = Some(cordon_flow::Direction::Egress);
        let end = if closing {
            self.end.lock().ok().and_then(|e| e.clone())
        } else {
            None
        };
        let (verdict, rule, mut reason, mut detail, mut status, src_groups, dst_groups, dns_ms) =
            match (&self.outcome, &self.refusal) {
                (_, Some((reason, detail, status))) => (
                    Verdict::Deny,
                    None,
                    *reason,
                    detail.clone(),
                    *status,
                    Vec::new(),
                    Vec::new(),
                    self.outcome.as_ref().and_then(|o| o.dns_ms),
                ),
                (Some(o), None) => (
                    o.verdict,
                    o.rule.clone(),
                    o.reason,
                    o.detail.clone(),
                    o.status,
                    o.src_groups.clone(),
                    o.dst_groups.clone(),
                    o.dns_ms,
                ),
                (None, None) => (
                    Verdict::Deny,
                    None,
                    "incomplete",
                    String::new(),
                    400,
                    Vec::new(),
                    Vec::new(),
                    None,
                ),
            };
        let mut verdict = verdict;
        if let Some((why, text)) = end {
            if matches!(why, "quota" | "domain-fronting" | "policy-reload") {
                verdict = Verdict::Deny;
            }
            reason = why;
            detail = text;
            if why == "domain-fronting" {
                status = 403;
            }
        }
        flow.observed = Some(if verdict == Verdict::Deny || status != 200 {
            cordon_flow::Observed::Rejected
        } else {
            cordon_flow::Observed::Accepted
        });
        GatewayRecord {
            event,
            conn_id: self.conn_id.clone(),
            mode: self.mode.to_string(),
            flow,
            identity: self.identity_name.clone(),
            identity_source: self.identity.source.as_str().to_string(),
            src_groups,
            dst_groups,
            requested: self.requested.clone(),
            sni: self.sni.clone(),
            verdict,
            rule,
            reason: reason.to_string(),
            detail,
            dns_ms,
            connect_ms: self.connect_ms,
            status,
            duration_ms: closing.then_some(duration_ms),
        }
    }
}

fn unspecified(like: SocketAddr) -> std::net::IpAddr {
    match like {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// Seconds since the epoch when the process started: connection ids stay
/// unique across restarts.
fn process_epoch() -> u64 {
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| now_ms() / 1000)
}
