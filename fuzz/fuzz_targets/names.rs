//! Hostnames, FQDN patterns, ports, CIDRs and sizes from arbitrary text:
//! parsed or refused, never a panic; what parses is normalised stably.
#![no_main]

use cordon_policy::{FqdnPattern, Hostname, PortRange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(host) = Hostname::parse(text) {
        let again = Hostname::parse(host.as_str()).expect("a normalised name parses");
        assert_eq!(again, host);
    }
    if let Ok(pattern) = FqdnPattern::parse(text) {
        let again = FqdnPattern::parse(&pattern.to_string()).expect("a normalised pattern parses");
        assert_eq!(again, pattern);
    }
    if let Ok(range) = PortRange::parse(text) {
        assert_eq!(PortRange::parse(&range.to_string()).ok(), Some(range));
    }
    let _ = cordon_core::units::ByteSize::parse(text);
    let _ = cordon_core::units::Window::parse(text);
});
