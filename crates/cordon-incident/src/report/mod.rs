//! The incident report: what happened, told like a post-incident write-up
//! (summary, timeline, who was affected, the kill chain stage by stage with
//! its ATT&CK techniques and evidence, what would have stopped each stage,
//! the compliance controls touched and what they ask of the organisation,
//! and what to do now), as data ([`Report`], the JSON format) and rendered
//! as Markdown ([`markdown`]) or one self-contained HTML file ([`html`]).

mod html;
mod markdown;
mod patch;

use std::collections::BTreeMap;

use cordon_detect::finding::{FlowRef, human_bytes};
use cordon_detect::kb::Kb;
use cordon_detect::{Finding, Severity};
use cordon_flow::time::format_rfc3339;
use cordon_policy::Policy;
use serde::Serialize;

use crate::model::{Incident, Role};

pub use html::{esc as escape_html, history as history_html, html};
pub use markdown::markdown;

/// One finding on the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineEntry {
    /// When it started, ms since the epoch.
    pub at_ms: i64,
    /// When its evidence ends.
    pub until_ms: i64,
    /// Stage id.
    pub stage: String,
    /// Stage name.
    pub stage_name: String,
    /// Finding id.
    pub finding: String,
    /// Finding kind.
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// What was seen.
    pub summary: String,
}

/// A third party's entry in the policy.
#[derive(Clone, Debug, Serialize)]
pub struct VendorInfo {
    /// Vendor name.
    pub name: String,
    /// Data categories shared with it.
    pub data: Vec<String>,
    /// Criticality, when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criticality: Option<String>,
    /// Who to call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Contract reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
}

impl VendorInfo {
    /// One line: data shared, criticality, contact, contract.
    pub fn describe(&self) -> String {
        let mut t = format!("data: {}", self.data.join(", "));
        for (k, val) in [
            ("criticality", &self.criticality),
            ("contact", &self.contact),
            ("contract", &self.contract),
        ] {
            if let Some(val) = val {
                t.push_str(&format!("; {k}: {val}"));
            }
        }
        t
    }
}

/// An affected entity.
#[derive(Clone, Debug, Serialize)]
pub struct AffectedEntity {
    /// Vendor, host or external.
    pub role: Role,
    /// How it is shown.
    pub label: String,
    /// Address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Hostname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Policy groups.
    pub groups: Vec<String>,
    /// Vendor metadata from the policy, for vendors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<VendorInfo>,
}

/// An ATT&CK technique, named.
#[derive(Clone, Debug, Serialize)]
pub struct TechniqueRef {
    /// `T1021.004`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its page.
    pub url: String,
}

/// One evidence flow and how to find it in the store.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceFlow {
    /// The flow.
    pub flow: FlowRef,
    /// One line for people.
    pub text: String,
    /// The `cordon flows query` that returns it from the store.
    pub query: String,
}

/// A deny rule proposed for a stage the policy allowed, and what the policy
/// engine says of it.
#[derive(Clone, Debug, Serialize)]
pub struct ProposedRule {
    /// The rule (and any group it needs) as policy YAML.
    pub yaml: String,
    /// Whether the engine, with the rule added, denies every evidence flow.
    pub checked: bool,
    /// What the check found, in one sentence.
    pub check: String,
}

/// What would have stopped a finding's traffic.
#[derive(Clone, Debug, Serialize)]
pub struct Stopper {
    /// The rule that denies it when enforced, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A proposed rule, when none does and the policy was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposed: Option<ProposedRule>,
    /// One sentence.
    pub text: String,
}

/// A finding inside its stage.
#[derive(Clone, Debug, Serialize)]
pub struct StageFinding {
    /// The finding.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// Title.
    pub title: String,
    /// What was seen.
    pub summary: String,
    /// Source label.
    pub src: String,
    /// Destination label.
    pub dst: String,
    /// First evidence.
    pub first_ms: i64,
    /// Last evidence.
    pub last_ms: i64,
    /// The flows behind it.
    pub evidence: Vec<EvidenceFlow>,
    /// What would have stopped it.
    pub stopped_by: Stopper,
}

/// One stage of the kill chain.
#[derive(Clone, Debug, Serialize)]
pub struct StageReport {
    /// Stage id.
    pub stage: String,
    /// Stage name.
    pub name: String,
    /// ATT&CK tactic id and name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tactic: Option<(String, String)>,
    /// Techniques seen.
    pub techniques: Vec<TechniqueRef>,
    /// Findings, oldest first.
    pub findings: Vec<StageFinding>,
}

/// A compliance control the incident touches.
#[derive(Clone, Debug, Serialize)]
pub struct ControlReport {
    /// `PCI-DSS-4.0:12.8`.
    pub id: String,
    /// Framework.
    pub framework: String,
    /// Title.
    pub title: String,
    /// What it requires of the organisation.
    pub requires: String,
    /// Why the incident touches it (one reason per finding kind).
    pub why: Vec<String>,
    /// Where the framework is published.
    pub source: String,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The incident.
    pub incident: Incident,
    /// When the report was made, ms since the epoch.
    pub generated_ms: i64,
    /// The store the evidence is in, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// The policy the report was checked against, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// A paragraph.
    pub summary: String,
    /// Every finding in time order.
    pub timeline: Vec<TimelineEntry>,
    /// Who and what was involved.
    pub entities: Vec<AffectedEntity>,
    /// Data categories shared with the vendors involved.
    pub data_at_risk: Vec<String>,
    /// The kill chain.
    pub stages: Vec<StageReport>,
    /// Controls touched.
    pub controls: Vec<ControlReport>,
    /// What to do now, most urgent first.
    pub actions: Vec<String>,
    /// The findings in full.
    pub findings: Vec<Finding>,
}

/// A time for a table cell: `2026-02-04 02:34:00Z` (milliseconds shown
/// only when not zero).
pub fn short_time(ms: i64) -> String {
    let t = format_rfc3339(ms).replacen('T', " ", 1);
    t.strip_suffix(".000Z")
        .map_or(t.clone(), |s| format!("{s}Z"))
}

/// A flow for people.
pub fn flow_text(r: &FlowRef) -> String {
    let proto = cordon_core::Protocol(r.protocol).name();
    let mut s = format!(
        "{} {}:{} → {}:{} {proto}, {} out / {} in",
        format_rfc3339(r.start_ms),
        r.src_ip,
        r.src_port,
        r.dst_ip,
        r.dst_port,
        human_bytes(r.bytes_out),
        human_bytes(r.bytes_in)
    );
    match (r.verdict, &r.rule) {
        (Some(v), Some(rule)) => s.push_str(&format!(", policy {v} ({rule})")),
        (Some(v), None) => s.push_str(&format!(", policy {v} (default)")),
        _ => {}
    }
    s
}

fn query(r: &FlowRef, store: Option<&str>) -> String {
    let store = store
        .map(|s| format!(" --store {}", shell_word(s)))
        .unwrap_or_default();
    format!(
        "cordon flows query{store} --src {} --dst {} --port {} --since {} --until {}",
        r.src_ip,
        r.dst_ip,
        r.dst_port,
        format_rfc3339(r.start_ms),
        format_rfc3339(r.start_ms + 1000)
    )
}

/// `s` quoted for a POSIX shell when it needs to be.
fn shell_word(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-:=@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn vendor_info(policy: Option<&Policy>, name: &str) -> Option<VendorInfo> {
    let v = policy?.vendor(name)?;
    Some(VendorInfo {
        name: v.name.clone(),
        data: v.data.clone(),
        criticality: v.criticality.map(|c| c.to_string()),
        contact: v.contact.clone(),
        contract: v.contract.clone(),
    })
}

/// Build the report of `incident` from its `findings`. With the `policy`,
/// vendors are described from it and stages the policy allowed get a
/// proposed deny rule checked by the policy engine.
pub fn build(
    incident: &Incident,
    findings: &[Finding],
    kb: &Kb,
    policy: Option<&Policy>,
    store: Option<&str>,
    now_ms: i64,
) -> Report {
    let by_id: BTreeMap<&str, &Finding> = findings.iter().map(|f| (f.id.as_str(), f)).collect();
    let stage_name = |id: &str| {
        kb.stages
            .iter()
            .find(|s| s.id == id)
            .map_or_else(|| id.to_string(), |s| s.name.clone())
    };

    let mut timeline: Vec<TimelineEntry> = findings
        .iter()
        .map(|f| TimelineEntry {
            at_ms: f.first_ms,
            until_ms: f.last_ms,
            stage: f.stage.clone(),
            stage_name: stage_name(&f.stage),
            finding: f.id.clone(),
            kind: f.kind.to_string(),
            severity: f.severity,
            summary: f.evidence.summary.clone(),
        })
        .collect();
    timeline.sort_by(|a, b| (a.at_ms, &a.finding).cmp(&(b.at_ms, &b.finding)));

    let entities: Vec<AffectedEntity> = incident
        .entities
        .iter()
        .map(|e| AffectedEntity {
            role: e.role,
            label: e.label.clone(),
            ip: e.ip.map(|ip| ip.to_string()),
            hostname: e.hostname.clone(),
            groups: e.groups.clone(),
            vendor: (e.role == Role::Vendor)
                .then(|| vendor_info(policy, &e.label))
                .flatten(),
        })
        .collect();
    let mut data_at_risk: Vec<String> = entities
        .iter()
        .filter_map(|e| e.vendor.as_ref())
        .flat_map(|v| v.data.clone())
        .collect();
    data_at_risk.sort();
    data_at_risk.dedup();

    let stages: Vec<StageReport> = incident
        .stages
        .iter()
        .map(|s| StageReport {
            stage: s.stage.clone(),
            name: s.name.clone(),
            tactic: s.tactic.as_ref().map(|t| {
                (
                    t.clone(),
                    kb.tactics
                        .get(t)
                        .map_or_else(String::new, |x| x.name.clone()),
                )
            }),
            techniques: s
                .techniques
                .iter()
                .map(|t| TechniqueRef {
                    id: t.clone(),
                    name: kb
                        .techniques
                        .get(t)
                        .map_or_else(String::new, |x| x.name.clone()),
                    url: kb
                        .techniques
                        .get(t)
                        .map_or_else(String::new, cordon_detect::kb::Technique::url),
                })
                .collect(),
            findings: s
                .findings
                .iter()
                .filter_map(|id| by_id.get(id.as_str()))
                .map(|f| StageFinding {
                    id: f.id.clone(),
                    kind: f.kind.to_string(),
                    severity: f.severity,
                    title: f.title.clone(),
                    summary: f.evidence.summary.clone(),
                    src: f.src.clone(),
                    dst: f.dst.clone(),
                    first_ms: f.first_ms,
                    last_ms: f.last_ms,
                    evidence: f
                        .evidence
                        .flows
                        .iter()
                        .map(|r| EvidenceFlow {
                            flow: r.clone(),
                            text: flow_text(r),
                            query: query(r, store),
                        })
                        .collect(),
                    stopped_by: patch::stopper(f, policy),
                })
                .collect(),
        })
        .collect();

    let mut why: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in findings {
        for c in &f.controls {
            let reasons = why.entry(c.id.clone()).or_default();
            let reason = format!("{}: {}", f.kind, c.reason);
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
    }
    let controls: Vec<ControlReport> = incident
        .controls
        .iter()
        .map(|id| {
            let known = kb.controls.get(id);
            ControlReport {
                id: id.clone(),
                framework: known.map_or_else(String::new, |c| c.framework.clone()),
                title: known.map_or_else(String::new, |c| c.title.clone()),
                requires: known.map_or_else(String::new, |c| c.requires.clone()),
                why: why.remove(id).unwrap_or_default(),
                source: known.map_or_else(String::new, |c| c.source.clone()),
            }
        })
        .collect();

    let actions = actions(incident, findings, &entities, &stages);
    let summary = summary(incident, &timeline, &entities, &data_at_risk);
    Report {
        incident: incident.clone(),
        generated_ms: now_ms,
        store: store.map(str::to_string),
        policy: policy.map(|p| p.name.clone()),
        summary,
        timeline,
        entities,
        data_at_risk,
        stages,
        controls,
        actions,
        findings: findings.to_vec(),
    }
}

fn summary(
    incident: &Incident,
    timeline: &[TimelineEntry],
    entities: &[AffectedEntity],
    data: &[String],
) -> String {
    let names = |role: Role| -> Vec<String> {
        entities
            .iter()
            .filter(|e| e.role == role)
            .map(|e| e.label.clone())
            .collect()
    };
    let (vendors, hosts, external, identities) = (
        names(Role::Vendor),
        names(Role::Host),
        names(Role::External),
        names(Role::Identity),
    );
    let stages: Vec<String> = incident
        .stages
        .iter()
        .filter(|s| s.stage != "policy")
        .map(|s| s.name.to_lowercase())
        .collect();
    let mut s = format!(
        "Between {} and {}, Cordon linked {} findings into one attack path",
        format_rfc3339(incident.first_ms),
        format_rfc3339(incident.last_ms),
        incident.findings.len()
    );
    if !stages.is_empty() {
        s.push_str(&format!(
            " through {} stage(s): {}",
            stages.len(),
            stages.join(", ")
        ));
    }
    s.push('.');
    if !vendors.is_empty() {
        s.push_str(&format!(
            " It came through the trusted path of {}",
            vendors.join(" and ")
        ));
        if !data.is_empty() {
            s.push_str(&format!(", a vendor entrusted with {}", data.join(", ")));
        }
        s.push('.');
    }
    if !hosts.is_empty() {
        s.push_str(&format!(" Internal hosts involved: {}.", hosts.join(", ")));
    }
    if !identities.is_empty() {
        s.push_str(&format!(
            " Cloud identities used: {}.",
            identities.join(", ")
        ));
    }
    if !external.is_empty() {
        s.push_str(&format!(
            " External parties involved: {}.",
            external.join(", ")
        ));
    }
    // First and last detections (policy violations only add context).
    let detections: Vec<&TimelineEntry> = timeline
        .iter()
        .filter(|t| t.kind != "policy-violation")
        .collect();
    let pick = if detections.len() > 1 {
        detections
    } else {
        timeline.iter().collect()
    };
    if let (Some(first), Some(last)) = (pick.first(), pick.last())
        && pick.len() > 1
    {
        s.push_str(&format!(
            " First sign: {} Last: {}",
            sentence(&first.summary),
            sentence(&last.summary)
        ));
    }
    s.push_str(&format!(
        " Severity {}: {}.",
        incident.severity.as_str(),
        incident.severity_reason
    ));
    s
}

fn sentence(s: &str) -> String {
    let t = s.trim_end_matches('.');
    format!("{t}.")
}

fn actions(
    incident: &Incident,
    findings: &[Finding],
    entities: &[AffectedEntity],
    stages: &[StageReport],
) -> Vec<String> {
    let mut out = Vec::new();
    let hosts: Vec<&str> = entities
        .iter()
        .filter(|e| e.role == Role::Host)
        .map(|e| e.label.as_str())
        .collect();
    if !hosts.is_empty() && incident.severity >= Severity::High {
        out.push(format!(
            "Contain: isolate {} (quarantine group or deny rule) and preserve their disks and logs for forensics.",
            hosts.join(", ")
        ));
    }
    for e in entities.iter().filter(|e| e.role == Role::Vendor) {
        let contact = e
            .vendor
            .as_ref()
            .and_then(|v| v.contact.clone())
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        out.push(format!(
            "Vendor: tell {}{contact} about the incident, rotate every credential and API key shared with them, and review their access under the contract.",
            e.label
        ));
    }
    let allowed: Vec<&StageFinding> = stages
        .iter()
        .flat_map(|s| s.findings.iter())
        .filter(|f| f.stopped_by.rule.is_none())
        .collect();
    if !allowed.is_empty() {
        out.push(format!(
            "Policy: {} step(s) went through paths the policy allows; add the proposed rules (or tighter ones) and enforce them.",
            allowed.len()
        ));
    }
    let mut seen = Vec::new();
    for f in findings {
        if !f.action.is_empty() && !seen.contains(&f.action) {
            seen.push(f.action.clone());
        }
    }
    out.extend(seen);
    out.push("Report: check whether notification duties apply (data categories above) and record the incident in the third-party register.".to_string());
    out
}
