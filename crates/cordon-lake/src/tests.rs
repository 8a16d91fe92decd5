use std::fs::File;

use arrow_array::cast::AsArray as _;
use arrow_array::{Array as _, StructArray};
use cordon_flow::{Enrichment, Flow, FlowSource};
use cordon_store::SqliteStore;
use cordon_store::prelude::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{ExportOptions, Manifest, event_day, export_flows};

const DAY: i64 = 86_400_000;
/// 2026-12-07T00:00:00Z.
const MONDAY: i64 = 1_796_601_600_000;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cordon-lake-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn flow(src: &str, dst: &str, start: i64, groups: Option<(&str, &str)>) -> Flow {
    let mut f = Flow::new(
        FlowSource::Aws,
        src.parse().unwrap(),
        dst.parse().unwrap(),
        6,
    );
    f.dst_port = 443;
    f.src_port = 50_000;
    f.start_ms = start;
    f.end_ms = start + 1000;
    f.bytes_out = 100;
    f.bytes_in = 10;
    if let Some((s, d)) = groups {
        f.enrichment = Some(std::sync::Arc::new(Enrichment {
            src_groups: vec![s.into()].into(),
            dst_groups: vec![d.into()].into(),
            vendor: Some("Mailer Inc".into()),
            ..Enrichment::with_verdict(cordon_core::Verdict::Allow)
        }));
    }
    f
}

#[test]
fn days_become_partitioned_files_that_read_back_and_a_second_export_replaces_them() {
    assert_eq!(event_day(MONDAY + 5), "20261207");
    let dir = temp("export");
    let mut store = SqliteStore::open(&dir.join("store")).unwrap();
    let input = store.begin_input("k", "f.log").unwrap();
    let flows = vec![
        flow(
            "10.0.4.10",
            "198.51.100.9",
            MONDAY + 1000,
            Some(("notifier", "email-vendor")),
        ),
        flow(
            "10.0.4.10",
            "198.51.100.9",
            MONDAY + 2000,
            Some(("notifier", "email-vendor")),
        ),
        flow("10.0.1.10", "203.0.113.5", MONDAY + DAY + 5, None),
    ];
    store.append(input.id, &flows, 3).unwrap();
    let lake = dir.join("lake");
    let options = ExportOptions {
        region: "eu-west-1".into(),
        account: "111122223333".into(),
        ..ExportOptions::new(lake.clone())
    };
    let summary = export_flows(&store, &options, &mut |_| {}).unwrap();
    assert_eq!(summary.rows, 3);
    assert_eq!(summary.files.len(), 2, "one file per day");
    let first = &summary.files[0];
    assert_eq!(
        first.path,
        "ext/cordon-network-activity/region=eu-west-1/accountId=111122223333/eventDay=20261207/cordon-4001-20261207.zstd.parquet"
    );
    assert_eq!(first.rows, 2);

    let file = File::open(lake.join(&first.path)).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    let b = &batches[0];
    let src = b
        .column_by_name("src_endpoint")
        .unwrap()
        .as_any()
        .downcast_ref::<StructArray>()
        .unwrap();
    assert_eq!(
        src.column_by_name("ip")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "10.0.4.10"
    );
    let unmapped = b.column_by_name("unmapped").unwrap().as_struct();
    let cordon = unmapped.column_by_name("cordon").unwrap().as_struct();
    assert_eq!(
        cordon
            .column_by_name("dst_group")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "email-vendor"
    );
    let rule = b.column_by_name("firewall_rule").unwrap();
    assert!(rule.is_valid(0));

    // The same days again: the same files, replaced, no duplicate.
    let again = export_flows(&store, &options, &mut |_| {}).unwrap();
    assert_eq!(again.files.len(), 2);
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(lake.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.files.len(), 2);
    let parquet_files = walk(&lake)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert_eq!(parquet_files, 2, "no leftovers");

    // A bad partition value is refused before anything is written.
    let bad = ExportOptions {
        region: "../x".into(),
        ..ExportOptions::new(lake.clone())
    };
    assert!(export_flows(&store, &bad, &mut |_| {}).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
