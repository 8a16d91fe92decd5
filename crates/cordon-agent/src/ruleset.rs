//! The nftables script for one host.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use cordon_policy::FqdnPattern;
use cordon_policy::model::{Action, GroupId, Mode, Policy, Rule};
use cordon_policy::{CompiledPolicy, Endpoint};
use ipnet::IpNet;

pub use model::{Chain, Element, Hook, Key, Match, Set, Side, Table, Verdict};

use model::Rule as NftRule;

/// The table the agent owns.
pub const TABLE: &str = "cordon";

/// The comment that marks the table as the agent's.
pub const OWNER: &str = "managed by cordon agent";

/// A compiled ruleset and what it could not enforce.
#[derive(Clone, Debug)]
pub struct Ruleset {
    /// The table that replaces the agent's table atomically.
    pub table: Table,
    /// Rules that apply to this host.
    pub rules: usize,
    /// What is not enforced, and why.
    pub warnings: Vec<String>,
}

impl Ruleset {
    /// The nft script that loads the table (`nft -f`).
    #[must_use]
    pub fn script(&self) -> String {
        self.table.script()
    }
}

/// Why no ruleset could be made.
#[derive(Debug, thiserror::Error)]
pub enum RulesetError {
    /// No address to enforce for.
    #[error("no addresses for this host: name a workload of the inventory or give --self-ip")]
    NoAddresses,
    /// A workload name not in the inventory.
    #[error("no workload named `{0}` in the policy's inventory")]
    UnknownWorkload(String),
}

/// A group's addresses by family, and whether hostnames may add more.
struct GroupSets {
    v4: Vec<IpNet>,
    v6: Vec<IpNet>,
    /// Exact hostnames: their addresses change, so both sets stay (and a
    /// change is an element update, not a new table).
    resolves: bool,
}

impl GroupSets {
    fn new(
        policy: &Policy,
        compiled: &CompiledPolicy,
        group: GroupId,
        resolve: &dyn Fn(&str) -> Vec<IpAddr>,
    ) -> GroupSets {
        let (v6, v4): (Vec<IpNet>, Vec<IpNet>) = compiled
            .group_addresses(group, resolve)
            .unwrap_or_default()
            .into_iter()
            .partition(|n| matches!(n, IpNet::V6(_)));
        GroupSets {
            v4,
            v6,
            resolves: hostnames(policy, group).iter().any(|f| !f.wildcard),
        }
    }

    fn needed(&self, v6: bool) -> bool {
        self.resolves || !if v6 { &self.v6 } else { &self.v4 }.is_empty()
    }
}

/// The hostname patterns of `group`, through members.
fn hostnames(policy: &Policy, group: GroupId) -> Vec<FqdnPattern> {
    policy
        .group_closure(group)
        .into_iter()
        .filter_map(|id| policy.group(id))
        .flat_map(|g| g.fqdns.iter().cloned())
        .collect()
}

fn set_name(group: GroupId, v6: bool) -> String {
    format!("g{}_{}", group.0, if v6 { "v6" } else { "v4" })
}

/// A comment-safe rule name for log prefixes.
fn label(rule: &Rule) -> String {
    rule.name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect()
}

/// Compile `compiled`'s policy for a host with `self_ips`, without
/// resolving hostnames. `audit` makes every deny a logged accept.
///
/// # Errors
/// No addresses to enforce for.
pub fn ruleset(
    compiled: &CompiledPolicy,
    self_ips: &[IpAddr],
    audit: bool,
) -> Result<Ruleset, RulesetError> {
    ruleset_resolving(compiled, self_ips, audit, &|_| Vec::new())
}

/// [`ruleset`], with exact hostnames of FQDN groups turned into set
/// elements by `resolve` (the addresses they have now: the caller
/// recompiles to follow changes). Wildcard patterns cannot be resolved and
/// are reported as not enforced.
///
/// # Errors
/// No addresses to enforce for.
pub fn ruleset_resolving(
    compiled: &CompiledPolicy,
    self_ips: &[IpAddr],
    audit: bool,
    resolve: &dyn Fn(&str) -> Vec<IpAddr>,
) -> Result<Ruleset, RulesetError> {
    ruleset_with_responses(
        compiled,
        self_ips,
        audit,
        resolve,
        &response::ResponseSets::default(),
    )
}

/// [`ruleset_resolving`] with the responses in force on this host
/// ([`response::response_sets`]) in their sets. The sets and the rules
/// that read them are there when no response is, so responses change
/// elements only.
///
/// # Errors
/// No addresses to enforce for.
pub fn ruleset_with_responses(
    compiled: &CompiledPolicy,
    self_ips: &[IpAddr],
    audit: bool,
    resolve: &dyn Fn(&str) -> Vec<IpAddr>,
    responses: &response::ResponseSets,
) -> Result<Ruleset, RulesetError> {
    if self_ips.is_empty() {
        return Err(RulesetError::NoAddresses);
    }
    let policy = compiled.policy();
    // Each of the host's addresses with its groups: a host's addresses
    // need not share them (an IPv4 address in a CIDR group, the IPv6 one
    // not).
    let own_groups: Vec<(IpAddr, BTreeSet<GroupId>)> = self_ips
        .iter()
        .map(|ip| {
            (
                *ip,
                compiled.membership(&Endpoint::ip(*ip)).iter().collect(),
            )
        })
        .collect();
    let mine: BTreeSet<GroupId> = own_groups
        .iter()
        .flat_map(|(_, g)| g.iter().copied())
        .collect();
    let mut own_sets: BTreeMap<Vec<IpAddr>, usize> = BTreeMap::new();
    let audit_policy = audit || policy.mode == Mode::Audit;
    let mut warnings = Vec::new();
    let mut group_sets: BTreeMap<GroupId, GroupSets> = BTreeMap::new();
    let mut specials = BTreeSet::new();
    let mut input = ChainRules::new("input");
    let mut output = ChainRules::new("output");
    let mut count = 0;
    // Enforced denies, then audited denies, then allows, whatever the
    // order in the policy: an enforced deny overrides an audited one, which
    // overrides an allow (the policy engine's order; see `portmap`).
    for action in [Action::Deny, Action::Allow] {
        for rule in policy.rules.iter().filter(|r| r.action == action) {
            let enforce = match rule.mode {
                Some(Mode::Enforce) => !audit,
                Some(Mode::Audit) => false,
                None => !audit_policy,
            };
            let (log, verdict) = match (action, enforce) {
                (Action::Allow, _) => (None, Verdict::Accept),
                (Action::Deny, true) => (
                    Some(format!("cordon deny {}: ", label(rule))),
                    Verdict::Drop,
                ),
                (Action::Deny, false) => (
                    Some(format!("cordon would-deny {}: ", label(rule))),
                    Verdict::Accept,
                ),
            };
            let template = NftRule {
                matches: Vec::new(),
                counter: true,
                log,
                verdict,
                comment: Some(label(rule)),
            };
            for (chain, own, peers, side) in [
                (&mut input, &rule.to, &rule.from, Side::Source),
                (&mut output, &rule.from, &rule.to, Side::Destination),
            ] {
                if !own.iter().any(|g| mine.contains(g)) {
                    continue;
                }
                count += 1;
                // The host's addresses this rule is about; when not all of
                // them, the rule also matches the local address.
                let own_side = match side {
                    Side::Source => Side::Destination,
                    Side::Destination => Side::Source,
                };
                let own_ips: Vec<IpAddr> = own_groups
                    .iter()
                    .filter(|(_, groups)| own.iter().any(|g| groups.contains(g)))
                    .map(|(ip, _)| *ip)
                    .collect();
                let local: Option<[Option<Match>; 2]> =
                    (own_ips.len() < own_groups.len()).then(|| {
                        let n = own_sets.len();
                        let k = *own_sets.entry(own_ips.clone()).or_insert(n);
                        [false, true].map(|v6| {
                            own_ips
                                .iter()
                                .any(|ip| ip.is_ipv6() == v6)
                                .then(|| Match::AddressIn {
                                    v6,
                                    side: own_side,
                                    set: format!("self{k}_{}", if v6 { "v6" } else { "v4" }),
                                    negate: false,
                                })
                        })
                    });
                for peer in peers {
                    for f in hostnames(policy, *peer) {
                        if f.wildcard {
                            warnings.push(format!(
                                "rule `{}`: `{f}` in group `{}` is not enforced (a wildcard cannot be resolved to addresses)",
                                rule.name,
                                policy.group_name(*peer)
                            ));
                        } else if resolve(f.name.as_str()).is_empty() {
                            warnings.push(format!(
                                "rule `{}`: `{f}` in group `{}` did not resolve; it matches nothing until it does",
                                rule.name,
                                policy.group_name(*peer)
                            ));
                        }
                    }
                    let within = |v6: bool, set: String, negate: bool| Match::AddressIn {
                        v6,
                        side,
                        set,
                        negate,
                    };
                    let addr: Vec<Vec<Match>> = match *peer {
                        GroupId::ANY => vec![Vec::new()],
                        GroupId::INTERNET => {
                            specials.insert("internet");
                            vec![
                                vec![within(false, "not_internet_v4".into(), true)],
                                vec![
                                    Match::AddressPrefix {
                                        side,
                                        net: global_unicast(),
                                    },
                                    within(true, "not_internet_v6".into(), true),
                                ],
                            ]
                        }
                        GroupId::PRIVATE => {
                            specials.insert("private");
                            vec![
                                vec![within(false, "private_v4".into(), false)],
                                vec![Match::AddressPrefix {
                                    side,
                                    net: unique_local(),
                                }],
                            ]
                        }
                        g => {
                            let sets = group_sets
                                .entry(g)
                                .or_insert_with(|| GroupSets::new(policy, compiled, g, resolve));
                            // A family the group has no address in, and no
                            // hostname that could give it one, needs no
                            // set and no rule: nothing could match.
                            [false, true]
                                .into_iter()
                                .filter(|v6| sets.needed(*v6))
                                .map(|v6| vec![within(v6, set_name(g, v6), false)])
                                .collect()
                        }
                    };
                    for a in with_local(addr, local.as_ref()) {
                        let tier = match (action, enforce) {
                            (Action::Deny, true) => Tier::Deny,
                            (Action::Deny, false) => Tier::WouldDeny,
                            (Action::Allow, _) => Tier::Allow,
                        };
                        chain.add(tier, a, &rule.ports, &template);
                    }
                }
            }
        }
    }
    warnings.sort();
    warnings.dedup();
    let (log, verdict, comment) = match (policy.default, audit_policy) {
        (Action::Allow, _) => (None, Verdict::Accept, "default allow"),
        (Action::Deny, false) => (
            Some("cordon deny default: ".to_string()),
            Verdict::Drop,
            "default deny",
        ),
        (Action::Deny, true) => (
            Some("cordon would-deny default: ".to_string()),
            Verdict::Accept,
            "default deny (audit)",
        ),
    };
    let default = NftRule {
        matches: Vec::new(),
        counter: true,
        log,
        verdict,
        comment: Some(comment.into()),
    };
    let mut sets = Vec::new();
    for (g, group) in group_sets {
        for (v6, nets) in [(false, &group.v4), (true, &group.v6)] {
            if !group.needed(v6) {
                continue;
            }
            sets.push(Set {
                name: set_name(g, v6),
                key: if v6 { Key::Ipv6 } else { Key::Ipv4 },
                map: false,
                interval: true,
                comment: Some(format!("group {}", label_text(policy.group_name(g)))),
                elements: model::ranges(nets),
            });
        }
    }
    let fixed = |name: &str, key: Key, list: &[&str]| Set {
        name: name.into(),
        key,
        map: false,
        interval: true,
        comment: None,
        elements: model::ranges(
            &list
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<_>>(),
        ),
    };
    if specials.contains("internet") {
        sets.push(fixed(
            "not_internet_v4",
            Key::Ipv4,
            cordon_core::ip::NOT_INTERNET_V4,
        ));
        sets.push(fixed(
            "not_internet_v6",
            Key::Ipv6,
            cordon_core::ip::NOT_INTERNET_V6_IN_GLOBAL,
        ));
    }
    if specials.contains("private") {
        let v4: Vec<&str> = cordon_core::ip::PRIVATE
            .iter()
            .copied()
            .filter(|p| !p.contains(':'))
            .collect();
        sets.push(fixed("private_v4", Key::Ipv4, &v4));
    }
    for (ips, k) in &own_sets {
        for v6 in [false, true] {
            let nets: Vec<IpNet> = ips
                .iter()
                .filter(|ip| ip.is_ipv6() == v6)
                .map(|ip| IpNet::from(*ip))
                .collect();
            if !nets.is_empty() {
                sets.push(Set {
                    name: format!("self{k}_{}", if v6 { "v6" } else { "v4" }),
                    key: if v6 { Key::Ipv6 } else { Key::Ipv4 },
                    map: false,
                    interval: true,
                    comment: Some("this host's addresses a rule is about".into()),
                    elements: model::ranges(&nets),
                });
            }
        }
    }
    sets.extend(response::sets(responses));
    let mut chains = Vec::new();
    for (rules, hook) in [(input, Hook::Input), (output, Hook::Output)] {
        // Responses are explicit actions: enforced whatever the policy's
        // mode, logged only when the agent itself runs in audit mode.
        let first = response::rules(hook, audit);
        rules.finish(hook, &first, &default, &mut sets, &mut chains);
    }
    Ok(Ruleset {
        table: Table {
            comment: format!("{OWNER}; policy {}", label_text(&policy.name)),
            sets,
            chains,
        },
        rules: count,
        warnings,
    })
}

/// The address family a rule's matches pin down, if any.
fn family(matches: &[Match]) -> Option<bool> {
    matches.iter().find_map(|m| match m {
        Match::AddressIn { v6, .. } => Some(*v6),
        Match::AddressPrefix { net, .. } => Some(matches!(net, IpNet::V6(_))),
        _ => None,
    })
}

/// `peer` variants constrained to the host's own addresses in `local`
/// (per family; `None` for no constraint): a variant of a family with no
/// such address is dropped, one of no family is split by family.
fn with_local(peer: Vec<Vec<Match>>, local: Option<&[Option<Match>; 2]>) -> Vec<Vec<Match>> {
    let Some(local) = local else {
        return peer;
    };
    let mut out = Vec::new();
    for variant in peer {
        let families: Vec<bool> = match family(&variant) {
            Some(v6) => vec![v6],
            None => vec![false, true],
        };
        for v6 in families {
            if let Some(Some(own)) = local.get(usize::from(v6)) {
                let mut v = variant.clone();
                v.push(own.clone());
                out.push(v);
            }
        }
    }
    out
}

/// `2000::/3`: where global IPv6 unicast addresses are.
fn global_unicast() -> IpNet {
    IpNet::V6(
        ipnet::Ipv6Net::new(std::net::Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3)
            .unwrap_or_default(),
    )
}

/// `fc00::/7`: IPv6 unique local addresses.
fn unique_local() -> IpNet {
    IpNet::V6(
        ipnet::Ipv6Net::new(std::net::Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7)
            .unwrap_or_default(),
    )
}

fn label_text(s: &str) -> String {
    model::quoted(s, 60)
}

pub mod model;
mod portmap;
pub mod response;

use portmap::{ChainRules, Tier};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod semantics;
