//! `cordon ingest` and `cordon flows` end to end on real files: the
//! published samples, hostile inputs, idempotence, and a SIGKILL mid-file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use common::{cordon, temp_dir};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

const SAMPLES: &str = "../cordon-flow/samples";
const POLICY: &str = "../../examples/acme-prod.yaml";

fn aws_line(i: u64) -> String {
    format!(
        "2 123456789012 eni-0a1b2c3d 10.0.{}.{} 10.0.2.10 {} 5432 6 10 {} {} {} ACCEPT OK\n",
        (i / 250) % 250,
        i % 250 + 1,
        30000 + i % 30000,
        1000 + i,
        1_700_000_000 + i,
        1_700_000_060 + i
    )
}

#[test]
fn samples_ingest_once_and_query_back() {
    let dir = temp_dir("samples");
    let store = dir.join("store");
    let s = store.to_str().unwrap();
    let first = cordon(&[
        "ingest",
        "--store",
        s,
        "--policy",
        POLICY,
        "--json",
        &format!("{SAMPLES}/aws_vpc_v2_default.log"),
        &format!("{SAMPLES}/azure_vnet_flowlog_v4.json"),
        &format!("{SAMPLES}/hubble_export.jsonl"),
        &format!("{SAMPLES}/gcp_vpc_flow_entry.json"),
        &format!("{SAMPLES}/azure_nsg_flowlog_v2.json"),
    ]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let v = json(&first);
    assert_eq!(v["records"], 33);
    assert_eq!(v["flows"], 31);
    assert_eq!(v["stored"], 31);
    assert_eq!(v["skipped"]["no-data"], 1);
    assert_eq!(v["skipped"]["skip-data"], 1);

    let again = json(&cordon(&["ingest", "--store", s, "--json", SAMPLES]));
    assert_eq!(again["stored"], 0, "nothing is stored twice: {again}");

    let q = cordon(&[
        "flows",
        "query",
        "--store",
        s,
        "--src",
        "10.128.0.14",
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&q.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["dst_port"], 5432);
    assert_eq!(lines[0]["enrichment"]["verdict"], "deny");

    let ocsf = cordon(&[
        "flows", "query", "--store", s, "--port", "22", "--output", "ocsf",
    ]);
    let event: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&ocsf.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(event["class_uid"], 4001);
    assert_eq!(event["dst_endpoint"]["port"], 22);
    assert_eq!(event["action_id"], 2);

    let csv = cordon(&[
        "flows",
        "query",
        "--store",
        s,
        "--output",
        "csv",
        "--protocol",
        "udp",
    ]);
    let text = String::from_utf8_lossy(&csv.stdout);
    assert!(text.starts_with("start,end,source,src_ip"), "{text}");
    assert!(text.lines().count() > 1);

    let dot = cordon(&["flows", "topology", "--store", s, "--output", "dot"]);
    let text = String::from_utf8_lossy(&dot.stdout);
    assert!(
        text.starts_with("digraph cordon {") && text.contains("->"),
        "{text}"
    );
    let topo = json(&cordon(&["flows", "topology", "--store", s, "--json"]));
    assert!(
        topo.as_array()
            .unwrap()
            .iter()
            .any(|e| e["dst_group"] == "email-vendor"),
        "{topo}"
    );
    // Retention: the two 2014 AWS flows go, the rest stay.
    let pruned = cordon(&["flows", "prune", "--store", s, "--older-than", "1500000000"]);
    assert_eq!(pruned.status.code(), Some(0));
    let text = String::from_utf8_lossy(&pruned.stdout);
    assert!(text.starts_with("deleted 2 flows"), "{text}");
    assert_eq!(
        cordon(&["flows", "prune", "--store", s, "--older-than", "soon"])
            .status
            .code(),
        Some(2)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_inputs_are_counted_with_locations_and_good_records_kept() {
    let dir = temp_dir("hostile");
    let store = dir.join("store");
    let s = store.to_str().unwrap();
    let mixed = dir.join("mixed.log");
    let mut f = std::fs::File::create(&mixed).unwrap();
    f.write_all(aws_line(1).as_bytes()).unwrap();
    f.write_all(&vec![b'x'; 10 * 1024 * 1024]).unwrap();
    f.write_all(b"\n").unwrap();
    f.write_all(aws_line(2).as_bytes()).unwrap();
    f.write_all(b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 \xff\xfe 1 2 ACCEPT OK\n")
        .unwrap();
    f.write_all(b"\x00\x01\x02 binary garbage \x7f\n").unwrap();
    f.write_all(aws_line(3).as_bytes()).unwrap();
    drop(f);
    let v = json(&cordon(&[
        "ingest",
        "--store",
        s,
        "--format",
        "aws",
        "--json",
        mixed.to_str().unwrap(),
    ]));
    assert_eq!(v["stored"], 3, "{v}");
    assert_eq!(v["skipped"]["too-long"], 1, "{v}");
    assert_eq!(v["skipped"]["invalid-utf8"], 1, "{v}");
    assert_eq!(v["skipped"]["malformed"], 1, "{v}");
    let examples = v["files"][0]["skipped"]["too-long"]["examples"][0]
        .as_str()
        .unwrap();
    assert!(examples.contains("mixed.log:2"), "{examples}");

    let deep = dir.join("deep.jsonl");
    std::fs::write(&deep, format!("{}\n{}\n", "[".repeat(100_000), r#"{"flow":{"time":"2023-08-21T12:12:18Z","verdict":"FORWARDED","IP":{"source":"10.0.0.1","destination":"10.0.0.2"},"l4":{"TCP":{"source_port":1,"destination_port":80}}}}"#)).unwrap();
    let v = json(&cordon(&[
        "ingest",
        "--store",
        s,
        "--format",
        "hubble",
        "--json",
        deep.to_str().unwrap(),
    ]));
    assert_eq!(
        (v["stored"].as_u64(), v["skipped"]["malformed"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );

    // A gzip file cut in half: what decompressed is kept, the error named.
    let gz = dir.join("cut.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..20_000 {
        enc.write_all(aws_line(i).as_bytes()).unwrap();
    }
    let bytes = enc.finish().unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let out = cordon(&["ingest", "--store", s, "--json", gz.to_str().unwrap()]);
    let v = json(&out);
    assert!(
        v["files"][0]["error"]
            .as_str()
            .unwrap()
            .contains("cut.log.gz"),
        "{v}"
    );
    let stored = v["stored"].as_u64().unwrap();
    assert!(stored > 1000 && stored < 20_000, "{v}");

    let wrong = dir.join("wrong.txt");
    std::fs::write(&wrong, "hello, this is not a flow log\n").unwrap();
    let out = cordon(&["ingest", "--store", s, wrong.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot tell the format"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn count(store: &Path) -> u64 {
    let out = cordon(&[
        "flows",
        "query",
        "--store",
        store.to_str().unwrap(),
        "--limit",
        "10000000",
        "--output",
        "csv",
    ]);
    String::from_utf8_lossy(&out.stdout).lines().count() as u64 - 1
}

#[test]
fn killing_an_ingest_loses_nothing_committed_and_a_rerun_duplicates_nothing() {
    let dir = temp_dir("kill");
    let store = dir.join("store");
    let log = dir.join("big.log");
    let total: u64 = 150_000;
    let mut w = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    for i in 0..total {
        w.write_all(aws_line(i).as_bytes()).unwrap();
    }
    drop(w);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args([
            "ingest",
            "--store",
            store.to_str().unwrap(),
            log.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some batches are committed but before it is done.
    let started = Instant::now();
    let db = store.join("flows.sqlite");
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let size = std::fs::metadata(store.join("flows.sqlite-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        if size > 2 * 1024 * 1024 || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    let finished_early = child.try_wait().unwrap().is_some();
    child.kill().ok();
    child.wait().unwrap();
    assert!(db.exists());
    let after_kill = count(&store);
    eprintln!("killed after {after_kill} of {total} flows (finished early: {finished_early})");
    assert!(after_kill <= total);
    if !finished_early {
        assert!(after_kill < total, "the kill came before the end");
    }
    // Re-running finishes the file without duplicating anything.
    let out = cordon(&[
        "ingest",
        "--store",
        store.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    let v = json(&out);
    assert_eq!(v["stored"].as_u64().unwrap(), total - after_kill, "{v}");
    assert_eq!(count(&store), total);
    let again = json(&cordon(&[
        "ingest",
        "--store",
        store.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]));
    assert_eq!(again["stored"], 0);
    assert_eq!(count(&store), total);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn audit_and_recommend_from_stored_flows() {
    let dir = temp_dir("recommend");
    let store = dir.join("store");
    let s = store.to_str().unwrap();
    let zeek = dir.join("conn.log");
    let rows = [
        ("10.0.1.10", "10.0.3.10", 8080),
        ("10.0.1.11", "10.0.3.11", 8080),
        ("10.0.3.10", "10.0.2.10", 5432),
        ("10.0.4.10", "198.51.100.25", 587),
        ("10.0.4.10", "10.0.2.10", 22),
    ];
    let mut text = String::from(
        "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\n",
    );
    for (i, (a, b, p)) in rows.iter().enumerate() {
        text.push_str(&format!(
            "{}\tC{i}\t{a}\t4{i}000\t{b}\t{p}\ttcp\t-\t1.0\t100\t200\tSF\n",
            1_700_000_000 + i
        ));
    }
    std::fs::write(&zeek, text).unwrap();
    let out = cordon(&["ingest", "--store", s, zeek.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));

    let audit = json(&cordon(&[
        "flows", "audit", "--store", s, "--policy", POLICY, "--json",
    ]));
    assert_eq!(audit["flows"], 5);
    assert_eq!(
        audit["denied"], 1,
        "only the SSH from the notifier breaks: {audit}"
    );
    assert_eq!(audit["breaks"][0]["port"], "tcp/22");
    assert_eq!(
        cordon(&[
            "flows",
            "audit",
            "--store",
            s,
            "--policy",
            POLICY,
            "--fail-on-deny"
        ])
        .status
        .code(),
        Some(1)
    );

    // Recommend with the example's groups but none of its rules.
    let groups_only = dir.join("groups.yaml");
    let example = std::fs::read_to_string(POLICY).unwrap();
    let cut = example.find("  rules:").unwrap();
    std::fs::write(&groups_only, &example[..cut]).unwrap();
    std::fs::copy(
        "../../examples/acme-inventory.yaml",
        dir.join("acme-inventory.yaml"),
    )
    .unwrap();
    let out = cordon(&[
        "policy",
        "recommend",
        "--from-flows",
        "--store",
        s,
        "--policy",
        groups_only.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proposed = dir.join("proposed.yaml");
    std::fs::write(&proposed, &out.stdout).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("name: web-to-api") && text.contains("ports: [tcp/8080]"),
        "{text}"
    );
    assert!(
        text.contains("name: notifier-to-email-vendor") && text.contains("mode: audit"),
        "{text}"
    );
    let check = cordon(&["policy", "check", proposed.to_str().unwrap()]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let audit = json(&cordon(&[
        "flows",
        "audit",
        "--store",
        s,
        "--policy",
        proposed.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(
        audit["denied"], 0,
        "the proposal allows everything observed: {audit}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dns_answers_name_flows_so_fqdn_rules_apply() {
    let dir = temp_dir("dns");
    let dns = dir.join("dns.log");
    std::fs::write(
        &dns,
        "#separator \\x09\n#set_separator\t,\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\tanswers\tTTLs\n\
         1700000000.0\tD1\t10.0.3.10\t53000\t10.0.0.2\t53\tudp\texfil-7f3a.s3.amazonaws.com\ts3-w.amazonaws.com,52.95.1.3\t30.0,5.0\n",
    )
    .unwrap();
    let conn = dir.join("conn.log");
    std::fs::write(
        &conn,
        "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\n\
         1700000010.0\tC1\t10.0.3.10\t41000\t52.95.1.3\t443\ttcp\tssl\t30.0\t50000000\t4000\tSF\n",
    )
    .unwrap();
    for (with_dns, rule) in [
        (false, serde_json::Value::Null),
        (true, serde_json::json!("no-cloud-storage-from-app-tier")),
    ] {
        let store = dir.join(format!("store-{with_dns}"));
        let s = store.to_str().unwrap();
        let mut args = vec!["ingest", "--store", s, "--policy", POLICY];
        if with_dns {
            args.extend(["--dns", dns.to_str().unwrap()]);
        }
        args.push(conn.to_str().unwrap());
        assert_eq!(cordon(&args).status.code(), Some(0));
        let out = cordon(&["flows", "query", "--store", s, "--json"]);
        let flow: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap())
                .unwrap();
        assert_eq!(flow["enrichment"]["verdict"], "deny");
        assert_eq!(
            flow["enrichment"]["rule"], rule,
            "with dns: {with_dns}: {flow}"
        );
        if with_dns {
            assert_eq!(flow["hostname"], "exfil-7f3a.s3.amazonaws.com");
        }
    }
    // A Zeek log folder: its dns.log names the flows of its conn.log
    // without --dns, and is not counted as a file of skipped records.
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::copy(&dns, logs.join("dns.log")).unwrap();
    std::fs::copy(&conn, logs.join("conn.log")).unwrap();
    let store = dir.join("store-folder");
    let s = store.to_str().unwrap();
    let out = cordon(&["ingest", "--store", s, "--json", logs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json(&out);
    assert_eq!(report["files"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["dns"][0]["answers"], 1, "{report}");
    let out = cordon(&["flows", "query", "--store", s, "--json"]);
    let flow: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(flow["hostname"], "exfil-7f3a.s3.amazonaws.com");
    // A DNS log alone holds no flows: an error that says so.
    let out = cordon(&[
        "ingest",
        "--store",
        s,
        logs.join("dns.log").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a Zeek DNS log"),
        "{out:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn standard_input_is_an_input_too() {
    let dir = temp_dir("stdin");
    let store = dir.join("store");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["ingest", "--store", store.to_str().unwrap(), "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..100 {
        stdin.write_all(aws_line(i).as_bytes()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let v = json(&out);
    assert_eq!(
        (v["records"].as_u64(), v["stored"].as_u64()),
        (Some(100), Some(100)),
        "{v}"
    );
    assert_eq!(v["files"][0]["format"], "aws");
    std::fs::remove_dir_all(&dir).unwrap();
}
