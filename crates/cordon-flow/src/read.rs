//! Reading records from files and streams: bounded lines, locations, gzip,
//! and a report of everything skipped and why.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use serde::Serialize;

/// Why a record did not become a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// The record does not have the format's shape.
    Malformed,
    /// AWS `NODATA`: no traffic in the window.
    NoData,
    /// AWS `SKIPDATA`: records lost by the provider in the window.
    SkipData,
    /// A line longer than the limit.
    TooLong,
    /// Text that is not UTF-8.
    InvalidUtf8,
    /// Valid for the format but carries no flow (a header, a non-flow event).
    NotAFlow,
    /// NetFlow v9/IPFIX data whose template never arrived.
    MissingTemplate,
    /// An input that cannot be read at all (truncated gzip, I/O error).
    Unreadable,
}

impl SkipReason {
    /// The kebab-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Malformed => "malformed",
            SkipReason::NoData => "no-data",
            SkipReason::SkipData => "skip-data",
            SkipReason::TooLong => "too-long",
            SkipReason::InvalidUtf8 => "invalid-utf8",
            SkipReason::NotAFlow => "not-a-flow",
            SkipReason::MissingTemplate => "missing-template",
            SkipReason::Unreadable => "unreadable",
        }
    }
}

/// A record that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The kind of problem.
    pub reason: SkipReason,
    /// What exactly, for a person.
    pub detail: String,
}

impl Skip {
    /// A malformed record.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Skip {
            reason: SkipReason::Malformed,
            detail: detail.into(),
        }
    }

    /// A skip for another reason.
    pub fn new(reason: SkipReason, detail: impl Into<String>) -> Self {
        Skip {
            reason,
            detail: detail.into(),
        }
    }
}

/// Where a record is: file and line, or file and byte offset, or packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The input's name (shared: every record of an input names it).
    pub file: std::sync::Arc<str>,
    /// Line number (1-based), when the input has lines.
    pub line: Option<u64>,
    /// Byte offset of the record's start in the (decompressed) input.
    pub offset: u64,
    /// A finer position inside the record (`record 3 tuple 7`).
    pub within: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file)?,
            None => write!(f, "{}@{}", self.file, self.offset)?,
        }
        if let Some(w) = &self.within {
            write!(f, " ({w})")?;
        }
        Ok(())
    }
}

/// How many examples of each skip reason a report keeps.
const EXAMPLES: usize = 5;

/// Counts for one skip reason, with the first few locations.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SkipCount {
    /// How many records.
    pub count: u64,
    /// The first few, as `location: detail`.
    pub examples: Vec<String>,
}

/// What reading an input produced.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Records read (lines, tuples, packets' records).
    pub records: u64,
    /// Flows produced.
    pub flows: u64,
    /// Records skipped, by reason.
    pub skipped: BTreeMap<SkipReason, SkipCount>,
}

impl Report {
    /// Count a skipped record at `at`.
    pub fn skip(&mut self, at: &Location, skip: Skip) {
        let entry = self.skipped.entry(skip.reason).or_default();
        entry.count += 1;
        if entry.examples.len() < EXAMPLES {
            entry.examples.push(format!("{at}: {}", skip.detail));
        }
    }

    /// All skipped records.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().map(|s| s.count).sum()
    }

    /// Add another report's counts.
    pub fn merge(&mut self, other: Report) {
        self.records += other.records;
        self.flows += other.flows;
        for (reason, s) in other.skipped {
            let entry = self.skipped.entry(reason).or_default();
            entry.count += s.count;
            for e in s.examples {
                if entry.examples.len() < EXAMPLES {
                    entry.examples.push(e);
                }
            }
        }
    }
}

/// The first `n` bytes of the file at `path`, decompressed when it is
/// gzip (what format sniffers look at); `None` when it cannot be read.
pub fn head(path: &std::path::Path, n: u64) -> Option<Vec<u8>> {
    let input = maybe_gunzip(std::fs::File::open(path).ok()?).ok()?;
    let mut head = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 20));
    input.take(n).read_to_end(&mut head).ok()?;
    Some(head)
}

/// Open `input` for reading, decompressing gzip when its magic bytes say so.
pub fn maybe_gunzip<R: Read + 'static>(input: R) -> std::io::Result<Box<dyn BufRead>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::bufread::MultiGzDecoder::new(buffered);
        Ok(Box::new(BufReader::with_capacity(256 * 1024, decoder)))
    } else {
        Ok(Box::new(buffered))
    }
}

/// One line from a [`LineReader`].
pub enum Line<'a> {
    /// The line's bytes, without the newline (and without a `\r` before it).
    Text(&'a [u8]),
    /// The line was longer than the limit; its bytes were discarded.
    TooLong(u64),
}

/// Reads lines with a length limit, so one enormous line cannot take the
/// memory with it, and tracks line numbers and byte offsets.
pub struct LineReader<R> {
    input: R,
    buf: Vec<u8>,
    /// Bytes of the input lent out by the last call, consumed by the next.
    pending: usize,
    max: usize,
    /// Line number of the line last returned.
    pub line: u64,
    /// Byte offset of the start of the line last returned.
    pub offset: u64,
    next_offset: u64,
}

impl<R: BufRead> LineReader<R> {
    /// A reader of lines up to `max` bytes.
    pub fn new(input: R, max: usize) -> Self {
        LineReader {
            input,
            buf: Vec::new(),
            pending: 0,
            max,
            line: 0,
            offset: 0,
            next_offset: 0,
        }
    }

    /// The byte offset just past the last line returned: where reading
    /// would resume.
    pub fn position(&self) -> u64 {
        self.next_offset
    }

    /// The next line with its number and byte offset, or `None` at the end.
    ///
    /// # Errors
    /// I/O errors from the input (including corrupt gzip).
    pub fn next_line(&mut self) -> std::io::Result<Option<(u64, u64, Line<'_>)>> {
        self.input.consume(std::mem::take(&mut self.pending));
        self.buf.clear();
        // The common case: the whole line is in the input's buffer, and is
        // lent from there without a copy (consumed on the next call).
        let whole = {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                return Ok(None);
            }
            memchr::memchr(b'\n', chunk).filter(|i| *i <= self.max)
        };
        if let Some(end) = whole {
            self.pending = end + 1;
            self.line += 1;
            self.offset = self.next_offset;
            self.next_offset += end as u64 + 1;
            let chunk = self.input.fill_buf()?;
            let mut line = chunk.get(..end).unwrap_or_default();
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            return Ok(Some((self.line, self.offset, Line::Text(line))));
        }
        let mut total: u64 = 0;
        let mut too_long = false;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                if total == 0 {
                    return Ok(None);
                }
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            total += take as u64;
            if !too_long {
                if self.buf.len() + take > self.max + 1 {
                    too_long = true;
                    self.buf.clear();
                } else if let Some(part) = chunk.get(..take) {
                    self.buf.extend_from_slice(part);
                }
            }
            self.input.consume(take);
            if done {
                break;
            }
        }
        self.line += 1;
        self.offset = self.next_offset;
        self.next_offset += total;
        if too_long {
            return Ok(Some((self.line, self.offset, Line::TooLong(total))));
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((self.line, self.offset, Line::Text(&self.buf))))
    }
}

/// Read until `buf` is full or the input ends; how many bytes were read.
pub(crate) fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
