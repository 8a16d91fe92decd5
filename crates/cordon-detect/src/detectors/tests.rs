//! Each detector on synthetic traffic: what it must find, and what it must
//! leave alone.

use std::net::IpAddr;

use cordon_flow::{Enrichment, Flow, FlowSource, Names, Observed};

use crate::config::Config;
use crate::finding::Finding;
use crate::intel::{Intel, parse_pattern};
use crate::kb::Kb;
use crate::{Engine, stats};

const T0: i64 = 1_770_076_800_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A two-way record (as Zeek logs it).
fn flow(src: &str, dst: &str, port: u16, t: i64, out: u64, back: u64) -> Flow {
    let mut f = Flow::new(FlowSource::Zeek, ip(src), ip(dst), 6);
    f.start_ms = t;
    f.end_ms = t + 500;
    f.src_port = 40_000 + (t / 1000 % 20_000) as u16;
    f.dst_port = port;
    f.bytes_out = out;
    f.bytes_in = back;
    f.packets_out = 2 + out / 1200;
    f.packets_in = 2 + back / 1200;
    f.observed = Some(Observed::Accepted);
    f.attr("conn_state", if back > 0 { "SF" } else { "S0" });
    f
}

fn enriched(mut f: Flow, verdict: &str, rule: Option<&str>, vendor: Option<&str>) -> Flow {
    f.enrichment = Some(std::sync::Arc::new(Enrichment {
        verdict: verdict.parse().unwrap(),
        rule: rule.map(Into::into),
        vendor: vendor.map(Into::into),
        src_groups: Names::default(),
        dst_groups: Names::default(),
        ..Enrichment::with_verdict(cordon_core::Verdict::Allow)
    }));
    f
}

fn run(mut flows: Vec<Flow>) -> Vec<Finding> {
    run_with(Config::default(), None, &mut flows)
}

fn run_with(config: Config, intel: Option<Intel>, flows: &mut [Flow]) -> Vec<Finding> {
    flows.sort_by_key(|f| f.start_ms);
    let mut e = Engine::new(config, Kb::embedded().unwrap(), intel);
    for f in flows.iter() {
        e.observe(f);
    }
    e.finish()
}

fn kinds(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.kind.as_str()).collect()
}

/// A tiny deterministic generator for test traffic.
struct Lcg(u64);
impl Lcg {
    fn f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn a_jittery_beacon_with_missed_beats_is_found() {
    let mut r = Lcg(1);
    let mut flows = Vec::new();
    let mut t = T0 as f64;
    while (t as i64) < T0 + 3 * HOUR {
        if r.f64() > 0.05 {
            let size = 600.0 * (0.9 + 0.2 * r.f64());
            flows.push(flow(
                "10.0.4.10",
                "45.137.21.9",
                443,
                t as i64,
                size as u64,
                900,
            ));
        }
        t += 60_000.0 * (0.85 + 0.3 * r.f64());
    }
    let found = run(flows);
    let beacon = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::Beaconing)
        .expect("a beacon");
    assert_eq!(beacon.techniques, ["T1071.001", "T1573"]);
    assert_eq!(beacon.tactics, ["TA0011"]);
    assert_eq!(beacon.stage, "command-and-control");
    // The pattern is strong, but alone (no policy) it is at most medium.
    assert!(
        beacon.evidence.facts["score"].as_f64().unwrap() >= 0.8,
        "{beacon:?}"
    );
    assert_eq!(beacon.severity, crate::Severity::Medium);
    assert!(
        beacon.evidence.facts["severity_reason"]
            .as_str()
            .unwrap()
            .contains("alone")
    );
    assert!(beacon.evidence.facts["median_interval_s"].as_f64().unwrap() > 50.0);
    assert!(!beacon.evidence.flows.is_empty());
    // The policy saying nothing sanctions the destination corroborates it.
    let mut r = Lcg(1);
    let mut flows = Vec::new();
    let mut t = T0 as f64;
    while (t as i64) < T0 + 3 * HOUR {
        let size = 600.0 * (0.9 + 0.2 * r.f64());
        let f = flow("10.0.4.10", "45.137.21.9", 443, t as i64, size as u64, 900);
        flows.push(enriched(f, "would-deny", None, None));
        t += 60_000.0 * (0.95 + 0.1 * r.f64());
    }
    let found = run(flows);
    let beacon = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::Beaconing)
        .expect("a beacon");
    assert!(beacon.severity >= crate::Severity::High, "{beacon:?}");
}

/// `n` connections from `src` to `dst:port`, `every` ms apart from `t0`.
fn series(src: &str, dst: &str, port: u16, t0: i64, n: i64, every: i64, back: u64) -> Vec<Flow> {
    (0..n)
        .map(|i| flow(src, dst, port, t0 + i * every, 700, back))
        .collect()
}

fn beacons(found: &[Finding]) -> Vec<&Finding> {
    found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::Beaconing)
        .collect()
}

#[test]
fn minutes_of_c2_between_internal_hosts_are_found_at_the_severity_they_merit() {
    // Twelve check-ins a minute apart to an internal host on an uncommon
    // port (a C2 server on a compromised machine): medium.
    let found = run(series("172.18.0.3", "172.18.0.2", 8888, T0, 12, MIN, 8000));
    let b = beacons(&found);
    assert_eq!(b.len(), 1, "{found:?}");
    assert_eq!(b[0].severity, crate::Severity::Medium);
    // The same to an internal web proxy: found, but low.
    let found = run(series("10.0.0.18", "10.0.0.16", 3128, T0, 12, MIN, 8000));
    assert_eq!(beacons(&found)[0].severity, crate::Severity::Low);
    // Infrastructure is never a beacon: NTP, DNS, Kerberos to the DC.
    for port in [53, 88, 389] {
        let found = run(series("10.0.0.18", "10.0.0.4", port, T0, 60, MIN, 300));
        assert!(beacons(&found).is_empty(), "port {port}: {found:?}");
    }
    // Inbound (outside to inside) is not command and control.
    let found = run(series("45.137.21.9", "10.0.0.18", 443, T0, 60, MIN, 300));
    assert!(beacons(&found).is_empty(), "{found:?}");
}

#[test]
fn without_a_known_inside_only_beats_that_last_for_hours_count() {
    // Two public hosts (a sensor on an Internet-facing machine): an hour
    // of regular connections is a scanner or a password guesser's rhythm.
    let found = run(series(
        "73.54.23.243",
        "64.225.56.201",
        80,
        T0,
        30,
        2 * MIN,
        500,
    ));
    assert!(beacons(&found).is_empty(), "{found:?}");
    // Eight hours of it is a beacon, low on a common port.
    let found = run(series(
        "73.54.23.243",
        "64.225.56.201",
        80,
        T0,
        100,
        5 * MIN,
        500,
    ));
    let b = beacons(&found);
    assert_eq!(b.len(), 1, "{found:?}");
    assert_eq!(b[0].severity, crate::Severity::Low);
}

#[test]
fn strobes_and_reconnect_storms_are_found() {
    // Hundreds of short HTTPS requests within seconds to a host on an
    // uncommon port (Meterpreter's reverse_https): a strobe.
    let found = run(series("10.0.1.6", "192.168.0.4", 8443, T0, 300, 200, 2000));
    let b = beacons(&found);
    assert!(
        b.iter().any(|f| f.evidence.facts["shape"] == "strobe"),
        "{found:?}"
    );
    // Calls between internal services on their usual port are not.
    let found = run(series("10.0.1.10", "10.0.3.10", 8080, T0, 300, 200, 2000));
    assert!(beacons(&found).is_empty(), "{found:?}");
    // A RAT calling a C2 server that is down: refused every few seconds.
    let mut refused = series("10.0.4.10", "203.0.113.50", 4444, T0, 40, 5_000, 0);
    for f in &mut refused {
        f.attr("conn_state", "REJ");
    }
    let found = run(refused);
    let b = beacons(&found);
    assert_eq!(b.len(), 1, "{found:?}");
    assert_eq!(b[0].evidence.facts["shape"], "reconnect storm");
    assert_eq!(b[0].evidence.facts["unanswered_attempts"], 40);
}

#[test]
fn periodic_benign_services_and_their_users_extensions_stay_low() {
    let mut flows = series("10.0.4.10", "91.189.91.48", 80, T0, 40, 20 * MIN, 300);
    for f in &mut flows {
        f.hostname = Some("connectivity-check.ubuntu.com".into());
    }
    let found = run(flows.clone());
    assert_eq!(beacons(&found)[0].severity, crate::Severity::Low);
    // The settings can name more infrastructure.
    let config = Config::parse(
        "detect.yaml",
        "apiVersion: cordon/v1\nkind: DetectionConfig\nservices:\n  infrastructure:\n    - name: health checks\n      transport: [tcp]\n      ports: [80]\n",
    )
    .unwrap();
    let found = run_with(config, None, &mut flows);
    assert!(beacons(&found).is_empty(), "{found:?}");
    let bad = Config::parse(
        "detect.yaml",
        "apiVersion: cordon/v1\nkind: DetectionConfig\nservices:\n  infrastructure:\n    - name: x\n      transport: [quic]\n",
    )
    .unwrap_err();
    assert!(bad.to_string().contains("detect.yaml:5:"), "{bad}");
}

#[test]
fn scans_and_guessing_from_the_internet_are_background() {
    // 16 ports probed on an exposed host from outside: low.
    let flows: Vec<Flow> = (0..16)
        .map(|i| {
            flow(
                "47.89.128.90",
                "10.0.0.5",
                1000 + i,
                T0 + i64::from(i) * 1000,
                60,
                0,
            )
        })
        .collect();
    let found = run(flows);
    let scan = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::ServiceDiscovery)
        .expect("a scan");
    assert_eq!(scan.severity, crate::Severity::Low);
    // From inside, the same is a compromised host looking around: high.
    let flows: Vec<Flow> = (0..16)
        .map(|i| {
            flow(
                "10.0.0.9",
                "10.0.0.5",
                1000 + i,
                T0 + i64::from(i) * 1000,
                60,
                0,
            )
        })
        .collect();
    let found = run(flows);
    let scan = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::ServiceDiscovery)
        .expect("a scan");
    assert!(scan.severity >= crate::Severity::Medium, "{scan:?}");
}

#[test]
fn ntp_exchanges_minutes_apart_are_not_one_long_connection() {
    let flows: Vec<Flow> = (0..120)
        .map(|i| {
            let mut f = flow("10.0.0.9", "162.159.200.1", 123, T0 + i * 64_000, 48, 48);
            f.protocol = 17;
            f.src_port = 123;
            f.end_ms = f.start_ms;
            f
        })
        .collect();
    let found = run(flows);
    assert!(
        !found
            .iter()
            .any(|f| f.kind == cordon_core::FindingKind::LongConnection),
        "{found:?}"
    );
}

#[test]
fn random_connections_are_not_a_beacon() {
    let mut r = Lcg(7);
    let mut flows = Vec::new();
    let mut t = T0 as f64;
    while (t as i64) < T0 + 6 * HOUR {
        // Exponential gaps (a person browsing), sizes over decades.
        let size = (300.0 * (r.f64() * 8.0).exp()) as u64;
        flows.push(flow(
            "10.0.1.10",
            "93.184.216.34",
            443,
            t as i64,
            size,
            20_000,
        ));
        t += -120_000.0 * (1.0 - r.f64()).ln();
    }
    assert!(!kinds(&run(flows)).contains(&"beaconing"));
}

#[test]
fn a_beacon_behind_rotating_addresses_is_one_pair_by_name() {
    let addrs = ["104.16.1.1", "104.16.2.2", "104.16.3.3", "104.16.4.4"];
    let flows: Vec<Flow> = (0..120)
        .map(|i| {
            let mut f = flow(
                "10.0.4.10",
                addrs[i % 4],
                443,
                T0 + i as i64 * 60_000,
                700,
                400,
            );
            f.hostname = Some("cdn.example-c2.net".to_string());
            f
        })
        .collect();
    let found = run(flows);
    let beacons: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::Beaconing)
        .collect();
    assert_eq!(beacons.len(), 1, "{found:#?}");
    assert_eq!(beacons[0].dst, "cdn.example-c2.net");
}

#[test]
fn allowed_vendor_traffic_is_not_scored_as_a_beacon() {
    let flows: Vec<Flow> = (0..200)
        .map(|i| {
            let f = flow("10.0.3.10", "34.120.55.10", 443, T0 + i * 30_000, 2000, 300);
            enriched(f, "allow", Some("api-to-analytics"), Some("Metrics Co"))
        })
        .collect();
    assert!(!kinds(&run(flows)).contains(&"beaconing"));
}

#[test]
fn a_long_connection_cut_into_flow_log_records_is_joined() {
    // AWS cuts a connection into ten-minute records of one 5-tuple.
    let flows: Vec<Flow> = (0..14)
        .map(|i| {
            let mut f = Flow::new(FlowSource::Aws, ip("10.0.4.10"), ip("45.137.21.9"), 6);
            f.src_port = 51_000;
            f.dst_port = 443;
            f.start_ms = T0 + i * 10 * MIN;
            f.end_ms = f.start_ms + 10 * MIN;
            f.bytes_out = 5_000;
            f.packets_out = 20;
            f
        })
        .collect();
    let found = run(flows);
    let long = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::LongConnection)
        .expect("found");
    assert!(long.techniques.contains(&"T1572".to_string()));
    assert!(long.evidence.facts["duration_s"].as_i64().unwrap() >= 3600);
}

#[test]
fn a_transfer_far_above_the_baseline_is_exfiltration() {
    let mut flows = Vec::new();
    for h in 0..24 {
        for k in 0..10 {
            let t = T0 + h * HOUR + k * 5 * MIN;
            flows.push(flow(
                "10.0.4.10",
                "198.51.100.25",
                587,
                t,
                40_000 + (k as u64) * 1000,
                500,
            ));
        }
    }
    // Then 600 MB to a never-seen bucket in four chunks.
    for k in 0..4 {
        let mut f = flow(
            "10.0.4.10",
            "52.216.8.9",
            443,
            T0 + 25 * HOUR + k * 10 * MIN,
            150_000_000,
            20_000,
        );
        f.hostname = Some("loot-7.s3.us-east-1.amazonaws.com".to_string());
        flows.push(f);
    }
    let found = run(flows);
    // (The mail every five minutes is also a beacon, which makes the
    // upload a compromised host's too: the volume finding is this test's.)
    let exfil = found
        .iter()
        .find(|f| {
            f.kind == cordon_core::FindingKind::CloudExfiltration
                && f.evidence.facts.contains_key("first_seen_destination")
        })
        .expect("found");
    assert!(exfil.techniques.contains(&"T1567.002".to_string()));
    assert!(exfil.techniques.contains(&"T1537".to_string()));
    assert!(
        exfil.techniques.contains(&"T1030".to_string()),
        "equal chunks: {exfil:?}"
    );
    assert_eq!(exfil.evidence.facts["first_seen_destination"], true);
    assert!(exfil.controls.iter().any(|c| c.id == "CISA-ZTMM-2.0:Data"));
    // The same volume to a plain address is still exfiltration once the
    // network has been watched for a day (the source never sent out).
    let watched = flow("10.0.1.5", "10.0.2.10", 5432, T0 - 24 * HOUR, 500, 500);
    let upload = flow("10.0.4.10", "203.0.113.50", 443, T0, 300_000_000, 1000);
    let found = run(vec![watched, upload.clone()]);
    assert_eq!(kinds(&found), ["exfiltration"]);
    // In the first day, without a policy, "usual" means nothing yet: the
    // first nightly backup is not exfiltration.
    let found = run(vec![upload]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn a_routine_nightly_backup_is_not_news_after_the_first_night() {
    let mut flows = Vec::new();
    for night in 0..4 {
        for part in 0..5 {
            let t = T0 + night * 24 * HOUR + 2 * HOUR + part * 2 * MIN;
            flows.push(flow("10.0.5.10", "52.218.32.10", 443, t, 200_000_000, 4000));
        }
        for h in 0..24 {
            flows.push(flow(
                "10.0.5.10",
                "151.101.2.132",
                80,
                T0 + night * 24 * HOUR + h * HOUR,
                1500,
                50_000,
            ));
        }
    }
    let found = run(flows);
    let exfil: Vec<&Finding> = found.iter().filter(|f| f.kind.is_exfiltration()).collect();
    assert!(exfil.len() <= 1, "{exfil:#?}");
    assert!(exfil.iter().all(|f| f.last_ms < T0 + 24 * HOUR));
    // Sanctioned by a rule: nothing at all.
    let flows: Vec<Flow> = (0..5)
        .map(|p| {
            let f = flow(
                "10.0.5.10",
                "52.218.32.10",
                443,
                T0 + p * MIN,
                200_000_000,
                4000,
            );
            enriched(f, "allow", Some("backup-upload"), None)
        })
        .collect();
    assert!(run(flows).is_empty());
}

#[test]
fn a_vendor_reaching_somewhere_new_is_drift() {
    let mut flows = Vec::new();
    for m in 0..(8 * 60) {
        let f = flow("198.51.100.61", "10.0.4.10", 443, T0 + m * MIN, 3000, 300);
        flows.push(enriched(
            f,
            "allow",
            Some("mailer-webhooks"),
            Some("Mailer Inc"),
        ));
    }
    let f = flow(
        "198.51.100.77",
        "10.0.4.10",
        22,
        T0 + 7 * HOUR,
        30_000,
        80_000,
    );
    flows.push(enriched(f, "deny", None, Some("Mailer Inc")));
    let found = run(flows);
    let drift: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::VendorDrift)
        .collect();
    assert_eq!(drift.len(), 1, "{found:#?}");
    assert_eq!(drift[0].techniques, ["T1199"]);
    assert_eq!(drift[0].stage, "initial-access");
    assert_eq!(drift[0].stopped_by.as_deref(), Some("default deny"));
    assert!(drift[0].controls.iter().any(|c| c.id == "PCI-DSS-4.0:12.8"));
    assert!(drift[0].controls.iter().any(|c| c.id == "NYDFS-500:500.11"));
}

#[test]
fn lateral_movement_follows_the_policy_or_the_history() {
    // With a policy: a denied SSH session is lateral movement, an allowed
    // one is not.
    let denied = enriched(
        flow("10.0.4.10", "10.0.2.10", 22, T0, 20_000, 300_000),
        "deny",
        Some("no-admin-from-app-tier"),
        None,
    );
    let allowed = enriched(
        flow("10.0.9.10", "10.0.2.10", 22, T0, 20_000, 300_000),
        "allow",
        Some("bastion-ssh"),
        None,
    );
    let found = run(vec![denied, allowed]);
    let lateral: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::LateralMovement)
        .collect();
    assert_eq!(lateral.len(), 1);
    assert_eq!(lateral[0].techniques, ["T1021.004"]);
    assert_eq!(
        lateral[0].stopped_by.as_deref(),
        Some("no-admin-from-app-tier")
    );
    // Without one: pairs seen while learning are normal; a new one later
    // is not; a scan's handshake is not a session.
    let mut flows = vec![
        flow("10.0.9.10", "10.0.2.10", 22, T0, 20_000, 300_000),
        // Learned in the first day too: the admin host's first session of
        // the working day, hours after watching began.
        flow("10.0.9.10", "10.0.1.12", 22, T0 + 9 * HOUR, 20_000, 300_000),
        flow(
            "10.0.9.10",
            "10.0.2.10",
            22,
            T0 + 25 * HOUR,
            20_000,
            300_000,
        ),
        flow(
            "10.0.9.10",
            "10.0.1.12",
            22,
            T0 + 34 * HOUR,
            20_000,
            300_000,
        ),
        flow(
            "10.0.4.10",
            "10.0.1.10",
            3389,
            T0 + 25 * HOUR,
            50_000,
            900_000,
        ),
        flow("10.0.4.10", "10.0.1.11", 22, T0 + 25 * HOUR, 80, 300),
    ];
    let found = run_with(Config::default(), None, &mut flows);
    let lateral: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::LateralMovement)
        .collect();
    assert_eq!(lateral.len(), 1, "{found:#?}");
    assert_eq!(lateral[0].techniques, ["T1021.001"]);
    assert_eq!(lateral[0].dst_entity.ip, Some(ip("10.0.1.10")));
}

#[test]
fn horizontal_and_vertical_scans_are_discovery() {
    let mut flows = Vec::new();
    for h in 1..=30u8 {
        flows.push(flow(
            "10.0.4.10",
            &format!("10.0.1.{h}"),
            445,
            T0 + i64::from(h) * 1000,
            120,
            0,
        ));
    }
    for p in [
        21u16, 22, 23, 25, 53, 80, 110, 135, 139, 143, 443, 445, 993, 3306, 3389, 5432, 5900, 8080,
    ] {
        flows.push(flow("10.0.7.7", "10.0.2.10", p, T0 + i64::from(p), 120, 0));
    }
    let found = run(flows);
    let scans: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::ServiceDiscovery)
        .collect();
    assert_eq!(scans.len(), 2, "{found:#?}");
    assert!(scans.iter().all(|f| f.techniques == ["T1046"]));
    assert!(
        scans
            .iter()
            .any(|f| f.src == "10.0.4.10" && f.port == Some(445))
    );
    assert!(
        scans
            .iter()
            .any(|f| f.src == "10.0.7.7" && f.dst == "10.0.2.10")
    );
    // A busy client reaching many servers that answer is not a scan.
    let flows: Vec<Flow> = (0..60u8)
        .map(|i| {
            flow(
                "10.0.1.10",
                &format!("151.101.{i}.1"),
                443,
                T0 + i64::from(i) * 500,
                900,
                40_000,
            )
        })
        .collect();
    assert!(!kinds(&run(flows)).contains(&"service-discovery"));
    // Nor one whose connections fail a third of the time (IPv6 attempts
    // that fall back, blocked trackers); a sweep where most fail is.
    let browsing: Vec<Flow> = (0..60u8)
        .map(|i| {
            let answered = i % 3 != 0;
            flow(
                "10.0.1.10",
                &format!("151.101.{i}.1"),
                443,
                T0 + i64::from(i) * 500,
                900,
                if answered { 40_000 } else { 0 },
            )
        })
        .collect();
    assert!(!kinds(&run(browsing)).contains(&"service-discovery"));
    let sweep: Vec<Flow> = (0..60u8)
        .map(|i| {
            let answered = i % 4 == 0;
            flow(
                "10.0.1.10",
                &format!("151.101.{i}.1"),
                443,
                T0 + i64::from(i) * 500,
                120,
                if answered { 600 } else { 0 },
            )
        })
        .collect();
    assert!(kinds(&run(sweep)).contains(&"service-discovery"));
}

#[test]
fn password_guessing_and_spraying_are_brute_force_but_a_sweep_is_not() {
    // Forty short failed SSH logins to one host.
    let guesses: Vec<Flow> = (0..40)
        .map(|i| {
            flow(
                "185.220.101.4",
                "10.0.1.10",
                22,
                T0 + i * 5_000,
                2_500,
                3_200,
            )
        })
        .collect();
    let found = run(guesses);
    let brute = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::BruteForce)
        .expect("found");
    assert_eq!(brute.techniques, ["T1110.001"]);
    assert_eq!(brute.stage, "credential-access");
    // One failed login on each of a dozen hosts.
    let spray: Vec<Flow> = (1..=12u8)
        .map(|h| {
            flow(
                "10.0.4.10",
                &format!("10.0.3.{h}"),
                22,
                T0 + i64::from(h) * 3000,
                2_000,
                3_000,
            )
        })
        .collect();
    let found = run(spray);
    assert!(
        found.iter().any(
            |f| f.kind == cordon_core::FindingKind::BruteForce && f.techniques == ["T1110.003"]
        ),
        "{found:#?}"
    );
    // Unanswered probes are a scan, not guessing.
    let sweep: Vec<Flow> = (1..=40u8)
        .map(|h| {
            flow(
                "10.0.4.10",
                &format!("10.0.6.{h}"),
                22,
                T0 + i64::from(h) * 100,
                120,
                0,
            )
        })
        .collect();
    assert!(!kinds(&run(sweep)).contains(&"brute-force"));
}

#[test]
fn indicators_match_from_plain_lists_and_stix_bundles() {
    let mut intel = Intel::default();
    intel
        .add("iocs.txt", "# C2 servers\n45.137.21.9\n203.0.113.0/24 # a range\nevil.example\nnot an indicator!\n")
        .unwrap();
    intel
        .add(
            "feed.json",
            r#"{"type":"bundle","id":"bundle--1","objects":[
              {"type":"indicator","id":"indicator--a","name":"C2 domain","pattern_type":"stix",
               "pattern":"[domain-name:value = 'c2.example.net'] OR [ipv4-addr:value = '198.18.0.9']"},
              {"type":"indicator","id":"indicator--b","pattern_type":"stix",
               "pattern":"[file:hashes.'SHA-256' = 'aa']"}]}"#,
        )
        .unwrap();
    assert_eq!(intel.skipped.len(), 2, "{:?}", intel.skipped);
    let mut with_name = flow("10.0.4.10", "104.16.9.9", 443, T0 + 2000, 500, 500);
    with_name.hostname = Some("api.c2.example.net".to_string());
    let mut flows = vec![
        flow("10.0.4.10", "45.137.21.9", 443, T0, 500, 500),
        flow("10.0.4.10", "203.0.113.77", 80, T0 + 1000, 500, 500),
        with_name,
        flow("10.0.4.10", "8.8.8.8", 53, T0 + 3000, 60, 90),
    ];
    let found = run_with(Config::default(), Some(intel), &mut flows);
    let hits: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::ThreatIntel)
        .collect();
    assert_eq!(hits.len(), 3, "{found:#?}");
    assert!(
        hits.iter()
            .any(|f| f.evidence.summary.contains("indicator--a"))
    );
    assert!(
        parse_pattern("[ipv4-addr:value = '1.2.3.4' AND ipv4-addr:value = '5.6.7.8']").is_err()
    );
    assert_eq!(
        parse_pattern("[ipv4-addr:value ISSUBSET '10.0.0.0/8']").unwrap(),
        ["10.0.0.0/8"]
    );
}

#[test]
fn denied_flows_to_one_group_are_one_violation() {
    let flows: Vec<Flow> = (1..=50u8)
        .map(|h| {
            let mut f = enriched(
                flow(
                    "10.0.4.10",
                    &format!("10.0.2.{h}"),
                    5432,
                    T0 + i64::from(h),
                    120,
                    0,
                ),
                "would-deny",
                None,
                None,
            );
            if let Some(e) = f.enrichment.as_mut() {
                std::sync::Arc::make_mut(e).dst_groups =
                    vec!["user-db".into(), "private".into()].into();
            }
            f
        })
        .collect();
    let found = run(flows);
    let v: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::PolicyViolation)
        .collect();
    assert_eq!(v.len(), 1, "{found:#?}");
    assert_eq!(v[0].dst, "user-db");
    assert_eq!(v[0].stage, "lateral-movement");
    assert_eq!(
        v[0].evidence.facts["flows"], 32,
        "updated as the count doubles"
    );
}

#[test]
fn state_stays_bounded_over_many_distinct_pairs() {
    let mut config = Config::default();
    let cap = 4096;
    for common in [
        &mut config.beaconing.common,
        &mut config.long_connections.common,
        &mut config.exfiltration.common,
        &mut config.vendors.common,
        &mut config.lateral.common,
        &mut config.scan.common,
        &mut config.brute_force.common,
        &mut config.violations.common,
    ] {
        common.max_state = cap;
    }
    let mut e = Engine::new(config, Kb::embedded().unwrap(), None);
    for i in 0..300_000u32 {
        let src = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let dst = IpAddr::from([52, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let mut f = Flow::new(FlowSource::Zeek, src, dst, 6);
        f.start_ms = T0 + i64::from(i);
        f.end_ms = f.start_ms + 2 * HOUR;
        f.src_port = 40_000;
        f.dst_port = 22;
        f.bytes_out = 1_500;
        e.observe(&f);
    }
    for (name, held, evicted) in e.state() {
        // Detectors with two maps hold up to two caps.
        assert!(held <= 2 * cap, "{name} holds {held}");
        if matches!(name, "beaconing" | "service-discovery" | "exfiltration") {
            assert!(evicted > 0, "{name} never evicted");
        }
    }
}

#[test]
fn regularity_scores_symmetric_tight_series_high() {
    let tight = [60.0, 61.0, 59.0, 60.5, 59.5, 60.0, 60.2];
    let (skew, spread) = stats::regularity(&tight);
    assert!(skew > 0.8 && spread > 0.95, "{skew} {spread}");
    let loose = [1.0, 300.0, 5.0, 2000.0, 40.0, 7.0, 900.0];
    let (_, spread) = stats::regularity(&loose);
    assert!(spread < 0.3, "{spread}");
    assert_eq!(stats::bowley(&[1.0, 2.0, 3.0, 4.0, 5.0]), 0.0);
}

#[test]
fn exfiltration_to_a_beacon_destination_is_over_the_c2_channel() {
    let mut flows: Vec<Flow> = (0..90)
        .map(|i| flow("10.0.4.10", "45.137.21.9", 443, T0 + i * 60_000, 600, 900))
        .collect();
    // A day of watching before.
    flows.push(flow(
        "10.0.1.5",
        "10.0.2.10",
        5432,
        T0 - 24 * HOUR,
        500,
        500,
    ));
    flows.push(flow(
        "10.0.4.10",
        "45.137.21.9",
        443,
        T0 + 95 * MIN,
        400_000_000,
        2_000,
    ));
    let found = run(flows);
    let exfil = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::Exfiltration)
        .expect("found");
    assert!(exfil.techniques.contains(&"T1041".to_string()), "{exfil:?}");
    assert!(
        found
            .iter()
            .any(|f| f.kind == cordon_core::FindingKind::Beaconing)
    );
}

#[test]
fn a_vendor_active_at_a_new_hour_is_drift_once_a_day_was_learned() {
    let mut config = Config::default();
    config.vendors.learn = 24 * HOUR;
    // Webhooks during office hours for two days, then one at 05:00.
    let mut flows = Vec::new();
    for day in 0..2 {
        for h in 9..18 {
            let f = flow(
                "198.51.100.61",
                "10.0.4.10",
                443,
                T0 + day * 24 * HOUR + h * HOUR,
                3000,
                300,
            );
            flows.push(enriched(
                f,
                "allow",
                Some("mailer-webhooks"),
                Some("Mailer Inc"),
            ));
        }
    }
    let f = flow(
        "198.51.100.61",
        "10.0.4.10",
        443,
        T0 + 50 * HOUR + 3 * HOUR,
        3000,
        300,
    );
    flows.push(enriched(
        f,
        "allow",
        Some("mailer-webhooks"),
        Some("Mailer Inc"),
    ));
    let found = run_with(config, None, &mut flows);
    let drift: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::VendorDrift)
        .collect();
    assert_eq!(drift.len(), 1, "{found:#?}");
    assert_eq!(drift[0].evidence.facts["hour_of_day_utc"], 5);
}

/// SSDP announcements, DHCPv6 solicits and MLD reports go out like
/// clockwork to multicast groups: regular, long-lived, and never an
/// attacker's far end. No attack-path detector reports them; a policy
/// that denies them still sees a violation.
#[test]
fn multicast_broadcast_and_link_local_are_never_attack_destinations() {
    let mut flows = Vec::new();
    for (src, dst, port) in [
        ("10.0.0.11", "239.255.255.250", 1900),
        ("fe80::c84:8e54:1f99:fa3", "ff02::1:2", 547),
        ("fe80::c84:8e54:1f99:fa3", "ff02::16", 0),
        ("10.0.0.20", "255.255.255.255", 67),
        ("10.0.0.21", "169.254.169.254", 80),
    ] {
        let mut t = T0;
        while t < T0 + 6 * HOUR {
            let mut f = flow(src, dst, port, t, 400, 0);
            f.protocol = 17;
            f.end_ms = t + 3_600_000;
            flows.push(f);
            t += 60_000;
        }
    }
    // The same rhythm to an internet address is a beacon.
    let mut t = T0;
    while t < T0 + 6 * HOUR {
        flows.push(flow("10.0.0.11", "45.137.21.9", 443, t, 400, 900));
        t += 60_000;
    }
    let denied: Vec<Flow> = flows
        .iter()
        .take(3)
        .map(|f| enriched(f.clone(), "deny", Some("no-ssdp"), None))
        .collect();
    let found = run(flows);
    assert!(
        found
            .iter()
            .all(|f| f.dst_entity.ip == Some(ip("45.137.21.9"))),
        "{:#?}",
        found.iter().map(|f| (&f.kind, &f.dst)).collect::<Vec<_>>()
    );
    assert!(
        found
            .iter()
            .any(|f| f.kind == cordon_core::FindingKind::Beaconing)
    );
    let violations = run(denied);
    assert!(
        violations
            .iter()
            .any(|f| f.kind == cordon_core::FindingKind::PolicyViolation),
        "a policy that denies multicast is still told it was asked"
    );
}

#[test]
fn a_burst_of_ssh_guesses_is_brute_force_even_below_the_hourly_count() {
    // Eleven short SSH sessions of the same size within a minute.
    let flows: Vec<Flow> = (0..11)
        .map(|i| {
            flow(
                "192.168.56.1",
                "192.168.56.103",
                22,
                T0 + i * 6_000,
                3_800,
                3_100,
            )
        })
        .collect();
    let found = run(flows);
    assert!(
        found
            .iter()
            .any(|f| f.kind == cordon_core::FindingKind::BruteForce),
        "{found:?}"
    );
    // The same sessions spread over ten minutes are a person at work.
    let flows: Vec<Flow> = (0..11)
        .map(|i| {
            flow(
                "192.168.56.1",
                "192.168.56.103",
                22,
                T0 + i * 60_000,
                3_800,
                3_100,
            )
        })
        .collect();
    let found = run(flows);
    assert!(
        !found
            .iter()
            .any(|f| f.kind == cordon_core::FindingKind::BruteForce),
        "{found:?}"
    );
}

#[test]
fn tens_of_mb_to_a_raw_address_on_an_odd_port_need_no_baseline() {
    // A phone with no history uploads 30 MB to an address on port 2222.
    let flows: Vec<Flow> = (0..30)
        .map(|i| {
            flow(
                "192.168.1.20",
                "203.0.113.80",
                2222,
                T0 + i * 30_000,
                1_048_576,
                2_000,
            )
        })
        .collect();
    let found = run(flows);
    let exfil = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::Exfiltration)
        .expect("exfiltration");
    // (Every 30 s to one address is also a beacon: the upload rides it.)
    assert!(exfil.techniques.contains(&"T1048".to_string()), "{exfil:?}");
    assert_eq!(exfil.severity, crate::Severity::Medium);
    // The same to a web port is an upload like any other.
    let flows: Vec<Flow> = (0..30)
        .map(|i| {
            flow(
                "192.168.1.20",
                "203.0.113.80",
                443,
                T0 + i * 30_000,
                1_048_576,
                2_000,
            )
        })
        .collect();
    let found = run(flows);
    assert!(
        !found
            .iter()
            .any(|f| f.kind == cordon_core::FindingKind::Exfiltration),
        "{found:?}"
    );
}

#[test]
fn a_session_still_open_is_a_long_connection_and_nothing_else() {
    // Hourly snapshots of one SSH session (Zeek's open_conn), growing.
    let flows: Vec<Flow> = (1..=6)
        .map(|h| {
            let mut f = flow(
                "73.54.23.243",
                "64.225.56.201",
                22,
                T0,
                150_000 * h as u64,
                600_000 * h as u64,
            );
            f.src_port = 56_394;
            f.end_ms = T0 + h * 6 * HOUR;
            f.attr("zeek_log", "open_conn");
            f.attr("conn_state", "S1");
            f
        })
        .collect();
    let found = run(flows);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, cordon_core::FindingKind::LongConnection);
    assert_eq!(found[0].evidence.facts["still_open"], true);
    // Neither side known to be internal: low.
    assert_eq!(found[0].severity, crate::Severity::Low);
}

#[test]
fn every_finding_says_why_it_has_its_severity() {
    let mut flows = series("10.0.4.10", "45.137.21.9", 443, T0, 40, 2 * MIN, 900);
    flows.push(enriched(
        flow("10.0.4.10", "10.0.2.10", 22, T0 + 5 * MIN, 5_000, 5_000),
        "deny",
        Some("no-admin-from-app-tier"),
        None,
    ));
    let found = run(flows);
    assert!(found.len() >= 2, "{found:?}");
    for f in &found {
        let why = f.evidence.facts["severity_reason"].as_str().unwrap();
        assert!(!why.is_empty(), "{f:?}");
    }
}

#[test]
fn callbacks_an_enforcement_point_refused_are_beats() {
    // The gateway refused every callback (policy), but the implant called
    // every minute: a beacon, not a storm.
    let flows: Vec<Flow> = (0..30)
        .map(|i| {
            let mut f = Flow::new(FlowSource::Gateway, ip("10.0.4.10"), ip("0.0.0.0"), 6);
            f.hostname = Some("c2.example.net".into());
            f.start_ms = T0 + i * MIN;
            f.end_ms = f.start_ms;
            f.src_port = 40_000 + i as u16;
            f.dst_port = 443;
            f.bytes_out = 300;
            f.observed = Some(Observed::Rejected);
            f
        })
        .collect();
    let found = run(flows);
    let b = beacons(&found);
    assert_eq!(b.len(), 1, "{found:?}");
    assert!(!b[0].evidence.facts.contains_key("shape"), "{:?}", b[0]);
}

#[test]
fn an_expired_indicator_says_nothing_of_later_traffic() {
    let bundle = |until: &str| {
        format!(
            r#"{{"type": "bundle", "id": "bundle--1", "objects": [{{"type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "created": "2026-01-01T00:00:00Z",
            "modified": "2026-01-01T00:00:00Z", "pattern": "[ipv4-addr:value = '198.51.100.7']",
            "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "valid_until": "{until}"}}]}}"#
        )
    };
    let hits = |until: &str| {
        let mut intel = Intel::default();
        intel.add("feed.json", &bundle(until)).unwrap();
        let mut flows = vec![flow("10.0.4.10", "198.51.100.7", 443, T0, 900, 900)];
        run_with(Config::default(), Some(intel), &mut flows)
            .iter()
            .filter(|f| f.kind == cordon_core::FindingKind::ThreatIntel)
            .count()
    };
    // T0 is 2026-02-03: expired on 2026-02-01, still valid until 2026-03-01.
    assert_eq!(hits("2026-02-01T00:00:00Z"), 0);
    assert_eq!(hits("2026-03-01T00:00:00Z"), 1);
}

#[test]
fn without_a_policy_a_party_the_host_trades_with_opening_ssh_is_drift() {
    // The notifier talks to the mail provider's network every hour.
    let mut flows: Vec<Flow> = (0..6)
        .flat_map(|h| {
            (0..4).map(move |k| {
                flow(
                    "10.0.4.10",
                    "198.51.100.25",
                    587,
                    T0 + h * HOUR + k * 10 * MIN,
                    30_000,
                    2_000,
                )
            })
        })
        .collect();
    // Then an address of that network opens SSH to it; an unrelated one
    // does too; and one SSH knock is no session.
    let t = T0 + 7 * HOUR;
    flows.push(flow("198.51.100.77", "10.0.4.10", 22, t, 40_000, 200_000));
    flows.push(flow("203.0.113.9", "10.0.4.10", 22, t, 40_000, 200_000));
    flows.push(flow("198.51.100.78", "10.0.4.11", 22, t, 40_000, 200_000));
    let found = run(flows);
    let drift: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::VendorDrift)
        .collect();
    assert_eq!(drift.len(), 1, "{found:#?}");
    let d = drift[0];
    assert_eq!(d.src_entity.ip, Some(ip("198.51.100.77")));
    assert_eq!(d.dst_entity.ip, Some(ip("10.0.4.10")));
    assert_eq!(d.severity, crate::finding::Severity::Medium);
    assert!(d.techniques.contains(&"T1199".to_string()), "{d:?}");
    assert_eq!(d.evidence.facts["network"], "198.51.100.0/24");
    assert!(
        d.evidence.facts["severity_reason"]
            .as_str()
            .unwrap()
            .contains("at most medium")
    );
    // A relation still forming (one hour) is no baseline to drift from.
    let flows = vec![
        flow("10.0.4.10", "198.51.100.25", 587, T0, 30_000, 2_000),
        flow(
            "198.51.100.77",
            "10.0.4.10",
            22,
            T0 + 2 * HOUR,
            40_000,
            200_000,
        ),
    ];
    assert!(
        run(flows)
            .iter()
            .all(|f| f.kind != cordon_core::FindingKind::VendorDrift)
    );
}

#[test]
fn other_hosts_of_a_c2_server_are_found_before_and_after_the_beacon() {
    let c2 = "45.137.21.9";
    // A host stages data on the server first; a day and more earlier,
    // another one touched it once (too long ago to count).
    let mut flows = vec![
        flow("10.0.1.4", c2, 445, T0, 2_000_000, 30_000),
        flow("10.0.1.9", c2, 443, T0 - 30 * HOUR, 900, 4_000),
    ];
    // Then the implant checks in every minute for three hours.
    flows.extend((0..180).map(|i| flow("10.0.1.6", c2, 443, T0 + 10 * MIN + i * MIN, 600, 900)));
    // And a third host downloads from it afterwards; a fourth reaches it
    // on the beacon's own port (a shared service's user, or a second
    // implant for the beacon detector to judge): not this pivot's.
    flows.push(flow("10.0.1.5", c2, 8080, T0 + 4 * HOUR, 300, 90_000));
    flows.push(flow("10.0.1.7", c2, 443, T0 + 2 * HOUR, 500, 800));
    let found = run(flows);
    let beacon = found
        .iter()
        .find(|f| f.kind == cordon_core::FindingKind::Beaconing)
        .expect("beacon");
    assert!(
        beacon.severity >= crate::finding::Severity::Medium,
        "{beacon:?}"
    );
    let mut contacts: Vec<IpAddr> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::ThreatIntel)
        .map(|f| f.src_entity.ip.unwrap())
        .collect();
    contacts.sort();
    assert_eq!(contacts, [ip("10.0.1.4"), ip("10.0.1.5")], "{found:#?}");
    let staged = found
        .iter()
        .find(|f| f.src_entity.ip == Some(ip("10.0.1.4")))
        .unwrap();
    assert_eq!(staged.severity, crate::finding::Severity::Medium);
    assert_eq!(staged.evidence.facts["beacon_finding"], beacon.id.as_str());
    assert_eq!(staged.dst_entity.ip, Some(ip(c2)));
}

#[test]
fn a_remote_access_probe_reset_by_its_client_is_low_discovery() {
    let probe = |port: u16, state: &str, t: i64| {
        let mut f = flow("192.168.0.11", "10.0.0.149", port, t, 441, 492);
        f.end_ms = t + 1_500;
        f.attrs = Default::default();
        f.attr("conn_state", state);
        f
    };
    // A VNC greeting read and the session reset by the client: one probe,
    // reported once however often it repeats in the window.
    let found = run(vec![probe(5900, "RSTO", T0), probe(5900, "RSTO", T0 + MIN)]);
    let probes: Vec<&Finding> = found
        .iter()
        .filter(|f| {
            f.evidence.facts.get("shape").and_then(|v| v.as_str()) == Some("remote-access probe")
        })
        .collect();
    assert_eq!(probes.len(), 1, "{found:?}");
    assert_eq!(probes[0].kind, cordon_core::FindingKind::ServiceDiscovery);
    assert_eq!(probes[0].severity, crate::finding::Severity::Low);
    assert_eq!(probes[0].techniques, ["T1046"]);
    assert_eq!(probes[0].port, Some(5900));
    // A session the client closed, one the server reset, a reset session
    // on a web port, or a probe from the Internet is not reported.
    for (port, state, src) in [
        (5900, "SF", "192.168.0.11"),
        (5900, "RSTR", "192.168.0.11"),
        (443, "RSTO", "192.168.0.11"),
        (22, "RSTO", "143.42.1.123"),
    ] {
        let mut f = probe(port, state, T0);
        f.src_ip = ip(src);
        let found = run(vec![f]);
        assert!(
            !found
                .iter()
                .any(|f| f.kind == cordon_core::FindingKind::ServiceDiscovery),
            "{port} {state}: {found:?}"
        );
    }
}

#[test]
fn regular_check_ins_inside_one_session_are_a_low_beacon() {
    // One QUIC session of three minutes with a check-in every 15 s, as a
    // capture reports it.
    let session = |beats: &str| {
        let mut f = flow("10.0.0.4", "24.199.110.233", 443, T0, 25_000, 29_000);
        f.source = FlowSource::Pcap;
        f.protocol = 17;
        f.end_ms = T0 + 184_000;
        f.attr("beats", beats);
        f
    };
    let regular: Vec<String> = (1..=12)
        .map(|i| (i * 15_090 + (i % 3) * 40).to_string())
        .collect();
    let found = run(vec![session(&regular.join(","))]);
    let beacon = beacons(&found);
    assert_eq!(beacon.len(), 1, "{found:?}");
    let f = beacon[0];
    assert_eq!(
        f.evidence.facts.get("shape").and_then(|v| v.as_str()),
        Some("check-ins inside one session")
    );
    assert_eq!(f.severity, crate::finding::Severity::Low);
    assert!(f.techniques.contains(&"T1573".to_string()), "{f:?}");
    // With a policy that sanctions nothing there, the pattern is corroborated.
    let found = run(vec![enriched(
        session(&regular.join(",")),
        "would-deny",
        None,
        None,
    )]);
    assert!(
        beacons(&found)
            .iter()
            .any(|f| f.severity >= crate::finding::Severity::High),
        "{found:?}"
    );
    // Irregular activity (a person typing, a page now and then), too few
    // check-ins, or a fast stream are not a beacon.
    let mut rng = Lcg(7);
    let mut t = 0u32;
    let irregular: Vec<String> = (0..20)
        .map(|_| {
            t += 1_000 + (rng.f64() * 60_000.0) as u32;
            t.to_string()
        })
        .collect();
    for beats in [
        irregular.join(","),
        regular[..4].join(","),
        (1..=100)
            .map(|i| (i * 1_100).to_string())
            .collect::<Vec<_>>()
            .join(","),
    ] {
        assert!(beacons(&run(vec![session(&beats)])).is_empty(), "{beats}");
    }
    // Announcements nobody answers are not a session.
    let mut unanswered = session(&regular.join(","));
    (unanswered.bytes_in, unanswered.packets_in) = (0, 0);
    assert!(beacons(&run(vec![unanswered])).is_empty());
}

#[test]
fn cloud_storage_reached_by_a_compromised_host_is_where_its_data_went() {
    let c2 = "45.137.21.9";
    let storage = |src: &str, name: &str, t: i64| {
        let mut f = flow(src, "13.107.42.12", 443, t, 1_800, 12_000);
        f.hostname = Some(name.to_string());
        f
    };
    // An implant checks in every minute for three hours; twenty minutes
    // in, its host uploads a few kilobytes to OneDrive and reaches a
    // news site. Another host uses OneDrive all along.
    let mut flows: Vec<Flow> = (0..180)
        .map(|i| flow("10.0.1.5", c2, 443, T0 + i * MIN, 600, 900))
        .collect();
    flows.push(storage("10.0.1.5", "d.docs.live.net", T0 + 20 * MIN));
    flows.push(storage("10.0.1.5", "d.docs.live.net", T0 + 21 * MIN));
    flows.push(storage("10.0.1.5", "www.example-news.com", T0 + 22 * MIN));
    flows.extend((0..6).map(|i| storage("10.0.1.8", "d.docs.live.net", T0 + i * 30 * MIN)));
    // Two days before the implant, the same host's OneDrive use is not
    // part of it.
    flows.push(storage("10.0.1.5", "onedrive.live.com", T0 - 48 * HOUR));
    let found = run(flows);
    assert!(
        beacons(&found)
            .iter()
            .any(|f| f.severity >= crate::finding::Severity::Medium),
        "{found:#?}"
    );
    let exfil: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == cordon_core::FindingKind::CloudExfiltration)
        .collect();
    assert_eq!(exfil.len(), 1, "{exfil:#?}");
    let f = exfil[0];
    assert_eq!(f.src_entity.ip, Some(ip("10.0.1.5")));
    assert_eq!(f.evidence.facts["storage"], "d.docs.live.net");
    assert_eq!(f.severity, crate::finding::Severity::Medium);
    assert!(f.techniques.contains(&"T1567.002".to_string()), "{f:?}");
    assert!(f.evidence.facts.contains_key("compromise_finding"));
}
