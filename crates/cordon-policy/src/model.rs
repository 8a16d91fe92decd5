//! The validated, resolved policy that the rest of Cordon trusts.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cordon_yaml::Pos;
use ipnet::IpNet;

use crate::ports::PortRange;
use crate::raw::RawPolicy;
pub use crate::terms::{Action, Criticality, Limit, Mode, Vendor};
use cordon_core::hostname::FqdnPattern;

/// Index of a group in [`Policy::groups`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u32);

/// Index of a rule in [`Policy::rules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub u32);

/// Index of a workload in [`Policy::workloads`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadId(pub u32);

impl GroupId {
    /// Built-in group `any`: everything.
    pub const ANY: GroupId = GroupId(0);
    /// Built-in group `internet`: public addresses and hostnames.
    pub const INTERNET: GroupId = GroupId(1);
    /// Built-in group `private`: RFC 1918, CGNAT and ULA addresses.
    pub const PRIVATE: GroupId = GroupId(2);
    /// How many built-in groups there are; user groups follow them.
    pub const BUILTIN_COUNT: u32 = 3;

    /// As an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl RuleId {
    /// As an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl WorkloadId {
    /// As an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A named thing with addresses and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Unique name.
    pub name: String,
    /// Addresses (IPv4-mapped IPv6 stored as IPv4).
    pub ips: Vec<IpAddr>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// SPIFFE ID, if any.
    pub spiffe: Option<String>,
    /// Where it was defined: `file:line:col`.
    pub origin: String,
}

/// A named selector of endpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Whether this is `any`, `internet` or `private`.
    pub builtin: bool,
    /// Workloads carrying all these labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Address ranges.
    pub cidrs: Vec<IpNet>,
    /// Hostname patterns.
    pub fqdns: Vec<FqdnPattern>,
    /// SPIFFE IDs.
    pub spiffe: Vec<String>,
    /// Cloud identities that belong to the group in audit logs.
    pub identities: Vec<crate::identity::CloudIdentity>,
    /// Categories of data the group's endpoints hold (personal data:
    /// `email`, `name`, `ip-address`...), for detection to weigh reads.
    pub data: Vec<String>,
    /// Nested groups (union).
    pub members: Vec<GroupId>,
    /// A third party outside the organisation.
    pub external: bool,
    /// Third-party metadata.
    pub vendor: Option<Vendor>,
    /// Where it was defined.
    pub pos: Option<Pos>,
}

/// A rule: from groups, to groups, ports, action.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Source groups (any of).
    pub from: Vec<GroupId>,
    /// Destination groups (any of).
    pub to: Vec<GroupId>,
    /// Protocols and ports (any of; empty means any).
    pub ports: Vec<PortRange>,
    /// allow or deny.
    pub action: Action,
    /// Egress limit.
    pub limit: Option<Limit>,
    /// Whether matches are logged.
    pub log: bool,
    /// Mode override.
    pub mode: Option<Mode>,
    /// Where it was defined.
    pub pos: Option<Pos>,
}

impl Rule {
    /// Whether the rule matches `(protocol, port)`.
    #[inline]
    pub fn matches_port(&self, protocol: crate::Protocol, port: u16) -> bool {
        self.ports.is_empty() || self.ports.iter().any(|p| p.matches(protocol, port))
    }
}

/// A validated policy: names resolved, inventory merged, no cycles.
#[derive(Clone, Debug)]
pub struct Policy {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.description`.
    pub description: Option<String>,
    /// Policy-wide mode.
    pub mode: Mode,
    /// Verdict when no rule matches.
    pub default: Action,
    /// Every workload, inline and from inventory files.
    pub workloads: Vec<Workload>,
    /// Built-in groups first (see [`GroupId`]), then user groups in file order.
    pub groups: Vec<Group>,
    /// Rules in file order.
    pub rules: Vec<Rule>,
    /// The file the policy came from.
    pub file: String,
    /// The document as written, for formatting.
    pub raw: RawPolicy,
}

impl Policy {
    /// The group called `name`.
    pub fn group_id(&self, name: &str) -> Option<GroupId> {
        self.groups
            .iter()
            .position(|g| g.name == name)
            .and_then(|i| u32::try_from(i).ok())
            .map(GroupId)
    }

    /// The group with id `id`.
    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(id.index())
    }

    /// `id` and every group nested in it, each once, in definition order
    /// (depth first). Resolution refused cycles, but the walk would end
    /// on one anyway.
    pub fn group_closure(&self, id: GroupId) -> Vec<GroupId> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(g) = stack.pop() {
            if out.contains(&g) {
                continue;
            }
            out.push(g);
            if let Some(group) = self.group(g) {
                stack.extend(group.members.iter().rev().copied());
            }
        }
        out
    }

    /// A group's name, or `?` for an id from another policy.
    pub fn group_name(&self, id: GroupId) -> &str {
        self.group(id).map_or("?", |g| g.name.as_str())
    }

    /// The vendor metadata declared under `name`, when a group has it.
    pub fn vendor(&self, name: &str) -> Option<&crate::terms::Vendor> {
        self.groups
            .iter()
            .filter_map(|g| g.vendor.as_ref())
            .find(|v| v.name == name)
    }

    /// The rule with id `id`.
    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id.index())
    }

    /// The workload called `name`.
    pub fn workload_id(&self, name: &str) -> Option<WorkloadId> {
        self.workloads
            .iter()
            .position(|w| w.name == name)
            .and_then(|i| u32::try_from(i).ok())
            .map(WorkloadId)
    }

    /// The workload with id `id`.
    pub fn workload(&self, id: WorkloadId) -> Option<&Workload> {
        self.workloads.get(id.index())
    }

    /// The effective mode of a rule.
    pub fn rule_mode(&self, rule: &Rule) -> Mode {
        rule.mode.unwrap_or(self.mode)
    }
}

/// Which groups contain which, through nested `groups:`, for reasoning
/// about rules without traffic (lint and diff).
#[derive(Clone, Debug)]
pub struct Containment {
    /// For each group, every group it contains (itself included).
    inside: Vec<Vec<bool>>,
}

impl Containment {
    /// Containment for `policy`'s groups.
    pub fn new(policy: &Policy) -> Self {
        let n = policy.groups.len();
        let mut inside = vec![vec![false; n]; n];
        for (outer, row) in inside.iter_mut().enumerate() {
            let mut stack = vec![outer];
            while let Some(g) = stack.pop() {
                if row.get(g).copied().unwrap_or(true) {
                    continue;
                }
                if let Some(cell) = row.get_mut(g) {
                    *cell = true;
                }
                if let Some(group) = policy.groups.get(g) {
                    stack.extend(group.members.iter().map(|m| m.index()));
                }
            }
        }
        Containment { inside }
    }

    /// Whether every member of `inner` is certainly a member of `outer`:
    /// the same group, `outer` is `any`, or `inner` is nested in `outer`.
    pub fn covers(&self, outer: GroupId, inner: GroupId) -> bool {
        outer == GroupId::ANY
            || self
                .inside
                .get(outer.index())
                .and_then(|row| row.get(inner.index()))
                .copied()
                .unwrap_or(false)
    }

    /// Whether `rule` certainly matches all traffic from `from` to `to` on
    /// `port`: a group of each side contains them and a port range holds it.
    pub fn rule_covers(&self, rule: &Rule, from: GroupId, to: GroupId, port: &PortRange) -> bool {
        rule.from.iter().any(|g| self.covers(*g, from))
            && rule.to.iter().any(|g| self.covers(*g, to))
            && rule.port_list().iter().any(|p| port.is_within(p))
    }
}

impl Rule {
    /// The rule's ports, with "no ports" spelled as [`PortRange::ANY`].
    pub fn port_list(&self) -> Vec<PortRange> {
        if self.ports.is_empty() {
            vec![PortRange::ANY]
        } else {
            self.ports.clone()
        }
    }
}
