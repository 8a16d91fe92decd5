//! Binding the listeners, accepting clients within the connection limits,
//! reloading the policy, and shutting down with a drain.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::conn::{ClientConn, ClientCounts, ConnPermit};
use crate::http::{self, HttpMode};
use crate::identity::{self, Identity, Tokens};
use crate::record::RecordLog;
use crate::{Config, GatewayError, Shared, transparent};
use cordon_core::resolve::Resolver;
use cordon_fetch::{Pulled, Puller};
use cordon_policy::{CompiledPolicy, PolicySource};

/// Which kind of listener.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Explicit,
    TransparentTls,
    TransparentHttp,
    ClientTls,
}

/// A gateway with its listeners bound, ready to serve.
pub struct Gateway {
    shared: Arc<Shared>,
    source: PolicySource,
    puller: Option<Puller>,
    listeners: Vec<(Kind, TcpListener)>,
    admin: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, source })
}

impl Gateway {
    /// Load the policy and the files, and bind every listener. Nothing is
    /// served until [`Gateway::serve`].
    ///
    /// # Errors
    /// An invalid policy or file, or an address that cannot be bound.
    pub async fn bind(config: Config) -> Result<Gateway, GatewayError> {
        let mut source = PolicySource::from_origin(config.origin(), config.load.clone());
        let mut puller = config
            .pull
            .clone()
            .map(Puller::new)
            .transpose()
            .map_err(|e| GatewayError::Config(e.to_string()))?;
        if let Some(p) = &mut puller {
            pull(p, &mut source).await;
        }
        let (policy, _) = source.load()?;
        let compiled = CompiledPolicy::new(Arc::new(policy));
        let bundle_version = source
            .bundle()
            .map_or(0, cordon_policy::bundle::Bundle::version);
        let hosts = match &config.hosts {
            None => Default::default(),
            Some(path) => {
                let text = read(path)?;
                cordon_core::hosts::Hosts::parse(&text)
                    .map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))?
            }
        };
        let tokens = match &config.tokens {
            None => Tokens::default(),
            Some(path) => Tokens::parse(&path.display().to_string(), &read(path)?)
                .map_err(|e| GatewayError::Config(e.to_string()))?,
        };
        let resolver = Resolver::new(hosts, config.dns, config.limits.dns_timeout)?;
        let tls = match &config.tls {
            None => None,
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(
                crate::tls::server_config(t).map_err(GatewayError::Config)?,
            )),
        };
        let mut listeners = Vec::new();
        for addr in &config.listen {
            listeners.push((Kind::Explicit, bind(*addr).await?));
        }
        if let Some(addr) = config.transparent_tls {
            listeners.push((Kind::TransparentTls, bind(addr).await?));
        }
        if let Some(addr) = config.transparent_http {
            listeners.push((Kind::TransparentHttp, bind(addr).await?));
        }
        if let Some(t) = &config.tls {
            listeners.push((Kind::ClientTls, bind(t.addr).await?));
        }
        let admin = match config.admin {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let mut own_ips: Vec<_> = listeners
            .iter()
            .map(|(_, l)| l)
            .chain(admin.iter())
            .filter_map(|l| l.local_addr().ok())
            .map(|a| a.ip())
            .collect();
        own_ips.sort();
        own_ips.dedup();
        let log = match &config.log {
            None => RecordLog::disabled(),
            Some(target) => RecordLog::start(target.clone())
                .await
                .map_err(|e| GatewayError::Config(format!("decision log: {e}")))?,
        };
        let pool = config
            .quota_pool
            .clone()
            .map(crate::quota::pool::Pool::new)
            .transpose()
            .map_err(GatewayError::Config)?
            .map(Arc::new);
        let response_doc = match &config.responses {
            None => cordon_response::Responses::default(),
            Some(path) => cordon_response::file::read(path)
                .map_err(|e| GatewayError::Config(format!("the responses file is invalid: {e}")))?,
        };
        let shared = Arc::new(Shared {
            response_doc: RwLock::new(response_doc),
            responses: RwLock::default(),
            policy: RwLock::new(Arc::new(compiled)),
            generation: watch::Sender::new(0),
            resolver,
            meters: Arc::new(crate::quota::Meters::new(pool)),
            metrics: Default::default(),
            log,
            own_ips,
            tokens,
            config,
            shutdown: watch::Sender::new(false),
        });
        shared
            .metrics
            .bundle_version
            .store(bundle_version, std::sync::atomic::Ordering::Relaxed);
        shared.set_responses(None);
        Ok(Gateway {
            shared,
            source,
            puller,
            listeners,
            admin,
            tls,
        })
    }

    /// The shared state (for tests and the admin side).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The bound addresses: explicit, transparent TLS, transparent HTTP,
    /// client TLS, in that order of kinds, then the admin listener.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .map(|(_, l)| l)
            .chain(self.admin.iter())
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serve until `shutdown` resolves, then stop accepting, let open
    /// connections finish for the drain time, and return.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let shared = self.shared.clone();
        let total = Arc::new(Semaphore::new(shared.config.limits.max_total));
        let counts: ClientCounts = Arc::new(Mutex::new(HashMap::new()));
        let mut tasks = Vec::new();
        for (kind, listener) in self.listeners {
            let (shared, total, counts, tls) = (
                shared.clone(),
                total.clone(),
                counts.clone(),
                self.tls.clone(),
            );
            tasks.push(tokio::spawn(accept_loop(
                kind, listener, shared, total, counts, tls,
            )));
        }
        if let Some(admin) = self.admin {
            tasks.push(tokio::spawn(crate::admin::serve(admin, shared.clone())));
        }
        tasks.push(tokio::spawn(watch_policy(
            shared.clone(),
            self.source,
            self.puller,
        )));
        if shared.config.responses.is_some() {
            tasks.push(tokio::spawn(watch_responses(shared.clone())));
        }
        if let Some(pool) = shared.meters.pool() {
            tasks.push(tokio::spawn(crate::quota::pool::hand_over_loop(
                pool.clone(),
                shared.meters.clone(),
            )));
        }
        shutdown.await;
        shared.shutdown.send_replace(true);
        for t in &tasks {
            t.abort();
        }
        // Every connection holds one permit: all permits back means drained.
        let max = u32::try_from(shared.config.limits.max_total).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(
            shared.config.limits.drain + Duration::from_secs(1),
            total.acquire_many(max),
        )
        .await;
        if drained.is_err() {
            tracing::warn!("drain time over; closing the connections still open");
        }
        // The last close records reach the log before the process ends.
        if !shared.log.flushed(Duration::from_secs(10)).await {
            tracing::warn!("the decision log did not take every record in 10 s");
        }
    }
}

fn read(path: &Path) -> Result<String, GatewayError> {
    std::fs::read_to_string(path)
        .map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))
}

async fn accept_loop(
    kind: Kind,
    listener: TcpListener,
    shared: Arc<Shared>,
    total: Arc<Semaphore>,
    counts: ClientCounts,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        shared
            .metrics
            .accepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let limits = &shared.config.limits;
        let Some(permit) = ConnPermit::take(&total, &counts, client.ip(), limits.max_per_client)
        else {
            shared
                .metrics
                .overloaded
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(overloaded(stream, kind));
            continue;
        };
        let conn = ClientConn {
            shared: shared.clone(),
            client,
            identity: Identity::by_address(client.ip()),
            permit,
            http_upstream: Mutex::new(None),
            upstream_watched: std::sync::atomic::AtomicBool::new(false),
            closed: tokio::sync::watch::Sender::new(()),
        };
        match kind {
            Kind::Explicit => {
                tokio::spawn(http::serve(stream, Arc::new(conn), HttpMode::Explicit));
            }
            Kind::TransparentHttp => {
                tokio::spawn(http::serve(stream, Arc::new(conn), HttpMode::Transparent));
            }
            Kind::TransparentTls => {
                tokio::spawn(transparent::serve(stream, Arc::new(conn)));
            }
            Kind::ClientTls => {
                if let Some(acceptor) = tls.clone() {
                    tokio::spawn(client_tls(stream, conn, acceptor));
                }
            }
        }
    }
}

/// Handshake with a client certificate, then serve it as an explicit proxy
/// client whose identity is the certificate's.
async fn client_tls(stream: TcpStream, mut conn: ClientConn, acceptor: tokio_rustls::TlsAcceptor) {
    let timeout = conn.shared.config.limits.header_timeout;
    let Ok(Ok(tls)) = tokio::time::timeout(timeout, acceptor.accept(stream)).await else {
        return;
    };
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|cert| identity::from_certificate(conn.client.ip(), cert.as_ref()));
    let Some(identity) = identity else { return };
    conn.identity = identity;
    http::serve(tls, Arc::new(conn), HttpMode::Explicit).await;
}

/// Answer 503 with `Retry-After` (HTTP listeners) and close.
async fn overloaded(mut stream: TcpStream, kind: Kind) {
    if matches!(kind, Kind::Explicit | Kind::TransparentHttp) {
        let body = "503 Service Unavailable: cordon gateway: too many connections\n";
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nx-cordon-decision: deny; reason=overload\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            stream.write_all(response.as_bytes()),
        )
        .await;
    }
}

/// What wakes a file watcher: its tick, or SIGHUP.
struct Wake {
    tick: tokio::time::Interval,
    hup: Option<tokio::signal::unix::Signal>,
}

impl Wake {
    fn new(every: Duration) -> Wake {
        Wake {
            tick: tokio::time::interval(every),
            hup: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// Wait for the next tick or SIGHUP; whether it was SIGHUP.
    async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.tick.tick() => false,
            Some(()) = async {
                match &mut self.hup {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        }
    }
}

/// Poll the bundle server once and offer what it sent; a failure is
/// logged and the bundle in force stays.
async fn pull(puller: &mut Puller, source: &mut PolicySource) {
    match puller.poll().await {
        Ok(Pulled::New(bytes)) => source.offer(bytes),
        Ok(Pulled::NotModified) => {}
        Err(e) => tracing::warn!(
            error = %e,
            "cannot fetch the policy bundle; the policy in force stays"
        ),
    }
}

/// Reload on SIGHUP and when the policy changes: the policy file or bundle
/// file (checked every second by modification time and size), or a bundle
/// the puller brought (polled at its interval). A refused bundle or an
/// invalid policy leaves the policy in force.
async fn watch_policy(shared: Arc<Shared>, mut source: PolicySource, mut puller: Option<Puller>) {
    let mut wake = Wake::new(Duration::from_secs(1));
    let every = puller
        .as_ref()
        .map_or(Duration::from_secs(3600), Puller::every);
    let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            hup = wake.next() => if hup {
                source.request_reload();
            },
            _ = poll.tick(), if puller.is_some() => if let Some(p) = &mut puller {
                pull(p, &mut source).await;
            },
        }
        if !source.changed() {
            continue;
        }
        match shared.reload_from(&mut source) {
            Ok(()) => tracing::info!(
                policy = %source.location(),
                bundle_version = source.bundle().map(cordon_policy::bundle::Bundle::version),
                generation = *shared.generation.borrow(),
                "policy reloaded"
            ),
            Err(e) if matches!(source.origin(), cordon_policy::Origin::Bundle(_)) => {
                tracing::error!(
                    policy = %source.location(),
                    "the new policy bundle is refused; the policy in force stays:\n{e}"
                );
            }
            Err(e) => tracing::error!(
                policy = %source.location(),
                "the new policy is invalid; the previous policy stays in force:\n{e}"
            ),
        }
    }
}

/// Follow the responses file: read it when it changes (a stat ten times a
/// second: a response is enforced within that of being written) and on
/// SIGHUP, keep the last good document when a new one is
/// invalid, and resolve the responses again when one expires.
async fn watch_responses(shared: Arc<Shared>) {
    let Some(path) = shared.config.responses.clone() else {
        return;
    };
    let mut source = cordon_response::file::Source::new(&path);
    // The document read at start is in force; this notes the file's state.
    let _ = source.load();
    let flag = source.reload_flag();
    let mut wake = Wake::new(Duration::from_millis(100));
    loop {
        if wake.next().await {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if source.changed() {
            match source.load() {
                Ok(doc) => {
                    tracing::info!(
                        responses = %path.display(),
                        generation = doc.generation,
                        "responses reloaded"
                    );
                    shared.set_responses(Some(doc.clone()));
                }
                Err(e) => tracing::error!(
                    responses = %path.display(),
                    "the responses file is invalid; the last good responses stay in force: {e}"
                ),
            }
            continue;
        }
        let due = shared
            .responses()
            .next_expiry
            .is_some_and(|e| cordon_flow::time::now_ms() >= e);
        if due {
            tracing::info!("a response expired");
            shared.set_responses(None);
        }
    }
}
