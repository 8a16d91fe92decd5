//! Reading audit logs: the cloud told from the content, each record
//! normalised by its cloud's reader, everything skipped counted with its
//! place and reason.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;
use serde_json::Value;

use crate::event::{AuditEvent, Cloud};
use crate::split::{Piece, Position, split};
use crate::{MAX_RECORD_BYTES, azure, cloudtrail, gcp};

/// Examples kept per reason.
const EXAMPLES: usize = 5;

/// Records skipped for one reason.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Skipped {
    /// How many.
    pub count: u64,
    /// The first few, with their place.
    pub examples: Vec<String>,
}

/// What reading one input gave.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct AuditReport {
    /// Records found (events and skipped ones).
    pub records: u64,
    /// Events read.
    pub events: u64,
    /// Events per cloud.
    pub clouds: BTreeMap<&'static str, u64>,
    /// Records skipped, by reason (`malformed`, `too-long`, `not-an-event`,
    /// `unknown-version`, `broken`).
    pub skipped: BTreeMap<&'static str, Skipped>,
    /// Decompressed bytes read.
    pub bytes: u64,
}

impl AuditReport {
    fn skip(&mut self, reason: &'static str, at: String) {
        let s = self.skipped.entry(reason).or_default();
        s.count += 1;
        if s.examples.len() < EXAMPLES {
            s.examples.push(at);
        }
    }

    /// Records skipped, all reasons.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().map(|s| s.count).sum()
    }
}

/// The cloud whose audit records a JSON record is, if any.
pub fn cloud_of(record: &Value) -> Option<Cloud> {
    if cloudtrail::is_record(record) {
        Some(Cloud::Aws)
    } else if gcp::is_record(record) {
        Some(Cloud::Gcp)
    } else if azure::is_record(record) {
        Some(Cloud::Azure)
    } else {
        None
    }
}

/// Normalise one record by its cloud's reader (a CloudTrail record's
/// detail is moved into the event, not copied); the record back when it
/// is no cloud's audit record.
///
/// # Errors
/// The record, when no cloud's normaliser takes it; inside, what makes a
/// record of a known cloud no event.
pub fn normalise(record: Value) -> Result<Result<AuditEvent, String>, Value> {
    match cloud_of(&record) {
        Some(Cloud::Aws) => Ok(cloudtrail::normalise_owned(record)),
        Some(Cloud::Gcp) => Ok(gcp::normalise(&record)),
        Some(Cloud::Azure) => Ok(azure::normalise(&record)),
        None => Err(record),
    }
}

/// Whether the start of an input (decompressed) is audit data: the first
/// record the splitter finds in `head` is an event of some cloud. A
/// record cut by the end of `head` is judged by the keys before the cut.
pub fn sniff(head: &[u8]) -> Option<Cloud> {
    // Audit data is JSON from its first byte: a document that only quotes
    // events (a write-up with examples) is not.
    let first = head.iter().find(|b| !b.is_ascii_whitespace())?;
    if !matches!(first, b'{' | b'[') {
        return None;
    }
    let mut found = None;
    let mut first = true;
    let _ = split(head, MAX_RECORD_BYTES, &mut |piece| {
        if let (Piece::Record(bytes, _), true) = (&piece, first) {
            first = false;
            found = serde_json::from_slice::<Value>(bytes)
                .ok()
                .as_ref()
                .and_then(cloud_of);
        }
    });
    if found.is_some() || !first {
        return found;
    }
    // The first record is longer than `head`: look for each cloud's keys.
    let text = String::from_utf8_lossy(head);
    if text.contains("\"eventName\"") && text.contains("\"eventSource\"") {
        Some(Cloud::Aws)
    } else if text.contains("google.cloud.audit.AuditLog") {
        Some(Cloud::Gcp)
    } else {
        None
    }
}

/// Read every event of `input` (gzip or not), named `name` in the places
/// the report gives, handing each to `each` with the byte offset (of the
/// decompressed input) where its record starts. Records starting before
/// `from_offset` (stored by an earlier run) are passed over.
///
/// # Errors
/// I/O errors (a truncated gzip stream among them); events read before it
/// have been handed out.
pub fn read_events(
    name: &str,
    input: Box<dyn Read>,
    from_offset: u64,
    each: &mut dyn FnMut(AuditEvent, u64),
) -> std::io::Result<AuditReport> {
    let mut report = AuditReport::default();
    let place = |at: &Position| format!("{name}:{at}");
    let input = cordon_flow::read::maybe_gunzip(input)?;
    let result = split(input, MAX_RECORD_BYTES, &mut |piece| match piece {
        Piece::Record(_, at) | Piece::TooLong(at, _) | Piece::Broken(at, _)
            if at.offset < from_offset => {}
        Piece::Record(bytes, at) => {
            report.records += 1;
            // Checked as UTF-8 once: the text is parsed and kept as the raw
            // record.
            let Ok(text) = std::str::from_utf8(bytes) else {
                report.skip(
                    "malformed",
                    format!("{}: invalid JSON: not UTF-8", place(&at)),
                );
                return;
            };
            let value: Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => {
                    report.skip("malformed", format!("{}: invalid JSON: {e}", place(&at)));
                    return;
                }
            };
            let normalised = match normalise(value) {
                Ok(n) => n,
                Err(value) => {
                    report.skip(
                        "not-an-event",
                        format!(
                            "{}: not a CloudTrail, GCP audit or Azure record (keys: {})",
                            place(&at),
                            keys(&value)
                        ),
                    );
                    return;
                }
            };
            match normalised {
                Ok(mut e) => {
                    e.raw = Some(text.into());
                    report.events += 1;
                    *report.clouds.entry(e.cloud.as_str()).or_default() += 1;
                    each(e, at.offset);
                }
                Err(why) if why.contains("version") => {
                    report.skip("unknown-version", format!("{}: {why}", place(&at)))
                }
                Err(why) => report.skip("malformed", format!("{}: {why}", place(&at))),
            }
        }
        Piece::TooLong(at, n) => {
            report.records += 1;
            report.skip(
                "too-long",
                format!(
                    "{}: a record of {n} bytes, over the {} MiB limit",
                    place(&at),
                    MAX_RECORD_BYTES / (1024 * 1024)
                ),
            );
        }
        Piece::Broken(at, why) => {
            report.records += 1;
            report.skip("broken", format!("{}: {why}", place(&at)));
        }
    });
    report.bytes = match result {
        Ok(n) => n,
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("{name}: {e} (after {} events)", report.events),
            ));
        }
    };
    Ok(report)
}

/// The first keys of a record, for a person.
fn keys(v: &Value) -> String {
    match v.as_object() {
        Some(m) => {
            let mut k: Vec<&str> = m.keys().map(String::as_str).take(6).collect();
            if m.len() > 6 {
                k.push("...");
            }
            k.join(", ")
        }
        None => "not an object".into(),
    }
}
