use super::HubbleDecoder;
use crate::flow::Observed;
use crate::read::SkipReason;
use crate::sources::LineDecoder;

#[test]
fn the_documented_export_sample() {
    let mut flows = Vec::new();
    for line in include_str!("../../../samples/hubble_export.jsonl").lines() {
        HubbleDecoder.line(line, &mut flows).unwrap();
    }
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0].protocol, 58);
    assert_eq!(flows[0].dst_port, 133, "ICMPv6 type");
    let tcp = &flows[1];
    assert_eq!(
        (tcp.src_ip.to_string().as_str(), tcp.dst_port),
        ("10.244.1.60", 80)
    );
    assert_eq!(tcp.observed, Some(Observed::Rejected));
    assert_eq!(tcp.get_attr("src_pod_name"), Some("xwing"));
    assert_eq!(tcp.get_attr("drop_reason_desc"), Some("POLICY_DENIED"));
    assert_eq!(tcp.start_ms, 1_692_619_938_510);
}

#[test]
fn replies_are_turned_around_and_non_flows_skipped() {
    let mut flows = Vec::new();
    HubbleDecoder
        .line(r#"{"flow":{"time":"2023-08-21T12:12:18Z","verdict":"FORWARDED","is_reply":true,"IP":{"source":"10.0.0.2","destination":"10.0.0.1"},"l4":{"TCP":{"source_port":80,"destination_port":40000}},"destination_names":["api.example."]}}"#, &mut flows)
        .unwrap();
    assert_eq!(
        (flows[0].src_ip.to_string().as_str(), flows[0].dst_port),
        ("10.0.0.1", 80)
    );
    assert_eq!(flows[0].hostname.as_deref(), Some("api.example"));
    let err = HubbleDecoder
        .line(r#"{"lost_events":{"num_events_lost":3}}"#, &mut flows)
        .unwrap_err();
    assert_eq!(err.reason, SkipReason::NotAFlow);
    assert_eq!(
        HubbleDecoder.line("{", &mut flows).unwrap_err().reason,
        SkipReason::Malformed
    );
}
