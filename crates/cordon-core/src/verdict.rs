//! What a policy says about a connection.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What the policy says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Verdict {
    /// Allowed.
    #[serde(rename = "allow")]
    Allow,
    /// Denied and stopped.
    #[serde(rename = "deny")]
    Deny,
    /// Denied in audit mode: let through and recorded.
    #[serde(rename = "would-deny")]
    WouldDeny,
}

impl Verdict {
    /// Every verdict.
    pub const ALL: [Verdict; 3] = [Verdict::Allow, Verdict::Deny, Verdict::WouldDeny];

    /// Whether the traffic passes.
    pub fn passes(self) -> bool {
        !matches!(self, Verdict::Deny)
    }

    /// Whether a rule denied it (enforced or audited).
    pub fn is_denial(self) -> bool {
        !matches!(self, Verdict::Allow)
    }

    /// `allow`, `deny` or `would-deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::WouldDeny => "would-deny",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A word that is not a verdict.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a verdict (allow, deny, would-deny)")]
pub struct UnknownVerdict(pub String);

impl FromStr for Verdict {
    type Err = UnknownVerdict;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verdict::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVerdict(s.to_string()))
    }
}
