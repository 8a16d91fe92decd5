//! Findings as a STIX 2.1 bundle: Cordon's `identity`, one `attack-pattern`
//! per technique (with its `mitre-attack` external reference), and per
//! finding an `observed-data` over the network-traffic it saw, an
//! `indicator` for the external endpoint when there is one, a `sighting`,
//! and `relationship`s tying the indicator to the techniques it indicates.
//!
//! Ids follow STIX 2.1 strictly (`stix2-validator --strict` accepts the
//! bundle). Cyber-observables (addresses, domain names, network traffic)
//! have the deterministic ids of §2.9: UUIDv5 in the STIX namespace over
//! the canonical JSON of their id-contributing properties, so any tool
//! mints the same id for the same address. Every other object has a
//! version-4 UUID whose 122 free bits are taken from a SHA-1 of what it
//! names, so exporting the same findings twice gives the same objects.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cordon_flow::time::format_rfc3339;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::detectors::internal;
use crate::finding::Finding;
use crate::kb::Kb;

/// The namespace of STIX 2.1 deterministic cyber-observable ids (§2.9).
const SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00ab_edb4_aa42_466c_9c01_fed2_3315_a9b7);

/// Cordon's namespace for the names its other ids are derived from.
const CORDON_NAMESPACE: Uuid = Uuid::from_u128(0x6c1e_5d0a_4b7e_4f3c_9a2d_3e8f_1b7c_5a90);

/// A STIX id of `kind` (a domain or relationship object, a bundle) for
/// `name`: a version-4 UUID whose free bits come from a hash of the name.
pub fn stix_id(kind: &str, name: &str) -> String {
    let hashed = Uuid::new_v5(&CORDON_NAMESPACE, format!("{kind}|{name}").as_bytes());
    let id = uuid::Builder::from_random_bytes(hashed.into_bytes()).into_uuid();
    format!("{kind}--{id}")
}

/// The deterministic id of a cyber-observable (§2.9): `contributing` holds
/// its id-contributing properties; serde_json writes object keys sorted
/// and without spaces, which is their canonical (RFC 8785) form for the
/// strings, integers and lists used here.
pub fn sco_id(kind: &str, contributing: &Value) -> String {
    let canonical = contributing.to_string();
    format!(
        "{kind}--{}",
        Uuid::new_v5(&SCO_NAMESPACE, canonical.as_bytes())
    )
}

/// A STIX timestamp of a domain object: UTC with a Z, to the millisecond
/// (`created` and `modified` must be).
pub fn ts(ms: i64) -> String {
    format_rfc3339(ms).replace("+00:00", "Z")
}

/// A timestamp inside a cyber-observable: the fraction of a second without
/// trailing zeros (none when whole), the form STIX libraries write, so a
/// network-traffic's `start` hashes to the same deterministic id.
fn sco_ts(ms: i64) -> String {
    let s = format_rfc3339(ms).replace("+00:00", "Z");
    match s.split_once('.') {
        Some((whole, fraction)) => {
            let digits = fraction.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{whole}Z")
            } else {
                format!("{whole}.{digits}Z")
            }
        }
        None => s,
    }
}

fn address(ip: IpAddr) -> (String, Value) {
    let kind = if ip.is_ipv4() {
        "ipv4-addr"
    } else {
        "ipv6-addr"
    };
    let id = sco_id(kind, &json!({"value": ip.to_string()}));
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
                    "external_references": [{"source_name": "mitre-attack", "external_id": t.id}],
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
            let mut traffic = json!({
                "src_ref": src_id, "dst_ref": dst_id,
                "src_port": r.src_port, "dst_port": r.dst_port,
                "protocols": [if r.src_ip.is_ipv4() { "ipv4" } else { "ipv6" }, protocol],
                "start": sco_ts(r.start_ms),
            });
            let nt_id = sco_id("network-traffic", &traffic);
            traffic["type"] = json!("network-traffic");
            traffic["spec_version"] = json!("2.1");
            traffic["id"] = json!(nt_id);
            traffic["src_byte_count"] = json!(r.bytes_out);
            traffic["dst_byte_count"] = json!(r.bytes_in);
            objects.insert(nt_id.clone(), traffic);
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
