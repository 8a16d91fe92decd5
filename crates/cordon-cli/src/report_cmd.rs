//! `cordon report`: an incident told as a post-incident write-up, in
//! Markdown, self-contained HTML or JSON.

use std::process::ExitCode;

use anyhow::Context;
use cordon_detect::kb::Kb;
use cordon_flow::time::now_ms;
use cordon_incident::report;
use cordon_store::IncidentStore;

use crate::args::{ReportArgs, ReportFormat};
use crate::common::{existing_store, optional_policy};
use crate::incidents_cmd::unknown;
use crate::out;

/// `cordon report`
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let policy = match optional_policy(args.policy.as_deref(), &args.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let store = existing_store(&args.store)?;
    let Some((incident, findings)) = store.incident_with_findings(&args.id)? else {
        return unknown(&args.id);
    };
    let kb = Kb::embedded()?;
    let store_path = args.store.path().display().to_string();
    let built = report::build(
        &incident,
        &findings,
        &kb,
        policy.as_ref(),
        Some(&store_path),
        now_ms(),
    );
    let text = match args.format {
        ReportFormat::Md => report::markdown(&built),
        ReportFormat::Html => report::html(&built),
        ReportFormat::Json => serde_json::to_string_pretty(&built)? + "\n",
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            eprintln!("report of {} written to {}", incident.id, path.display());
        }
        None => out!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
