use super::{ZeekJsonDecoder, ZeekTsvDecoder, decimal_seconds_ms, seconds_ms};
use crate::flow::{Flow, Observed};
use crate::read::SkipReason;
use crate::sources::LineDecoder;

/// A conn.log as Zeek writes it (fields from the Zeek documentation), with
/// an extra trailing column as labelled datasets add.
const TSV: &str = "#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#open\t2026-02-05-09-00-00
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\tlabel
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\tstring
1770282842.118403\tCHhAvVGS1DHFjwGM9\t10.0.4.10\t49152\t198.51.100.25\t587\ttcp\tsmtp\t2.503122\t1200\t340\tSF\tT\tF\t0\tShADadfF\t12\t1824\t10\t860\t(empty)\tbenign
1770282843.5\tC4J4Th3PJpwUYZZ6gc\t10.0.4.10\t49153\t10.0.2.10\t22\ttcp\t-\t-\t-\t-\tREJ\tT\tT\t0\tSr\t1\t60\t1\t40\t(empty)\tmalicious
1770282844\tCmES5u32sYpV7JYN\t10.0.0.2\t-\t10.0.0.3\t-\ticmp\t-\t0.001\t64\t64\tOTH\tT\tT\t0\t-\t1\t92\t1\t92\t(empty)\t-
#close\t2026-02-05-10-00-00
";

#[test]
fn tsv_with_headers_unset_fields_and_extra_columns() {
    let mut d = ZeekTsvDecoder::default();
    let mut flows = Vec::new();
    let mut headers = 0;
    for line in TSV.lines() {
        match d.line(line, &mut flows) {
            Ok(()) => {}
            Err(s) if s.reason == SkipReason::NotAFlow => headers += 1,
            Err(s) => panic!("{line}: {s:?}"),
        }
    }
    assert_eq!((flows.len(), headers), (3, 9));
    let smtp = &flows[0];
    assert_eq!(smtp.start_ms, 1_770_282_842_118);
    assert_eq!(smtp.end_ms, 1_770_282_844_621);
    assert_eq!(
        (smtp.bytes_out, smtp.bytes_in),
        (1824, 860),
        "IP-level bytes"
    );
    // Payload counts are not kept beside the IP-level ones: they would be
    // two more unique strings per stored flow.
    assert_eq!(smtp.get_attr("orig_bytes"), None);
    assert_eq!(smtp.get_attr("service"), Some("smtp"));
    let rej = &flows[1];
    assert_eq!(rej.observed, Some(Observed::Rejected));
    assert_eq!(rej.end_ms, rej.start_ms, "unset duration");
    assert_eq!(flows[2].protocol, 1);
}

#[test]
fn tsv_relative_timestamps_from_lab_captures() {
    let mut d = ZeekTsvDecoder::default();
    let mut flows = Vec::new();
    d.line("0.000123\tC1\t192.168.1.2\t1\t192.168.1.3\t80\ttcp\thttp\t0.5\t10\t20\tSF\t-\t-\t0\tSh\t1\t50\t1\t60\t(empty)", &mut flows).unwrap();
    assert_eq!(flows[0].start_ms, 0);
}

#[test]
fn tsv_bad_lines() {
    let mut d = ZeekTsvDecoder::default();
    let mut flows = Vec::new();
    for bad in [
        "x\tC1\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\t-\t-\t-\t-\tSF",
        "1.0\tC1\t10.0.0.999\t1\t10.0.0.2\t2\ttcp\t-\t-\t-\t-\tSF",
        "1.0\tC1\t10.0.0.1\t1\t10.0.0.2\t2\tbogus\t-\t-\t-\t-\tSF",
        "1.0\tC1",
        "nan\tC1\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\t-\t-\t-\t-\tSF",
        "1e300\tC1\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\t-\t-\t-\t-\tSF",
    ] {
        assert_eq!(
            d.line(bad, &mut flows).unwrap_err().reason,
            SkipReason::Malformed,
            "{bad}"
        );
    }
}

#[test]
fn json_lines() {
    let mut d = ZeekJsonDecoder;
    let mut flows = Vec::new();
    d.line(r#"{"ts":1770282842.5,"uid":"C1","id.orig_h":"10.0.4.10","id.orig_p":49152,"id.resp_h":"52.95.1.2","id.resp_p":443,"proto":"tcp","service":"ssl","duration":1.25,"orig_bytes":5000,"resp_bytes":700,"conn_state":"SF","orig_pkts":9,"resp_pkts":7}"#, &mut flows).unwrap();
    d.line(r#"{"ts":"2026-02-05T09:14:02.500Z","uid":"C2","id.orig_h":"10.0.4.10","id.orig_p":1,"id.resp_h":"10.0.2.10","id.resp_p":22,"proto":"tcp","conn_state":"REJ"}"#, &mut flows).unwrap();
    assert_eq!(
        flows[0].bytes_out, 5000,
        "payload bytes when IP bytes are absent"
    );
    assert_eq!(flows[0].end_ms - flows[0].start_ms, 1250);
    assert_eq!(flows[1].start_ms, 1_770_282_842_500);
    assert!(d.line("[1,2]", &mut flows).is_err());
    assert!(d.line(r#"{"ts":1}"#, &mut flows).is_err());
}

/// The same connection as Zeek writes it, with keys flattened the way
/// shippers write them (and `@stream`/`@system` tags beside), and nested.
#[test]
fn json_with_dotted_flattened_and_nested_keys_reads_the_same() {
    let dotted = r#"{"ts":1588205199.827696,"uid":"CJ21","id.orig_h":"10.0.1.6","id.orig_p":56880,"id.resp_h":"10.0.0.4","id.resp_p":445,"proto":"tcp","service":"smb","duration":10.76,"orig_bytes":4020,"resp_bytes":1681,"conn_state":"RSTO","history":"ShADdaR","orig_pkts":12,"orig_ip_bytes":1307,"resp_pkts":11,"resp_ip_bytes":2133}"#;
    let flattened = r#"{"@stream":"conn","@system":"bobs.bigwheel.local","@proc":"zeek","ts":1588205199.827696,"uid":"CJ21","id_orig_h":"10.0.1.6","id_orig_p":56880,"id_resp_h":"10.0.0.4","id_resp_p":445,"proto":"tcp","service":"smb","duration":10.76,"orig_bytes":4020,"resp_bytes":1681,"conn_state":"RSTO","history":"ShADdaR","orig_pkts":12,"orig_ip_bytes":1307,"resp_pkts":11,"resp_ip_bytes":2133}"#;
    let nested = r#"{"ts":1588205199.827696,"uid":"CJ21","id":{"orig_h":"10.0.1.6","orig_p":56880,"resp_h":"10.0.0.4","resp_p":445},"proto":"tcp","service":"smb","duration":10.76,"orig_bytes":4020,"resp_bytes":1681,"conn_state":"RSTO","history":"ShADdaR","orig_pkts":12,"orig_ip_bytes":1307,"resp_pkts":11,"resp_ip_bytes":2133}"#;
    let mut read = Vec::new();
    for line in [dotted, flattened, nested] {
        assert_eq!(
            crate::Format::detect(line.as_bytes()),
            Some(crate::Format::ZeekJson),
            "{line}"
        );
        let mut out = Vec::new();
        ZeekJsonDecoder.line(line, &mut out).unwrap();
        read.push(out.remove(0));
    }
    assert_eq!(read[0], read[1]);
    assert_eq!(read[0], read[2]);
    let f = &read[0];
    assert_eq!((f.src_port, f.dst_port, f.protocol), (56880, 445, 6));
    assert_eq!((f.bytes_out, f.bytes_in), (1307, 2133));
    assert_eq!(f.get_attr("conn_state"), Some("RSTO"));
    // Other logs of a tagged stream are not flows.
    let dns = r#"{"@stream":"dns","ts":1588205199.8,"uid":"C1","id_orig_h":"10.0.1.6","id_orig_p":5,"id_resp_h":"10.0.0.4","id_resp_p":53,"proto":"udp","query":"x"}"#;
    let skip = ZeekJsonDecoder.line(dns, &mut Vec::new()).unwrap_err();
    assert_eq!(skip.reason, SkipReason::NotAFlow);
}

/// Other Zeek logs (ssl, dns) are Zeek, not connections: their records are
/// counted as not flows, not as malformed. Snapshots of open connections
/// are read, marked as snapshots.
#[test]
fn logs_other_than_conn_are_not_flows() {
    let ssl = "#separator \\x09\n#path\tssl\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tversion\n1.0\tC1\t10.0.0.1\t5\t10.0.0.2\t443\tTLSv13\n";
    let mut d = ZeekTsvDecoder::default();
    let mut flows = Vec::new();
    let mut not_flows = 0;
    for line in ssl.lines() {
        match d.line(line, &mut flows) {
            Err(s) if s.reason == SkipReason::NotAFlow => not_flows += 1,
            other => panic!("{line}: {other:?}"),
        }
    }
    assert_eq!((flows.len(), not_flows), (0, 4));
    let conn = TSV.replace("#path\tconn", "#path\topen_conn");
    let mut d = ZeekTsvDecoder::default();
    for line in conn.lines() {
        let _ = d.line(line, &mut flows);
    }
    assert!(!flows.is_empty());
    assert!(flows.iter().all(Flow::is_snapshot), "{flows:?}");
    let mut plain = Vec::new();
    let mut d = ZeekTsvDecoder::default();
    for line in TSV.lines() {
        let _ = d.line(line, &mut plain);
    }
    assert!(!plain.iter().any(Flow::is_snapshot));
    let json = r#"{"_path":"open_conn","ts":1713470872.4,"uid":"C3","id.orig_h":"73.54.23.243","id.orig_p":56394,"id.resp_h":"64.225.56.201","id.resp_p":22,"proto":"tcp","duration":144001.1,"orig_bytes":151443,"resp_bytes":603466,"conn_state":"S1"}"#;
    let mut out = Vec::new();
    ZeekJsonDecoder.line(json, &mut out).unwrap();
    assert!(out[0].is_snapshot());
    assert!(out[0].end_ms - out[0].start_ms >= 144_000_000);
}

#[test]
fn decimal_seconds_read_exactly_like_the_float_path() {
    for (v, ms) in [
        ("1700000000.000000", 1_700_000_000_000),
        ("1588205199.827696", 1_588_205_199_828),
        ("3.769", 3_769),
        ("0.0004", 0),
        ("0.0005", 1),
        ("12", 12_000),
        ("7.", 7_000),
    ] {
        assert_eq!(decimal_seconds_ms(v), Some(ms), "{v}");
        assert_eq!(seconds_ms("ts", v).unwrap(), ms, "{v}");
    }
    for v in [
        "",
        ".5",
        "-1.0",
        "1e3",
        " 1.0",
        "1.0 ",
        "99999999999999.0",
        "1.2.3",
    ] {
        assert_eq!(decimal_seconds_ms(v), None, "{v}");
    }
    // What the fast path declines, the float path still reads or refuses.
    assert_eq!(seconds_ms("duration", "1e3").unwrap(), 1_000_000);
    assert!(seconds_ms("duration", "-1.0").is_err());
}
