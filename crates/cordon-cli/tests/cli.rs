//! The `cordon` binary end to end: exit codes, text and JSON output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use common::{cordon, stderr, stdout, temp_dir};

const EXAMPLE: &str = "../../examples/acme-prod.yaml";

#[test]
fn check_accepts_the_example_and_reports_every_error_with_exit_64() {
    let ok = cordon(&["policy", "check", EXAMPLE]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(
        stdout(&ok).contains("ok (14 groups, 14 rules, 8 workloads"),
        "{}",
        stdout(&ok)
    );

    let bad = cordon(&[
        "policy",
        "check",
        "../cordon-policy/tests/errors/unknown-groups.yaml",
    ]);
    assert_eq!(bad.status.code(), Some(64));
    let err = stderr(&bad);
    assert!(
        err.contains("unknown-groups.yaml:11:41: unknown group `usr-db`"),
        "{err}"
    );
    assert!(err.contains("hint: did you mean `user-db`?"), "{err}");
    assert!(err.contains("4 errors"), "{err}");

    let json = cordon(&[
        "policy",
        "check",
        "--json",
        "../cordon-policy/tests/errors/cycle.yaml",
        EXAMPLE,
    ]);
    assert_eq!(json.status.code(), Some(64));
    let lines: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["valid"], false);
    assert_eq!(lines[0]["errors"][0]["line"], 6);
    assert_eq!(lines[1]["valid"], true);
    assert_eq!(lines[1]["rules"], 14);
}

#[test]
fn explain_json_has_verdict_rules_and_reason() {
    let out = cordon(&[
        "policy",
        "explain",
        EXAMPLE,
        "--from",
        "notifier-1",
        "--to",
        "user-db-1",
        "--port",
        "tcp/22",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["verdict"], "deny");
    assert_eq!(v["rules"], serde_json::json!(["no-admin-from-app-tier"]));
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("denied by rule `no-admin-from-app-tier`")
    );
    assert_eq!(v["src"]["workload"], "notifier-1");
    assert!(
        v["src"]["groups"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("app-tier"))
    );

    let allow = cordon(&[
        "policy",
        "explain",
        EXAMPLE,
        "--from",
        "notifier-1",
        "--to",
        "smtp.mailer.example",
        "--port",
        "tcp/587",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&allow)).unwrap();
    assert_eq!(v["verdict"], "allow");
    assert_eq!(v["dst"]["vendors"], serde_json::json!(["Mailer Inc"]));

    let text = cordon(&[
        "policy",
        "explain",
        EXAMPLE,
        "--from",
        "api-1",
        "--to",
        "exfil.s3.amazonaws.com",
        "--port",
        "tcp/443",
    ]);
    assert!(
        stdout(&text)
            .starts_with("verdict: deny\nreason:  denied by rule `no-cloud-storage-from-app-tier`"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn explain_reports_would_deny_in_audit_mode() {
    let out = cordon(&[
        "policy",
        "explain",
        "../cordon-policy/tests/corpus/audit.policy.yaml",
        "--from",
        "10.0.0.1",
        "--to",
        "10.0.1.1",
        "--port",
        "tcp/80",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["verdict"], "would-deny");
    assert_eq!(v["rules"], serde_json::json!([]));
}

#[test]
fn explain_refuses_bad_endpoints_and_ports_with_usage_exit() {
    let out = cordon(&[
        "policy", "explain", EXAMPLE, "--from", "0x7f.1", "--to", "web-1", "--port", "tcp/443",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--from"), "{}", stderr(&out));
    let out = cordon(&[
        "policy", "explain", EXAMPLE, "--from", "web-1", "--to", "api-1", "--port", "tcp/1-2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = cordon(&["policy", "explain", EXAMPLE, "--from", "web-1"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
}

#[test]
fn lint_fails_on_warnings_when_asked() {
    let plain = cordon(&["policy", "lint", EXAMPLE]);
    assert_eq!(plain.status.code(), Some(0));
    assert!(
        stdout(&plain).contains("warning[wide-allow]: rule `internet-to-web`"),
        "{}",
        stdout(&plain)
    );
    let strict = cordon(&["policy", "lint", EXAMPLE, "--fail-on", "warning"]);
    assert_eq!(strict.status.code(), Some(1));
    let json = cordon(&["policy", "lint", EXAMPLE, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let wide = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "wide-allow")
        .unwrap();
    assert!(wide["at"].as_str().unwrap().contains("acme-prod.yaml:"));
    // The analytics vendor has no access to Acme's clouds: it names no
    // identities, and lint says so as information.
    let info = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "vendor-no-identities")
        .unwrap();
    assert_eq!(info["level"], "info");
    assert!(
        info["message"]
            .as_str()
            .unwrap()
            .contains("analytics-vendor")
    );
}

#[test]
fn fmt_prints_checks_and_rewrites() {
    let dir = temp_dir("fmt");
    let path = dir.join("p.yaml");
    std::fs::write(
        &path,
        "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: p}   # a comment\nspec: {groups: {a: {cidrs: [10.0.0.0/8]}}, rules: [{name: r, from: [a], to: [a], action: allow}]}\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    assert_eq!(
        cordon(&["policy", "fmt", "--check", p]).status.code(),
        Some(1)
    );
    let printed = cordon(&["policy", "fmt", p]);
    assert!(
        stderr(&printed).contains("comments"),
        "{}",
        stderr(&printed)
    );
    assert!(
        stdout(&printed).contains("  groups:\n    a:\n      cidrs: [10.0.0.0/8]\n"),
        "{}",
        stdout(&printed)
    );
    assert_eq!(
        cordon(&["policy", "fmt", "--write", p]).status.code(),
        Some(0)
    );
    assert_eq!(
        cordon(&["policy", "fmt", "--check", p]).status.code(),
        Some(0)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), stdout(&printed));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn diff_lists_new_reachability() {
    let dir = temp_dir("diff");
    let old = dir.join("old.yaml");
    let new = dir.join("new.yaml");
    let base = "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  groups:\n    a: {cidrs: [10.0.1.0/24]}\n    b: {cidrs: [10.0.2.0/24]}\n  rules:\n    - {name: ab, from: [a], to: [b], ports: [tcp/443], action: allow}\n";
    std::fs::write(&old, base).unwrap();
    std::fs::write(
        &new,
        format!("{base}    - {{name: ba, from: [b], to: [a], ports: [tcp/22], action: allow}}\n"),
    )
    .unwrap();
    let out = cordon(&[
        "policy",
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--exit-code",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "+ b → a tcp/22 (rule ba)\n");
    let same = cordon(&[
        "policy",
        "diff",
        old.to_str().unwrap(),
        old.to_str().unwrap(),
        "--exit-code",
    ]);
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(stdout(&same), "no reachability changes\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn demo_walks_the_breach_and_names_its_folder() {
    let dir = temp_dir("demo");
    let out = cordon(&["demo", "--out", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for stage in [
        "■ Initial access",
        "■ Discovery",
        "■ Lateral movement",
        "■ Command and control",
        "■ Exfiltration",
    ] {
        assert!(text.contains(stage), "{stage}: {text}");
    }
    assert!(text.contains("T1199 Trusted Relationship"), "{text}");
    assert!(text.contains("PCI-DSS-4.0:12.8"), "{text}");
    assert!(
        text.contains("enforced, the policy would have stopped it: no-cloud-storage-from-app-tier"),
        "{text}"
    );
    assert!(text.contains("8 of 8 attack steps detected"), "{text}");
    assert!(text.contains(&dir.display().to_string()));
    for f in [
        "acme-prod.yaml",
        "acme-inventory.yaml",
        "findings.jsonl",
        "findings.ocsf.jsonl",
        "findings.stix.json",
        "flows/truth.json",
        "flows/dns.log",
        "store",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_command_has_help_with_examples() {
    for cmd in [
        &["policy", "check"][..],
        &["policy", "explain"],
        &["policy", "lint"],
        &["policy", "diff"],
        &["policy", "fmt"],
        &["policy", "export"],
        &["demo"],
        &["detect"],
        &["simulate"],
        &["agent"],
        &["lab"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = cordon(&args);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            stdout(&out).contains("EXAMPLES:"),
            "{cmd:?}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn export_writes_objects_and_lists_what_it_cannot_express() {
    let dir = temp_dir("export");
    let out_file = dir.join("netpol.yaml");
    let out = cordon(&[
        "policy",
        "export",
        "--format",
        "k8s",
        "../../examples/acme-prod.yaml",
        "--namespace",
        "shop",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let yaml = std::fs::read_to_string(&out_file).unwrap();
    assert!(yaml.contains("kind: NetworkPolicy") && yaml.contains("namespace: shop"));
    assert!(
        stderr(&out).contains("rule `no-admin-from-app-tier`: deny rule"),
        "{}",
        stderr(&out)
    );
    let out = cordon(&[
        "policy",
        "export",
        "--format",
        "cilium",
        "../../examples/acme-prod.yaml",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["kind"] == "CiliumNetworkPolicy")
    );
    assert!(!v["unexpressible"].as_array().unwrap().is_empty());
    let out = cordon(&[
        "policy",
        "export",
        "--format",
        "istio",
        "../../examples/acme-prod.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every listing command, its output piped into a reader that takes one
/// line and closes: the command ends quietly with exit 0 (no panic, no
/// "Broken pipe" message), like any Unix tool.
#[test]
fn listings_end_quietly_when_their_reader_closes_early() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = temp_dir("pipe");
    let out = cordon(&[
        "simulate",
        "--scenario",
        "benign",
        "--format",
        "zeek",
        "--hours",
        "6",
        "--out",
        dir.join("flows").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = dir.join("store");
    let store = store.to_str().unwrap();
    let out = cordon(&[
        "ingest",
        "--store",
        store,
        "--policy",
        EXAMPLE,
        "--detect",
        dir.join("flows").join("conn.log").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listings: &[&[&str]] = &[
        &["flows", "query", "--limit", "100000"],
        &["flows", "query", "--limit", "100000", "--output", "json"],
        &["flows", "query", "--limit", "100000", "--output", "csv"],
        &["flows", "query", "--limit", "100000", "--output", "ocsf"],
        &["flows", "topology"],
        &["flows", "topology", "--output", "dot"],
        &["flows", "audit", "--policy", EXAMPLE],
        &["detect"],
        &["detect", "--json"],
        &["policy", "recommend", "--from-flows", "--policy", EXAMPLE],
    ];
    for args in listings {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args(*args)
            .args(["--store", store])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reader is dropped here: the pipe is closed.
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!first.is_empty(), "{args:?} printed nothing: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
    }
    // Short output ends in a newline, so a summary after it starts a line.
    let empty = temp_dir("pipe-empty");
    let out = cordon(&["detect", "--store", empty.to_str().unwrap()]);
    assert!(stdout(&out).ends_with("0 findings\n"), "{}", stdout(&out));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&empty).unwrap();
}
