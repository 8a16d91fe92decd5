//! `cordon detect`: the detectors over stored flows, in time order.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use cordon_detect::kb::Kb;
use cordon_pipeline::Pipeline;
use cordon_store::{AuditQuery, AuditStore, FindingStore, FlowQuery, Store};

use crate::EXIT_FINDINGS;
use crate::args::{DetectArgs, FindingsOutput};
use crate::common::{compile, engine, open_store, print_findings, range, severity_arg, usage};

/// `cordon detect`
pub fn run(args: &DetectArgs) -> anyhow::Result<ExitCode> {
    let (since_ms, until_ms) = match range(&args.range) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let (min, fail_on) = match (
        severity_arg("--min-severity", args.min_severity.as_deref()),
        severity_arg("--fail-on", args.fail_on.as_deref()),
    ) {
        (Ok(m), Ok(f)) => (m, f),
        (Err(e), _) | (_, Err(e)) => return usage(e),
    };
    let policy = match &args.policy {
        None => None,
        Some(p) => match compile(p, &args.inventory) {
            Ok(c) => Some(c),
            Err(code) => return Ok(code),
        },
    };
    let mut store = open_store(&args.store)?;
    let mut engine = match engine(&args.detection, Some(&store)) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let query = FlowQuery {
        since_ms,
        until_ms,
        ..FlowQuery::default()
    };
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last = Instant::now();
    // Stored flows carry the verdicts of their ingest; with --policy they
    // are enriched again, streamed, as the detectors read them.
    let mut enricher = policy
        .as_ref()
        .map(|p| cordon_audit::AuditEnricher::new(std::sync::Arc::clone(p)));
    let mut pipeline = Pipeline::builder()
        .policy(policy)
        .detect(Some(&mut engine))
        .build();
    pipeline.replay(&store, &query, &mut |n| {
        if progress && last.elapsed().as_millis() >= 200 {
            last = Instant::now();
            eprint!("\r\x1b[Kdetecting: {n} flows");
        }
    })?;
    drop(pipeline);
    // The cloud audit events of the same range, through the same engine.
    store.scan_events(
        &AuditQuery {
            since_ms,
            until_ms,
            ..AuditQuery::default()
        },
        &mut |mut event| {
            if let Some(en) = enricher.as_mut() {
                en.enrich(&mut event);
            }
            engine.observe_event(&event);
            true
        },
    )?;
    if progress {
        eprint!("\r\x1b[K");
    }
    let flows = engine.flows();
    let events = engine.events();
    let findings = engine.finish();
    let kb = Kb::embedded()?;
    let mut findings = store.save_findings(findings)?;
    let incidents = store.relink(&kb)?;
    findings.retain(|f| min.is_none_or(|m| f.severity >= m));
    let output = if args.json {
        FindingsOutput::Json
    } else {
        args.output
    };
    print_findings(&findings, &incidents, output, &kb)?;
    if output == FindingsOutput::Table {
        eprintln!(
            "{flows} flows{} examined in {:.2}s; {} incidents (store: {})",
            if events > 0 {
                format!(" and {events} cloud audit events")
            } else {
                String::new()
            },
            started.elapsed().as_secs_f64(),
            incidents.len(),
            args.store.path().display()
        );
    }
    let failed = fail_on.is_some_and(|t| findings.iter().any(|f| f.severity >= t));
    Ok(ExitCode::from(if failed { EXIT_FINDINGS } else { 0 }))
}
