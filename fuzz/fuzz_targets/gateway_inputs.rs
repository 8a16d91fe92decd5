//! What gateway clients send before any decision: TLS ClientHellos (read
//! for their server name), CONNECT and Host targets, proxy tokens and token
//! files. Parsed or refused with a reason, never a panic; a parsed target
//! always prints back in its one canonical spelling.
#![no_main]

use cordon_gateway::identity::Tokens;
use cordon_gateway::sni;
use cordon_gateway::target::parse_authority;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sni::parse(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for default_port in [None, Some(80)] {
        if let Ok(target) = parse_authority(text, default_port) {
            let again = parse_authority(&target.to_string(), None);
            assert_eq!(again.as_ref(), Ok(&target), "{text:?}");
        }
    }
    if let Ok(tokens) = Tokens::parse("tokens", text) {
        let _ = tokens.identify("127.0.0.1".parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()), text);
    }
});
