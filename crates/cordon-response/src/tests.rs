#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::sync::Arc;

use cordon_core::units::Window;
use cordon_policy::{CompiledPolicy, Endpoint, LoadOptions, parse_policy};

use crate::*;

const POLICY: &str = "apiVersion: cordon/v1
kind: Policy
metadata: {name: t}
spec:
  default: deny
  inventory:
    - {name: web-1, ips: [10.0.1.10]}
    - {name: db-1, ips: [10.0.2.10]}
  groups:
    web: {cidrs: [10.0.1.0/24]}
    db: {cidrs: [10.0.2.0/24]}
    mgmt: {cidrs: [10.0.9.0/24]}
    mail: {fqdns: [api.mail.example], external: true, vendor: {name: mailco}}
  rules:
    - {name: web-db, from: [web], to: [db], ports: [tcp/5432], action: allow}
";

fn policy() -> Arc<CompiledPolicy> {
    let p = parse_policy("p.yaml", POLICY, &LoadOptions::default()).unwrap();
    Arc::new(CompiledPolicy::new(Arc::new(p)))
}

fn new(action: Action, ttl: &str) -> NewResponse {
    NewResponse {
        action,
        reason: "test".into(),
        finding: Some("F-1".into()),
        incident: None,
        by: "cli:test".into(),
        ttl: Window::parse(ttl).unwrap(),
        propose: false,
    }
}

fn quarantine(ip: &str, allow: &[&str]) -> Action {
    Action::Quarantine {
        subject: Subject::Address(model::parse_net(ip).unwrap()),
        allow: allow.iter().map(|a| Peer::parse(a)).collect(),
    }
}

fn ep(ip: &str) -> Endpoint {
    Endpoint::ip(ip.parse().unwrap())
}

#[test]
fn a_document_survives_yaml_and_json_round_trips() {
    let p = policy();
    let mut doc = Responses {
        never_block: vec![Peer::parse("mgmt"), Peer::parse("10.0.0.53")],
        ..Responses::default()
    };
    add(
        &mut doc,
        new(quarantine("203.0.113.66", &["mgmt"]), "1h"),
        &p,
        1_000,
        &[],
    )
    .unwrap();
    let mut b = new(
        Action::Block {
            to: Destination::Fqdn(cordon_core::FqdnPattern::parse("*.storage.example").unwrap()),
            from: Some("web".into()),
        },
        "30m",
    );
    b.propose = true;
    add(&mut doc, b, &p, 2_000, &[]).unwrap();
    add(
        &mut doc,
        new(
            Action::Throttle {
                vendor: "mailco".into(),
                bytes: cordon_core::units::ByteSize::parse("10MiB").unwrap(),
                per: Window::parse("1h").unwrap(),
            },
            "2h",
        ),
        &p,
        3_000,
        &[],
    )
    .unwrap();
    for json in [false, true] {
        let text = doc.render(json);
        let back = Responses::parse("r", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, doc, "{text}");
    }
}

#[test]
fn bad_documents_are_refused_with_the_place() {
    let bad = "kind: Responses\nspec:\n  responses:\n    - id: RSP-0000000001\n      action: quarantine\n      target: {ip: not-an-ip}\n      reason: x\n      createdBy: me\n      created: 2026-12-07T05:00:00Z\n      ttl: 1h\n      expires: 2026-12-07T06:00:00Z\n      status: active\n";
    let e = Responses::parse("r.yaml", bad).unwrap_err().to_string();
    assert!(e.contains("r.yaml:6:20") && e.contains("not-an-ip"), "{e}");
    let e = Responses::parse("r.yaml", &bad.replace("status: active", "status: on"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown status `on`"), "{e}");
    let e = Responses::parse("r.yaml", "kind: Policy\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not `Responses`"), "{e}");
    let e = Responses::parse(
        "r.yaml",
        &bad.replace("      expires: 2026-12-07T06:00:00Z\n", ""),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("needs `expires`"), "{e}");
}

#[test]
fn the_ttl_bound_and_the_never_block_list_refuse() {
    let p = policy();
    let mut doc = Responses {
        never_block: vec![Peer::parse("mgmt"), Peer::parse("db-1")],
        max_ttl: Window::parse("2h").unwrap(),
        ..Responses::default()
    };
    let e = add(
        &mut doc,
        new(quarantine("203.0.113.66", &[]), "3h"),
        &p,
        0,
        &[],
    )
    .unwrap_err();
    assert!(e.0.contains("longer than the 2h"), "{e}");
    let e = add(&mut doc, new(quarantine("10.0.9.4", &[]), "1h"), &p, 0, &[]).unwrap_err();
    assert!(e.0.contains("never-block") && e.0.contains("mgmt"), "{e}");
    let e = add(
        &mut doc,
        new(quarantine("10.0.2.10", &[]), "1h"),
        &p,
        0,
        &[],
    )
    .unwrap_err();
    assert!(e.0.contains("db-1"), "{e}");
    let e = add(
        &mut doc,
        new(
            Action::Quarantine {
                subject: Subject::Workload("db1".into()),
                allow: vec![],
            },
            "1h",
        ),
        &p,
        0,
        &[],
    )
    .unwrap_err();
    assert!(
        e.0.contains("no workload named `db1`") && e.0.contains("db-1"),
        "{e}"
    );
    let block = |to: Destination| new(Action::Block { to, from: None }, "1h");
    let e = add(
        &mut doc,
        block(Destination::Group("mgmt".into())),
        &p,
        0,
        &[],
    )
    .unwrap_err();
    assert!(e.0.contains("never-block"), "{e}");
    let e = add(
        &mut doc,
        block(Destination::Group("internet".into())),
        &p,
        0,
        &[],
    )
    .unwrap_err();
    assert!(e.0.contains("too broad"), "{e}");
    let e = add(
        &mut doc,
        block(Destination::Net("10.0.0.0/8".parse().unwrap())),
        &p,
        0,
        &[],
    )
    .unwrap_err();
    assert!(e.0.contains("never-block"), "{e}");
    let never = system_never_block();
    let e = add(
        &mut doc,
        new(quarantine("127.0.0.1", &[]), "1h"),
        &p,
        0,
        &never,
    )
    .unwrap_err();
    assert!(e.0.contains("loopback"), "{e}");
    assert!(doc.responses.is_empty(), "nothing refused was added");
}

#[test]
fn an_overlay_denies_what_responses_say_and_nothing_else() {
    let p = policy();
    let mut doc = Responses {
        never_block: vec![Peer::parse("10.0.0.53")],
        ..Responses::default()
    };
    let q = add(
        &mut doc,
        new(quarantine("10.0.1.10", &["mgmt"]), "1h"),
        &p,
        0,
        &[],
    )
    .unwrap();
    let o = Overlay::build(&doc, &p, 10, &[]);
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    let (e, why) = o.denies(&p, &ep("10.0.1.10"), &ep("10.0.2.10")).unwrap();
    assert_eq!(e.id, q);
    assert!(why.contains("quarantines"), "{why}");
    assert!(
        o.denies(&p, &ep("10.0.2.10"), &ep("10.0.1.10")).is_some(),
        "both ways"
    );
    assert!(
        o.denies(&p, &ep("10.0.9.4"), &ep("10.0.1.10")).is_none(),
        "allow-list"
    );
    assert!(
        o.denies(&p, &ep("10.0.1.10"), &ep("10.0.0.53")).is_none(),
        "never-block peer"
    );
    assert!(
        o.denies(&p, &ep("10.0.1.11"), &ep("10.0.2.10")).is_none(),
        "others"
    );
    // Expired: nothing.
    assert!(Overlay::build(&doc, &p, 3_600_000, &[]).enforced.is_empty());
    // Undone: nothing.
    undo(&mut doc, &q.0, "cli:test", None, 20).unwrap();
    assert!(Overlay::build(&doc, &p, 30, &[]).enforced.is_empty());
    assert!(undo(&mut doc, &q.0, "cli:test", None, 40).is_err(), "twice");

    let b = new(
        Action::Block {
            to: Destination::Vendor("mailco".into()),
            from: Some("web".into()),
        },
        "1h",
    );
    add(&mut doc, b, &p, 50, &[]).unwrap();
    let o = Overlay::build(&doc, &p, 60, &[]);
    let host = |h: &str| Endpoint {
        host: Some(cordon_core::Hostname::parse(h).unwrap()),
        ..Endpoint::default()
    };
    assert!(
        o.denies(&p, &ep("10.0.1.10"), &host("api.mail.example"))
            .is_some()
    );
    assert!(
        o.denies(&p, &ep("10.0.2.10"), &host("api.mail.example"))
            .is_none(),
        "from"
    );
    assert!(
        o.denies(&p, &ep("10.0.1.10"), &host("other.example"))
            .is_none()
    );
}

#[test]
fn proposed_responses_wait_for_approval_and_expire_from_it() {
    let p = policy();
    let mut doc = Responses::default();
    let mut n = new(quarantine("203.0.113.66", &[]), "1h");
    n.propose = true;
    let id = add(&mut doc, n, &p, 0, &[]).unwrap();
    assert!(Overlay::build(&doc, &p, 10, &[]).enforced.is_empty());
    approve(&mut doc, &id.0, "cli:boss", None, &p, 1_000, &[]).unwrap();
    let r = doc.get(&id.0).unwrap();
    assert_eq!(r.expires, Some(1_000 + 3_600_000));
    assert_eq!(
        r.history
            .iter()
            .map(|e| e.what.as_str())
            .collect::<Vec<_>>(),
        ["proposed", "approved"]
    );
    assert!(approve(&mut doc, &id.0, "cli:boss", None, &p, 2_000, &[]).is_err());
    assert_eq!(expire_due(&mut doc, 3_601_000), 1);
    assert_eq!(doc.get(&id.0).unwrap().status, Status::Expired);
}

#[test]
fn concurrent_writers_lose_no_update() {
    let dir = std::env::temp_dir().join(format!("cordon-resp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("responses.yaml");
    let _ = std::fs::remove_file(&path);
    let p = policy();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            let p = p.clone();
            std::thread::spawn(move || {
                for j in 0..5 {
                    file::update(&path, |doc| {
                        add(
                            doc,
                            new(quarantine(&format!("203.0.113.{}", i * 10 + j), &[]), "1h"),
                            &p,
                            i64::from(i * 100 + j),
                            &[],
                        )
                        .map_err(|e| file::FileError::Document(DocumentError(e.0)))
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let doc = file::read(&path).unwrap();
    assert_eq!(doc.responses.len(), 40);
    assert_eq!(doc.generation, 40);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn finding(
    id: &str,
    kind: &str,
    severity: &str,
    src_workload: &str,
    dst_host: &str,
) -> cordon_detect::Finding {
    serde_json::from_value(serde_json::json!({
        "id": id, "kind": kind, "title": "Regular outbound connections", "severity": severity,
        "confidence": 0.9, "score": 0.9, "src": src_workload, "dst": dst_host,
        "src_entity": {"ip": "10.0.1.10", "workload": src_workload},
        "dst_entity": {"ip": "198.51.100.7", "hostname": dst_host},
        "first_ms": 0, "last_ms": 1000, "evidence": {"summary": "s"}, "techniques": [], "tactics": [],
        "stage": "command-and-control", "controls": [], "action": "", "updates": 0
    }))
    .unwrap()
}

const PLAYBOOK: &str = "apiVersion: cordon/v1
kind: ResponsePlaybook
metadata: {name: contain}
spec:
  rules:
    - name: quarantine-beacons
      match: {kinds: [beaconing], minSeverity: high}
      action: quarantine-source
      allow: [mgmt]
      ttl: 1h
      mode: auto
    - name: block-exfil
      match: {kinds: [exfiltration]}
      action: block-destination
      ttl: 30m
      mode: approve
    - name: watch
      match: {stages: [command-and-control]}
      action: quarantine-destination
      ttl: 10m
      mode: dry-run
";

#[test]
fn a_playbook_acts_per_rule_and_mode_and_never_twice() {
    let p = policy();
    let book = Playbook::parse("pb.yaml", PLAYBOOK).unwrap();
    let mut doc = Responses::default();
    let findings = [
        finding("b1", "beaconing", "critical", "web-1", "c2.example"),
        finding("e1", "exfiltration", "high", "web-1", "drop.example"),
        finding("b2", "beaconing", "medium", "web-1", "c3.example"),
    ];
    let out = book.apply(&mut doc, &findings, &p, 0, &[]);
    let results: Vec<(&str, &str)> = out.iter().map(|o| (o.rule.as_str(), o.result)).collect();
    assert_eq!(
        results,
        [
            ("quarantine-beacons", "created"),
            ("block-exfil", "proposed"),
            ("watch", "dry-run")
        ],
        "{out:#?}"
    );
    assert_eq!(doc.responses.len(), 2, "a dry run writes nothing");
    let q = &doc.responses[0];
    assert_eq!(q.status, Status::Active);
    assert_eq!(q.finding.as_deref(), Some("b1"));
    assert!(q.created_by.starts_with("playbook:contain/"));
    assert!(
        matches!(&q.action, Action::Quarantine { subject: Subject::Workload(w), .. } if w == "web-1")
    );
    assert!(
        matches!(&doc.responses[1].action, Action::Block { to: Destination::Fqdn(f), .. } if f.to_string() == "drop.example")
    );
    // The same findings again: nothing new.
    let again = book.apply(&mut doc, &findings, &p, 10, &[]);
    assert!(
        again
            .iter()
            .filter(|o| o.mode != playbook::Mode::DryRun)
            .all(|o| o.result == "exists"),
        "{again:#?}"
    );
    assert_eq!(doc.responses.len(), 2);
}

#[test]
fn bad_playbooks_are_refused_with_the_place() {
    let e = Playbook::parse("pb.yaml", &PLAYBOOK.replace("mode: auto", "mode: yolo"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pb.yaml:11:13") && e.contains("unknown mode `yolo`"),
        "{e}"
    );
    let e = Playbook::parse(
        "pb.yaml",
        &PLAYBOOK.replace("kinds: [beaconing]", "kinds: [beacon]"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown finding kind `beacon`"), "{e}");
    let e = Playbook::parse("pb.yaml", &PLAYBOOK.replace("ttl: 1h", "ttl: soon"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`ttl`"), "{e}");
}

#[test]
fn peers_read_back_as_they_were_written() {
    // Found by fuzzing: a rooted single label was read as a hostname and
    // written back without its dot, as a name.
    let text = "kind: Responses\nspec:\n  neverBlock: [bastion., mgmt, 10.0.0.2, '*.corp.example', api.corp.example.]\n";
    let doc = Responses::parse("r.yaml", text).unwrap();
    for json in [false, true] {
        assert_eq!(Responses::parse("again", &doc.render(json)).unwrap(), doc);
    }
    let e = Responses::parse(
        "r.yaml",
        "kind: Responses\nspec:\n  neverBlock: ['two words']\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("r.yaml:3:16") && e.contains("not an address, a hostname or a name"),
        "{e}"
    );
}
