//! Cilium Hubble flow export (JSON lines, `{"flow": {...}}` or a bare flow).
//!
//! Hubble flows are per-event records without byte counts; each becomes a
//! flow of one packet. Verdicts `DROPPED`, `DENIED` and `ERROR` are rejected;
//! replies (`is_reply`) are turned around so the source is the initiator.

use serde_json::Value;

use crate::flow::{Direction, Flow, FlowSource, Observed};
use crate::read::{Skip, SkipReason};
use crate::sources::{LineDecoder, clip, parse_ip};
use crate::time::parse_rfc3339;

/// Decoder for Hubble's JSON export.
#[derive(Debug, Default)]
pub struct HubbleDecoder;

fn port(l4: &Value, proto: &str, key: &str) -> u16 {
    l4.get(proto)
        .and_then(|p| p.get(key))
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0)
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

impl LineDecoder for HubbleDecoder {
    fn line(&mut self, line: &str, out: &mut Vec<Flow>) -> Result<(), Skip> {
        if line.trim().is_empty() {
            return Err(Skip::new(SkipReason::NotAFlow, "empty line"));
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| Skip::malformed(format!("invalid JSON: {e}")))?;
        let flow_v = value.get("flow").unwrap_or(&value);
        let Some(ip) = flow_v.get("IP") else {
            return Err(Skip::new(
                SkipReason::NotAFlow,
                "no `IP` (not an L3 flow event)",
            ));
        };
        let mut src = parse_ip("IP.source", text(ip, "source"))?;
        let mut dst = parse_ip("IP.destination", text(ip, "destination"))?;
        let l4 = flow_v.get("l4").cloned().unwrap_or(Value::Null);
        let (protocol, mut sport, mut dport) = if l4.get("TCP").is_some() {
            (
                6,
                port(&l4, "TCP", "source_port"),
                port(&l4, "TCP", "destination_port"),
            )
        } else if l4.get("UDP").is_some() {
            (
                17,
                port(&l4, "UDP", "source_port"),
                port(&l4, "UDP", "destination_port"),
            )
        } else if l4.get("SCTP").is_some() {
            (
                132,
                port(&l4, "SCTP", "source_port"),
                port(&l4, "SCTP", "destination_port"),
            )
        } else if l4.get("ICMPv4").is_some() {
            (1, 0, port(&l4, "ICMPv4", "type"))
        } else if l4.get("ICMPv6").is_some() {
            (58, 0, port(&l4, "ICMPv6", "type"))
        } else {
            (0, 0, 0)
        };
        let reply = flow_v
            .get("is_reply")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let (mut src_ep, mut dst_ep) = ("source", "destination");
        if reply {
            std::mem::swap(&mut src, &mut dst);
            std::mem::swap(&mut sport, &mut dport);
            std::mem::swap(&mut src_ep, &mut dst_ep);
        }
        let mut flow = Flow::new(FlowSource::Hubble, src, dst, protocol);
        flow.src_port = sport;
        flow.dst_port = dport;
        if reply {
            flow.packets_in = 1;
        } else {
            flow.packets_out = 1;
        }
        let time = text(flow_v, "time");
        flow.start_ms = parse_rfc3339(time).ok_or_else(|| {
            Skip::malformed(format!("`time` is not an RFC 3339 time: `{}`", clip(time)))
        })?;
        flow.end_ms = flow.start_ms;
        let verdict = text(flow_v, "verdict");
        flow.observed = match verdict {
            "FORWARDED" | "REDIRECTED" | "TRACED" | "TRANSLATED" | "AUDIT" => {
                Some(Observed::Accepted)
            }
            "DROPPED" | "DENIED" | "ERROR" => Some(Observed::Rejected),
            _ => None,
        };
        if !verdict.is_empty() {
            flow.attr("verdict", verdict);
        }
        flow.direction = match text(flow_v, "traffic_direction") {
            "INGRESS" => Some(Direction::Ingress),
            "EGRESS" => Some(Direction::Egress),
            _ => None,
        };
        for (side, key) in [("src", src_ep), ("dst", dst_ep)] {
            if let Some(ep) = flow_v.get(key) {
                for field in ["namespace", "pod_name"] {
                    let v = text(ep, field);
                    if !v.is_empty() {
                        flow.attr(&format!("{side}_{field}"), v);
                    }
                }
            }
        }
        for key in ["drop_reason_desc", "node_name"] {
            let v = text(flow_v, key);
            if !v.is_empty() {
                flow.attr(key, v);
            }
        }
        if let Some(q) = flow_v
            .get("destination_names")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
        {
            flow.hostname = Some(q.trim_end_matches('.').to_string());
        }
        out.push(flow);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
