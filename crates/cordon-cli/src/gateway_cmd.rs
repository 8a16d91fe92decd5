//! `cordon gateway`: the arguments into a gateway configuration, a runtime,
//! and shutdown on SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use cordon_gateway::record::LogTarget;
use cordon_gateway::{Config, Gateway, GatewayError, Limits, TlsListen};
use cordon_policy::LoadOptions;

use crate::args::GatewayArgs;

/// Exit code for configuration errors (DESIGN §5: 64+).
const CONFIG_ERROR: u8 = 64;

fn config(args: &GatewayArgs) -> Result<Config, String> {
    let tls = match (
        &args.tls_listen,
        &args.tls_cert,
        &args.tls_key,
        &args.client_ca,
    ) {
        (Some(addr), Some(cert), Some(key), Some(ca)) => Some(TlsListen {
            addr: *addr,
            cert: cert.clone(),
            key: key.clone(),
            client_ca: ca.clone(),
        }),
        _ => None,
    };
    let (bundle, pull) = crate::bundle_cmd::feed(&args.feed)?.unzip();
    let quota_pool = args
        .quota_redis
        .clone()
        .map(|url| cordon_gateway::quota::pool::PoolConfig {
            url,
            fail: args.quota_fail.map(|f| match f {
                crate::args::QuotaFail::Open => cordon_gateway::quota::pool::FailMode::Open,
                crate::args::QuotaFail::Closed => cordon_gateway::quota::pool::FailMode::Closed,
            }),
            batch: args.quota_batch.max(1),
        });
    Ok(Config {
        quota_pool,
        policy: args.policy.clone().unwrap_or_default(),
        bundle,
        pull: pull.flatten(),
        load: LoadOptions {
            inventory: args.inventory.inventory.clone(),
        },
        listen: args.listen.clone(),
        transparent_tls: args.transparent_tls,
        transparent_http: args.transparent_http,
        tls,
        admin: args.admin,
        hosts: args.hosts.clone(),
        dns: args.dns,
        log: args.log.as_deref().map(|l| match l {
            "-" => LogTarget::Stdout,
            path => LogTarget::File(path.into()),
        }),
        tokens: args.tokens.clone(),
        responses: args.responses.clone(),
        upstream_tls_port: args.upstream_tls_port,
        upstream_http_port: args.upstream_http_port,
        limits: Limits {
            max_header_bytes: args.max_header_bytes,
            header_timeout: Duration::from_secs(args.header_timeout.max(1)),
            idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
            connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
            max_per_client: args.max_per_client.max(1),
            max_total: args.max_connections.max(1),
            drain: Duration::from_secs(args.drain),
            ..Limits::default()
        },
    })
}

/// Run the gateway until SIGTERM or Ctrl-C.
pub fn gateway(args: &GatewayArgs) -> anyhow::Result<ExitCode> {
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(CONFIG_ERROR));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let gateway = match Gateway::bind(config).await {
            Ok(g) => g,
            Err(e) => {
                match &e {
                    GatewayError::Policy(text) => {
                        eprintln!("{text}\nerror: no valid policy; the gateway did not start")
                    }
                    other => eprintln!("error: {other}"),
                }
                return Ok(ExitCode::from(CONFIG_ERROR));
            }
        };
        let addrs: Vec<String> = gateway.addrs().iter().map(ToString::to_string).collect();
        eprintln!(
            "cordon gateway: policy `{}` loaded; listening on {}",
            gateway.shared().policy().policy().name,
            addrs.join(", ")
        );
        gateway.serve(shutdown()).await;
        eprintln!("cordon gateway: stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("cordon gateway: shutting down; draining open connections");
}
