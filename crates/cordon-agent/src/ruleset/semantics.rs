//! The compiled table means what the policy means: a small interpreter of
//! the table (new packets, as the kernel walks the chains) against the
//! policy engine's decision, on random policies of CIDR groups, ports of
//! every kind, enforced and audited denies, and random packets.

use std::net::IpAddr;
use std::sync::Arc;

use cordon_policy::{
    CompiledPolicy, Endpoint, LoadOptions, Protocol, Request, Verdict as PolicyVerdict,
};
use ipnet::IpNet;
use proptest::prelude::*;

use super::model::{Hook, Match, Side, Table, Verdict};

/// A new packet (conntrack state `new`).
#[derive(Clone, Debug)]
struct Packet {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    port: u16,
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn in_set(table: &Table, name: &str, value: u128) -> Option<Option<String>> {
    let set = table.sets.iter().find(|s| s.name == name)?;
    set.elements
        .iter()
        .find(|e| e.first <= value && value <= e.last)
        .map(|e| e.jump.clone())
}

fn holds(table: &Table, m: &Match, p: &Packet) -> bool {
    let addr = |side: &Side| match side {
        Side::Source => p.src,
        Side::Destination => p.dst,
    };
    match m {
        Match::Established | Match::Loopback(_) | Match::LinkLocalIcmpv6 { .. } => false,
        Match::Protocol(n) => p.protocol == *n,
        Match::AddressIn {
            v6,
            side,
            set,
            negate,
        } => {
            let a = addr(side);
            a.is_ipv6() == *v6 && (in_set(table, set, key(a)).is_some() != *negate)
        }
        Match::AddressPrefix { side, net } => net.contains(&addr(side)),
        Match::PortIn(set) => in_set(table, set, u128::from(p.port)).is_some(),
    }
}

/// Walk `chain`: `Some(accept)` at a verdict, `None` at its end.
fn walk(table: &Table, chain: &str, p: &Packet, depth: usize) -> Option<bool> {
    assert!(depth < 4, "jumps too deep");
    let chain = table.chains.iter().find(|c| c.name == chain).unwrap();
    for rule in &chain.rules {
        if !rule.matches.iter().all(|m| holds(table, m, p)) {
            continue;
        }
        match &rule.verdict {
            Verdict::Accept => return Some(true),
            Verdict::Drop => return Some(false),
            Verdict::PortMap(map) => {
                if let Some(Some(target)) = in_set(table, map, u128::from(p.port))
                    && let Some(v) = walk(table, &target, p, depth + 1)
                {
                    return Some(v);
                }
            }
        }
    }
    None
}

fn accepted(table: &Table, hook: Hook, p: &Packet) -> bool {
    let base = table
        .chains
        .iter()
        .find(|c| c.hook == Some(hook))
        .unwrap()
        .name
        .clone();
    walk(table, &base, p, 0).unwrap_or(true)
}

const PORTS: [&str; 9] = [
    "tcp/80",
    "tcp/79-81",
    "tcp/1000-2000",
    "udp/53",
    "tcp",
    "icmp",
    "sctp/9",
    "tcp/1500",
    "udp/50-60",
];

const NETS: [&str; 8] = [
    "10.0.0.0/24",
    "10.0.1.0/24",
    "10.0.0.0/23",
    "10.0.2.128/25",
    "10.0.0.1/32",
    "fd00::/64",
    "fd00:0:0:1::/64",
    "10.0.3.0/24",
];

#[derive(Clone, Debug)]
struct RandomRule {
    from: usize,
    to: usize,
    ports: Vec<usize>,
    deny: bool,
    audit: bool,
}

fn policy_text(groups: &[Vec<usize>], rules: &[RandomRule], default_deny: bool) -> String {
    let mut p = format!(
        "apiVersion: cordon/v1\nkind: Policy\nmetadata: {{name: random}}\nspec:\n  default: {}\n  groups:\n",
        if default_deny { "deny" } else { "allow" }
    );
    for (i, nets) in groups.iter().enumerate() {
        let list: Vec<String> = nets.iter().map(|n| format!("\"{}\"", NETS[*n])).collect();
        p.push_str(&format!("    g{i}: {{cidrs: [{}]}}\n", list.join(", ")));
    }
    p.push_str("  rules:\n");
    let name = |g: usize| {
        if g == groups.len() {
            "any".to_string()
        } else {
            format!("g{g}")
        }
    };
    for (i, r) in rules.iter().enumerate() {
        let ports: Vec<&str> = r.ports.iter().map(|n| PORTS[*n]).collect();
        p.push_str(&format!(
            "    - {{name: r{i}, from: [{}], to: [{}], ports: [{}], action: {}{}}}\n",
            name(r.from),
            name(r.to),
            ports.join(", "),
            if r.deny { "deny" } else { "allow" },
            if r.audit { ", mode: audit" } else { "" }
        ));
    }
    p
}

fn random_rule(groups: usize) -> impl Strategy<Value = RandomRule> {
    (
        0..=groups,
        0..=groups,
        proptest::collection::vec(0..PORTS.len(), 0..3),
        any::<bool>(),
        proptest::bool::weighted(0.25),
    )
        .prop_map(|(from, to, ports, deny, audit)| RandomRule {
            from,
            to,
            ports,
            deny,
            audit,
        })
}

fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..4, any::<u8>()).prop_map(|(c, d)| IpAddr::from([10, 0, c, d])),
        (0u16..2, 0u16..3).prop_map(|(n, h)| IpAddr::from([0xfd00, 0, 0, n, 0, 0, 0, h])),
    ]
}

fn packet() -> impl Strategy<Value = (IpAddr, u8, u16)> {
    (
        address(),
        prop_oneof![Just(6u8), Just(17), Just(1), Just(132)],
        prop_oneof![
            Just(9u16),
            Just(53),
            Just(55),
            Just(79),
            Just(80),
            Just(81),
            Just(82),
            Just(999),
            Just(1000),
            Just(1500),
            Just(2000),
            Just(2001)
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_table_decides_new_packets_as_the_policy_does(
        groups in proptest::collection::vec(proptest::collection::vec(0..NETS.len(), 1..3), 1..4),
        rules in proptest::collection::vec(random_rule(3), 1..8),
        default_deny in any::<bool>(),
        packets in proptest::collection::vec(packet(), 20),
    ) {
        let rules: Vec<RandomRule> = rules
            .into_iter()
            .map(|mut r| {
                r.from = r.from.min(groups.len());
                r.to = r.to.min(groups.len());
                r
            })
            .collect();
        let text = policy_text(&groups, &rules, default_deny);
        let policy = cordon_policy::parse_policy("random.yaml", &text, &LoadOptions::default())
            .map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        let compiled = CompiledPolicy::new(Arc::new(policy));
        let me: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
        let table = super::ruleset(&compiled, &me, false).unwrap().table;
        prop_assert_eq!(table.check(), Ok(()));
        for (peer, protocol, port) in packets {
            let own = if peer.is_ipv6() { me[1] } else { me[0] };
            for (hook, src, dst) in [(Hook::Input, peer, own), (Hook::Output, own, peer)] {
                let p = Packet { src, dst, protocol, port };
                let decision = compiled.evaluate(&Request {
                    src: Endpoint::ip(src),
                    dst: Endpoint::ip(dst),
                    protocol: Protocol(protocol),
                    port,
                });
                let want = decision.verdict != PolicyVerdict::Deny;
                prop_assert_eq!(
                    accepted(&table, hook, &p),
                    want,
                    "{:?} {:?} -> {:?}\n{}\n{}",
                    hook, p, decision.verdict, text, table.script()
                );
            }
        }
        let _ = IpNet::default();
    }
}
