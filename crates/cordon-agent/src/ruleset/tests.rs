use std::path::Path;
use std::sync::Arc;

use cordon_policy::{CompiledPolicy, LoadOptions, load_policy};

use super::ruleset;

fn example() -> CompiledPolicy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme-prod.yaml");
    CompiledPolicy::new(Arc::new(
        load_policy(&path, &LoadOptions::default()).unwrap(),
    ))
}

#[test]
fn the_database_host_gets_its_rules_denies_first_and_the_default_last() {
    let r = ruleset(&example(), &["10.0.2.10".parse().unwrap()], false).unwrap();
    let s = &r.script();
    assert!(
        s.starts_with("table inet cordon\ndelete table inet cordon\ntable inet cordon {"),
        "{s}"
    );
    let deny = s
        .find("cordon deny no-admin-from-app-tier")
        .expect("the admin guard");
    let allow = s
        .find("counter accept comment \"api-to-db\"")
        .expect("the database allow");
    assert!(
        s.contains("meta l4proto tcp th dport vmap @input_tcp")
            && s.contains("5432 : jump input_p"),
        "ports dispatch through one map: {s}"
    );
    let default = s.find("cordon deny default").expect("the default");
    assert!(deny < allow && allow < default, "{s}");
    assert!(s.contains("ct state established,related counter accept"));
    assert!(
        s.contains("10.0.3.10"),
        "api's address in its group's set: {s}"
    );
    // Only the cloud-storage deny names hostnames.
    assert!(
        r.warnings.iter().all(|w| w.contains("cloud-storage")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn audit_mode_logs_and_accepts_instead_of_dropping() {
    let r = ruleset(&example(), &["10.0.2.10".parse().unwrap()], true).unwrap();
    assert!(!r.script().contains(" drop"), "{}", r.script());
    assert!(r.script().contains("cordon would-deny default"));
}

#[test]
fn hostnames_are_reported_as_not_enforced() {
    let r = ruleset(&example(), &["10.0.4.10".parse().unwrap()], false).unwrap();
    assert!(
        r.warnings.iter().any(|w| w.contains("email-vendor")),
        "{:?}",
        r.warnings
    );
    assert!(
        r.script().contains("198.51.100.0/24"),
        "the vendor's CIDR is enforced"
    );
    assert!(ruleset(&example(), &[], false).is_err());
}

#[test]
fn exact_hostnames_resolve_into_sets_and_wildcards_are_reported() {
    let hosts = cordon_core::hosts::Hosts::parse(
        "# test resolver\n151.101.2.132 deb.debian.org\n151.101.130.132 security.debian.org.  # trailing dot\n",
    )
    .unwrap();
    let r = super::ruleset_resolving(&example(), &["10.0.3.10".parse().unwrap()], false, &|n| {
        hosts.lookup(n)
    })
    .unwrap();
    assert!(r.script().contains("151.101.2.132"), "{}", r.script());
    assert!(r.script().contains("151.101.130.132"), "{}", r.script());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("*.ubuntu.com") && w.contains("wildcard")),
        "{:?}",
        r.warnings
    );
    assert!(
        cordon_core::hosts::Hosts::parse("not-an-address host\n")
            .unwrap_err()
            .to_string()
            .contains("line 1")
    );
}

#[test]
fn a_workload_inside_its_groups_cidr_is_one_interval() {
    // api-1 reaches user-db, a group of both a /24 and a labelled workload
    // inside it: nft refuses overlapping intervals, so they are merged.
    let r = ruleset(&example(), &["10.0.3.10".parse().unwrap()], false).unwrap();
    let script = r.script();
    let line = script
        .lines()
        .find(|l| l.contains("comment \"group user-db\"") && l.contains("ipv4_addr"))
        .expect("the user-db set");
    assert!(line.contains("elements = { 10.0.2.0/24 }"), "{line}");
    assert!(
        r.script()
            .contains("log group 100 prefix \"cordon deny default: \"")
    );
}
