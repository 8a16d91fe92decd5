//! The flow pipeline, assembled in one place: a source's flows are turned
//! around when they are reply halves, named from the DNS answers their
//! clients saw, enriched with workloads, groups, vendor and the policy
//! verdict, then handed to the sinks: the store (in committed batches that
//! record how far each input got), the detection engine, live subscribers
//! and any observer a command adds.
//!
//! Every entry point (`ingest`, `collect`, `detect --policy`, `flows audit`,
//! `policy recommend`, `demo`, and the server) builds a [`Pipeline`] and
//! feeds it from one of the [`source`]s: files and standard input
//! ([`Pipeline::ingest_path`]), the NetFlow/IPFIX socket
//! ([`Pipeline::collect`]), flows already stored ([`Pipeline::replay`]),
//! or flows an in-process component produced ([`Pipeline::push`]). Gateway
//! and agent record streams are files of Cordon records, read like any
//! other file. A new sink or stage is added here once and works for all.
//!
//! ```
//! use cordon_flow::{Flow, FlowSource};
//! use cordon_pipeline::Pipeline;
//!
//! let mut reply = Flow::new(FlowSource::Aws, "10.0.2.10".parse().unwrap(), "10.0.1.10".parse().unwrap(), 6);
//! (reply.src_port, reply.dst_port) = (5432, 40001);
//! let mut seen = Vec::new();
//! let mut pipeline = Pipeline::builder().observe(|f| seen.push((f.src_port, f.dst_port))).build();
//! pipeline.push(vec![reply]).unwrap();
//! drop(pipeline);
//! assert_eq!(seen, [(40001, 5432)]);
//! ```

pub mod audit;
pub mod recommend;
pub mod source;
pub mod whatif;

use std::sync::Arc;

use cordon_detect::Engine;
use cordon_flow::Flow;
use cordon_flow::dns::DnsAnswers;
use cordon_flow::enrich::Enricher;
use cordon_flow::orient::orient_in_place;
use cordon_policy::CompiledPolicy;
use cordon_store::{FlowWriter, StoreError};
use tokio::sync::broadcast;

pub use audit::{Audit, AuditReport};
pub use recommend::{Recommendation, Recommender};
pub use source::file::{InputSummary, expand};
pub use source::netflow::CollectStats;
pub use whatif::{WhatIf, WhatIfReport};

/// Flows per committed batch.
pub const BATCH: usize = 20_000;

/// Batches a live subscriber may fall behind before it misses some.
const SUBSCRIBER_BACKLOG: usize = 256;

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The store failed; what it committed before stays.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A closure shown every prepared flow.
type Observer<'a> = Box<dyn FnMut(&Flow) + 'a>;

/// Flows handed to live subscribers, in the order they were prepared.
pub type FlowBatch = Arc<[Flow]>;

/// The stages every flow goes through before any sink sees it.
struct Prepare {
    dns: Option<Arc<DnsAnswers>>,
    enricher: Option<Enricher>,
}

impl Prepare {
    fn flow(&mut self, flow: &mut Flow) {
        orient_in_place(flow);
        name_from_dns(self.dns.as_deref(), flow);
        if let Some(e) = &mut self.enricher {
            e.enrich(flow);
        }
    }
}

/// Give `flow` the name its client resolved for the destination, when it
/// has none and a DNS answer was seen.
fn name_from_dns(dns: Option<&DnsAnswers>, flow: &mut Flow) {
    if flow.hostname.is_some() {
        return;
    }
    if let Some(name) = dns.and_then(|d| d.lookup(flow.src_ip, flow.dst_ip, flow.start_ms)) {
        flow.hostname = Some(name.to_string());
        flow.attr("hostname_from", "dns");
    }
}

/// Builds a [`Pipeline`]: the stages' inputs and the sinks.
#[derive(Default)]
pub struct Builder<'a> {
    policy: Option<Arc<CompiledPolicy>>,
    dns: Option<Arc<DnsAnswers>>,
    store: Option<&'a mut dyn FlowWriter>,
    engine: Option<&'a mut Engine>,
    observers: Vec<Observer<'a>>,
    subscribers: Option<broadcast::Sender<FlowBatch>>,
}

impl<'a> Builder<'a> {
    /// Enrich with `policy` (workloads, groups, vendor, verdict).
    #[must_use]
    pub fn policy(mut self, policy: Option<Arc<CompiledPolicy>>) -> Self {
        self.policy = policy;
        self
    }

    /// Name flows without a hostname from these DNS answers.
    #[must_use]
    pub fn dns(mut self, dns: Option<Arc<DnsAnswers>>) -> Self {
        self.dns = dns.filter(|d| !d.is_empty());
        self
    }

    /// Store flows here, committing with each input's offset.
    #[must_use]
    pub fn store(mut self, store: &'a mut dyn FlowWriter) -> Self {
        self.store = Some(store);
        self
    }

    /// Show every prepared flow to this detection engine.
    #[must_use]
    pub fn detect(mut self, engine: Option<&'a mut Engine>) -> Self {
        self.engine = engine;
        self
    }

    /// Show every prepared flow to `observe` too.
    #[must_use]
    pub fn observe(mut self, observe: impl FnMut(&Flow) + 'a) -> Self {
        self.observers.push(Box::new(observe));
        self
    }

    /// Allow live subscribers ([`Pipeline::subscribe`]).
    #[must_use]
    pub fn live(mut self) -> Self {
        self.subscribers = Some(broadcast::channel(SUBSCRIBER_BACKLOG).0);
        self
    }

    /// The pipeline.
    pub fn build(self) -> Pipeline<'a> {
        Pipeline {
            prepare: Prepare {
                dns: self.dns,
                enricher: self.policy.map(Enricher::new),
            },
            store: self.store,
            engine: self.engine,
            observers: self.observers,
            subscribers: self.subscribers,
            batch: Vec::new(),
        }
    }
}

/// One assembled chain from sources to sinks (see the crate docs).
pub struct Pipeline<'a> {
    prepare: Prepare,
    store: Option<&'a mut dyn FlowWriter>,
    engine: Option<&'a mut Engine>,
    observers: Vec<Observer<'a>>,
    subscribers: Option<broadcast::Sender<FlowBatch>>,
    /// Prepared flows waiting for the store's next commit.
    batch: Vec<Flow>,
}

impl<'a> Pipeline<'a> {
    /// A builder with no stages' inputs and no sinks.
    pub fn builder() -> Builder<'a> {
        Builder::default()
    }

    /// A receiver of every batch of prepared flows from now on; `None`
    /// when the pipeline was not built [`live`](Builder::live). A
    /// subscriber that falls behind misses batches (and is told so by the
    /// receiver) rather than slowing ingest down.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<FlowBatch>> {
        self.subscribers.as_ref().map(broadcast::Sender::subscribe)
    }

    /// Whether a store is attached.
    pub fn stores(&self) -> bool {
        self.store.is_some()
    }

    /// Prepare `flows` and hand them to every sink but the store, keeping
    /// them for the store's next commit.
    fn take(&mut self, flows: &mut Vec<Flow>) {
        let first = self.batch.len();
        for flow in flows.iter_mut() {
            self.prepare.flow(flow);
            if let Some(engine) = &mut self.engine {
                engine.observe(flow);
            }
            for observe in &mut self.observers {
                observe(flow);
            }
        }
        // Whole buffers change hands: a flow is not moved one by one.
        if self.batch.is_empty() {
            std::mem::swap(&mut self.batch, flows);
        } else {
            self.batch.append(flows);
        }
        if let Some(tx) = &self.subscribers
            && tx.receiver_count() > 0
            && let Some(new) = self.batch.get(first..)
            && !new.is_empty()
        {
            // No receiver left is not an error: subscribers come and go.
            let _ = tx.send(new.into());
        }
    }

    /// Write the waiting flows to the store as input `input`'s records up
    /// to `offset`; returns how many were written. Without a store the
    /// flows are dropped (they have been seen by every other sink).
    fn commit(&mut self, input: Option<i64>, offset: u64) -> Result<u64, PipelineError> {
        let n = self.batch.len() as u64;
        if let (Some(store), Some(input)) = (&mut self.store, input) {
            store.append(input, &self.batch, offset)?;
            tracing::debug!(input, offset, flows = n, "committed");
        }
        self.batch.clear();
        Ok(n)
    }

    /// Run flows an in-process component produced (the gateway's or the
    /// agent's records, a test) through the stages to every sink but the
    /// store, which needs an input to commit against.
    ///
    /// # Errors
    /// None today; the signature leaves room for sinks that fail.
    pub fn push(&mut self, mut flows: Vec<Flow>) -> Result<(), PipelineError> {
        self.take(&mut flows);
        self.batch.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
