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
