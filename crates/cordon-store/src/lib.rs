//! Where flows and findings are kept: raw flows with retention, per-minute
//! rollups by (source group, destination group, port, protocol, verdict)
//! for the topology, findings as rows merged by id, and a ledger of what
//! has been ingested so re-running an ingest never duplicates flows.
//!
//! The crate is traits first: [`IngestLedger`] and [`FlowWriter`] take
//! flows in, [`FlowReader`] gives them back, [`FindingStore`] keeps
//! findings, and [`Store`] is all of them plus retention. Callers hold a
//! `dyn Store` (or a generic), so a second backend (a lake on a
//! distributed engine) is added beside [`sqlite`] without touching them.
//!
//! The embedded backend, [`SqliteStore`], is SQLite (bundled, so there is
//! nothing to install) in WAL mode: a killed process loses at most the batch
//! it was writing, and every batch commits together with the input offset
//! it reached, which is what makes ingest resumable and idempotent.
//!
//! ```
//! use cordon_flow::{Flow, FlowSource};
//! use cordon_store::{FlowQuery, FlowReader, FlowWriter, IngestLedger, SqliteStore};
//!
//! let dir = std::env::temp_dir().join(format!("cordon-doc-{}", std::process::id()));
//! let mut store = SqliteStore::open(&dir).unwrap();
//! let input = store.begin_input("doc:example", "example").unwrap();
//! let mut flow = Flow::new(FlowSource::Aws, "10.0.1.10".parse().unwrap(), "10.0.2.10".parse().unwrap(), 6);
//! flow.dst_port = 5432;
//! store.append(input.id, &[flow], 100).unwrap();
//! let found = store.query(&FlowQuery { port: Some(5432), ..FlowQuery::default() }).unwrap();
//! assert_eq!(found.len(), 1);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

pub mod exchange;
mod query;
pub mod sqlite;

pub use exchange::ExchangeStore;
pub use query::{Edge, FlowQuery, topology_label};

/// The store's traits, for `use cordon_store::prelude::*`.
pub mod prelude {
    pub use crate::{
        AuditStore, ExchangeStore, FindingStore, FlowReader, FlowWriter, IncidentStore,
        IngestLedger, Store,
    };
}
pub use sqlite::SqliteStore;

use cordon_detect::Finding;
use cordon_detect::kb::Kb;
use cordon_flow::Flow;
use cordon_incident::link::{Linked, link};
use cordon_incident::{Incident, Status, StatusChange};

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("store: {0}")]
    Database(#[from] rusqlite::Error),
    /// The store's folder could not be created or opened.
    #[error("store at `{path}`: {source}")]
    Io {
        /// The folder.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A stored value could not be read back.
    #[error("store: damaged {what}: {detail}")]
    Damaged {
        /// What was being read (`flow block 12`, `finding beaconing-...`).
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// A query argument is invalid.
    #[error("{0}")]
    Query(String),
    /// Nothing is stored under that id.
    #[error("no {what} `{id}` in the store")]
    NotFound {
        /// What was looked for (`incident`, `finding`).
        what: &'static str,
        /// The id asked for.
        id: String,
    },
}

/// An input being ingested, and how far earlier runs got.
#[derive(Clone, Debug)]
pub struct InputState {
    /// The store's id for the input.
    pub id: i64,
    /// Byte offset up to which records are already stored.
    pub committed_offset: u64,
    /// Whether a previous run finished the input.
    pub done: bool,
}

/// What has been ingested: inputs by a key that identifies their content,
/// with the offset each reached.
pub trait IngestLedger {
    /// Register an input by a key that identifies its content, returning how
    /// far earlier runs got with it.
    ///
    /// # Errors
    /// Database errors.
    fn begin_input(&mut self, key: &str, name: &str) -> Result<InputState, StoreError>;

    /// Mark an input as completely ingested.
    ///
    /// # Errors
    /// Database errors.
    fn finish_input(&mut self, input: i64) -> Result<(), StoreError>;
}

/// Flows in. Implementations must make [`FlowWriter::append`] atomic with
/// its offset, so an interrupted ingest resumes exactly.
pub trait FlowWriter: IngestLedger {
    /// Store `flows` (enriched or not) and record that the input's records
    /// before `committed_offset` are stored, atomically.
    ///
    /// # Errors
    /// Database errors; nothing of the batch is stored then.
    fn append(
        &mut self,
        input: i64,
        flows: &[Flow],
        committed_offset: u64,
    ) -> Result<(), StoreError>;
}

/// What to read of the stored audit events.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// From (inclusive), ms.
    pub since_ms: Option<i64>,
    /// Until (exclusive), ms.
    pub until_ms: Option<i64>,
    /// `aws`, `gcp` or `azure`.
    pub cloud: Option<String>,
    /// The account, project or subscription.
    pub account: Option<String>,
    /// Principals whose id contains this (case-insensitive).
    pub principal: Option<String>,
    /// Actions (`service:operation`) containing this (case-insensitive).
    pub action: Option<String>,
    /// The source as recorded (an address or a service name).
    pub source: Option<String>,
    /// Failed calls only.
    pub failed_only: bool,
    /// At most this many, oldest first.
    pub limit: Option<usize>,
}

/// Cloud audit events in and out, beside flows, with the same ledger.
pub trait AuditStore {
    /// Store `events` and record that the input's records before
    /// `committed_offset` are stored, atomically.
    ///
    /// # Errors
    /// Database errors; nothing of the batch is stored then.
    fn append_events(
        &mut self,
        input: Option<i64>,
        events: &[cordon_audit::AuditEvent],
        committed_offset: u64,
    ) -> Result<(), StoreError>;

    /// Events matching `query`, oldest first, handed to `sink` one at a
    /// time (memory stays flat over any range) until it returns `false`;
    /// returns how many were handed out.
    ///
    /// # Errors
    /// Database errors, and stored records that no longer read.
    fn scan_events(
        &self,
        query: &AuditQuery,
        sink: &mut dyn FnMut(cordon_audit::AuditEvent) -> bool,
    ) -> Result<u64, StoreError>;

    /// How many events are stored.
    ///
    /// # Errors
    /// Database errors.
    fn event_count(&self) -> Result<u64, StoreError>;

    /// Events matching `query`, oldest first (bounded by its `limit`).
    ///
    /// # Errors
    /// As [`AuditStore::scan_events`].
    fn events(&self, query: &AuditQuery) -> Result<Vec<cordon_audit::AuditEvent>, StoreError> {
        let mut out = Vec::new();
        self.scan_events(query, &mut |e| {
            out.push(e);
            true
        })?;
        Ok(out)
    }
}

/// Flows out.
pub trait FlowReader {
    /// Flows matching `query`, oldest first.
    ///
    /// # Errors
    /// Database errors or an invalid query.
    fn query(&self, query: &FlowQuery) -> Result<Vec<Flow>, StoreError>;

    /// Every flow matching `query` in time order, one at a time, without
    /// holding them all: `sink` returns false to stop. Returns how many
    /// flows were passed.
    ///
    /// # Errors
    /// Database errors or a damaged block.
    fn scan(
        &self,
        query: &FlowQuery,
        sink: &mut dyn FnMut(Flow) -> bool,
    ) -> Result<u64, StoreError>;

    /// Group-to-group edges in the time range of `query`.
    ///
    /// # Errors
    /// Database errors.
    fn topology(&self, query: &FlowQuery) -> Result<Vec<Edge>, StoreError>;

    /// How many flows are stored.
    ///
    /// # Errors
    /// Database errors.
    fn count(&self) -> Result<u64, StoreError>;

    /// Flows and bytes per time bucket of `bucket_ms` and verdict in the
    /// time range of `query`, oldest first, from the rollups.
    ///
    /// # Errors
    /// Database errors.
    fn timeline(&self, query: &FlowQuery, bucket_ms: i64) -> Result<Vec<Bucket>, StoreError>;

    /// This store's id: random, made when the store was created, so a lake
    /// fed by several stores tells their flows apart.
    ///
    /// # Errors
    /// Database errors.
    fn store_id(&self) -> Result<String, StoreError>;

    /// The highest block id the store has given (0 before the first):
    /// flows stored from now on go into blocks above it.
    ///
    /// # Errors
    /// Database errors.
    fn last_block(&self) -> Result<i64, StoreError>;

    /// Every flow in the blocks with ids in `(after, through]`, block by
    /// block in id order (the order they were stored), with its block's id;
    /// `sink` returns false to stop. Ids are never reused and a block
    /// rewritten by retention keeps its id, so a reader that remembers the
    /// last id it read sees each stored flow once. Returns how many flows
    /// were passed.
    ///
    /// # Errors
    /// Database errors or a damaged block.
    fn scan_blocks(
        &self,
        after: i64,
        through: i64,
        sink: &mut dyn FnMut(i64, Flow) -> bool,
    ) -> Result<u64, StoreError>;

    /// The start times of the oldest and newest stored flows.
    ///
    /// # Errors
    /// Database errors.
    fn time_span(&self) -> Result<Option<(i64, i64)>, StoreError>;
}

/// Flows of one verdict in one time bucket.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Bucket {
    /// Bucket start, ms since the epoch.
    pub start_ms: i64,
    /// The verdict, when the flows were enriched.
    pub verdict: Option<cordon_core::Verdict>,
    /// Flows.
    pub flows: u64,
    /// Bytes both ways.
    pub bytes: u64,
}

/// Findings, kept as rows with their fields and merged by id.
pub trait FindingStore {
    /// Store `findings`, folding each into a stored finding with the same
    /// id: a finding whose evidence starts later than the stored one's (a
    /// run that saw less history) is merged into it; otherwise it replaces
    /// it. Returns the findings as stored, in the order given.
    ///
    /// # Errors
    /// Database errors; none of them is stored then.
    fn save_findings(&mut self, findings: Vec<Finding>) -> Result<Vec<Finding>, StoreError>;

    /// Stored findings whose last evidence is at or after `since_ms`,
    /// oldest first.
    ///
    /// # Errors
    /// Database errors or a damaged row.
    fn findings(&self, since_ms: Option<i64>) -> Result<Vec<Finding>, StoreError>;

    /// The stored finding with this id.
    ///
    /// # Errors
    /// Database errors or a damaged row.
    fn finding(&self, id: &str) -> Result<Option<Finding>, StoreError>;
}

/// Incidents: findings linked into attack paths, with their status history.
/// Status changes are appended, never overwritten, so two responders
/// acknowledging at once both stay on record.
pub trait IncidentStore: FindingStore {
    /// Store what linking gave: each incident replaces the stored one with
    /// its id (its status history stays); absorbed incidents hand their
    /// history to the one they were folded into. A resolved incident that
    /// gained findings is opened again. Returns the incidents as stored.
    ///
    /// # Errors
    /// Database errors; nothing is stored then.
    fn save_incidents(&mut self, linked: Linked) -> Result<Vec<Incident>, StoreError>;

    /// Stored incidents, oldest first, only those in `status` when given.
    ///
    /// # Errors
    /// Database errors or a damaged row.
    fn incidents(&self, status: Option<Status>) -> Result<Vec<Incident>, StoreError>;

    /// The stored incident with this id.
    ///
    /// # Errors
    /// Database errors or a damaged row.
    fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError>;

    /// The stored incident with this id and its findings (those still
    /// stored), in the incident's order.
    ///
    /// # Errors
    /// Database errors or a damaged row.
    fn incident_with_findings(
        &self,
        id: &str,
    ) -> Result<Option<(Incident, Vec<Finding>)>, StoreError> {
        let Some(incident) = self.incident(id)? else {
            return Ok(None);
        };
        let mut findings = Vec::with_capacity(incident.findings.len());
        for f in &incident.findings {
            if let Some(f) = self.finding(f)? {
                findings.push(f);
            }
        }
        Ok(Some((incident, findings)))
    }

    /// Record a status change; returns the incident as it now is.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; database errors.
    fn set_status(&mut self, id: &str, change: StatusChange) -> Result<Incident, StoreError>;
}

/// Everything a backend keeps, plus retention.
pub trait Store:
    FlowWriter + FlowReader + FindingStore + IncidentStore + ExchangeStore + AuditStore
{
    /// Delete flows and rollups that started before `before_ms`; returns
    /// how many flows were deleted.
    ///
    /// # Errors
    /// Database errors.
    fn prune(&mut self, before_ms: i64) -> Result<u64, StoreError>;

    /// Link every stored finding into incidents again and store them, then
    /// publish them (see [`Store::publish_findings`]): what
    /// `ingest --detect` and `detect` run after saving findings.
    ///
    /// # Errors
    /// Database errors or a damaged row.
    fn relink(&mut self, kb: &Kb) -> Result<Vec<Incident>, StoreError> {
        let findings = self.findings(None)?;
        let previous = self.incidents(None)?;
        let incidents = self.save_incidents(link(&findings, &previous, kb))?;
        self.publish_stix(&findings, &incidents, kb)?;
        Ok(incidents)
    }

    /// Publish the stored findings and incidents as STIX to the
    /// [`exchange::FINDINGS`] collection (their indicators also to
    /// [`exchange::INDICATORS`]); what changed since the last time gets a
    /// new version. Returns how many versions were added.
    ///
    /// # Errors
    /// Database errors or a damaged row.
    fn publish_findings(&mut self, kb: &Kb) -> Result<usize, StoreError> {
        let findings = self.findings(None)?;
        let incidents = self.incidents(None)?;
        self.publish_stix(&findings, &incidents, kb)
    }

    /// Publish `findings` and `incidents` (see [`Store::publish_findings`]).
    ///
    /// # Errors
    /// Database errors.
    fn publish_stix(
        &mut self,
        findings: &[Finding],
        incidents: &[Incident],
        kb: &Kb,
    ) -> Result<usize, StoreError> {
        let now = cordon_flow::time::now_ms();
        let mut bundle = cordon_detect::stix::bundle(findings, kb, now);
        cordon_incident::export::add_to_bundle(&mut bundle, incidents, kb, now);
        let objects = match bundle.get_mut("objects").map(serde_json::Value::take) {
            Some(serde_json::Value::Array(objects)) => objects,
            _ => Vec::new(),
        };
        let indicators: Vec<serde_json::Value> = objects
            .iter()
            .filter(|o| matches!(o["type"].as_str(), Some("indicator" | "identity")))
            .cloned()
            .collect();
        Ok(self.publish(exchange::FINDINGS, &objects)?
            + self.publish(exchange::INDICATORS, &indicators)?)
    }
}
