//! The policy corpus: data files of (policy, request, expected verdict and
//! matching rules), run against both the compiled and the reference
//! evaluator.
//!
//! `tests/corpus/NAME.cases.yaml` holds the cases for the policy in
//! `tests/corpus/NAME.policy.yaml`, or for the file its `policy:` key names
//! (relative to the cases file). Each case:
//! `{from: ENDPOINT, to: ENDPOINT, port: tcp/443, expect: allow|deny|would-deny, rules: [names]}`.
//! Endpoints are written as `cordon policy explain` takes them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cordon_policy::{CompiledPolicy, Endpoint, LoadOptions, Request, load_policy, reference};
use cordon_yaml::{Diagnostics, parse};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

#[test]
fn corpus() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".cases.yaml"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.display().to_string();
        let doc = parse(name.as_str(), &text).unwrap_or_else(|e| panic!("{e}"));
        let mut diags = Diagnostics::new(name.as_str());
        let policy_path = match doc.root.get("policy").and_then(|n| n.as_str()) {
            Some(p) => file.parent().unwrap().join(p),
            None => PathBuf::from(name.replace(".cases.yaml", ".policy.yaml")),
        };
        let policy = load_policy(&policy_path, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", policy_path.display()));
        let policy = Arc::new(policy);
        let compiled = CompiledPolicy::new(Arc::clone(&policy));
        let cases = doc
            .root
            .get("cases")
            .expect("cases")
            .items(&mut diags, "cases")
            .unwrap();
        for case in cases {
            total += 1;
            let at = format!("{name}:{}", case.pos);
            let get = |key: &str| {
                case.get(key)
                    .and_then(|n| n.as_str())
                    .unwrap_or_else(|| panic!("{at}: missing `{key}`"))
                    .to_string()
            };
            let src =
                Endpoint::parse(&policy, &get("from")).unwrap_or_else(|e| panic!("{at}: {e}"));
            let dst = Endpoint::parse(&policy, &get("to")).unwrap_or_else(|e| panic!("{at}: {e}"));
            let (protocol, port) =
                Request::parse_port(&get("port")).unwrap_or_else(|e| panic!("{at}: {e}"));
            let expect = get("expect");
            let rules: Vec<String> = match case.get("rules") {
                Some(list) => list
                    .items(&mut diags, "rules")
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_string())
                    .collect(),
                None => Vec::new(),
            };
            let request = Request {
                src: src.clone(),
                dst: dst.clone(),
                protocol,
                port,
            };
            let decision = compiled.evaluate(&request);
            let got_rules: Vec<String> = decision
                .rules
                .iter()
                .map(|id| policy.rule(*id).unwrap().name.clone())
                .collect();
            if decision.verdict.as_str() != expect || got_rules != rules {
                failures.push(format!(
                    "{at}: expected {expect} {rules:?}, compiled gave {} {got_rules:?}",
                    decision.verdict
                ));
            }
            let (ref_verdict, ref_rules) = reference::evaluate(&policy, &src, &dst, protocol, port);
            if ref_verdict != decision.verdict || ref_rules != decision.rules {
                failures.push(format!(
                    "{at}: reference gave {ref_verdict} {ref_rules:?}, compiled {} {:?}",
                    decision.verdict, decision.rules
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} corpus cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        total >= 150,
        "the corpus should hold at least 150 cases, has {total}"
    );
    eprintln!("{total} corpus cases passed");
}
