use super::*;

use proptest::prelude::*;

#[test]
fn addresses_read_like_the_standard_parser() {
    for (text, ok) in [
        ("10.0.0.1", true),
        ("255.255.255.255", true),
        ("0.0.0.0", true),
        ("256.0.0.1", false),
        ("01.2.3.4", false),
        ("1.2.3", false),
        ("1.2.3.4.5", false),
        ("1..3.4", false),
        ("0x7f.0.0.1", false),
        ("2130706433", false),
        (" 10.0.0.1", true),
        ("::ffff:10.0.0.1", true),
        ("2001:db8::1", true),
    ] {
        assert_eq!(parse_ip("a", text).is_ok(), ok, "{text}");
    }
    // IPv4-mapped IPv6 is the IPv4 address, as in the policy engine.
    assert_eq!(
        parse_ip("a", "::ffff:10.0.0.1").unwrap(),
        "10.0.0.1".parse::<IpAddr>().unwrap()
    );
}

proptest! {
    #[test]
    fn the_quick_ipv4_path_agrees_with_the_standard_parser(s in "[0-9.]{0,18}") {
        let ours = parse_ip("a", &s).ok();
        let std = s.parse::<IpAddr>().ok().map(cordon_core::canonical_ip);
        prop_assert_eq!(ours, std);
    }
}

/// An input of which not one record has the format's shape is an error
/// that names the file, the format and what was found, never a silent
/// `0 records, 0 flows`; an input with some good records is read.
#[test]
fn an_input_with_no_recognised_record_is_an_error() {
    use crate::input::{InputError, ReadError, ReadOptions, read_flows};
    let read = |text: &str, format| {
        let options = ReadOptions {
            format: Some(format),
            ..ReadOptions::default()
        };
        read_flows(
            "odd.log",
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            &options,
            &mut |_, f| {
                f.clear();
                Ok::<_, std::convert::Infallible>(())
            },
        )
    };
    let err = read("{\"a\": 1}\n{\"b\": 2}\n", crate::Format::ZeekJson).unwrap_err();
    let ReadError::Input(e @ InputError::NothingRecognised { .. }) = err else {
        panic!("{err}")
    };
    let text = e.to_string();
    assert!(
        text.contains("odd.log") && text.contains("zeek-json") && text.contains("missing"),
        "{text}"
    );
    let aws =
        "2 1 eni-1 10.0.1.10 10.0.2.10 40001 5432 6 10 1000 1700000000 1700000060 ACCEPT OK\n";
    let report = read(&format!("garbage\n{aws}"), crate::Format::Aws).unwrap();
    assert_eq!((report.records, report.flows), (2, 1));
    // Records that are valid but carry no flow (AWS NODATA) are not errors.
    let nodata = "2 1 eni-1 - - - - - - - 1700000000 1700000060 - NODATA\n";
    assert_eq!(read(nodata, crate::Format::Aws).unwrap().flows, 0);
}
