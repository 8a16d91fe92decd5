use super::AzureDecoder;
use crate::flow::{Direction, Observed};
use crate::read::{Location, Report, SkipReason};
use crate::sources::DocumentDecoder;

fn run(text: &str) -> (Vec<crate::flow::Flow>, Report) {
    let at = Location {
        file: "azure.json".into(),
        line: None,
        offset: 0,
        within: None,
    };
    let mut flows = Vec::new();
    let mut report = Report::default();
    AzureDecoder.document(text, &at, &mut report, &mut |_, f| flows.extend(f));
    (flows, report)
}

#[test]
fn nsg_version_2_sample() {
    let (flows, report) = run(include_str!("../../../samples/azure_nsg_flowlog_v2.json"));
    assert!(flows.len() >= 3, "{report:?}");
    assert_eq!(report.skipped_total(), 0, "{report:?}");
    let f = &flows[0];
    assert_eq!(f.src_ip.to_string(), "192.0.2.190");
    assert_eq!((f.src_port, f.dst_port, f.protocol), (28746, 443, 17));
    assert_eq!(f.start_ms, 1_542_110_402_000);
    assert_eq!(f.direction, Some(Direction::Ingress));
    assert_eq!(f.observed, Some(Observed::Rejected));
    assert_eq!(f.get_attr("rule"), Some("DefaultRule_DenyAllInBound"));
    assert_eq!(f.get_attr("flow_state"), Some("B"));
    assert_eq!(f.bytes_out, 0, "B tuples carry no counts");
    assert!(
        flows.iter().any(|f| f.bytes_out > 0 || f.bytes_in > 0),
        "C/E tuples carry counts"
    );
}

#[test]
fn vnet_version_4_sample_in_milliseconds() {
    let (flows, report) = run(include_str!("../../../samples/azure_vnet_flowlog_v4.json"));
    assert_eq!(report.skipped_total(), 0, "{report:?}");
    let end = flows
        .iter()
        .find(|f| f.get_attr("flow_state") == Some("E"))
        .unwrap();
    assert_eq!(end.start_ms, 1_663_146_003_606);
    assert_eq!(
        (end.packets_out, end.bytes_out, end.packets_in, end.bytes_in),
        (3, 767, 2, 1580)
    );
    assert_eq!(end.direction, Some(Direction::Egress));
    assert_eq!(end.get_attr("encryption"), Some("NX"));
}

#[test]
fn bad_tuples_are_located_and_the_rest_kept() {
    let doc = r#"{"records": [{"flowLogVersion": 4, "flowRecords": {"flows": [{"flowGroups": [{"rule": "r", "flowTuples": [
        "1663146003,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580",
        "1663146003,10.0.0.6,not-an-ip,23956,443,6,O,E,NX,3,767,2,1580",
        "short,tuple",
        "1663146003,10.0.0.6,52.239.184.180,23956,443,6,X,E,NX,3,767,2,1580"
    ]}]}]}}]}"#;
    let (flows, report) = run(doc);
    assert_eq!(flows.len(), 1);
    assert_eq!(
        flows[0].start_ms, 1_663_146_003_000,
        "seconds are accepted too"
    );
    let bad = &report.skipped[&SkipReason::Malformed];
    assert_eq!(bad.count, 3);
    assert!(
        bad.examples[0].starts_with("azure.json@0 (record 1 tuple 2)"),
        "{:?}",
        bad.examples
    );
    let (_, report) = run("{\"records\": [");
    assert_eq!(report.skipped[&SkipReason::Malformed].count, 1);
}

/// Records one per line, as Event Hubs and SIEM exports deliver them, read
/// the same as the document that holds them.
#[test]
fn one_record_per_line_reads_like_the_document() {
    let document = include_str!("../../../samples/azure_nsg_flowlog_v2.json");
    let (whole, _) = run(document);
    let doc: serde_json::Value = serde_json::from_str(document).unwrap();
    let lines: Vec<String> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let (flows, report) = run(&lines.join("\n"));
    assert_eq!(report.skipped_total(), 0, "{report:?}");
    assert_eq!(flows, whole);
    // Two documents one after the other: both read.
    let (twice, _) = run(&format!("{document}\n{document}"));
    assert_eq!(twice.len(), 2 * whole.len());
    // Something else on a line is counted, not a flow; a syntax error stops.
    let (_, report) = run(&format!("{}\n{{\"hello\": 1}}\n", lines[0]));
    assert_eq!(report.skipped[&SkipReason::NotAFlow].count, 1);
    let (_, report) = run(&format!("{}\n{{\"oops\"", lines[0]));
    assert_eq!(report.skipped[&SkipReason::Malformed].count, 1);
}
