//! The continuous lake sink: `ingest --lake` and `collect --lake` put in
//! the lake what they store, exactly once across runs; `lake export`
//! compacts days without losing or doubling a flow; `flows prune --lake`
//! writes what the lake lacks before deleting; and the lake then answers
//! `flows query --lake` as the whole store did. The S3 case runs against
//! `moto_server` (CI installs it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cordon, stderr, stdout, temp_dir};

fn query(store: &Path, lake: Option<&str>) -> String {
    let mut args = vec![
        "flows",
        "query",
        "--store",
        store.to_str().unwrap(),
        "--limit",
        "10000000",
        "--json",
    ];
    if let Some(l) = lake {
        args.extend(["--lake", l]);
    }
    let out = cordon(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The same flows, each as often (flows starting at the same millisecond
/// may come in another order from the lake than from the store).
fn assert_same(got: &str, want: &str, what: &str) {
    let sorted = |s: &str| {
        let mut v: Vec<&str> = s.lines().collect();
        v.sort_unstable();
        v.join("\n")
    };
    assert!(
        sorted(got) == sorted(want),
        "{what}: {} flows, {} expected",
        got.lines().count(),
        want.lines().count()
    );
}

fn manifest(lake: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(lake.join("manifest.json")).unwrap()).unwrap()
}

fn rows(manifest: &serde_json::Value) -> u64 {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["class_uid"] == 4001)
        .map(|f| f["rows"].as_u64().unwrap())
        .sum()
}

/// The demo's VPC flow log cut in two files of whole lines, each with the
/// header.
fn halves(dir: &Path) -> (String, String) {
    let out = cordon(&["demo", "--out", dir.to_str().unwrap(), "--hours", "8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.join("flows/vpc-flow.log")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.collect();
    let (a, b) = body.split_at(body.len() / 2);
    let write = |name: &str, part: &[&str]| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{header}\n{}\n", part.join("\n"))).unwrap();
        path.to_str().unwrap().to_string()
    };
    (write("first.log", a), write("second.log", b))
}

#[test]
fn ingest_feeds_the_lake_exactly_once_and_retention_moves_flows_there() {
    let dir = temp_dir("lake-sink-ingest");
    let (first, second) = halves(&dir);
    let store = dir.join("store");
    let lake = dir.join("lake");
    let policy = dir.join("acme-prod.yaml");
    let ingest = |file: &str| {
        let out = cordon(&[
            "ingest",
            "--store",
            store.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--lake",
            lake.to_str().unwrap(),
            file,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    ingest(&first);
    let after_first = manifest(&lake);
    ingest(&second);
    // Again: the store's ledger stores nothing twice, and so the lake.
    let again = ingest(&second);
    assert!(again.contains("lake: 0 flows"), "{again}");
    let whole = query(&store, None);
    let stored = whole.lines().count() as u64;
    assert!(stored > 10_000);
    let m = manifest(&lake);
    assert_eq!(rows(&m), stored, "every stored flow once");
    assert!(rows(&after_first) < stored);
    assert_same(
        &query(&dir.join("no-store"), Some(lake.to_str().unwrap())),
        &whole,
        "the lake alone",
    );

    // An export compacts each day into one file, replacing the sink's.
    let out = cordon(&[
        "lake",
        "export",
        "--store",
        store.to_str().unwrap(),
        "--out",
        lake.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = manifest(&lake);
    assert_eq!(rows(&m), stored);
    let flow_files: Vec<&serde_json::Value> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["class_uid"] == 4001)
        .collect();
    assert!(
        flow_files.iter().all(|f| f.get("blocks").is_none()),
        "only whole days left: {flow_files:?}"
    );
    assert_same(
        &query(&dir.join("no-store"), Some(lake.to_str().unwrap())),
        &whole,
        "the lake alone",
    );

    // Retention with the lake: nothing is lost to a query that reads it.
    let first_start: serde_json::Value =
        serde_json::from_str(whole.lines().next().unwrap()).unwrap();
    let cut = first_start["start_ms"].as_i64().unwrap() / 1000 + 4 * 3600;
    let out = cordon(&[
        "flows",
        "prune",
        "--store",
        store.to_str().unwrap(),
        "--older-than",
        &cut.to_string(),
        "--lake",
        lake.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(query(&store, None).lines().count() < whole.lines().count());
    assert_same(
        &query(&store, Some(lake.to_str().unwrap())),
        &whole,
        "the pruned store and the lake",
    );
}

#[test]
fn collect_flushes_to_the_lake_while_it_runs_and_when_it_stops() {
    let dir = temp_dir("lake-sink-collect");
    let (store, lake) = (dir.join("store"), dir.join("lake"));
    let collector = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["collect", "--listen", "127.0.0.1:0"])
        .args([
            "--flush-ms",
            "100",
            "--lake-flush",
            "1",
            "--json",
            "--store",
        ])
        .arg(&store)
        .arg("--lake")
        .arg(&lake)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut collector = common::Killed(collector);
    let (addr, errors) = common::collector_address(&mut collector.0);
    let port = addr.port();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(&common::netflow_v5(41_000), ("127.0.0.1", port))
        .unwrap();
    // The periodic flush, while the collector runs.
    let started = Instant::now();
    while !lake.join("manifest.json").is_file() || rows(&manifest(&lake)) < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no flush within 60 s; the collector said:\n{}",
            errors.try_iter().collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sender
        .send_to(&common::netflow_v5(41_001), ("127.0.0.1", port))
        .unwrap();
    let started = Instant::now();
    while query(&store, None).lines().count() < 2 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let child = collector.0.id();
    Command::new("kill")
        .args(["-TERM", &child.to_string()])
        .status()
        .unwrap();
    let status = collector.0.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        errors.try_iter().collect::<Vec<_>>().join("\n")
    );
    // The last flush, at the stop: both flows, each once.
    assert_eq!(rows(&manifest(&lake)), 2);
    assert_same(
        &query(&dir.join("no-store"), Some(lake.to_str().unwrap())),
        &query(&store, None),
        "collected",
    );
}

#[test]
fn ingest_feeds_a_lake_on_s3() {
    let dir = temp_dir("lake-sink-s3");
    let (first, second) = halves(&dir);
    let (_moto, port) = common::moto_server();
    let endpoint = format!("http://127.0.0.1:{port}");
    let created = Command::new("python3")
        .args([
            "-c",
            "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing').create_bucket(Bucket='acme-lake')",
            &endpoint,
        ])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let store = dir.join("store");
    let run = |args: &[&str], store: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args(args)
            .arg("--store")
            .arg(store)
            .args(["--s3-endpoint", &endpoint])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("HOME", &dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let lake = "s3://acme-lake/cordon";
    run(&["ingest", "--lake", lake, &first], &store);
    run(&["ingest", "--lake", lake, &second], &store);
    run(&["lake", "export", "--out", lake], &store);
    let whole = query(&store, None);
    let read_back = [
        "flows", "query", "--lake", lake, "--limit", "10000000", "--json",
    ];
    let from_s3 = run(&read_back, &store);
    // The store answers for all of it there: read the lake alone too.
    let alone = run(&read_back, &dir.join("no-store"));
    assert_same(&from_s3, &whole, "the store and S3");
    assert_same(&alone, &whole, "S3 alone");
}
