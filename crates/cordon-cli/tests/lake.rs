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
