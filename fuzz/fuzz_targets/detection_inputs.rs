//! Detection inputs from outside: threat-intel feeds (plain lists and STIX
//! bundles and patterns) and detector settings files. Read or refused with
//! a reason, never a panic.
#![no_main]

use cordon_detect::config::Config;
use cordon_detect::intel::{Intel, parse_pattern};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut intel = Intel::default();
    let _ = intel.add("feed", text);
    if let Some(ip) = text.split_whitespace().next().and_then(|w| w.parse().ok()) {
        let _ = intel.match_ip(ip);
    }
    let _ = intel.match_host(text);
    let _ = parse_pattern(text);
    let _ = Config::parse("detection.yaml", text);
});
