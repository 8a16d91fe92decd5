//! `cordon ingest`, `cordon flows ...` and `cordon policy recommend`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cordon_flow::enrich::Enricher;
use cordon_flow::time::{format_rfc3339, now_ms, parse_time_arg};
use cordon_policy::fmt::format_policy;
use cordon_policy::raw::{RawRule, Spanned};
use cordon_policy::{Action, CompiledPolicy, LoadOptions, Mode, PortRange, Protocol};
use cordon_store::{FlowQuery, FlowStore, SqliteStore, topology_label};
use ipnet::IpNet;
use serde::Serialize;
use serde_json::json;

use crate::args::{
    AuditArgs, FlowsCommand, PruneArgs, QueryArgs, QueryOutput, RangeArgs, RecommendArgs,
    TopologyArgs, TopologyOutput,
};
use crate::policy_cmd::load;
use crate::{EXIT_FINDINGS, EXIT_USAGE};

pub fn run(cmd: FlowsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FlowsCommand::Query(args) => query(&args),
        FlowsCommand::Topology(args) => topology(&args),
        FlowsCommand::Audit(args) => audit(&args),
        FlowsCommand::Prune(args) => prune(&args),
    }
}

pub fn usage(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(EXIT_USAGE))
}

pub fn open_store(args: &crate::args::StoreArgs) -> anyhow::Result<SqliteStore> {
    let path = args.path();
    SqliteStore::open(&path)
        .with_context(|| format!("cannot open the flow store at `{}`", path.display()))
}

pub(crate) fn range(args: &RangeArgs) -> Result<(Option<i64>, Option<i64>), String> {
    let now = now_ms();
    let parse = |flag: &str, v: &Option<String>| -> Result<Option<i64>, String> {
        v.as_deref()
            .map(|t| {
                parse_time_arg(t, now).ok_or_else(|| {
                    format!("{flag}: `{t}` is not a time (RFC 3339, epoch seconds, or 24h/7d)")
                })
            })
            .transpose()
    };
    Ok((
        parse("--since", &args.since)?,
        parse("--until", &args.until)?,
    ))
}

fn cidr(flag: &str, v: &Option<String>) -> Result<Option<IpNet>, String> {
    v.as_deref()
        .map(|t| {
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{flag}: `{t}` is not an address or CIDR"))
        })
        .transpose()
}

pub fn compile(
    path: &std::path::Path,
    inventory: &crate::args::InventoryArgs,
) -> Result<Arc<CompiledPolicy>, ExitCode> {
    load(path, inventory).map(|p| Arc::new(CompiledPolicy::new(Arc::new(p))))
}

fn protocol_arg(p: &str) -> Option<u8> {
    Protocol::from_name(p)
        .map(|p| p.0)
        .or_else(|| p.parse().ok())
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
    let store = open_store(&args.store)?;
    let flows = store.query(&FlowQuery {
        since_ms,
        until_ms,
        addr,
        src,
        dst,
        group: args.group.clone(),
        port: args.port,
        protocol,
        verdict: args.verdict.clone(),
        vendor: args.vendor.clone(),
        limit: Some(args.limit),
    })?;
    let output = if args.json {
        QueryOutput::Json
    } else {
        args.output
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match output {
        QueryOutput::Json => {
            for f in &flows {
                writeln!(out, "{}", serde_json::to_string(f)?)?;
            }
        }
        QueryOutput::Ocsf => {
            for f in &flows {
                writeln!(out, "{}", cordon_flow::ocsf::network_activity(f))?;
            }
        }
        QueryOutput::Csv => {
            writeln!(
                out,
                "start,end,source,src_ip,src_port,dst_ip,dst_port,protocol,bytes_out,bytes_in,packets_out,packets_in,hostname,src_workload,dst_workload,src_groups,dst_groups,vendor,verdict,rule"
            )?;
            for f in &flows {
                let e = f.enrichment.clone().unwrap_or_default();
                let fields = [
                    format_rfc3339(f.start_ms),
                    format_rfc3339(f.end_ms),
                    f.source.to_string(),
                    f.src_ip.to_string(),
                    f.src_port.to_string(),
                    f.dst_ip.to_string(),
                    f.dst_port.to_string(),
                    f.protocol.to_string(),
                    f.bytes_out.to_string(),
                    f.bytes_in.to_string(),
                    f.packets_out.to_string(),
                    f.packets_in.to_string(),
                    f.hostname.clone().unwrap_or_default(),
                    e.src_workload.as_deref().unwrap_or_default().to_string(),
                    e.dst_workload.as_deref().unwrap_or_default().to_string(),
                    e.src_groups.join(";"),
                    e.dst_groups.join(";"),
                    e.vendor.as_deref().unwrap_or_default().to_string(),
                    e.verdict.to_string(),
                    e.rule.as_deref().unwrap_or_default().to_string(),
                ];
                let escaped: Vec<String> = fields.iter().map(|v| csv_field(v)).collect();
                writeln!(out, "{}", escaped.join(","))?;
            }
        }
        QueryOutput::Table => {
            writeln!(
                out,
                "{:<24} {:<7} {:<40} {:<40} {:>6} {:>10} {:>10}  verdict",
                "start", "source", "from", "to", "proto", "bytes out", "bytes in"
            )?;
            for f in &flows {
                let e = f.enrichment.as_ref();
                let side = |ip: IpAddr, port: u16, who: Option<&str>| match who {
                    Some(w) => format!("{w} ({ip}:{port})"),
                    None => format!("{ip}:{port}"),
                };
                writeln!(
                    out,
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
                )?;
            }
            writeln!(
                out,
                "{} flows{}",
                flows.len(),
                if flows.len() as u64 == args.limit {
                    " (limit reached; use --limit)"
                } else {
                    ""
                }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
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
        TopologyOutput::Json => println!("{}", serde_json::to_string_pretty(&edges)?),
        TopologyOutput::Dot => {
            println!("digraph cordon {{\n  rankdir=LR;\n  node [shape=box, style=rounded];");
            for e in &edges {
                let color = match &*e.verdict {
                    "deny" => "red",
                    "would-deny" => "orange",
                    "allow" => "darkgreen",
                    _ => "gray40",
                };
                println!(
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
            println!("}}");
        }
        TopologyOutput::Table => {
            println!(
                "{:<20} {:<20} {:<12} {:<11} {:>8} {:>12} {:>12}",
                "from", "to", "port", "verdict", "flows", "bytes out", "bytes in"
            );
            for e in &edges {
                println!(
                    "{:<20} {:<20} {:<12} {:<11} {:>8} {:>12} {:>12}",
                    e.src_group,
                    e.dst_group,
                    format!("{}/{}", Protocol(e.protocol).name(), e.dst_port),
                    e.verdict,
                    e.flows,
                    e.bytes_out,
                    e.bytes_in
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Stored flows the policy would deny, summed by group pair and port.
#[derive(Debug, Serialize)]
struct AuditRow {
    from: String,
    to: String,
    port: String,
    verdict: String,
    rule: Option<String>,
    flows: u64,
    bytes: u64,
    first: String,
    last: String,
    example: String,
}

/// Stored flows in a time range, enriched again with `compiled`.
fn reenriched(
    store: &crate::args::StoreArgs,
    (since_ms, until_ms): (Option<i64>, Option<i64>),
    compiled: Arc<CompiledPolicy>,
) -> anyhow::Result<Vec<cordon_flow::Flow>> {
    let mut enricher = Enricher::new(compiled);
    let mut flows = open_store(store)?.query(&FlowQuery {
        since_ms,
        until_ms,
        ..FlowQuery::default()
    })?;
    for f in &mut flows {
        enricher.enrich(f);
    }
    Ok(flows)
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
    let flows = reenriched(&args.store, range, compiled)?;
    let total = flows.len();
    let mut rows: BTreeMap<(String, String, String, String), AuditRow> = BTreeMap::new();
    for f in flows {
        let Some(e) = &f.enrichment else { continue };
        if &*e.verdict == "allow" {
            continue;
        }
        let from = topology_label(Some(&e.src_groups), f.src_ip).to_string();
        let to = topology_label(Some(&e.dst_groups), f.dst_ip).to_string();
        let port = if matches!(f.protocol, 6 | 17 | 132) {
            format!("{}/{}", Protocol(f.protocol).name(), f.dst_port)
        } else {
            Protocol(f.protocol).name()
        };
        let row = rows
            .entry((
                from.clone(),
                to.clone(),
                port.clone(),
                e.verdict.to_string(),
            ))
            .or_insert_with(|| AuditRow {
                from,
                to,
                port,
                verdict: e.verdict.to_string(),
                rule: e.rule.as_deref().map(str::to_string),
                flows: 0,
                bytes: 0,
                first: format_rfc3339(f.start_ms),
                last: format_rfc3339(f.start_ms),
                example: format!("{}:{} → {}:{}", f.src_ip, f.src_port, f.dst_ip, f.dst_port),
            });
        row.flows += 1;
        row.bytes += f.bytes_out + f.bytes_in;
        row.last = format_rfc3339(f.start_ms);
    }
    let mut rows: Vec<AuditRow> = rows.into_values().collect();
    rows.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.from.cmp(&b.from)));
    let denied: u64 = rows.iter().map(|r| r.flows).sum();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"flows": total, "denied": denied, "breaks": rows})
            )?
        );
    } else {
        for r in &rows {
            println!(
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
        println!(
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

pub fn recommend(args: &RecommendArgs) -> anyhow::Result<ExitCode> {
    let range = match range(&args.range) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let policy = match load(&args.policy, &args.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let compiled = Arc::new(CompiledPolicy::new(Arc::new(policy.clone())));
    let flows = reenriched(&args.store, range, compiled)?;
    // (from, to) → protocol → ports seen.
    let mut edges: BTreeMap<(String, String), BTreeMap<u8, std::collections::BTreeSet<u16>>> =
        BTreeMap::new();
    let mut counted = 0u64;
    for f in flows {
        if f.observed == Some(cordon_flow::Observed::Rejected) {
            continue;
        }
        let Some(e) = &f.enrichment else { continue };
        let pick = |groups: &[cordon_flow::Name]| -> Option<String> {
            groups
                .iter()
                .find(|g| !matches!(&***g, "internet" | "private"))
                .or_else(|| groups.iter().find(|g| &***g == "internet"))
                .map(|g| g.to_string())
        };
        let (Some(from), Some(to)) = (pick(&e.src_groups), pick(&e.dst_groups)) else {
            continue;
        };
        counted += 1;
        edges
            .entry((from, to))
            .or_default()
            .entry(f.protocol)
            .or_default()
            .insert(f.dst_port);
    }
    let mut raw = policy.raw.clone();
    raw.name = Spanned::new(args.name.clone(), raw.name.pos);
    raw.description = Some(format!(
        "Least-privilege allows proposed from {counted} observed flows; review, then switch to enforce"
    ));
    raw.mode = Some(Spanned::new(Mode::Audit, raw.name.pos));
    raw.default = Some(Spanned::new(Action::Deny, raw.name.pos));
    let pos = raw.name.pos;
    raw.rules = edges
        .into_iter()
        .map(|((from, to), protocols)| {
            let mut ports = Vec::new();
            for (proto, seen) in protocols {
                let protocol = Protocol(proto);
                if !protocol.has_ports() || seen.len() > 16 {
                    // Many ports (or none): the protocol as a whole, for review.
                    ports.push(PortRange {
                        protocol: Some(protocol),
                        first: 0,
                        last: u16::MAX,
                    });
                } else {
                    ports.extend(seen.into_iter().map(|p| PortRange {
                        protocol: Some(protocol),
                        first: p,
                        last: p,
                    }));
                }
            }
            RawRule {
                name: Spanned::new(format!("{from}-to-{to}"), pos),
                description: Some("observed traffic".to_string()),
                from: vec![Spanned::new(from, pos)],
                to: vec![Spanned::new(to, pos)],
                ports: ports.into_iter().map(|p| Spanned::new(p, pos)).collect(),
                action: Spanned::new(Action::Allow, pos),
                limit: None,
                log: false,
                mode: None,
            }
        })
        .collect();
    let text = format_policy(&raw);
    // What we print must be a valid policy; check before printing.
    let name = args.policy.display().to_string();
    if let Err(e) = cordon_policy::parse_policy(
        &name,
        &text,
        &LoadOptions {
            inventory: args.inventory.inventory.clone(),
        },
    ) {
        eprintln!("internal error: the recommended policy does not validate:\n{e}");
        return Ok(ExitCode::from(crate::EXIT_FAILURE));
    }
    print!("{text}");
    eprintln!("{} rules from {counted} flows", raw.rules.len());
    Ok(ExitCode::SUCCESS)
}

fn prune(args: &PruneArgs) -> anyhow::Result<ExitCode> {
    let Some(before) = parse_time_arg(&args.older_than, now_ms()) else {
        return usage(format!(
            "--older-than: `{}` is not a time (30d, 12h, RFC 3339 or epoch seconds)",
            args.older_than
        ));
    };
    let mut store = open_store(&args.store)?;
    let deleted = store.prune(before)?;
    println!(
        "deleted {deleted} flows that started before {}; {} remain",
        format_rfc3339(before),
        store.count()?
    );
    Ok(ExitCode::SUCCESS)
}
