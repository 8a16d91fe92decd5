use std::fs::File;

use arrow_array::cast::AsArray as _;
use arrow_array::{Array as _, StructArray};
use cordon_flow::{Enrichment, Flow, FlowSource};
use cordon_store::SqliteStore;
use cordon_store::prelude::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{ExportOptions, Location, Manifest, event_day};

/// Export and publish, as `cordon lake export` does into a folder.
fn export_flows(
    store: &dyn cordon_store::FlowReader,
    options: &ExportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<super::ExportSummary, super::LakeError> {
    let _lock = super::manifest::lock(&options.out)?;
    let summary = super::export_flows(store, options, progress)?;
    super::manifest::publish(
        &Location::Dir(options.out.clone()),
        &options.out,
        &summary.edit(),
    )?;
    Ok(summary)
}

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

/// What goes into the lake comes back as the store gave it, and a query
/// for one address decodes only the row groups that hold it.
#[test]
fn flows_read_back_from_the_lake_as_the_store_gives_them() {
    let dir = temp("read");
    let mut store = SqliteStore::open(&dir.join("store")).unwrap();
    let input = store.begin_input("k", "f.log").unwrap();
    let mut flows = Vec::new();
    for i in 0..5_000i64 {
        // 1,000 flows a row group; each row group its own sources.
        let src = format!("10.0.{}.{}", i / 1000, i % 250);
        let groups = (i % 3 != 0).then_some(("notifier", "email-vendor"));
        let mut f = flow(&src, "198.51.100.9", MONDAY + i * 1000, groups);
        if i % 7 == 0 {
            f.attr("tcp_flags", "27");
            f.attr("interface", "eni-1");
        }
        if i % 5 == 0 {
            f.observed = Some(cordon_flow::Observed::Rejected);
            f.orientation = cordon_core::Orientation::Reversed;
            f.hostname = Some("smtp.mailer.example".into());
        }
        flows.push(f);
    }
    store.append(input.id, &flows, 1).unwrap();
    let lake = dir.join("lake");
    let options = ExportOptions {
        row_group_rows: 1000,
        ..ExportOptions::new(lake.clone())
    };
    export_flows(&store, &options, &mut |_| {}).unwrap();
    let reader = super::read::LakeReader::open(Location::Dir(lake)).unwrap();
    let queries = [
        cordon_store::FlowQuery::default(),
        cordon_store::FlowQuery {
            src: Some("10.0.3.7/32".parse().unwrap()),
            ..Default::default()
        },
        cordon_store::FlowQuery {
            addr: Some("10.0.2.0/24".parse().unwrap()),
            since_ms: Some(MONDAY + 2_500_000),
            ..Default::default()
        },
        cordon_store::FlowQuery {
            group: Some("email-vendor".into()),
            limit: Some(10),
            ..Default::default()
        },
    ];
    for q in &queries {
        let mut stats = super::read::ReadStats::default();
        let from_lake = reader.query(q, &mut stats).unwrap();
        let from_store = store.query(q).unwrap();
        assert!(!from_store.is_empty());
        assert_eq!(from_lake, from_store, "{q:?}");
    }
    let mut stats = super::read::ReadStats::default();
    let one = reader.query(&queries[1], &mut stats).unwrap();
    assert_eq!(one.len(), 4);
    assert_eq!(stats.row_groups, 5);
    assert_eq!(stats.row_groups_read, 1, "{stats:?}");
    let mut stats = super::read::ReadStats::default();
    let outside = cordon_store::FlowQuery {
        since_ms: Some(MONDAY + DAY),
        ..Default::default()
    };
    assert!(reader.query(&outside, &mut stats).unwrap().is_empty());
    assert_eq!(
        stats.files_opened, 0,
        "the manifest's time ranges skip the file"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The continuous sink adds what the store stored since its last flush,
/// exactly once, and an export of a day replaces the sink's files of that
/// day without losing or doubling a flow; flows stored in a day after it
/// was exported come in by the next flush.
#[test]
fn the_sink_follows_the_store_and_exports_compact_it() {
    let dir = temp("sink");
    let mut store = SqliteStore::open(&dir.join("store")).unwrap();
    let input = store.begin_input("k", "f.log").unwrap();
    let lake = dir.join("lake");
    let location = Location::Dir(lake.clone());
    let options = ExportOptions::new(lake.clone());
    let batch = |from: i64, n: i64| -> Vec<Flow> {
        (0..n)
            .map(|i| {
                let src = format!("10.0.{}.{}", (from + i) % 200, i % 250);
                // Two days, interleaved: a block touches both.
                let day = if i % 2 == 0 { MONDAY } else { MONDAY + DAY };
                flow(&src, "198.51.100.9", day + (from + i) * 10, None)
            })
            .collect()
    };
    let check = |store: &SqliteStore, what: &str| {
        let all = cordon_store::FlowQuery::default();
        let reader = super::read::LakeReader::open(location.clone()).unwrap();
        let mut stats = super::read::ReadStats::default();
        let back = reader.query(&all, &mut stats).unwrap();
        let mut want = store.query(&all).unwrap();
        // Equal start times may come in any order: compare as sets.
        let key = |f: &Flow| (f.start_ms, f.src_ip, f.dst_ip);
        let mut got = back.clone();
        got.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(got.len(), want.len(), "{what}: as many flows as stored");
        assert_eq!(got, want, "{what}");
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(lake.join("manifest.json")).unwrap()).unwrap();
        let rows: u64 = manifest.files.iter().map(|f| f.rows).sum();
        assert_eq!(rows, want.len() as u64, "{what}: the manifest's rows");
        manifest
    };

    store.append(input.id, &batch(0, 6000), 1).unwrap();
    let first = super::sink::flush(&store, &location, &options).unwrap();
    assert_eq!(first.rows, 6000);
    assert_eq!(first.files.len(), 2, "a file per day the blocks touch");
    check(&store, "first flush");
    let idle = super::sink::flush(&store, &location, &options).unwrap();
    assert_eq!((idle.rows, idle.files.len()), (0, 0), "nothing new");

    store.append(input.id, &batch(6000, 3000), 2).unwrap();
    let second = super::sink::flush(&store, &location, &options).unwrap();
    assert_eq!(second.rows, 3000);
    let manifest = check(&store, "second flush");
    assert_eq!(manifest.files.len(), 4);

    // Export the first day whole: its sink files go, the second day's stay.
    let summary = export_flows(
        &store,
        &ExportOptions {
            until_ms: Some(MONDAY),
            ..options.clone()
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(summary.rows, 4500);
    let manifest = check(&store, "after export");
    assert_eq!(manifest.files.len(), 3);
    let on_disk = walk(&lake)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert_eq!(on_disk, 3, "superseded files are deleted");

    // More flows in the exported day come in by the next flush only.
    store.append(input.id, &batch(9000, 2000), 3).unwrap();
    let third = super::sink::flush(&store, &location, &options).unwrap();
    assert_eq!(third.rows, 2000);
    check(&store, "after export and flush");

    // Retention: the store forgets, the lake keeps.
    let before = store
        .query(&cordon_store::FlowQuery::default())
        .unwrap()
        .len();
    store.prune(MONDAY + DAY).unwrap();
    assert_eq!(
        super::sink::flush(&store, &location, &options)
            .unwrap()
            .rows,
        0
    );
    let reader = super::read::LakeReader::open(location.clone()).unwrap();
    let mut stats = super::read::ReadStats::default();
    let back = reader
        .query(&cordon_store::FlowQuery::default(), &mut stats)
        .unwrap();
    assert_eq!(back.len(), before);
    let _ = std::fs::remove_dir_all(&dir);
}
