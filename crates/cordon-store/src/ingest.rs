//! Ingest: read inputs, enrich, and store in committed batches that record
//! how far each input got, so an interrupted ingest resumes where it
//! stopped and a repeated one stores nothing twice.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cordon_flow::enrich::Enricher;
use cordon_flow::input::{ReadOptions, detect_format, read_flows};
use cordon_flow::read::maybe_gunzip;
use cordon_flow::{Flow, Format, Report};
use cordon_policy::CompiledPolicy;
use serde::Serialize;

use crate::{FlowStore, StoreError};

/// Flows per committed batch.
pub const BATCH: usize = 20_000;

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

/// Options for [`ingest_path`].
#[derive(Clone, Default)]
pub struct IngestOptions {
    /// Format to use instead of detecting it.
    pub format: Option<Format>,
    /// Policy for enrichment and verdicts.
    pub policy: Option<Arc<CompiledPolicy>>,
    /// DNS answers that name flows without a hostname.
    pub dns: Option<Arc<cordon_flow::dns::DnsAnswers>>,
}

/// Give `flow` the name its client resolved for the destination, when it
/// has none and a DNS answer was seen.
pub fn name_from_dns(dns: Option<&cordon_flow::dns::DnsAnswers>, flow: &mut Flow) {
    if flow.hostname.is_some() {
        return;
    }
    if let Some(name) = dns.and_then(|d| d.lookup(flow.src_ip, flow.dst_ip, flow.start_ms)) {
        flow.hostname = Some(name.to_string());
        flow.attr("hostname_from", "dns");
    }
}

/// A key that identifies an input by where it is and how it begins, so a
/// file replaced by another under the same name is a new input.
fn input_key(path: &Path) -> std::io::Result<String> {
    let absolute = std::fs::canonicalize(path)?;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)?
        .take(4096)
        .read_to_end(&mut head)?;
    // FNV-1a: stable across runs and versions, unlike the std hasher.
    let hash = head.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    Ok(format!("{}#{hash:016x}", absolute.display()))
}

/// Every regular file under `path` (or `path` itself), sorted.
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

/// Ingest one input (a file, or `-` for standard input) into `store`.
/// `progress` is called with the decompressed bytes read so far.
///
/// # Errors
/// Store errors stop the ingest (what was committed stays); unreadable
/// inputs are reported in the summary instead.
pub fn ingest_path(
    store: &mut dyn FlowStore,
    path: &Path,
    options: &IngestOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<InputSummary, StoreError> {
    ingest_path_observed(store, path, options, progress, &mut |_| {})
}

/// [`ingest_path`], showing every flow to `observe` once it is enriched
/// (detectors watch the stream this way).
///
/// # Errors
/// As [`ingest_path`].
pub fn ingest_path_observed(
    store: &mut dyn FlowStore,
    path: &Path,
    options: &IngestOptions,
    progress: &mut dyn FnMut(u64),
    observe: &mut dyn FnMut(&Flow),
) -> Result<InputSummary, StoreError> {
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
        input_key(path)
            .and_then(|key| Ok((key, Box::new(std::fs::File::open(path)?) as Box<dyn Read>)))
    };
    let (key, raw) = match opened {
        Ok(o) => o,
        Err(e) => {
            summary.error = Some(format!("cannot read `{name}`: {e}"));
            return Ok(summary);
        }
    };
    let mut reader = match maybe_gunzip(raw) {
        Ok(r) => r,
        Err(e) => {
            summary.error = Some(format!("cannot read `{name}`: {e}"));
            return Ok(summary);
        }
    };
    let format = match options.format {
        Some(f) => f,
        None => match detect_format(&name, &mut reader) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(summary),
            Err(e) => {
                summary.error = Some(e.to_string());
                return Ok(summary);
            }
        },
    };
    summary.format = Some(format.name().to_string());
    let state = store.begin_input(&key, &name)?;
    if state.done {
        summary.already_ingested = true;
        return Ok(summary);
    }
    if state.committed_offset > 0 {
        summary.resumed_from = Some(state.committed_offset);
    }
    // Whole documents commit once, at the end: their records have no
    // offsets to resume from.
    let document = matches!(format, Format::Azure | Format::GcpArray);
    let mut enricher = options.policy.clone().map(Enricher::new);
    let read_options = ReadOptions {
        format: Some(format),
        resume_from: state.committed_offset,
        ..ReadOptions::default()
    };
    let mut batch: Vec<Flow> = Vec::with_capacity(BATCH);
    let mut stored = 0u64;
    let mut store_error = None;
    let mut last_offset = state.committed_offset;
    let result = {
        let mut sink = |at: &cordon_flow::Location, flows: &mut Vec<Flow>| -> Result<(), String> {
            for mut flow in flows.drain(..) {
                name_from_dns(options.dns.as_deref(), &mut flow);
                if let Some(e) = &mut enricher {
                    e.enrich(&mut flow);
                }
                observe(&flow);
                batch.push(flow);
            }
            last_offset = at.offset + 1;
            if !document && batch.len() >= BATCH {
                if let Err(e) = store.append(state.id, &batch, last_offset) {
                    let message = e.to_string();
                    store_error = Some(e);
                    return Err(message);
                }
                stored += batch.len() as u64;
                batch.clear();
                progress(at.offset);
            }
            Ok(())
        };
        read_flows(&name, Box::new(reader), &read_options, &mut sink)
    };
    if let Some(e) = store_error {
        return Err(e);
    }
    match result {
        Ok(report) => {
            store.append(state.id, &batch, last_offset)?;
            stored += batch.len() as u64;
            store.finish_input(state.id)?;
            summary.report = report;
        }
        Err(e) => {
            // What was read before the failure is kept; the input stays
            // unfinished so a later run resumes it.
            if !document {
                store.append(state.id, &batch, last_offset)?;
                stored += batch.len() as u64;
            }
            summary.error = Some(e.to_string());
        }
    }
    summary.stored = stored;
    Ok(summary)
}
