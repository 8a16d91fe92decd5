//! Threat-intelligence matches: a flow to or from an indicator of
//! compromise, one finding per (indicator, internal endpoint).

use cordon_core::FindingKind;
use cordon_flow::Flow;

use super::{Detector, c2_technique, fact, finding, src_internal};
use crate::config::Common;
use crate::finding::Finding;
use crate::intel::Intel;

/// The threat-intel detector.
pub struct IntelMatches {
    intel: Intel,
    cfg: Common,
}

impl IntelMatches {
    /// A detector over `intel`.
    pub fn new(intel: Intel, cfg: Common) -> Self {
        IntelMatches { intel, cfg }
    }
}

impl Detector for IntelMatches {
    fn name(&self) -> &'static str {
        "threat-intel"
    }

    fn sees_local_only(&self) -> bool {
        true
    }

    fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        let hit = self
            .intel
            .match_ip(flow.dst_ip)
            .map(|s| (s, flow.dst_ip.to_string()))
            .or_else(|| {
                flow.hostname
                    .as_deref()
                    .and_then(|h| self.intel.match_host(h).map(|s| (s, h.to_string())))
            })
            .or_else(|| {
                self.intel
                    .match_ip(flow.src_ip)
                    .map(|s| (s, flow.src_ip.to_string()))
            });
        let Some((source, what)) = hit else {
            return;
        };
        // An indicator that expired before the traffic says nothing of it.
        if !source.applies_at(flow.start_ms) {
            return;
        }
        if self
            .cfg
            .allow
            .contains(flow.dst_ip, flow.hostname.as_deref())
        {
            return;
        }
        let inside = if src_internal(flow) {
            flow.src_ip
        } else {
            flow.dst_ip
        };
        let mut f = finding(
            FindingKind::ThreatIntel,
            &format!("{}|{inside}", source.id),
            flow,
            if flow.observed == Some(cordon_flow::Observed::Rejected) {
                60.0
            } else {
                85.0
            },
            format!(
                "traffic with {what}, listed by {}{}",
                source.id,
                source
                    .name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
        );
        let (technique, encrypted) = c2_technique(flow.protocol, flow.dst_port);
        f.techniques = vec![technique.to_string()];
        if encrypted {
            f.techniques.push("T1573".to_string());
        }
        fact(&mut f, "indicator", source.id.as_str());
        fact(&mut f, "matched", what);
        out.push(f);
    }

    fn state(&self) -> usize {
        0
    }
}
