//! What reaches the server from outside before any store access: the flow
//! filter language of the API and the console, page cursors, cookies, and
//! token files. Parsed or refused with a reason, never a panic.
#![no_main]

use cordon_server::api::decode_cursor;
use cordon_server::auth::Tokens;
use cordon_server::{cookie, filter};
use cordon_store::FlowQuery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut query = FlowQuery::default();
    if filter::apply(text, &mut query).is_err() {
        // A refused filter says why; nothing else to check.
    }
    let _ = decode_cursor(text);
    if let Ok(value) = axum::http::HeaderValue::from_str(text) {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(axum::http::header::COOKIE, value);
        let _ = cookie(&headers, "cordon_session");
    }
    if let Ok(tokens) = Tokens::parse_text("tokens", text) {
        let _ = tokens.check(text);
    }
});
