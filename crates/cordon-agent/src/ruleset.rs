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

/// Addresses of `group`: workloads in it, its CIDRs and the addresses its
/// exact hostnames resolve to, through members; `None` for `any`.
fn addresses(
    policy: &Policy,
    compiled: &CompiledPolicy,
    group: GroupId,
    resolve: &dyn Fn(&str) -> Vec<IpAddr>,
) -> Option<BTreeSet<IpNet>> {
    if group == GroupId::ANY {
        return None;
    }
    let mut out = BTreeSet::new();
    for w in &policy.workloads {
        for ip in &w.ips {
            if compiled.membership(&Endpoint::ip(*ip)).contains(group) {
                out.insert(IpNet::from(*ip));
            }
        }
    }
    for g in policy
        .group_closure(group)
        .into_iter()
        .filter_map(|id| policy.group(id))
    {
        out.extend(g.cidrs.iter().map(IpNet::trunc));
        for f in g.fqdns.iter().filter(|f| !f.wildcard) {
            out.extend(resolve(f.name.as_str()).into_iter().map(IpNet::from));
        }
    }
    // Overlaps (a workload inside one of the group's CIDRs) are merged
    // into one interval when the set is made.
    Some(out)
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
        let (v6, v4): (Vec<IpNet>, Vec<IpNet>) = addresses(policy, compiled, group, resolve)
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
    if self_ips.is_empty() {
        return Err(RulesetError::NoAddresses);
    }
    let policy = compiled.policy();
    let mine: BTreeSet<GroupId> = self_ips
        .iter()
        .flat_map(|ip| {
            compiled
                .membership(&Endpoint::ip(*ip))
                .iter()
                .collect::<Vec<_>>()
        })
        .collect();
    let audit_policy = audit || policy.mode == Mode::Audit;
    let mut warnings = Vec::new();
    let mut group_sets: BTreeMap<GroupId, GroupSets> = BTreeMap::new();
    let mut specials = BTreeSet::new();
    let mut input = ChainRules::new("input");
    let mut output = ChainRules::new("output");
    let mut count = 0;
    // Denies first, then allows: deny overrides allow whatever the order.
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
                    for a in addr {
                        chain.add(action == Action::Deny, a, &rule.ports, &template);
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
            cordon_policy::special::NOT_INTERNET_V4,
        ));
        sets.push(fixed(
            "not_internet_v6",
            Key::Ipv6,
            cordon_policy::special::NOT_INTERNET_V6_IN_GLOBAL,
        ));
    }
    if specials.contains("private") {
        let v4: Vec<&str> = cordon_policy::special::PRIVATE
            .iter()
            .copied()
            .filter(|p| !p.contains(':'))
            .collect();
        sets.push(fixed("private_v4", Key::Ipv4, &v4));
    }
    let mut chains = Vec::new();
    for (rules, hook) in [(input, Hook::Input), (output, Hook::Output)] {
        rules.finish(hook, &default, &mut sets, &mut chains);
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

use portmap::ChainRules;

#[cfg(test)]
mod tests;
