use super::CordonDecoder;
use crate::flow::{Flow, FlowSource};
use crate::sources::LineDecoder;

#[test]
fn records_round_trip() {
    let mut f = Flow::new(
        FlowSource::Gateway,
        "10.0.4.10".parse().unwrap(),
        "52.95.1.2".parse().unwrap(),
        6,
    );
    f.dst_port = 443;
    f.hostname = Some("exfil.s3.amazonaws.com".into());
    f.attr("conn_id", "g-1");
    let line = serde_json::to_string(&f).unwrap();
    let mut out = Vec::new();
    CordonDecoder.line(&line, &mut out).unwrap();
    assert_eq!(out, [f]);
    assert!(CordonDecoder.line(r#"{"start_ms": 1}"#, &mut out).is_err());
}

#[test]
fn gateway_close_records_are_flows_and_decision_records_are_skipped() {
    use super::gateway::{GatewayEvent, GatewayRecord};
    let mut flow = Flow::new(
        FlowSource::Gateway,
        "127.0.0.1".parse().unwrap(),
        "127.0.0.2".parse().unwrap(),
        6,
    );
    flow.dst_port = 8443;
    flow.bytes_out = 120;
    flow.hostname = Some("api.vendor.test".into());
    let mut record = GatewayRecord {
        event: GatewayEvent::Decision,
        conn_id: "g-1-1".into(),
        mode: "connect".into(),
        flow,
        identity: Some("notifier".into()),
        identity_source: "address".into(),
        src_groups: vec!["notifier".into()],
        dst_groups: vec!["vendor".into()],
        requested: "api.vendor.test:8443".into(),
        sni: None,
        verdict: cordon_core::Verdict::Allow,
        rule: Some("notifier-to-vendor".into()),
        reason: "rule".into(),
        detail: String::new(),
        dns_ms: Some(0.1),
        connect_ms: Some(0.2),
        status: 200,
        duration_ms: None,
    };
    let mut out = Vec::new();
    let line = serde_json::to_string(&record).unwrap();
    let skip = CordonDecoder.line(&line, &mut out).unwrap_err();
    assert!(skip.detail.contains("decision record"), "{}", skip.detail);
    record.event = GatewayEvent::Close;
    record.duration_ms = Some(5);
    CordonDecoder
        .line(&serde_json::to_string(&record).unwrap(), &mut out)
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].bytes_out, 120);
    assert_eq!(out[0].get_attr("rule"), Some("notifier-to-vendor"));
    assert_eq!(out[0].get_attr("conn_id"), Some("g-1-1"));
    assert_eq!(out[0].hostname.as_deref(), Some("api.vendor.test"));
}

#[test]
fn orientation_round_trips_and_the_old_attribute_is_read() {
    let mut f = Flow::new(
        FlowSource::Aws,
        "10.0.1.10".parse().unwrap(),
        "10.0.2.10".parse().unwrap(),
        6,
    );
    f.orientation = crate::flow::Orientation::Reversed;
    f.attr("tcp_flags", "18");
    let line = serde_json::to_string(&f).unwrap();
    assert!(line.contains(r#""orientation":"reversed""#), "{line}");
    let mut out = Vec::new();
    CordonDecoder.line(&line, &mut out).unwrap();
    assert_eq!(out, [f.clone()]);
    // As records written before orientation was a field carry it.
    let old = line.replace(r#""orientation":"reversed","#, "").replace(
        r#"["tcp_flags","18"]"#,
        r#"["tcp_flags","18"],["oriented","reply"]"#,
    );
    assert!(old.contains("oriented"), "{old}");
    out.clear();
    CordonDecoder.line(&old, &mut out).unwrap();
    assert_eq!(out, [f]);
}
