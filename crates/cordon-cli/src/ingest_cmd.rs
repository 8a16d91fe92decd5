//! `cordon ingest`: flow logs into the store through the pipeline.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use cordon_flow::Format;
use cordon_pipeline::{Pipeline, expand};
use cordon_store::{FindingStore, Store};
use serde_json::json;

use crate::args::IngestArgs;
use crate::common::{compile, engine, open_store, usage};
use crate::ingest_follow::{Responder, follow, tell};
use crate::{EXIT_CONFIG, outln};

/// A one-line progress report on a terminal; silent when piped.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new() -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: Instant::now(),
        }
    }

    fn update(&mut self, file: &str, bytes: u64) {
        if !self.enabled || self.last.elapsed().as_millis() < 200 {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\r\x1b[Kingesting {file}: {:.1} MB read, {:.1} MB/s",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs
        );
        let _ = std::io::stderr().flush();
    }

    fn clear(&self) {
        if self.enabled {
            eprint!("\r\x1b[K");
        }
    }
}

/// `cordon ingest`
pub fn run(args: &IngestArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format.as_deref() {
        None => None,
        Some(name) => match Format::from_name(name) {
            Some(f) => Some(f),
            None => {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                return usage(format!(
                    "--format: unknown format `{name}` (one of {})",
                    names.join(", ")
                ));
            }
        },
    };
    let policy = match &args.policy {
        None => None,
        Some(p) => match compile(p, &args.inventory) {
            Ok(c) => Some(c),
            Err(code) => return Ok(code),
        },
    };
    let mut store = open_store(&args.store)?;
    let mut files = Vec::new();
    for input in &args.inputs {
        if input.as_os_str() == "-" {
            files.push(input.clone());
            continue;
        }
        match expand(input) {
            Ok(found) => files.extend(found),
            Err(e) => return usage(format!("cannot read `{}`: {e}", input.display())),
        }
    }
    // Zeek DNS logs among the inputs (a Zeek log folder holds dns.log
    // beside conn.log) name the flows instead of being skipped as not
    // flows; they are read first, like `--dns`. Cloud audit logs
    // (CloudTrail, GCP, Azure) go to the audit events beside the flows; a
    // named flow format reads every input as flows. One look at each
    // input's head tells which.
    let mut dns_files: Vec<std::path::PathBuf> = args.dns.clone();
    let mut audit_files = Vec::new();
    if !args.follow {
        let mut found_dns = Vec::new();
        let mut rest = Vec::new();
        for f in files {
            let head = (f.as_os_str() != "-")
                .then(|| {
                    cordon_flow::read::head(&f, cordon_pipeline::source::cloud_audit::SNIFF_BYTES)
                })
                .flatten()
                .unwrap_or_default();
            if cordon_flow::dns::is_zeek_dns(&head) {
                found_dns.push(f);
            } else if format.is_none() && cordon_audit::sniff(&head).is_some() {
                audit_files.push(f);
            } else {
                rest.push(f);
            }
        }
        if rest.is_empty() && audit_files.is_empty() && !found_dns.is_empty() {
            return usage(format!(
                "`{}` is a Zeek DNS log: it names the flows of connection logs (conn.log) given with it, and holds none itself",
                found_dns[0].display()
            ));
        }
        dns_files.extend(found_dns);
        files = rest;
    }
    let mut dns = cordon_flow::dns::DnsAnswers::default();
    let mut dns_reports = Vec::new();
    for file in &dns_files {
        let input = std::fs::File::open(file)
            .with_context(|| format!("cannot read `{}`", file.display()))?;
        let report = dns
            .read_zeek(&file.display().to_string(), Box::new(input))
            .with_context(|| format!("cannot read `{}`", file.display()))?;
        if !args.json {
            eprintln!(
                "{}: {} DNS answers from {} records ({} skipped)",
                file.display(),
                report.flows,
                report.records,
                report.skipped_total()
            );
        }
        dns_reports.push(json!({
            "file": file.display().to_string(),
            "records": report.records,
            "answers": report.flows,
            "skipped": report.skipped_total(),
        }));
    }
    let dns = (!dns.is_empty()).then(|| Arc::new(dns));
    let mut engine = if args.detect {
        match engine(&args.detection, Some(&store)) {
            Ok(e) => Some(e),
            Err(code) => return Ok(code),
        }
    } else {
        None
    };
    let responder = match (&args.playbook, &args.responses) {
        (Some(p), Some(r)) => match Responder::load(p, r, policy.clone()) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        },
        _ => None,
    };
    if args.follow {
        if files.iter().any(|f| f.as_os_str() == "-") {
            return usage("--follow reads files, not standard input");
        }
        return follow(
            &files,
            format,
            policy,
            dns,
            &mut store,
            engine.as_mut(),
            responder.as_ref(),
            &args.store.path(),
            &args.detection,
        );
    }
    let started = Instant::now();
    let mut progress = Progress::new();
    let mut audit_summaries = Vec::new();
    for file in &audit_files {
        let summary = cordon_pipeline::source::cloud_audit::ingest_audit(
            file,
            policy.as_ref(),
            Some(&mut store),
            engine.as_mut(),
        )?;
        audit_summaries.push(summary);
    }
    let mut summaries = Vec::new();
    for file in &files {
        let name = file.display().to_string();
        let mut pipeline = Pipeline::builder()
            .policy(policy.clone())
            .dns(dns.clone())
            .store(&mut store)
            .detect(engine.as_mut())
            .build();
        let summary =
            pipeline.ingest_path(file, format, &mut |bytes| progress.update(&name, bytes))?;
        drop(pipeline);
        summaries.push(summary);
        // Incidents grow with the findings, input by input.
        if let Some(e) = engine.as_ref().filter(|_| files.len() > 1) {
            store.save_findings(e.snapshot())?;
            store.relink(e.kb())?;
        }
    }
    progress.clear();
    let (findings, incidents) = match engine.as_mut() {
        Some(e) => {
            let findings = store.save_findings(e.finish())?;
            (Some(findings), Some(store.relink(e.kb())?))
        }
        None => (None, None),
    };
    let responses = match (&responder, &findings) {
        (Some(r), Some(f)) => Some(r.apply(f)?),
        _ => None,
    };
    let records: u64 = summaries.iter().map(|s| s.report.records).sum();
    let flows: u64 = summaries.iter().map(|s| s.report.flows).sum();
    let stored: u64 = summaries.iter().map(|s| s.stored).sum();
    let mut skipped: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &summaries {
        for (reason, c) in &s.report.skipped {
            *skipped.entry(reason.as_str()).or_default() += c.count;
        }
    }
    let errors: Vec<&String> = summaries
        .iter()
        .filter_map(|s| s.error.as_ref())
        .chain(audit_summaries.iter().filter_map(|s| s.error.as_ref()))
        .collect();
    let events: u64 = audit_summaries.iter().map(|s| s.report.events).sum();
    let events_stored: u64 = audit_summaries.iter().map(|s| s.stored).sum();
    let elapsed = started.elapsed().as_secs_f64();
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "store": args.store.path().display().to_string(),
                "records": records,
                "flows": flows,
                "stored": stored,
                "skipped": skipped,
                "seconds": elapsed,
                "files": summaries,
                "events": events,
                "events_stored": events_stored,
                "audit_files": audit_summaries,
                "dns": dns_reports,
                "findings": findings,
                "incidents": incidents,
                "responses": responses,
            }))?
        );
    } else {
        for s in &summaries {
            let what = if s.already_ingested {
                "already ingested, nothing to do".to_string()
            } else {
                let mut t = format!("{} records, {} flows stored", s.report.records, s.stored);
                if let Some(offset) = s.resumed_from {
                    t.push_str(&format!(" (resumed at byte {offset})"));
                }
                t
            };
            outln!(
                "{} [{}]: {what}",
                s.file,
                s.format.as_deref().unwrap_or("?")
            );
            for (reason, c) in &s.report.skipped {
                outln!("  skipped {} {}:", c.count, reason.as_str());
                for e in &c.examples {
                    outln!("    {e}");
                }
            }
            if let Some(e) = &s.error {
                outln!("  error: {e}");
            }
        }
        for s in &audit_summaries {
            let what = if s.already_ingested {
                "already ingested, nothing to do".to_string()
            } else {
                let clouds: Vec<String> = s
                    .report
                    .clouds
                    .iter()
                    .map(|(c, n)| format!("{n} {c}"))
                    .collect();
                let mut t = format!(
                    "{} records, {} audit events stored{}",
                    s.report.records,
                    s.stored,
                    if clouds.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", clouds.join(", "))
                    }
                );
                if let Some(offset) = s.resumed_from {
                    t.push_str(&format!(" (resumed at byte {offset})"));
                }
                t
            };
            outln!("{} [{}]: {what}", s.file, s.format);
            for (reason, c) in &s.report.skipped {
                outln!("  skipped {} {reason}:", c.count);
                for e in &c.examples {
                    outln!("    {e}");
                }
            }
            if let Some(e) = &s.error {
                outln!("  error: {e}");
            }
        }
        let audit_skipped: u64 = audit_summaries
            .iter()
            .map(|s| s.report.skipped_total())
            .sum();
        let inputs = summaries.len() + audit_summaries.len();
        outln!(
            "{inputs} file{}: {records} records read, {stored} flows stored{}, {} skipped, in {elapsed:.2}s (store: {})",
            if inputs == 1 { "" } else { "s" },
            if audit_summaries.is_empty() {
                String::new()
            } else {
                format!(", {events_stored} audit events stored")
            },
            skipped.values().sum::<u64>() + audit_skipped,
            args.store.path().display()
        );
        if let Some(findings) = &findings {
            let mut by: BTreeMap<cordon_detect::Severity, usize> = BTreeMap::new();
            for f in findings {
                *by.entry(f.severity).or_default() += 1;
            }
            let counts: Vec<String> = by
                .iter()
                .rev()
                .map(|(s, n)| format!("{n} {}", s.as_str()))
                .collect();
            outln!(
                "{} findings{} (see `cordon detect --store {}`)",
                findings.len(),
                if counts.is_empty() {
                    String::new()
                } else {
                    format!(": {}", counts.join(", "))
                },
                args.store.path().display()
            );
        }
        if let Some(outcomes) = &responses {
            tell(outcomes)?;
        }
        if let Some(incidents) = &incidents {
            let open = incidents
                .iter()
                .filter(|i| i.status != cordon_incident::Status::Resolved)
                .count();
            outln!(
                "{} incidents, {open} not resolved (see `cordon incidents --store {}`)",
                incidents.len(),
                args.store.path().display()
            );
        }
    }
    Ok(ExitCode::from(if errors.is_empty() {
        0
    } else {
        EXIT_CONFIG
    }))
}
