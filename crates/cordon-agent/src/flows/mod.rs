//! Flows from the agent: connections the kernel let through (conntrack)
//! and packets the ruleset denied or audited (NFLOG), written as Cordon
//! flow records (source `agent`, JSON lines) that `cordon ingest` reads.
//! Each record carries the verdict and rule: for connections, the policy's
//! answer for them (so audit mode records `would-deny`); for logged
//! packets, the rule whose log statement fired.
//!
//! Also here: cutting connections a new ruleset no longer allows.
//! `ct state established` keeps accepting a connection after its rule is
//! gone, so after every apply the agent deletes the conntrack entries of
//! this host's connections that the policy now denies; their next packet is
//! judged by the new ruleset.

pub mod conntrack;
pub mod nflog;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cordon_flow::{Direction, Flow, FlowSource, Observed};
use cordon_policy::{CompiledPolicy, Endpoint, Protocol, Reason, Request, Verdict};

/// The NFLOG group the ruleset's log statements send to.
pub const NFLOG_GROUP: u16 = 100;

/// Why flows cannot be collected, or revoked connections cut.
#[derive(Debug, thiserror::Error)]
pub enum FlowsError {
    /// A program the agent reads the kernel through cannot run.
    #[error("cannot run {tool} (apt-get install {package}): {source}")]
    Tool {
        /// The program.
        tool: &'static str,
        /// The Debian package that has it.
        package: &'static str,
        /// Why it did not run.
        source: std::io::Error,
    },
    /// `tcpdump` started but did not say it listens.
    #[error("tcpdump did not start listening on NFLOG within 5 s")]
    NflogSilent,
    /// `conntrack` cannot list connections.
    #[error("cannot run conntrack (apt-get install conntrack)")]
    Conntrack,
}

/// The policy the agent enforces now, shared with the flow threads.
pub type Current = Arc<RwLock<Arc<CompiledPolicy>>>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The policy's verdict and rule for a connection (audit turns deny into
/// would-deny).
pub fn judge(
    policy: &CompiledPolicy,
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    port: u16,
    audit: bool,
) -> (Verdict, Option<String>) {
    let d = policy.evaluate(&Request {
        src: Endpoint::ip(src),
        dst: Endpoint::ip(dst),
        protocol: Protocol(protocol),
        port,
    });
    let rule = match d.reason {
        Reason::AllowRule(r) | Reason::DenyRule(r) => {
            policy.policy().rule(r).map(|r| r.name.clone())
        }
        Reason::Default => None,
    };
    let verdict = match d.verdict {
        Verdict::Deny if audit => Verdict::WouldDeny,
        v => v,
    };
    (verdict, rule)
}

/// Where flow records go.
pub struct FlowLog(Mutex<std::io::BufWriter<std::fs::File>>);

impl FlowLog {
    /// Append to `path`.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> std::io::Result<FlowLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(FlowLog(Mutex::new(std::io::BufWriter::new(file))))
    }

    fn write(&self, flows: &[Flow]) {
        if flows.is_empty() {
            return;
        }
        if let Ok(mut w) = self.0.lock() {
            for f in flows {
                if let Ok(line) = serde_json::to_string(f) {
                    let _ = writeln!(w, "{line}");
                }
            }
            let _ = w.flush();
        }
    }
}

fn flow(src: IpAddr, dst: IpAddr, protocol: u8, ports: (u16, u16), self_ips: &[IpAddr]) -> Flow {
    let mut f = Flow::new(FlowSource::Agent, src, dst, protocol);
    (f.src_port, f.dst_port) = ports;
    f.direction = Some(if self_ips.contains(&dst) {
        Direction::Ingress
    } else {
        Direction::Egress
    });
    f
}

/// Denied packets of one attempt, gathered until it goes quiet.
struct Attempt {
    flow: Flow,
    last_ms: i64,
}

/// A denied attempt's key: addresses, protocol and ports.
type AttemptKey = (IpAddr, IpAddr, u8, u16, u16);
/// Denied attempts still open, shared by the reader and the writer.
type Attempts = Arc<Mutex<HashMap<AttemptKey, Attempt>>>;

/// Collects and writes the agent's flows until dropped.
pub struct Collector {
    stop: Arc<AtomicBool>,
    tcpdump: Option<Child>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// How long a denied attempt must be quiet before it is written (TCP
/// retries its SYN for longer, and each retry is the same attempt).
const ATTEMPT_QUIET_MS: i64 = 3_000;

impl Collector {
    /// Start polling conntrack (every second) and reading NFLOG through
    /// `tcpdump`, writing to `log`. Turns on conntrack accounting for this
    /// namespace.
    ///
    /// # Errors
    /// When neither `conntrack` nor `tcpdump` can run.
    pub fn start(
        log: FlowLog,
        current: Current,
        self_ips: Vec<IpAddr>,
        audit: bool,
    ) -> Result<Collector, FlowsError> {
        let _ = std::fs::write("/proc/sys/net/netfilter/nf_conntrack_acct", "1");
        let log = Arc::new(log);
        let stop = Arc::new(AtomicBool::new(false));
        let attempts: Attempts = Arc::default();
        let mut threads = Vec::new();
        // Connections let through.
        {
            let (log, stop, current, ips, attempts) = (
                log.clone(),
                stop.clone(),
                current.clone(),
                self_ips.clone(),
                attempts.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let mut tracker = conntrack::Tracker::new(1 << 18);
                while !stop.load(Ordering::Relaxed) {
                    if let Some(entries) = list() {
                        let now = now_ms();
                        let ended = tracker.poll(entries, now);
                        let policy = current.read().map(|p| p.clone());
                        let mut out = Vec::new();
                        if let Ok(policy) = policy {
                            for e in ended {
                                let c = &e.entry;
                                if !ips.contains(&c.src) && !ips.contains(&c.dst) {
                                    continue;
                                }
                                let mut f =
                                    flow(c.src, c.dst, c.protocol, (c.sport, c.dport), &ips);
                                (f.packets_out, f.bytes_out) = c.out;
                                (f.packets_in, f.bytes_in) = c.back;
                                f.start_ms = e.first_ms;
                                f.end_ms = e.last_ms;
                                f.observed = Some(Observed::Accepted);
                                let (verdict, rule) =
                                    judge(&policy, c.src, c.dst, c.protocol, c.dport, audit);
                                f.attr("verdict", verdict.as_str());
                                if let Some(rule) = rule {
                                    f.attr("rule", rule);
                                }
                                f.attr("via", "conntrack");
                                out.push(f);
                            }
                        }
                        // Denied attempts that went quiet.
                        if let Ok(mut a) = attempts.lock() {
                            a.retain(|_, at| {
                                if now - at.last_ms >= ATTEMPT_QUIET_MS {
                                    out.push(at.flow.clone());
                                    false
                                } else {
                                    true
                                }
                            });
                        }
                        log.write(&out);
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }));
        }
        // Packets denied or audited.
        let mut tcpdump = Command::new("tcpdump")
            .args([
                "-i",
                &format!("nflog:{NFLOG_GROUP}"),
                "-w",
                "-",
                "-U",
                "-s",
                "256",
                "-q",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| FlowsError::Tool {
                tool: "tcpdump",
                package: "tcpdump",
                source,
            })?;
        // Return only once tcpdump listens, so the first denied packets of a
        // ruleset applied next are not missed.
        if let Some(err) = tcpdump.stderr.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            threads.push(std::thread::spawn(move || {
                let mut told = false;
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if !told && line.contains("listening on") {
                        let _ = tx.send(());
                        told = true;
                    }
                }
            }));
            if rx.recv_timeout(Duration::from_secs(5)).is_err() {
                let _ = tcpdump.kill();
                return Err(FlowsError::NflogSilent);
            }
        }
        if let Some(out) = tcpdump.stdout.take() {
            let (ips, attempts) = (self_ips.clone(), attempts.clone());
            threads.push(std::thread::spawn(move || {
                let Ok(mut reader) = nflog::Reader::new(BufReader::new(out)) else {
                    return;
                };
                while let Ok(Some(p)) = reader.next_packet() {
                    let Some((verdict, rule)) =
                        p.verdict().map(|(v, r)| (v.to_string(), r.to_string()))
                    else {
                        continue;
                    };
                    let key = (p.src, p.dst, p.protocol, p.sport, p.dport);
                    let Ok(mut a) = attempts.lock() else { return };
                    if a.len() >= 1 << 16 && !a.contains_key(&key) {
                        continue;
                    }
                    let at = a.entry(key).or_insert_with(|| {
                        let mut f = flow(p.src, p.dst, p.protocol, (p.sport, p.dport), &ips);
                        f.start_ms = p.time_ms;
                        f.observed = Some(if verdict == "deny" {
                            Observed::Rejected
                        } else {
                            Observed::Accepted
                        });
                        f.attr("verdict", &verdict);
                        f.attr("rule", &rule);
                        f.attr("via", "nflog");
                        Attempt {
                            flow: f,
                            last_ms: p.time_ms,
                        }
                    });
                    at.flow.packets_out += 1;
                    at.flow.bytes_out += p.length;
                    at.flow.end_ms = p.time_ms;
                    at.last_ms = now_ms();
                }
            }));
        }
        Ok(Collector {
            stop,
            tcpdump: Some(tcpdump),
            threads,
        })
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(mut t) = self.tcpdump.take() {
            let _ = t.kill();
            let _ = t.wait();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The conntrack table now, or `None` when `conntrack` cannot run.
fn list() -> Option<Vec<conntrack::Entry>> {
    let out = Command::new("conntrack")
        .args(["-L", "-o", "extended,id"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let mut entries = Vec::new();
    for line in BufReader::new(&out.stdout[..])
        .lines()
        .map_while(Result::ok)
    {
        if let Some(e) = conntrack::parse_line(&line) {
            entries.push(e);
        }
    }
    Some(entries)
}

/// Delete the conntrack entries of this host's connections that `policy`
/// denies (not in audit mode) or that `also` says must stop (a response),
/// so a revoked connection stops at its next packet. Returns how many
/// were cut.
///
/// # Errors
/// When `conntrack` cannot run.
pub fn cut_denied(
    policy: &CompiledPolicy,
    self_ips: &[IpAddr],
    also: &dyn Fn(IpAddr, IpAddr) -> bool,
) -> Result<usize, FlowsError> {
    let entries = list().ok_or(FlowsError::Conntrack)?;
    let mut cut = 0;
    for e in entries {
        let over = e.protocol == 6 && matches!(e.state.as_deref(), Some("TIME_WAIT" | "CLOSE"));
        if over || (!self_ips.contains(&e.src) && !self_ips.contains(&e.dst)) {
            continue;
        }
        let (verdict, _) = judge(policy, e.src, e.dst, e.protocol, e.dport, false);
        if verdict != Verdict::Deny && !also(e.src, e.dst) {
            continue;
        }
        let mut args = vec![
            "-D".to_string(),
            "-s".into(),
            e.src.to_string(),
            "-d".into(),
            e.dst.to_string(),
            "-p".into(),
            e.protocol.to_string(),
        ];
        if matches!(e.protocol, 6 | 17 | 132) {
            args.extend([
                "--sport".into(),
                e.sport.to_string(),
                "--dport".into(),
                e.dport.to_string(),
            ]);
        }
        let deleted = Command::new("conntrack")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if deleted {
            cut += 1;
        }
    }
    Ok(cut)
}
