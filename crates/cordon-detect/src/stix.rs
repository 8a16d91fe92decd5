//! Findings as a STIX 2.1 bundle: Cordon's `identity`, one `attack-pattern`
//! per technique (with its `mitre-attack` external reference), and per
//! finding an `observed-data` over the network-traffic it saw, an
//! `indicator` for the external endpoint when there is one, a `sighting`,
//! and `relationship`s tying the indicator to the techniques it indicates.
//!
//! Ids are deterministic (UUIDv5-shaped from a hash of what they name), so
//! exporting the same findings twice gives the same objects.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cordon_flow::time::format_rfc3339;
use serde_json::{Value, json};

use crate::detectors::internal;
use crate::finding::Finding;
use crate::kb::Kb;

fn hash64(seed: u64, text: &str) -> u64 {
    text.bytes().fold(seed, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A STIX id of `kind` for `name`: the same name always gives the same id.
pub fn stix_id(kind: &str, name: &str) -> String {
    let key = format!("{kind}|{name}");
    let a = hash64(0xcbf2_9ce4_8422_2325, &key);
    let b = hash64(0x8422_2325_cbf2_9ce4, &key);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x50; // version 5
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{kind}--{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn ts(ms: i64) -> String {
    // STIX timestamps are UTC with a Z; keep milliseconds.
    let s = format_rfc3339(ms);
    s.replace("+00:00", "Z")
}

fn address(ip: IpAddr) -> (String, Value) {
    let kind = if ip.is_ipv4() {
        "ipv4-addr"
    } else {
        "ipv6-addr"
    };
    let id = stix_id(kind, &ip.to_string());
    (
        id.clone(),
        json!({"type": kind, "spec_version": "2.1", "id": id, "value": ip.to_string()}),
    )
}

/// The bundle for `findings`, created at `now_ms`.
pub fn bundle(findings: &[Finding], kb: &Kb, now_ms: i64) -> Value {
    let created = ts(now_ms);
    let identity_id = stix_id("identity", "cordon");
    let mut objects: BTreeMap<String, Value> = BTreeMap::new();
    objects.insert(
        identity_id.clone(),
        json!({
            "type": "identity", "spec_version": "2.1", "id": identity_id,
            "created": created, "modified": created,
            "name": "Cordon", "identity_class": "system",
        }),
    );
    for f in findings {
        let mut pattern_ids = Vec::new();
        for t in f.techniques.iter().filter_map(|t| kb.techniques.get(t)) {
            let id = stix_id("attack-pattern", &t.id);
            let phases: Vec<Value> = t
                .tactics
                .iter()
                .filter_map(|x| kb.tactics.get(x))
                .map(|x| json!({"kill_chain_name": "mitre-attack", "phase_name": x.shortname}))
                .collect();
            objects.entry(id.clone()).or_insert_with(|| {
                json!({
                    "type": "attack-pattern", "spec_version": "2.1", "id": id,
                    "created": created, "modified": created, "created_by_ref": identity_id,
                    "name": t.name,
                    "external_references": [{"source_name": "mitre-attack", "external_id": t.id, "url": t.url()}],
                    "kill_chain_phases": phases,
                })
            });
            pattern_ids.push(id);
        }
        // The observed traffic.
        let mut refs = Vec::new();
        let mut traffic_refs = Vec::new();
        for r in &f.evidence.flows {
            let (src_id, src) = address(r.src_ip);
            let (dst_id, dst) = address(r.dst_ip);
            objects.insert(src_id.clone(), src);
            objects.insert(dst_id.clone(), dst);
            let protocol = match r.protocol {
                6 => "tcp",
                17 => "udp",
                1 => "icmp",
                _ => "ip",
            };
            let nt_id = stix_id(
                "network-traffic",
                &format!(
                    "{}:{}>{}:{}/{}@{}",
                    r.src_ip, r.src_port, r.dst_ip, r.dst_port, r.protocol, r.start_ms
                ),
            );
            objects.insert(
                nt_id.clone(),
                json!({
                    "type": "network-traffic", "spec_version": "2.1", "id": nt_id,
                    "src_ref": src_id, "dst_ref": dst_id,
                    "src_port": r.src_port, "dst_port": r.dst_port,
                    "protocols": ["ipv4", protocol],
                    "src_byte_count": r.bytes_out, "dst_byte_count": r.bytes_in,
                    "start": ts(r.start_ms),
                }),
            );
            for id in [src_id, dst_id, nt_id.clone()] {
                if !refs.contains(&id) {
                    refs.push(id);
                }
            }
            traffic_refs.push(nt_id);
        }
        if refs.is_empty() {
            continue;
        }
        let od_id = stix_id("observed-data", &f.id);
        let first = ts(f.first_ms);
        let last = ts(f.last_ms.max(f.first_ms));
        objects.insert(
            od_id.clone(),
            json!({
                "type": "observed-data", "spec_version": "2.1", "id": od_id,
                "created": created, "modified": created, "created_by_ref": identity_id,
                "first_observed": first, "last_observed": last,
                "number_observed": traffic_refs.len().max(1),
                "object_refs": refs,
            }),
        );
        // An indicator for the external endpoint, when there is one.
        let external = [f.dst_entity.ip, f.src_entity.ip]
            .into_iter()
            .flatten()
            .find(|ip| !internal(*ip));
        let pattern = match (&f.dst_entity.hostname, external) {
            (Some(h), _) if f.dst_entity.ip.is_some_and(|ip| !internal(ip)) => Some(format!(
                "[domain-name:value = '{}']",
                h.replace('\'', "\\'")
            )),
            (_, Some(ip)) => Some(format!(
                "[{}:value = '{ip}']",
                if ip.is_ipv4() {
                    "ipv4-addr"
                } else {
                    "ipv6-addr"
                }
            )),
            _ => None,
        };
        let sighted = if let Some(pattern) = pattern {
            let ind_id = stix_id("indicator", &format!("{}|{pattern}", f.id));
            objects.insert(
                ind_id.clone(),
                json!({
                    "type": "indicator", "spec_version": "2.1", "id": ind_id,
                    "created": created, "modified": created, "created_by_ref": identity_id,
                    "name": format!("{}: {} → {}", f.title, f.src, f.dst),
                    "description": f.evidence.summary,
                    "indicator_types": ["malicious-activity"],
                    "pattern": pattern, "pattern_type": "stix",
                    "valid_from": first,
                    "confidence": (f.confidence * 100.0).round() as u64,
                    "labels": [f.kind, f.severity.as_str()],
                }),
            );
            for ap in &pattern_ids {
                let rel_id = stix_id("relationship", &format!("{ind_id}>{ap}"));
                objects.insert(
                    rel_id.clone(),
                    json!({
                        "type": "relationship", "spec_version": "2.1", "id": rel_id,
                        "created": created, "modified": created, "created_by_ref": identity_id,
                        "relationship_type": "indicates",
                        "source_ref": ind_id, "target_ref": ap,
                    }),
                );
            }
            Some(ind_id)
        } else {
            pattern_ids.first().cloned()
        };
        if let Some(target) = sighted {
            let s_id = stix_id("sighting", &f.id);
            objects.insert(
                s_id.clone(),
                json!({
                    "type": "sighting", "spec_version": "2.1", "id": s_id,
                    "created": created, "modified": created, "created_by_ref": identity_id,
                    "first_seen": first, "last_seen": last,
                    "count": f.updates.max(1),
                    "sighting_of_ref": target,
                    "observed_data_refs": [od_id],
                    "where_sighted_refs": [identity_id],
                    "description": f.evidence.summary,
                }),
            );
        }
    }
    json!({
        "type": "bundle",
        "id": stix_id("bundle", &format!("{now_ms}|{}", findings.len())),
        "objects": objects.into_values().collect::<Vec<_>>(),
    })
}
