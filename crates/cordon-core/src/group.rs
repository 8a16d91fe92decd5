//! Group names, and the groups every policy has without declaring them.

use std::fmt;
use std::sync::Arc;

/// A shared name (group, workload, vendor, rule): enrichment gives the same
/// few names to millions of flows, so they are shared, not copied.
pub type Name = Arc<str>;

/// A shared list of names (the groups of an endpoint).
pub type Names = Arc<[Name]>;

/// The built-in groups (DESIGN §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WellKnownGroup {
    /// Every address.
    Any,
    /// Every address outside private, loopback, link-local, CGNAT,
    /// multicast, documentation and reserved ranges.
    Internet,
    /// RFC 1918, CGNAT and ULA space.
    Private,
}

impl WellKnownGroup {
    /// Every built-in group.
    pub const ALL: [WellKnownGroup; 3] = [
        WellKnownGroup::Any,
        WellKnownGroup::Internet,
        WellKnownGroup::Private,
    ];

    /// The group's name in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            WellKnownGroup::Any => "any",
            WellKnownGroup::Internet => "internet",
            WellKnownGroup::Private => "private",
        }
    }

    /// The built-in group named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<WellKnownGroup> {
        match name {
            "any" => Some(WellKnownGroup::Any),
            "internet" => Some(WellKnownGroup::Internet),
            "private" => Some(WellKnownGroup::Private),
            _ => None,
        }
    }

    /// Whether `name` names a built-in group that describes address space
    /// (`internet`, `private`) rather than a set of workloads.
    pub fn is_address_space(name: &str) -> bool {
        matches!(
            WellKnownGroup::from_name(name),
            Some(WellKnownGroup::Internet | WellKnownGroup::Private)
        )
    }
}

impl fmt::Display for WellKnownGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The first of `groups` (an endpoint's groups as enrichment lists them)
/// that is a user group rather than address space (`internet`, `private`):
/// the group an endpoint is best told by.
pub fn first_user_group(groups: &[Name]) -> Option<&Name> {
    groups.iter().find(|g| !WellKnownGroup::is_address_space(g))
}

#[cfg(test)]
mod tests {
    use super::{Name, WellKnownGroup, first_user_group};

    #[test]
    fn user_groups_come_before_address_space() {
        let groups: Vec<Name> = ["private", "internet", "web"]
            .into_iter()
            .map(Name::from)
            .collect();
        assert_eq!(first_user_group(&groups).map(|g| &**g), Some("web"));
        let space: Vec<Name> = ["private"].into_iter().map(Name::from).collect();
        assert_eq!(first_user_group(&space), None);
        assert_eq!(
            WellKnownGroup::from_name("internet"),
            Some(WellKnownGroup::Internet)
        );
        assert!(!WellKnownGroup::is_address_space("any"));
        for g in WellKnownGroup::ALL {
            assert_eq!(WellKnownGroup::from_name(g.as_str()), Some(g));
        }
    }
}
