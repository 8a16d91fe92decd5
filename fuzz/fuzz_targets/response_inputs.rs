//! What responses read from files people and tools write: the responses
//! document (YAML or JSON) and response playbooks. Refused with a located
//! error or read, never a panic; a document that reads renders back to a
//! document that reads the same.
#![no_main]

use cordon_response::{Playbook, Responses};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(doc) = Responses::parse("fuzz.yaml", text) {
        for json in [false, true] {
            let again = Responses::parse("again", &doc.render(json));
            assert!(again.as_ref().is_ok_and(|a| *a == doc), "{again:?}");
        }
        let _ = doc.next_expiry(0);
    }
    let _ = Playbook::parse("fuzz.yaml", text);
    let _ = cordon_response::document::parse_limit(text);
    let _ = cordon_response::Peer::parse(text);
});
