//! Policy violations: flows the policy denies (or would deny in audit
//! mode), grouped by source, destination, port and verdict, with the stage
//! they suggest from where they go.

use cordon_core::FindingKind;
use cordon_flow::Flow;

use super::{Detector, admin_protocol, dst_internal, fact, finding, src_internal, stopped_by};
use crate::bounded::{Aged, Bounded};
use crate::config::Violations as Settings;
use crate::finding::Finding;

struct Seen {
    last_ms: i64,
    flows: u64,
    bytes: u64,
    ports: Vec<u16>,
    hosts: Vec<std::net::IpAddr>,
}

impl Aged for Seen {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// The policy-violation detector.
pub struct Violations {
    cfg: Settings,
    seen: Bounded<String, Seen>,
}

impl Violations {
    /// A detector with `cfg`.
    pub fn new(cfg: Settings) -> Self {
        Violations {
            seen: Bounded::new(cfg.common.max_state),
            cfg,
        }
    }
}

impl Detector for Violations {
    fn name(&self) -> &'static str {
        "policy-violations"
    }

    fn sees_local_only(&self) -> bool {
        true
    }

    fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        let Some(e) = flow.enrichment.as_deref() else {
            return;
        };
        if e.verdict == cordon_core::Verdict::Allow
            || self.cfg.common.allow.contains(flow.src_ip, None)
            || self
                .cfg
                .common
                .allow
                .contains(flow.dst_ip, flow.hostname.as_deref())
        {
            return;
        }
        let rejected = flow.observed == Some(cordon_flow::Observed::Rejected);
        let src = e
            .src_workload
            .as_deref()
            .map_or_else(|| flow.src_ip.to_string(), str::to_string);
        // One finding per source and destination group (a sweep of a
        // subnet is one violation, not hundreds); ports and addresses are
        // counted in the evidence.
        let group = cordon_core::first_user_group(&e.dst_groups)
            .or_else(|| e.dst_groups.first())
            .map(|g| g.to_string());
        let dst = group
            .or_else(|| flow.hostname.clone())
            .unwrap_or_else(|| flow.dst_ip.to_string());
        let key = format!("{src}>{dst}|{}", e.verdict);
        let seen = self.seen.entry(key.clone(), || Seen {
            last_ms: flow.start_ms,
            flows: 0,
            bytes: 0,
            ports: Vec::new(),
            hosts: Vec::new(),
        });
        if seen.ports.len() < 64 && !seen.ports.contains(&flow.dst_port) {
            seen.ports.push(flow.dst_port);
        }
        if seen.hosts.len() < 64 && !seen.hosts.contains(&flow.dst_ip) {
            seen.hosts.push(flow.dst_ip);
        }
        seen.last_ms = seen.last_ms.max(flow.start_ms);
        seen.flows += 1;
        seen.bytes += flow.bytes_out + flow.bytes_in;
        // Report the first flow, then as the count doubles, then per 1000.
        let n = seen.flows;
        if !(n <= 256 && n.is_power_of_two() || n.is_multiple_of(1000)) {
            return;
        }
        let (stage, techniques): (&str, Vec<String>) =
            match (src_internal(flow), dst_internal(flow)) {
                (true, true) => (
                    "lateral-movement",
                    vec![
                        admin_protocol(flow.dst_port)
                            .map_or("T1021", |(_, t)| t)
                            .to_string(),
                    ],
                ),
                (true, false) => ("exfiltration", vec!["T1048".to_string()]),
                (false, _) => ("initial-access", vec!["T1199".to_string()]),
            };
        let score = match (e.verdict, rejected) {
            // Denied and stopped: the policy worked.
            (_, true) => 30.0,
            (cordon_core::Verdict::WouldDeny, false) => 60.0,
            _ => 50.0,
        };
        let mut f = finding(
            FindingKind::PolicyViolation,
            &key,
            flow,
            score,
            format!(
                "{} flow(s) {src} → {dst} (ports {}) that the policy says {} ({})",
                seen.flows,
                seen.ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                e.verdict,
                stopped_by(flow).unwrap_or_default()
            ),
        );
        f.stage = stage.to_string();
        f.techniques = techniques;
        fact(&mut f, "flows", seen.flows);
        fact(&mut f, "ports", seen.ports.clone());
        fact(
            &mut f,
            "destinations",
            seen.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        );
        if seen.hosts.len() > 1 {
            f.dst_entity.ip = None;
            f.dst_entity.workload = None;
        }
        f.dst = dst.clone();
        fact(&mut f, "bytes", seen.bytes);
        fact(&mut f, "verdict", e.verdict.as_str());
        fact(&mut f, "observed_rejected", rejected);
        out.push(f);
    }

    fn state(&self) -> usize {
        self.seen.len()
    }

    fn evicted(&self) -> u64 {
        self.seen.evicted()
    }
}
