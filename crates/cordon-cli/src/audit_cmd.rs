//! `cordon audit`: stored cloud audit events.

use std::process::ExitCode;

use cordon_store::{AuditQuery, AuditStore};

use crate::args::{AuditCommand, AuditOutput, AuditQueryArgs};
use crate::common::{open_store, range, usage};
use crate::outln;

/// `cordon audit`
pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Query(args) => query(&args),
    }
}

fn query(args: &AuditQueryArgs) -> anyhow::Result<ExitCode> {
    let (since_ms, until_ms) = match range(&args.range) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    if let Some(c) = &args.cloud
        && !matches!(c.as_str(), "aws" | "gcp" | "azure")
    {
        return usage(format!("--cloud: `{c}` is not aws, gcp or azure"));
    }
    let store = open_store(&args.store)?;
    let events = store.events(&AuditQuery {
        since_ms,
        until_ms,
        cloud: args.cloud.clone(),
        account: args.account.clone(),
        principal: args.principal.clone(),
        action: args.action.clone(),
        source: args.source.clone(),
        failed_only: args.failed,
        limit: Some(args.limit),
    })?;
    let output = if args.json {
        AuditOutput::Json
    } else {
        args.output
    };
    crate::output::bulk();
    match output {
        AuditOutput::Json => {
            for e in &events {
                outln!("{}", serde_json::to_string(e)?);
            }
        }
        AuditOutput::Ocsf => {
            for e in &events {
                outln!("{}", cordon_audit::ocsf::event(e));
            }
        }
        AuditOutput::Table => {
            outln!(
                "{:<24} {:<5} {:<14} {:<44} {:<40} {:<18} {}",
                "time",
                "cloud",
                "account",
                "principal",
                "action",
                "source",
                "result"
            );
            for e in &events {
                outln!(
                    "{:<24} {:<5} {:<14} {:<44} {:<40} {:<18} {}",
                    cordon_flow::time::format_rfc3339(e.time_ms),
                    e.cloud.as_str(),
                    clip(&e.account, 14),
                    clip(&e.principal.id, 44),
                    clip(&format!("{}:{}", e.service, e.action), 40),
                    clip(&e.source, 18),
                    if e.success {
                        "ok".to_string()
                    } else {
                        e.error.clone().unwrap_or_else(|| "failed".into())
                    }
                );
            }
            eprintln!("{} events", events.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `s` cut to `n` characters, the cut marked.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let kept: String = s.chars().take(n.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}
