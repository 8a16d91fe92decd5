//! Cordon's own flow records: one JSON object per line, the [`Flow`] type as
//! serialised (what the agent writes, and `flows query --json`), or the
//! gateway's decision records ([`gateway::GatewayRecord`]).

pub mod gateway;

use crate::flow::Flow;
use crate::read::{Skip, SkipReason};
use crate::sources::LineDecoder;

/// Decoder for Cordon flow records.
#[derive(Debug, Default)]
pub struct CordonDecoder;

impl LineDecoder for CordonDecoder {
    fn line(&mut self, line: &str, out: &mut Vec<Flow>) -> Result<(), Skip> {
        if line.trim().is_empty() {
            return Err(Skip::new(SkipReason::NotAFlow, "empty line"));
        }
        let mut flow = if line.contains("\"event\"") {
            let record: gateway::GatewayRecord = serde_json::from_str(line)
                .map_err(|e| Skip::malformed(format!("invalid gateway record: {e}")))?;
            record.into_flow().ok_or_else(|| {
                Skip::new(
                    SkipReason::NotAFlow,
                    "gateway decision record (its close record carries the flow)",
                )
            })?
        } else {
            serde_json::from_str::<Flow>(line)
                .map_err(|e| Skip::malformed(format!("invalid flow record: {e}")))?
        };
        // Enrichment is recomputed against the policy in force at ingest.
        flow.enrichment = None;
        // Records written before orientation was a field carried it as an
        // attribute.
        if flow.get_attr("oriented") == Some("reply") {
            flow.orientation = crate::flow::Orientation::Reversed;
            flow.attrs.remove("oriented");
        }
        out.push(flow);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
