//! The incident: findings on one attack path, with the people's side of it
//! (status, who changed it, when and why).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use cordon_detect::Severity;
use serde::{Deserialize, Serialize};

/// Where a responder is with an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nobody has taken it yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Closed, with a note saying how.
    Resolved,
}

impl Status {
    /// Every status, in workflow order.
    pub const ALL: [Status; 3] = [Status::Open, Status::Acknowledged, Status::Resolved];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one.
#[derive(Debug, thiserror::Error)]
#[error("unknown incident status `{0}` (open, acknowledged, resolved)")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Status, UnknownStatus> {
        match s {
            "open" => Ok(Status::Open),
            "acknowledged" | "ack" => Ok(Status::Acknowledged),
            "resolved" => Ok(Status::Resolved),
            _ => Err(UnknownStatus(s.to_string())),
        }
    }
}

/// One change of status: who, when, and their note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The new status.
    pub status: Status,
    /// Who changed it (a person's name, or `cordon` when the engine did).
    pub by: String,
    /// When, ms since the epoch (wall clock).
    pub at_ms: i64,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// What an entity is to the incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A third party whose trusted path the attack came through.
    Vendor,
    /// An internal host or workload the attacker acted from or reached.
    Host,
    /// An external address or name the attacker talked to.
    External,
    /// A cloud identity (user, role, service account) the attacker used.
    Identity,
}

impl Role {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Vendor => "vendor",
            Role::Host => "host",
            Role::External => "external",
            Role::Identity => "identity",
        }
    }
}

/// Something the incident involves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentEntity {
    /// What it is to the incident.
    pub role: Role,
    /// How it is shown: workload, vendor, hostname or address.
    pub label: String,
    /// Its address, when one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Its hostname, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Its policy groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// One kill-chain stage of the incident and the findings in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentStage {
    /// Stage id from the knowledge base (`lateral-movement`).
    pub stage: String,
    /// Its name (`Lateral movement`).
    pub name: String,
    /// Its ATT&CK tactic, when one (`TA0008`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tactic: Option<String>,
    /// Ids of the findings in this stage, oldest first.
    pub findings: Vec<String>,
    /// Techniques seen in this stage.
    pub techniques: Vec<String>,
    /// First evidence in this stage.
    pub first_ms: i64,
    /// Last evidence in this stage.
    pub last_ms: i64,
}

/// Findings on one attack path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable id (`INC-3f9a1c2b`): kept when the incident grows.
    pub id: String,
    /// One line a responder reads first.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Why that severity.
    pub severity_reason: String,
    /// Where a responder is with it.
    pub status: Status,
    /// Every status change, oldest first.
    #[serde(default)]
    pub history: Vec<StatusChange>,
    /// The stages in kill-chain order.
    pub stages: Vec<IncidentStage>,
    /// Every finding, oldest first.
    pub findings: Vec<String>,
    /// Who and what is involved.
    pub entities: Vec<IncidentEntity>,
    /// ATT&CK techniques.
    pub techniques: Vec<String>,
    /// ATT&CK tactics.
    pub tactics: Vec<String>,
    /// Compliance controls touched.
    pub controls: Vec<String>,
    /// First evidence, ms since the epoch.
    pub first_ms: i64,
    /// Last evidence.
    pub last_ms: i64,
}

impl Incident {
    /// Whether finding `id` is part of this incident.
    pub fn holds(&self, id: &str) -> bool {
        self.findings.iter().any(|f| f == id)
    }

    /// The stage ids, in order.
    pub fn stage_ids(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.stage.as_str()).collect()
    }
}
