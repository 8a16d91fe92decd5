//! `cordon intel`: pull TAXII collections into the store, push bundles or
//! findings to one, list the sources. The protocol is `cordon-taxii`'s;
//! this module reads arguments, secrets and files, and prints.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use cordon_flow::time::format_rfc3339;
use cordon_store::ExchangeStore as _;
use cordon_store::exchange::{FINDINGS, ObjectQuery};
use cordon_taxii::client::{Auth, Client, Options};
use cordon_taxii::pull::{PullError, PullSpec, default_name, pull};
use cordon_taxii::push::push;
use serde_json::{Value, json};

use crate::args::{IntelCommand, IntelListArgs, PullArgs, PushArgs, TaxiiServerArgs};
use crate::common::{
    existing_store, open_store, read_limited, secret, usage, warn_plain_credentials,
};
use crate::{EXIT_CONFIG, EXIT_FAILURE, outln};

/// Largest bundle file pushed.
const MAX_BUNDLE: u64 = 256 * 1024 * 1024;

/// `cordon intel ...`
pub fn run(cmd: IntelCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        IntelCommand::Pull(a) => run_pull(&a),
        IntelCommand::Push(a) => run_push(&a),
        IntelCommand::List(a) => list(&a),
    }
}

/// A client for `args`; an exit code after saying what is wrong.
fn client(args: &TaxiiServerArgs) -> Result<Client, ExitCode> {
    let fail = |m: String| {
        eprintln!("error: {m}");
        ExitCode::from(EXIT_CONFIG)
    };
    let url =
        url::Url::parse(&args.url).map_err(|e| fail(format!("--taxii `{}`: {e}", args.url)))?;
    let auth = match (&args.user, &args.password_file, &args.token_file) {
        (Some(user), Some(p), None) => Auth::Basic {
            user: user.clone(),
            password: secret(p).map_err(fail)?,
        },
        (None, None, Some(t)) => Auth::Bearer(secret(t).map_err(fail)?),
        _ => Auth::None,
    };
    if !matches!(auth, Auth::None) {
        warn_plain_credentials(&url);
    }
    let mut options = Options::new(url);
    options.auth = auth;
    options.ca_file = args.ca_file.clone();
    options.retries = args.retries;
    options.timeout = Duration::from_secs(args.timeout.max(1));
    Client::new(options).map_err(|e| fail(e.to_string()))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

fn run_pull(args: &PullArgs) -> anyhow::Result<ExitCode> {
    let client = match client(&args.server) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if args.limit == 0 {
        return usage("--limit must be at least 1");
    }
    let spec = PullSpec {
        name: args
            .name
            .clone()
            .unwrap_or_else(|| default_name(&client, &args.server.collection)),
        collection: args.server.collection.clone(),
        limit: args.limit,
    };
    let mut store = open_store(&args.store)?;
    let progress = std::io::stderr().is_terminal() && !args.json;
    let outcome = runtime()?.block_on(pull(&client, &mut store, &spec, &mut |r| {
        if progress {
            eprint!(
                "\r\x1b[Kpulling {}: {} pages, {} objects, {} new",
                r.source, r.pages, r.received, r.added
            );
        }
    }));
    if progress {
        eprint!("\r\x1b[K");
    }
    let (report, error) = match outcome {
        Ok(r) => (r, None),
        Err(PullError::Client { error, report }) => {
            let message = error.to_string();
            (*report, Some(message))
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(match e {
                PullError::Source(_) => EXIT_CONFIG,
                _ => EXIT_FAILURE,
            }));
        }
    };
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["error"] = json!(error);
        outln!("{v}");
    } else {
        outln!(
            "{}: {} pages, {} objects received, {} new, {} already kept, {} invalid",
            report.source,
            report.pages,
            report.received,
            report.added,
            report.present,
            report.invalid
        );
        for p in &report.problems {
            outln!("  invalid: {p}");
        }
    }
    if let Some(e) = error {
        eprintln!("error: {e}");
        eprintln!("  what was kept stays kept; the next pull resumes after it");
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

/// The objects of a bundle or envelope file.
fn objects_of(path: &std::path::Path) -> Result<Vec<Value>, String> {
    let text = read_limited(path, MAX_BUNDLE)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    match v.get("objects").and_then(Value::as_array) {
        Some(list) => Ok(list.clone()),
        None => Err(format!(
            "{}: not a STIX bundle or TAXII envelope (no `objects` list)",
            path.display()
        )),
    }
}

/// Every latest version in the store's `findings` collection.
fn findings_objects(store: &cordon_store::SqliteStore) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut query = ObjectQuery::all(FINDINGS, 5_000);
    loop {
        let page = store.objects(&query)?;
        for o in &page.objects {
            out.push(serde_json::from_str(&o.body)?);
        }
        match page.objects.last() {
            Some(last) if page.more => query.after = Some(last.cursor()),
            _ => return Ok(out),
        }
    }
}

fn run_push(args: &PushArgs) -> anyhow::Result<ExitCode> {
    let client = match client(&args.server) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let objects = if args.findings {
        let mut store = existing_store(&args.store)?;
        let kb = cordon_detect::kb::Kb::embedded()?;
        {
            use cordon_store::Store as _;
            store.publish_findings(&kb)?;
        }
        findings_objects(&store)?
    } else {
        let Some(file) = &args.file else {
            return usage("give a bundle FILE or --findings");
        };
        match objects_of(file) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        }
    };
    if objects.is_empty() {
        outln!("nothing to push");
        return Ok(ExitCode::SUCCESS);
    }
    let collection = args.server.collection.clone();
    let progress = std::io::stderr().is_terminal() && !args.json;
    let outcome = runtime()?.block_on(push(&client, &collection, &objects, &mut |r| {
        if progress {
            eprint!("\r\x1b[Kpushing: {} of {} objects", r.total, objects.len());
        }
    }));
    if progress {
        eprint!("\r\x1b[K");
    }
    let report = match outcome {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    };
    if args.json {
        outln!("{}", serde_json::to_value(&report)?);
    } else {
        outln!(
            "{} objects in {} envelopes: {} taken, {} refused, {} pending",
            report.total,
            report.envelopes,
            report.success,
            report.failure,
            report.pending
        );
        for (id, why) in report.failures.iter().take(20) {
            outln!("  refused: {id}: {why}");
        }
        if report.failures.len() > 20 {
            outln!("  ... and {} more refused", report.failures.len() - 20);
        }
    }
    Ok(if report.failure > 0 {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

fn list(args: &IntelListArgs) -> anyhow::Result<ExitCode> {
    let store = existing_store(&args.store)?;
    let sources = store.sources()?;
    let sizes = store.collection_sizes()?;
    if args.json {
        let own: serde_json::Map<String, Value> = sizes
            .iter()
            .filter(|(c, _)| !c.starts_with(cordon_store::exchange::SOURCE_PREFIX))
            .map(|(c, n)| (c.clone(), json!(n)))
            .collect();
        outln!("{}", json!({"sources": sources, "collections": own}));
        return Ok(ExitCode::SUCCESS);
    }
    if sources.is_empty() {
        outln!("no sources (pull one with `cordon intel pull --taxii URL --collection ID`)");
    } else {
        outln!(
            "{:<32} {:>8}  {:<24} {:<9} URL / COLLECTION",
            "SOURCE",
            "OBJECTS",
            "LAST PULL",
            "STATE"
        );
        for s in &sources {
            let last = s
                .last_pull_ms
                .map_or_else(|| "never".to_string(), format_rfc3339);
            let state = if s.complete { "complete" } else { "partial" };
            outln!(
                "{:<32} {:>8}  {:<24} {:<9} {} {}",
                s.name,
                s.objects,
                last,
                state,
                s.url,
                s.collection
            );
            if let Some(e) = &s.last_error {
                outln!("  last error: {e}");
            }
        }
    }
    let own: Vec<String> = sizes
        .iter()
        .filter(|(c, _)| !c.starts_with(cordon_store::exchange::SOURCE_PREFIX))
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    if !own.is_empty() {
        outln!(
            "collections served by `cordon serve` (object versions): {}",
            own.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
