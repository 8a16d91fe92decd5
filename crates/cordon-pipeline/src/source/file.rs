//! Files and standard input: read, prepare and store in committed batches
//! that record how far each input got, so an interrupted ingest resumes
//! where it stopped and a repeated one stores nothing twice.

use std::io::Read;
use std::path::{Path, PathBuf};

use cordon_flow::input::{ReadError, ReadOptions, detect_format, read_flows};
use cordon_flow::read::maybe_gunzip;
use cordon_flow::{Flow, Format, Location, Report};
use serde::Serialize;

use crate::{BATCH, Pipeline, PipelineError};

/// What happened to one input.
#[derive(Debug, Serialize)]
pub struct InputSummary {
    /// The input's name.
    pub file: String,
    /// The format read.
    pub format: Option<String>,
    /// Counts.
    #[serde(flatten)]
    pub report: Report,
    /// Flows written to the store in this run.
    pub stored: u64,
    /// Whether an earlier run had already ingested it completely.
    pub already_ingested: bool,
    /// Where a previous run had stopped, when this run resumed.
    pub resumed_from: Option<u64>,
    /// Why the input could not be read, if it could not.
    pub error: Option<String>,
}

/// A key that identifies an input by where it is and how it begins, so a
/// file replaced by another under the same name is a new input.
pub(crate) fn input_key(path: &Path, growing: bool) -> std::io::Result<String> {
    let absolute = std::fs::canonicalize(path)?;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)?
        .take(4096)
        .read_to_end(&mut head)?;
    if growing {
        // A file still being written: its first 4 KiB are not there yet,
        // its first line is (and does not change).
        if let Some(end) = head.iter().position(|b| *b == b'\n') {
            head.truncate(end + 1);
        }
    }
    // FNV-1a: stable across runs and versions, unlike the std hasher.
    let hash = head.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    Ok(format!("{}#{hash:016x}", absolute.display()))
}

/// How many bytes of `path` end in a newline (what can be read whole).
fn complete_lines(path: &Path) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    // Lines are at most 1 MiB (the line limit); look no further back.
    while end > 0 && len - end <= 2 * 1024 * 1024 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = usize::try_from(end - start).unwrap_or(0);
        f.seek(SeekFrom::Start(start))?;
        let chunk = buf.get_mut(..n).unwrap_or_default();
        f.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Every regular file under `path` (or `path` itself), sorted.
///
/// # Errors
/// A folder that cannot be listed.
pub fn expand(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Pipeline<'_> {
    /// Ingest one input (a file, or `-` for standard input) in `format`
    /// (detected when `None`). `progress` is called with the decompressed
    /// bytes read so far after each commit.
    ///
    /// Without a store the input is read and every other sink sees its
    /// flows, but nothing is committed or remembered.
    ///
    /// # Errors
    /// Store errors stop the ingest (what was committed stays); unreadable
    /// inputs are reported in the summary instead.
    pub fn ingest_path(
        &mut self,
        path: &Path,
        format: Option<Format>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<InputSummary, PipelineError> {
        self.ingest(path, format, progress, false)
    }

    /// Ingest what a file that is still being written (a decision log, an
    /// agent's flows) holds now, up to its last complete line, and remember
    /// how far: the next call reads only what was added. The input is
    /// never marked finished. Formats read as whole documents cannot be
    /// followed.
    ///
    /// # Errors
    /// Store errors stop the ingest (what was committed stays).
    pub fn ingest_growing(
        &mut self,
        path: &Path,
        format: Option<Format>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<InputSummary, PipelineError> {
        self.ingest(path, format, progress, true)
    }

    fn ingest(
        &mut self,
        path: &Path,
        format: Option<Format>,
        progress: &mut dyn FnMut(u64),
        growing: bool,
    ) -> Result<InputSummary, PipelineError> {
        let name = path.display().to_string();
        let mut summary = InputSummary {
            file: name.clone(),
            format: None,
            report: Report::default(),
            stored: 0,
            already_ingested: false,
            resumed_from: None,
            error: None,
        };
        let stdin = name == "-";
        let opened: std::io::Result<(String, Box<dyn Read>)> = if stdin {
            Ok((
                format!("stdin:{}", cordon_flow::time::now_ms()),
                Box::new(std::io::stdin()),
            ))
        } else {
            input_key(path, growing).and_then(|key| {
                let file = std::fs::File::open(path)?;
                let reader: Box<dyn Read> = if growing {
                    // Up to the last complete line: a line being written
                    // is read next time, whole.
                    let upto = complete_lines(path)?;
                    Box::new(file.take(upto))
                } else {
                    Box::new(file)
                };
                Ok((key, reader))
            })
        };
        let fail = |summary: &mut InputSummary, e: &dyn std::fmt::Display| {
            tracing::warn!(input = %name, error = %e, "input not read");
            summary.error = Some(e.to_string());
        };
        let (key, raw) = match opened {
            Ok(o) => o,
            Err(e) => {
                fail(&mut summary, &format_args!("cannot read `{name}`: {e}"));
                return Ok(summary);
            }
        };
        let mut reader = match maybe_gunzip(raw) {
            Ok(r) => r,
            Err(e) => {
                fail(&mut summary, &format_args!("cannot read `{name}`: {e}"));
                return Ok(summary);
            }
        };
        let format = match format {
            Some(f) => f,
            None => match detect_format(&name, &mut reader) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(summary),
                Err(e) => {
                    fail(&mut summary, &e);
                    return Ok(summary);
                }
            },
        };
        summary.format = Some(format.name().to_string());
        let state = match &mut self.store {
            Some(store) => Some(store.begin_input(&key, &name)?),
            None => None,
        };
        if state.as_ref().is_some_and(|s| s.done) {
            summary.already_ingested = true;
            tracing::debug!(input = %name, "already ingested");
            return Ok(summary);
        }
        let input = state.as_ref().map(|s| s.id);
        let resume_from = state.as_ref().map_or(0, |s| s.committed_offset);
        if resume_from > 0 {
            summary.resumed_from = Some(resume_from);
            tracing::debug!(input = %name, offset = resume_from, "resuming");
        }
        tracing::debug!(input = %name, format = format.name(), "reading");
        // Whole documents commit once, at the end: their records have no
        // offsets to resume from.
        // Captures too: a connection spans packets, so an offset inside
        // the capture is no place to resume from.
        let document = matches!(format, Format::Azure | Format::GcpArray | Format::Pcap);
        if growing && document {
            fail(
                &mut summary,
                &format_args!(
                    "`{name}`: {} is read as a whole document and cannot be followed",
                    format.name()
                ),
            );
            return Ok(summary);
        }
        let read_options = ReadOptions {
            format: Some(format),
            resume_from,
            ..ReadOptions::default()
        };
        let mut stored = 0u64;
        let mut last_offset = resume_from;
        let result = {
            let mut sink = |at: &Location, flows: &mut Vec<Flow>| -> Result<(), PipelineError> {
                self.take(flows);
                last_offset = at.offset + 1;
                if !document && self.batch.len() >= BATCH {
                    stored += self.commit(input, last_offset)?;
                    progress(at.offset);
                }
                Ok(())
            };
            read_flows(&name, Box::new(reader), &read_options, &mut sink)
        };
        match result {
            Ok(report) => {
                stored += self.commit(input, last_offset)?;
                if !growing && let (Some(store), Some(input)) = (&mut self.store, input) {
                    store.finish_input(input)?;
                }
                summary.report = report;
            }
            Err(ReadError::Sink(e)) => return Err(e),
            Err(ReadError::Input(e)) => {
                // What was read before the failure is kept; the input stays
                // unfinished so a later run resumes it.
                if document {
                    self.batch.clear();
                } else {
                    stored += self.commit(input, last_offset)?;
                }
                fail(&mut summary, &e);
            }
        }
        summary.stored = if self.stores() { stored } else { 0 };
        tracing::debug!(
            input = %name,
            records = summary.report.records,
            flows = summary.report.flows,
            stored = summary.stored,
            skipped = summary.report.skipped_total(),
            "done"
        );
        Ok(summary)
    }
}
