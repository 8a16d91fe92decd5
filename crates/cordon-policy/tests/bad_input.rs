//! Hostile and broken policies: a clear error or correct handling, never a
//! panic, a hang or runaway memory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use std::io::Write;
use std::time::Instant;

use cordon_policy::{LoadOptions, load_policy, parse_policy};

const HEAD: &str = "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: bad}\nspec:\n";

fn errors(yaml: &str) -> String {
    match parse_policy("bad.yaml", yaml, &LoadOptions::default()) {
        Ok(_) => panic!("expected an error for:\n{}", &yaml[..yaml.len().min(300)]),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_file_over_the_size_limit_is_refused_without_reading_it_all() {
    let dir = std::env::temp_dir().join(format!("cordon-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.yaml");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk =
        "# padding padding padding padding padding padding padding padding\n".repeat(16_384);
    while f.metadata().unwrap().len() < 100 * 1024 * 1024 {
        f.write_all(chunk.as_bytes()).unwrap();
    }
    drop(f);
    let started = Instant::now();
    let err = load_policy(&path, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than the limit"), "{err}");
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ten_thousand_levels_of_nesting_is_an_error() {
    let deep = format!(
        "{HEAD}  groups: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let err = errors(&deep);
    assert!(
        err.contains("nesting") || err.contains("recursion"),
        "{err}"
    );
    let block = format!("{HEAD}  rules:\n    {}x\n", "- ".repeat(10_000));
    let err = errors(&block);
    assert!(err.contains("nesting"), "{err}");
}

#[test]
fn a_one_megabyte_string_is_handled() {
    let long = "x".repeat(1024 * 1024);
    let yaml = format!(
        "apiVersion: cordon/v1\nkind: Policy\nmetadata: {{name: big, description: \"{long}\"}}\nspec: {{}}\n"
    );
    let policy = parse_policy("big.yaml", &yaml, &LoadOptions::default()).unwrap();
    assert_eq!(policy.description.map(|d| d.len()), Some(1024 * 1024));
    // YAML itself caps implicit keys at 1024 characters.
    let err = errors(&format!(
        "{HEAD}  groups:\n    {long}: {{cidrs: [10.0.0.0/8]}}\n"
    ));
    assert!(
        err.starts_with("bad.yaml:6:"),
        "{}",
        &err[..200.min(err.len())]
    );
    let err = errors(&format!(
        "{HEAD}  groups:\n    a: {{fqdns: [\"{long}.example\"]}}\n"
    ));
    assert!(
        err.contains("invalid FQDN pattern"),
        "{}",
        &err[..200.min(err.len())]
    );
}

#[test]
fn a_cycle_through_five_groups_is_named() {
    let yaml = format!(
        "{HEAD}  groups:\n    a: {{groups: [b]}}\n    b: {{groups: [c]}}\n    c: {{groups: [d]}}\n    d: {{groups: [e]}}\n    e: {{groups: [f]}}\n    f: {{groups: [a]}}\n"
    );
    let err = errors(&yaml);
    assert!(
        err.contains("group cycle: a → b → c → d → e → f → a"),
        "{err}"
    );
}

#[test]
fn impossible_cidrs_are_errors() {
    for cidr in [
        "10.0.0.0/33",
        "300.1.1.1/8",
        "10.0.0.0/-1",
        "10.0.0/8",
        "fd00::/200",
        "1.2.3.4/",
        "/8",
    ] {
        let err = errors(&format!(
            "{HEAD}  groups:\n    a: {{cidrs: [\"{cidr}\"]}}\n"
        ));
        assert!(
            err.contains(&format!("invalid CIDR `{cidr}`")),
            "{cidr}: {err}"
        );
        assert!(err.contains("bad.yaml:6:"), "{cidr}: {err}");
    }
}

#[test]
fn text_that_is_not_yaml_or_not_a_policy_is_an_error() {
    for text in [
        "{{{",
        "- a\n- b\n",
        "just a string",
        "",
        "\t\tkey: [",
        "a: b: c",
    ] {
        let err = errors(text);
        assert!(err.starts_with("bad.yaml"), "{text:?}: {err}");
    }
}

#[test]
fn invalid_utf8_is_located() {
    let dir = std::env::temp_dir().join(format!("cordon-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.yaml");
    std::fs::write(&path, b"apiVersion: cordon/v1\nkind: Pol\xffcy\n").unwrap();
    let err = load_policy(&path, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("p.yaml:2:10: invalid UTF-8 at byte offset 31"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_alias_bomb_is_stopped() {
    let mut yaml = String::from(HEAD);
    yaml.push_str("  inventory: &a [x, x, x, x, x, x, x, x, x, x]\n");
    let mut prev = "a".to_string();
    for i in 0..9 {
        let name = format!("l{i}");
        yaml.push_str(&format!("  x{i}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        prev = name;
    }
    let started = Instant::now();
    let err = errors(&yaml);
    assert!(err.contains("more than"), "{err}");
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn every_error_is_reported_in_one_run() {
    let yaml = format!(
        "{HEAD}  groups:\n    a: {{cidrs: [10.0.0.0/33]}}\n    b: {{fqdns: [\"*\"]}}\n  rules:\n    - {{name: r, from: [nope], to: [b], ports: [tcp/99999], action: allow}}\n"
    );
    let err = errors(&yaml);
    for needle in [
        "invalid CIDR",
        "invalid FQDN pattern",
        "unknown group `nope`",
        "invalid port `tcp/99999`",
    ] {
        assert!(err.contains(needle), "missing {needle}: {err}");
    }
}
