//! Cloud audit events: what a cloud identity did, one control- or
//! data-plane call at a time (AWS CloudTrail, GCP Cloud Audit Logs, Azure
//! Activity Log and Entra ID sign-ins), normalised once into
//! [`AuditEvent`] and read with the same rules as flows: formats detected
//! from the content, gzip read transparently, every record that is not an
//! event counted with where it was and why, nothing read whole into
//! memory.
//!
//! The main design choice is one streaming splitter ([`split`]) for every
//! JSON shape the clouds deliver (CloudTrail's `{"Records": [...]}` files,
//! bare arrays, one event per line, pretty-printed single events) that
//! hands each record's bytes, bounded by [`MAX_RECORD_BYTES`], to the
//! normaliser of its cloud.

pub mod azure;
pub mod cloudtrail;
pub mod enrich;
pub mod event;
pub mod gcp;
pub mod ocsf;
pub mod read;
pub mod split;

pub use enrich::AuditEnricher;
pub use event::{Activity, AuditEvent, Cloud, Detail, EventContext, Principal};
pub use read::{AuditReport, normalise, read_events, sniff};

/// The largest record read (CloudTrail caps an event at 256 KiB); a longer
/// one is skipped as too long, never held in memory.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// A time as audit logs write it: RFC 3339, or (as SIEM exports and some
/// Azure exports write it) `2025-01-15 09:30:45.123`, read as UTC.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    cordon_flow::time::parse_rfc3339(s).or_else(|| {
        let t = s.trim();
        if t.len() < 19 || t.as_bytes().get(10) != Some(&b' ') {
            return None;
        }
        cordon_flow::time::parse_rfc3339(&format!("{}T{}Z", &t[..10], &t[11..]))
    })
}

/// An address as audit logs record it; anonymised logs write octets with
/// leading zeros (`10.001.002.003`), read as the address they stand for.
pub(crate) fn address(s: &str) -> Option<std::net::IpAddr> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(cordon_core::canonical_ip(ip));
    }
    let octets: Vec<u8> = s
        .split('.')
        .map(|o| {
            (!o.is_empty() && o.len() <= 3 && o.bytes().all(|b| b.is_ascii_digit()))
                .then(|| o.parse::<u8>().ok())
                .flatten()
        })
        .collect::<Option<Vec<u8>>>()?;
    match octets[..] {
        [a, b, c, d] => Some(std::net::IpAddr::from([a, b, c, d])),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
