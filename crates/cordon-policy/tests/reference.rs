//! Property test: the compiled evaluator agrees with the deliberately simple
//! reference evaluator on random policies and requests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use std::net::IpAddr;
use std::sync::Arc;

use cordon_policy::{
    CompiledPolicy, Endpoint, Hostname, LoadOptions, Protocol, Request, WorkloadId, parse_policy,
    reference,
};
use proptest::prelude::*;

const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "10.0.0.0/16",
    "10.0.1.0/24",
    "10.0.1.128/25",
    "10.0.1.7/32",
    "10.0.2.0/23",
    "0.0.0.0/0",
    "8.8.8.0/24",
    "198.51.100.0/24",
    "fd00::/8",
    "fd00:1::/64",
    "fd00:1::7/128",
    "2600::/16",
    "::/0",
    "::ffff:10.0.1.0/120",
];
const IPS: &[&str] = &[
    "10.0.0.1",
    "10.0.1.7",
    "10.0.1.200",
    "10.0.2.5",
    "10.0.3.1",
    "8.8.8.8",
    "1.1.1.1",
    "198.51.100.9",
    "127.0.0.1",
    "169.254.169.254",
    "fd00:1::7",
    "fd00:2::1",
    "2600::1",
    "::ffff:10.0.1.7",
    "192.168.1.1",
    "100.64.1.1",
    "fe80::1",
];
const PATTERNS: &[&str] = &[
    "example.com",
    "*.example.com",
    "api.example.com",
    "*.api.example.com",
    "*.mailer.example",
    "mailer.example",
    "*.test",
    "bücher.example",
];
const HOSTS: &[&str] = &[
    "example.com",
    "api.example.com",
    "x.api.example.com",
    "a.b.example.com",
    "smtp.mailer.example",
    "mailer.example",
    "foo.test",
    "evil.net",
    "BÜCHER.example.",
    "example.com.evil.net",
];
const PORTS: &[&str] = &[
    "tcp/443",
    "tcp/22",
    "udp/53",
    "tcp/8000-8100",
    "tcp/1-1024",
    "icmp",
    "any",
    "tcp",
    "udp/0-10",
    "sctp/9",
    "tcp/65535",
];
const SPIFFE: &[&str] = &["spiffe://corp.example/a", "spiffe://corp.example/b"];
const LABELS: &[&str] = &[
    "{app: a}",
    "{app: b}",
    "{app: a, env: p}",
    "{env: p}",
    "{env: s}",
];

#[derive(Debug, Clone)]
struct GroupSpec {
    labels: Option<usize>,
    cidrs: Vec<usize>,
    fqdns: Vec<usize>,
    spiffe: Option<usize>,
    nested: Vec<usize>,
}

#[derive(Debug, Clone)]
struct RuleSpec {
    from: Vec<usize>,
    to: Vec<usize>,
    ports: Vec<usize>,
    deny: bool,
    mode: Option<bool>,
}

fn group_spec() -> impl Strategy<Value = GroupSpec> {
    (
        proptest::option::of(0..LABELS.len()),
        proptest::collection::vec(0..CIDRS.len(), 0..3),
        proptest::collection::vec(0..PATTERNS.len(), 0..3),
        proptest::option::of(0..SPIFFE.len()),
        proptest::collection::vec(0..8usize, 0..2),
    )
        .prop_map(|(labels, cidrs, fqdns, spiffe, nested)| GroupSpec {
            labels,
            cidrs,
            fqdns,
            spiffe,
            nested,
        })
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        proptest::collection::vec(0..11usize, 1..3),
        proptest::collection::vec(0..11usize, 1..3),
        proptest::collection::vec(0..PORTS.len(), 0..3),
        any::<bool>(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(from, to, ports, deny, mode)| RuleSpec {
            from,
            to,
            ports,
            deny,
            mode,
        })
}

fn group_name(i: usize, groups: usize) -> String {
    // Indexes past the user groups name the built-ins.
    match i.checked_sub(groups) {
        None => format!("g{i}"),
        Some(0) => "any".into(),
        Some(1) => "internet".into(),
        _ => "private".into(),
    }
}

fn policy_yaml(
    groups: &[GroupSpec],
    rules: &[RuleSpec],
    workloads: &[(usize, usize, Option<usize>)],
    audit: bool,
    default_allow: bool,
) -> String {
    let mut y =
        String::from("apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: prop}\nspec:\n");
    y += &format!(
        "  mode: {}\n  default: {}\n",
        if audit { "audit" } else { "enforce" },
        if default_allow { "allow" } else { "deny" }
    );
    if !workloads.is_empty() {
        y += "  inventory:\n";
        for (i, (ip, labels, spiffe)) in workloads.iter().enumerate() {
            y += &format!(
                "    - {{name: w{i}, ips: [\"{}\"], labels: {}",
                IPS[*ip], LABELS[*labels]
            );
            if let Some(s) = spiffe {
                y += &format!(", spiffe: \"{}\"", SPIFFE[*s]);
            }
            y += "}\n";
        }
    }
    y += "  groups:\n";
    for (i, g) in groups.iter().enumerate() {
        y += &format!("    g{i}:\n");
        let mut any = false;
        if let Some(l) = g.labels {
            y += &format!("      labels: {}\n", LABELS[l]);
            any = true;
        }
        if !g.cidrs.is_empty() {
            let list: Vec<String> = g
                .cidrs
                .iter()
                .map(|c| format!("\"{}\"", CIDRS[*c]))
                .collect();
            y += &format!("      cidrs: [{}]\n", list.join(", "));
            any = true;
        }
        if !g.fqdns.is_empty() {
            let list: Vec<String> = g
                .fqdns
                .iter()
                .map(|c| format!("\"{}\"", PATTERNS[*c]))
                .collect();
            y += &format!("      fqdns: [{}]\n", list.join(", "));
            any = true;
        }
        if let Some(s) = g.spiffe {
            y += &format!("      spiffe: [\"{}\"]\n", SPIFFE[s]);
            any = true;
        }
        // Only earlier groups, so there are no cycles.
        let nested: Vec<String> = g
            .nested
            .iter()
            .filter(|n| **n < i)
            .map(|n| format!("g{n}"))
            .collect();
        if !nested.is_empty() || !any {
            let nested = if nested.is_empty() {
                vec!["private".to_string()]
            } else {
                nested
            };
            y += &format!("      groups: [{}]\n", nested.join(", "));
        }
    }
    y += "  rules:\n";
    for (i, r) in rules.iter().enumerate() {
        let names = |v: &[usize]| -> String {
            v.iter()
                .map(|g| group_name(g % (groups.len() + 3), groups.len()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        y += &format!(
            "    - {{name: r{i}, from: [{}], to: [{}], action: {}",
            names(&r.from),
            names(&r.to),
            if r.deny { "deny" } else { "allow" }
        );
        if !r.ports.is_empty() {
            let list: Vec<&str> = r.ports.iter().map(|p| PORTS[*p]).collect();
            y += &format!(", ports: [{}]", list.join(", "));
        }
        if let Some(audit) = r.mode {
            y += &format!(", mode: {}", if audit { "audit" } else { "enforce" });
        }
        y += "}\n";
    }
    y
}

fn endpoint() -> impl Strategy<Value = (Option<usize>, Option<usize>, Option<usize>, Option<usize>)>
{
    (
        proptest::option::weighted(0.8, 0..IPS.len()),
        proptest::option::weighted(0.4, 0..HOSTS.len()),
        proptest::option::weighted(0.2, 0..4usize),
        proptest::option::weighted(0.2, 0..SPIFFE.len()),
    )
}

fn make_endpoint(
    spec: (Option<usize>, Option<usize>, Option<usize>, Option<usize>),
    workloads: usize,
) -> Endpoint {
    Endpoint {
        ip: spec
            .0
            .map(|i| IPS[i].parse::<IpAddr>().unwrap())
            .map(cordon_core::canonical_ip),
        host: spec.1.map(|h| Hostname::parse(HOSTS[h]).unwrap()),
        workload: spec
            .2
            .filter(|w| *w < workloads)
            .map(|w| WorkloadId(w as u32)),
        spiffe: spec.3.map(|s| SPIFFE[s].to_string()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn compiled_agrees_with_reference(
        groups in proptest::collection::vec(group_spec(), 1..8),
        rules in proptest::collection::vec(rule_spec(), 1..10),
        workloads in proptest::collection::vec((0..IPS.len(), 0..LABELS.len(), proptest::option::of(0..SPIFFE.len())), 0..4),
        audit in any::<bool>(),
        default_allow in any::<bool>(),
        requests in proptest::collection::vec(
            (endpoint(), endpoint(), prop::sample::select(vec![6u8, 17, 1, 58, 132, 47]),
             prop::sample::select(vec![0u16, 9, 10, 11, 22, 53, 443, 1024, 1025, 7999, 8000, 8100, 8101, 65535])),
            1..16),
    ) {
        let yaml = policy_yaml(&groups, &rules, &workloads, audit, default_allow);
        let policy = match parse_policy("prop.yaml", &yaml, &LoadOptions::default()) {
            Ok(p) => p,
            // Duplicate workload addresses and similar are fine; a policy the
            // generator gets wrong is a generator bug worth seeing.
            Err(e) => panic!("generated policy rejected: {e}\n{yaml}"),
        };
        // The canonical format of any policy parses back to the same policy.
        let formatted = cordon_policy::fmt::format_policy(&policy.raw);
        let reparsed = parse_policy("prop.yaml", &formatted, &LoadOptions::default());
        prop_assert!(reparsed.is_ok_and(|p| p.raw == policy.raw), "{}", formatted);
        let policy = Arc::new(policy);
        let compiled = CompiledPolicy::new(Arc::clone(&policy));
        for (src, dst, proto, port) in requests {
            let request = Request {
                src: make_endpoint(src, workloads.len()),
                dst: make_endpoint(dst, workloads.len()),
                protocol: Protocol(proto),
                port,
            };
            let decision = compiled.evaluate(&request);
            let (verdict, matched) = reference::evaluate(&policy, &request.src, &request.dst, request.protocol, request.port);
            prop_assert_eq!(decision.verdict, verdict, "request {:?}\n{}", request, yaml);
            prop_assert_eq!(&decision.rules, &matched, "request {:?}\n{}", request, yaml);
        }
    }
}
