//! The attack: the seed incident's path through Acme, step by step.

use cordon_core::FindingKind;
use std::net::IpAddr;

use crate::hosts::*;
use crate::rng::Rng;
use crate::truth::Step;
use crate::{Conn, Outcome, Scenario, Simulation, World};

/// The attack's planned connections, with the names resolved before them.
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    /// When the attack starts.
    pub at: i64,
    /// The attacker's bucket the data goes to (when the exfiltration is
    /// in the scenario).
    pub export_bucket: Option<String>,
    events: Vec<(Conn, Option<String>)>,
    next: usize,
}

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

struct Builder<'r> {
    rng: &'r mut Rng,
    steps: Vec<Step>,
    events: Vec<(Conn, Option<String>)>,
}

impl Builder<'_> {
    #[allow(
        clippy::too_many_arguments,
        reason = "one field per argument, all named at the call"
    )]
    fn tcp(
        &mut self,
        step: usize,
        t: i64,
        duration: i64,
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        out: u64,
        back: u64,
        name: Option<&str>,
    ) {
        let src_port = self.rng.range(32_768, 60_999) as u16;
        self.events.push((
            Conn {
                start_ms: t,
                duration_ms: duration,
                src,
                src_port,
                dst,
                dst_port: port,
                protocol: 6,
                bytes_out: out,
                bytes_in: back,
                packets_out: 2 + out / 1200,
                packets_in: 2 + back / 1200,
                outcome: Outcome::Established,
                step: Some(step),
            },
            name.map(str::to_string),
        ));
    }

    fn probe(
        &mut self,
        step: usize,
        t: i64,
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        outcome: Outcome,
    ) {
        let src_port = self.rng.range(32_768, 60_999) as u16;
        let refused = outcome == Outcome::Rejected;
        self.events.push((
            Conn {
                start_ms: t,
                duration_ms: if refused { 1 } else { 3_000 },
                src,
                src_port,
                dst,
                dst_port: port,
                protocol: 6,
                bytes_out: if refused { 60 } else { 120 },
                bytes_in: if refused { 40 } else { 0 },
                packets_out: if refused { 1 } else { 2 },
                packets_in: u64::from(refused),
                outcome,
                step: Some(step),
            },
            None,
        ));
    }

    #[allow(clippy::too_many_arguments, reason = "the fields of a truth step")]
    fn step(
        &mut self,
        id: &str,
        stage: &str,
        description: &str,
        kinds: &[FindingKind],
        techniques: &[&str],
        src: Vec<IpAddr>,
        dst: Vec<IpAddr>,
        dst_names: Vec<String>,
        ports: Vec<u16>,
    ) -> usize {
        self.steps.push(Step {
            id: id.to_string(),
            stage: stage.to_string(),
            description: description.to_string(),
            kinds: kinds.to_vec(),
            techniques: techniques.iter().map(|k| k.to_string()).collect(),
            src,
            dst,
            dst_names,
            ports,
            start_ms: 0,
            end_ms: 0,
            flows: 0,
        });
        self.steps.len() - 1
    }
}

/// Plan the attack for `sim`.
pub(crate) fn plan(sim: &Simulation, rng: &mut Rng) -> Plan {
    let mut b = Builder {
        rng,
        steps: Vec::new(),
        events: Vec::new(),
    };
    let end = sim.start_ms + i64::from(sim.hours) * HOUR;
    // Late enough for baselines to form, early enough to play out.
    let at = sim.start_ms
        + (i64::from(sim.hours) * HOUR * 55 / 100).max(HOUR.min(i64::from(sim.hours) * HOUR / 3))
        + b.rng.range(0, 40) as i64 * MINUTE;
    let all = sim.scenario == Scenario::ThirdPartyCompromise;
    let want = |s: Scenario| all || sim.scenario == s;
    // The attacker works from inside the email vendor's network.
    let foothold = v4(198, 51, 100, 70 + b.rng.range(0, 20) as u8);

    if want(Scenario::VendorAccess) {
        let s = b.step(
            "vendor-access",
            "initial-access",
            "from the compromised email vendor's network, SSH to the notifier that trusts it, and a large upload to its webhook",
            &[FindingKind::VendorDrift, FindingKind::PolicyViolation],
            &["T1199"],
            vec![foothold],
            vec![NOTIFIER],
            vec![],
            vec![22, 443],
        );
        let sessions = b.rng.range(2, 4);
        for i in 0..sessions {
            let t = at + i as i64 * b.rng.range(3, 9) as i64 * MINUTE;
            let (o, back) = (
                b.rng.log_range(8_000, 90_000),
                b.rng.log_range(20_000, 400_000),
            );
            let d = b.rng.range(60_000, 900_000) as i64;
            b.tcp(s, t, d, foothold, NOTIFIER, 22, o, back, None);
        }
        let up = b.rng.range(2, 12) * 1_048_576;
        b.tcp(
            s,
            at + 2 * MINUTE,
            20_000,
            foothold,
            NOTIFIER,
            443,
            up,
            2_000,
            None,
        );
    }
    let pivot = if all || sim.scenario != Scenario::BruteForce {
        NOTIFIER
    } else {
        WEB[0]
    };
    if want(Scenario::Discovery) {
        let s = b.step(
            "discovery",
            "discovery",
            "from the notifier, sweep the internal subnets for admin and database ports",
            &[FindingKind::ServiceDiscovery, FindingKind::PolicyViolation],
            &["T1046"],
            vec![pivot],
            vec![],
            vec![],
            vec![22, 80, 443, 445, 3389, 5432, 6379, 8080, 9200, 27017],
        );
        let t0 = at + b.rng.range(12, 20) as i64 * MINUTE;
        let span = b.rng.range(8, 25) as i64 * MINUTE;
        let ports = [22u16, 80, 443, 445, 3389, 5432, 6379, 8080, 9200, 27017];
        let subnets = b.rng.range(4, 9) as u8;
        let hosts_per = b.rng.range(20, 60) as u8;
        let live: Vec<(IpAddr, &[u16])> = vec![
            (WEB[0], &[22, 443]),
            (WEB[1], &[22, 443]),
            (API[0], &[22, 8080]),
            (API[1], &[22, 8080]),
            (DB, &[22, 5432]),
            (BACKUP, &[22]),
            (BASTION, &[22]),
        ];
        let mut n = 0i64;
        for subnet in 1..=subnets {
            for host in 1..=hosts_per {
                let ip = v4(10, 0, subnet, host);
                if ip == pivot {
                    continue;
                }
                for port in ports {
                    if !b.rng.chance(0.6) {
                        continue;
                    }
                    let t = t0 + (n * 137) % span + b.rng.range(0, 500) as i64;
                    n += 1;
                    match live.iter().find(|(h, _)| *h == ip) {
                        Some((_, open)) if open.contains(&port) => {
                            b.tcp(s, t, 5, pivot, ip, port, 80, 300, None);
                        }
                        Some(_) => b.probe(s, t, pivot, ip, port, Outcome::Rejected),
                        None => b.probe(s, t, pivot, ip, port, Outcome::Unanswered),
                    }
                }
            }
        }
    }
    if want(Scenario::LateralMovement) {
        let s = b.step(
            "lateral-movement",
            "lateral-movement",
            "from the notifier, SSH to the user database host",
            &[FindingKind::LateralMovement, FindingKind::PolicyViolation],
            &["T1021.004"],
            vec![pivot],
            vec![DB],
            vec![],
            vec![22],
        );
        let t0 = at + b.rng.range(35, 50) as i64 * MINUTE;
        for i in 0..b.rng.range(2, 5) {
            let t = t0 + i as i64 * b.rng.range(5, 20) as i64 * MINUTE;
            let (o, back) = (
                b.rng.log_range(10_000, 200_000),
                b.rng.log_range(100_000, 5_000_000),
            );
            let d = b.rng.range(120_000, 1_800_000) as i64;
            b.tcp(s, t, d, pivot, DB, 22, o, back, None);
        }
    }
    if want(Scenario::CommandAndControl) {
        let c2 = v4(45, 137, 21, b.rng.range(2, 250) as u8);
        let name = *b
            .rng
            .pick(&[
                "cdn.cloudsync-updates.net",
                "static.telemetry-edge.com",
                "api.azure-cdn-sync.com",
            ])
            .unwrap_or(&"cdn.cloudsync-updates.net");
        let s = b.step(
            "c2",
            "command-and-control",
            "the implant on the notifier checks in with its C2 server over HTTPS, with jitter",
            &[
                FindingKind::Beaconing,
                FindingKind::ShadowVendor,
                FindingKind::LongConnection,
                FindingKind::ThreatIntel,
                FindingKind::PolicyViolation,
            ],
            &["T1071.001", "T1573"],
            vec![pivot],
            vec![c2],
            vec![name.to_string()],
            vec![443],
        );
        let period = b.rng.range(30, 300) as f64 * 1000.0;
        let jitter = 0.05 + b.rng.f64() * 0.15;
        let missed = 0.01 + b.rng.f64() * 0.05;
        let base_out = b.rng.range(250, 1_500) as f64;
        let mut t = (at + 8 * MINUTE) as f64;
        while (t as i64) < end {
            if !b.rng.chance(missed) {
                let dev = 1.0 + (b.rng.f64() * 2.0 - 1.0) * 0.1;
                let back = b.rng.log_range(100, 4_000);
                b.tcp(
                    s,
                    t as i64,
                    300,
                    pivot,
                    c2,
                    443,
                    (base_out * dev) as u64,
                    back,
                    Some(name),
                );
            }
            t += period * (1.0 + (b.rng.f64() * 2.0 - 1.0) * jitter);
        }
    }
    let mut export_bucket = None;
    if want(Scenario::Exfiltration) {
        let bucket = format!(
            "acme-export-{:04x}.s3.us-east-1.amazonaws.com",
            b.rng.range(0, 0xffff)
        );
        let ip = v4(
            52,
            216,
            b.rng.range(0, 255) as u8,
            b.rng.range(1, 254) as u8,
        );
        let s = b.step(
            "exfiltration",
            "exfiltration",
            "the user table, staged in chunks, leaves for the attacker's cloud storage bucket",
            &[
                FindingKind::CloudExfiltration,
                FindingKind::Exfiltration,
                FindingKind::ShadowVendor,
                FindingKind::PolicyViolation,
            ],
            &["T1567.002", "T1537", "T1030"],
            vec![pivot],
            vec![ip],
            vec![bucket.clone()],
            vec![443],
        );
        let t0 = at + b.rng.range(90, 150) as i64 * MINUTE;
        let chunks = b.rng.range(3, 8);
        let size = b.rng.range(80, 300) * 1_048_576;
        for i in 0..chunks {
            let t = t0 + i as i64 * b.rng.range(4, 15) as i64 * MINUTE;
            let out = size + b.rng.range(0, 4_000_000);
            let d = b.rng.range(30_000, 240_000) as i64;
            b.tcp(s, t, d, pivot, ip, 443, out, 20_000, Some(&bucket));
        }
        export_bucket = Some(bucket);
    }
    if sim.scenario == Scenario::BruteForce {
        let attacker = v4(185, 220, 101, b.rng.range(2, 250) as u8);
        let s = b.step(
            "brute-force",
            "credential-access",
            "password guessing against SSH on a web server from the internet",
            &[FindingKind::BruteForce, FindingKind::PolicyViolation],
            &["T1110.001"],
            vec![attacker],
            vec![WEB[0]],
            vec![],
            vec![22],
        );
        let tries = b.rng.range(60, 400);
        let span = b.rng.range(5, 20) as i64 * MINUTE;
        for i in 0..tries {
            let t = at + i as i64 * span / tries as i64 + b.rng.range(0, 2_000) as i64;
            // Each guess: handshake, key exchange, a failed password, close.
            let (o, back) = (b.rng.range(1_500, 4_500), b.rng.range(2_000, 5_000));
            let d = b.rng.range(800, 6_000) as i64;
            b.tcp(s, t, d, attacker, WEB[0], 22, o, back, None);
        }
    }
    b.events.sort_by_key(|(c, _)| c.start_ms);
    for (c, _) in &b.events {
        if let Some(step) = c.step.and_then(|s| b.steps.get_mut(s)) {
            if step.start_ms == 0 || c.start_ms < step.start_ms {
                step.start_ms = c.start_ms;
            }
            step.end_ms = step.end_ms.max(c.start_ms + c.duration_ms);
        }
    }
    Plan {
        steps: b.steps,
        at,
        export_bucket,
        events: b.events,
        next: 0,
    }
}

/// Emit the attack's connections that start in the hour from `t0`.
pub(crate) fn hour(plan: &Plan, w: &mut World<'_>, t0: i64) {
    let _ = plan.next;
    let from = plan.events.partition_point(|(c, _)| c.start_ms < t0);
    let to = plan.events.partition_point(|(c, _)| c.start_ms < t0 + HOUR);
    for (conn, name) in plan.events.get(from..to).unwrap_or_default() {
        if let Some(name) = name {
            w.resolve(conn.src, name, &[conn.dst], conn.start_ms);
        }
        w.conn(conn.clone());
    }
}
