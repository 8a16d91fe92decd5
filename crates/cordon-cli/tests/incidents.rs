//! Incidents, reports and the vendor register after `cordon demo`, end to
//! end, and every machine output checked by its ecosystem's validator:
//! OCSF 4001/2004/2005 against the OCSF 1.3.0 schema, STIX with
//! `stix2-validator --strict` and the `stix2` library's deterministic ids,
//! the Kubernetes export with `kubernetes-validate`, and the Cilium export
//! against the CRD schema.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{cordon, ocsf_valid, stderr, stdout, temp_dir};
use serde_json::Value;

/// One demo for every test of this file (it takes a few seconds).
fn demo() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = temp_dir("incidents-demo");
        let out = cordon(&["demo", "--out", dir.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("8 of 8 attack steps detected"), "{text}");
        assert!(text.contains("report.html"), "{text}");
        dir
    })
}

fn store() -> String {
    demo().join("store").display().to_string()
}

fn ok(args: &[&str]) -> String {
    let out = cordon(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn only_incident() -> Value {
    let list: Value =
        serde_json::from_str(&ok(&["incidents", "--store", &store(), "--json"])).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:#?}");
    list[0].clone()
}

#[test]
fn the_demo_breach_is_one_open_incident_covering_every_step_in_both_planes() {
    let i = only_incident();
    assert_eq!(i["status"], "open");
    assert_eq!(i["severity"], "critical");
    let stages: Vec<&str> = i["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    for s in [
        "initial-access",
        "discovery",
        "lateral-movement",
        "command-and-control",
        "exfiltration",
    ] {
        assert!(stages.contains(&s), "{s} in {stages:?}");
    }
    // Every finding of the demo is in it: a connected chain.
    let findings = std::fs::read_to_string(demo().join("findings.jsonl")).unwrap();
    assert_eq!(
        i["findings"].as_array().unwrap().len(),
        findings.lines().count()
    );
    // The seed's four techniques, from the network and the cloud's audit
    // log: the vendor's role used from elsewhere, the bucket read in bulk,
    // the bucket shared with the attacker's account and the bytes leaving.
    let techniques: Vec<&str> = i["techniques"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in ["T1199", "T1078.004", "T1530", "T1537"] {
        assert!(techniques.contains(&t), "{t} in {techniques:?}");
    }
    let kinds: Vec<String> = findings
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for k in [
        "cloud-account-compromise",
        "cloud-bulk-read",
        "cloud-data-shared",
        "cloud-exfiltration",
        "vendor-drift",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    let id = i["id"].as_str().unwrap();
    let shown = ok(&["incidents", "show", id, "--store", &store()]);
    assert!(
        shown.contains("Kill chain") && shown.contains("T1199"),
        "{shown}"
    );
}

#[test]
fn the_html_report_is_self_contained_and_names_techniques_and_controls() {
    let id = only_incident()["id"].as_str().unwrap().to_string();
    let dir = temp_dir("incidents-report");
    let file = dir.join("r.html");
    let policy = demo().join("acme-prod.yaml");
    ok(&[
        "report",
        &id,
        "--store",
        &store(),
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "html",
        "--out",
        file.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&file).unwrap();
    for t in ["T1199", "T1046", "T1021", "T1071", "T1567"] {
        assert!(html.contains(t), "{t}");
    }
    for c in [
        "PCI-DSS-4.0:12.8",
        "NYDFS-500:500.11",
        "DORA:Art.28",
        "NIS2:Art.21(2)(d)",
        "CISA-ZTMM-2.0",
        "NIST-800-53",
        "ISO-27001-2022",
    ] {
        assert!(html.contains(c), "{c}");
    }
    assert!(html.contains("<svg") && html.contains("Mailer Inc"));
    for bad in ["<script", "<link", " src=", "url(", "@import"] {
        assert!(!html.contains(bad), "{bad}: the report must fetch nothing");
    }
    // The demo wrote the same report for its incident.
    let demo_html = std::fs::read_to_string(demo().join("report.html")).unwrap();
    assert!(demo_html.contains(&id));
    let md = std::fs::read_to_string(demo().join("report.md")).unwrap();
    assert!(md.contains("## Kill chain") && md.contains("cordon flows query --store"));

    // Each evidence flow is resolvable in the store with the query given.
    let json: Value = serde_json::from_str(&ok(&[
        "report",
        &id,
        "--store",
        &store(),
        "--format",
        "json",
    ]))
    .unwrap();
    let evidence = &json["stages"][0]["findings"][0]["evidence"][0];
    let query = evidence["query"].as_str().unwrap();
    let args: Vec<&str> = query.split_whitespace().skip(1).collect();
    let mut args = args.clone();
    args.push("--json");
    let found = ok(&args);
    let port = evidence["flow"]["dst_port"].as_u64().unwrap();
    assert!(
        found.lines().any(|l| {
            let f: Value = serde_json::from_str(l).unwrap();
            f["dst_port"].as_u64() == Some(port)
        }),
        "{query}: {found}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_vendor_register_lists_the_vendor_and_the_undeclared_cloud_storage() {
    let policy = demo().join("acme-prod.yaml");
    let parties: Value = serde_json::from_str(&ok(&[
        "vendors",
        "--store",
        &store(),
        "--policy",
        policy.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    let parties = parties.as_array().unwrap();
    let mailer = parties.iter().find(|p| p["name"] == "Mailer Inc").unwrap();
    assert_eq!(mailer["declared"], true);
    assert_eq!(mailer["criticality"], "high");
    assert!(mailer["bytes_out_per_day"].as_u64().unwrap() > 0);
    assert!(
        mailer["internal"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "notifier-1")
    );
    assert!(!mailer["incidents"].as_array().unwrap().is_empty());
    let storage = parties
        .iter()
        .find(|p| p["name"] == "amazonaws.com")
        .unwrap();
    assert_eq!(storage["declared"], false);
    assert!(
        storage["hostnames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h.as_str().unwrap().starts_with("acme-export-"))
    );
    let table = ok(&["vendors", "--store", &store()]);
    assert!(
        table.contains("Mailer Inc") && table.contains("UNDECLARED"),
        "{table}"
    );
    let csv = ok(&["vendors", "--store", &store(), "--output", "csv"]);
    assert!(csv.starts_with("Contractual arrangement reference number,"));
}

#[test]
fn unknown_ids_fail_clearly_and_a_resolved_incident_still_reports() {
    let s = store();
    for args in [
        vec!["incidents", "show", "INC-0000000000", "--store", &s],
        vec!["incidents", "ack", "INC-0000000000", "--store", &s],
        vec!["report", "INC-0000000000", "--store", &s],
    ] {
        let out = cordon(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("no incident `INC-0000000000`"),
            "{}",
            stderr(&out)
        );
    }
    let out = cordon(&["incidents", "--status", "closed", "--store", &s]);
    assert_eq!(out.status.code(), Some(2));
    let out = cordon(&["incidents", "--store", "/nonexistent/store"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("no store at"), "{}", stderr(&out));

    // A copy of the store, so the other tests see the incident open.
    let dir = temp_dir("incidents-resolve");
    let copy = dir.join("store");
    std::fs::create_dir_all(&copy).unwrap();
    for f in std::fs::read_dir(demo().join("store")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), copy.join(f.file_name())).unwrap();
    }
    let copy = copy.to_str().unwrap();
    let id = only_incident()["id"].as_str().unwrap().to_string();
    // Processes acknowledging at once: no change is lost.
    let spawned: Vec<_> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|who| {
            Command::new(env!("CARGO_BIN_EXE_cordon"))
                .args([
                    "incidents",
                    "ack",
                    &id,
                    "--store",
                    copy,
                    "--by",
                    who,
                    "--note",
                    "on it",
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in spawned {
        assert!(c.wait().unwrap().success());
    }
    ok(&[
        "incidents",
        "resolve",
        &id,
        "--store",
        copy,
        "--by",
        "erin",
        "--note",
        "vendor keys rotated",
    ]);
    let shown: Value =
        serde_json::from_str(&ok(&["incidents", "show", &id, "--store", copy, "--json"])).unwrap();
    let history = shown["incident"]["history"].as_array().unwrap();
    for who in ["alice", "bob", "carol", "dave", "erin"] {
        assert!(
            history.iter().any(|c| c["by"] == who),
            "{who}: {history:#?}"
        );
    }
    assert_eq!(shown["incident"]["status"], "resolved");
    let md = ok(&["report", &id, "--store", copy]);
    assert!(
        md.contains("resolved") && md.contains("vendor keys rotated"),
        "{md}"
    );
    let resolved = ok(&["incidents", "--store", copy, "--status", "resolved"]);
    assert!(resolved.contains(&id));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ocsf_outputs_are_valid_against_the_schema_they_claim() {
    let dir = temp_dir("incidents-ocsf");
    let flows = dir.join("flows.ocsf.jsonl");
    let text = ok(&[
        "flows",
        "query",
        "--store",
        &store(),
        "--limit",
        "5000",
        "--output",
        "ocsf",
    ]);
    assert!(text.lines().count() > 1000);
    std::fs::write(&flows, text).unwrap();
    ocsf_valid(&flows, 4001);
    ocsf_valid(&demo().join("findings.ocsf.jsonl"), 2004);
    ocsf_valid(&demo().join("incidents.ocsf.jsonl"), 2005);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "needs stix2-validator and the stix2 library (pip install stix2 stix2-validator); CI runs it"]
fn stix_bundles_pass_the_strict_validator_with_deterministic_observable_ids() {
    let bundle = demo().join("findings.stix.json");
    let out = Command::new("stix2_validator")
        .arg("--strict")
        .arg(&bundle)
        .output()
        .expect("stix2_validator runs (pip install stix2-validator)");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("STIX JSON: Valid"),
        "{}",
        stdout(&out)
    );
    // Other tools mint the same ids for the same observables (§2.9), and
    // each incident has an incident object and a report grouping it.
    let check = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, json, stix2\n\
             b = json.load(open(sys.argv[1]))\n\
             n = 0\n\
             for o in b['objects']:\n\
             \x20   if o['type'] in ('ipv4-addr', 'ipv6-addr', 'domain-name', 'network-traffic'):\n\
             \x20       again = stix2.parse({k: v for k, v in o.items() if k != 'id'})\n\
             \x20       assert again.id == o['id'], (o, again.id)\n\
             \x20       n += 1\n\
             types = [o['type'] for o in b['objects']]\n\
             assert n > 10 and types.count('incident') == 1 and types.count('report') == 1, types\n\
             print(n)",
        )
        .arg(&bundle)
        .output()
        .expect("python3 runs");
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
#[ignore = "needs kubernetes-validate and jsonschema (pip install kubernetes-validate); CI runs it"]
fn kubernetes_and_cilium_exports_pass_their_validators() {
    let dir = temp_dir("incidents-k8s");
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme-prod.yaml");
    let k8s = dir.join("k8s.yaml");
    let cilium = dir.join("cilium.yaml");
    std::fs::write(
        &k8s,
        ok(&[
            "policy",
            "export",
            "--format",
            "k8s",
            policy.to_str().unwrap(),
        ]),
    )
    .unwrap();
    std::fs::write(
        &cilium,
        ok(&[
            "policy",
            "export",
            "--format",
            "cilium",
            policy.to_str().unwrap(),
        ]),
    )
    .unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&k8s)
        .output()
        .expect("kubernetes-validate runs (pip install kubernetes-validate)");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/interop");
    let mut schema = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(data.join("cilium-ciliumnetworkpolicy_v2.json.gz")).unwrap(),
    )
    .read_to_string(&mut schema)
    .unwrap();
    let schema_file = dir.join("cnp.schema.json");
    std::fs::write(&schema_file, schema).unwrap();
    let check = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, json, yaml, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             v = jsonschema.Draft7Validator(schema)\n\
             docs = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]\n\
             errors = [(d['metadata']['name'], e.message) for d in docs for e in v.iter_errors(d)]\n\
             assert not errors, errors[:5]\n\
             assert len(docs) > 10, len(docs)\n\
             print(len(docs))",
        )
        .arg(&schema_file)
        .arg(&cilium)
        .output()
        .expect("python3 runs");
    assert!(check.status.success(), "{}", stderr(&check));
    std::fs::remove_dir_all(&dir).unwrap();
}
