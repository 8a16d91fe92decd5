//! Reading a whole input: detect the format, decode record by record within
//! limits, and hand flows to a sink with their location. Flows come as the
//! record had them; turning reply halves around is the pipeline's first
//! stage.

use std::io::{BufRead, Read};

use crate::flow::Flow;
use crate::read::{Line, LineReader, Location, Report, Skip, SkipReason, maybe_gunzip, read_full};
use crate::sources::{Decoder, Format};

/// Limits and choices for reading an input.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// The format, or `None` to detect it.
    pub format: Option<Format>,
    /// Longest line accepted, in bytes.
    pub max_line: usize,
    /// Largest whole-document input (Azure, GCP arrays), in bytes.
    pub max_document: usize,
    /// Records whose start offset is below this are read but not emitted
    /// (resuming an interrupted ingest).
    pub resume_from: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: None,
            max_line: 1024 * 1024,
            max_document: 512 * 1024 * 1024,
            resume_from: 0,
        }
    }
}

/// Why an input could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The format could not be recognised.
    #[error("cannot tell the format of `{0}`; name it with --format ({1})")]
    UnknownFormat(String, String),
    /// Reading failed.
    #[error("cannot read `{file}` at byte {offset}: {source}")]
    Io {
        /// The input.
        file: String,
        /// Decompressed byte offset reached.
        offset: u64,
        /// The error.
        source: std::io::Error,
    },
    /// A whole-document input over the limit.
    #[error("`{0}` is a single JSON document larger than {1} bytes")]
    DocumentTooLarge(String, usize),
    /// Not one record of the input had the format's shape: the wrong
    /// format, or a variant of it this reader does not know. Never a silent
    /// `0 flows`.
    #[error(
        "`{file}`: none of its {records} records is {format} ({found}); name the format with --format if it was detected wrongly"
    )]
    NothingRecognised {
        /// The input.
        file: String,
        /// The format it was read as.
        format: &'static str,
        /// Records read.
        records: u64,
        /// What the first record was found to be.
        found: String,
    },
}

/// Why reading stopped: the input, or the sink (whose error is kept as it
/// was, so a store error stays a store error).
#[derive(Debug, thiserror::Error)]
pub enum ReadError<E> {
    /// The input could not be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The sink refused the flows.
    #[error("{0}")]
    Sink(E),
}

/// What the sink is given: the record's location and its flows, which it
/// takes (drains) from the vector; the vector is reused for the next record.
pub type Sink<'a, E> = dyn FnMut(&Location, &mut Vec<Flow>) -> Result<(), E> + 'a;

/// The format of the (decompressed) input `reader`, judged from its first
/// bytes without consuming them; `None` for an empty input.
///
/// # Errors
/// An unreadable input or an unrecognised format.
pub fn detect_format(name: &str, reader: &mut dyn BufRead) -> Result<Option<Format>, InputError> {
    let head = reader.fill_buf().map_err(|source| InputError::Io {
        file: name.to_string(),
        offset: 0,
        source,
    })?;
    if head.is_empty() {
        return Ok(None);
    }
    Format::detect(head).map(Some).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        InputError::UnknownFormat(name.to_string(), names.join(", "))
    })
}

/// Read `input` (gzip or plain) named `name`, sending every record's flows
/// to `sink`. Malformed records are counted in the report, not fatal.
///
/// # Errors
/// An unrecognised format, an unreadable input, or a sink failure; the
/// flows already sent stay sent.
pub fn read_flows<E>(
    name: &str,
    input: Box<dyn Read>,
    options: &ReadOptions,
    sink: &mut Sink<'_, E>,
) -> Result<Report, ReadError<E>> {
    let io = |offset: u64| {
        move |source| InputError::Io {
            file: name.to_string(),
            offset,
            source,
        }
    };
    let mut reader = maybe_gunzip(input).map_err(io(0))?;
    let format = match options.format {
        Some(f) => f,
        None => match detect_format(name, &mut reader)? {
            Some(f) => f,
            None => return Ok(Report::default()),
        },
    };
    let mut report = Report::default();
    let file: std::sync::Arc<str> = name.into();
    match format.decoder() {
        Decoder::Lines(mut decoder) => {
            let mut lines = LineReader::new(reader, options.max_line);
            let mut out = Vec::new();
            // One location, updated per line (no reference count per line).
            let mut location = Location {
                file: std::sync::Arc::clone(&file),
                line: None,
                offset: 0,
                within: None,
            };
            loop {
                let position = lines.position();
                let next = lines.next_line().map_err(|e| io(position)(e))?;
                let Some((line_no, offset, line)) = next else {
                    break;
                };
                let result = match line {
                    Line::TooLong(n) => Err(Skip::new(
                        SkipReason::TooLong,
                        format!("line of {n} bytes, the limit is {}", options.max_line),
                    )),
                    Line::Text(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) => decoder.line(text, &mut out),
                        Err(e) => Err(Skip::new(
                            SkipReason::InvalidUtf8,
                            format!("invalid UTF-8 at column {}", e.valid_up_to() + 1),
                        )),
                    },
                };
                location.line = Some(line_no);
                location.offset = offset;
                match result {
                    // Header and blank lines are bookkeeping, not records.
                    Err(skip) if skip.reason == SkipReason::NotAFlow && out.is_empty() => {
                        if skip.detail != "header line" && skip.detail != "empty line" {
                            report.records += 1;
                            report.skip(&location, skip);
                        }
                    }
                    Err(skip) => {
                        report.records += 1;
                        out.clear();
                        report.skip(&location, skip);
                    }
                    Ok(()) => {
                        report.records += 1;
                        report.flows += out.len() as u64;
                        if location.offset >= options.resume_from {
                            sink(&location, &mut out).map_err(ReadError::Sink)?;
                        }
                        out.clear();
                    }
                }
            }
        }
        Decoder::Messages(mut decoder) => {
            // Templates are per exporter; a file is one exporter.
            let exporter = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
            let mut offset = 0u64;
            let mut n = 0u64;
            let mut message = Vec::new();
            let mut out = Vec::new();
            loop {
                let mut head = [0u8; 4];
                match read_full(&mut reader, &mut head).map_err(io(offset))? {
                    0 => break,
                    4 => {}
                    short => {
                        report.records += 1;
                        let at = Location {
                            file: std::sync::Arc::clone(&file),
                            line: None,
                            offset,
                            within: None,
                        };
                        report.skip(
                            &at,
                            Skip::malformed(format!(
                                "file ends inside a message header ({short} bytes)"
                            )),
                        );
                        break;
                    }
                }
                n += 1;
                let at = Location {
                    file: std::sync::Arc::clone(&file),
                    line: None,
                    offset,
                    within: Some(format!("message {n}")),
                };
                let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
                if head[..2] != [0, 10] || length < 16 {
                    report.records += 1;
                    report.skip(
                        &at,
                        Skip::malformed(format!(
                            "not an IPFIX message header (version {}, length {length})",
                            u16::from_be_bytes([head[0], head[1]])
                        )),
                    );
                    // Without a trustworthy length nothing after this aligns.
                    break;
                }
                message.clear();
                message.extend_from_slice(&head);
                message.resize(length, 0);
                let got = read_full(&mut reader, message.get_mut(4..).unwrap_or_default())
                    .map_err(io(offset))?;
                if got < length - 4 {
                    report.records += 1;
                    report.skip(
                        &at,
                        Skip::malformed(format!(
                            "message claims {length} bytes, the file ends after {}",
                            got + 4
                        )),
                    );
                    break;
                }
                let outcome = decoder.packet(exporter, &message, 0, &mut out);
                report.records += outcome.flows + outcome.skipped.len() as u64;
                for skip in outcome.skipped {
                    report.skip(&at, skip);
                }
                report.flows += out.len() as u64;
                if offset >= options.resume_from && !out.is_empty() {
                    sink(&at, &mut out).map_err(ReadError::Sink)?;
                }
                out.clear();
                offset += length as u64;
            }
        }
        Decoder::Capture(mut table) => {
            read_capture(&file, reader, &mut table, &mut report, sink)?;
        }
        Decoder::Document(mut decoder) => {
            let mut text = String::new();
            let limit = options.max_document as u64;
            let read = reader.take(limit + 1).read_to_string(&mut text);
            match read {
                Ok(n) if n as u64 > limit => {
                    return Err(ReadError::Input(InputError::DocumentTooLarge(
                        name.to_string(),
                        options.max_document,
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    let at = Location {
                        file: std::sync::Arc::clone(&file),
                        line: None,
                        offset: 0,
                        within: None,
                    };
                    report.records += 1;
                    report.skip(
                        &at,
                        Skip::new(SkipReason::InvalidUtf8, "the document is not UTF-8"),
                    );
                    return Ok(report);
                }
                Err(e) => return Err(io(0)(e).into()),
            }
            let at = Location {
                file: std::sync::Arc::clone(&file),
                line: None,
                offset: 0,
                within: None,
            };
            let mut failed = None;
            let resume = options.resume_from;
            decoder.document(&text, &at, &mut report, &mut |loc, flows| {
                if failed.is_some() {
                    return;
                }
                let mut flows = flows;
                // Documents commit whole (see the ingest): nothing to resume.
                let _ = resume;
                if let Err(e) = sink(loc, &mut flows) {
                    failed = Some(e);
                }
            });
            if let Some(e) = failed {
                return Err(ReadError::Sink(e));
            }
            report.flows = report.records - report.skipped_total();
        }
    }
    nothing_recognised(name, format, &report)?;
    Ok(report)
}

/// Packets of a capture into connections: every packet is a record; what
/// is not IP (ARP), later fragments and frames that cannot be right are
/// counted with their packet number; connections go to `sink` as they end.
/// A capture cut short keeps what came before.
fn read_capture<E>(
    file: &std::sync::Arc<str>,
    reader: Box<dyn BufRead>,
    table: &mut crate::sources::pcap::ConnTable,
    report: &mut Report,
    sink: &mut Sink<'_, E>,
) -> Result<(), ReadError<E>> {
    use crate::sources::pcap::capture::CaptureReader;
    use crate::sources::pcap::packet::{NotDatagram, parse};
    let location = |offset: u64, within: Option<String>| Location {
        file: std::sync::Arc::clone(file),
        line: None,
        offset,
        within,
    };
    let mut capture = match CaptureReader::new(reader) {
        Ok(c) => c,
        Err(e) => {
            report.records += 1;
            report.skip(&location(0, None), Skip::malformed(e.to_string()));
            return Ok(());
        }
    };
    let mut out = Vec::new();
    let mut end = 0;
    loop {
        let packet = match capture.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                // Nothing after a damaged record aligns: keep what came before.
                report.records += 1;
                report.skip(&location(end, None), Skip::malformed(e.to_string()));
                break;
            }
        };
        report.records += 1;
        end = packet.offset;
        let at = location(packet.offset, Some(format!("packet {}", packet.number)));
        match parse(packet.linktype, &packet.data) {
            Ok(d) => table.packet(packet.time_us, &d, &mut out),
            Err(NotDatagram::NotIp(what)) => report.skip(
                &at,
                Skip::new(SkipReason::NotAFlow, format!("not IP: {what}")),
            ),
            Err(NotDatagram::LaterFragment) => report.skip(
                &at,
                Skip::new(
                    SkipReason::NotAFlow,
                    "a later fragment (its datagram is counted with the first)",
                ),
            ),
            Err(NotDatagram::Malformed(what)) => report.skip(&at, Skip::malformed(what)),
            Err(NotDatagram::LinkType(t)) => {
                report.skip(&at, Skip::malformed(format!("link type {t} is not read")))
            }
        }
        if !out.is_empty() {
            report.flows += out.len() as u64;
            sink(&at, &mut out).map_err(ReadError::Sink)?;
            out.clear();
        }
    }
    table.finish(&mut out);
    if !out.is_empty() {
        report.flows += out.len() as u64;
        sink(&location(end, Some("end of capture".into())), &mut out).map_err(ReadError::Sink)?;
    }
    Ok(())
}

/// An error when records were read and not one of them had the format's
/// shape (every one malformed, too long or not text).
fn nothing_recognised(name: &str, format: Format, report: &Report) -> Result<(), InputError> {
    let garbled: u64 = [
        SkipReason::Malformed,
        SkipReason::TooLong,
        SkipReason::InvalidUtf8,
    ]
    .iter()
    .filter_map(|r| report.skipped.get(r))
    .map(|c| c.count)
    .sum();
    if report.records == 0 || report.flows > 0 || garbled < report.records {
        return Ok(());
    }
    let found = report
        .skipped
        .values()
        .find_map(|c| c.examples.first())
        .cloned()
        .unwrap_or_default();
    Err(InputError::NothingRecognised {
        file: name.to_string(),
        format: format.name(),
        records: report.records,
        found,
    })
}
