//! Findings as OCSF Detection Finding events (class 2004, OCSF 1.3).

use serde_json::{Value, json};

use crate::finding::{Finding, Severity};
use crate::kb::Kb;

/// OCSF schema version the mapping follows.
pub const OCSF_VERSION: &str = "1.3.0";

fn severity_id(s: Severity) -> u8 {
    match s {
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

fn endpoint(e: &crate::finding::Entity) -> Value {
    let mut v = json!({});
    if let Some(ip) = e.ip {
        v["ip"] = json!(ip.to_string());
    }
    if let Some(w) = &e.workload {
        v["name"] = json!(w);
    }
    if let Some(h) = &e.hostname {
        v["hostname"] = json!(h);
    }
    v
}

/// The OCSF Detection Finding for `f`.
pub fn detection_finding(f: &Finding, kb: &Kb) -> Value {
    let attacks: Vec<Value> = f
        .techniques
        .iter()
        .filter_map(|t| kb.techniques.get(t))
        .flat_map(|t| {
            t.tactics.iter().map(move |tactic| {
                json!({
                    "technique": {"uid": t.id, "name": t.name, "src_url": t.url()},
                    "tactic": {"uid": tactic, "name": kb.tactics.get(tactic).map(|x| x.name.as_str())},
                    "version": kb.attack_version,
                })
            })
        })
        .collect();
    let evidences: Vec<Value> = f
        .evidence
        .flows
        .iter()
        .map(|r| {
            json!({
                "src_endpoint": {"ip": r.src_ip.to_string(), "port": r.src_port},
                "dst_endpoint": {"ip": r.dst_ip.to_string(), "port": r.dst_port},
                "connection_info": {"protocol_num": r.protocol},
                "data": {"bytes_out": r.bytes_out, "bytes_in": r.bytes_in, "start_ms": r.start_ms, "verdict": r.verdict, "rule": r.rule},
            })
        })
        .collect();
    json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": if f.updates > 1 { 2 } else { 1 },
        "activity_name": if f.updates > 1 { "Update" } else { "Create" },
        "type_uid": if f.updates > 1 { 200_402 } else { 200_401 },
        "severity_id": severity_id(f.severity),
        "severity": f.severity.as_str(),
        "status_id": 1,
        "time": f.last_ms,
        "confidence_score": (f.confidence * 100.0).round() as u64,
        "risk_score": f.score.round() as u64,
        "message": f.evidence.summary,
        "finding_info": {
            "uid": f.id,
            "title": f.title,
            "desc": f.evidence.summary,
            "types": [f.kind],
            "first_seen_time": f.first_ms,
            "last_seen_time": f.last_ms,
            "attacks": attacks,
            "kill_chain": [{"phase": f.stage}],
            "analytic": {"name": f.kind, "type_id": 1, "type": "Rule"},
        },
        "evidences": evidences,
        "remediation": {"desc": f.action},
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "Cordon", "vendor_name": "Cordon", "version": env!("CARGO_PKG_VERSION")},
        },
        "unmapped": {
            "src": endpoint(&f.src_entity),
            "dst": endpoint(&f.dst_entity),
            "controls": f.controls,
            "stopped_by": f.stopped_by,
            "facts": f.evidence.facts,
        },
    })
}
