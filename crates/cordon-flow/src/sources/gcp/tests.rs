use super::GcpDecoder;
use crate::flow::Direction;
use crate::read::{Location, Report, SkipReason};
use crate::sources::{DocumentDecoder, LineDecoder};

const SAMPLE: &str = include_str!("../../../samples/gcp_vpc_flow_entry.json");

fn at() -> Location {
    Location {
        file: "gcp.json".into(),
        line: None,
        offset: 0,
        within: None,
    }
}

#[test]
fn the_documented_entry_pretty_printed() {
    let mut flows = Vec::new();
    let mut report = Report::default();
    GcpDecoder.document(SAMPLE, &at(), &mut report, &mut |_, f| flows.extend(f));
    assert_eq!(report.records, 1);
    assert_eq!(flows.len(), 1);
    let f = &flows[0];
    assert_eq!(f.src_ip.to_string(), "10.128.0.14");
    assert_eq!(f.dst_ip.to_string(), "10.128.0.22");
    assert_eq!((f.src_port, f.dst_port, f.protocol), (48732, 5432, 6));
    assert_eq!((f.bytes_out, f.packets_out), (48213, 61));
    assert_eq!(f.start_ms, 1_770_282_842_118);
    assert_eq!(f.end_ms, 1_770_282_847_902);
    assert_eq!(f.direction, Some(Direction::Egress));
    assert_eq!(f.get_attr("src_vm"), Some("api-1"));
    assert_eq!(f.get_attr("dst_subnet"), Some("data"));
}

#[test]
fn arrays_and_json_lines() {
    let one: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
    let line = serde_json::to_string(&one).unwrap();
    let array = format!(
        "[{line},{line},{{\"jsonPayload\": {{\"connection\": {{\"src_ip\": \"nope\"}}}}}}]"
    );
    let mut flows = Vec::new();
    let mut report = Report::default();
    GcpDecoder.document(&array, &at(), &mut report, &mut |_, f| flows.extend(f));
    assert_eq!((report.records, flows.len()), (3, 2));
    assert_eq!(report.skipped[&SkipReason::Malformed].count, 1);

    let mut out = Vec::new();
    GcpDecoder.line(&line, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert!(
        GcpDecoder
            .line("{\"textPayload\": \"hello\"}", &mut out)
            .is_err()
    );
    assert!(
        GcpDecoder.line(&"[".repeat(100_000), &mut out).is_err(),
        "deep nesting is refused"
    );
}

#[test]
fn a_syntax_error_is_located_and_stops_the_document() {
    let mut report = Report::default();
    let mut n = 0;
    GcpDecoder.document("{\"a\": 1}\n{\"b\": ", &at(), &mut report, &mut |_, _| {
        n += 1
    });
    assert_eq!(n, 0);
    let skips = &report.skipped[&SkipReason::Malformed];
    assert!(
        skips.examples[0].contains("gcp.json@8 (line 2 column 6)"),
        "{:?}",
        skips.examples
    );
}
