//! Cloud audit logs (CloudTrail, GCP Cloud Audit Logs, Azure Activity and
//! Entra ID) from files: told apart from flow logs by their content, read
//! in the same resumable way (the store commits each batch with the offset
//! it reached; a finished input is not read again), stored beside flows and
//! handed to the detectors.

use std::path::Path;
use std::sync::Arc;

use cordon_audit::{AuditEnricher, AuditEvent, AuditReport, Cloud};
use cordon_detect::Engine;
use cordon_policy::CompiledPolicy;
use cordon_store::{AuditStore, IngestLedger};
use serde::Serialize;

use super::file::input_key;
use crate::PipelineError;

/// Events per store commit.
const BATCH: usize = 4096;

/// What ingesting one audit log gave.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditSummary {
    /// The input's name.
    pub file: String,
    /// The format read (`cloud-audit`).
    pub format: String,
    /// Counts.
    #[serde(flatten)]
    pub report: AuditReport,
    /// Events written to the store in this run.
    pub stored: u64,
    /// Whether an earlier run had already ingested it completely.
    pub already_ingested: bool,
    /// Where a previous run had stopped, when this run resumed.
    pub resumed_from: Option<u64>,
    /// Why the input could not be read (or was read only in part).
    pub error: Option<String>,
}

/// How much of an input (decompressed) is looked at to tell an audit log.
pub const SNIFF_BYTES: u64 = 64 * 1024;

/// The cloud whose audit log `path` is, judged from its first
/// [`SNIFF_BYTES`] (decompressed); `None` for anything else (flow logs
/// among them).
pub fn audit_log(path: &Path) -> Option<Cloud> {
    cordon_audit::sniff(&cordon_flow::read::head(path, SNIFF_BYTES)?)
}

/// A store of audit events with its ledger.
pub trait AuditSink: AuditStore + IngestLedger {}
impl<T: AuditStore + IngestLedger> AuditSink for T {}

/// Ingest the audit log at `path`: enriched against `policy` when given,
/// into `store` when given (resuming where an earlier run stopped), through
/// `engine` when given.
///
/// # Errors
/// Store errors. A file that cannot be read, or holds no audit event at
/// all, is reported in the summary's `error`, never passed in silence.
pub fn ingest_audit(
    path: &Path,
    policy: Option<&Arc<CompiledPolicy>>,
    mut store: Option<&mut dyn AuditSink>,
    mut engine: Option<&mut Engine>,
) -> Result<AuditSummary, PipelineError> {
    let mut enricher = policy.map(|p| AuditEnricher::new(Arc::clone(p)));
    let name = path.display().to_string();
    let mut summary = AuditSummary {
        file: name.clone(),
        format: "cloud-audit".into(),
        ..AuditSummary::default()
    };
    let opened = input_key(path, false).and_then(|key| Ok((key, std::fs::File::open(path)?)));
    let (key, file) = match opened {
        Ok(o) => o,
        Err(e) => {
            summary.error = Some(format!("cannot read `{name}`: {e}"));
            return Ok(summary);
        }
    };
    let state = match store.as_deref_mut() {
        Some(s) => Some(s.begin_input(&key, &name)?),
        None => None,
    };
    if state.as_ref().is_some_and(|s| s.done) {
        summary.already_ingested = true;
        return Ok(summary);
    }
    let input_id = state.as_ref().map(|s| s.id);
    let from = state.as_ref().map_or(0, |s| s.committed_offset);
    if from > 0 {
        summary.resumed_from = Some(from);
    }
    let mut batch: Vec<AuditEvent> = Vec::with_capacity(BATCH);
    let mut store_error: Option<cordon_store::StoreError> = None;
    let mut stored = 0u64;
    let mut commit =
        |batch: &mut Vec<AuditEvent>, offset: u64, store: &mut Option<&mut dyn AuditSink>| {
            if let Some(s) = store.as_deref_mut()
                && store_error.is_none()
            {
                match s.append_events(input_id, batch, offset) {
                    Ok(()) => stored += batch.len() as u64,
                    Err(e) => store_error = Some(e),
                }
            }
            batch.clear();
        };
    // Past the start of the last event read: what a resumed run skips.
    let mut read_to = from;
    // Events only stored need no normalising here: the store keeps the
    // record and normalises it on reading.
    let normalise = enricher.is_some() || engine.is_some();
    let mut each = |mut e: AuditEvent, at: u64| {
        if let Some(en) = enricher.as_mut() {
            en.enrich(&mut e);
        }
        if let Some(engine) = engine.as_deref_mut() {
            engine.observe_event(&e);
        }
        batch.push(e);
        read_to = at + 1;
        if batch.len() >= BATCH {
            commit(&mut batch, read_to, &mut store);
        }
    };
    let result =
        cordon_audit::read::read_with(&name, Box::new(file), from, &mut each, true, normalise);
    match result {
        Ok(report) => {
            let end = report.bytes;
            commit(&mut batch, end, &mut store);
            summary.report = report;
            if summary.report.events == 0 && summary.report.records > 0 && from == 0 {
                summary.error = Some(format!(
                    "`{name}`: none of its {} records is a cloud audit event (expected CloudTrail, GCP Cloud Audit Logs or Azure Activity / Entra ID records); first: {}",
                    summary.report.records,
                    summary
                        .report
                        .skipped
                        .values()
                        .flat_map(|s| s.examples.first())
                        .next()
                        .map_or("-", String::as_str)
                ));
            } else if let (Some(s), Some(id)) = (store.as_deref_mut(), input_id)
                && store_error.is_none()
            {
                s.finish_input(id)?;
            }
        }
        Err(e) => {
            // Keep what was read before the damage.
            commit(&mut batch, read_to, &mut store);
            summary.error = Some(e.to_string());
        }
    }
    if let Some(e) = store_error {
        return Err(e.into());
    }
    summary.stored = stored;
    Ok(summary)
}
