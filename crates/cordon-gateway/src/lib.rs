//! Cordon's egress gateway: where egress is decided, metered and recorded.
//!
//! A forward proxy (HTTP CONNECT and absolute-form HTTP), a transparent
//! TLS listener that decides on the ClientHello's server name without
//! decrypting, and a transparent HTTP listener that decides on `Host`. Every
//! connection is judged by the policy on (client identity, hostname, port);
//! the gateway then resolves the name itself, refuses addresses that are
//! not public unless an allowing rule names them (the SSRF guard), dials
//! exactly the address it checked (no DNS rebinding), meters bytes against
//! the rule's egress limit, and writes a decision record and a close
//! record that the flow pipeline ingests.
//!
//! The main design choice is that the decision is a pure function of the
//! policy snapshot, the identity, the target and the resolver's answer
//! ([`decide::decide`]); listeners only parse, dial and relay. A reload
//! swaps the snapshot atomically and every open tunnel is judged again
//! under the new one at once (the *decision points* are: each CONNECT,
//! each HTTP request, and every reload for tunnels already open).
//!
//! ```
//! use cordon_gateway::target::{parse_authority, Host};
//! let t = parse_authority("API.Example.COM.:443", None).unwrap();
//! assert_eq!(t.to_string(), "api.example.com:443");
//! assert!(parse_authority("0x7f.1:80", None).is_err());
//! assert!(matches!(parse_authority("[::ffff:127.0.0.1]:80", None).unwrap().host, Host::Ip(ip) if ip.is_ipv4()));
//! ```

pub mod admin;
pub mod body;
pub mod conn;
pub mod decide;
pub mod guard;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod quota;
pub mod record;
pub mod server;
pub mod sni;
pub mod target;
pub mod tls;
pub mod transparent;
pub mod tunnel;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cordon_policy::{BundleOrigin, CompiledPolicy, LoadOptions, Origin, PolicyError, PolicySource};
use tokio::sync::watch;

pub use server::Gateway;

/// Resource limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// Time allowed to send a whole request head.
    pub header_timeout: Duration,
    /// A tunnel with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
    /// Time allowed to connect upstream.
    pub connect_timeout: Duration,
    /// Time allowed to resolve a name.
    pub dns_timeout: Duration,
    /// Time allowed for a complete ClientHello.
    pub hello_timeout: Duration,
    /// Concurrent connections from one client address.
    pub max_per_client: usize,
    /// Concurrent connections in all.
    pub max_total: usize,
    /// How long shutdown waits for open connections.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            dns_timeout: Duration::from_secs(5),
            hello_timeout: Duration::from_secs(10),
            max_per_client: 512,
            max_total: 20_000,
            drain: Duration::from_secs(30),
        }
    }
}

/// The TLS listener for clients with certificates.
#[derive(Clone, Debug)]
pub struct TlsListen {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The gateway's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// CA certificates that sign client certificates (PEM).
    pub client_ca: PathBuf,
}

/// Everything `cordon gateway` is told.
#[derive(Clone, Debug)]
pub struct Config {
    /// The policy file (reloaded on change and on SIGHUP); unused with
    /// `bundle`.
    pub policy: PathBuf,
    /// Signed policy bundles instead of the policy file: a bundle file
    /// watched, or bundles pulled from `pull`.
    pub bundle: Option<BundleOrigin>,
    /// Where bundles are pulled from, and how often.
    pub pull: Option<cordon_fetch::PullOptions>,
    /// Egress limits shared with other replicas through Redis.
    pub quota_pool: Option<quota::pool::PoolConfig>,
    /// Inventory files merged into the policy (reloaded with it).
    pub load: LoadOptions,
    /// Explicit proxy listeners.
    pub listen: Vec<SocketAddr>,
    /// Transparent TLS listener.
    pub transparent_tls: Option<SocketAddr>,
    /// Transparent HTTP listener.
    pub transparent_http: Option<SocketAddr>,
    /// TLS listener with client certificates.
    pub tls: Option<TlsListen>,
    /// Admin listener (`/metrics`, `/healthz`).
    pub admin: Option<SocketAddr>,
    /// hosts(5) file that overrides resolution.
    pub hosts: Option<PathBuf>,
    /// DNS server to ask.
    pub dns: Option<SocketAddr>,
    /// Decision log.
    pub log: Option<record::LogTarget>,
    /// Proxy tokens file.
    pub tokens: Option<PathBuf>,
    /// Port dialled for transparent TLS (the name comes from the SNI).
    pub upstream_tls_port: u16,
    /// Port dialled for transparent HTTP when `Host` names none.
    pub upstream_http_port: u16,
    /// Limits.
    pub limits: Limits,
    /// The responses file to follow (`kind: Responses`): quarantines and
    /// blocks refuse connections and close open tunnels; throttles lower
    /// vendors' egress limits.
    pub responses: Option<PathBuf>,
}

impl Config {
    /// Where the policy comes from.
    pub fn origin(&self) -> Origin {
        Origin::of(&self.policy, self.bundle.as_ref())
    }

    /// A configuration with defaults around `policy` and one listener.
    pub fn new(policy: PathBuf, listen: SocketAddr) -> Config {
        Config {
            policy,
            bundle: None,
            pull: None,
            quota_pool: None,
            load: LoadOptions::default(),
            listen: vec![listen],
            transparent_tls: None,
            transparent_http: None,
            tls: None,
            admin: None,
            hosts: None,
            dns: None,
            log: None,
            tokens: None,
            upstream_tls_port: 443,
            upstream_http_port: 80,
            limits: Limits::default(),
            responses: None,
        }
    }
}

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The policy is invalid.
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// The DNS client could not be built.
    #[error(transparent)]
    Resolver(#[from] cordon_core::resolve::ResolveError),
    /// A file could not be read or is invalid.
    #[error("{0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// State every connection shares.
pub struct Shared {
    policy: RwLock<Arc<CompiledPolicy>>,
    /// Bumped on every policy swap; open tunnels watch it.
    pub generation: watch::Sender<u64>,
    /// Name resolution.
    pub resolver: cordon_core::resolve::Resolver,
    /// Egress limit meters.
    pub meters: Arc<quota::Meters>,
    /// Counters.
    pub metrics: metrics::Metrics,
    /// The decision log.
    pub log: record::RecordLog,
    /// The gateway's own listening addresses (refused as destinations).
    pub own_ips: Vec<IpAddr>,
    /// Proxy tokens.
    pub tokens: identity::Tokens,
    /// The configuration.
    pub config: Config,
    /// Set when shutting down.
    pub shutdown: watch::Sender<bool>,
    /// The responses document last read (the last good one).
    pub response_doc: RwLock<cordon_response::Responses>,
    /// Its responses in force, resolved against the policy in force.
    responses: RwLock<Arc<cordon_response::Overlay>>,
}

impl Shared {
    /// The policy in force.
    pub fn policy(&self) -> Arc<CompiledPolicy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The responses in force.
    pub fn responses(&self) -> Arc<cordon_response::Overlay> {
        match self.responses.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The never-block addresses this gateway adds to the document's: its
    /// own addresses, its DNS server and the system's resolvers.
    pub fn never_block(&self) -> Vec<(ipnet::IpNet, String)> {
        let mut out = cordon_response::system_never_block();
        out.extend(self.own_ips.iter().map(|ip| {
            (
                ipnet::IpNet::from(*ip),
                format!("the gateway itself ({ip})"),
            )
        }));
        if let Some(d) = self.config.dns {
            out.push((ipnet::IpNet::from(d.ip()), format!("DNS server {}", d.ip())));
        }
        out
    }

    /// Resolve the responses document against the policy in force, as of
    /// now, without telling open tunnels.
    fn resolve_responses(&self) {
        let doc = match self.response_doc.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let overlay = cordon_response::Overlay::build(
            &doc,
            &self.policy(),
            cordon_flow::time::now_ms(),
            &self.never_block(),
        );
        for w in &overlay.warnings {
            tracing::warn!("{w}");
        }
        match self.responses.write() {
            Ok(mut r) => *r = Arc::new(overlay),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(overlay),
        }
    }

    /// Put `doc` (or, with `None`, the document held, as of now) in force
    /// and judge every open tunnel again.
    pub fn set_responses(&self, doc: Option<cordon_response::Responses>) {
        if let Some(doc) = doc {
            match self.response_doc.write() {
                Ok(mut d) => *d = doc,
                Err(poisoned) => *poisoned.into_inner() = doc,
            }
        }
        self.resolve_responses();
        self.generation.send_modify(|g| *g += 1);
    }

    /// Load the policy file as it is now and put it in force; on error the
    /// policy in force stays.
    ///
    /// # Errors
    /// The policy's diagnostics.
    pub fn reload(&self) -> Result<(), PolicyError> {
        self.reload_from(&mut PolicySource::from_origin(
            self.config.origin(),
            self.config.load.clone(),
        ))
    }

    /// Load the policy from `source` and put it in force; on error the
    /// policy in force stays.
    ///
    /// # Errors
    /// The policy's diagnostics.
    pub fn reload_from(&self, source: &mut PolicySource) -> Result<(), PolicyError> {
        match source
            .load()
            .map(|(policy, _)| CompiledPolicy::new(Arc::new(policy)))
        {
            Ok(compiled) => {
                match self.policy.write() {
                    Ok(mut p) => *p = Arc::new(compiled),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(compiled),
                }
                // Responses name the policy's groups: resolve them again.
                self.resolve_responses();
                self.generation.send_modify(|g| *g += 1);
                self.metrics
                    .reloads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(b) = source.bundle() {
                    self.metrics
                        .bundle_version
                        .store(b.version(), std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .reload_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(e)
            }
        }
    }
}
