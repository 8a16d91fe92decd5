//! `cordon simulate`: the example company's traffic with an attack in it,
//! as flow logs with their ground truth.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use cordon_flow::time::format_rfc3339;
use cordon_sim::Scenario;
use cordon_sim::write::{OutFormat, write_simulation};
use serde_json::json;

use crate::args::SimulateArgs;
use crate::common::usage;
use crate::outln;

/// `cordon simulate`
pub fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
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
        write_simulation(scenario, format, args.hours, args.seed, &args.out)
            .with_context(|| format!("cannot write into `{}`", args.out.display()))?;
    if args.json {
        outln!(
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
        outln!(
            "{}: {} hours, seed {}, {records} {} records in {:.2}s",
            truth.scenario,
            truth.hours,
            truth.seed,
            args.format,
            started.elapsed().as_secs_f64()
        );
        for s in &truth.steps {
            outln!(
                "  {:<18} {:<20} {} flows from {}  ({})",
                s.id,
                s.stage,
                s.flows,
                format_rfc3339(s.start_ms),
                s.techniques.join(", ")
            );
        }
        for f in &files {
            outln!("  wrote {}", f.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
