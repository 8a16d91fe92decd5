//! `cordon flows ...`: stored flows listed, drawn as a topology, audited
//! against a policy, and pruned.

use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::Context as _;

use cordon_core::{Protocol, Verdict};
use cordon_flow::time::{format_rfc3339, now_ms, parse_time_arg};
use cordon_pipeline::{Audit, Pipeline};
use cordon_store::FlowQuery;
use cordon_store::prelude::*;
use serde_json::json;

use crate::args::{
    AuditArgs, FlowsCommand, PruneArgs, QueryArgs, QueryOutput, TopologyArgs, TopologyOutput,
};
use crate::common::{cidr, compile, open_store, range, usage};
use crate::{EXIT_FINDINGS, outln};

pub fn run(cmd: FlowsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FlowsCommand::Query(args) => query(&args),
        FlowsCommand::Topology(args) => topology(&args),
        FlowsCommand::Audit(args) => audit(&args),
        FlowsCommand::Prune(args) => prune(&args),
    }
}

/// Flows from the lake for the time before the store's oldest flow, then
/// from the store for the rest (the store alone when it reaches back far
/// enough; the lake alone when there is no store).
fn query_with_lake(
    args: &QueryArgs,
    lake: &str,
    q: &FlowQuery,
) -> anyhow::Result<Result<Vec<cordon_flow::Flow>, ExitCode>> {
    let location = match crate::lake_cmd::location(lake, &args.s3, "local") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Err(ExitCode::from(crate::EXIT_CONFIG)));
        }
    };
    let store = if args.store.path().join("flows.sqlite").is_file() {
        Some(open_store(&args.store)?)
    } else {
        None
    };
    let oldest = match &store {
        Some(s) => s.time_span()?.map(|(first, _)| first),
        None => None,
    };
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let mut flows = Vec::new();
    // The lake answers for what starts before the store's oldest flow.
    let lake_until = match (q.until_ms, oldest) {
        (Some(u), Some(o)) => Some(u.min(o)),
        (u, o) => u.or(o),
    };
    if lake_until.is_none_or(|u| q.since_ms.is_none_or(|s| s < u)) {
        let reader = cordon_lake::read::LakeReader::open(location)
            .with_context(|| format!("cannot read the lake at `{lake}`"))?;
        let mut stats = cordon_lake::read::ReadStats::default();
        let lake_q = FlowQuery {
            until_ms: lake_until,
            ..q.clone()
        };
        flows = reader
            .query(&lake_q, &mut stats)
            .with_context(|| format!("reading the lake at `{lake}`"))?;
        tracing::info!(
            flows = flows.len(),
            files = stats.files,
            files_opened = stats.files_opened,
            row_groups = stats.row_groups,
            row_groups_read = stats.row_groups_read,
            rows_read = stats.rows_read,
            bytes_fetched = stats.bytes_fetched,
            "read the lake"
        );
    }
    if let Some(store) = &store
        && flows.len() < limit
    {
        let store_q = FlowQuery {
            since_ms: match (q.since_ms, oldest) {
                (Some(s), Some(o)) => Some(s.max(o)),
                (s, o) => s.or(o),
            },
            limit: Some((limit - flows.len()) as u64),
            ..q.clone()
        };
        flows.extend(store.query(&store_q)?);
    }
    flows.truncate(limit);
    Ok(Ok(flows))
}

fn protocol_arg(p: &str) -> Option<u8> {
    Protocol::from_any_name(p).map(|p| p.0)
}

fn query(args: &QueryArgs) -> anyhow::Result<ExitCode> {
    let (since_ms, until_ms) = match range(&args.range) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let addrs = (|| {
        Ok::<_, String>((
            cidr("--addr", &args.addr)?,
            cidr("--src", &args.src)?,
            cidr("--dst", &args.dst)?,
        ))
    })();
    let (addr, src, dst) = match addrs {
        Ok(a) => a,
        Err(e) => return usage(e),
    };
    let protocol = match args.protocol.as_deref().map(|p| protocol_arg(p).ok_or(p)) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(p)) => return usage(format!("--protocol: unknown protocol `{p}`")),
    };
    let verdict = match args.verdict.as_deref().map(str::parse::<Verdict>) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => return usage(format!("--verdict: {e}")),
    };
    let q = FlowQuery {
        since_ms,
        until_ms,
        addr,
        src,
        dst,
        group: args.group.clone(),
        port: args.port,
        protocol,
        verdict,
        vendor: args.vendor.clone(),
        limit: Some(args.limit),
        through_block: None,
    };
    let flows = match &args.lake {
        None => open_store(&args.store)?.query(&q)?,
        Some(lake) => match query_with_lake(args, lake, &q)? {
            Ok(flows) => flows,
            Err(code) => return Ok(code),
        },
    };
    let output = if args.json {
        QueryOutput::Json
    } else {
        args.output
    };
    crate::output::bulk();
    match output {
        QueryOutput::Json => {
            for f in &flows {
                outln!("{}", serde_json::to_string(f)?);
            }
        }
        QueryOutput::Ocsf => {
            for f in &flows {
                outln!("{}", cordon_flow::ocsf::network_activity(f));
            }
        }
        QueryOutput::Csv => {
            outln!("{}", cordon_flow::csv::HEADER);
            for f in &flows {
                outln!("{}", cordon_flow::csv::row(f));
            }
        }
        QueryOutput::Table => {
            outln!(
                "{:<24} {:<7} {:<40} {:<40} {:>6} {:>10} {:>10}  verdict",
                "start",
                "source",
                "from",
                "to",
                "proto",
                "bytes out",
                "bytes in"
            );
            for f in &flows {
                let e = f.enrichment.as_ref();
                let side = |ip: IpAddr, port: u16, who: Option<&str>| match who {
                    Some(w) => format!("{w} ({ip}:{port})"),
                    None => format!("{ip}:{port}"),
                };
                outln!(
                    "{:<24} {:<7} {:<40} {:<40} {:>6} {:>10} {:>10}  {}",
                    format_rfc3339(f.start_ms),
                    f.source.as_str(),
                    side(
                        f.src_ip,
                        f.src_port,
                        e.and_then(|e| e.src_workload.as_deref())
                    ),
                    side(
                        f.dst_ip,
                        f.dst_port,
                        e.and_then(|e| e.dst_workload.as_deref())
                            .or(f.hostname.as_deref())
                    ),
                    Protocol(f.protocol).name(),
                    f.bytes_out,
                    f.bytes_in,
                    e.map_or("-".to_string(), |e| match &e.rule {
                        Some(r) => format!("{} ({r})", e.verdict),
                        None => e.verdict.to_string(),
                    })
                );
            }
            outln!(
                "{} flows{}",
                flows.len(),
                if flows.len() as u64 == args.limit {
                    " (limit reached; use --limit)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn topology(args: &TopologyArgs) -> anyhow::Result<ExitCode> {
    let (since_ms, until_ms) = match range(&args.range) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let store = open_store(&args.store)?;
    let edges = store.topology(&FlowQuery {
        since_ms,
        until_ms,
        ..FlowQuery::default()
    })?;
    let output = if args.json {
        TopologyOutput::Json
    } else {
        args.output
    };
    match output {
        TopologyOutput::Json => outln!("{}", serde_json::to_string_pretty(&edges)?),
        TopologyOutput::Dot => {
            outln!("digraph cordon {{\n  rankdir=LR;\n  node [shape=box, style=rounded];");
            for e in &edges {
                let color = match e.verdict {
                    Some(Verdict::Deny) => "red",
                    Some(Verdict::WouldDeny) => "orange",
                    Some(Verdict::Allow) => "darkgreen",
                    None => "gray40",
                };
                outln!(
                    "  {} -> {} [label={}, color={color}];",
                    dot_id(&e.src_group),
                    dot_id(&e.dst_group),
                    dot_id(&format!(
                        "{}/{} {} flows {} B",
                        Protocol(e.protocol).name(),
                        e.dst_port,
                        e.flows,
                        e.bytes_out + e.bytes_in
                    ))
                );
            }
            outln!("}}");
        }
        TopologyOutput::Table => {
            outln!(
                "{:<20} {:<20} {:<12} {:<11} {:>8} {:>12} {:>12}",
                "from",
                "to",
                "port",
                "verdict",
                "flows",
                "bytes out",
                "bytes in"
            );
            for e in &edges {
                outln!(
                    "{:<20} {:<20} {:<12} {:<11} {:>8} {:>12} {:>12}",
                    e.src_group,
                    e.dst_group,
                    format!("{}/{}", Protocol(e.protocol).name(), e.dst_port),
                    e.verdict.map_or("-", Verdict::as_str),
                    e.flows,
                    e.bytes_out,
                    e.bytes_in
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let range = match range(&args.range) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let compiled = match compile(&args.policy, &args.inventory) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&args.store)?;
    let mut audit = Audit::default();
    let mut pipeline = Pipeline::builder()
        .policy(Some(compiled))
        .observe(|f| audit.observe(f))
        .build();
    pipeline.replay(
        &store,
        &FlowQuery {
            since_ms: range.0,
            until_ms: range.1,
            ..FlowQuery::default()
        },
        &mut |_| {},
    )?;
    drop(pipeline);
    let report = audit.finish();
    let (total, denied, rows) = (report.flows, report.denied, &report.breaks);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"flows": total, "denied": denied, "breaks": rows})
            )?
        );
    } else {
        for r in rows {
            outln!(
                "{:<11} {} → {} {}: {} flows, {} bytes, {} … {} (e.g. {}){}",
                r.verdict,
                r.from,
                r.to,
                r.port,
                r.flows,
                r.bytes,
                r.first,
                r.last,
                r.example,
                r.rule
                    .as_ref()
                    .map(|x| format!(", rule {x}"))
                    .unwrap_or_default()
            );
        }
        outln!(
            "{denied} of {total} stored flows would be denied by {}",
            args.policy.display()
        );
    }
    Ok(ExitCode::from(if args.fail_on_deny && denied > 0 {
        EXIT_FINDINGS
    } else {
        0
    }))
}

fn prune(args: &PruneArgs) -> anyhow::Result<ExitCode> {
    let Some(before) = parse_time_arg(&args.older_than, now_ms()) else {
        return usage(format!(
            "--older-than: `{}` is not a time (30d, 12h, RFC 3339 or epoch seconds)",
            args.older_than
        ));
    };
    let mut store = open_store(&args.store)?;
    if let Some(lake) = &args.lake {
        let location = match crate::lake_cmd::location(lake, &args.s3, &args.partition.region) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: --lake: {e}");
                return Ok(ExitCode::from(crate::EXIT_CONFIG));
            }
        };
        let options = crate::lake_cmd::writer_options(&location, &args.partition, "prune");
        // Nothing is deleted unless the lake holds it first.
        let flushed = crate::lake_cmd::flush(&store, &location, &options);
        let flushed = flushed
            .with_context(|| format!("writing to the lake `{lake}`; nothing was deleted"))?;
        eprintln!(
            "lake: {} flows not yet there written to {lake} in {} files",
            flushed.rows,
            flushed.files.len()
        );
    }
    let deleted = store.prune(before)?;
    outln!(
        "deleted {deleted} flows that started before {}; {} remain",
        format_rfc3339(before),
        store.count()?
    );
    Ok(ExitCode::SUCCESS)
}
