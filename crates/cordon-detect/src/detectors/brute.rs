//! Brute force: many failed attempts from one source on an authentication
//! service (password guessing, T1110.001), or short failed sessions against
//! many hosts on one such port (spraying, T1110.003). An attempt is a
//! refused connection or a session that reached the service and ended
//! within seconds having sent little (a failed login); probes that nobody
//! answered are left to the scan detector.
//!
//! A single **remote-access probe** is reported too, at low severity: a
//! session to a service people log in to by hand (SSH, Telnet, RDP, VNC)
//! that was answered, lasted seconds and ended with the originator's reset.
//! Clients close a session they used; scanners and fingerprinting tools
//! read the greeting and abort (T1046). Only probes from an internal
//! source count: from the Internet they are any exposed service's
//! background.

use cordon_core::FindingKind;
use std::net::IpAddr;

use cordon_flow::Flow;
use rustc_hash::FxHashSet;

use super::{Detector, Samples, fact, failed, finding};
use crate::bounded::{Aged, Bounded};
use crate::config::BruteForce as Settings;
use crate::finding::Finding;

/// Authentication services by port.
fn auth_service(port: u16) -> Option<&'static str> {
    Some(match port {
        22 => "SSH",
        23 => "Telnet",
        21 => "FTP",
        3389 => "RDP",
        25 | 465 | 587 => "SMTP submission",
        110 | 995 => "POP3",
        143 | 993 => "IMAP",
        389 | 636 => "LDAP",
        88 => "Kerberos",
        445 => "SMB",
        5985 | 5986 => "WinRM",
        5900 => "VNC",
        3306 => "MySQL",
        5432 => "PostgreSQL",
        1433 => "SQL Server",
        1521 => "Oracle",
        27017 => "MongoDB",
        6379 => "Redis",
        _ => return None,
    })
}

/// Services a person logs in to by hand.
fn interactive(port: u16) -> bool {
    matches!(port, 21 | 22 | 23 | 3389 | 5900)
}

struct Target {
    window_start: i64,
    last_ms: i64,
    attempts: u32,
    /// Times of the latest attempts (for the burst rule).
    recent: Vec<i64>,
    reported: bool,
    /// A probe of this target was reported in this window.
    probed: bool,
    samples: Samples,
}

impl Aged for Target {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

struct Spray {
    window_start: i64,
    last_ms: i64,
    hosts: FxHashSet<IpAddr>,
    reported: bool,
}

impl Aged for Spray {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// The brute-force detector.
pub struct BruteForce {
    cfg: Settings,
    targets: Bounded<(IpAddr, IpAddr, u16), Target>,
    sprays: Bounded<(IpAddr, u16), Spray>,
}

impl BruteForce {
    /// A detector with `cfg`.
    pub fn new(cfg: Settings) -> Self {
        BruteForce {
            targets: Bounded::new(cfg.common.max_state),
            sprays: Bounded::new(cfg.common.max_state),
            cfg,
        }
    }
}

impl Detector for BruteForce {
    fn name(&self) -> &'static str {
        "brute-force"
    }

    fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        let Some(service) = auth_service(flow.dst_port) else {
            return;
        };
        if flow.protocol != 6 || self.cfg.common.allow.contains(flow.src_ip, None) {
            return;
        }
        // A guess: a refused attempt, or a session that reached the service
        // and ended quickly with little said (the login failed). Probes
        // nobody answered are scans, not guesses.
        let refused = flow.observed == Some(cordon_flow::Observed::Rejected)
            || flow.get_attr("conn_state") == Some("REJ");
        // A failed login says little both ways; a query that returns
        // rows, a mail accepted or a page served says more.
        let short = !failed(flow)
            && flow.end_ms - flow.start_ms <= 10_000
            && (400..=12_000).contains(&flow.bytes_out)
            && (!super::two_way(flow) || flow.bytes_in <= 12_000);
        // Probes from outside are the Internet's background on any exposed
        // service; from inside they are reconnaissance.
        let probing = interactive(flow.dst_port) && super::src_internal(flow) && probe(flow);
        if !(refused || short || probing) {
            return;
        }
        let window = self.cfg.window;
        let t = flow.start_ms;
        let target = self
            .targets
            .entry((flow.src_ip, flow.dst_ip, flow.dst_port), || Target {
                window_start: t,
                last_ms: t,
                attempts: 0,
                recent: Vec::new(),
                reported: false,
                probed: false,
                samples: Samples::default(),
            });
        if t >= target.window_start + window {
            target.window_start = t;
            target.attempts = 0;
            target.reported = false;
            target.probed = false;
        }
        target.last_ms = target.last_ms.max(t);
        if probing && !target.probed {
            target.probed = true;
            out.push(probe_finding(flow, service));
        }
        if !(refused || short) {
            return;
        }
        target.attempts += 1;
        target.samples.add(flow);
        // Interactive logins guessed in a burst: a person never fails that
        // fast, and automation logs in once.
        let burst_n = usize::try_from(self.cfg.min_burst)
            .unwrap_or(usize::MAX)
            .max(2);
        if interactive(flow.dst_port) {
            if target.recent.len() >= burst_n {
                target.recent.remove(0);
            }
            target.recent.push(t);
        }
        let burst = target.recent.len() >= burst_n
            && target.recent.last().copied().unwrap_or(0)
                - target.recent.first().copied().unwrap_or(0)
                <= self.cfg.burst_window;
        if !target.reported && (u64::from(target.attempts) >= self.cfg.min_attempts || burst) {
            target.reported = true;
            let mut f = finding(
                FindingKind::BruteForce,
                &format!("{}>{}:{}", flow.src_ip, flow.dst_ip, flow.dst_port),
                flow,
                65.0 + 10.0
                    * (f64::from(target.attempts) / self.cfg.min_attempts.max(1) as f64)
                        .log2()
                        .clamp(0.0, 2.0),
                format!(
                    "{} failed {service} attempts from {} to {} within {} min",
                    target.attempts,
                    flow.src_ip,
                    flow.dst_ip,
                    window / 60_000
                ),
            );
            f.first_ms = target.window_start;
            f.techniques = vec!["T1110.001".into()];
            fact(&mut f, "failed_attempts", target.attempts);
            fact(&mut f, "service", service);
            from_outside(flow, &mut f);
            target.samples.clone().into_evidence(&mut f);
            out.push(f);
        }
        let spray = self.sprays.entry((flow.src_ip, flow.dst_port), || Spray {
            window_start: t,
            last_ms: t,
            hosts: FxHashSet::default(),
            reported: false,
        });
        if t >= spray.window_start + window {
            spray.window_start = t;
            spray.hosts.clear();
            spray.reported = false;
        }
        spray.last_ms = spray.last_ms.max(t);
        // Spraying is sessions that reached many hosts, not refusals.
        if short && spray.hosts.len() < 1024 {
            spray.hosts.insert(flow.dst_ip);
        }
        if !spray.reported && spray.hosts.len() as u64 >= self.cfg.min_spray_hosts {
            spray.reported = true;
            let mut f = finding(
                FindingKind::BruteForce,
                &format!("{}>*:{}", flow.src_ip, flow.dst_port),
                flow,
                65.0,
                format!(
                    "failed {service} connections from {} to {} hosts within {} min",
                    flow.src_ip,
                    spray.hosts.len(),
                    window / 60_000
                ),
            );
            f.dst = format!("{} hosts", spray.hosts.len());
            f.dst_entity = Default::default();
            f.techniques = vec!["T1110.003".into()];
            fact(&mut f, "hosts", spray.hosts.len());
            fact(&mut f, "service", service);
            from_outside(flow, &mut f);
            out.push(f);
        }
    }

    fn state(&self) -> usize {
        self.targets.len() + self.sprays.len()
    }

    fn evicted(&self) -> u64 {
        self.targets.evicted() + self.sprays.evicted()
    }
}

/// Whether `flow` is a probe of a remote-access service: answered (the
/// handshake completed and the service spoke), over within seconds, and
/// aborted by the originator's reset after reading the greeting.
fn probe(flow: &Flow) -> bool {
    flow.get_attr("conn_state") == Some("RSTO")
        && flow.bytes_in > 0
        && flow.bytes_out <= 12_000
        && flow.end_ms - flow.start_ms <= 5_000
}

/// The finding for one remote-access probe (see the module docs).
fn probe_finding(flow: &Flow, service: &str) -> Finding {
    let mut f = finding(
        FindingKind::ServiceDiscovery,
        &format!("probe:{}>{}:{}", flow.src_ip, flow.dst_ip, flow.dst_port),
        flow,
        40.0,
        format!(
            "{} probed {service} on {}:{}: answered, then reset by the client after {:.1} s (a scanner reading the greeting)",
            flow.src_ip,
            flow.dst_ip,
            flow.dst_port,
            (flow.end_ms - flow.start_ms) as f64 / 1000.0
        ),
    );
    f.techniques = vec!["T1046".into()];
    fact(&mut f, "shape", "remote-access probe");
    fact(&mut f, "service", service);
    fact(&mut f, "bytes_out", flow.bytes_out);
    fact(&mut f, "bytes_in", flow.bytes_in);
    super::calibrate(
        &mut f,
        (
            crate::finding::Severity::Low,
            "one probe of a remote-access service (tools and health checks look the same); low unless something else corroborates it"
                .to_string(),
        ),
    );
    f
}

/// Password guessing from outside is the Internet's background on any
/// exposed service: low unless something else corroborates it.
fn from_outside(flow: &Flow, f: &mut Finding) {
    if !super::src_internal(flow) {
        super::calibrate(
            f,
            (
                crate::finding::Severity::Low,
                "attempts from outside (the Internet's background on an exposed service); low unless something else corroborates it"
                    .to_string(),
            ),
        );
    }
}
