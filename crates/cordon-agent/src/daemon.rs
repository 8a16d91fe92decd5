//! The agent's run loop: compile the policy for this host, load the table,
//! record flows, cut what the policy revokes, and follow the policy file,
//! SIGHUP (through the [`PolicySource`]'s flag) and the DNS answers' TTLs,
//! keeping the last good ruleset whenever a new one fails.
//!
//! What happens is told to the caller as [`AgentEvent`]s (the command line
//! prints them) and logged with `tracing`.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cordon_core::hosts::{Hosts, HostsError};
use cordon_core::resolve::{ResolveError, Resolver};
use cordon_fetch::{PullOptions, Pulled, Puller};
use cordon_policy::{BundleOrigin, CompiledPolicy, LoadOptions, Origin, PolicyError, PolicySource};

use crate::flows::{self, Collector, FlowLog, FlowsError};
use crate::netlink::{self, Applied, Change, NetlinkError};
use crate::ruleset::response::{ResponseSets, response_sets};
use crate::{Ruleset, RulesetError, ruleset_with_responses};
use cordon_response::file::{FileError, Source as ResponseSource};

/// How often the loop looks at the policy file, the responses file and the
/// clock (a stat each: responses are enforced within this of a change).
const POLL: Duration = Duration::from_millis(100);
/// How soon a name that did not resolve is asked again.
const DNS_RETRY: Duration = Duration::from_secs(10);
/// Names resolved by the system resolver (no TTL) are asked again this often.
const SYSTEM_REFRESH: Duration = Duration::from_secs(60);
/// Names are never resolved again more often than this.
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// What the agent enforces, and for whom.
#[derive(Clone, Debug, Default)]
pub struct AgentConfig {
    /// The policy file; unused with `bundle`.
    pub policy: PathBuf,
    /// Signed policy bundles instead of the policy file: a bundle file
    /// watched, or bundles pulled from `pull`.
    pub bundle: Option<BundleOrigin>,
    /// Where bundles are pulled from, and how often.
    pub pull: Option<PullOptions>,
    /// Inventory files merged into the policy.
    pub load: LoadOptions,
    /// Workloads of the inventory this host is.
    pub workloads: Vec<String>,
    /// This host's addresses, besides its workloads'.
    pub self_ips: Vec<IpAddr>,
    /// A hosts(5) file that names resolve through first.
    pub hosts: Option<PathBuf>,
    /// A DNS server whose answers' TTLs say when to resolve again.
    pub dns: Option<SocketAddr>,
    /// Log would-deny and drop nothing.
    pub audit: bool,
    /// Record this host's flows here.
    pub flows: Option<PathBuf>,
    /// The responses file to follow (`kind: Responses`); missing means
    /// none, and is watched for its creation.
    pub responses: Option<PathBuf>,
}

/// Why the agent cannot (or can no longer) do its work.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The policy is invalid.
    #[error("the policy from `{path}` is refused:\n{source}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// Its diagnostics.
        source: PolicyError,
    },
    /// A workload named on the command line is not in the inventory.
    #[error("no workload named `{0}` in the inventory")]
    UnknownWorkload(String),
    /// The hosts file cannot be read.
    #[error("cannot read `{path}`: {source}")]
    HostsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The hosts file is invalid.
    #[error("{path}: {source}")]
    Hosts {
        /// The file.
        path: PathBuf,
        /// The bad line.
        source: HostsError,
    },
    /// The DNS client cannot start.
    #[error(transparent)]
    Dns(#[from] ResolveError),
    /// The policy bundle cannot be fetched.
    #[error("cannot fetch the policy bundle: {0}")]
    Pull(cordon_fetch::FetchError),
    /// A runtime for the DNS client cannot start.
    #[error("cannot start the DNS client: {0}")]
    Runtime(std::io::Error),
    /// The ruleset cannot be compiled.
    #[error(transparent)]
    Ruleset(#[from] RulesetError),
    /// The kernel refused the table or could not be asked.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The flow log cannot be opened.
    #[error("cannot open `{path}`: {source}")]
    FlowLog {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Flows cannot be collected.
    #[error(transparent)]
    Flows(#[from] FlowsError),
    /// The responses file is invalid; the last good responses stay.
    #[error("the responses file is invalid; the last good responses stay in force:\n{0}")]
    Responses(#[from] FileError),
}

/// What the agent did, for the caller to tell.
#[derive(Debug)]
pub enum AgentEvent<'a> {
    /// Flows are recorded to this file.
    RecordingFlows(&'a std::path::Path),
    /// The first table is in force.
    Applied {
        /// Rules for this host.
        rules: usize,
        /// Compile time.
        compile: Duration,
        /// Load time.
        apply: Duration,
        /// Audit mode: nothing is dropped.
        audit: bool,
    },
    /// A new table (or new set elements) is in force.
    Reloaded {
        /// Rules for this host.
        rules: usize,
        /// Compile time.
        compile: Duration,
        /// Load time.
        apply: Duration,
        /// What changed in the kernel.
        change: &'a Change,
    },
    /// A reload failed; the last good ruleset stays in force.
    ReloadFailed(&'a AgentError),
    /// Connections the policy now denies were cut.
    Cut(usize),
    /// Revoked connections could not be cut.
    CutFailed(&'a FlowsError),
    /// Responses in force that this host does not enforce, and why.
    ResponseWarning(&'a str),
}

/// A DNS client whose answers come with their TTL.
struct Dns {
    runtime: tokio::runtime::Runtime,
    resolver: Resolver,
}

impl Dns {
    fn new(server: SocketAddr) -> Result<Dns, AgentError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(AgentError::Runtime)?;
        let resolver = {
            let _inside = runtime.enter();
            Resolver::new(Hosts::default(), Some(server), Duration::from_secs(5))?
        };
        Ok(Dns { runtime, resolver })
    }

    /// The addresses of `name` and until when they hold.
    fn lookup(&self, name: &str) -> (Vec<IpAddr>, Option<Instant>) {
        let Ok(host) = cordon_core::Hostname::parse(name) else {
            return (Vec::new(), None);
        };
        match self.runtime.block_on(self.resolver.lookup_until(&host)) {
            Ok(answer) => answer,
            // No answer: ask again soon rather than at the next minute.
            Err(_) => (Vec::new(), Some(Instant::now() + DNS_RETRY)),
        }
    }
}

/// A compiled ruleset with the policy and addresses it was made for.
pub struct Compiled {
    /// The ruleset.
    pub ruleset: Ruleset,
    policy: Arc<CompiledPolicy>,
    ips: Vec<IpAddr>,
    /// When the first DNS answer used runs out.
    expires: Option<Instant>,
    /// The responses in force on this host.
    pub responses: ResponseSets,
    /// When a response in force expires next (ms since the epoch).
    response_expiry: Option<i64>,
    /// Responses not enforced here, and why.
    response_warnings: Vec<String>,
    took: Duration,
}

/// The bundle puller and the runtime its requests run on.
struct Pull {
    puller: Puller,
    runtime: tokio::runtime::Runtime,
    last: Instant,
}

/// The agent: its configuration, policy source and what is in force.
pub struct Agent {
    config: AgentConfig,
    source: PolicySource,
    pull: Option<Pull>,
    dns: Option<Dns>,
    applied: Option<Applied>,
    current: Option<flows::Current>,
    _collector: Option<Collector>,
    resolved_at: Instant,
    expires: Option<Instant>,
    responses: Option<ResponseSource>,
    response_expiry: Option<i64>,
    said: Vec<String>,
}

impl Agent {
    /// An agent for `config`; nothing is compiled or loaded yet.
    ///
    /// # Errors
    /// The DNS client cannot start.
    pub fn new(config: AgentConfig) -> Result<Agent, AgentError> {
        // Taken before the policy is first read: a change made while the
        // first ruleset loads is seen by the first check.
        let source = PolicySource::from_origin(
            Origin::of(&config.policy, config.bundle.as_ref()),
            config.load.clone(),
        );
        let pull = match &config.pull {
            None => None,
            Some(options) => Some(Pull {
                puller: Puller::new(options.clone()).map_err(AgentError::Pull)?,
                runtime: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(AgentError::Runtime)?,
                last: Instant::now(),
            }),
        };
        let dns = config.dns.map(Dns::new).transpose()?;
        let responses = config.responses.as_deref().map(ResponseSource::new);
        Ok(Agent {
            config,
            source,
            pull,
            dns,
            applied: None,
            current: None,
            _collector: None,
            resolved_at: Instant::now(),
            expires: None,
            responses,
            response_expiry: None,
            said: Vec::new(),
        })
    }

    /// Poll the bundle server (when bundles are pulled) and offer what it
    /// sent; whether anything new came.
    ///
    /// # Errors
    /// The server cannot be reached or answered with an error; the policy
    /// in force stays.
    pub fn pull(&mut self) -> Result<bool, AgentError> {
        let Some(p) = &mut self.pull else {
            return Ok(false);
        };
        p.last = Instant::now();
        match p.runtime.block_on(p.puller.poll()) {
            Ok(Pulled::New(bytes)) => {
                self.source.offer(bytes);
                Ok(true)
            }
            Ok(Pulled::NotModified) => Ok(false),
            Err(e) => Err(AgentError::Pull(e)),
        }
    }

    /// The version of the signed bundle in force, with bundles.
    pub fn bundle_version(&self) -> Option<u64> {
        self.source
            .bundle()
            .map(cordon_policy::bundle::Bundle::version)
    }

    /// The flag that asks for a reload when set (register it for SIGHUP).
    pub fn reload_flag(&self) -> Arc<AtomicBool> {
        self.source.reload_flag()
    }

    /// The flag that asks for the responses file to be read again (also
    /// SIGHUP); `None` without a responses file.
    pub fn responses_flag(&self) -> Option<Arc<AtomicBool>> {
        self.responses.as_ref().map(ResponseSource::reload_flag)
    }

    /// Read the responses file if it changed. On error the last good
    /// responses stay.
    ///
    /// # Errors
    /// The file cannot be read or is invalid.
    pub fn load_responses(&mut self) -> Result<(), AgentError> {
        if let Some(r) = &mut self.responses
            && r.changed()
        {
            let path = r.path().display().to_string();
            match r.load() {
                Ok(doc) => tracing::info!(
                    responses = %path,
                    generation = doc.generation,
                    "responses read"
                ),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Compile the ruleset from the policy file as it is now.
    ///
    /// # Errors
    /// An invalid policy, an unknown workload, a bad hosts file, or a
    /// ruleset that cannot be built.
    pub fn compile(&mut self) -> Result<Compiled, AgentError> {
        let started = Instant::now();
        let (policy, _) = self.source.load().map_err(|source| AgentError::Policy {
            path: self.source.location().into(),
            source,
        })?;
        let mut ips = self.config.self_ips.clone();
        for name in &self.config.workloads {
            let w = policy
                .workloads
                .iter()
                .find(|w| &w.name == name)
                .ok_or_else(|| AgentError::UnknownWorkload(name.clone()))?;
            ips.extend(w.ips.iter().copied());
        }
        let compiled = CompiledPolicy::new(Arc::new(policy));
        let hosts = match &self.config.hosts {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| AgentError::HostsFile {
                    path: p.clone(),
                    source,
                })?;
                Some(Hosts::parse(&text).map_err(|source| AgentError::Hosts {
                    path: p.clone(),
                    source,
                })?)
            }
        };
        // The hosts file first; then the DNS server, whose answers say how
        // long they hold; the system resolver only when neither is given.
        let dns = self.dns.as_ref();
        let expires: Cell<Option<Instant>> = Cell::new(None);
        let resolve = |name: &str| {
            if let Some(h) = &hosts {
                let found = h.lookup(name);
                if !found.is_empty() || dns.is_none() {
                    return found;
                }
            }
            match dns {
                Some(d) => {
                    let (found, until) = d.lookup(name);
                    if let Some(u) = until {
                        expires.set(Some(expires.get().map_or(u, |e| e.min(u))));
                    }
                    found
                }
                None => cordon_core::hosts::system(name),
            }
        };
        let now = cordon_flow::time::now_ms();
        let (responses, response_warnings, response_expiry) = match &self.responses {
            None => (ResponseSets::default(), Vec::new(), None),
            Some(source) => {
                // The never-block list: the document's, the
                // system's resolvers, and the DNS server this agent asks.
                let mut never = cordon_response::system_never_block();
                if let Some(d) = self.config.dns {
                    never.push((ipnet::IpNet::from(d.ip()), format!("DNS server {}", d.ip())));
                }
                let overlay =
                    cordon_response::Overlay::build(source.good(), &compiled, now, &never);
                let (sets, warnings) = response_sets(&overlay, &compiled, &ips, &resolve);
                (sets, warnings, overlay.next_expiry)
            }
        };
        let ruleset =
            ruleset_with_responses(&compiled, &ips, self.config.audit, &resolve, &responses)?;
        for w in &ruleset.warnings {
            tracing::warn!("{w}");
        }
        Ok(Compiled {
            ruleset,
            policy: Arc::new(compiled),
            ips,
            expires: expires.get(),
            responses,
            response_expiry,
            response_warnings,
            took: started.elapsed(),
        })
    }

    /// Put `first` in force: start recording flows (before the table, so
    /// its first denials are seen), load the table, cut what it revokes.
    ///
    /// # Errors
    /// The flow log or collector cannot start, or the kernel refused the
    /// table (the previous ruleset, if any, stays).
    pub fn start(
        &mut self,
        first: Compiled,
        on_event: &mut dyn FnMut(AgentEvent<'_>),
    ) -> Result<(), AgentError> {
        let current: flows::Current = Arc::new(std::sync::RwLock::new(first.policy.clone()));
        if let Some(path) = &self.config.flows {
            let log = FlowLog::open(path).map_err(|source| AgentError::FlowLog {
                path: path.clone(),
                source,
            })?;
            let collector =
                Collector::start(log, current.clone(), first.ips.clone(), self.config.audit)?;
            self._collector = Some(collector);
            on_event(AgentEvent::RecordingFlows(path));
        }
        let (applied, _, apply) = self.apply(&first, None, "applied")?;
        on_event(AgentEvent::Applied {
            rules: first.ruleset.rules,
            compile: first.took,
            apply,
            audit: self.config.audit,
        });
        self.applied = Some(applied);
        self.current = Some(current);
        self.expires = first.expires;
        self.response_expiry = first.response_expiry;
        self.tell_warnings(&first, on_event);
        self.resolved_at = Instant::now();
        self.cut(&first, on_event);
        Ok(())
    }

    /// Load `c`'s table over `previous` (if any), timed and logged as `what`.
    fn apply(
        &self,
        c: &Compiled,
        previous: Option<&Applied>,
        what: &'static str,
    ) -> Result<(Applied, Change, Duration), AgentError> {
        let started = Instant::now();
        let (applied, change) = netlink::apply(&c.ruleset.table, previous)?;
        let took = started.elapsed();
        tracing::info!(
            rules = c.ruleset.rules,
            apply_ms = took.as_millis() as u64,
            generation = self.source.generation(),
            "{what}"
        );
        Ok((applied, change, took))
    }

    /// Say each response warning once (until it goes away).
    fn tell_warnings(&mut self, c: &Compiled, on_event: &mut dyn FnMut(AgentEvent<'_>)) {
        for w in &c.response_warnings {
            if !self.said.contains(w) {
                tracing::warn!("{w}");
                on_event(AgentEvent::ResponseWarning(w));
            }
        }
        self.said.clone_from(&c.response_warnings);
    }

    /// After a ruleset is in force: cut this host's connections that the
    /// policy or a response now denies (established connections would
    /// outlive it).
    fn cut(&self, c: &Compiled, on_event: &mut dyn FnMut(AgentEvent<'_>)) {
        if self.config.audit {
            return;
        }
        let responses = &c.responses;
        let also = |src: IpAddr, dst: IpAddr| responses.cuts(src, dst, &c.ips);
        match flows::cut_denied(&c.policy, &c.ips, &also) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(connections = n, "cut revoked connections");
                on_event(AgentEvent::Cut(n));
            }
            Err(e) => {
                tracing::warn!(error = %e, "established connections the policy now denies stay open");
                on_event(AgentEvent::CutFailed(&e));
            }
        }
    }

    /// Follow the policy until `stop` is set: reload when the file changes,
    /// when the reload flag is set, and when DNS answers run out (at most
    /// once a second; every minute without TTLs). The ruleset changes only
    /// when what it would be differs from what is in force.
    pub fn run(&mut self, stop: &AtomicBool, on_event: &mut dyn FnMut(AgentEvent<'_>)) {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
            if self
                .pull
                .as_ref()
                .is_some_and(|p| p.last.elapsed() >= p.puller.every())
                && let Err(e) = self.pull()
            {
                tracing::warn!(error = %e, "cannot fetch the policy bundle; the policy in force stays");
            }
            let since = self.resolved_at.elapsed();
            let refresh = since >= SYSTEM_REFRESH
                || (self.expires.is_some_and(|e| Instant::now() >= e) && since >= MIN_REFRESH);
            let responses_changed = self.responses.as_ref().is_some_and(ResponseSource::changed);
            let expired = self
                .response_expiry
                .is_some_and(|e| cordon_flow::time::now_ms() >= e);
            if responses_changed && let Err(e) = self.load_responses() {
                tracing::error!(error = %e, "keeping the last good responses");
                on_event(AgentEvent::ReloadFailed(&e));
            }
            if !self.source.changed() && !refresh && !responses_changed && !expired {
                continue;
            }
            self.resolved_at = Instant::now();
            if let Err(e) = self.reload(on_event) {
                tracing::error!(error = %e, "keeping the last good ruleset");
                on_event(AgentEvent::ReloadFailed(&e));
            }
        }
        tracing::info!("stopped; the ruleset stays in force");
    }

    fn reload(&mut self, on_event: &mut dyn FnMut(AgentEvent<'_>)) -> Result<(), AgentError> {
        let c = self.compile()?;
        self.expires = c.expires;
        self.response_expiry = c.response_expiry;
        self.tell_warnings(&c, on_event);
        let Some(previous) = &self.applied else {
            return Ok(());
        };
        if c.ruleset.table == previous.table {
            return Ok(());
        }
        let (now, change, apply) = self.apply(&c, Some(previous), "reloaded")?;
        on_event(AgentEvent::Reloaded {
            rules: c.ruleset.rules,
            compile: c.took,
            apply,
            change: &change,
        });
        self.cut(&c, on_event);
        if let Some(current) = &self.current
            && let Ok(mut p) = current.write()
        {
            *p = c.policy.clone();
        }
        self.applied = Some(now);
        Ok(())
    }
}
