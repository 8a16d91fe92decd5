//! A deliberately simple evaluator: the semantics of DESIGN §3 written as
//! directly as possible, with loops over every group and rule. It is the
//! oracle the compiled evaluator is tested against, and the baseline its
//! speed is measured against. Do not optimise it.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::decision::{Endpoint, Verdict};
use crate::model::{Action, GroupId, Mode, Policy, RuleId, Workload};
use crate::ports::Protocol;
use cordon_core::canonical_ip;
use cordon_core::ip as special;

/// The verdict and every matching rule, computed the slow, obvious way.
pub fn evaluate(
    policy: &Policy,
    src: &Endpoint,
    dst: &Endpoint,
    protocol: Protocol,
    port: u16,
) -> (Verdict, Vec<RuleId>) {
    let mut matched = Vec::new();
    for (i, rule) in policy.rules.iter().enumerate() {
        let from = rule.from.iter().any(|g| in_group(policy, *g, src));
        let to = rule.to.iter().any(|g| in_group(policy, *g, dst));
        if from && to && rule.matches_port(protocol, port) {
            matched.push(RuleId(i as u32));
        }
    }
    let rules: Vec<_> = matched.iter().filter_map(|id| policy.rule(*id)).collect();
    let enforced_deny = rules
        .iter()
        .any(|r| r.action == Action::Deny && policy.rule_mode(r) == Mode::Enforce);
    let audited_deny = rules
        .iter()
        .any(|r| r.action == Action::Deny && policy.rule_mode(r) == Mode::Audit);
    let allow = rules.iter().any(|r| r.action == Action::Allow);
    let verdict = if enforced_deny {
        Verdict::Deny
    } else if audited_deny {
        Verdict::WouldDeny
    } else if allow || policy.default == Action::Allow {
        Verdict::Allow
    } else if policy.mode == Mode::Audit {
        Verdict::WouldDeny
    } else {
        Verdict::Deny
    };
    (verdict, matched)
}

/// The workloads an endpoint is: named, owning its address, or presenting
/// the SPIFFE ID a workload is registered with.
fn workloads_of<'p>(policy: &'p Policy, e: &Endpoint) -> Vec<&'p Workload> {
    policy
        .workloads
        .iter()
        .enumerate()
        .filter(|(i, w)| {
            e.workload.is_some_and(|id| id.index() == *i)
                || e.ip.is_some_and(|ip| w.ips.contains(&canonical_ip(ip)))
                || (e.spiffe.is_some() && e.spiffe == w.spiffe)
        })
        .map(|(_, w)| w)
        .collect()
}

fn net_contains(net: &IpNet, ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    match (net, ip) {
        (IpNet::V4(n), IpAddr::V4(a)) => n.contains(&a),
        (IpNet::V6(n), IpAddr::V6(a)) => n.contains(&a),
        (IpNet::V6(n), IpAddr::V4(a)) => {
            // An IPv6 network inside ::ffff:0:0/96 is an IPv4 network.
            n.prefix_len() >= 96
                && n.network().to_ipv4_mapped().is_some()
                && n.contains(&a.to_ipv6_mapped())
        }
        (IpNet::V4(_), IpAddr::V6(_)) => false,
    }
}

/// Whether `e` is in group `g`, by the definition.
pub fn in_group(policy: &Policy, g: GroupId, e: &Endpoint) -> bool {
    let Some(group) = policy.group(g) else {
        return false;
    };
    match g {
        GroupId::ANY => return true,
        GroupId::INTERNET => {
            return match e.ip {
                Some(ip) => special::is_internet(ip),
                None => e.host.is_some(),
            };
        }
        GroupId::PRIVATE => return e.ip.is_some_and(special::is_private),
        _ => {}
    }
    let workloads = workloads_of(policy, e);
    if let Some(labels) = &group.labels
        && workloads
            .iter()
            .any(|w| labels.iter().all(|(k, v)| w.labels.get(k) == Some(v)))
    {
        return true;
    }
    if let Some(ip) = e.ip
        && group.cidrs.iter().any(|n| net_contains(n, ip))
    {
        return true;
    }
    if let Some(host) = &e.host
        && group.fqdns.iter().any(|p| p.matches(host))
    {
        return true;
    }
    let identities = e
        .spiffe
        .iter()
        .map(String::as_str)
        .chain(workloads.iter().filter_map(|w| w.spiffe.as_deref()));
    for id in identities {
        if group.spiffe.iter().any(|s| s == id) {
            return true;
        }
    }
    group.members.iter().any(|m| in_group(policy, *m, e))
}
