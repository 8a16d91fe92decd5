//! What a TAXII peer sends: posted objects (checked one by one), `Accept`
//! and `Content-Type` headers, query strings with `next` tokens, and the
//! timestamps in all of them. Checked or refused with a reason, never a
//! panic; a token is only ever accepted for the query it was made for.
#![no_main]

use cordon_server::taxii::params::{Endpoint, Params};
use cordon_store::exchange::Cursor;
use cordon_taxii::media::{accepts_taxii, is_taxii_body};
use cordon_taxii::object::{check, timestamp};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzzing-key-fuzzing-key-fuzzing-";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let objects = value
            .get("objects")
            .and_then(|o| o.as_array())
            .cloned()
            .unwrap_or_else(|| vec![value.clone()]);
        for o in &objects {
            if let Ok(kept) = check(o) {
                assert!(kept.id.starts_with(&kept.kind));
            }
        }
    }
    let _ = accepts_taxii(Some(text));
    let _ = is_taxii_body(Some(text));
    let _ = timestamp(text);
    for endpoint in [
        Endpoint::Objects,
        Endpoint::Object,
        Endpoint::Delete,
        Endpoint::Versions,
    ] {
        let Ok(params) = Params::parse(Some(text), endpoint) else {
            continue;
        };
        if let Ok(Some(cursor)) = params.cursor(KEY, "objects intel") {
            // Only a token this key made decodes: it must round-trip.
            assert_eq!(
                params.token(KEY, "objects intel", cursor).len(),
                params.next.as_deref().map_or(0, |n| n.trim().len())
            );
        }
        let token = params.token(
            KEY,
            "objects intel",
            Cursor {
                date_added_us: 1,
                seq: 2,
            },
        );
        assert!(!token.is_empty());
    }
});
