//! Reading audit logs: the cloud told from the content, each record
//! normalised by its cloud's reader, everything skipped counted with its
//! place and reason.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;
use serde_json::Value;

use crate::event::{AuditEvent, Cloud};
use crate::split::{Piece, Position, split, split_lines};
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

/// Records into events for [`read_events`]: what the splitter's two
/// callbacks share.
struct Records<'a> {
    name: &'a str,
    from_offset: u64,
    report: AuditReport,
    /// Every event so far was CloudTrail: read the next the typed way first.
    aws_so_far: bool,
    /// Normalise CloudTrail events whole (else only check them and take
    /// their time: the caller only stores them).
    full: bool,
    each: &'a mut dyn FnMut(AuditEvent, u64),
}

impl Records<'_> {
    /// A record that is no event: counted, and skipped for `reason` with
    /// its place and `why`.
    fn refuse(&mut self, reason: &'static str, at: &Position, why: impl std::fmt::Display) {
        self.report.records += 1;
        let place = format!("{}:{at}", self.name);
        self.report.skip(reason, format!("{place}: {why}"));
    }

    /// One record's bytes. A line offered whole (`strict` false) is taken
    /// only when it parses as one JSON object; otherwise nothing is
    /// counted and the splitter splits the line itself.
    fn record(&mut self, bytes: &[u8], at: Position, strict: bool) -> bool {
        if at.offset < self.from_offset {
            // A line wholly before the resume point holds nothing to read;
            // one across it may hold records after it (a wrapper file on one
            // line): the splitter looks at those one by one.
            return strict || at.offset + bytes.len() as u64 <= self.from_offset;
        }
        // Checked as UTF-8 once: the text is parsed and kept as the raw
        // record.
        let Ok(text) = std::str::from_utf8(bytes) else {
            if strict {
                self.refuse("malformed", &at, "invalid JSON: not UTF-8");
            }
            return strict;
        };
        // CloudTrail first, straight into its fields, while the input is
        // CloudTrail; anything else (or a record that does not read that
        // way) as a JSON value.
        let typed = if self.aws_so_far {
            cloudtrail::read_text(text, self.full)
        } else {
            None
        };
        let normalised = match typed {
            Some(n) => n,
            None => {
                let value: Value = match serde_json::from_str(text) {
                    Ok(v) => v,
                    Err(e) if strict => {
                        self.refuse("malformed", &at, format_args!("invalid JSON: {e}"));
                        return true;
                    }
                    Err(_) => return false,
                };
                match normalise(value) {
                    Ok(n) => n,
                    // A wrapper (`{"Records": [...]}`) on one line among
                    // them: the splitter finds its records.
                    Err(_) if !strict => return false,
                    Err(value) => {
                        self.refuse(
                            "not-an-event",
                            &at,
                            format_args!(
                                "not a CloudTrail, GCP audit or Azure record (keys: {})",
                                keys(&value)
                            ),
                        );
                        return true;
                    }
                }
            }
        };
        match normalised {
            Ok(mut e) => {
                self.aws_so_far = e.cloud == Cloud::Aws;
                e.raw = Some(text.into());
                self.report.records += 1;
                self.report.events += 1;
                *self.report.clouds.entry(e.cloud.as_str()).or_default() += 1;
                (self.each)(e, at.offset);
            }
            Err(why) if why.contains("version") => self.refuse("unknown-version", &at, why),
            Err(why) => self.refuse("malformed", &at, why),
        }
        true
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
    read_with(name, input, from_offset, each, true, true)
}

/// [`read_events`] with whole lines read as one record each when they are
/// (`lines`, the fast way for one event per line), or every byte looked at
/// by the splitter: both give the same events and report. Without
/// `normalise`, CloudTrail events are checked (version, time, action) and
/// handed out with their time, cloud and record only: for a caller that
/// only stores them (the store normalises the record on reading), the same
/// report.
///
/// # Errors
/// As [`read_events`].
pub fn read_with(
    name: &str,
    input: Box<dyn Read>,
    from_offset: u64,
    each: &mut dyn FnMut(AuditEvent, u64),
    lines: bool,
    normalise: bool,
) -> std::io::Result<AuditReport> {
    let input = cordon_flow::read::maybe_gunzip(input)?;
    // The splitter's two callbacks take turns, never one inside the other.
    let records = std::cell::RefCell::new(Records {
        name,
        from_offset,
        report: AuditReport::default(),
        aws_so_far: true,
        full: normalise,
        each,
    });
    let result = split_lines(
        input,
        MAX_RECORD_BYTES,
        &mut |line, at| lines && records.borrow_mut().record(line, at, false),
        &mut |piece| {
            let mut r = records.borrow_mut();
            match piece {
                Piece::Record(_, at) | Piece::TooLong(at, _) | Piece::Broken(at, _)
                    if at.offset < r.from_offset => {}
                Piece::Record(bytes, at) => {
                    r.record(bytes, at, true);
                }
                Piece::TooLong(at, n) => r.refuse(
                    "too-long",
                    &at,
                    format_args!(
                        "a record of {n} bytes, over the {} MiB limit",
                        MAX_RECORD_BYTES / (1024 * 1024)
                    ),
                ),
                Piece::Broken(at, why) => r.refuse("broken", &at, why),
            }
        },
    );
    let mut report = records.into_inner().report;
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
