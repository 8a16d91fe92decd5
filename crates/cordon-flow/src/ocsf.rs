//! Flows as OCSF Network Activity events (class 4001, OCSF 1.3.0, the
//! version Amazon Security Lake takes). The policy's decision is carried
//! by the `security_control` profile, declared in `metadata.profiles`:
//! `action`/`action_id` (allowed or denied), `disposition` (allowed,
//! blocked, or would be blocked in audit mode) and `firewall_rule` (the
//! deciding rule).

use serde_json::{Value, json};

use crate::flow::{Direction, Flow, Observed, Verdict};

/// OCSF schema version the mapping follows.
pub const OCSF_VERSION: &str = "1.3.0";

fn protocol_name(p: u8) -> &'static str {
    cordon_core::Protocol(p).keyword().unwrap_or("other")
}

/// The OCSF Network Activity event for `flow`.
pub fn network_activity(flow: &Flow) -> Value {
    let e = flow.enrichment.as_ref();
    // action_id: 1 Allowed, 2 Denied; from the policy verdict when known,
    // else from what the device observed.
    let (action_id, action) = match (e.map(|e| e.verdict), flow.observed) {
        (Some(Verdict::Deny), _) => (2, "Denied"),
        (Some(_), _) => (1, "Allowed"),
        (None, Some(Observed::Rejected)) => (2, "Denied"),
        (None, Some(Observed::Accepted)) => (1, "Allowed"),
        (None, None) => (0, "Unknown"),
    };
    let direction_id = match flow.direction {
        Some(Direction::Ingress) => 1,
        Some(Direction::Egress) => 2,
        None => 0,
    };
    let mut src = json!({"ip": flow.src_ip.to_string(), "port": flow.src_port});
    let mut dst = json!({"ip": flow.dst_ip.to_string(), "port": flow.dst_port});
    if let Some(h) = &flow.hostname {
        dst["hostname"] = json!(h);
    }
    if let Some(e) = e {
        if let Some(w) = &e.src_workload {
            src["name"] = json!(w);
        }
        if let Some(w) = &e.dst_workload {
            dst["name"] = json!(w);
        }
    }
    let mut event = json!({
        "class_uid": 4001,
        "class_name": "Network Activity",
        "category_uid": 4,
        "category_name": "Network Activity",
        "activity_id": 6,
        "activity_name": "Traffic",
        "type_uid": 400_106,
        "type_name": "Network Activity: Traffic",
        "severity_id": 1,
        "severity": "Informational",
        "time": flow.end_ms,
        "start_time": flow.start_ms,
        "end_time": flow.end_ms,
        "action_id": action_id,
        "action": action,
        "src_endpoint": src,
        "dst_endpoint": dst,
        "connection_info": {
            "protocol_num": flow.protocol,
            "protocol_name": protocol_name(flow.protocol),
            "direction_id": direction_id,
        },
        "traffic": {
            "bytes_out": flow.bytes_out,
            "bytes_in": flow.bytes_in,
            "bytes": flow.bytes_out.saturating_add(flow.bytes_in),
            "packets_out": flow.packets_out,
            "packets_in": flow.packets_in,
            "packets": flow.packets_out.saturating_add(flow.packets_in),
        },
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["security_control"],
            "product": {"name": "Cordon", "vendor_name": "Cordon"},
            "log_name": flow.source.as_str(),
        },
    });
    if let Some(e) = e {
        // disposition_id: 1 Allowed, 2 Blocked, 15 Detected (audit mode:
        // the policy would have blocked it).
        let (disposition_id, disposition) = match e.verdict {
            Verdict::Allow => (1, "Allowed"),
            Verdict::Deny => (2, "Blocked"),
            Verdict::WouldDeny => (15, "Detected"),
        };
        event["disposition_id"] = json!(disposition_id);
        event["disposition"] = json!(disposition);
        event["firewall_rule"] = json!({
            "name": e.rule.as_deref().unwrap_or("default"),
            "desc": e.verdict.to_string(),
        });
        event["unmapped"] = json!({
            "cordon": {
                "verdict": e.verdict,
                "rule": e.rule,
                "src_groups": e.src_groups,
                "dst_groups": e.dst_groups,
                "vendor": e.vendor,
            }
        });
    }
    event
}
