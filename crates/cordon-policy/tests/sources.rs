//! Inventory sources (Cordon, AWS EC2, Kubernetes pods) feeding real
//! decisions; lint and diff on small policies; the canonical format
//! parsing back to the same policy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cordon_policy::diff::diff;
use cordon_policy::fmt::format_policy;
use cordon_policy::lint::lint;
use cordon_policy::{
    CompiledPolicy, Endpoint, LoadOptions, Request, Verdict, load_policy, parse_policy,
};

fn decide(compiled: &CompiledPolicy, from: &str, to: &str, port: &str) -> Verdict {
    let p = compiled.policy();
    let (protocol, port) = Request::parse_port(port).unwrap();
    compiled
        .evaluate(&Request {
            src: Endpoint::parse(p, from).unwrap(),
            dst: Endpoint::parse(p, to).unwrap(),
            protocol,
            port,
        })
        .verdict
}

#[test]
fn aws_and_kubernetes_inventories_feed_label_groups() {
    let options = LoadOptions {
        inventory: vec![
            PathBuf::from("tests/inventory/ec2.json"),
            PathBuf::from("tests/inventory/pods.json"),
        ],
    };
    let policy = load_policy(Path::new("tests/inventory/policy.yaml"), &options).unwrap();
    let names: Vec<&str> = policy.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "web-prod-1",
            "i-0def5678abc123456",
            "mail/notifier-7d9f8b6c5-x2x4z",
            "default/api-5c6b7d8e9f-abcde"
        ]
    );
    let web = &policy.workloads[0];
    assert_eq!(
        web.ips.len(),
        4,
        "private, public, secondary and IPv6: {:?}",
        web.ips
    );
    assert_eq!(
        web.labels.get("aws/availability-zone").map(String::as_str),
        Some("eu-west-1a")
    );
    let notifier = &policy.workloads[2];
    assert_eq!(
        notifier
            .labels
            .get("k8s/service-account")
            .map(String::as_str),
        Some("notifier")
    );
    assert!(
        policy.workloads[3].ips.is_empty(),
        "a pending pod has no address"
    );

    let compiled = CompiledPolicy::new(Arc::new(policy));
    assert_eq!(
        decide(&compiled, "web-prod-1", "10.0.2.20", "tcp/5432"),
        Verdict::Allow
    );
    assert_eq!(
        decide(&compiled, "10.0.1.11", "10.0.2.20", "tcp/5432"),
        Verdict::Allow
    );
    assert_eq!(
        decide(&compiled, "203.0.114.10", "10.0.2.20", "tcp/5432"),
        Verdict::Allow
    );
    assert_eq!(
        decide(&compiled, "10.0.1.12", "10.0.2.20", "tcp/5432"),
        Verdict::Deny
    );
    assert_eq!(
        decide(&compiled, "10.244.1.17", "10.0.1.10", "tcp/443"),
        Verdict::Allow
    );
    assert_eq!(
        decide(&compiled, "fd00:10:244:1::17", "2a05:d018::10", "tcp/443"),
        Verdict::Allow
    );
    assert_eq!(
        decide(&compiled, "10.244.1.18", "10.0.1.10", "tcp/443"),
        Verdict::Deny
    );
}

fn policy_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("tests/corpus")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".policy.yaml"))
        .collect();
    files.push(PathBuf::from("../../examples/acme-prod.yaml"));
    files.push(PathBuf::from("tests/inventory/policy.yaml"));
    files.sort();
    files
}

#[test]
fn formatted_policies_parse_back_to_the_same_policy() {
    for file in policy_files() {
        let policy = load_policy(&file, &LoadOptions::default()).unwrap();
        let text = format_policy(&policy.raw);
        let name = file.display().to_string();
        let again = parse_policy(&name, &text, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: formatted text does not parse: {e}\n{text}"));
        assert!(
            again.raw == policy.raw,
            "{name}: formatting changed the policy:\n{text}"
        );
        assert_eq!(
            format_policy(&again.raw),
            text,
            "{name}: formatting is not idempotent"
        );
    }
}

#[test]
fn formatting_quotes_what_yaml_would_misread() {
    let yaml = r##"
apiVersion: cordon/v1
kind: Policy
metadata: {name: "true", description: "1.5: yes, # not a comment"}
spec:
  inventory:
    - {name: "007", ips: ["::1"], labels: {"null": "no", "a:b": "*", "#c": "- d"}}
  groups:
    "123": {cidrs: ["::/0"], fqdns: ["*.example.com"]}
  rules:
    - {name: "on", from: ["123"], to: [any], ports: [any], action: allow}
"##;
    let policy = parse_policy("q.yaml", yaml, &LoadOptions::default()).unwrap();
    let text = format_policy(&policy.raw);
    let again = parse_policy("q.yaml", &text, &LoadOptions::default()).unwrap();
    assert!(again.raw == policy.raw, "{text}");
}

#[test]
fn lint_finds_each_kind_of_problem() {
    let yaml = r#"
apiVersion: cordon/v1
kind: Policy
metadata: {name: lint}
spec:
  default: allow
  inventory:
    - {name: web-1, ips: [10.0.1.10], labels: {app: web}}
  groups:
    web: {labels: {app: web}}
    ghost: {labels: {app: ghost}}
    db: {cidrs: [10.0.2.0/24]}
    unused: {cidrs: [10.9.0.0/16]}
    tier: {groups: [web]}
    vendor-a: {external: true, fqdns: [a.example]}
    vendor-b:
      external: true
      fqdns: [b.example]
      vendor: {name: B}
  rules:
    - {name: web-db, from: [web], to: [db], ports: [tcp/5432], action: allow}
    - {name: no-db, from: [tier], to: [db], action: deny}
    - {name: web-db-again, from: [web], to: [db], ports: [tcp/5432-5433], action: allow}
    - {name: out, from: [web], to: [internet], ports: [tcp/443], action: allow}
    - {name: ghosts, from: [ghost], to: [vendor-b], ports: [tcp/443], action: allow, mode: audit}
    - {name: vend-a, from: [web], to: [vendor-a], ports: [tcp/443], action: allow}
    - {name: trial, from: [web], to: [vendor-a], ports: [tcp/80], action: deny, mode: audit}
    - {name: wide-ports, from: [web], to: [vendor-a], action: allow}
"#;
    let policy = parse_policy("lint.yaml", yaml, &LoadOptions::default()).unwrap();
    let findings = lint(&policy);
    let has = |code: &str, needle: &str| {
        findings
            .iter()
            .any(|f| f.code == code && f.message.contains(needle))
    };
    let all: Vec<String> = findings
        .iter()
        .map(|f| format!("{} {}", f.code, f.message))
        .collect();
    assert!(has("shadowed-rule", "`web-db`"), "{all:#?}");
    assert!(has("shadowed-rule", "`web-db-again`"), "{all:#?}");
    assert!(has("wide-allow", "`out`"), "{all:#?}");
    assert!(has("wide-allow", "`wide-ports`"), "{all:#?}");
    assert!(has("unused-group", "`unused`"), "{all:#?}");
    assert!(has("empty-group", "`ghost`"), "{all:#?}");
    assert!(has("vendor-missing", "`vendor-a`"), "{all:#?}");
    assert!(has("vendor-no-limit", "`ghosts`"), "{all:#?}");
    assert!(has("mode-on-allow", "`ghosts`"), "{all:#?}");
    assert!(has("audit-rule", "`trial`"), "{all:#?}");
    assert!(has("default-allow", "default is allow"), "{all:#?}");
    assert!(
        !has("unused-group", "`web`"),
        "web is used through tier: {all:#?}"
    );
    assert!(
        findings
            .iter()
            .all(|f| f.at.as_deref().is_some_and(|a| a.starts_with("lint.yaml:")))
    );
}

#[test]
fn lint_reports_the_later_of_two_identical_rules_as_redundant() {
    let yaml = r#"
apiVersion: cordon/v1
kind: Policy
metadata: {name: lint}
spec:
  groups:
    a: {cidrs: [10.0.1.0/24]}
    b: {cidrs: [10.0.2.0/24]}
  rules:
    - {name: first, from: [a], to: [b], ports: [tcp/443], action: allow}
    - {name: second, from: [a], to: [b], ports: [tcp/443], action: allow}
    - {name: narrow, from: [a], to: [b], ports: [tcp/443], action: allow, log: true}
"#;
    let policy = parse_policy("r.yaml", yaml, &LoadOptions::default()).unwrap();
    let redundant: Vec<String> = lint(&policy)
        .into_iter()
        .filter(|f| f.code == "redundant-rule")
        .map(|f| f.message)
        .collect();
    assert_eq!(redundant.len(), 2, "{redundant:?}");
    assert!(
        redundant.iter().all(|m| !m.starts_with("rule `first`")),
        "{redundant:?}"
    );
}

#[test]
fn the_example_policy_lints_clean_but_for_its_public_front_door() {
    let policy = load_policy(
        Path::new("../../examples/acme-prod.yaml"),
        &LoadOptions::default(),
    )
    .unwrap();
    let found = lint(&policy);
    let warnings: Vec<&str> = found
        .iter()
        .filter(|f| f.level == cordon_policy::lint::LintLevel::Warning)
        .map(|f| f.code)
        .collect();
    assert_eq!(warnings, ["wide-allow"]);
    // The analytics vendor has no access to Acme's clouds: information.
    let info: Vec<&str> = found
        .iter()
        .filter(|f| f.level == cordon_policy::lint::LintLevel::Info)
        .map(|f| f.code)
        .collect();
    assert_eq!(info, ["vendor-no-identities"]);
}

#[test]
fn diff_shows_reachability_that_appears_and_disappears() {
    let old = parse_policy(
        "old.yaml",
        r#"
apiVersion: cordon/v1
kind: Policy
metadata: {name: p}
spec:
  groups:
    web: {cidrs: [10.0.1.0/24]}
    api: {cidrs: [10.0.3.0/24]}
    db: {cidrs: [10.0.2.0/24]}
    tier: {groups: [web, api]}
  rules:
    - {name: web-api, from: [web], to: [api], ports: [tcp/8080], action: allow}
    - {name: api-db, from: [api], to: [db], ports: [tcp/5432], action: allow}
    - {name: tier-ssh, from: [tier], to: [tier], ports: [tcp/22], action: allow}
"#,
        &LoadOptions::default(),
    )
    .unwrap();
    let new = parse_policy(
        "new.yaml",
        r#"
apiVersion: cordon/v1
kind: Policy
metadata: {name: p}
spec:
  mode: audit
  groups:
    web: {cidrs: [10.0.1.0/24]}
    api: {cidrs: [10.0.3.0/24, 10.0.4.0/24]}
    db: {cidrs: [10.0.2.0/24]}
    tier: {groups: [web, api]}
  rules:
    - {name: web-api, from: [web], to: [api], ports: [tcp/8080], action: allow}
    - {name: api-db, from: [api], to: [db], ports: [tcp/5432, tcp/5433], action: allow}
    - {name: web-db, from: [web], to: [db], ports: [tcp/5432], action: allow}
    - {name: tier-ssh, from: [tier], to: [tier], ports: [tcp/22], action: allow}
    - {name: no-ssh-web, from: [any], to: [web], ports: [tcp/22], action: deny}
    - {name: web-api-narrow, from: [web], to: [api], ports: [tcp/8080], action: allow}
"#,
        &LoadOptions::default(),
    )
    .unwrap();
    let d = diff(&old, &new);
    let appears: Vec<String> = d
        .appears
        .iter()
        .map(|r| format!("{}>{} {}", r.from, r.to, r.port))
        .collect();
    assert_eq!(appears, ["api>db tcp/5433", "web>db tcp/5432"]);
    assert!(
        d.disappears.is_empty(),
        "no rule lost reachability: {:?}",
        d.disappears
    );
    assert_eq!(d.changed_groups, ["api"]);
    assert_eq!(d.settings, ["mode: enforce → audit"]);

    let reverse = diff(&new, &old);
    let disappears: Vec<String> = reverse
        .disappears
        .iter()
        .map(|r| format!("{}>{} {}", r.from, r.to, r.port))
        .collect();
    assert_eq!(disappears, ["api>db tcp/5433", "web>db tcp/5432"]);
    assert!(diff(&old, &old).is_empty());
}

#[test]
fn an_empty_spec_formats_as_an_empty_mapping() {
    // Found by fuzzing: an empty spec printed as `spec:` read back as null.
    let yaml = "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: e}\nspec:\n  inventory:\n";
    let policy = parse_policy("e.yaml", yaml, &LoadOptions::default()).unwrap();
    let text = format_policy(&policy.raw);
    assert!(text.ends_with("spec: {}\n"), "{text}");
    assert!(
        parse_policy("e.yaml", &text, &LoadOptions::default())
            .unwrap()
            .raw
            == policy.raw
    );
}
