//! The lake as other engines read it: the demo's store exported with
//! `cordon lake export`, then DuckDB (`read_parquet(..., hive_partitioning
//! =true)`), pyarrow (a hive-partitioned dataset) and pyspark (local mode)
//! each return the same flows and byte sums per group pair as `cordon
//! flows topology` on the store, and find flows by `src_endpoint.ip`.
//! Needs python3 with duckdb, pyarrow and pyspark, and Java (CI installs
//! them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::process::Command;

use common::{cordon, stderr, stdout, temp_dir};

#[test]
fn duckdb_pyarrow_and_spark_read_the_demo_lake_as_the_store_counts_it() {
    let dir = temp_dir("lake-demo");
    let out = cordon(&["demo", "--out", dir.to_str().unwrap(), "--hours", "12"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = dir.join("store");
    let lake = dir.join("lake");
    let export = || {
        let out = cordon(&[
            "lake",
            "export",
            "--store",
            store.to_str().unwrap(),
            "--out",
            lake.to_str().unwrap(),
            "--region",
            "eu-west-1",
            "--account",
            "111122223333",
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(stdout(&out).trim()).unwrap()
    };
    let summary = export();
    let rows = summary["rows"].as_u64().unwrap();
    assert!(rows > 10_000, "{summary}");
    // Again: the same files, replaced, the same rows.
    assert_eq!(export()["files"], summary["files"]);
    // Findings and incidents: one row per stored document, by class.
    let count = |source: &str, id: &str, attacks: &str| -> u64 {
        let out = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lake/check.py"))
            .arg("documents")
            .arg(&lake)
            .arg(source)
            .arg(id)
            .arg(attacks)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(seen["rows"], seen["ids"], "{source}: one row per document");
        assert!(
            seen["t1199"].as_u64().unwrap() > 0,
            "{source}: T1199 is queryable: {seen}"
        );
        seen["rows"].as_u64().unwrap()
    };
    let lines = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .lines()
            .count() as u64
    };
    assert_eq!(
        count(
            "cordon-detection-finding",
            "finding_info.uid",
            "finding_info.attacks"
        ),
        lines("findings.ocsf.jsonl")
    );
    assert_eq!(
        count("cordon-incident-finding", "metadata.uid", "attacks"),
        lines("incidents.ocsf.jsonl")
    );
    let topology = cordon(&[
        "flows",
        "topology",
        "--store",
        store.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(topology.status.success(), "{}", stderr(&topology));
    let topology_file = dir.join("topology.json");
    std::fs::write(&topology_file, &topology.stdout).unwrap();
    // A workload of the example inventory (api-1) that sends in every run.
    let probe = "10.0.3.10";
    for engine in ["duckdb", "pyarrow", "pyspark"] {
        let check = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lake/check.py"))
            .arg(engine)
            .arg(&lake)
            .arg(&topology_file)
            .arg(probe)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{engine}: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let seen: serde_json::Value = serde_json::from_str(
            String::from_utf8_lossy(&check.stdout)
                .trim()
                .lines()
                .last()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            seen["flows"].as_u64().unwrap(),
            rows,
            "{engine}: every flow, once"
        );
        println!("{seen}");
    }
}

/// Retention moves old flows out without losing them: after the store is
/// pruned, `flows query --lake` gives exactly what the whole store gave.
#[test]
fn pruned_flows_come_back_from_the_lake() {
    let dir = temp_dir("lake-prune");
    let out = cordon(&["demo", "--out", dir.to_str().unwrap(), "--hours", "12"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (store, lake) = (dir.join("store"), dir.join("lake"));
    let (store, lake) = (store.to_str().unwrap(), lake.to_str().unwrap());
    let out = cordon(&["lake", "export", "--store", store, "--out", lake]);
    assert!(out.status.success(), "{}", stderr(&out));
    let query = |extra: &[&str]| {
        let mut args = vec!["flows", "query", "--store", store, "--limit", "10000000"];
        args.extend_from_slice(extra);
        args.push("--json");
        let out = cordon(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let whole = query(&[]);
    let vendor = query(&["--vendor", "Mailer Inc", "--dst", "198.51.100.0/24"]);
    let first: serde_json::Value = serde_json::from_str(whole.lines().next().unwrap()).unwrap();
    let cut = first["start_ms"].as_i64().unwrap() / 1000 + 6 * 3600;
    let out = cordon(&[
        "flows",
        "prune",
        "--store",
        store,
        "--older-than",
        &cut.to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let left = query(&[]);
    assert!(
        left.lines().count() < whole.lines().count() * 3 / 4,
        "pruned"
    );
    assert!(
        query(&["--lake", lake]) == whole,
        "the pruned store and the lake"
    );
    assert!(
        query(&[
            "--lake",
            lake,
            "--vendor",
            "Mailer Inc",
            "--dst",
            "198.51.100.0/24"
        ]) == vendor,
        "by vendor and destination"
    );
    assert!(!vendor.is_empty());
}

const S3_CHECK: &str = r#"
import json, sys, boto3
import pyarrow.dataset as ds
from pyarrow import fs
endpoint, action = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
if action == "create":
    s3.create_bucket(Bucket="acme-lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sys.exit(0)
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="acme-lake", Prefix="cordon/")["Contents"]]
manifest = json.loads(s3.get_object(Bucket="acme-lake", Key="cordon/manifest.json")["Body"].read())
s3fs = fs.S3FileSystem(endpoint_override=endpoint.split("://")[1], scheme="http", region="eu-west-1",
                       access_key="testing", secret_key="testing")
data = ds.dataset("acme-lake/cordon/ext/cordon-network-activity", filesystem=s3fs,
                  format="parquet", partitioning="hive")
print(json.dumps({"keys": sorted(keys), "manifest_files": len(manifest["files"]), "rows": data.count_rows()}))
"#;

#[test]
fn the_lake_goes_to_s3_and_reads_back_from_there() {
    let dir = temp_dir("lake-s3");
    let out = cordon(&["demo", "--out", dir.to_str().unwrap(), "--hours", "6"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = dir.join("store");
    let (_moto, port) = common::moto_server();
    let endpoint = format!("http://127.0.0.1:{port}");
    let python = |action: &str| {
        Command::new("python3")
            .args(["-c", S3_CHECK, &endpoint, action])
            .output()
            .unwrap()
    };
    let created = python("create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let export = || {
        let out = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args(["lake", "export", "--store"])
            .arg(&store)
            .args(["--out", "s3://acme-lake/cordon", "--s3-endpoint", &endpoint])
            .args([
                "--region",
                "eu-west-1",
                "--account",
                "111122223333",
                "--json",
            ])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("HOME", &dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(stdout(&out).trim()).unwrap()
    };
    let summary = export();
    let rows = summary["rows"].as_u64().unwrap();
    let files = summary["files"].as_array().unwrap().len();
    let check = || {
        let out = python("check");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str::<serde_json::Value>(String::from_utf8_lossy(&out.stdout).trim())
            .unwrap()
    };
    let seen = check();
    assert_eq!(seen["rows"].as_u64().unwrap(), rows, "{seen}");
    assert_eq!(seen["manifest_files"].as_u64().unwrap() as usize, files);
    assert_eq!(
        seen["keys"].as_array().unwrap().len(),
        files + 1,
        "the files and the manifest"
    );
    // Again: the same objects, replaced.
    export();
    assert_eq!(check(), seen);

    // Read back from S3 with no local store: the same flows as the store
    // gives, and an address the lake never saw costs only footers and
    // bloom filters (ranged GETs), not the files.
    let query = |filter: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args(["flows", "query", "--limit", "1000000", "--json"])
            .args(["--log-format", "json", "--store"])
            .arg(dir.join("no-store"))
            .args([
                "--lake",
                "s3://acme-lake/cordon",
                "--s3-endpoint",
                &endpoint,
            ])
            .args(filter)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "eu-west-1")
            .env("HOME", &dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let read: serde_json::Value = stderr(&out)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["fields"]["message"] == "read the lake")
            .unwrap_or_else(|| panic!("no `read the lake` line: {}", stderr(&out)));
        (stdout(&out), read["fields"].clone())
    };
    let (from_s3, _) = query(&["--src", "10.0.4.10"]);
    let from_store = cordon(&[
        "flows",
        "query",
        "--store",
        store.to_str().unwrap(),
        "--limit",
        "1000000",
        "--json",
        "--src",
        "10.0.4.10",
    ]);
    assert!(!stdout(&from_store).is_empty());
    assert!(from_s3 == stdout(&from_store), "from S3 as from the store");
    let (nothing, read) = query(&["--addr", "192.0.2.99"]);
    assert!(nothing.is_empty());
    let flow_bytes: u64 = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["class_uid"] == 4001)
        .map(|f| f["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(read["row_groups_read"], 0, "{read}");
    let fetched = read["bytes_fetched"].as_u64().unwrap();
    assert!(
        fetched * 4 < flow_bytes,
        "fetched {fetched} of {flow_bytes} bytes: {read}"
    );
    // No credentials: a clear error, nothing sent.
    let out = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["lake", "export", "--store"])
        .arg(&store)
        .args(["--out", "s3://acme-lake/cordon", "--s3-endpoint", &endpoint])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("HOME", &dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("credentials"), "{}", stderr(&out));
}
