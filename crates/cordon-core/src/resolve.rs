//! Name resolution: a hosts(5) file first (tests and air-gapped sites), then
//! the DNS server named with `--dns`, else the system resolver. The gateway
//! resolves every name itself, checks every answer, and dials one of the
//! addresses it checked: the client's name is never handed to a second
//! lookup that could answer differently (DNS rebinding).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::hostname::Hostname;
use crate::hosts::Hosts;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// Why a name has no addresses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The name does not exist or has no A/AAAA records.
    #[error("`{0}` has no addresses")]
    NotFound(String),
    /// No answer in time.
    #[error("resolving `{0}` timed out")]
    Timeout(String),
    /// The DNS client could not be built.
    #[error("cannot build the DNS client for {server}: {reason}")]
    Client {
        /// The DNS server.
        server: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The resolver failed.
    #[error("resolving `{name}` failed: {reason}")]
    Failed {
        /// The name.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// How names are resolved.
pub struct Resolver {
    hosts: Hosts,
    dns: Option<TokioResolver>,
    timeout: Duration,
}

/// The most addresses used from one answer.
const MAX_ANSWERS: usize = 32;

impl Resolver {
    /// A resolver over `hosts`, then the DNS server at `dns` (UDP and TCP)
    /// or the system resolver.
    ///
    /// # Errors
    /// When the DNS client cannot be built.
    pub fn new(
        hosts: Hosts,
        dns: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<Self, ResolveError> {
        let dns = match dns {
            None => None,
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                server.connections = [ProtocolConfig::Udp, ProtocolConfig::Tcp]
                    .into_iter()
                    .map(|p| {
                        let mut c = ConnectionConfig::new(p);
                        c.port = addr.port();
                        c
                    })
                    .collect();
                let mut opts = ResolverOpts::default();
                opts.timeout = timeout;
                opts.attempts = 1;
                // The gateway decides per connection on a fresh answer within
                // its TTL; the cache is the resolver's, bounded.
                opts.cache_size = 4096;
                let resolver = hickory_resolver::Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
                .with_options(opts)
                .build()
                .map_err(|e| ResolveError::Client {
                    server: addr,
                    reason: e.to_string(),
                })?;
                Some(resolver)
            }
        };
        Ok(Resolver {
            hosts,
            dns,
            timeout,
        })
    }

    /// The addresses of `name`, hosts file first.
    ///
    /// # Errors
    /// [`ResolveError`].
    pub async fn lookup(&self, name: &Hostname) -> Result<Vec<IpAddr>, ResolveError> {
        self.lookup_until(name).await.map(|(addrs, _)| addrs)
    }

    /// The addresses of `name`, hosts file first, and until when they hold:
    /// the answer's TTL from the DNS server; `None` from the hosts file or
    /// the system resolver, which give no TTL.
    ///
    /// # Errors
    /// [`ResolveError`].
    pub async fn lookup_until(
        &self,
        name: &Hostname,
    ) -> Result<(Vec<IpAddr>, Option<Instant>), ResolveError> {
        let from_hosts = self.hosts.lookup(name.as_str());
        if !from_hosts.is_empty() {
            return Ok((from_hosts, None));
        }
        let mut until = None;
        let text = name.as_str().to_string();
        let mut out: Vec<IpAddr> = match &self.dns {
            Some(dns) => {
                // A trailing dot: the name is absolute, no search domains.
                let absolute = format!("{text}.");
                match tokio::time::timeout(self.timeout, dns.lookup_ip(absolute.as_str())).await {
                    Err(_) => return Err(ResolveError::Timeout(text)),
                    Ok(Err(e)) if e.is_no_records_found() => {
                        return Err(ResolveError::NotFound(text));
                    }
                    Ok(Err(e)) => {
                        return Err(ResolveError::Failed {
                            name: text,
                            reason: e.to_string(),
                        });
                    }
                    Ok(Ok(answer)) => {
                        until = Some(answer.valid_until());
                        answer.iter().collect()
                    }
                }
            }
            None => {
                let query = tokio::net::lookup_host((text.clone(), 0));
                match tokio::time::timeout(self.timeout, query).await {
                    Err(_) => return Err(ResolveError::Timeout(text)),
                    Ok(Err(_)) => return Err(ResolveError::NotFound(text)),
                    Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                }
            }
        };
        out.dedup();
        out.truncate(MAX_ANSWERS);
        if out.is_empty() {
            return Err(ResolveError::NotFound(text));
        }
        Ok((out, until))
    }
}
