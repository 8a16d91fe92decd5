//! The detectors and what they share.

mod beacon;
mod brute;
pub(crate) mod exfil;
mod intel;
pub(crate) use intel::IntelMatches;
mod lateral;
mod longconn;
mod scan;
mod vendor;
mod violation;

use std::net::IpAddr;

use cordon_core::{FindingKind, Verdict};
use cordon_flow::{Flow, FlowSource, Observed};

use crate::config::Config;
use crate::finding::{Entity, Finding, FlowRef, Severity};
use crate::intel::Intel;

/// A streaming detector.
pub trait Detector: Send {
    /// Name as in the config file.
    fn name(&self) -> &'static str;
    /// Look at one flow; report findings into `out`.
    fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>);
    /// Flow time has reached `now_ms`: report on windows that closed.
    fn tick(&mut self, _now_ms: i64, _out: &mut Vec<Finding>) {}
    /// The input ended: report on everything still open.
    fn finish(&mut self, _out: &mut Vec<Finding>) {}
    /// Score what is held now without closing any window, for a caller
    /// that follows a live input and cannot wait for the window's end
    /// (detectors that score as flows arrive need nothing here).
    fn interim(&mut self, _out: &mut Vec<Finding>) {}
    /// Keys held now.
    fn state(&self) -> usize;
    /// Keys evicted to stay within bounds.
    fn evicted(&self) -> u64 {
        0
    }
    /// Whether the detector looks at flows to addresses that are local
    /// only (multicast, broadcast, link-local: see
    /// [`cordon_core::ip::is_local_only`]). Those are never an attacker's
    /// far end, so detectors of attack paths do not see them; policy
    /// violations and threat-intel matches still do.
    fn sees_local_only(&self) -> bool {
        false
    }
    /// Whether the detector reads snapshots of connections still open
    /// (only the long-connection detector: anything that counts
    /// connections or bytes would count a snapshot's again).
    fn sees_snapshots(&self) -> bool {
        false
    }
}

/// Every enabled detector for `config`.
pub fn all(config: &Config, intel: Option<Intel>) -> Vec<Box<dyn Detector>> {
    let mut v: Vec<Box<dyn Detector>> = Vec::new();
    if config.beaconing.common.enabled {
        v.push(Box::new(beacon::Beacons::new(
            config.beaconing.clone(),
            std::sync::Arc::clone(&config.services),
        )));
    }
    if config.long_connections.common.enabled {
        v.push(Box::new(longconn::LongConnections::new(
            config.long_connections.clone(),
        )));
    }
    if config.exfiltration.common.enabled {
        v.push(Box::new(exfil::Exfiltration::new(
            config.exfiltration.clone(),
        )));
    }
    if config.vendors.common.enabled {
        v.push(Box::new(vendor::Vendors::new(config.vendors.clone())));
    }
    if config.lateral.common.enabled {
        v.push(Box::new(lateral::Lateral::new(config.lateral.clone())));
    }
    if config.scan.common.enabled {
        v.push(Box::new(scan::Scans::new(config.scan.clone())));
    }
    if config.brute_force.common.enabled {
        v.push(Box::new(brute::BruteForce::new(config.brute_force.clone())));
    }
    if let Some(intel) = intel.filter(|_| config.intel.enabled) {
        v.push(Box::new(intel::IntelMatches::new(
            intel,
            config.intel.clone(),
        )));
    }
    if config.violations.common.enabled {
        v.push(Box::new(violation::Violations::new(
            config.violations.clone(),
        )));
    }
    v
}

/// Whether `ip` is inside the organisation: private, loopback, link-local
/// or ULA space (a bare capture has nothing better to go on), or a known
/// workload.
pub(crate) fn internal(ip: IpAddr) -> bool {
    cordon_core::ip::is_private(ip)
        || ip.is_loopback()
        || match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_unicast_link_local(),
        }
}

/// Whether the source side of `f` is internal (by inventory or address).
pub(crate) fn src_internal(f: &Flow) -> bool {
    f.enrichment
        .as_ref()
        .is_some_and(|e| e.src_workload.is_some())
        || internal(f.src_ip)
}

/// Whether the destination side of `f` is internal. A gateway that
/// refused a name before resolving it records no address (`0.0.0.0`):
/// the name is the destination, and a name is not internal unless the
/// inventory says so. (Refused callbacks to a C2 name are beacons too.)
pub(crate) fn dst_internal(f: &Flow) -> bool {
    if f.dst_ip.is_unspecified() && f.hostname.is_some() {
        return f
            .enrichment
            .as_ref()
            .is_some_and(|e| e.dst_workload.is_some());
    }
    f.enrichment
        .as_ref()
        .is_some_and(|e| e.dst_workload.is_some())
        || internal(f.dst_ip)
}

/// Whether `f` leaves the organisation without a rule sanctioning it and
/// without the detector's allowlist naming its destination: what the
/// outbound detectors (beaconing, exfiltration) look at.
pub(crate) fn unsanctioned_outbound(f: &Flow, allow: &crate::config::Allowlist) -> bool {
    src_internal(f)
        && !dst_internal(f)
        && !allowed_by_rule(f)
        && !allow.contains(f.dst_ip, f.hostname.as_deref())
}

/// Whether the policy allows `f` by an explicit rule (sanctioned traffic).
pub(crate) fn allowed_by_rule(f: &Flow) -> bool {
    f.enrichment
        .as_ref()
        .is_some_and(|e| e.verdict == Verdict::Allow && e.rule.is_some())
}

/// The vendor on either side of `f`, if enriched.
pub(crate) fn vendor(f: &Flow) -> Option<&str> {
    f.enrichment.as_ref().and_then(|e| e.vendor.as_deref())
}

/// Whether the source records both directions of a connection in one
/// record (so `bytes_in` = 0 means nothing came back).
pub(crate) fn two_way(f: &Flow) -> bool {
    matches!(
        f.source,
        FlowSource::Zeek
            | FlowSource::Gateway
            | FlowSource::Agent
            | FlowSource::Hubble
            | FlowSource::Azure
    )
}

/// Whether the connection failed: rejected, refused, or never answered.
pub(crate) fn failed(f: &Flow) -> bool {
    if f.observed == Some(Observed::Rejected) {
        return true;
    }
    if let Some(state) = f.get_attr("conn_state") {
        return matches!(
            state,
            "REJ" | "S0" | "RSTR" | "RSTOS0" | "SH" | "OTH" | "S1" | "RSTO"
        );
    }
    if f.protocol != 6 {
        return false;
    }
    match f.source {
        // Both directions in one record: no answer means no connection.
        FlowSource::Zeek
        | FlowSource::Gateway
        | FlowSource::Agent
        | FlowSource::Hubble
        | FlowSource::Azure => f.bytes_in == 0 && f.packets_in == 0,
        // One direction per record: a SYN or two and nothing more.
        _ => f.packets_out <= 2 && f.bytes_out <= 180,
    }
}

/// One side of `f` as a finding entity.
pub(crate) fn entity(f: &Flow, source: bool) -> Entity {
    let e = f.enrichment.as_deref();
    let (ip, workload, groups) = if source {
        (
            f.src_ip,
            e.and_then(|e| e.src_workload.as_deref()),
            e.map(|e| &e.src_groups),
        )
    } else {
        (
            f.dst_ip,
            e.and_then(|e| e.dst_workload.as_deref()),
            e.map(|e| &e.dst_groups),
        )
    };
    let groups: Vec<String> = groups
        .map(|g| g.iter().map(|g| g.to_string()).collect())
        .unwrap_or_default();
    // The vendor belongs to whichever side is external.
    let external = if source {
        !src_internal(f)
    } else {
        !dst_internal(f)
    };
    Entity {
        ip: Some(ip),
        workload: workload.map(str::to_string),
        groups,
        vendor: external.then(|| vendor(f).map(str::to_string)).flatten(),
        hostname: if source { None } else { f.hostname.clone() },
    }
}

/// The rule that stops `f` when enforced, if the policy denies it.
pub(crate) fn stopped_by(f: &Flow) -> Option<String> {
    let e = f.enrichment.as_ref()?;
    match e.verdict {
        Verdict::Deny | Verdict::WouldDeny => Some(
            e.rule
                .as_deref()
                .map_or_else(|| "default deny".to_string(), str::to_string),
        ),
        _ => None,
    }
}

/// A finding of `kind` about `f`, identified by `key` (the same key later
/// updates the same finding). The knowledge base fills in the mapping.
pub(crate) fn finding(
    kind: FindingKind,
    key: &str,
    f: &Flow,
    score: f64,
    summary: String,
) -> Finding {
    let mut out = Finding::scored(kind, key, score, f.start_ms, summary);
    out.src_entity = entity(f, true);
    out.dst_entity = entity(f, false);
    out.src = out.src_entity.label();
    out.dst = out.dst_entity.label();
    out.port = Some(f.dst_port);
    out.last_ms = f.end_ms.max(f.start_ms);
    out.evidence.flows = vec![FlowRef::from(f)];
    out.stopped_by = stopped_by(f);
    out
}

/// Lower `f`'s severity to `max` (recording why) or say why it stays.
pub(crate) fn calibrate(f: &mut Finding, (max, why): (Severity, String)) {
    if f.severity > max {
        f.severity = max;
        f.score = f.score.min(max.highest_score());
        f.confidence = (f.score / 100.0).clamp(0.05, 0.99);
    }
    fact(f, "severity_reason", why);
}

/// Add a measured number to a finding's evidence.
pub(crate) fn fact(f: &mut Finding, key: &str, value: impl Into<serde_json::Value>) {
    f.evidence.facts.insert(key.to_string(), value.into());
}

/// A few sample flows kept with detector state.
#[derive(Clone, Debug, Default)]
pub(crate) struct Samples(Vec<FlowRef>);

impl Samples {
    const MAX: usize = 5;

    pub(crate) fn add(&mut self, f: &Flow) {
        if self.0.len() < Self::MAX {
            self.0.push(FlowRef::from(f));
        }
    }

    pub(crate) fn into_evidence(self, finding: &mut Finding) {
        for r in self.0 {
            if !finding.evidence.flows.contains(&r) {
                finding.evidence.flows.push(r);
            }
        }
        finding
            .evidence
            .flows
            .truncate(crate::finding::MAX_EVIDENCE_FLOWS);
    }
}

/// Admin protocols and the ATT&CK technique for moving laterally over them.
pub(crate) fn admin_protocol(port: u16) -> Option<(&'static str, &'static str)> {
    Some(match port {
        22 => ("SSH", "T1021.004"),
        3389 => ("RDP", "T1021.001"),
        445 | 139 => ("SMB", "T1021.002"),
        5985 | 5986 => ("WinRM", "T1021.006"),
        135 => ("RPC/DCOM", "T1021.003"),
        5900..=5903 => ("VNC", "T1021.005"),
        5432 => ("PostgreSQL", "T1021"),
        3306 => ("MySQL", "T1021"),
        1433 => ("SQL Server", "T1021"),
        1521 => ("Oracle", "T1021"),
        27017 => ("MongoDB", "T1021"),
        6379 => ("Redis", "T1021"),
        _ => return None,
    })
}

/// The C2 technique for traffic on `port`/`protocol`, and whether the
/// channel is encrypted by convention.
pub(crate) fn c2_technique(protocol: u8, port: u16) -> (&'static str, bool) {
    match (protocol, port) {
        // UDP 443 is QUIC (HTTP/3).
        (6, 443 | 8443) | (17, 443) => ("T1071.001", true),
        (6, 80 | 8080 | 8000) => ("T1071.001", false),
        (17 | 6, 53) => ("T1071.004", false),
        (6, 25 | 587 | 465 | 993 | 143 | 110 | 995) => {
            ("T1071.003", matches!(port, 465 | 993 | 995))
        }
        (6, 21 | 989 | 990) => ("T1071.002", port != 21),
        (6, 22) => ("T1071", true),
        (6 | 17, _) => ("T1071", false),
        _ => ("T1095", false),
    }
}

pub(crate) use crate::finding::human_bytes as bytes;

/// The destination as a key: hostname when known, else the address.
pub(crate) fn dst_key(f: &Flow) -> String {
    match &f.hostname {
        Some(h) => h.clone(),
        None => f.dst_ip.to_string(),
    }
}

#[cfg(test)]
mod tests;
