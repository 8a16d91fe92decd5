use std::sync::Arc;

use cordon_flow::FlowSource;
use cordon_store::prelude::*;
use cordon_store::{FlowQuery, SqliteStore};

use crate::Pipeline;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cordon-pipeline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const POLICY: &str = r#"
apiVersion: cordon/v1
kind: Policy
metadata: {name: t}
spec:
  groups:
    web: {cidrs: [10.0.1.0/24]}
    user-db: {cidrs: [10.0.2.0/24]}
  rules:
    - {name: web-to-db, from: [web], to: [user-db], ports: [tcp/5432], action: allow}
"#;

fn policy() -> Arc<cordon_policy::CompiledPolicy> {
    let p = cordon_policy::parse_policy("t.yaml", POLICY, &Default::default()).unwrap();
    Arc::new(cordon_policy::CompiledPolicy::new(Arc::new(p)))
}

/// An AWS log with a request, its reply half (SYN-ACK) and a denied SSH.
const LOG: &str = "\
2 1 eni-1 10.0.1.10 10.0.2.10 40001 5432 6 10 1000 1700000000 1700000060 ACCEPT OK 2
2 1 eni-1 10.0.2.10 10.0.1.10 5432 40001 6 10 9000 1700000000 1700000060 ACCEPT OK 18
2 1 eni-1 10.0.1.10 10.0.2.10 40002 22 6 1 60 1700000100 1700000160 REJECT OK 2
";

#[test]
fn a_file_goes_through_every_stage_to_every_sink() {
    let dir = temp("file");
    let path = dir.join("vpc.log");
    std::fs::write(
        &path,
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status tcp-flags\n"
            .to_string()
            + LOG,
    )
    .unwrap();
    let mut store = SqliteStore::open(&dir.join("store")).unwrap();
    let mut seen = Vec::new();
    let mut pipeline = Pipeline::builder()
        .policy(Some(policy()))
        .store(&mut store)
        .observe(|f| seen.push(f.clone()))
        .live()
        .build();
    let mut live = pipeline.subscribe().unwrap();
    let summary = pipeline.ingest_path(&path, None, &mut |_| {}).unwrap();
    assert_eq!((summary.report.flows, summary.stored), (3, 3));
    // Running it again stores nothing twice.
    let again = pipeline.ingest_path(&path, None, &mut |_| {}).unwrap();
    assert!(again.already_ingested);
    drop(pipeline);
    let mut live_flows = Vec::new();
    while let Ok(batch) = live.try_recv() {
        live_flows.extend(batch.iter().cloned());
    }
    assert_eq!(live_flows, seen);
    // The reply was turned around before it was enriched.
    let reply = &seen[1];
    assert!(reply.orientation.is_reversed());
    assert_eq!((reply.src_port, reply.dst_port), (40001, 5432));
    let verdicts: Vec<_> = seen
        .iter()
        .map(|f| f.enrichment.as_ref().unwrap().verdict)
        .collect();
    use cordon_core::Verdict::{Allow, Deny};
    assert_eq!(verdicts, [Allow, Allow, Deny]);
    let stored = store.query(&FlowQuery::default()).unwrap();
    assert_eq!(stored, seen);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stored_flows_replay_streamed_with_another_policy() {
    let dir = temp("replay");
    let mut store = SqliteStore::open(&dir).unwrap();
    let input = store.begin_input("k", "k").unwrap();
    let flows: Vec<_> = (0..10_000u16)
        .map(|i| {
            let mut f = cordon_flow::Flow::new(
                FlowSource::Zeek,
                "10.0.1.10".parse().unwrap(),
                "10.0.2.10".parse().unwrap(),
                6,
            );
            f.start_ms = i64::from(i) * 1000;
            f.dst_port = if i % 2 == 0 { 5432 } else { 22 };
            f
        })
        .collect();
    store.append(input.id, &flows, 1).unwrap();
    let mut denied = 0u64;
    let mut last = i64::MIN;
    let mut ordered = true;
    let mut steps = 0;
    let mut pipeline = Pipeline::builder()
        .policy(Some(policy()))
        .observe(|f| {
            ordered &= f.start_ms >= last;
            last = f.start_ms;
            denied += u64::from(f.enrichment.as_ref().unwrap().verdict.is_denial());
        })
        .build();
    let n = pipeline
        .replay(&store, &FlowQuery::default(), &mut |_| steps += 1)
        .unwrap();
    drop(pipeline);
    assert_eq!((n, denied), (10_000, 5_000));
    assert!(ordered);
    assert!(steps >= 2, "progress is reported while replaying");
    // Replaying does not write: the store holds the flows once.
    assert_eq!(store.count().unwrap(), 10_000);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn collected_netflow_is_prepared_and_committed() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = socket.local_addr().unwrap();
    let dir = temp("collect");
    let mut store = SqliteStore::open(&dir).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    // A NetFlow v5 packet with one record: the reply half of a connection
    // (from port 5432 to an ephemeral port).
    let mut packet = vec![0u8; 24 + 48];
    packet[..2].copy_from_slice(&5u16.to_be_bytes());
    packet[2..4].copy_from_slice(&1u16.to_be_bytes());
    let record = &mut packet[24..];
    record[..4].copy_from_slice(&[10, 0, 2, 10]);
    record[4..8].copy_from_slice(&[10, 0, 1, 10]);
    record[16..20].copy_from_slice(&3u32.to_be_bytes());
    record[20..24].copy_from_slice(&300u32.to_be_bytes());
    record[32..34].copy_from_slice(&5432u16.to_be_bytes());
    record[34..36].copy_from_slice(&40001u16.to_be_bytes());
    record[38] = 6;
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(&packet, to).unwrap();
    let mut pipeline = Pipeline::builder()
        .policy(Some(policy()))
        .store(&mut store)
        .build();
    let mut flushes = 0;
    let stats = pipeline
        .collect(
            &socket,
            &stop,
            std::time::Duration::from_millis(50),
            &mut |s| {
                flushes += 1;
                if s.stored > 0 || flushes > 100 {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            },
        )
        .unwrap();
    drop(pipeline);
    assert_eq!((stats.packets, stats.stored), (1, 1));
    let flows = store.query(&FlowQuery::default()).unwrap();
    assert_eq!((flows[0].src_port, flows[0].dst_port), (40001, 5432));
    assert_eq!(
        flows[0].enrichment.as_ref().unwrap().verdict,
        cordon_core::Verdict::Allow
    );
    let _ = std::fs::remove_dir_all(&dir);
}
