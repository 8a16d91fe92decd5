//! `cordon serve`: the API and the console over a store.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cordon_policy::Policy;
use cordon_server::auth::Tokens;
use cordon_server::{App, router, serve};

use crate::EXIT_CONFIG;
use crate::args::ServeArgs;
use crate::common::optional_policy;

/// `cordon serve`
pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let policy = match optional_policy(args.policy.as_deref(), &args.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let tls = args.tls_cert.clone().zip(args.tls_key.clone());
    run_on(
        &args.store.path(),
        policy,
        args.listen,
        args.tokens.as_deref(),
        tls,
        args.responses.clone(),
        args.bundle.clone().map(|b| (b, args.bundle_trust.clone())),
    )
}

/// Serve `store` until Ctrl-C or SIGTERM (also what `demo --serve` runs).
pub fn run_on(
    store: &Path,
    policy: Option<Policy>,
    listen: std::net::SocketAddr,
    tokens: Option<&Path>,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    responses: Option<std::path::PathBuf>,
    bundle: Option<(std::path::PathBuf, Vec<std::path::PathBuf>)>,
) -> anyhow::Result<ExitCode> {
    let (bundle, trust) = match bundle {
        None => (None, Vec::new()),
        Some((file, keys)) => match crate::bundle_cmd::read_trust(&keys) {
            Ok(t) => (Some(file), t),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        },
    };
    let (tokens, token_file) = match tokens {
        Some(file) => match Tokens::from_file(file) {
            Ok(t) if !t.is_empty() => (t, None),
            Ok(_) => {
                eprintln!("error: {}: no tokens in it", file.display());
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        },
        None => Tokens::in_store(store)?,
    };
    // Findings stored before the TAXII collections existed (or by an older
    // version) are shared too: publish what changed since last time.
    {
        use cordon_store::Store as _;
        let kb = cordon_detect::kb::Kb::embedded().context("the knowledge base")?;
        let mut s = cordon_store::SqliteStore::open(store)
            .with_context(|| format!("cannot open the store at `{}`", store.display()))?;
        let published = s.publish_findings(&kb)?;
        if published > 0 {
            tracing::info!(published, "findings published to the TAXII collections");
        }
    }
    let app = Arc::new(
        App::new(store, policy, tokens, tls.is_some())
            .with_context(|| format!("cannot open the store at `{}`", store.display()))?
            .with_responses(responses)
            .with_bundle(bundle, trust),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        banner(format_args!("console: {scheme}://{addr}/"))?;
        banner(format_args!(
            "API:     {scheme}://{addr}/api/v1/ (OpenAPI at /api/v1/openapi.json)"
        ))?;
        banner(format_args!(
            "TAXII:   {scheme}://{addr}/taxii2/ (API root /taxii2/cordon/)"
        ))?;
        if let Some(file) = &token_file {
            banner(format_args!(
                "admin token (made on this first start; only its digest is kept): {}",
                file.display()
            ))?;
        }
        if let Err(e) = crate::output::flush()
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(e.into());
        }
        tracing::info!(%addr, store = %store_display(&app), "serving");
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                () = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
            }
        };
        serve(listener, router(Arc::clone(&app)), tls, shutdown).await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// A line of the start-up banner. A server keeps serving when whoever
/// read its standard output went away (`cordon serve | head -1`).
fn banner(line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    match crate::output::write(line, true) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn store_display(app: &App) -> String {
    app.store_dir.display().to_string()
}
