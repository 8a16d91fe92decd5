//! What-if: stored flows judged by the policy in force and by a candidate,
//! side by side: what the candidate would newly deny (what would break),
//! what it would no longer deny (what it would let through), and what it
//! decides the same way by another rule (a deny rule removed under a
//! default deny: still denied, now by the default).

use std::collections::BTreeMap;
use std::sync::Arc;

use cordon_core::{Protocol, Verdict};
use cordon_flow::Flow;
use cordon_flow::enrich::Enricher;
use cordon_flow::time::format_rfc3339;
use cordon_policy::CompiledPolicy;
use cordon_store::topology_label;
use serde::Serialize;

/// Flows whose verdict changes the same way, by group pair and port.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// Source group (or `private`/`internet`).
    pub from: String,
    /// Destination group.
    pub to: String,
    /// `tcp/443`.
    pub port: String,
    /// Verdict under the policy in force.
    pub before: Verdict,
    /// Verdict under the candidate.
    pub after: Verdict,
    /// The deciding rule in force (`default` when none).
    pub rule_before: String,
    /// The candidate's deciding rule (`default` when none).
    pub rule: String,
    /// Flows.
    pub flows: u64,
    /// Bytes both ways.
    pub bytes: u64,
    /// First flow.
    pub first: String,
    /// One flow, for people.
    pub example: String,
    /// Its hostname, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// What a candidate policy changes on stored flows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WhatIfReport {
    /// Flows judged.
    pub flows: u64,
    /// Flows the candidate denies that the policy in force did not.
    pub newly_denied: u64,
    /// Flows the policy in force denied that the candidate does not.
    pub no_longer_denied: u64,
    /// Flows decided the same way but by another rule.
    pub rule_changed: u64,
    /// The changes, most flows first.
    pub changes: Vec<Change>,
}

/// Judges flows by both policies as they are shown to it.
pub struct WhatIf {
    current: Option<Enricher>,
    candidate: Enricher,
    report: WhatIfReport,
    rows: BTreeMap<ChangeKey, Change>,
}

/// From, to, port, verdicts before and after, rules before and after.
type ChangeKey = (String, String, String, Verdict, Verdict, String, String);

/// Group pairs and ports kept (the rest are counted only).
const MAX_ROWS: usize = 10_000;

impl WhatIf {
    /// Compare `candidate` with `current`; without a current policy, each
    /// flow's stored verdict is the one in force.
    pub fn new(current: Option<Arc<CompiledPolicy>>, candidate: Arc<CompiledPolicy>) -> WhatIf {
        WhatIf {
            current: current.map(Enricher::new),
            candidate: Enricher::new(candidate),
            report: WhatIfReport::default(),
            rows: BTreeMap::new(),
        }
    }

    /// Judge one stored flow.
    pub fn observe(&mut self, mut flow: Flow) {
        self.report.flows += 1;
        if let Some(e) = &mut self.current {
            e.enrich(&mut flow);
        }
        let (before, rule_before) =
            flow.enrichment
                .as_ref()
                .map_or((Verdict::Allow, "default".to_string()), |e| {
                    (
                        e.verdict,
                        e.rule.as_deref().unwrap_or("default").to_string(),
                    )
                });
        self.candidate.enrich(&mut flow);
        let Some(e) = flow.enrichment.as_ref() else {
            return;
        };
        let after = e.verdict;
        let rule = e.rule.as_deref().unwrap_or("default").to_string();
        if before.is_denial() != after.is_denial() {
            if after.is_denial() {
                self.report.newly_denied += 1;
            } else {
                self.report.no_longer_denied += 1;
            }
        } else if rule != rule_before {
            self.report.rule_changed += 1;
        } else {
            return;
        }
        let from = topology_label(Some(&e.src_groups), flow.src_ip).to_string();
        let to = topology_label(Some(&e.dst_groups), flow.dst_ip).to_string();
        let protocol = Protocol(flow.protocol);
        let port = if protocol.has_ports() {
            format!("{protocol}/{}", flow.dst_port)
        } else {
            protocol.name()
        };
        let key = (
            from.clone(),
            to.clone(),
            port.clone(),
            before,
            after,
            rule_before.clone(),
            rule.clone(),
        );
        if !self.rows.contains_key(&key) && self.rows.len() >= MAX_ROWS {
            return;
        }
        let row = self.rows.entry(key).or_insert_with(|| Change {
            from,
            to,
            port,
            before,
            after,
            rule_before,
            rule,
            flows: 0,
            bytes: 0,
            first: format_rfc3339(flow.start_ms),
            example: format!(
                "{}:{} → {}:{}",
                flow.src_ip, flow.src_port, flow.dst_ip, flow.dst_port
            ),
            hostname: flow.hostname.clone(),
        });
        row.flows += 1;
        row.bytes = row
            .bytes
            .saturating_add(flow.bytes_out.saturating_add(flow.bytes_in));
    }

    /// The report.
    pub fn finish(mut self) -> WhatIfReport {
        let mut changes: Vec<Change> = std::mem::take(&mut self.rows).into_values().collect();
        changes.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.from.cmp(&b.from)));
        self.report.changes = changes;
        self.report
    }
}
