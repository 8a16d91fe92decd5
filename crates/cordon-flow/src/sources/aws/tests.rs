use super::AwsDecoder;
use crate::flow::{Direction, Observed};
use crate::read::SkipReason;
use crate::sources::LineDecoder;

const SAMPLE: &str = include_str!("../../../samples/aws_vpc_v2_default.log");

#[test]
fn the_documented_default_format_sample() {
    let mut d = AwsDecoder::default();
    let mut flows = Vec::new();
    let mut skipped = Vec::new();
    for line in SAMPLE.lines() {
        if let Err(s) = d.line(line, &mut flows) {
            skipped.push(s.reason);
        }
    }
    assert_eq!(skipped, [SkipReason::NoData, SkipReason::SkipData]);
    assert_eq!(flows.len(), 2);
    let f = &flows[0];
    assert_eq!(f.src_ip.to_string(), "172.31.16.139");
    assert_eq!((f.src_port, f.dst_port, f.protocol), (20641, 22, 6));
    assert_eq!((f.packets_out, f.bytes_out), (20, 4249));
    assert_eq!(
        (f.start_ms, f.end_ms),
        (1_418_530_010_000, 1_418_530_070_000)
    );
    assert_eq!(f.observed, Some(Observed::Accepted));
    assert_eq!(f.get_attr("interface_id"), Some("eni-1235b8ca123456789"));
    assert_eq!(flows[1].observed, Some(Observed::Rejected));
}

#[test]
fn a_header_line_sets_a_custom_field_order() {
    let mut d = AwsDecoder::default();
    let mut flows = Vec::new();
    let header = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status flow-direction traffic-path";
    assert_eq!(
        d.line(header, &mut flows).unwrap_err().reason,
        SkipReason::NotAFlow
    );
    d.line("5 vpc-0a1 subnet-0b2 i-0c3 eni-0d4 123456789012 IPv4 10.0.1.5 52.95.1.2 40123 443 10.0.1.5 52.95.1.2 6 52000 40 1700000000 1700000060 ACCEPT 19 OK egress 8", &mut flows).unwrap();
    let f = &flows[0];
    assert_eq!(f.dst_port, 443);
    assert_eq!(f.bytes_out, 52000);
    assert_eq!(f.direction, Some(Direction::Egress));
    assert_eq!(f.get_attr("tcp_flags"), Some("19"));
    assert_eq!(f.get_attr("traffic_path"), Some("8"));
    assert_eq!(f.get_attr("pkt_dstaddr"), Some("52.95.1.2"));
    assert_eq!(f.get_attr("vpc_id"), Some("vpc-0a1"));
}

#[test]
fn placeholders_and_bad_records() {
    let mut d = AwsDecoder::default();
    let mut flows = Vec::new();
    // ICMP: no ports.
    d.line(
        "2 1 eni-1 10.0.0.1 10.0.0.2 - - 1 3 252 1 2 ACCEPT OK",
        &mut flows,
    )
    .unwrap();
    assert_eq!((flows[0].src_port, flows[0].dst_port), (0, 0));
    for bad in [
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 252 1 2 ACCEPT",
        "2 1 eni-1 10.0.0.999 10.0.0.2 1 2 6 3 252 1 2 ACCEPT OK",
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 99999 6 3 252 1 2 ACCEPT OK",
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 -5 1 2 ACCEPT OK",
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 3 252 1 2 MAYBE OK",
        "\u{0}\u{1}garbage",
    ] {
        let err = d.line(bad, &mut flows).unwrap_err();
        assert_eq!(err.reason, SkipReason::Malformed, "{bad}");
    }
    assert_eq!(flows.len(), 1);
}
