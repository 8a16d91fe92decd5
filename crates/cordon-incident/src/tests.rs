//! Linking, reports, exports and the vendor register on findings and flows
//! built by hand, so each rule is tested on its own.

use std::net::IpAddr;
use std::sync::Arc;

use cordon_core::{FindingKind, Verdict};
use cordon_detect::finding::{Entity, Evidence, FlowRef};
use cordon_detect::kb::Kb;
use cordon_detect::{Finding, Severity};
use cordon_flow::enrich::Enricher;
use cordon_flow::{Flow, FlowSource};
use cordon_policy::{CompiledPolicy, LoadOptions, parse_policy};

use crate::link::{WINDOW_MS, link};
use crate::model::{Role, Status};
use crate::report;
use crate::vendors::{Register, registered_domain};

const H: i64 = 3_600_000;
const T0: i64 = 1_770_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn host(addr: &str, workload: &str, groups: &[&str]) -> Entity {
    Entity {
        ip: Some(ip(addr)),
        workload: Some(workload.to_string()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Entity::default()
    }
}

fn outside(addr: &str, hostname: Option<&str>) -> Entity {
    Entity {
        ip: Some(ip(addr)),
        hostname: hostname.map(str::to_string),
        ..Entity::default()
    }
}

fn finding(
    kind: FindingKind,
    severity: Severity,
    src: Entity,
    dst: Entity,
    at: i64,
    kb: &Kb,
) -> Finding {
    let flow = FlowRef {
        start_ms: at,
        src_ip: src.ip.unwrap_or(ip("10.0.0.1")),
        src_port: 40_000,
        dst_ip: dst.ip.unwrap_or(ip("10.0.0.2")),
        dst_port: 443,
        protocol: 6,
        bytes_out: 1000,
        bytes_in: 100,
        observed: None,
        verdict: Some(Verdict::Allow),
        rule: None,
    };
    let mut f = Finding {
        id: cordon_detect::finding::finding_id(kind, &format!("{src:?}{dst:?}{at}")),
        kind,
        title: String::new(),
        severity,
        confidence: 0.9,
        score: 80.0,
        src: src.label(),
        dst: dst.label(),
        src_entity: src,
        dst_entity: dst,
        port: Some(443),
        first_ms: at,
        last_ms: at + 600_000,
        evidence: Evidence {
            summary: format!("{kind} seen"),
            flows: vec![flow],
            ..Evidence::default()
        },
        techniques: Vec::new(),
        tactics: Vec::new(),
        stage: String::new(),
        controls: Vec::new(),
        action: String::new(),
        stopped_by: None,
        updates: 1,
    };
    kb.apply(&mut f);
    f
}

/// The breach: in through the vendor to host A, a scan from A, a move to
/// B, a beacon and the exfiltration from B.
fn breach(kb: &Kb) -> Vec<Finding> {
    let mut vendor = outside("198.51.100.88", None);
    vendor.vendor = Some("Mailer Inc".to_string());
    vendor.groups = vec!["email-vendor".to_string()];
    let a = host("10.0.4.10", "notifier-1", &["notifier"]);
    let b = host("10.0.2.10", "user-db-1", &["user-db"]);
    vec![
        finding(
            FindingKind::VendorDrift,
            Severity::High,
            vendor,
            a.clone(),
            T0,
            kb,
        ),
        finding(
            FindingKind::ServiceDiscovery,
            Severity::High,
            a.clone(),
            Entity::default(),
            T0 + H,
            kb,
        ),
        finding(
            FindingKind::LateralMovement,
            Severity::High,
            a,
            b.clone(),
            T0 + 2 * H,
            kb,
        ),
        finding(
            FindingKind::Beaconing,
            Severity::Critical,
            b.clone(),
            outside("45.137.21.89", Some("static.telemetry-edge.com")),
            T0 + 3 * H,
            kb,
        ),
        finding(
            FindingKind::CloudExfiltration,
            Severity::High,
            b,
            outside("52.216.180.91", Some("x.s3.amazonaws.com")),
            T0 + 4 * H,
            kb,
        ),
    ]
}

#[test]
fn the_breach_is_one_incident_with_its_five_stages() {
    let kb = Kb::embedded().unwrap();
    let findings = breach(&kb);
    let linked = link(&findings, &[], &kb);
    assert_eq!(linked.incidents.len(), 1, "{:#?}", linked.incidents);
    let i = &linked.incidents[0];
    assert_eq!(i.findings.len(), 5);
    assert_eq!(
        i.stage_ids(),
        [
            "initial-access",
            "discovery",
            "lateral-movement",
            "command-and-control",
            "exfiltration"
        ]
    );
    assert_eq!(i.severity, Severity::Critical, "{}", i.severity_reason);
    assert!(
        i.title.contains("notifier-1") && i.title.contains("Mailer Inc"),
        "{}",
        i.title
    );
    assert_eq!(i.status, Status::Open);
    let roles: Vec<(Role, &str)> = i
        .entities
        .iter()
        .map(|e| (e.role, e.label.as_str()))
        .collect();
    assert!(roles.contains(&(Role::Vendor, "Mailer Inc")), "{roles:?}");
    assert!(roles.contains(&(Role::Host, "user-db-1")), "{roles:?}");
    for t in ["T1199", "T1046", "T1021", "T1071", "T1567.002"] {
        assert!(
            i.techniques.iter().any(|x| x == t),
            "{t} in {:?}",
            i.techniques
        );
    }
    for c in [
        "PCI-DSS-4.0:12.8",
        "NYDFS-500:500.11",
        "DORA:Art.28",
        "NIS2:Art.21(2)(d)",
    ] {
        assert!(i.controls.iter().any(|x| x == c), "{c}");
    }
    // The same findings in another order give the same incident.
    let mut shuffled = findings.clone();
    shuffled.reverse();
    shuffled.swap(0, 2);
    assert_eq!(link(&shuffled, &[], &kb).incidents, linked.incidents);
}

#[test]
fn lone_findings_make_an_incident_only_when_grave() {
    let kb = Kb::embedded().unwrap();
    let a = host("10.0.1.10", "web-1", &["web"]);
    let medium = finding(
        FindingKind::Beaconing,
        Severity::Medium,
        a.clone(),
        outside("203.0.113.9", None),
        T0,
        &kb,
    );
    assert!(
        link(std::slice::from_ref(&medium), &[], &kb)
            .incidents
            .is_empty()
    );
    // Two medium findings on one host in two stages are a chain.
    let scan = finding(
        FindingKind::ServiceDiscovery,
        Severity::Medium,
        a.clone(),
        Entity::default(),
        T0 + H,
        &kb,
    );
    let chain = link(&[medium.clone(), scan.clone()], &[], &kb);
    assert_eq!(chain.incidents.len(), 1);
    assert_eq!(chain.incidents[0].severity, Severity::Medium);
    // Two medium findings on different hosts are not.
    let other = finding(
        FindingKind::ServiceDiscovery,
        Severity::Medium,
        host("10.0.1.11", "web-2", &["web"]),
        Entity::default(),
        T0 + H,
        &kb,
    );
    assert!(
        link(&[medium.clone(), other], &[], &kb)
            .incidents
            .is_empty()
    );
    // Nor are findings on one host further apart than the window.
    let late = finding(
        FindingKind::ServiceDiscovery,
        Severity::Medium,
        a,
        Entity::default(),
        T0 + WINDOW_MS + 2 * H,
        &kb,
    );
    assert!(link(&[medium, late], &[], &kb).incidents.is_empty());
    // One high finding is an incident on its own, and says why.
    let mut high = scan;
    high.severity = Severity::High;
    let one = link(&[high], &[], &kb);
    assert_eq!(one.incidents.len(), 1);
    assert!(
        one.incidents[0]
            .severity_reason
            .contains("one high finding")
    );
}

#[test]
fn hosts_reached_by_different_attackers_do_not_join_their_paths() {
    // Two unrelated hosts each move laterally to the same server: the
    // server is what they reach, not what they act from, so their
    // findings stay two incidents.
    let kb = Kb::embedded().unwrap();
    let dc = host("10.0.0.4", "dc-1", &["dc"]);
    let f1 = finding(
        FindingKind::LateralMovement,
        Severity::High,
        host("10.0.5.1", "pc-1", &["desktops"]),
        dc.clone(),
        T0,
        &kb,
    );
    let f2 = finding(
        FindingKind::LateralMovement,
        Severity::High,
        host("10.0.5.2", "pc-2", &["desktops"]),
        dc.clone(),
        T0 + H,
        &kb,
    );
    assert_eq!(link(&[f1.clone(), f2.clone()], &[], &kb).incidents.len(), 2);
    // What the server does afterwards joins both paths.
    let beacon = finding(
        FindingKind::Beaconing,
        Severity::High,
        dc,
        outside("203.0.113.50", None),
        T0 + 2 * H,
        &kb,
    );
    let linked = link(&[f1, f2, beacon], &[], &kb);
    assert_eq!(linked.incidents.len(), 1);
    assert_eq!(linked.incidents[0].findings.len(), 3);
}

#[test]
fn an_incident_keeps_its_id_as_it_grows_and_absorbs_another() {
    let kb = Kb::embedded().unwrap();
    let all = breach(&kb);
    // At first the vendor access and the scan (host A), and separately
    // the beacon and the exfiltration (host B).
    let first = link(&[all[0].clone(), all[1].clone()], &[], &kb);
    let second = link(&[all[3].clone(), all[4].clone()], &first.incidents, &kb);
    let mut before = first.incidents.clone();
    before.extend(second.incidents.clone());
    assert_eq!(before.len(), 2);
    // The lateral move joins both paths: the older incident's id stays and
    // the younger one is absorbed into it.
    let grown = link(&all, &before, &kb);
    assert_eq!(grown.incidents.len(), 1);
    assert_eq!(grown.incidents[0].id, first.incidents[0].id);
    assert_eq!(
        grown.absorbed,
        [(
            second.incidents[0].id.clone(),
            first.incidents[0].id.clone()
        )]
    );
}

fn policy() -> cordon_policy::Policy {
    let text = r#"
apiVersion: cordon/v1
kind: Policy
metadata: {name: t}
spec:
  default: allow
  inventory:
    - {name: notifier-1, ips: [10.0.4.10], labels: {app: notifier}}
    - {name: user-db-1, ips: [10.0.2.10], labels: {app: user-db}}
  groups:
    notifier: {labels: {app: notifier}}
    user-db: {labels: {app: user-db}}
    email-vendor:
      external: true
      cidrs: [198.51.100.0/24]
      fqdns: [mailer.example]
      vendor: {name: Mailer Inc, data: [email, name], criticality: high, contact: sec@mailer.example, contract: MSA-1}
  rules:
    - name: notifier-to-mailer
      from: [notifier]
      to: [email-vendor]
      ports: [tcp/443]
      action: allow
      limit: {bytes_out: 1MiB, per: 1h}
"#;
    parse_policy("t.yaml", text, &LoadOptions::default()).unwrap()
}

#[test]
fn the_report_tells_the_kill_chain_and_proposes_checked_rules() {
    let kb = Kb::embedded().unwrap();
    let findings = breach(&kb);
    let incident = link(&findings, &[], &kb).incidents.remove(0);
    let policy = policy();
    let r = report::build(
        &incident,
        &findings,
        &kb,
        Some(&policy),
        Some("/var/lib/cordon"),
        T0,
    );
    assert_eq!(r.stages.len(), 5);
    assert_eq!(r.data_at_risk, ["email", "name"]);
    let vendor = r.entities.iter().find(|e| e.role == Role::Vendor).unwrap();
    assert_eq!(
        vendor.vendor.as_ref().unwrap().contract.as_deref(),
        Some("MSA-1")
    );
    // The policy allows everything here (default allow): every finding
    // with one destination gets a proposed deny rule, and the engine
    // confirms it denies the evidence; a sweep says why it has none.
    for s in &r.stages {
        for f in &s.findings {
            if f.dst == "-" {
                assert!(f.stopped_by.proposed.is_none());
                assert!(f.stopped_by.text.contains("names no endpoints"));
                continue;
            }
            let p = f
                .stopped_by
                .proposed
                .as_ref()
                .unwrap_or_else(|| panic!("{}", f.id));
            assert!(p.checked, "{}: {}\n{}", f.id, p.check, p.yaml);
            assert!(p.yaml.contains("action: deny"), "{}", p.yaml);
            for e in &f.evidence {
                assert!(
                    e.query
                        .starts_with("cordon flows query --store /var/lib/cordon --src ")
                );
            }
        }
    }
    let md = report::markdown(&r);
    for needle in [
        "## Summary",
        "## Timeline",
        "## Kill chain",
        "T1199",
        "PCI-DSS-4.0:12.8",
        "Requires:",
        "## Recommended actions",
    ] {
        assert!(md.contains(needle), "{needle} missing:\n{md}");
    }
    let html = report::html(&r);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    // Self-contained: no script, no stylesheet or image fetched.
    for bad in ["<script", "<link", " src=", "url(", "@import"] {
        assert!(!html.contains(bad), "{bad} in the HTML");
    }
    // Text from the findings is escaped.
    let mut evil = findings.clone();
    evil[0].evidence.summary = "<img src=x onerror=alert(1)>".to_string();
    let html = report::html(&report::build(&incident, &evil, &kb, None, None, T0));
    assert!(!html.contains("<img") && html.contains("&lt;img src=x"));
}

#[test]
fn exports_carry_the_status_and_the_grouping() {
    let kb = Kb::embedded().unwrap();
    let findings = breach(&kb);
    let mut incident = link(&findings, &[], &kb).incidents.remove(0);
    let open = crate::export::incident_finding(&incident, &findings, &kb);
    assert_eq!(open["class_uid"], 2005);
    assert_eq!(open["activity_id"], 1);
    assert_eq!(open["status"], "New");
    assert_eq!(open["finding_info_list"].as_array().unwrap().len(), 5);
    assert_eq!(open["assignee_group"]["name"], "unassigned");
    incident.status = Status::Acknowledged;
    incident.history.push(crate::StatusChange {
        status: Status::Acknowledged,
        by: "alice".to_string(),
        at_ms: T0,
        note: "on it".to_string(),
    });
    let acked = crate::export::incident_finding(&incident, &findings, &kb);
    assert_eq!(acked["activity_id"], 2);
    assert_eq!(acked["status"], "In Progress");
    assert_eq!(acked["assignee"]["name"], "alice");
    assert_eq!(acked["type_uid"], 200_502);

    let mut bundle = cordon_detect::stix::bundle(&findings, &kb, T0);
    crate::export::add_to_bundle(&mut bundle, &[incident], &kb, T0);
    let objects = bundle["objects"].as_array().unwrap();
    let report = objects.iter().find(|o| o["type"] == "report").unwrap();
    let refs = report["object_refs"].as_array().unwrap();
    assert!(
        refs.iter()
            .any(|r| r.as_str().unwrap().starts_with("incident--"))
    );
    assert!(
        refs.iter()
            .filter(|r| r.as_str().unwrap().starts_with("sighting--"))
            .count()
            >= 5
    );
    // Every ref resolves inside the bundle.
    for r in refs {
        assert!(objects.iter().any(|o| &o["id"] == r), "{r}");
    }
}

fn flow(src: &str, dst: &str, port: u16, host: Option<&str>, at: i64, out: u64) -> Flow {
    let mut f = Flow::new(FlowSource::Aws, ip(src), ip(dst), 6);
    f.src_port = 40_000;
    f.dst_port = port;
    f.start_ms = at;
    f.end_ms = at + 1000;
    f.bytes_out = out;
    f.bytes_in = 10;
    f.hostname = host.map(str::to_string);
    f
}

#[test]
fn the_register_lists_declared_and_undeclared_parties() {
    let policy = policy();
    let compiled = Arc::new(CompiledPolicy::new(Arc::new(policy.clone())));
    let mut enricher = Enricher::new(compiled);
    let mut register = Register::new(Some(&policy));
    let flows = [
        flow(
            "10.0.4.10",
            "198.51.100.7",
            443,
            Some("api.mailer.example"),
            T0,
            600_000,
        ),
        flow("10.0.4.10", "198.51.100.7", 443, None, T0 + 60_000, 600_000),
        flow(
            "10.0.4.10",
            "52.216.180.91",
            443,
            Some("bucket.s3.us-east-1.amazonaws.com"),
            T0,
            5_000_000,
        ),
        flow("10.0.4.10", "93.184.216.34", 8443, None, T0, 100),
        // An internet client of a public service is not a third party.
        flow("192.0.2.200", "10.0.4.10", 443, None, T0, 100),
        // Nor is internal traffic.
        flow("10.0.4.10", "10.0.2.10", 5432, None, T0, 100),
    ];
    for mut f in flows {
        enricher.enrich(&mut f);
        register.add(&f);
    }
    let parties = register.finish(&[], &[]);
    let names: Vec<&str> = parties.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["Mailer Inc", "amazonaws.com", "93.184.216.0/24"],
        "{parties:#?}"
    );
    let mailer = &parties[0];
    assert!(mailer.declared && mailer.contract.as_deref() == Some("MSA-1"));
    assert_eq!(mailer.internal, ["notifier-1"]);
    assert_eq!(mailer.rules, ["notifier-to-mailer"]);
    // Two 600 kB flows in one hour against a 1 MiB limit.
    assert_eq!(mailer.limits[0].peak_bytes, 1_200_000);
    assert!(mailer.limits[0].peak_percent > 100.0);
    assert!(!parties[1].declared);
    let csv = crate::vendors::csv(&parties);
    assert!(csv.starts_with("Contractual arrangement reference number,"));
    assert_eq!(csv.lines().count(), 4);
    assert_eq!(registered_domain("a.b.example.co.uk"), "example.co.uk");
    assert_eq!(registered_domain("example.com."), "example.com");
}

#[test]
fn cloud_audit_findings_join_flow_findings_by_address_identity_and_bucket() {
    let kb = Kb::embedded().unwrap();
    let attacker = "198.51.100.23";
    // Control plane: the vendor's role, used from the attacker's address,
    // reads the user bucket in bulk and opens it to a foreign account.
    let audit = |kind: FindingKind, severity: Severity, at: i64, dst: &str| {
        let mut f = finding(
            kind,
            severity,
            outside(attacker, None),
            Entity::default(),
            at,
            &kb,
        );
        f.dst = dst.to_string();
        f.evidence.facts.insert(
            "principal".into(),
            "arn:aws:sts::111122223333:assumed-role/vendor-mailer/s1".into(),
        );
        f
    };
    let read = audit(
        FindingKind::CloudBulkRead,
        Severity::Medium,
        T0,
        "arn:aws:s3:::users-data/export/1.csv",
    );
    let shared = audit(
        FindingKind::CloudDataShared,
        Severity::High,
        T0 + H,
        "arn:aws:s3:::users-data",
    );
    // Network plane: a host beacons to the attacker's address, and the
    // same bucket receives a large upload from inside.
    let beacon = finding(
        FindingKind::Beaconing,
        Severity::Medium,
        host("10.0.3.10", "notifier-1", &["notifier"]),
        outside(attacker, None),
        T0 - H,
        &kb,
    );
    let exfil = finding(
        FindingKind::CloudExfiltration,
        Severity::High,
        host("10.0.4.10", "batch-1", &["batch"]),
        outside("52.216.8.9", Some("users-data.s3.eu-west-1.amazonaws.com")),
        T0 + 2 * H,
        &kb,
    );
    let linked = link(&[read, shared, beacon, exfil], &[], &kb);
    assert_eq!(linked.incidents.len(), 1, "{:#?}", linked.incidents);
    let incident = &linked.incidents[0];
    assert_eq!(incident.findings.len(), 4);
    let identity = incident
        .entities
        .iter()
        .find(|e| e.role == Role::Identity)
        .unwrap();
    assert_eq!(
        identity.label,
        "arn:aws:sts::111122223333:assumed-role/vendor-mailer/s1"
    );
    // A finding in another account's bucket stays apart.
    let other = audit(
        FindingKind::CloudDataShared,
        Severity::High,
        T0,
        "arn:aws:s3:::other-bucket",
    );
    let mut other = other;
    other.evidence.facts.insert(
        "principal".into(),
        "arn:aws:iam::444455556666:user/x".into(),
    );
    other.src_entity = Entity::default();
    let linked = link(&[other], &[], &kb);
    assert_eq!(linked.incidents[0].findings.len(), 1);
}
