use cordon_flow::{Enrichment, Flow, FlowSource};

use crate::prelude::*;
use crate::{FlowQuery, SqliteStore};

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cordon-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn flow(src: &str, dst: &str, port: u16, start: i64, groups: Option<(&str, &str, &str)>) -> Flow {
    let mut f = Flow::new(
        FlowSource::Aws,
        src.parse().unwrap(),
        dst.parse().unwrap(),
        6,
    );
    f.dst_port = port;
    f.start_ms = start;
    f.end_ms = start + 1000;
    f.bytes_out = 100;
    f.bytes_in = 10;
    f.attr("tcp_flags", "2");
    if let Some((s, d, verdict)) = groups {
        f.enrichment = Some(std::sync::Arc::new(Enrichment {
            src_groups: vec![s.into()].into(),
            dst_groups: vec![d.into(), "private".into()].into(),
            verdict: verdict.parse().unwrap(),
            vendor: (d == "email-vendor").then(|| "Mailer Inc".into()),
            ..Enrichment::with_verdict(cordon_core::Verdict::Allow)
        }));
    }
    f
}

#[test]
fn flows_round_trip_and_filter() {
    let dir = temp("query");
    let mut s = SqliteStore::open(&dir).unwrap();
    let input = s.begin_input("k1", "one.log").unwrap();
    let flows = vec![
        flow(
            "10.0.1.10",
            "10.0.2.10",
            5432,
            60_000,
            Some(("web", "user-db", "deny")),
        ),
        flow(
            "10.0.4.10",
            "198.51.100.9",
            587,
            120_000,
            Some(("notifier", "email-vendor", "allow")),
        ),
        flow("fd00::1", "2600::1", 443, 180_000, None),
    ];
    s.append(input.id, &flows, 300).unwrap();
    assert_eq!(s.count().unwrap(), 3);
    let all = s.query(&FlowQuery::default()).unwrap();
    assert_eq!(all, flows, "stored flows read back identical");
    let q = |q: FlowQuery| s.query(&q).unwrap().len();
    assert_eq!(
        q(FlowQuery {
            port: Some(5432),
            ..FlowQuery::default()
        }),
        1
    );
    assert_eq!(
        q(FlowQuery {
            addr: Some("10.0.0.0/16".parse().unwrap()),
            ..FlowQuery::default()
        }),
        2
    );
    assert_eq!(
        q(FlowQuery {
            dst: Some("198.51.100.0/24".parse().unwrap()),
            ..FlowQuery::default()
        }),
        1
    );
    assert_eq!(
        q(FlowQuery {
            src: Some("fd00::/8".parse().unwrap()),
            ..FlowQuery::default()
        }),
        1
    );
    assert_eq!(
        q(FlowQuery {
            group: Some("user-db".into()),
            ..FlowQuery::default()
        }),
        1
    );
    assert_eq!(
        q(FlowQuery {
            group: Some("user".into()),
            ..FlowQuery::default()
        }),
        0,
        "whole names only"
    );
    assert_eq!(
        q(FlowQuery {
            verdict: Some(cordon_core::Verdict::Deny),
            ..FlowQuery::default()
        }),
        1
    );
    assert_eq!(
        q(FlowQuery {
            vendor: Some("Mailer Inc".into()),
            ..FlowQuery::default()
        }),
        1
    );
    assert_eq!(
        q(FlowQuery {
            since_ms: Some(100_000),
            until_ms: Some(150_000),
            ..FlowQuery::default()
        }),
        1
    );
    assert!(
        s.query(&FlowQuery {
            group: Some("a,b".into()),
            ..FlowQuery::default()
        })
        .is_err()
    );

    let edges = s.topology(&FlowQuery::default()).unwrap();
    assert_eq!(edges.len(), 3);
    assert!(edges.iter().any(|e| e.src_group == "web"
        && e.dst_group == "user-db"
        && e.verdict == Some(cordon_core::Verdict::Deny)));
    assert!(
        edges
            .iter()
            .any(|e| e.src_group == "private" && e.dst_group == "internet" && e.verdict.is_none())
    );

    assert_eq!(s.prune(180_000).unwrap(), 2);
    assert_eq!(s.count().unwrap(), 1);
    assert_eq!(s.topology(&FlowQuery::default()).unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inputs_remember_their_offset_across_reopen() {
    let dir = temp("offset");
    {
        let mut s = SqliteStore::open(&dir).unwrap();
        let input = s.begin_input("file:abc", "a.log").unwrap();
        assert_eq!((input.committed_offset, input.done), (0, false));
        s.append(input.id, &[flow("10.0.0.1", "10.0.0.2", 80, 0, None)], 1234)
            .unwrap();
    }
    let mut s = SqliteStore::open(&dir).unwrap();
    let again = s.begin_input("file:abc", "a.log").unwrap();
    assert_eq!(again.committed_offset, 1234);
    s.finish_input(again.id).unwrap();
    assert!(s.begin_input("file:abc", "a.log").unwrap().done);
    assert_eq!(
        s.begin_input("file:other", "b.log")
            .unwrap()
            .committed_offset,
        0
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn blocks_of_flows_from_everywhere_are_indexed_coarsely_and_still_found() {
    let dir = temp("coarse");
    let mut s = SqliteStore::open(&dir).unwrap();
    let input = s.begin_input("k", "everywhere.log").unwrap();
    // Two thousand clients from all over the internet, one IPv6 among them.
    let mut flows: Vec<Flow> = (0..2000u32)
        .map(|i| {
            let src = format!("{}.{}.{}.9", 1 + i % 200, i / 200 * 7 % 256, i % 251);
            flow(&src, "10.0.1.10", 443, 1_000 + i64::from(i), None)
        })
        .collect();
    flows.push(flow("2001:db8:77::5", "10.0.1.10", 443, 5_000, None));
    s.append(input.id, &flows, 100).unwrap();
    let count = |s: &SqliteStore, q: FlowQuery| s.query(&q).unwrap().len();
    let by = |net: &str| FlowQuery {
        addr: Some(net.parse().unwrap()),
        ..FlowQuery::default()
    };
    assert_eq!(count(&s, by("10.0.1.10/32")), 2001);
    assert_eq!(
        count(&s, by("1.0.0.0/8")),
        flows
            .iter()
            .filter(|f| f.src_ip.to_string().starts_with("1."))
            .count()
    );
    assert_eq!(
        count(&s, by("3.7.3.9/32")),
        flows
            .iter()
            .filter(|f| f.src_ip.to_string() == "3.7.3.9")
            .count()
    );
    assert_eq!(count(&s, by("2001:db8:77::/48")), 1);
    assert_eq!(count(&s, by("192.168.0.0/16")), 0);
    // Pruning removes the coarse entries with the block.
    assert_eq!(s.prune(10_000).unwrap(), 2001);
    assert_eq!(count(&s, by("10.0.1.10/32")), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn finding(id_key: &str, first_ms: i64, score: f64) -> cordon_detect::Finding {
    use cordon_detect::finding::{Entity, Evidence, finding_id};
    let kind = cordon_core::FindingKind::Beaconing;
    cordon_detect::Finding {
        id: finding_id(kind, id_key),
        kind,
        title: "Beaconing".into(),
        severity: cordon_detect::Severity::from_score(score),
        confidence: 0.5,
        score,
        src: "web-1".into(),
        dst: "203.0.113.9".into(),
        src_entity: Entity {
            workload: Some("web-1".into()),
            ..Entity::default()
        },
        dst_entity: Entity {
            ip: Some("203.0.113.9".parse().unwrap()),
            ..Entity::default()
        },
        port: Some(443),
        first_ms,
        last_ms: first_ms + 3_600_000,
        evidence: Evidence {
            summary: format!("score {score}"),
            ..Evidence::default()
        },
        techniques: vec!["T1071.001".into()],
        tactics: vec!["TA0011".into()],
        stage: "command-and-control".into(),
        controls: Vec::new(),
        action: "block".into(),
        stopped_by: None,
        updates: 1,
    }
}

#[test]
fn findings_are_rows_merged_by_the_store() {
    use crate::FindingStore;
    let dir = temp("findings");
    let mut s = SqliteStore::open(&dir).unwrap();
    let first = finding("a", 1_000_000, 70.0);
    let saved = s.save_findings(vec![first.clone()]).unwrap();
    assert_eq!(saved, std::slice::from_ref(&first));
    // A later run that saw less history is merged into the stored one.
    let later = finding("a", 5_000_000, 80.0);
    let merged = s.save_findings(vec![later]).unwrap();
    assert_eq!(merged[0].first_ms, 1_000_000);
    assert_eq!(merged[0].last_ms, 5_000_000 + 3_600_000);
    assert_eq!(merged[0].score, 80.0);
    assert_eq!(merged[0].updates, 2);
    // A run that saw at least as much replaces it.
    let full = finding("a", 1_000_000, 60.0);
    assert_eq!(
        s.save_findings(vec![full.clone()]).unwrap(),
        std::slice::from_ref(&full)
    );
    drop(s);
    let s = SqliteStore::open(&dir).unwrap();
    assert_eq!(s.findings(None).unwrap(), [full]);
    assert!(s.findings(Some(1_000_000 + 3_600_001)).unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn findings_stored_as_json_bodies_are_moved_to_rows() {
    use crate::FindingStore;
    let dir = temp("findings-v1");
    std::fs::create_dir_all(&dir).unwrap();
    let old = finding("old", 2_000_000, 90.0);
    {
        let db = rusqlite::Connection::open(dir.join("flows.sqlite")).unwrap();
        db.execute_batch(
            "CREATE TABLE findings(id TEXT PRIMARY KEY, kind TEXT NOT NULL, severity TEXT NOT NULL,
                first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE INDEX findings_time ON findings(last_ms);",
        )
        .unwrap();
        db.execute(
            "INSERT INTO findings VALUES (?,?,?,?,?,?)",
            rusqlite::params![
                old.id,
                old.kind.as_str(),
                old.severity.as_str(),
                old.first_ms,
                old.last_ms,
                serde_json::to_string(&old).unwrap()
            ],
        )
        .unwrap();
    }
    let s = SqliteStore::open(&dir).unwrap();
    assert_eq!(s.findings(None).unwrap(), [old]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_finding_row_is_an_error_naming_it() {
    use crate::FindingStore;
    let dir = temp("findings-bad");
    let mut s = SqliteStore::open(&dir).unwrap();
    let f = finding("bad", 1_000, 50.0);
    s.save_findings(vec![f.clone()]).unwrap();
    drop(s);
    {
        let db = rusqlite::Connection::open(dir.join("flows.sqlite")).unwrap();
        db.execute("UPDATE findings SET kind = 'nonsense'", [])
            .unwrap();
    }
    let s = SqliteStore::open(&dir).unwrap();
    let e = s.findings(None).unwrap_err().to_string();
    assert!(e.contains(&f.id) && e.contains("nonsense"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn incidents_keep_every_status_change_even_from_two_writers_at_once() {
    use cordon_incident::{Status, StatusChange};
    let dir = temp("incidents");
    let mut s = SqliteStore::open(&dir).unwrap();
    let kb = cordon_detect::kb::Kb::embedded().unwrap();
    // One high finding is an incident of its own.
    s.save_findings(vec![finding("a", 1_000_000, 75.0)])
        .unwrap();
    let made = s.relink(&kb).unwrap();
    assert_eq!(made.len(), 1);
    let id = made[0].id.clone();
    assert_eq!(s.incident(&id).unwrap().unwrap().status, Status::Open);
    assert!(s.incident("INC-nope").unwrap().is_none());
    let change = |status, by: &str| StatusChange {
        status,
        by: by.to_string(),
        at_ms: 1,
        note: format!("{by} was here"),
    };
    match s.set_status("INC-nope", change(Status::Acknowledged, "x")) {
        Err(crate::StoreError::NotFound { what, id }) => {
            assert_eq!((what, id.as_str()), ("incident", "INC-nope"));
        }
        other => panic!("{other:?}"),
    }
    // Two writers (two connections, as two processes would have)
    // acknowledging at the same moment: both changes are kept.
    let writers: Vec<_> = ["alice", "bob"]
        .into_iter()
        .map(|who| {
            let (dir, id) = (dir.clone(), id.clone());
            std::thread::spawn(move || {
                let mut s = SqliteStore::open(&dir).unwrap();
                for _ in 0..20 {
                    s.set_status(&id, change(Status::Acknowledged, who))
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let acked = s.incident(&id).unwrap().unwrap();
    assert_eq!(acked.status, Status::Acknowledged);
    assert_eq!(acked.history.len(), 40);
    for who in ["alice", "bob"] {
        assert_eq!(acked.history.iter().filter(|c| c.by == who).count(), 20);
    }
    // Linking again keeps the history; a resolved incident that gains a
    // finding is opened again, and says so.
    s.set_status(&id, change(Status::Resolved, "carol"))
        .unwrap();
    assert_eq!(s.relink(&kb).unwrap()[0].status, Status::Resolved);
    s.save_findings(vec![finding("b", 1_000_000 + 60_000, 75.0)])
        .unwrap();
    let mut more = finding("c", 1_000_000 + 120_000, 50.0);
    more.kind = cordon_core::FindingKind::ServiceDiscovery;
    more.stage = "discovery".into();
    s.save_findings(vec![more]).unwrap();
    let again = s.relink(&kb).unwrap();
    assert_eq!(again.len(), 1, "{again:#?}");
    assert_eq!(again[0].id, id);
    assert_eq!(again[0].status, Status::Open);
    assert!(
        again[0]
            .history
            .last()
            .unwrap()
            .note
            .contains("new finding")
    );
    assert_eq!(s.incidents(Some(Status::Open)).unwrap().len(), 1);
    assert!(s.incidents(Some(Status::Resolved)).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_query_by_group_reads_only_the_blocks_that_can_hold_it() {
    let dir = temp("groups");
    let mut s = SqliteStore::open(&dir).unwrap();
    let input = s.begin_input("k", "n").unwrap();
    let a: Vec<Flow> = (0..10)
        .map(|i| {
            flow(
                "10.0.1.10",
                "10.0.2.10",
                5432,
                i,
                Some(("web", "user-db", "allow")),
            )
        })
        .collect();
    let b: Vec<Flow> = (0..10)
        .map(|i| {
            flow(
                "10.0.4.10",
                "198.51.100.7",
                443,
                i,
                Some(("notifier", "email-vendor", "allow")),
            )
        })
        .collect();
    let bare: Vec<Flow> = (0..10)
        .map(|i| flow("10.0.9.9", "10.0.9.8", 22, i, None))
        .collect();
    s.append(input.id, &a, 1).unwrap();
    s.append(input.id, &b, 2).unwrap();
    s.append(input.id, &bare, 3).unwrap();
    let by = |g: &str| FlowQuery {
        group: Some(g.to_string()),
        ..FlowQuery::default()
    };
    assert_eq!(s.candidate_blocks(&by("notifier")).unwrap().len(), 1);
    assert_eq!(s.query(&by("notifier")).unwrap().len(), 10);
    assert_eq!(s.query(&by("user-db")).unwrap().len(), 10);
    assert!(s.candidate_blocks(&by("nobody")).unwrap().is_empty());
    // A block written before the index (no marker) is always read.
    s.db.execute("DELETE FROM block_groups WHERE grp = ''", [])
        .unwrap();
    assert_eq!(s.candidate_blocks(&by("nobody")).unwrap().len(), 3);
    assert_eq!(s.query(&by("notifier")).unwrap().len(), 10);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn snapshots_of_open_connections_are_kept_but_not_counted() {
    let dir = temp("snapshots");
    let mut s = SqliteStore::open(&dir).unwrap();
    let input = s.begin_input("k:snap", "snap").unwrap();
    let done = flow("10.0.1.10", "10.0.2.10", 22, 1_000_000, None);
    let mut open = flow("10.0.1.10", "10.0.2.10", 22, 1_000_000, None);
    open.source = FlowSource::Zeek;
    open.attr("zeek_log", "open_conn");
    s.append(input.id, &[done, open], 10).unwrap();
    assert_eq!(
        s.count().unwrap(),
        2,
        "both are kept (detection replays them)"
    );
    let edges = s.topology(&FlowQuery::default()).unwrap();
    assert_eq!(edges.iter().map(|e| e.flows).sum::<u64>(), 1);
    assert_eq!(edges.iter().map(|e| e.bytes_out).sum::<u64>(), 100);
}

mod exchange {
    use super::temp;
    use crate::SqliteStore;
    use crate::exchange::{
        Added, ExchangeStore, NewObject, ObjectQuery, Source, Versions, is_intel,
    };
    use serde_json::json;

    fn object(id: &str, version_us: Option<i64>) -> NewObject {
        NewObject {
            id: id.to_string(),
            kind: id.split("--").next().unwrap().to_string(),
            spec_version: "2.1".to_string(),
            version_us,
            body: json!({"id": id, "v": version_us}).to_string(),
        }
    }

    #[test]
    fn versions_are_kept_and_first_and_last_follow_adds_and_deletes() {
        let mut s = SqliteStore::open(&temp("stix-versions")).unwrap();
        let a = "indicator--a";
        let added = s
            .add_objects("intel", &[object(a, Some(2_000)), object(a, Some(1_000))])
            .unwrap();
        assert_eq!(
            added,
            vec![
                Added::New { version_us: 2_000 },
                Added::New { version_us: 1_000 }
            ]
        );
        // The same version again is not stored twice.
        assert_eq!(
            s.add_objects("intel", &[object(a, Some(2_000))]).unwrap(),
            vec![Added::Present { version_us: 2_000 }]
        );
        let versions = |s: &SqliteStore, v: Versions| {
            let mut q = ObjectQuery::all("intel", 10);
            q.versions = v;
            s.objects(&q)
                .unwrap()
                .objects
                .iter()
                .map(|o| o.version_us)
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&s, Versions::last()), vec![2_000]);
        let first = Versions {
            first: true,
            ..Versions::default()
        };
        assert_eq!(versions(&s, first.clone()), vec![1_000]);
        let all = Versions {
            all: true,
            ..Versions::default()
        };
        assert_eq!(versions(&s, all.clone()).len(), 2);
        // Deleting the latest makes the one before the latest.
        assert_eq!(
            s.delete_object("intel", a, &Versions::last(), &[]).unwrap(),
            1
        );
        assert_eq!(versions(&s, Versions::last()), vec![1_000]);
        assert_eq!(versions(&s, first), vec![1_000]);
        assert_eq!(s.delete_object("intel", a, &all, &[]).unwrap(), 1);
        assert!(versions(&s, all).is_empty());
    }

    #[test]
    fn pages_continue_after_their_last_object_whatever_is_added_meanwhile() {
        let mut s = SqliteStore::open(&temp("stix-pages")).unwrap();
        let batch: Vec<NewObject> = (0..50)
            .map(|i| object(&format!("x-thing--{i:03}"), None))
            .collect();
        s.add_objects("intel", &batch).unwrap();
        let mut q = ObjectQuery::all("intel", 7);
        let mut seen = Vec::new();
        loop {
            let page = s.objects(&q).unwrap();
            seen.extend(page.objects.iter().map(|o| o.id.clone()));
            if seen.len() == 21 {
                let late: Vec<NewObject> = (50..53)
                    .map(|i| object(&format!("x-thing--{i:03}"), None))
                    .collect();
                s.add_objects("intel", &late).unwrap();
            }
            match page.objects.last() {
                Some(last) if page.more => q.after = Some(last.cursor()),
                _ => break,
            }
        }
        let expected: Vec<String> = (0..53).map(|i| format!("x-thing--{i:03}")).collect();
        assert_eq!(seen, expected);
        // Objects without versions are versioned by when they were added.
        let page = s.objects(&ObjectQuery::all("intel", 1)).unwrap();
        assert_eq!(page.objects[0].version_us, page.objects[0].date_added_us);
    }

    #[test]
    fn publishing_adds_a_version_only_when_content_changes() {
        let mut s = SqliteStore::open(&temp("stix-publish")).unwrap();
        let o = json!({"type": "indicator", "id": "indicator--p", "created": "x", "modified": "x", "name": "one"});
        assert_eq!(s.publish("findings", std::slice::from_ref(&o)).unwrap(), 1);
        // Only the timestamps differ: nothing new.
        let mut same = o.clone();
        same["modified"] = json!("y");
        assert_eq!(s.publish("findings", &[same]).unwrap(), 0);
        let mut changed = o.clone();
        changed["name"] = json!("two");
        assert_eq!(s.publish("findings", &[changed]).unwrap(), 1);
        let mut q = ObjectQuery::all("findings", 10);
        q.versions = Versions {
            all: true,
            ..Versions::default()
        };
        let page = s.objects(&q).unwrap();
        assert_eq!(page.objects.len(), 2);
        let first: serde_json::Value = serde_json::from_str(&page.objects[0].body).unwrap();
        let second: serde_json::Value = serde_json::from_str(&page.objects[1].body).unwrap();
        assert_eq!(first["created"], second["created"], "created stays");
        assert!(page.objects[1].version_us > page.objects[0].version_us);
        assert_eq!(
            second["modified"],
            cordon_detect::stix::ts(page.objects[1].version_us / 1000)
        );
    }

    #[test]
    fn pulled_sources_keep_their_mark_with_their_objects_and_feed_detection() {
        let mut s = SqliteStore::open(&temp("stix-sources")).unwrap();
        assert!(
            s.add_pulled("isac", &[], Some(1)).is_err(),
            "an unknown source"
        );
        let source = Source {
            name: "isac".to_string(),
            url: "https://taxii.example/api1/".to_string(),
            collection: "feed".to_string(),
            added_after_us: None,
            last_pull_ms: None,
            complete: false,
            last_error: None,
            objects: 0,
        };
        s.save_source(&source).unwrap();
        s.add_pulled("isac", &[object("indicator--i", Some(5))], Some(77))
            .unwrap();
        s.add_objects("intel", &[object("indicator--j", Some(5))])
            .unwrap();
        s.add_objects("indicators", &[object("indicator--own", Some(5))])
            .unwrap();
        let kept = &s.sources().unwrap()[0];
        assert_eq!(kept.added_after_us, Some(77));
        assert_eq!(kept.objects, 1);
        let mut read = Vec::new();
        let n = s
            .intel_objects("indicator", &mut |c, _| read.push(c.to_string()))
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(read, vec!["source:isac", "intel"]);
        assert!(is_intel("source:isac") && is_intel("intel") && !is_intel("indicators"));
        let mark = s.intel_mark().unwrap();
        s.add_objects("intel", &[object("indicator--k", Some(5))])
            .unwrap();
        assert_ne!(s.intel_mark().unwrap(), mark);
    }

    #[test]
    fn secrets_and_statuses_survive_reopening() {
        let dir = temp("stix-secret");
        let first = {
            let mut s = SqliteStore::open(&dir).unwrap();
            s.save_status("st-1", "{\"id\":\"st-1\"}").unwrap();
            s.secret("k", &mut || vec![1, 2, 3]).unwrap()
        };
        let mut s = SqliteStore::open(&dir).unwrap();
        assert_eq!(s.secret("k", &mut || vec![9]).unwrap(), first);
        assert_eq!(
            s.status("st-1").unwrap().as_deref(),
            Some("{\"id\":\"st-1\"}")
        );
        assert_eq!(s.status("st-2").unwrap(), None);
    }
}

fn trail_event(t_ms: i64, who: &str, action: &str, ok: bool) -> cordon_audit::AuditEvent {
    let time = cordon_flow::time::format_rfc3339(t_ms);
    let mut record = serde_json::json!({
        "eventVersion": "1.09",
        "eventTime": time,
        "eventSource": "s3.amazonaws.com",
        "eventName": action,
        "sourceIPAddress": "10.0.3.10",
        "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::111122223333:assumed-role/{who}/s"), "accountId": "111122223333"},
        "recipientAccountId": "111122223333",
    });
    if !ok {
        record["errorCode"] = "AccessDenied".into();
    }
    let text = record.to_string();
    let mut e = cordon_audit::cloudtrail::normalise(&record).unwrap();
    e.raw = Some(text.into());
    e
}

#[test]
fn audit_events_round_trip_through_blocks_filter_and_prune() {
    use crate::AuditQuery;
    let dir = temp("audit-blocks");
    let mut s = SqliteStore::open(&dir).unwrap();
    const H: i64 = 3_600_000;
    let t0 = 1_772_000_000_000;
    // Two commits, out of order within the first; one event with no raw
    // record (stored as its normalised JSON).
    let first = vec![
        trail_event(t0 + H, "api", "GetObject", true),
        trail_event(t0, "api", "PutObject", true),
        trail_event(t0 + 2 * H, "ci", "GetObject", false),
    ];
    s.append_events(None, &first, 0).unwrap();
    let mut plain = trail_event(t0 + 3 * H, "vendor", "GetObject", true);
    plain.raw = None;
    s.append_events(
        None,
        &[
            plain.clone(),
            trail_event(t0 + 4 * H, "api", "DeleteObject", true),
        ],
        0,
    )
    .unwrap();
    assert_eq!(s.event_count().unwrap(), 5);
    let all = s.events(&AuditQuery::default()).unwrap();
    let times: Vec<i64> = all.iter().map(|e| (e.time_ms - t0) / H).collect();
    assert_eq!(times, [0, 1, 2, 3, 4]);
    assert_eq!(all[3].principal.id, plain.principal.id);
    assert!(all[0].raw.is_some() && all[3].raw.is_none());
    // Filters: by part of the principal and the action, failures, range,
    // limit.
    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        s.events(&q).unwrap().len()
    };
    assert_eq!(q(&|q| q.principal = Some("API".into())), 3);
    assert_eq!(q(&|q| q.action = Some("s3:get".into())), 3);
    assert_eq!(q(&|q| q.failed_only = true), 1);
    assert_eq!(
        q(&|q| {
            q.since_ms = Some(t0 + H);
            q.until_ms = Some(t0 + 3 * H)
        }),
        2
    );
    assert_eq!(q(&|q| q.limit = Some(2)), 2);
    // Retention: the first block straddles the line and keeps its newer
    // part.
    s.prune(t0 + 2 * H).unwrap();
    let kept: Vec<i64> = s
        .events(&AuditQuery::default())
        .unwrap()
        .iter()
        .map(|e| (e.time_ms - t0) / H)
        .collect();
    assert_eq!(kept, [2, 3, 4]);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reader that remembers the last block id it read sees each stored flow
/// once: ids are never given twice, even when retention deleted the newest
/// block, and a block retention rewrote keeps its id.
#[test]
fn block_ids_are_never_reused_and_survive_pruning() {
    let dir = temp("block-ids");
    let mut s = SqliteStore::open(&dir).unwrap();
    let input = s.begin_input("k", "k.log").unwrap();
    assert_eq!(s.last_block().unwrap(), 0);
    s.append(
        input.id,
        &[flow("10.0.0.1", "10.0.0.2", 80, 1_000, None)],
        1,
    )
    .unwrap();
    // One block straddling a cut at 5,000: two old flows, one new.
    let straddling = [
        flow("10.0.0.1", "10.0.0.3", 80, 2_000, None),
        flow("10.0.0.1", "10.0.0.4", 80, 3_000, None),
        flow("10.0.0.1", "10.0.0.5", 80, 9_000, None),
    ];
    s.append(input.id, &straddling, 2).unwrap();
    assert_eq!(s.last_block().unwrap(), 2);
    let mut seen = Vec::new();
    s.scan_blocks(1, 2, &mut |id, f| {
        seen.push((id, f.dst_port, f.start_ms));
        true
    })
    .unwrap();
    assert_eq!(seen, [(2, 80, 2_000), (2, 80, 3_000), (2, 80, 9_000)]);

    assert_eq!(s.prune(5_000).unwrap(), 3);
    let mut kept = Vec::new();
    s.scan_blocks(0, 2, &mut |id, f| {
        kept.push((id, f.start_ms));
        true
    })
    .unwrap();
    assert_eq!(kept, [(2, 9_000)], "the rewritten block keeps id 2");

    // Everything pruned, the newest block with it: the next id is still 3.
    s.prune(i64::MAX).unwrap();
    s.append(
        input.id,
        &[flow("10.0.0.1", "10.0.0.6", 80, 20_000, None)],
        3,
    )
    .unwrap();
    assert_eq!(s.last_block().unwrap(), 3);
    let mut after = Vec::new();
    s.scan_blocks(2, 3, &mut |id, f| {
        after.push((id, f.start_ms));
        true
    })
    .unwrap();
    assert_eq!(after, [(3, 20_000)]);
    // A query bounded by block sees only what those blocks hold.
    let bounded = s
        .query(&FlowQuery {
            through_block: Some(2),
            ..FlowQuery::default()
        })
        .unwrap();
    assert!(bounded.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
