use crate::ports::{PortRange, Protocol};
use cordon_core::hostname::{FqdnPattern, Hostname, HostnameError};
use cordon_core::ip::{
    NOT_INTERNET_V4, NOT_INTERNET_V6_IN_GLOBAL, PRIVATE, is_internet, is_private, nets,
};
use cordon_core::units::{ByteSize, Window};

#[test]
fn byte_sizes_parse_and_print_canonically() {
    assert_eq!(ByteSize::parse("50MiB"), Ok(ByteSize(50 << 20)));
    assert_eq!(ByteSize::parse("1GB"), Ok(ByteSize(1_000_000_000)));
    assert_eq!(ByteSize::parse("1048576"), Ok(ByteSize(1 << 20)));
    assert_eq!(ByteSize(50 << 20).to_string(), "50MiB");
    assert_eq!(ByteSize(1_500).to_string(), "1500B");
    assert!(ByteSize::parse("99999999999TiB").is_err());
    assert!(ByteSize::parse("MiB").is_err());
    assert!(ByteSize::parse("5 parsecs").is_err());
}

#[test]
fn windows_need_a_unit() {
    assert_eq!(Window::parse("1h").map(|w| w.0.as_secs()), Ok(3600));
    assert_eq!(
        Window::parse("90m").map(|w| w.to_string()),
        Ok("90m".to_string())
    );
    assert_eq!(
        Window::parse("120m").map(|w| w.to_string()),
        Ok("2h".to_string())
    );
    assert!(Window::parse("60").is_err());
    assert!(Window::parse("1w").is_err());
}

#[test]
fn port_ranges_parse_and_match_at_their_edges() {
    let r = PortRange::parse("tcp/8000-8100").unwrap();
    assert!(r.matches(Protocol::TCP, 8000) && r.matches(Protocol::TCP, 8100));
    assert!(!r.matches(Protocol::TCP, 7999) && !r.matches(Protocol::TCP, 8101));
    assert!(!r.matches(Protocol::UDP, 8050));
    assert_eq!(r.to_string(), "tcp/8000-8100");
    assert_eq!(PortRange::parse("TCP").unwrap().to_string(), "tcp");
    assert_eq!(PortRange::parse("any").unwrap(), PortRange::ANY);
    assert!(PortRange::parse("icmp").unwrap().matches(Protocol::ICMP, 0));
    assert!(PortRange::parse("tcp/65536").is_err());
    assert!(PortRange::parse("tcp/0").is_ok());
    assert!(
        PortRange::parse("tcp/443")
            .unwrap()
            .is_within(&PortRange::parse("tcp/1-1024").unwrap())
    );
    assert!(
        !PortRange::parse("tcp")
            .unwrap()
            .is_within(&PortRange::parse("tcp/1-65535").unwrap())
    );
}

#[test]
fn hostnames_are_normalised_one_way() {
    let h = |s: &str| Hostname::parse(s).map(|h| h.to_string());
    assert_eq!(h("API.Example.COM."), Ok("api.example.com".into()));
    assert_eq!(h("bücher.example"), Ok("xn--bcher-kva.example".into()));
    assert_eq!(h("Bücher.Example"), h("xn--bcher-kva.example"));
    assert!(matches!(
        Hostname::parse("10.0.0.1"),
        Err(HostnameError::IpLiteral(_))
    ));
    assert!(matches!(
        Hostname::parse("[::1]"),
        Err(HostnameError::IpLiteral(_))
    ));
    for odd in [
        "127.1",
        "0x7f.1",
        "2130706433",
        "0177.0.0.1",
        "1.2.3.0x4",
        "a.b.123",
    ] {
        assert!(
            Hostname::parse(odd).is_err(),
            "{odd} must not be a hostname"
        );
    }
    assert!(Hostname::parse("").is_err());
    assert!(Hostname::parse(".").is_err());
    assert!(Hostname::parse("a..b").is_err());
    assert!(Hostname::parse("a b.example").is_err());
    assert!(Hostname::parse(&format!("{}.example", "a".repeat(64))).is_err());
    assert!(
        Hostname::parse(&format!("{}a", "a.".repeat(127))).is_err(),
        "longer than 253"
    );
    assert!(
        Hostname::parse(&"a.".repeat(127)).is_ok(),
        "253 with a trailing dot"
    );
    assert!(
        Hostname::parse("xn--zz.example").is_err(),
        "invalid punycode"
    );
    assert!(
        Hostname::parse("１２７.０.０.１").is_err(),
        "full-width digits map to an address"
    );
}

#[test]
fn wildcards_match_below_the_apex_at_any_depth() {
    let p = FqdnPattern::parse("*.example.com").unwrap();
    let h = |s: &str| Hostname::parse(s).unwrap();
    assert!(p.matches(&h("a.example.com")));
    assert!(p.matches(&h("a.b.c.example.com")));
    assert!(!p.matches(&h("example.com")));
    assert!(!p.matches(&h("badexample.com")));
    assert!(!p.matches(&h("example.com.evil")));
    for bad in ["*", "*.", "**.x", "a.*.b", "*x.com", "*.*.com", "x.*"] {
        assert!(FqdnPattern::parse(bad).is_err(), "{bad} must be refused");
    }
}

#[test]
fn special_ranges_are_valid_and_classify_addresses() {
    for list in [NOT_INTERNET_V4, NOT_INTERNET_V6_IN_GLOBAL, PRIVATE] {
        assert_eq!(nets(list).len(), list.len(), "every constant range parses");
    }
    let ip = |s: &str| s.parse().unwrap();
    assert!(is_internet(ip("8.8.8.8")));
    assert!(is_internet(ip("2606:4700::1111")));
    for not in [
        "10.1.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "192.0.2.1",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "fe80::1",
        "fd00::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",
    ] {
        assert!(!is_internet(ip(not)), "{not} is not internet");
    }
    assert!(
        is_private(ip("172.16.0.1"))
            && is_private(ip("fd12::1"))
            && is_private(ip("::ffff:192.168.0.1"))
    );
    assert!(!is_private(ip("8.8.8.8")));
}
