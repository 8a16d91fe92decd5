//! Where flows are kept: raw flows with retention, per-minute rollups by
//! (source group, destination group, port, protocol, verdict) for the
//! topology, and a record of what has been ingested so re-running an ingest
//! never duplicates flows.
//!
//! The embedded backend is SQLite (bundled, so there is nothing to install)
//! in WAL mode: a killed process loses at most the batch it was writing, and
//! every batch commits together with the input offset it reached, which is
//! what makes ingest resumable and idempotent. Everything else talks to the
//! [`FlowStore`] trait, which a distributed backend can implement.
//!
//! ```
//! use cordon_flow::{Flow, FlowSource};
//! use cordon_store::{FlowQuery, FlowStore, SqliteStore};
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

mod block;
pub mod collect;
pub mod ingest;
mod query;
mod sqlite;

pub use query::{Edge, FlowQuery};
pub use sqlite::{SqliteStore, topology_label};

#[cfg(test)]
mod tests;

use cordon_flow::Flow;

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("flow store: {0}")]
    Database(#[from] rusqlite::Error),
    /// The store's folder could not be created or opened.
    #[error("flow store at `{path}`: {source}")]
    Io {
        /// The folder.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A query argument is invalid.
    #[error("{0}")]
    Query(String),
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

/// What a flow store does. Implementations must make [`FlowStore::append`]
/// atomic with its offset, so an interrupted ingest resumes exactly.
pub trait FlowStore {
    /// Register an input by a key that identifies its content, returning how
    /// far earlier runs got with it.
    ///
    /// # Errors
    /// Database errors.
    fn begin_input(&mut self, key: &str, name: &str) -> Result<InputState, StoreError>;

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

    /// Mark an input as completely ingested.
    ///
    /// # Errors
    /// Database errors.
    fn finish_input(&mut self, input: i64) -> Result<(), StoreError>;

    /// Flows matching `query`, oldest first.
    ///
    /// # Errors
    /// Database errors or an invalid query.
    fn query(&self, query: &FlowQuery) -> Result<Vec<Flow>, StoreError>;

    /// Group-to-group edges in the time range of `query`.
    ///
    /// # Errors
    /// Database errors.
    fn topology(&self, query: &FlowQuery) -> Result<Vec<Edge>, StoreError>;

    /// Delete flows and rollups that started before `before_ms`; returns
    /// how many flows were deleted.
    ///
    /// # Errors
    /// Database errors.
    fn prune(&mut self, before_ms: i64) -> Result<u64, StoreError>;

    /// How many flows are stored.
    ///
    /// # Errors
    /// Database errors.
    fn count(&self) -> Result<u64, StoreError>;

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

    /// Store findings, replacing earlier versions with the same id.
    ///
    /// # Errors
    /// Database errors; none of them is stored then.
    fn save_findings(&mut self, findings: &[StoredFinding]) -> Result<(), StoreError>;

    /// Stored findings whose last evidence is at or after `since_ms`,
    /// oldest first.
    ///
    /// # Errors
    /// Database errors.
    fn findings(&self, since_ms: Option<i64>) -> Result<Vec<StoredFinding>, StoreError>;
}

/// A finding as the store keeps it: indexed columns and the whole finding
/// as JSON (the store does not interpret it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFinding {
    /// Stable finding id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Severity name.
    pub severity: String,
    /// First evidence, ms since the epoch.
    pub first_ms: i64,
    /// Last evidence.
    pub last_ms: i64,
    /// The finding as JSON.
    pub body: String,
}
