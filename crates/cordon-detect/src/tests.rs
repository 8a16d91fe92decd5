//! The knowledge base and the detector settings.

use crate::config::Config;
use crate::detectors::{admin_protocol, c2_technique};
use crate::kb::Kb;

#[test]
fn the_knowledge_base_loads_and_every_reference_resolves() {
    let kb = Kb::embedded().unwrap();
    assert_eq!(kb.attack_version, "17.1");
    for (kind, info) in &kb.kinds {
        assert!(
            !info.techniques.is_empty() && !info.controls.is_empty(),
            "{kind}"
        );
        assert!(kb.stages.iter().any(|s| s.id == info.stage), "{kind}");
        for c in &info.controls {
            assert!(kb.controls.contains_key(&c.id), "{kind}: {}", c.id);
            assert!(!c.reason.is_empty());
        }
    }
    // Every technique a detector can emit is in the knowledge base.
    for port in 0..=u16::MAX {
        if let Some((_, t)) = admin_protocol(port) {
            assert!(kb.techniques.contains_key(t), "{t}");
        }
        for protocol in [1u8, 6, 17, 47] {
            let (t, _) = c2_technique(protocol, port);
            assert!(kb.techniques.contains_key(t), "{t}");
        }
    }
    for t in [
        "T1572",
        "T1573",
        "T1048",
        "T1030",
        "T1567.002",
        "T1537",
        "T1110.001",
        "T1110.003",
        "T1046",
        "T1199",
    ] {
        assert!(kb.techniques.contains_key(t), "{t}");
    }
    // The frameworks the incident maps to are all there.
    for c in [
        "PCI-DSS-4.0:1.3",
        "PCI-DSS-4.0:1.4",
        "PCI-DSS-4.0:10.2",
        "PCI-DSS-4.0:12.8",
        "NYDFS-500:500.11",
        "DORA:Art.28",
        "NIS2:Art.21(2)(d)",
        "CISA-ZTMM-2.0:Networks",
        "CISA-ZTMM-2.0:Data",
        "NIST-800-53:AC-4",
        "NIST-800-53:SC-7",
        "NIST-800-53:SI-4",
        "ISO-27001-2022:A.5.19",
        "ISO-27001-2022:A.5.20",
        "ISO-27001-2022:A.5.21",
        "ISO-27001-2022:A.5.22",
        "ISO-27001-2022:A.8.20",
        "ISO-27001-2022:A.8.21",
        "ISO-27001-2022:A.8.22",
    ] {
        assert!(kb.controls.contains_key(c), "{c}");
    }
    // Technique URLs follow ATT&CK's layout for sub-techniques.
    assert_eq!(
        kb.techniques["T1567.002"].url(),
        "https://attack.mitre.org/techniques/T1567/002/"
    );
}

#[test]
fn detector_settings_are_read_with_defaults_for_the_rest() {
    let c = Config::parse(
        "detection.yaml",
        "apiVersion: cordon/v1\nkind: DetectionConfig\ndetectors:\n  beaconing: {min_connections: 40, threshold: 0.9, allow: [10.9.0.0/16, '*.metrics.example']}\n  exfiltration: {min_bytes: 1GiB}\n  service-discovery: {window: 5m, enabled: false}\n",
    )
    .unwrap();
    assert_eq!(c.beaconing.min_connections, 40);
    assert_eq!(c.beaconing.threshold, 0.9);
    assert!(
        c.beaconing
            .common
            .allow
            .contains("10.9.3.4".parse().unwrap(), None)
    );
    assert!(
        c.beaconing
            .common
            .allow
            .contains("1.1.1.1".parse().unwrap(), Some("ingest.metrics.example"))
    );
    assert!(
        !c.beaconing
            .common
            .allow
            .contains("1.1.1.1".parse().unwrap(), Some("metrics.example"))
    );
    assert_eq!(c.exfiltration.min_bytes, 1 << 30);
    assert_eq!(c.scan.window, 300_000);
    assert!(!c.scan.common.enabled);
    assert_eq!(
        c.brute_force.min_attempts,
        Config::default().brute_force.min_attempts
    );
}

#[test]
fn bad_detector_settings_say_what_and_where() {
    let err = Config::parse(
        "detection.yaml",
        "apiVersion: cordon/v1\nkind: DetectionConfig\ndetectors:\n  beaconnig: {threshold: 0.9}\n  exfiltration: {min_bytes: lots, mad_factr: 3}\n  brute-force: {allow: ['**.example']}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("detection.yaml:4:3"), "{err}");
    assert!(err.contains("did you mean `beaconing`"), "{err}");
    assert!(err.contains("detection.yaml:5:29"), "{err}");
    assert!(err.contains("`min_bytes` must be a size"), "{err}");
    assert!(err.contains("did you mean `mad_factor`"), "{err}");
    assert!(err.contains("detection.yaml:6:"), "{err}");
    let err = Config::parse("d.yaml", "apiVersion: cordon/v2\nkind: Policy\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("d.yaml:1:") && err.contains("d.yaml:2:"),
        "{err}"
    );
}
