//! `cordon detect` and `cordon simulate`, and the detection shared with
//! `cordon ingest --detect` and `cordon demo`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use cordon_detect::config::Config;
use cordon_detect::intel::Intel;
use cordon_detect::kb::Kb;
use cordon_detect::{Engine, Finding, Severity};
use cordon_flow::enrich::Enricher;
use cordon_flow::time::{format_rfc3339, now_ms};
use cordon_sim::write::{FlowWriter, OutFormat};
use cordon_sim::{Scenario, Simulation};
use cordon_store::FlowQuery;
use cordon_store::{FlowStore, StoredFinding};
use serde_json::json;

use crate::args::{DetectArgs, DetectionArgs, FindingsOutput, SimulateArgs};
use crate::flows_cmd::{compile, open_store, range, usage};
use crate::{EXIT_CONFIG, EXIT_FINDINGS};

/// Largest threat-intel feed read (feeds are held in memory while parsed).
const MAX_FEED_BYTES: u64 = 256 << 20;

/// The text of `path`, refusing files over `max` bytes before reading them.
fn read_limited(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB; split the feed",
            max >> 20
        )));
    }
    Ok(text)
}

/// An engine with the detector settings and intel feeds of `args`; an
/// exit code when they are invalid (after saying why).
pub(crate) fn engine(args: &DetectionArgs) -> Result<Engine, ExitCode> {
    let config = match &args.config {
        None => Config::default(),
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot read `{}`: {e}", path.display());
                    return Err(ExitCode::from(EXIT_CONFIG));
                }
            };
            match Config::parse(&path.display().to_string(), &text) {
                Ok(c) => c,
                Err(rendered) => {
                    eprint!("{rendered}");
                    return Err(ExitCode::from(EXIT_CONFIG));
                }
            }
        }
    };
    let intel = if args.intel.is_empty() {
        None
    } else {
        let mut intel = Intel::default();
        for path in &args.intel {
            let loaded = read_limited(path, MAX_FEED_BYTES)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))
                .and_then(|text| {
                    intel
                        .add(&path.display().to_string(), &text)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = loaded {
                eprintln!("error: {e}");
                return Err(ExitCode::from(EXIT_CONFIG));
            }
        }
        for s in intel.skipped.iter().take(10) {
            eprintln!("warning: indicator skipped: {s}");
        }
        if intel.skipped.len() > 10 {
            eprintln!(
                "warning: {} more indicators skipped",
                intel.skipped.len() - 10
            );
        }
        Some(intel)
    };
    let kb = match Kb::embedded() {
        Ok(kb) => kb,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(crate::EXIT_FAILURE));
        }
    };
    Ok(Engine::new(config, kb, intel))
}

/// Store `findings`, folding them into stored findings with the same id
/// (a run that saw less history than the stored one adds to it; a run
/// that saw at least as much replaces it). Returns the findings as stored.
pub(crate) fn save(
    store: &mut dyn FlowStore,
    findings: Vec<Finding>,
) -> anyhow::Result<Vec<Finding>> {
    let mut stored: HashMap<String, Finding> = store
        .findings(None)?
        .into_iter()
        .filter_map(|s| {
            serde_json::from_str::<Finding>(&s.body)
                .ok()
                .map(|f| (s.id, f))
        })
        .collect();
    let mut out = Vec::with_capacity(findings.len());
    for f in findings {
        let merged = match stored.remove(&f.id) {
            Some(mut old) if f.first_ms > old.first_ms => {
                old.merge(f);
                old
            }
            _ => f,
        };
        out.push(merged);
    }
    let rows: Vec<StoredFinding> = out
        .iter()
        .map(|f| {
            Ok(StoredFinding {
                id: f.id.clone(),
                kind: f.kind.clone(),
                severity: f.severity.as_str().to_string(),
                first_ms: f.first_ms,
                last_ms: f.last_ms,
                body: serde_json::to_string(f)?,
            })
        })
        .collect::<Result<_, serde_json::Error>>()?;
    store.save_findings(&rows)?;
    Ok(out)
}

fn severity_arg(flag: &str, v: Option<&str>) -> Result<Option<Severity>, String> {
    v.map(|s| {
        Severity::parse(s)
            .ok_or_else(|| format!("{flag}: `{s}` is not a severity (low, medium, high, critical)"))
    })
    .transpose()
}

/// Print `findings` as asked.
pub(crate) fn print(findings: &[Finding], output: FindingsOutput, kb: &Kb) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match output {
        FindingsOutput::Json => {
            for f in findings {
                writeln!(out, "{}", serde_json::to_string(f)?)?;
            }
        }
        FindingsOutput::Ocsf => {
            for f in findings {
                writeln!(out, "{}", cordon_detect::ocsf::detection_finding(f, kb))?;
            }
        }
        FindingsOutput::Stix => {
            let bundle = cordon_detect::stix::bundle(findings, kb, now_ms());
            writeln!(out, "{}", serde_json::to_string_pretty(&bundle)?)?;
        }
        FindingsOutput::Table => {
            writeln!(
                out,
                "{:<9} {:<19} {:<24} {:<34} {:<20} techniques",
                "severity", "kind", "first seen", "source → destination", "stage"
            )?;
            for f in findings {
                let path = format!("{} → {}", f.src, f.dst);
                writeln!(
                    out,
                    "{:<9} {:<19} {:<24} {:<34} {:<20} {}",
                    f.severity.as_str(),
                    f.kind,
                    format_rfc3339(f.first_ms),
                    path,
                    f.stage,
                    f.techniques.join(",")
                )?;
                writeln!(out, "          {}", f.evidence.summary)?;
            }
            writeln!(out, "{} findings", findings.len())?;
        }
    }
    Ok(())
}

/// `cordon detect`
pub fn detect(args: &DetectArgs) -> anyhow::Result<ExitCode> {
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
    let mut enricher = match &args.policy {
        None => None,
        Some(p) => match compile(p, &args.inventory) {
            Ok(c) => Some(Enricher::new(c)),
            Err(code) => return Ok(code),
        },
    };
    let mut engine = match engine(&args.detection) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let mut store = open_store(&args.store)?;
    let query = FlowQuery {
        since_ms,
        until_ms,
        ..FlowQuery::default()
    };
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last = Instant::now();
    store.scan(&query, &mut |mut flow| {
        if let Some(e) = &mut enricher {
            e.enrich(&mut flow);
        }
        engine.observe(&flow);
        if progress && last.elapsed().as_millis() >= 200 {
            last = Instant::now();
            eprint!("\r\x1b[Kdetecting: {} flows", engine.flows());
        }
        true
    })?;
    if progress {
        eprint!("\r\x1b[K");
    }
    let flows = engine.flows();
    let findings = engine.finish();
    let kb = Kb::embedded()?;
    let mut findings = save(&mut store, findings)?;
    findings.retain(|f| min.is_none_or(|m| f.severity >= m));
    let output = if args.json {
        FindingsOutput::Json
    } else {
        args.output
    };
    print(&findings, output, &kb)?;
    if output == FindingsOutput::Table {
        eprintln!(
            "{flows} flows examined in {:.2}s (store: {})",
            started.elapsed().as_secs_f64(),
            args.store.path().display()
        );
    }
    let failed = fail_on.is_some_and(|t| findings.iter().any(|f| f.severity >= t));
    Ok(ExitCode::from(if failed { EXIT_FINDINGS } else { 0 }))
}

/// Run a simulation into `dir`; the ground truth and the files written.
pub(crate) fn run_simulation(
    scenario: Scenario,
    format: OutFormat,
    hours: u32,
    seed: u64,
    dir: &Path,
) -> anyhow::Result<(cordon_sim::truth::Truth, Vec<std::path::PathBuf>, u64)> {
    let mut writer = FlowWriter::create(format, dir)
        .with_context(|| format!("cannot write into `{}`", dir.display()))?;
    let sim = Simulation::new(scenario, hours, seed);
    let mut error: Option<std::io::Error> = None;
    let mut dns_error: Option<std::io::Error> = None;
    let writer_cell = std::cell::RefCell::new(&mut writer);
    let truth = sim.run(
        &mut |c| {
            if error.is_none()
                && let Err(e) = writer_cell.borrow_mut().conn(c)
            {
                error = Some(e);
            }
        },
        &mut |d| {
            if dns_error.is_none()
                && let Err(e) = writer_cell.borrow_mut().dns(d)
            {
                dns_error = Some(e);
            }
        },
    );
    if let Some(e) = error.or(dns_error) {
        return Err(e).with_context(|| format!("cannot write into `{}`", dir.display()));
    }
    let records = writer.records;
    let mut files = writer
        .finish()
        .with_context(|| format!("cannot write into `{}`", dir.display()))?;
    let truth_path = dir.join("truth.json");
    std::fs::write(&truth_path, serde_json::to_string_pretty(&truth)?)
        .with_context(|| format!("cannot write `{}`", truth_path.display()))?;
    files.push(truth_path);
    Ok((truth, files, records))
}

/// `cordon simulate`
pub fn simulate(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let Some(scenario) = Scenario::from_name(&args.scenario) else {
        let names: Vec<&str> = Scenario::ALL.iter().map(|(n, _)| *n).collect();
        return usage(format!(
            "--scenario: unknown scenario `{}` (one of {})",
            args.scenario,
            names.join(", ")
        ));
    };
    let Some(format) = OutFormat::from_name(&args.format) else {
        let names: Vec<&str> = OutFormat::ALL.iter().map(|(n, _)| *n).collect();
        return usage(format!(
            "--format: unknown format `{}` (one of {})",
            args.format,
            names.join(", ")
        ));
    };
    let started = Instant::now();
    let (truth, files, records) =
        run_simulation(scenario, format, args.hours, args.seed, &args.out)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "scenario": truth.scenario,
                "format": args.format,
                "hours": truth.hours,
                "seed": truth.seed,
                "records": records,
                "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                "steps": truth.steps,
            }))?
        );
    } else {
        println!(
            "{}: {} hours, seed {}, {records} {} records in {:.2}s",
            truth.scenario,
            truth.hours,
            truth.seed,
            args.format,
            started.elapsed().as_secs_f64()
        );
        for s in &truth.steps {
            println!(
                "  {:<18} {:<20} {} flows from {}  ({})",
                s.id,
                s.stage,
                s.flows,
                format_rfc3339(s.start_ms),
                s.techniques.join(", ")
            );
        }
        for f in &files {
            println!("  wrote {}", f.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
