//! `cordon incidents`: list, show, acknowledge, resolve and reopen the
//! incidents `ingest --detect` and `detect` link findings into.

use std::process::ExitCode;

use cordon_detect::kb::Kb;
use cordon_flow::time::{format_rfc3339, now_ms};
use cordon_incident::{Status, StatusChange};
use cordon_store::{IncidentStore, StoreError};

use crate::args::{
    IncidentChangeArgs, IncidentListArgs, IncidentShowArgs, IncidentsArgs, IncidentsCommand,
};
use crate::common::{existing_store, usage};
use crate::{EXIT_FINDINGS, outln};

/// `cordon incidents`
pub fn run(args: IncidentsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        None => list(&args.list),
        Some(IncidentsCommand::List(a)) => list(&a),
        Some(IncidentsCommand::Show(a)) => show(&a),
        Some(IncidentsCommand::Ack(a)) => change(&a, Status::Acknowledged),
        Some(IncidentsCommand::Resolve(a)) => change(&a, Status::Resolved),
        Some(IncidentsCommand::Reopen(a)) => change(&a, Status::Open),
    }
}

/// An unknown incident: say so and how to find the right id; exit 1.
pub(crate) fn unknown(id: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: no incident `{id}` in the store (`cordon incidents` lists them)");
    Ok(ExitCode::from(EXIT_FINDINGS))
}

fn list(args: &IncidentListArgs) -> anyhow::Result<ExitCode> {
    let status = match args.status.as_deref().map(str::parse::<Status>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return usage(format!("--status: {e}")),
    };
    let store = existing_store(&args.store)?;
    let incidents = store.incidents(status)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&incidents)?);
        return Ok(ExitCode::SUCCESS);
    }
    if incidents.is_empty() {
        outln!(
            "no incidents{}",
            status.map(|s| format!(" {s}")).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<14} {:<8} {:<12} {:<6} {:<8} {:<24} TITLE",
        "ID",
        "SEVERITY",
        "STATUS",
        "STAGES",
        "FINDINGS",
        "FIRST SEEN"
    );
    for i in &incidents {
        outln!(
            "{:<14} {:<8} {:<12} {:<6} {:<8} {:<24} {}",
            i.id,
            i.severity.as_str(),
            i.status.as_str(),
            i.stages.len(),
            i.findings.len(),
            format_rfc3339(i.first_ms),
            i.title
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn show(args: &IncidentShowArgs) -> anyhow::Result<ExitCode> {
    let store = existing_store(&args.store)?;
    let Some((incident, findings)) = store.incident_with_findings(&args.id)? else {
        return unknown(&args.id);
    };
    if args.json {
        let value = serde_json::json!({"incident": incident, "findings": findings});
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let kb = Kb::embedded()?;
    outln!("{} — {}", incident.id, incident.title);
    outln!(
        "severity {} ({}); status {}",
        incident.severity.as_str(),
        incident.severity_reason,
        incident.status
    );
    outln!(
        "from {} to {}",
        format_rfc3339(incident.first_ms),
        format_rfc3339(incident.last_ms)
    );
    outln!("\nEntities");
    for e in &incident.entities {
        let ip = e.ip.map(|ip| format!(" ({ip})")).unwrap_or_default();
        outln!("  {:<9} {}{ip}", e.role.as_str(), e.label);
    }
    outln!("\nKill chain");
    for stage in &incident.stages {
        outln!(
            "  ■ {} {}",
            stage.name,
            stage.tactic.as_deref().unwrap_or("")
        );
        for id in &stage.findings {
            if let Some(f) = findings.iter().find(|f| &f.id == id) {
                outln!(
                    "    [{}] {} — {}",
                    f.severity.as_str(),
                    f.kind,
                    f.evidence.summary
                );
            }
        }
        outln!("      ATT&CK: {}", kb.named(&stage.techniques).join("; "));
    }
    outln!("\nControls: {}", incident.controls.join(", "));
    if !incident.history.is_empty() {
        outln!("\nHistory");
        for c in &incident.history {
            let note = if c.note.is_empty() {
                String::new()
            } else {
                format!(": {}", c.note)
            };
            outln!(
                "  {} {} by {}{note}",
                format_rfc3339(c.at_ms),
                c.status,
                c.by
            );
        }
    }
    outln!(
        "\nReport: cordon report {} --format html --out {}.html",
        incident.id,
        incident.id
    );
    Ok(ExitCode::SUCCESS)
}

fn change(args: &IncidentChangeArgs, status: Status) -> anyhow::Result<ExitCode> {
    let by = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "cli".to_string());
    if by.len() > 200 || args.note.len() > 10_000 {
        return usage("--by is at most 200 bytes and --note at most 10,000");
    }
    let mut store = existing_store(&args.store)?;
    let change = StatusChange {
        status,
        by,
        at_ms: now_ms(),
        note: args.note.clone(),
    };
    let incident = match store.set_status(&args.id, change) {
        Ok(i) => i,
        Err(StoreError::NotFound { .. }) => return unknown(&args.id),
        Err(e) => return Err(e.into()),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&incident)?);
    } else {
        outln!(
            "{} is {} ({})",
            incident.id,
            incident.status,
            incident.title
        );
    }
    Ok(ExitCode::SUCCESS)
}
