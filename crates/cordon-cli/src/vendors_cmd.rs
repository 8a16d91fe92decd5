//! `cordon vendors`: the register of third parties the stored flows show.

use std::io::IsTerminal;
use std::process::ExitCode;

use cordon_detect::finding::human_bytes;
use cordon_flow::time::format_rfc3339;
use cordon_incident::vendors::{Register, csv};
use cordon_store::{FindingStore, FlowQuery, FlowReader, IncidentStore};

use crate::args::{VendorsArgs, VendorsOutput};
use crate::common::{existing_store, optional_policy, range, usage};
use crate::{out, outln};

/// `cordon vendors`
pub fn run(args: &VendorsArgs) -> anyhow::Result<ExitCode> {
    let (since_ms, until_ms) = match range(&args.range) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let policy = match optional_policy(args.policy.as_deref(), &args.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let store = existing_store(&args.store)?;
    let mut register = Register::new(policy.as_ref());
    let progress = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now();
    let query = FlowQuery {
        since_ms,
        until_ms,
        ..FlowQuery::default()
    };
    store.scan(&query, &mut |f| {
        register.add(&f);
        if progress && last.elapsed().as_millis() >= 200 {
            last = std::time::Instant::now();
            eprint!("\r\x1b[Kreading flows: {}", register.seen);
        }
        true
    })?;
    if progress {
        eprint!("\r\x1b[K");
    }
    let overflow = register.overflow;
    let seen = register.seen;
    let parties = register.finish(&store.findings(since_ms)?, &store.incidents(None)?);
    let output = if args.json {
        VendorsOutput::Json
    } else {
        args.output
    };
    match output {
        VendorsOutput::Json => outln!("{}", serde_json::to_string_pretty(&parties)?),
        VendorsOutput::Csv => out!("{}", csv(&parties)),
        VendorsOutput::Table => {
            outln!(
                "{:<34} {:<10} {:<9} {:>11} {:>11} {:>7} {:<24} {:<24} INTERNAL",
                "PARTY",
                "DECLARED",
                "CRIT",
                "OUT/DAY",
                "IN/DAY",
                "DENIED",
                "FIRST SEEN",
                "PORTS"
            );
            for p in &parties {
                let mut ports = p.ports.join(",");
                if ports.len() > 24 {
                    ports.truncate(21);
                    ports.push_str("...");
                }
                outln!(
                    "{:<34} {:<10} {:<9} {:>11} {:>11} {:>7} {:<24} {:<24} {}",
                    p.name,
                    if p.declared { "yes" } else { "UNDECLARED" },
                    p.criticality.as_deref().unwrap_or("-"),
                    human_bytes(p.bytes_out_per_day),
                    human_bytes(p.bytes_in_per_day),
                    p.denied,
                    if p.flows == 0 {
                        "never".to_string()
                    } else {
                        format_rfc3339(p.first_ms)
                    },
                    ports,
                    p.internal.join(", ")
                );
                if !p.findings.is_empty() || !p.incidents.is_empty() {
                    outln!(
                        "{:<34} {} finding(s), incident(s): {}",
                        "",
                        p.findings.len(),
                        if p.incidents.is_empty() {
                            "-".to_string()
                        } else {
                            p.incidents.join(", ")
                        }
                    );
                }
                for l in &p.limits {
                    outln!(
                        "{:<34} limit {} of {} per {} s: peak {} ({}%)",
                        "",
                        l.rule,
                        human_bytes(l.limit_bytes),
                        l.window_s,
                        human_bytes(l.peak_bytes),
                        l.peak_percent
                    );
                }
            }
            let undeclared = parties.iter().filter(|p| !p.declared).count();
            eprintln!(
                "{} parties ({undeclared} undeclared) in {seen} flows{}",
                parties.len(),
                if overflow > 0 {
                    format!("; {overflow} flows to further parties not listed (limit reached)")
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
