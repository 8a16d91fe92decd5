//! What a detector reports: the finding, its evidence and its mapping.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cordon_core::{FindingKind, Verdict};
use cordon_flow::Flow;
use cordon_flow::Observed;
use serde::{Deserialize, Serialize};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Worth an investigation.
    Medium,
    /// Likely an attack step.
    High,
    /// An attack step on sensitive data.
    Critical,
}

impl Severity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parse a name as written on the command line.
    pub fn parse(s: &str) -> Option<Severity> {
        [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// The least score of each severity above `Low`.
    const FLOORS: [(Severity, f64); 3] = [
        (Severity::Critical, 90.0),
        (Severity::High, 70.0),
        (Severity::Medium, 40.0),
    ];

    /// The severity for a score from 0 to 100.
    pub fn from_score(score: f64) -> Severity {
        Self::FLOORS
            .iter()
            .find(|(_, floor)| score >= *floor)
            .map_or(Severity::Low, |(s, _)| *s)
    }

    /// The highest score that still has this severity (a whole number
    /// below the next severity's floor).
    pub fn highest_score(self) -> f64 {
        Self::FLOORS
            .iter()
            .rev()
            .find(|(s, _)| *s > self)
            .map_or(100.0, |(_, floor)| floor - 1.0)
    }
}

/// One endpoint of a finding, as precisely as it is known.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Address, when the finding is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Workload name from the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Policy groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Vendor name, for vendor groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Hostname, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

impl Entity {
    /// How the entity is shown: workload, else hostname, else address.
    pub fn label(&self) -> String {
        match (&self.workload, &self.hostname, self.ip) {
            (Some(w), _, _) => w.clone(),
            (None, Some(h), _) => h.clone(),
            (None, None, Some(ip)) => ip.to_string(),
            (None, None, None) => self.vendor.clone().unwrap_or_else(|| "-".to_string()),
        }
    }
}

/// One flow behind a finding, small enough to list and check by hand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowRef {
    /// Start, ms since the epoch.
    pub start_ms: i64,
    /// Source address.
    pub src_ip: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// Destination port.
    pub dst_port: u16,
    /// IANA protocol number.
    pub protocol: u8,
    /// Bytes from the source.
    pub bytes_out: u64,
    /// Bytes to the source.
    pub bytes_in: u64,
    /// Observed action, when the record says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    /// Policy verdict, when enriched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The rule that decided, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl From<&Flow> for FlowRef {
    fn from(f: &Flow) -> Self {
        FlowRef {
            start_ms: f.start_ms,
            src_ip: f.src_ip,
            src_port: f.src_port,
            dst_ip: f.dst_ip,
            dst_port: f.dst_port,
            protocol: f.protocol,
            bytes_out: f.bytes_out,
            bytes_in: f.bytes_in,
            observed: f.observed,
            verdict: f.enrichment.as_ref().map(|e| e.verdict),
            rule: f
                .enrichment
                .as_ref()
                .and_then(|e| e.rule.as_deref().map(str::to_string)),
        }
    }
}

/// The evidence behind a finding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// One sentence a responder can check.
    pub summary: String,
    /// The measured numbers (counts, bytes, scores, baselines).
    #[serde(default)]
    pub facts: BTreeMap<String, serde_json::Value>,
    /// Sample flows (the first few and the largest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<FlowRef>,
}

/// A compliance control a finding touches, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRef {
    /// Control id, e.g. `PCI-DSS-4.0:12.8`.
    pub id: String,
    /// Why the finding touches it.
    pub reason: String,
}

/// A detector's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id: the same kind on the same entities is the same finding.
    pub id: String,
    /// Finding kind (see the knowledge base).
    pub kind: FindingKind,
    /// Short title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// How sure the detector is, 0 to 1.
    pub confidence: f64,
    /// Detector score, 0 to 100.
    pub score: f64,
    /// Source label (workload, hostname or address).
    pub src: String,
    /// Destination label.
    pub dst: String,
    /// The source as known.
    pub src_entity: Entity,
    /// The destination as known.
    pub dst_entity: Entity,
    /// Destination port, when one port is involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// First evidence, ms since the epoch.
    pub first_ms: i64,
    /// Last evidence.
    pub last_ms: i64,
    /// What was seen.
    pub evidence: Evidence,
    /// ATT&CK technique ids.
    pub techniques: Vec<String>,
    /// ATT&CK tactic ids.
    pub tactics: Vec<String>,
    /// Kill-chain stage id.
    pub stage: String,
    /// Compliance controls touched.
    pub controls: Vec<ControlRef>,
    /// What to do.
    pub action: String,
    /// The rule that denies this traffic when enforced, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// How many times the finding was raised or updated.
    pub updates: u32,
}

/// 64-bit FNV-1a of `bytes`: the stable hash ids are made from.
pub fn fnv64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A stable id for `kind` about `key`: FNV-1a, so it survives restarts.
pub fn finding_id(kind: FindingKind, key: &str) -> String {
    let hash = fnv64(kind.as_str().bytes().chain([0]).chain(key.bytes()));
    format!("{kind}-{hash:016x}")
}

impl Finding {
    /// A finding of `kind` about `key`, scored `score` (0–100: its
    /// severity and confidence follow), at `at`, with nothing else known
    /// yet: the detectors fill in who, what and the evidence.
    pub(crate) fn scored(
        kind: FindingKind,
        key: &str,
        score: f64,
        at: i64,
        summary: String,
    ) -> Finding {
        let score = score.clamp(0.0, 100.0);
        Finding {
            id: finding_id(kind, key),
            kind,
            title: String::new(),
            severity: Severity::from_score(score),
            confidence: (score / 100.0).clamp(0.05, 0.99),
            score,
            src: String::new(),
            dst: String::new(),
            src_entity: Entity::default(),
            dst_entity: Entity::default(),
            port: None,
            first_ms: at,
            last_ms: at,
            evidence: Evidence {
                summary,
                facts: BTreeMap::new(),
                flows: Vec::new(),
            },
            techniques: Vec::new(),
            tactics: Vec::new(),
            stage: String::new(),
            controls: Vec::new(),
            action: String::new(),
            stopped_by: None,
            updates: 1,
        }
    }

    /// Fold a later report of the same finding into this one: the time
    /// range grows, the score and severity keep their maximum, evidence
    /// facts take the newer values and sample flows are kept up to a few.
    pub fn merge(&mut self, newer: Finding) {
        self.first_ms = self.first_ms.min(newer.first_ms);
        self.last_ms = self.last_ms.max(newer.last_ms);
        if newer.score >= self.score {
            self.score = newer.score;
            self.confidence = newer.confidence;
            self.evidence.summary = newer.evidence.summary;
        }
        self.severity = self.severity.max(newer.severity);
        self.evidence.facts.extend(newer.evidence.facts);
        for f in newer.evidence.flows {
            if self.evidence.flows.len() >= MAX_EVIDENCE_FLOWS {
                break;
            }
            if !self.evidence.flows.contains(&f) {
                self.evidence.flows.push(f);
            }
        }
        for t in newer.techniques {
            if !self.techniques.contains(&t) {
                self.techniques.push(t);
            }
        }
        if self.stopped_by.is_none() {
            self.stopped_by = newer.stopped_by;
        }
        self.updates += newer.updates;
    }
}

/// Sample flows kept per finding.
pub const MAX_EVIDENCE_FLOWS: usize = 10;

/// A size for people: `512 B`, `1.5 KiB`, `199.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
