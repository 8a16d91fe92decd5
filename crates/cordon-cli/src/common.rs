//! What several commands share: usage errors, the store, time ranges,
//! loading and compiling policies, the detection engine, and printing
//! findings.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cordon_detect::config::Config;
use cordon_detect::intel::Intel;
use cordon_detect::kb::Kb;
use cordon_detect::{Engine, Finding, Severity};
use cordon_flow::time::{format_rfc3339, now_ms, parse_time_arg};
use cordon_policy::{CompiledPolicy, LoadOptions, Policy, PolicyError, load_policy};
use cordon_store::SqliteStore;
use ipnet::IpNet;

use crate::args::{DetectionArgs, FindingsOutput, InventoryArgs, RangeArgs, StoreArgs};
use crate::{EXIT_CONFIG, EXIT_USAGE, outln};

/// Say what is wrong with the command line; exit 2.
pub fn usage(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(EXIT_USAGE))
}

/// The store named by `args`.
pub fn open_store(args: &StoreArgs) -> anyhow::Result<SqliteStore> {
    let path = args.path();
    SqliteStore::open(&path)
        .with_context(|| format!("cannot open the store at `{}`", path.display()))
}

/// The store named by `args`, which must exist already: commands that only
/// read (incidents, reports, the vendor register) never create an empty one.
pub fn existing_store(args: &StoreArgs) -> anyhow::Result<SqliteStore> {
    let path = args.path();
    if !path.join("flows.sqlite").is_file() {
        anyhow::bail!(
            "no store at `{}` (give --store DIR or set CORDON_STORE; `cordon ingest` creates one)",
            path.display()
        );
    }
    open_store(args)
}

/// `--since` and `--until` as epoch milliseconds.
pub fn range(args: &RangeArgs) -> Result<(Option<i64>, Option<i64>), String> {
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

/// An address or CIDR argument.
pub fn cidr(flag: &str, v: &Option<String>) -> Result<Option<IpNet>, String> {
    v.as_deref()
        .map(|t| {
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{flag}: `{t}` is not an address or CIDR"))
        })
        .transpose()
}

/// How `--inventory` files are loaded.
pub fn load_options(inventory: &InventoryArgs) -> LoadOptions {
    LoadOptions {
        inventory: inventory.inventory.clone(),
    }
}

/// Every diagnostic of an invalid policy, and their count.
pub fn print_policy_errors(e: &PolicyError) {
    for d in &e.diagnostics {
        eprintln!("{d}");
    }
    let n = e.diagnostics.len();
    eprintln!("{n} error{}", if n == 1 { "" } else { "s" });
}

/// Load a policy, printing every error on failure.
pub fn load(path: &Path, inventory: &InventoryArgs) -> Result<Policy, ExitCode> {
    load_policy(path, &load_options(inventory)).map_err(|e| {
        print_policy_errors(&e);
        ExitCode::from(EXIT_CONFIG)
    })
}

/// The policy of an optional `--policy FILE`, printing every error on
/// failure.
pub fn optional_policy(
    path: Option<&Path>,
    inventory: &InventoryArgs,
) -> Result<Option<Policy>, ExitCode> {
    path.map(|p| load(p, inventory)).transpose()
}

/// Load and compile a policy, printing every error on failure.
pub fn compile(path: &Path, inventory: &InventoryArgs) -> Result<Arc<CompiledPolicy>, ExitCode> {
    load(path, inventory).map(|p| Arc::new(CompiledPolicy::new(Arc::new(p))))
}

/// A `--min-severity`/`--fail-on` argument.
pub fn severity_arg(flag: &str, v: Option<&str>) -> Result<Option<Severity>, String> {
    v.map(|s| {
        Severity::parse(s)
            .ok_or_else(|| format!("{flag}: `{s}` is not a severity (low, medium, high, critical)"))
    })
    .transpose()
}

/// Largest threat-intel feed read (feeds are held in memory while parsed).
const MAX_FEED_BYTES: u64 = 256 << 20;

/// The text of `path`, refusing files over `max` bytes before reading them.
pub fn read_limited(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB; split the file",
            max >> 20
        )));
    }
    Ok(text)
}

/// An engine with the detector settings and intel feeds of `args`, plus
/// the intelligence kept in `store` (pushed to its TAXII `intel`
/// collection or pulled with `cordon intel pull`) when given; an exit code
/// when they are invalid (after saying why).
pub fn engine(args: &DetectionArgs, store: Option<&SqliteStore>) -> Result<Engine, ExitCode> {
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
                Err(e) => {
                    eprint!("{e}");
                    return Err(ExitCode::from(EXIT_CONFIG));
                }
            }
        }
    };
    let intel = load_intel(args, store)?;
    let kb = match Kb::embedded() {
        Ok(kb) => kb,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(crate::EXIT_FAILURE));
        }
    };
    let intel = (!intel.is_empty() || !intel.skipped.is_empty()).then_some(intel);
    Ok(Engine::new(config, kb, intel))
}

/// The indicators of the `--intel` files of `args` and of `store`, with
/// what was skipped said on stderr; an exit code when a file is unusable.
pub fn load_intel(args: &DetectionArgs, store: Option<&SqliteStore>) -> Result<Intel, ExitCode> {
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
    if let Some(store) = store {
        match store_intel(store, &mut intel) {
            Ok(0) => {}
            Ok(n) => eprintln!("intel: {n} indicators from the store"),
            Err(e) => {
                eprintln!("error: reading the store's intelligence: {e}");
                return Err(ExitCode::from(crate::EXIT_FAILURE));
            }
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
    Ok(intel)
}

/// Add the indicators kept in `store` (the `intel` collection and pulled
/// sources) to `intel`; returns how many indicator objects were read.
///
/// # Errors
/// Database errors.
pub fn store_intel(
    store: &SqliteStore,
    intel: &mut Intel,
) -> Result<u64, cordon_store::StoreError> {
    use cordon_store::ExchangeStore as _;
    store.intel_objects(
        "indicator",
        &mut |_, body| match serde_json::from_str::<serde_json::Value>(body) {
            Ok(o) => intel.add_object(&o),
            Err(e) => intel.skipped.push(format!("a stored indicator: {e}")),
        },
    )
}

/// Print `findings` as asked; a STIX bundle also carries the `incidents`
/// they belong to (an `incident` and a `report` grouping each).
pub fn print_findings(
    findings: &[Finding],
    incidents: &[cordon_incident::Incident],
    output: FindingsOutput,
    kb: &Kb,
) -> anyhow::Result<()> {
    match output {
        FindingsOutput::Json => {
            for f in findings {
                outln!("{}", serde_json::to_string(f)?);
            }
        }
        FindingsOutput::Ocsf => {
            for f in findings {
                outln!("{}", cordon_detect::ocsf::detection_finding(f, kb));
            }
        }
        FindingsOutput::Stix => {
            let now = now_ms();
            let mut bundle = cordon_detect::stix::bundle(findings, kb, now);
            let shown: Vec<cordon_incident::Incident> = incidents
                .iter()
                .filter(|i| {
                    i.findings
                        .iter()
                        .any(|id| findings.iter().any(|f| &f.id == id))
                })
                .cloned()
                .collect();
            cordon_incident::export::add_to_bundle(&mut bundle, &shown, kb, now);
            outln!("{}", serde_json::to_string_pretty(&bundle)?);
        }
        FindingsOutput::Table => {
            // As wide as the longest kind, so every row lines up.
            let kind_width = cordon_core::FindingKind::ALL
                .iter()
                .map(|k| k.as_str().len())
                .max()
                .unwrap_or(4);
            outln!(
                "{:<9} {:<kind_width$} {:<24} {:<34} {:<20} techniques",
                "severity",
                "kind",
                "first seen",
                "source → destination",
                "stage"
            );
            for f in findings {
                let path = format!("{} → {}", f.src, f.dst);
                outln!(
                    "{:<9} {:<kind_width$} {:<24} {:<34} {:<20} {}",
                    f.severity.as_str(),
                    f.kind.as_str(),
                    format_rfc3339(f.first_ms),
                    path,
                    f.stage,
                    f.techniques.join(",")
                );
                outln!("          {}", f.evidence.summary);
            }
            outln!("{} findings", findings.len());
        }
    }
    Ok(())
}

/// The first line of a secret file (a token or a password), trimmed.
///
/// # Errors
/// The file cannot be read or its first line is empty.
pub fn secret(path: &Path) -> Result<String, String> {
    let text = read_limited(path, 64 * 1024)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        return Err(format!("`{}`: the first line is empty", path.display()));
    }
    Ok(line)
}

/// Warn when credentials would cross the network in the clear.
pub fn warn_plain_credentials(url: &url::Url) {
    let local = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !local {
        eprintln!(
            "warning: sending credentials over plain http to {}; use https",
            url.host_str().unwrap_or_default()
        );
    }
}
