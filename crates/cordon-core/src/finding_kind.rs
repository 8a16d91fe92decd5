//! The kinds of finding detection reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a finding is about (the knowledge base maps each kind to ATT&CK
/// techniques, a kill-chain stage and compliance controls).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// Regular connections to one destination.
    Beaconing,
    /// One connection held open far longer than usual.
    LongConnection,
    /// Data moved out far above the source's baseline.
    Exfiltration,
    /// Data moved out to cloud object storage that is no declared vendor.
    CloudExfiltration,
    /// A vendor reaching outside its learned baseline.
    VendorDrift,
    /// Regular traffic to an external party no policy declares.
    ShadowVendor,
    /// Admin or database sessions between internal endpoints.
    LateralMovement,
    /// Port or host scans.
    ServiceDiscovery,
    /// Failed authentication sessions, to one host or sprayed.
    BruteForce,
    /// Traffic with a threat-intel indicator.
    ThreatIntel,
    /// Denied and would-deny flows.
    PolicyViolation,
    /// A cloud identity used the way a stolen one is (sign-ins without
    /// MFA, failures then success).
    CloudAccountCompromise,
    /// Cloud data shared with another account or the public.
    CloudDataShared,
    /// Credentials, trust or permissions planted in a cloud account.
    CloudPersistence,
    /// Cloud logging, detection or guardrails switched off or opened.
    CloudDefensesImpaired,
    /// A cloud identity reading stored data or secrets in bulk.
    CloudBulkRead,
    /// A security-relevant change to a cloud account (network perimeter,
    /// identities, logging, keys, snapshots, commands to instances).
    CloudConfigChange,
    /// A cloud identity mapping the account: its organisation, contacts,
    /// mail sending, other accounts' snapshots, or many calls refused.
    CloudDiscovery,
    /// A cloud identity reaching credentials, logs, data of another
    /// account or paid services one call at a time.
    CloudSensitiveAccess,
    /// Cloud data deleted in bulk or encrypted with keys the account does
    /// not hold.
    CloudDataDestroyed,
    /// Cloud storage used by anyone (requests with no credentials) or by
    /// an account outside the organisation that the policy does not name.
    CloudStorageExposed,
}

impl FindingKind {
    /// Every kind.
    pub const ALL: [FindingKind; 21] = [
        FindingKind::Beaconing,
        FindingKind::LongConnection,
        FindingKind::Exfiltration,
        FindingKind::CloudExfiltration,
        FindingKind::VendorDrift,
        FindingKind::ShadowVendor,
        FindingKind::LateralMovement,
        FindingKind::ServiceDiscovery,
        FindingKind::BruteForce,
        FindingKind::ThreatIntel,
        FindingKind::PolicyViolation,
        FindingKind::CloudAccountCompromise,
        FindingKind::CloudDataShared,
        FindingKind::CloudPersistence,
        FindingKind::CloudDefensesImpaired,
        FindingKind::CloudBulkRead,
        FindingKind::CloudConfigChange,
        FindingKind::CloudDiscovery,
        FindingKind::CloudSensitiveAccess,
        FindingKind::CloudDataDestroyed,
        FindingKind::CloudStorageExposed,
    ];

    /// The kind's name (`beaconing`, `cloud-exfiltration`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Beaconing => "beaconing",
            FindingKind::LongConnection => "long-connection",
            FindingKind::Exfiltration => "exfiltration",
            FindingKind::CloudExfiltration => "cloud-exfiltration",
            FindingKind::VendorDrift => "vendor-drift",
            FindingKind::ShadowVendor => "shadow-vendor",
            FindingKind::LateralMovement => "lateral-movement",
            FindingKind::ServiceDiscovery => "service-discovery",
            FindingKind::BruteForce => "brute-force",
            FindingKind::ThreatIntel => "threat-intel",
            FindingKind::PolicyViolation => "policy-violation",
            FindingKind::CloudAccountCompromise => "cloud-account-compromise",
            FindingKind::CloudDataShared => "cloud-data-shared",
            FindingKind::CloudPersistence => "cloud-persistence",
            FindingKind::CloudDefensesImpaired => "cloud-defenses-impaired",
            FindingKind::CloudBulkRead => "cloud-bulk-read",
            FindingKind::CloudConfigChange => "cloud-config-change",
            FindingKind::CloudDiscovery => "cloud-discovery",
            FindingKind::CloudSensitiveAccess => "cloud-sensitive-access",
            FindingKind::CloudDataDestroyed => "cloud-data-destroyed",
            FindingKind::CloudStorageExposed => "cloud-storage-exposed",
        }
    }

    /// Whether the kind is data leaving (to anywhere, or to cloud storage).
    pub fn is_exfiltration(self) -> bool {
        matches!(
            self,
            FindingKind::Exfiltration | FindingKind::CloudExfiltration
        )
    }

    /// Whether the kind is found in cloud audit events (the control and
    /// data planes) rather than in flows.
    pub fn is_cloud_plane(self) -> bool {
        matches!(
            self,
            FindingKind::CloudAccountCompromise
                | FindingKind::CloudDataShared
                | FindingKind::CloudPersistence
                | FindingKind::CloudDefensesImpaired
                | FindingKind::CloudBulkRead
                | FindingKind::CloudConfigChange
                | FindingKind::CloudDiscovery
                | FindingKind::CloudSensitiveAccess
                | FindingKind::CloudDataDestroyed
                | FindingKind::CloudStorageExposed
        )
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A word that is not a finding kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a finding kind")]
pub struct UnknownFindingKind(pub String);

impl FromStr for FindingKind {
    type Err = UnknownFindingKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FindingKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownFindingKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::FindingKind;

    #[test]
    fn names_round_trip() {
        for k in FindingKind::ALL {
            assert_eq!(k.as_str().parse::<FindingKind>(), Ok(k));
            let json = serde_json::to_string(&k).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<FindingKind>(&json).ok(), Some(k));
        }
        assert!("exfil".parse::<FindingKind>().is_err());
    }

    #[test]
    fn a_kind_fills_the_width_a_table_gives_it() {
        assert_eq!(format!("{:<12}|", FindingKind::Beaconing), "beaconing   |");
        assert_eq!(format!("{}", FindingKind::Beaconing), "beaconing");
    }
}
