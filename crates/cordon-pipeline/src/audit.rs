//! What enforcing a policy would break: stored flows (replayed with the
//! candidate policy) that it would deny, summed by group pair and port.

use std::collections::BTreeMap;

use cordon_core::{Protocol, Verdict};
use cordon_flow::Flow;
use cordon_flow::time::format_rfc3339;
use cordon_store::topology_label;
use serde::Serialize;

/// Flows the policy would deny between two groups on one port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    /// Source group (or address class).
    pub from: String,
    /// Destination group.
    pub to: String,
    /// `tcp/5432`, or a protocol without ports.
    pub port: String,
    /// `deny` or `would-deny`.
    pub verdict: Verdict,
    /// The deciding rule; `None` for the default.
    pub rule: Option<String>,
    /// Flows.
    pub flows: u64,
    /// Bytes both ways.
    pub bytes: u64,
    /// The first flow's start.
    pub first: String,
    /// The last flow's start.
    pub last: String,
    /// One flow as an example.
    pub example: String,
}

/// The audit of a set of flows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditReport {
    /// Flows examined.
    pub flows: u64,
    /// Of which the policy denies.
    pub denied: u64,
    /// Denied flows by group pair, port and verdict, the most flows first.
    pub breaks: Vec<AuditRow>,
}

/// Sums denied flows as they are shown to it.
#[derive(Debug, Default)]
pub struct Audit {
    flows: u64,
    rows: BTreeMap<(String, String, String, Verdict), AuditRow>,
}

impl Audit {
    /// Count `flow` (enriched with the candidate policy).
    pub fn observe(&mut self, f: &Flow) {
        self.flows += 1;
        let Some(e) = &f.enrichment else { return };
        if !e.verdict.is_denial() {
            return;
        }
        let from = topology_label(Some(&e.src_groups), f.src_ip).to_string();
        let to = topology_label(Some(&e.dst_groups), f.dst_ip).to_string();
        let protocol = Protocol(f.protocol);
        let port = if protocol.has_ports() {
            format!("{protocol}/{}", f.dst_port)
        } else {
            protocol.name()
        };
        let row = self
            .rows
            .entry((from.clone(), to.clone(), port.clone(), e.verdict))
            .or_insert_with(|| AuditRow {
                from,
                to,
                port,
                verdict: e.verdict,
                rule: e.rule.as_deref().map(str::to_string),
                flows: 0,
                bytes: 0,
                first: format_rfc3339(f.start_ms),
                last: format_rfc3339(f.start_ms),
                example: format!("{}:{} → {}:{}", f.src_ip, f.src_port, f.dst_ip, f.dst_port),
            });
        row.flows += 1;
        row.bytes += f.bytes_out + f.bytes_in;
        row.last = format_rfc3339(f.start_ms);
    }

    /// The report.
    pub fn finish(self) -> AuditReport {
        let mut breaks: Vec<AuditRow> = self.rows.into_values().collect();
        breaks.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.from.cmp(&b.from)));
        AuditReport {
            flows: self.flows,
            denied: breaks.iter().map(|r| r.flows).sum(),
            breaks,
        }
    }
}
