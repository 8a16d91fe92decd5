//! Playbooks (`kind: ResponsePlaybook`): which findings get which response,
//! for how long, and how far on its own — `dry-run` (say what would be
//! done), `approve` (propose it for a person to approve) or `auto` (put it
//! in force).
//!
//! ```yaml
//! apiVersion: cordon/v1
//! kind: ResponsePlaybook
//! metadata: {name: contain-c2}
//! spec:
//!   rules:
//!     - name: quarantine-beaconing-hosts
//!       match: {kinds: [beaconing], minSeverity: high}
//!       action: quarantine-source
//!       allow: [bastion]
//!       ttl: 1h
//!       mode: auto
//! ```

use std::collections::BTreeSet;
use std::str::FromStr;

use cordon_core::FindingKind;
use cordon_core::units::Window;
use cordon_detect::{Finding, Severity};
use cordon_policy::CompiledPolicy;
use cordon_yaml::Diagnostics;
use ipnet::IpNet;
use serde::Serialize;

use crate::document::{DocumentError, Responses};
use crate::lifecycle::{NewResponse, add};
use crate::model::{Action, Destination, Peer, ResponseId, Status, Subject};

/// How far a rule goes on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Say what would be done; change nothing.
    DryRun,
    /// Propose it; a person approves.
    Approve,
    /// Put it in force.
    Auto,
}

/// What a rule does to a finding's entities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Quarantine the finding's source (its workload, else its address).
    QuarantineSource,
    /// Quarantine the finding's destination.
    QuarantineDestination,
    /// Block the finding's destination (its hostname, else its address)
    /// for every source.
    BlockDestination,
}

/// One rule of a playbook.
#[derive(Clone, Debug)]
pub struct PlaybookRule {
    /// Its name (in the audit trail as `playbook:NAME`).
    pub name: String,
    /// Finding kinds it takes (all when empty).
    pub kinds: BTreeSet<FindingKind>,
    /// The least severity it takes.
    pub min_severity: Severity,
    /// Attack stages it takes (all when empty).
    pub stages: BTreeSet<String>,
    /// What it does.
    pub step: Step,
    /// Peers a quarantine leaves reachable.
    pub allow: Vec<Peer>,
    /// How long the response holds.
    pub ttl: Window,
    /// How far it goes on its own.
    pub mode: Mode,
}

/// A playbook: rules tried in order; the first that takes a finding acts.
#[derive(Clone, Debug)]
pub struct Playbook {
    /// Its name.
    pub name: String,
    /// Its rules.
    pub rules: Vec<PlaybookRule>,
}

/// What the playbook did with one finding.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The finding.
    pub finding: String,
    /// The rule that took it.
    pub rule: String,
    /// Its mode.
    pub mode: Mode,
    /// The action and target.
    pub action: String,
    /// `created`, `proposed`, `dry-run`, `exists` (an equal response is in
    /// force or waiting) or `refused`.
    pub result: &'static str,
    /// The response made, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<ResponseId>,
    /// Why it was refused, or what it would be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Playbook {
    /// Parse a playbook read from `file`.
    ///
    /// # Errors
    /// Every problem, located.
    pub fn parse(file: &str, text: &str) -> Result<Playbook, DocumentError> {
        let doc = cordon_yaml::parse(file, text).map_err(|d| DocumentError(d.to_string()))?;
        let mut diags = Diagnostics::new(file);
        let out = decode(&doc.root, &mut diags);
        match out {
            Some(p) if !diags.has_errors() => Ok(p),
            _ => Err(DocumentError(diags.render())),
        }
    }

    /// Apply the playbook to `findings`, changing `doc`: each finding the
    /// first matching rule takes becomes a response (unless an equal one
    /// is in force or waiting), a proposal, or a dry-run line.
    pub fn apply(
        &self,
        doc: &mut Responses,
        findings: &[Finding],
        policy: &CompiledPolicy,
        now_ms: i64,
        never: &[(IpNet, String)],
    ) -> Vec<Outcome> {
        let mut out = Vec::new();
        for f in findings {
            let Some(rule) = self.rules.iter().find(|r| r.takes(f)) else {
                continue;
            };
            let Some(action) = rule.action_for(f) else {
                continue;
            };
            let mut o = Outcome {
                finding: f.id.clone(),
                rule: rule.name.clone(),
                mode: rule.mode,
                action: format!("{} {}", action.name(), action.target()),
                result: "created",
                id: None,
                detail: None,
            };
            if let Some(existing) = doc.responses.iter().find(|r| {
                r.action == action
                    && matches!(r.status_at(now_ms), Status::Active | Status::Proposed)
            }) {
                o.result = "exists";
                o.id = Some(existing.id.clone());
                out.push(o);
                continue;
            }
            let new = NewResponse {
                action,
                reason: format!("{}: {}", rule.name, f.title),
                finding: Some(f.id.clone()),
                incident: None,
                by: format!("playbook:{}/{}", self.name, rule.name),
                ttl: rule.ttl,
                propose: rule.mode == Mode::Approve,
            };
            if rule.mode == Mode::DryRun {
                // Every check, on a copy.
                let mut copy = doc.clone();
                match add(&mut copy, new, policy, now_ms, never) {
                    Ok(_) => o.result = "dry-run",
                    Err(e) => {
                        o.result = "refused";
                        o.detail = Some(e.0);
                    }
                }
                out.push(o);
                continue;
            }
            match add(doc, new, policy, now_ms, never) {
                Ok(id) => {
                    o.result = if rule.mode == Mode::Approve {
                        "proposed"
                    } else {
                        "created"
                    };
                    o.id = Some(id);
                }
                Err(e) => {
                    o.result = "refused";
                    o.detail = Some(e.0);
                }
            }
            out.push(o);
        }
        out
    }
}

impl PlaybookRule {
    fn takes(&self, f: &Finding) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&f.kind))
            && f.severity >= self.min_severity
            && (self.stages.is_empty() || self.stages.contains(&f.stage))
    }

    fn action_for(&self, f: &Finding) -> Option<Action> {
        let quarantine = |e: &cordon_detect::finding::Entity| {
            let subject = match (&e.workload, e.ip) {
                (Some(w), _) => Subject::Workload(w.clone()),
                (None, Some(ip)) => Subject::Address(IpNet::from(cordon_core::canonical_ip(ip))),
                (None, None) => return None,
            };
            Some(Action::Quarantine {
                subject,
                allow: self.allow.clone(),
            })
        };
        match self.step {
            Step::QuarantineSource => quarantine(&f.src_entity),
            Step::QuarantineDestination => quarantine(&f.dst_entity),
            Step::BlockDestination => {
                let e = &f.dst_entity;
                let to = match (&e.hostname, e.ip) {
                    (Some(h), _) => Destination::Fqdn(cordon_core::FqdnPattern::parse(h).ok()?),
                    (None, Some(ip)) => {
                        Destination::Net(IpNet::from(cordon_core::canonical_ip(ip)))
                    }
                    (None, None) => return None,
                };
                Some(Action::Block { to, from: None })
            }
        }
    }
}

fn decode(root: &cordon_yaml::Node, diags: &mut Diagnostics) -> Option<Playbook> {
    let mut top = root.fields(diags, "playbook")?;
    top.expect_kind(diags, "ResponsePlaybook", "a playbook");
    let _ = top.get("apiVersion");
    let mut name = "playbook".to_string();
    if let Some(meta) = top.get("metadata")
        && let Some(mut f) = meta.fields(diags, "metadata")
    {
        if let Some(n) = f.get("name").and_then(|n| n.text(diags, "name")) {
            name = n.to_string();
        }
        f.finish(diags, &["name"]);
    }
    let mut rules = Vec::new();
    if let Some(spec) = top.require(diags, "spec")
        && let Some(mut f) = spec.fields(diags, "spec")
    {
        if let Some(list) = f.require(diags, "rules")
            && let Some(items) = list.items(diags, "rules")
        {
            for item in items {
                if let Some(r) = rule(item, diags) {
                    rules.push(r);
                }
            }
        }
        f.finish(diags, &["rules"]);
    }
    top.finish(diags, &["apiVersion", "kind", "metadata", "spec"]);
    Some(Playbook { name, rules })
}

fn rule(node: &cordon_yaml::Node, diags: &mut Diagnostics) -> Option<PlaybookRule> {
    let mut f = node.fields(diags, "rule")?;
    let before = diags.len();
    let name = f
        .require(diags, "name")
        .and_then(|n| n.text(diags, "name"))
        .map(str::to_string);
    let mut kinds = BTreeSet::new();
    let mut stages = BTreeSet::new();
    let mut min_severity = Severity::Low;
    if let Some(m) = f.get("match")
        && let Some(mut mf) = m.fields(diags, "match")
    {
        if let Some(k) = mf.get("kinds")
            && let Some(items) = k.items(diags, "kinds")
        {
            for item in items {
                if let Some(t) = item.text(diags, "kind") {
                    match FindingKind::from_str(t) {
                        Ok(k) => {
                            kinds.insert(k);
                        }
                        Err(_) => {
                            let names: Vec<&str> =
                                FindingKind::ALL.iter().map(|k| k.as_str()).collect();
                            diags.error_hint(
                                item.pos,
                                format!("unknown finding kind `{t}`"),
                                format!("one of {}", names.join(", ")),
                            );
                        }
                    }
                }
            }
        }
        if let Some(s) = mf.get("minSeverity")
            && let Some(t) = s.text(diags, "minSeverity")
        {
            match Severity::parse(t) {
                Some(v) => min_severity = v,
                None => diags.error_hint(
                    s.pos,
                    format!("unknown severity `{t}`"),
                    "one of low, medium, high, critical",
                ),
            }
        }
        if let Some(st) = mf.get("stages")
            && let Some(items) = st.items(diags, "stages")
        {
            for item in items {
                if let Some(t) = item.text(diags, "stage") {
                    stages.insert(t.to_string());
                }
            }
        }
        mf.finish(diags, &["kinds", "minSeverity", "stages"]);
    }
    let step = f
        .require(diags, "action")
        .and_then(|n| n.text(diags, "action").map(|t| (t, n.pos)))
        .and_then(|(t, pos)| match t {
            "quarantine-source" => Some(Step::QuarantineSource),
            "quarantine-destination" => Some(Step::QuarantineDestination),
            "block-destination" => Some(Step::BlockDestination),
            other => {
                diags.error_hint(
                    pos,
                    format!("unknown action `{other}`"),
                    "one of quarantine-source, quarantine-destination, block-destination",
                );
                None
            }
        });
    let allow = f
        .get("allow")
        .map(|a| crate::document::peers(a, diags, "allow"))
        .unwrap_or_default();
    let ttl = f
        .require(diags, "ttl")
        .and_then(|n| crate::document::duration(n, diags, "ttl"));
    let mode = f
        .require(diags, "mode")
        .and_then(|n| n.text(diags, "mode").map(|t| (t, n.pos)))
        .and_then(|(t, pos)| match t {
            "dry-run" => Some(Mode::DryRun),
            "approve" => Some(Mode::Approve),
            "auto" => Some(Mode::Auto),
            other => {
                diags.error_hint(
                    pos,
                    format!("unknown mode `{other}`"),
                    "one of dry-run, approve, auto",
                );
                None
            }
        });
    f.finish(diags, &["name", "match", "action", "allow", "ttl", "mode"]);
    if diags.len() > before {
        return None;
    }
    Some(PlaybookRule {
        name: name?,
        kinds,
        min_severity,
        stages,
        step: step?,
        allow,
        ttl: ttl?,
        mode: mode?,
    })
}
