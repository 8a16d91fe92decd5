//! Threat-intelligence exchange: STIX 2.1 objects kept by collection and
//! version, in the order they were added, for a TAXII server to page
//! through and for the threat-intel detector to read.
//!
//! Three collections are Cordon's own: [`FINDINGS`] (its findings and
//! incidents as STIX, a new version each time one changes),
//! [`INDICATORS`] (the indicators it derived) and [`INTEL`] (feeds pushed
//! by partners). Feeds pulled from other TAXII servers are kept in a
//! collection per source, `source:NAME`, with how far each pull got.

use serde::Serialize;

use crate::StoreError;

/// Cordon's findings and incidents as STIX.
pub const FINDINGS: &str = "findings";
/// The indicators Cordon derived from its findings.
pub const INDICATORS: &str = "indicators";
/// Intelligence pushed by partners.
pub const INTEL: &str = "intel";
/// The prefix of the collection a pulled source is kept in.
pub const SOURCE_PREFIX: &str = "source:";

/// Whether the threat-intel detector reads `collection`: partners' feeds
/// and pulled sources, never Cordon's own indicators (a finding must not
/// feed itself).
pub fn is_intel(collection: &str) -> bool {
    collection == INTEL || collection.starts_with(SOURCE_PREFIX)
}

/// An object to add.
#[derive(Clone, Debug)]
pub struct NewObject {
    /// STIX id (`indicator--UUID`).
    pub id: String,
    /// STIX type.
    pub kind: String,
    /// `spec_version` (`2.1`).
    pub spec_version: String,
    /// Its version: `modified`, else `created`, in epoch microseconds;
    /// `None` for an object without either (its version is when it was
    /// added).
    pub version_us: Option<i64>,
    /// The object as JSON text.
    pub body: String,
}

/// What happened to one added object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Stored, with this version.
    New {
        /// The version stored (microseconds).
        version_us: i64,
    },
    /// This id and version was already in the collection.
    Present {
        /// The version (microseconds).
        version_us: i64,
    },
}

/// A stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// STIX id.
    pub id: String,
    /// STIX type.
    pub kind: String,
    /// `spec_version`.
    pub spec_version: String,
    /// Version, epoch microseconds.
    pub version_us: i64,
    /// When it was added to the collection, epoch microseconds.
    pub date_added_us: i64,
    /// Its place in the collection (increases with `date_added`).
    pub seq: i64,
    /// The object as JSON text.
    pub body: String,
}

impl StoredObject {
    /// Where the page after this object starts.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            date_added_us: self.date_added_us,
            seq: self.seq,
        }
    }
}

/// Which versions of each object a query takes (TAXII `match[version]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Versions {
    /// Every version.
    pub all: bool,
    /// The earliest.
    pub first: bool,
    /// The latest.
    pub last: bool,
    /// These exact versions (microseconds).
    pub exact: Vec<i64>,
}

impl Versions {
    /// Only the latest version (TAXII's default).
    pub fn last() -> Versions {
        Versions {
            last: true,
            ..Versions::default()
        }
    }
}

/// Where a page starts: after this object (`date_added`, `seq`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// Its `date_added` (microseconds).
    pub date_added_us: i64,
    /// Its place.
    pub seq: i64,
}

/// A query over one collection.
#[derive(Clone, Debug)]
pub struct ObjectQuery {
    /// The collection.
    pub collection: String,
    /// Only objects added strictly after this (microseconds).
    pub added_after_us: Option<i64>,
    /// Only these ids (any, when empty).
    pub ids: Vec<String>,
    /// Only these types (any, when empty).
    pub kinds: Vec<String>,
    /// Which versions.
    pub versions: Versions,
    /// Only these spec versions (any, when empty).
    pub spec_versions: Vec<String>,
    /// Start after this object (a `next` token).
    pub after: Option<Cursor>,
    /// At most this many.
    pub limit: usize,
}

impl ObjectQuery {
    /// The latest version of every object of `collection`, `limit` at a time.
    pub fn all(collection: &str, limit: usize) -> ObjectQuery {
        ObjectQuery {
            collection: collection.to_string(),
            added_after_us: None,
            ids: Vec::new(),
            kinds: Vec::new(),
            versions: Versions::last(),
            spec_versions: Vec::new(),
            after: None,
            limit,
        }
    }
}

/// A page of objects.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// The objects, in `date_added` order.
    pub objects: Vec<StoredObject>,
    /// Whether more match after the last one.
    pub more: bool,
}

/// A TAXII source pulled from, and how far the pulls got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Its name (the collection it is kept in is `source:NAME`).
    pub name: String,
    /// The API root's URL.
    pub url: String,
    /// The collection id on the server.
    pub collection: String,
    /// The `added_after` the next pull sends (microseconds).
    pub added_after_us: Option<i64>,
    /// When the last pull ended (ms), and whether it finished.
    pub last_pull_ms: Option<i64>,
    /// Whether the last pull read everything there was.
    pub complete: bool,
    /// Why the last pull stopped early, if it did.
    pub last_error: Option<String>,
    /// Objects kept from this source (every version).
    pub objects: u64,
}

/// Objects of STIX collections, by version, in the order they were added.
pub trait ExchangeStore {
    /// Add `objects` to `collection`, all with one `date_added` (now, or
    /// just after the latest already there). An id and version already
    /// present is left as it is.
    ///
    /// # Errors
    /// Database errors; none is stored then.
    fn add_objects(
        &mut self,
        collection: &str,
        objects: &[NewObject],
    ) -> Result<Vec<Added>, StoreError>;

    /// The objects matching `query`.
    ///
    /// # Errors
    /// Database errors.
    fn objects(&self, query: &ObjectQuery) -> Result<Page, StoreError>;

    /// Delete the versions of object `id` in `collection` that `versions`
    /// and `spec_versions` select; returns how many.
    ///
    /// # Errors
    /// Database errors.
    fn delete_object(
        &mut self,
        collection: &str,
        id: &str,
        versions: &Versions,
        spec_versions: &[String],
    ) -> Result<usize, StoreError>;

    /// Objects per collection (every version), by collection name.
    ///
    /// # Errors
    /// Database errors.
    fn collection_sizes(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Keep a status resource (JSON) under `id`.
    ///
    /// # Errors
    /// Database errors.
    fn save_status(&mut self, id: &str, body: &str) -> Result<(), StoreError>;

    /// The status resource kept under `id`.
    ///
    /// # Errors
    /// Database errors.
    fn status(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// A secret kept in the store under `name`, made from `make` the first
    /// time (so it survives restarts).
    ///
    /// # Errors
    /// Database errors.
    fn secret(
        &mut self,
        name: &str,
        make: &mut dyn FnMut() -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError>;

    /// The sources pulled from.
    ///
    /// # Errors
    /// Database errors.
    fn sources(&self) -> Result<Vec<Source>, StoreError>;

    /// Record a source (its URL, collection and how far pulls got).
    ///
    /// # Errors
    /// Database errors.
    fn save_source(&mut self, source: &Source) -> Result<(), StoreError>;

    /// Add objects pulled from `source` and move its `added_after` to
    /// `added_after_us`, together: a pull stopped at any point resumes
    /// after what it kept, never before or after.
    ///
    /// # Errors
    /// Database errors; nothing is stored then.
    fn add_pulled(
        &mut self,
        source: &str,
        objects: &[NewObject],
        added_after_us: Option<i64>,
    ) -> Result<Vec<Added>, StoreError>;

    /// A mark that changes whenever an object is added to or deleted from
    /// the collections the threat-intel detector reads (to reload them).
    ///
    /// # Errors
    /// Database errors.
    fn intel_mark(&self) -> Result<(u64, i64), StoreError>;

    /// Make `objects` (generated STIX; their `created`, `modified` and
    /// `published` are ignored) the current content of `collection`: an
    /// object new or changed since its latest version gets a new version
    /// (`created` kept from its first, `modified` now); unchanged ones are
    /// left alone. Returns how many versions were added.
    ///
    /// # Errors
    /// Database errors; nothing is stored then.
    fn publish(
        &mut self,
        collection: &str,
        objects: &[serde_json::Value],
    ) -> Result<usize, StoreError>;

    /// Every latest version of the objects of type `kind` in the
    /// collections the threat-intel detector reads (see [`is_intel`]),
    /// one at a time.
    ///
    /// # Errors
    /// Database errors.
    fn intel_objects(
        &self,
        kind: &str,
        sink: &mut dyn FnMut(&str, &str),
    ) -> Result<u64, StoreError>;
}
