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
