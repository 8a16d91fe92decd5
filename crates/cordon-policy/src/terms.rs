//! The words a policy is written in, shared by what users write
//! ([`crate::raw`]) and what the rest of Cordon trusts ([`crate::model`]):
//! actions, modes, vendor metadata and egress limits.

use std::fmt;

use cordon_core::units::{ByteSize, Window};
use serde::Serialize;

/// What a rule does with the traffic it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let it pass.
    Allow,
    /// Stop it.
    Deny,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        })
    }
}

/// Whether denies are enforced or only recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Denied traffic is stopped.
    Enforce,
    /// Everything passes; what would be denied is recorded as would-deny.
    Audit,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        })
    }
}

/// How much a third party matters to the business.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Criticality {
    /// Parse `low`, `medium`, `high` or `critical`.
    pub fn from_name(name: &str) -> Option<Criticality> {
        match name {
            "low" => Some(Criticality::Low),
            "medium" => Some(Criticality::Medium),
            "high" => Some(Criticality::High),
            "critical" => Some(Criticality::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Criticality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Criticality::Low => "low",
            Criticality::Medium => "medium",
            Criticality::High => "high",
            Criticality::Critical => "critical",
        })
    }
}

/// Third-party metadata on an external group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vendor {
    /// The vendor's name.
    pub name: String,
    /// Data categories shared with it (`email`, `name`, `ip-address`, ...).
    pub data: Vec<String>,
    /// How much it matters.
    pub criticality: Option<Criticality>,
    /// Who to call.
    pub contact: Option<String>,
    /// Contract reference.
    pub contract: Option<String>,
}

/// Egress limit: bytes from clients to the destination per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// Bytes sent per window.
    #[serde(serialize_with = "serialize_display")]
    pub bytes_out: ByteSize,
    /// The window.
    #[serde(serialize_with = "serialize_display")]
    pub per: Window,
}

fn serialize_display<T: fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}
