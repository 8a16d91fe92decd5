//! Findings as OCSF Detection Finding events (class 2004, OCSF 1.3.0,
//! the version Amazon Security Lake takes). Each event is the finding's
//! current state: activity Create, status New, and `count` saying how many
//! times detection raised or updated it. Valid against the OCSF 1.3.0
//! schema (the tests run the validator on every kind).

use std::net::IpAddr;

use cordon_core::ip::is_internet;
use serde_json::{Value, json};

use crate::finding::{Entity, Finding, Severity};
use crate::kb::{Kb, kill_chain_phase_name};

/// OCSF schema version the mapping follows.
pub const OCSF_VERSION: &str = "1.3.0";

/// OCSF `severity_id` and its caption.
pub fn severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// OCSF `attacks`: one entry per technique and tactic.
pub fn attacks(techniques: &[String], kb: &Kb) -> Vec<Value> {
    techniques
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
        .collect()
}

/// OCSF `kill_chain`: the stage's Cyber Kill Chain phase.
pub fn kill_chain(stage: &str, kb: &Kb) -> Vec<Value> {
    let id = kb
        .stages
        .iter()
        .find(|s| s.id == stage)
        .map_or(99, |s| s.kill_chain_phase);
    let name = if id == 99 {
        stage
    } else {
        kill_chain_phase_name(id)
    };
    vec![json!({"phase_id": id, "phase": name})]
}

/// Whether `ip`, an end of one of `f`'s flows, is outside the organisation
/// (on the internet, or a vendor's).
fn outside(ip: IpAddr, f: &Finding) -> bool {
    let vendor = |e: &Entity| e.ip == Some(ip) && e.vendor.is_some();
    is_internet(ip) || vendor(&f.src_entity) || vendor(&f.dst_entity)
}

/// OCSF `connection_info.direction_id`: 1 inbound, 2 outbound, 3 lateral.
fn direction_id(src: IpAddr, dst: IpAddr, f: &Finding) -> u8 {
    match (outside(src, f), outside(dst, f)) {
        (true, false) => 1,
        (false, true) => 2,
        (false, false) => 3,
        (true, true) => 99,
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

/// OCSF `finding_info` of `f`: id, title, kind, times, ATT&CK, kill chain.
pub fn finding_info(f: &Finding, kb: &Kb) -> Value {
    json!({
        "uid": f.id,
        "title": f.title,
        "desc": f.evidence.summary,
        "types": [f.kind],
        "first_seen_time": f.first_ms,
        "last_seen_time": f.last_ms,
        "attacks": attacks(&f.techniques, kb),
        "kill_chain": kill_chain(&f.stage, kb),
        "analytic": {"name": f.kind, "type_id": 1, "type": "Rule"},
    })
}

/// The OCSF Detection Finding for `f`.
pub fn detection_finding(f: &Finding, kb: &Kb) -> Value {
    let evidences: Vec<Value> = f
        .evidence
        .flows
        .iter()
        .map(|r| {
            let direction = direction_id(r.src_ip, r.dst_ip, f);
            let mut connection = json!({
                "protocol_num": r.protocol,
                "direction_id": direction,
            });
            if let Some(name) = cordon_core::Protocol(r.protocol).keyword() {
                connection["protocol_name"] = json!(name);
            }
            if direction == 99 {
                connection["direction"] = json!("External");
            }
            json!({
                "src_endpoint": {"ip": r.src_ip.to_string(), "port": r.src_port},
                "dst_endpoint": {"ip": r.dst_ip.to_string(), "port": r.dst_port},
                "connection_info": connection,
                "data": {"bytes_out": r.bytes_out, "bytes_in": r.bytes_in, "start_ms": r.start_ms, "verdict": r.verdict, "rule": r.rule},
            })
        })
        .collect();
    let (severity_id, severity) = severity(f.severity);
    json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200_401,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "time": f.last_ms,
        "start_time": f.first_ms,
        "end_time": f.last_ms,
        "count": f.updates.max(1),
        "confidence_score": (f.confidence * 100.0).round() as u64,
        "risk_score": f.score.round() as u64,
        "message": f.evidence.summary,
        "finding_info": finding_info(f, kb),
        "evidences": evidences,
        "remediation": {"desc": f.action},
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "Cordon", "vendor_name": "Cordon", "version": env!("CARGO_PKG_VERSION")},
        },
        "unmapped": {
            "src": endpoint(&f.src_entity),
            "dst": endpoint(&f.dst_entity),
            "stage": f.stage,
            "controls": f.controls,
            "stopped_by": f.stopped_by,
            "facts": f.evidence.facts,
        },
    })
}
