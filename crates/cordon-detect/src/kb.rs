//! The knowledge base: ATT&CK techniques, kill-chain stages, compliance
//! controls, and what each finding kind maps to. Shipped as versioned JSON
//! files in `kb/`, compiled into the binary and checked when loaded.

use std::collections::BTreeMap;

use cordon_core::FindingKind;
use serde::{Deserialize, Serialize};

use crate::finding::{ControlRef, Finding};

/// An ATT&CK tactic.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tactic {
    /// `TA0010`.
    pub id: String,
    /// `Exfiltration`.
    pub name: String,
    /// `exfiltration` (the STIX kill-chain phase name).
    pub shortname: String,
}

/// An ATT&CK technique or sub-technique.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Technique {
    /// `T1567.002`.
    pub id: String,
    /// Name as ATT&CK gives it.
    pub name: String,
    /// Tactic ids.
    pub tactics: Vec<String>,
}

impl Technique {
    /// The technique's page on attack.mitre.org.
    pub fn url(&self) -> String {
        format!(
            "https://attack.mitre.org/techniques/{}/",
            self.id.replace('.', "/")
        )
    }
}

/// A kill-chain stage.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// `lateral-movement`.
    pub id: String,
    /// `Lateral movement`.
    pub name: String,
    /// The ATT&CK tactic of the stage, if one.
    pub tactic: Option<String>,
    /// The Cyber Kill Chain phase (OCSF `kill_chain_phase.phase_id`).
    pub kill_chain_phase: u8,
}

/// The OCSF caption of a Cyber Kill Chain phase id.
pub fn kill_chain_phase_name(id: u8) -> &'static str {
    match id {
        1 => "Reconnaissance",
        2 => "Weaponization",
        3 => "Delivery",
        4 => "Exploitation",
        5 => "Installation",
        6 => "Command & Control",
        7 => "Actions on Objectives",
        99 => "Other",
        _ => "Unknown",
    }
}

/// A compliance control.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// `PCI-DSS-4.0:12.8`.
    pub id: String,
    /// `PCI DSS 4.0`.
    pub framework: String,
    /// Short title.
    pub title: String,
    /// What the control requires of the organisation, in short.
    pub requires: String,
    /// Where the framework is published.
    pub source: String,
}

/// What a finding kind maps to.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KindInfo {
    /// The kind.
    pub kind: FindingKind,
    /// Default title.
    pub title: String,
    /// Kill-chain stage id.
    pub stage: String,
    /// Default techniques (detectors may refine to sub-techniques).
    pub techniques: Vec<String>,
    /// Controls touched, with the reason.
    pub controls: Vec<ControlRef>,
    /// Recommended action.
    pub action: String,
}

#[derive(Deserialize)]
struct AttackFile {
    attack_version: String,
    kb_version: u32,
    tactics: Vec<Tactic>,
    techniques: Vec<Technique>,
    #[allow(dead_code, reason = "documentation inside the data file")]
    name: String,
    #[allow(dead_code, reason = "documentation inside the data file")]
    source: String,
}

#[derive(Deserialize)]
struct StagesFile {
    kb_version: u32,
    stages: Vec<Stage>,
    #[allow(dead_code, reason = "documentation inside the data file")]
    note: String,
}

#[derive(Deserialize)]
struct ControlsFile {
    kb_version: u32,
    controls: Vec<Control>,
    #[allow(dead_code, reason = "documentation inside the data file")]
    note: String,
}

#[derive(Deserialize)]
struct KindsFile {
    kb_version: u32,
    kinds: Vec<KindInfo>,
}

/// Why the knowledge base could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// A file did not parse.
    #[error("knowledge base file {file}: {error}")]
    Parse {
        /// The file.
        file: &'static str,
        /// The parser's message (with line and column).
        error: serde_json::Error,
    },
    /// A reference to something that does not exist, or a duplicate.
    #[error("knowledge base: {0}")]
    Inconsistent(String),
}

/// The loaded knowledge base.
#[derive(Debug)]
pub struct Kb {
    /// ATT&CK version the techniques are taken from.
    pub attack_version: String,
    /// Version of the knowledge base files.
    pub version: u32,
    /// Tactics by id.
    pub tactics: BTreeMap<String, Tactic>,
    /// Techniques by id.
    pub techniques: BTreeMap<String, Technique>,
    /// Stages in kill-chain order.
    pub stages: Vec<Stage>,
    /// Controls by id.
    pub controls: BTreeMap<String, Control>,
    /// Kinds.
    pub kinds: BTreeMap<FindingKind, KindInfo>,
}

const ATTACK: &str = include_str!("../kb/attack.json");
const STAGES: &str = include_str!("../kb/stages.json");
const CONTROLS: &str = include_str!("../kb/controls.json");
const KINDS: &str = include_str!("../kb/kinds.json");

fn parse<'a, T: Deserialize<'a>>(file: &'static str, text: &'a str) -> Result<T, KbError> {
    serde_json::from_str(text).map_err(|error| KbError::Parse { file, error })
}

fn unique<T, K: Ord + Clone + std::fmt::Display>(
    what: &str,
    items: Vec<T>,
    key: impl Fn(&T) -> &K,
) -> Result<BTreeMap<K, T>, KbError> {
    let mut map = BTreeMap::new();
    for item in items {
        let k = key(&item).clone();
        if map.insert(k.clone(), item).is_some() {
            return Err(KbError::Inconsistent(format!(
                "{what} `{k}` is listed twice"
            )));
        }
    }
    Ok(map)
}

impl Kb {
    /// The knowledge base shipped with Cordon.
    ///
    /// # Errors
    /// Only if the shipped files are broken (the tests load them).
    pub fn embedded() -> Result<Kb, KbError> {
        let attack: AttackFile = parse("kb/attack.json", ATTACK)?;
        let stages: StagesFile = parse("kb/stages.json", STAGES)?;
        let controls: ControlsFile = parse("kb/controls.json", CONTROLS)?;
        let kinds: KindsFile = parse("kb/kinds.json", KINDS)?;
        let versions = [
            attack.kb_version,
            stages.kb_version,
            controls.kb_version,
            kinds.kb_version,
        ];
        if versions.iter().any(|v| *v != versions[0]) {
            return Err(KbError::Inconsistent(format!(
                "files disagree on the version: {versions:?}"
            )));
        }
        let kb = Kb {
            attack_version: attack.attack_version,
            version: versions[0],
            tactics: unique("tactic", attack.tactics, |t| &t.id)?,
            techniques: unique("technique", attack.techniques, |t| &t.id)?,
            stages: stages.stages,
            controls: unique("control", controls.controls, |c| &c.id)?,
            kinds: unique("kind", kinds.kinds, |k| &k.kind)?,
        };
        kb.check()?;
        Ok(kb)
    }

    /// Every reference resolves; every kind has a technique and a control.
    fn check(&self) -> Result<(), KbError> {
        let bad = |m: String| Err(KbError::Inconsistent(m));
        for t in self.techniques.values() {
            for tactic in &t.tactics {
                if !self.tactics.contains_key(tactic) {
                    return bad(format!("technique {} names unknown tactic {tactic}", t.id));
                }
            }
            if let Some((parent, _)) = t.id.split_once('.')
                && !self.techniques.contains_key(parent)
            {
                return bad(format!("sub-technique {} has no parent {parent}", t.id));
            }
        }
        for s in &self.stages {
            if let Some(t) = &s.tactic
                && !self.tactics.contains_key(t)
            {
                return bad(format!("stage {} names unknown tactic {t}", s.id));
            }
            if kill_chain_phase_name(s.kill_chain_phase) == "Unknown" {
                return bad(format!(
                    "stage {} names unknown kill-chain phase {}",
                    s.id, s.kill_chain_phase
                ));
            }
        }
        for kind in FindingKind::ALL {
            if !self.kinds.contains_key(&kind) {
                return bad(format!("kind {kind} has no entry"));
            }
        }
        for k in self.kinds.values() {
            if k.techniques.is_empty() || k.controls.is_empty() {
                return bad(format!("kind {} needs a technique and a control", k.kind));
            }
            if !self.stages.iter().any(|s| s.id == k.stage) {
                return bad(format!("kind {} names unknown stage {}", k.kind, k.stage));
            }
            for t in &k.techniques {
                if !self.techniques.contains_key(t) {
                    return bad(format!("kind {} names unknown technique {t}", k.kind));
                }
            }
            for c in &k.controls {
                if !self.controls.contains_key(&c.id) {
                    return bad(format!("kind {} names unknown control {}", k.kind, c.id));
                }
            }
        }
        Ok(())
    }

    /// Fill in a finding's title (if empty), stage, techniques (the
    /// detector's own, else the kind's), tactics, controls and action.
    /// Unknown techniques are dropped rather than reported as facts.
    pub fn apply(&self, f: &mut Finding) {
        let Some(info) = self.kinds.get(&f.kind) else {
            return;
        };
        if f.title.is_empty() {
            f.title = info.title.clone();
        }
        if f.stage.is_empty() {
            f.stage = info.stage.clone();
        }
        f.techniques.retain(|t| self.techniques.contains_key(t));
        if f.techniques.is_empty() {
            f.techniques = info.techniques.clone();
        }
        let mut tactics: Vec<String> = f
            .techniques
            .iter()
            .filter_map(|t| self.techniques.get(t))
            .flat_map(|t| t.tactics.iter().cloned())
            .collect();
        tactics.sort();
        tactics.dedup();
        f.tactics = tactics;
        f.controls = info.controls.clone();
        if f.action.is_empty() {
            f.action = info.action.clone();
        }
    }

    /// Techniques as people read them: `T1021.004 Remote Services: SSH`
    /// (the id alone when the knowledge base does not know it).
    pub fn named(&self, techniques: &[String]) -> Vec<String> {
        techniques
            .iter()
            .map(|t| match self.techniques.get(t) {
                Some(x) => format!("{t} {}", x.name),
                None => t.clone(),
            })
            .collect()
    }

    /// The stage's position in the kill chain (policy violations last).
    pub fn stage_order(&self, stage: &str) -> usize {
        self.stages
            .iter()
            .position(|s| s.id == stage)
            .unwrap_or(usize::MAX)
    }
}
