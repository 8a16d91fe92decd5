//! The nftables script for one host.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;

use cordon_policy::FqdnPattern;
use cordon_policy::model::{Action, GroupId, Mode, Policy, Rule};
use cordon_policy::ports::{PortRange, Protocol};
use cordon_policy::{CompiledPolicy, Endpoint};
use ipnet::IpNet;

use crate::flows::NFLOG_GROUP;

/// The table the agent owns.
pub const TABLE: &str = "cordon";

/// The comment that marks the table as the agent's.
pub const OWNER: &str = "managed by cordon agent";

/// A compiled ruleset and what it could not enforce.
#[derive(Clone, Debug)]
pub struct Ruleset {
    /// The nftables script (replaces the table atomically).
    pub script: String,
    /// Rules that apply to this host.
    pub rules: usize,
    /// What is not enforced, and why.
    pub warnings: Vec<String>,
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
    // An interval set refuses overlapping elements (a workload inside one of
    // the group's CIDRs): merge them.
    let nets: Vec<IpNet> = out.into_iter().collect();
    Some(IpNet::aggregate(&nets).into_iter().collect())
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

/// The nft match for the ports of a rule: one entry per protocol.
fn port_matches(ports: &[PortRange]) -> Vec<String> {
    if ports.is_empty() || ports.iter().any(|p| p.protocol.is_none()) {
        return vec![String::new()];
    }
    let mut out = Vec::new();
    for proto in [Protocol::TCP, Protocol::UDP, Protocol::SCTP] {
        let list: Vec<&PortRange> = ports.iter().filter(|p| p.protocol == Some(proto)).collect();
        if list.is_empty() {
            continue;
        }
        let name = proto.name();
        if list.iter().any(|p| p.is_all_ports()) {
            out.push(format!("meta l4proto {name} "));
            continue;
        }
        let items: Vec<String> = list
            .iter()
            .map(|p| {
                if p.first == p.last {
                    p.first.to_string()
                } else {
                    format!("{}-{}", p.first, p.last)
                }
            })
            .collect();
        out.push(format!("{name} dport {{ {} }} ", items.join(", ")));
    }
    for p in ports {
        match p.protocol {
            Some(Protocol::ICMP) => out.push("meta l4proto icmp ".into()),
            Some(Protocol::ICMPV6) => out.push("meta l4proto ipv6-icmp ".into()),
            Some(Protocol(n)) if !Protocol(n).has_ports() => out.push(format!("meta l4proto {n} ")),
            _ => {}
        }
    }
    out.dedup();
    out
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
    let mut sets: BTreeSet<GroupId> = BTreeSet::new();
    let mut specials = BTreeSet::new();
    let mut input = ChainRules::default();
    let mut output = ChainRules::default();
    let mut count = 0;
    // Denies first, then allows: deny overrides allow whatever the order.
    for action in [Action::Deny, Action::Allow] {
        for rule in policy.rules.iter().filter(|r| r.action == action) {
            let enforce = match rule.mode {
                Some(Mode::Enforce) => !audit,
                Some(Mode::Audit) => false,
                None => !audit_policy,
            };
            let verdict = match (action, enforce) {
                (Action::Allow, _) => "counter accept".to_string(),
                (Action::Deny, true) => {
                    format!(
                        "counter log group {NFLOG_GROUP} prefix \"cordon deny {}: \" drop",
                        label(rule)
                    )
                }
                (Action::Deny, false) => {
                    format!(
                        "counter log group {NFLOG_GROUP} prefix \"cordon would-deny {}: \" accept",
                        label(rule)
                    )
                }
            };
            for (chain, own, peers, dir) in [
                (&mut input, &rule.to, &rule.from, "saddr"),
                (&mut output, &rule.from, &rule.to, "daddr"),
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
                    let addr: Vec<String> = match *peer {
                        GroupId::ANY => vec![String::new()],
                        GroupId::INTERNET => {
                            specials.insert("internet");
                            vec![
                                format!("ip {dir} != @not_internet_v4 "),
                                format!("ip6 {dir} 2000::/3 ip6 {dir} != @not_internet_v6 "),
                            ]
                        }
                        GroupId::PRIVATE => {
                            specials.insert("private");
                            vec![
                                format!("ip {dir} @private_v4 "),
                                format!("ip6 {dir} fc00::/7 "),
                            ]
                        }
                        g => {
                            sets.insert(g);
                            vec![
                                format!("ip {dir} @{} ", set_name(g, false)),
                                format!("ip6 {dir} @{} ", set_name(g, true)),
                            ]
                        }
                    };
                    let tail = format!("{verdict} comment \"{}\"", label(rule));
                    for a in &addr {
                        chain.add(action == Action::Deny, a, &rule.ports, &tail, port_matches);
                    }
                }
            }
        }
    }
    warnings.sort();
    warnings.dedup();
    let default = match (policy.default, audit_policy) {
        (Action::Allow, _) => "counter accept comment \"default allow\"".to_string(),
        (Action::Deny, false) => format!(
            "counter log group {NFLOG_GROUP} prefix \"cordon deny default: \" drop comment \"default deny\""
        ),
        (Action::Deny, true) => format!(
            "counter log group {NFLOG_GROUP} prefix \"cordon would-deny default: \" accept comment \"default deny (audit)\""
        ),
    };
    let mut s = String::new();
    // Create-then-delete makes the replacement one transaction whether or
    // not the table exists yet.
    let _ = writeln!(
        s,
        "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{"
    );
    let _ = writeln!(
        s,
        "  comment \"{OWNER}; policy {}\"",
        label_text(&policy.name)
    );
    for g in &sets {
        let addrs = addresses(policy, compiled, *g, resolve).unwrap_or_default();
        for v6 in [false, true] {
            let elems: Vec<String> = addrs
                .iter()
                .filter(|n| matches!(n, IpNet::V6(_)) == v6)
                .map(IpNet::to_string)
                .collect();
            let _ = writeln!(
                s,
                "  set {} {{ type {}; flags interval; comment \"group {}\"; {}}}",
                set_name(*g, v6),
                if v6 { "ipv6_addr" } else { "ipv4_addr" },
                label_text(policy.group_name(*g)),
                if elems.is_empty() {
                    String::new()
                } else {
                    format!("elements = {{ {} }}; ", elems.join(", "))
                }
            );
        }
    }
    if specials.contains("internet") {
        let _ = writeln!(
            s,
            "  set not_internet_v4 {{ type ipv4_addr; flags interval; elements = {{ {} }}; }}",
            cordon_policy::special::NOT_INTERNET_V4.join(", ")
        );
        let _ = writeln!(
            s,
            "  set not_internet_v6 {{ type ipv6_addr; flags interval; elements = {{ {} }}; }}",
            cordon_policy::special::NOT_INTERNET_V6_IN_GLOBAL.join(", ")
        );
    }
    if specials.contains("private") {
        let v4: Vec<&str> = cordon_policy::special::PRIVATE
            .iter()
            .copied()
            .filter(|p| !p.contains(':'))
            .collect();
        let _ = writeln!(
            s,
            "  set private_v4 {{ type ipv4_addr; flags interval; elements = {{ {} }}; }}",
            v4.join(", ")
        );
    }
    for (name, hook, lo, rules) in [
        ("input", "input", "iif", &input),
        ("output", "output", "oif", &output),
    ] {
        let maps = rules.port_chains(name, &mut s);
        let _ = writeln!(
            s,
            "  chain {name} {{\n    type filter hook {hook} priority filter; policy accept;"
        );
        let _ = writeln!(s, "    ct state established,related counter accept");
        let _ = writeln!(s, "    {lo} \"lo\" accept");
        for r in &rules.before {
            let _ = writeln!(s, "    {r}");
        }
        for map in maps {
            let _ = writeln!(s, "    {map}");
        }
        for r in &rules.after {
            let _ = writeln!(s, "    {r}");
        }
        let _ = writeln!(s, "    {default}\n  }}");
    }
    s.push_str("}\n");
    Ok(Ruleset {
        script: s,
        rules: count,
        warnings,
    })
}

fn label_text(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '"' | '\\' | '\n'))
        .take(60)
        .collect()
}

mod portmap;

use portmap::ChainRules;

#[cfg(test)]
mod tests;
