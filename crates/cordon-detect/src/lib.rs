//! Cordon's threat detection.
//!
//! Detectors read flows one at a time, in time order, and keep only bounded
//! state (see [`bounded`]): the same engine runs while flows are ingested
//! and over stored history. Each finding carries its evidence and is mapped
//! through the knowledge base ([`kb`]) to ATT&CK techniques, a kill-chain
//! stage and compliance controls.
//!
//! ```
//! use cordon_detect::{Engine, config::Config, kb::Kb};
//! use cordon_flow::{Flow, FlowSource};
//!
//! let mut engine = Engine::new(Config::default(), Kb::embedded().unwrap(), None);
//! // An internal host tries SSH on 40 neighbours within a minute.
//! for i in 0..40u8 {
//!     let mut f = Flow::new(FlowSource::Zeek, "10.0.4.10".parse().unwrap(),
//!                           [10, 0, 1, i].into(), 6);
//!     f.start_ms = 1_700_000_000_000 + i64::from(i) * 1000;
//!     f.end_ms = f.start_ms;
//!     f.dst_port = 22;
//!     engine.observe(&f);
//! }
//! let findings = engine.finish();
//! assert_eq!(findings[0].kind, cordon_core::FindingKind::ServiceDiscovery);
//! assert_eq!(findings[0].techniques, ["T1046"]);
//! ```

mod audit;
pub mod bounded;
pub mod config;
pub mod detectors;
pub mod finding;
pub mod intel;
pub mod kb;
pub mod ocsf;
mod pivot;
pub mod services;
pub mod stats;
pub mod stix;

use std::sync::Arc;

use cordon_core::FindingKind;
use cordon_flow::Flow;
use rustc_hash::FxHashMap;

pub use finding::{Finding, Severity};

use crate::config::Config;
use crate::detectors::Detector;
use crate::intel::Intel;
use crate::kb::Kb;

/// How often (in flow time) detectors look at their closed windows.
const TICK_MS: i64 = 60_000;

/// Most distinct findings held; past this, the lowest scores are dropped.
const MAX_FINDINGS: usize = 100_000;

/// Runs every enabled detector over a stream of flows.
pub struct Engine {
    detectors: Vec<Box<dyn Detector>>,
    intel_config: Option<config::Common>,
    kb: Arc<Kb>,
    findings: FxHashMap<String, Finding>,
    next_tick: Option<i64>,
    flows: u64,
    pending: Vec<Finding>,
    dropped: u64,
    pivot: pivot::Pivot,
    audit: audit::AuditDetectors,
}

/// Why a finding whose detector did not say has its severity: what
/// corroborates it.
fn severity_reason(f: &Finding) -> String {
    let n = |k: &str| f.evidence.facts.get(k).and_then(serde_json::Value::as_f64);
    match f.kind {
        FindingKind::Exfiltration | FindingKind::CloudExfiltration => {
            let mut why = match (n("bytes_out_hour"), n("baseline_hourly_median")) {
                (Some(b), Some(m)) => format!(
                    "a data volume anomaly: {} in one hour against a usual {}",
                    finding::human_bytes(b as u64),
                    finding::human_bytes(m as u64)
                ),
                _ => "a data volume anomaly".to_string(),
            };
            if f.evidence.facts.get("first_seen_destination") == Some(&true.into()) {
                why.push_str(", to a destination first seen that hour");
            }
            why
        }
        FindingKind::ThreatIntel => "a threat-intelligence match".to_string(),
        FindingKind::PolicyViolation => "the policy denies this traffic".to_string(),
        FindingKind::VendorDrift => "a declared vendor departs from its baseline".to_string(),
        FindingKind::ShadowVendor => "an external party no policy declares".to_string(),
        FindingKind::LateralMovement if f.score >= 70.0 => {
            "the policy does not allow this admin access".to_string()
        }
        FindingKind::LateralMovement => {
            "admin access new for the source; no policy says whether it may (at most medium)"
                .to_string()
        }
        FindingKind::ServiceDiscovery => "scanning from inside the network".to_string(),
        FindingKind::BruteForce => "password guessing from inside the network".to_string(),
        _ => format!("the detector's score ({:.0})", f.score),
    }
}

impl Engine {
    /// An engine with `config`'s detectors, mapping through `kb`, matching
    /// `intel` when given.
    pub fn new(config: Config, kb: Kb, intel: Option<Intel>) -> Engine {
        let pivot = pivot::Pivot::new(config.beaconing.common.max_state);
        Engine {
            intel_config: config.intel.enabled.then(|| config.intel.clone()),
            detectors: detectors::all(&config, intel),
            kb: Arc::new(kb),
            findings: FxHashMap::default(),
            next_tick: None,
            flows: 0,
            pending: Vec::new(),
            dropped: 0,
            pivot,
            audit: audit::AuditDetectors::new(),
        }
    }

    /// Match flows from now on against `intel` instead of the indicators
    /// the engine had (a feed that changed while flows stream in); nothing
    /// when the threat-intel detector is disabled. Findings made so far stay.
    pub fn set_intel(&mut self, intel: Intel) {
        let Some(cfg) = self.intel_config.clone() else {
            return;
        };
        self.detectors.retain(|d| d.name() != "threat-intel");
        self.detectors
            .push(Box::new(detectors::IntelMatches::new(intel, cfg)));
    }

    /// The knowledge base in use.
    pub fn kb(&self) -> &Kb {
        &self.kb
    }

    /// Look at one cloud audit event. Events should come in (roughly)
    /// time order.
    pub fn observe_event(&mut self, event: &cordon_audit::AuditEvent) {
        self.audit.observe(event, &mut self.pending);
        if !self.pending.is_empty() {
            self.absorb();
        }
    }

    /// Cloud audit events examined.
    pub fn events(&self) -> u64 {
        self.audit.events()
    }

    /// Look at one flow. Flows should come in (roughly) time order.
    pub fn observe(&mut self, flow: &Flow) {
        self.flows += 1;
        // Reply records (one-way logs report each direction) and Azure's
        // flow-begin markers repeat a connection already counted.
        if flow.orientation.is_reversed() || flow.attrs.get("flow_state") == Some("B") {
            return;
        }
        let now = flow.start_ms;
        match self.next_tick {
            None => self.next_tick = Some(now + TICK_MS),
            Some(t) if now >= t => {
                for d in &mut self.detectors {
                    d.tick(now, &mut self.pending);
                }
                self.next_tick = Some(now + TICK_MS);
            }
            Some(_) => {}
        }
        // A name refused before it was resolved has no address (0.0.0.0)
        // but is no local-only traffic: its name says where it went.
        let local_only = cordon_core::ip::is_local_only(flow.dst_ip)
            && !(flow.dst_ip.is_unspecified() && flow.hostname.is_some());
        let snapshot = flow.is_snapshot();
        for d in &mut self.detectors {
            if (!local_only || d.sees_local_only()) && (!snapshot || d.sees_snapshots()) {
                d.observe(flow, &mut self.pending);
            }
        }
        if !local_only && !snapshot {
            self.pivot.observe(flow, &mut self.pending);
        }
        if !self.pending.is_empty() {
            self.absorb();
        }
    }

    fn absorb(&mut self) {
        // A finding can lead to more (other hosts of a C2 server found):
        // those are absorbed in the next round.
        while !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            for mut f in pending {
                self.kb.apply(&mut f);
                if !f.evidence.facts.contains_key("severity_reason") {
                    let why = severity_reason(&f);
                    f.evidence
                        .facts
                        .insert("severity_reason".to_string(), why.into());
                }
                self.pivot.finding(&f, &mut self.pending);
                match self.findings.get_mut(&f.id) {
                    Some(old) => old.merge(f),
                    None => {
                        if self.findings.len() >= MAX_FINDINGS {
                            self.drop_weakest();
                        }
                        self.findings.insert(f.id.clone(), f);
                    }
                }
            }
        }
    }

    /// Make room by dropping the lowest-scoring tenth of the findings (in
    /// one sweep, so a flood of findings costs linear time).
    fn drop_weakest(&mut self) {
        let mut scores: Vec<f64> = self.findings.values().map(|f| f.score).collect();
        let cut = scores.len() / 10;
        let (_, threshold, _) = scores.select_nth_unstable_by(cut, f64::total_cmp);
        let threshold = *threshold;
        let mut excess = self.findings.len() - MAX_FINDINGS * 9 / 10;
        self.findings.retain(|_, f| {
            if excess > 0 && f.score <= threshold {
                excess -= 1;
                false
            } else {
                true
            }
        });
        self.dropped += 1;
    }

    /// Score what every detector holds now, without closing any window
    /// (for a live input, where the window's end may be an hour away), and
    /// return the findings so far.
    pub fn checkpoint(&mut self) -> Vec<Finding> {
        for d in &mut self.detectors {
            d.interim(&mut self.pending);
        }
        self.absorb();
        self.snapshot()
    }

    /// Findings so far, without closing any window.
    pub fn snapshot(&self) -> Vec<Finding> {
        let mut v: Vec<Finding> = self.findings.values().cloned().collect();
        self.sort(&mut v);
        v
    }

    fn sort(&self, v: &mut [Finding]) {
        v.sort_by(|a, b| {
            a.first_ms
                .cmp(&b.first_ms)
                .then(
                    self.kb
                        .stage_order(&a.stage)
                        .cmp(&self.kb.stage_order(&b.stage)),
                )
                .then(a.id.cmp(&b.id))
        });
    }

    /// Close every window and return all findings, oldest first.
    pub fn finish(&mut self) -> Vec<Finding> {
        for d in &mut self.detectors {
            d.finish(&mut self.pending);
        }
        self.absorb();
        let mut v: Vec<Finding> = self.findings.drain().map(|(_, f)| f).collect();
        link_exfiltration_to_c2(&mut v, &self.kb);
        self.sort(&mut v);
        v
    }

    /// Flows observed.
    pub fn flows(&self) -> u64 {
        self.flows
    }

    /// How many times findings were dropped to stay under the cap.
    pub fn dropped_findings(&self) -> u64 {
        self.dropped
    }

    /// Keys held by each detector (pairs, hosts...), to show memory is bounded.
    pub fn state(&self) -> Vec<(&'static str, usize, u64)> {
        self.detectors
            .iter()
            .map(|d| (d.name(), d.state(), d.evicted()))
            .chain([
                ("c2-contacts", self.pivot.state(), self.pivot.evicted()),
                ("audit-sign-ins", self.audit.state(), self.audit.evicted()),
            ])
            .collect()
    }
}

/// Exfiltration to a destination that is also a beacon's is exfiltration
/// over the C2 channel (T1041).
fn link_exfiltration_to_c2(findings: &mut [Finding], kb: &Kb) {
    let beacons: Vec<(
        Option<std::net::IpAddr>,
        Option<std::net::IpAddr>,
        Option<String>,
    )> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Beaconing)
        .map(|f| {
            (
                f.src_entity.ip,
                f.dst_entity.ip,
                f.dst_entity.hostname.clone(),
            )
        })
        .collect();
    for f in findings.iter_mut().filter(|f| f.kind.is_exfiltration()) {
        let over_c2 = beacons.iter().any(|(src, dst, host)| {
            *src == f.src_entity.ip
                && ((dst.is_some() && *dst == f.dst_entity.ip)
                    || (host.is_some() && *host == f.dst_entity.hostname))
        });
        if over_c2 && !f.techniques.iter().any(|t| t == "T1041") {
            f.techniques.push("T1041".to_string());
            kb.apply(f);
        }
    }
}

#[cfg(test)]
mod tests;
