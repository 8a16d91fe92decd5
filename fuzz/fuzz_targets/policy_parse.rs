//! Any bytes given as a policy file: an error or a policy, never a panic;
//! a valid policy compiles, decides, lints, and formats to text that parses
//! back to the same policy.
#![no_main]

use std::sync::Arc;

use cordon_policy::{CompiledPolicy, Endpoint, LoadOptions, Protocol, Request, parse_policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = parse_policy("fuzz.yaml", text, &LoadOptions::default()) else {
        return;
    };
    let formatted = cordon_policy::fmt::format_policy(&policy.raw);
    let again = parse_policy("fuzz.yaml", &formatted, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("formatted policy does not parse: {e}\n{formatted}"));
    assert!(again.raw == policy.raw, "formatting changed the policy");
    let _ = cordon_policy::lint::lint(&policy);
    let compiled = CompiledPolicy::new(Arc::new(policy));
    for ip in ["10.0.0.1", "8.8.8.8", "fd00::1"] {
        let request = Request {
            src: Endpoint::ip(ip.parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into())),
            dst: Endpoint::default(),
            protocol: Protocol::TCP,
            port: 443,
        };
        let _ = compiled.evaluate(&request);
    }
});
