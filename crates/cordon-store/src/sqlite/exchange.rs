//! STIX objects by collection and version, statuses, secrets and pulled
//! sources, in SQLite.
//!
//! Every object version is a row whose `seq` only grows (AUTOINCREMENT: a
//! deleted row's number is never given again) and whose `date_added` never
//! goes back within its collection, so (`date_added`, `seq`) orders a
//! collection for good: a page that ends at one row is continued by the
//! rows after it, whatever was added or deleted meanwhile. `is_first` and
//! `is_last` mark each object's earliest and latest versions, so the
//! default query (latest versions) reads one index.

use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};
use serde_json::Value;

use crate::StoreError;
use crate::exchange::{
    Added, ExchangeStore, NewObject, ObjectQuery, Page, SOURCE_PREFIX, Source, StoredObject,
    Versions,
};

use super::SqliteStore;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stix_objects(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    spec_version TEXT NOT NULL,
    version_us INTEGER NOT NULL,
    date_added_us INTEGER NOT NULL,
    created_us INTEGER,
    digest TEXT,
    is_first INTEGER NOT NULL,
    is_last INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS stix_version ON stix_objects(collection, id, version_us);
CREATE INDEX IF NOT EXISTS stix_added ON stix_objects(collection, date_added_us, seq);
CREATE INDEX IF NOT EXISTS stix_last ON stix_objects(collection, is_last, date_added_us, seq);
CREATE INDEX IF NOT EXISTS stix_kind ON stix_objects(kind, is_last);
CREATE TABLE IF NOT EXISTS stix_status(
    id TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exchange_secrets(
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS stix_sources(
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    collection TEXT NOT NULL,
    added_after_us INTEGER,
    last_pull_ms INTEGER,
    complete INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
";

/// How long status resources are kept.
const STATUS_KEPT_MS: i64 = 7 * 86_400_000;

/// Namespace of the content digests of published objects.
const DIGEST_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x3d0c_8f5e_71a4_4b62_a9e1_5c2b_7d40_e813);

pub(super) fn prepare(db: &Connection) -> Result<(), StoreError> {
    db.execute_batch(SCHEMA)?;
    Ok(())
}

fn now_us() -> i64 {
    cordon_flow::time::now_us()
}

/// The `date_added` of the next rows of `collection`: now, or the latest
/// already there when the clock went back.
fn next_date_added(tx: &Transaction<'_>, collection: &str) -> Result<i64, StoreError> {
    let latest: Option<i64> = tx
        .prepare_cached("SELECT MAX(date_added_us) FROM stix_objects WHERE collection = ?")?
        .query_row(params![collection], |r| r.get(0))?;
    Ok(now_us().max(latest.unwrap_or(i64::MIN)))
}

/// The earliest and latest stored versions of `id`.
fn bounds(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT MIN(version_us), MAX(version_us) FROM stix_objects \
             WHERE collection = ? AND id = ?",
        )?
        .query_row(params![collection, id], |r| {
            Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?))
        })?)
}

/// One version to insert.
struct Row<'a> {
    id: &'a str,
    kind: &'a str,
    spec_version: &'a str,
    version_us: Option<i64>,
    created_us: Option<i64>,
    digest: Option<&'a str>,
    body: &'a str,
}

/// Insert one version (unless present), keeping `is_first`/`is_last` true.
fn insert(
    tx: &Transaction<'_>,
    collection: &str,
    date_added_us: i64,
    row: &Row<'_>,
) -> Result<Added, StoreError> {
    let version_us = row.version_us.unwrap_or(date_added_us);
    let bounds = bounds(tx, collection, row.id)?;
    if bounds.is_some() {
        let present: Option<i64> = tx
            .prepare_cached(
                "SELECT 1 FROM stix_objects WHERE collection = ? AND id = ? AND version_us = ?",
            )?
            .query_row(params![collection, row.id, version_us], |r| r.get(0))
            .optional()?;
        if present.is_some() {
            return Ok(Added::Present { version_us });
        }
    }
    let is_first = bounds.is_none_or(|(lo, _)| version_us < lo);
    let is_last = bounds.is_none_or(|(_, hi)| version_us > hi);
    if bounds.is_some() && is_first {
        tx.prepare_cached(
            "UPDATE stix_objects SET is_first = 0 WHERE collection = ? AND id = ? AND is_first = 1",
        )?
        .execute(params![collection, row.id])?;
    }
    if bounds.is_some() && is_last {
        tx.prepare_cached(
            "UPDATE stix_objects SET is_last = 0 WHERE collection = ? AND id = ? AND is_last = 1",
        )?
        .execute(params![collection, row.id])?;
    }
    tx.prepare_cached(
        "INSERT INTO stix_objects(collection, id, kind, spec_version, version_us, date_added_us, \
         created_us, digest, is_first, is_last, body) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    )?
    .execute(params![
        collection,
        row.id,
        row.kind,
        row.spec_version,
        version_us,
        date_added_us,
        row.created_us,
        row.digest,
        is_first,
        is_last,
        row.body
    ])?;
    Ok(Added::New { version_us })
}

fn add_all(
    tx: &Transaction<'_>,
    collection: &str,
    objects: &[NewObject],
) -> Result<Vec<Added>, StoreError> {
    let date = next_date_added(tx, collection)?;
    objects
        .iter()
        .map(|o| {
            insert(
                tx,
                collection,
                date,
                &Row {
                    id: &o.id,
                    kind: &o.kind,
                    spec_version: &o.spec_version,
                    version_us: o.version_us,
                    created_us: None,
                    digest: None,
                    body: &o.body,
                },
            )
        })
        .collect()
}

/// `(column IN (?, ?, ...))` for `n` values.
fn in_list(column: &str, n: usize) -> String {
    format!("{column} IN ({})", vec!["?"; n].join(", "))
}

/// The `WHERE` terms and arguments selecting `versions` (the latest when
/// nothing is asked).
fn version_terms(versions: &Versions, args: &mut Vec<rusqlite::types::Value>) -> Option<String> {
    if versions.all {
        return None;
    }
    let mut terms = Vec::new();
    if versions.last || (!versions.first && versions.exact.is_empty()) {
        terms.push("is_last = 1".to_string());
    }
    if versions.first {
        terms.push("is_first = 1".to_string());
    }
    if !versions.exact.is_empty() {
        terms.push(in_list("version_us", versions.exact.len()));
        args.extend(
            versions
                .exact
                .iter()
                .map(|v| rusqlite::types::Value::Integer(*v)),
        );
    }
    Some(format!("({})", terms.join(" OR ")))
}

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredObject> {
    Ok(StoredObject {
        id: r.get(0)?,
        kind: r.get(1)?,
        spec_version: r.get(2)?,
        version_us: r.get(3)?,
        date_added_us: r.get(4)?,
        seq: r.get(5)?,
        body: r.get(6)?,
    })
}

/// A generated object's content digest: its JSON without the timestamps
/// that publishing sets.
fn digest(object: &Value) -> String {
    let mut content = object.clone();
    if let Some(map) = content.as_object_mut() {
        for key in ["created", "modified", "published"] {
            map.remove(key);
        }
    }
    uuid::Uuid::new_v5(&DIGEST_NAMESPACE, content.to_string().as_bytes())
        .simple()
        .to_string()
}

/// The latest version of each published object: digest, created, version.
type Latest = rustc_hash::FxHashMap<String, (Option<String>, Option<i64>, i64)>;

fn latest(tx: &Transaction<'_>, collection: &str) -> Result<Latest, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, digest, created_us, version_us FROM stix_objects \
         WHERE collection = ? AND is_last = 1",
    )?;
    let rows = stmt.query_map(params![collection], |r| {
        Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl SqliteStore {
    /// A transaction that takes the write lock at once (its reads decide
    /// what it writes).
    fn immediate(&mut self) -> Result<Transaction<'_>, StoreError> {
        Ok(self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
    }
}

impl ExchangeStore for SqliteStore {
    fn add_objects(
        &mut self,
        collection: &str,
        objects: &[NewObject],
    ) -> Result<Vec<Added>, StoreError> {
        let tx = self.immediate()?;
        let added = add_all(&tx, collection, objects)?;
        tx.commit()?;
        Ok(added)
    }

    fn objects(&self, q: &ObjectQuery) -> Result<Page, StoreError> {
        use rusqlite::types::Value as V;
        let mut sql = String::from(
            "SELECT id, kind, spec_version, version_us, date_added_us, seq, body \
             FROM stix_objects WHERE collection = ?",
        );
        let mut args = vec![V::Text(q.collection.clone())];
        if let Some(terms) = version_terms(&q.versions, &mut args) {
            sql.push_str(" AND ");
            sql.push_str(&terms);
        }
        if let Some(after) = q.added_after_us {
            sql.push_str(" AND date_added_us > ?");
            args.push(V::Integer(after));
        }
        if let Some(c) = q.after {
            sql.push_str(" AND (date_added_us, seq) > (?, ?)");
            args.push(V::Integer(c.date_added_us));
            args.push(V::Integer(c.seq));
        }
        for (column, values) in [
            ("id", &q.ids),
            ("kind", &q.kinds),
            ("spec_version", &q.spec_versions),
        ] {
            if !values.is_empty() {
                sql.push_str(" AND ");
                sql.push_str(&in_list(column, values.len()));
                args.extend(values.iter().map(|v| V::Text(v.clone())));
            }
        }
        sql.push_str(" ORDER BY date_added_us, seq LIMIT ?");
        let limit = q.limit.max(1);
        args.push(V::Integer(i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1));
        let mut stmt = self.db.prepare_cached(&sql)?;
        let mut objects = stmt
            .query_map(params_from_iter(args), stored)?
            .collect::<Result<Vec<_>, _>>()?;
        let more = objects.len() > limit;
        objects.truncate(limit);
        Ok(Page { objects, more })
    }

    fn delete_object(
        &mut self,
        collection: &str,
        id: &str,
        versions: &Versions,
        spec_versions: &[String],
    ) -> Result<usize, StoreError> {
        use rusqlite::types::Value as V;
        let tx = self.immediate()?;
        let mut sql = String::from("DELETE FROM stix_objects WHERE collection = ? AND id = ?");
        let mut args = vec![V::Text(collection.to_string()), V::Text(id.to_string())];
        if let Some(terms) = version_terms(versions, &mut args) {
            sql.push_str(" AND ");
            sql.push_str(&terms);
        }
        if !spec_versions.is_empty() {
            sql.push_str(" AND ");
            sql.push_str(&in_list("spec_version", spec_versions.len()));
            args.extend(spec_versions.iter().map(|v| V::Text(v.clone())));
        }
        let deleted = tx.execute(&sql, params_from_iter(args))?;
        // The versions left get their first and last marks again.
        if let Some((lo, hi)) = bounds(&tx, collection, id)? {
            tx.execute(
                "UPDATE stix_objects SET is_first = (version_us = ?), is_last = (version_us = ?) \
                 WHERE collection = ? AND id = ?",
                params![lo, hi, collection, id],
            )?;
        }
        tx.commit()?;
        Ok(deleted)
    }

    fn collection_sizes(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .db
            .prepare_cached("SELECT collection, COUNT(*) FROM stix_objects GROUP BY collection")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.unsigned_abs()))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn save_status(&mut self, id: &str, body: &str) -> Result<(), StoreError> {
        let now = cordon_flow::time::now_ms();
        let tx = self.db.transaction()?;
        tx.execute(
            "DELETE FROM stix_status WHERE created_ms < ?",
            params![now - STATUS_KEPT_MS],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO stix_status(id, created_ms, body) VALUES (?, ?, ?)",
            params![id, now, body],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn status(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db
            .prepare_cached("SELECT body FROM stix_status WHERE id = ?")?
            .query_row(params![id], |r| r.get(0))
            .optional()?)
    }

    fn secret(
        &mut self,
        name: &str,
        make: &mut dyn FnMut() -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let tx = self.immediate()?;
        let kept: Option<Vec<u8>> = tx
            .query_row(
                "SELECT value FROM exchange_secrets WHERE name = ?",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        let value = match kept {
            Some(v) => v,
            None => {
                let v = make();
                tx.execute(
                    "INSERT INTO exchange_secrets(name, value) VALUES (?, ?)",
                    params![name, v],
                )?;
                v
            }
        };
        tx.commit()?;
        Ok(value)
    }

    fn sources(&self) -> Result<Vec<Source>, StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT s.name, s.url, s.collection, s.added_after_us, s.last_pull_ms, s.complete, \
             s.last_error, (SELECT COUNT(*) FROM stix_objects o WHERE o.collection = ? || s.name) \
             FROM stix_sources s ORDER BY s.name",
        )?;
        let rows = stmt.query_map(params![SOURCE_PREFIX], |r| {
            Ok(Source {
                name: r.get(0)?,
                url: r.get(1)?,
                collection: r.get(2)?,
                added_after_us: r.get(3)?,
                last_pull_ms: r.get(4)?,
                complete: r.get(5)?,
                last_error: r.get(6)?,
                objects: r.get::<_, i64>(7)?.unsigned_abs(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn save_source(&mut self, s: &Source) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO stix_sources(name, url, collection, added_after_us, last_pull_ms, \
             complete, last_error) VALUES (?,?,?,?,?,?,?) \
             ON CONFLICT(name) DO UPDATE SET url = excluded.url, \
             collection = excluded.collection, added_after_us = excluded.added_after_us, \
             last_pull_ms = excluded.last_pull_ms, complete = excluded.complete, \
             last_error = excluded.last_error",
            params![
                s.name,
                s.url,
                s.collection,
                s.added_after_us,
                s.last_pull_ms,
                s.complete,
                s.last_error
            ],
        )?;
        Ok(())
    }

    fn add_pulled(
        &mut self,
        source: &str,
        objects: &[NewObject],
        added_after_us: Option<i64>,
    ) -> Result<Vec<Added>, StoreError> {
        let tx = self.immediate()?;
        let added = add_all(&tx, &format!("{SOURCE_PREFIX}{source}"), objects)?;
        let changed = tx.execute(
            "UPDATE stix_sources SET added_after_us = ? WHERE name = ?",
            params![added_after_us, source],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "intel source",
                id: source.to_string(),
            });
        }
        tx.commit()?;
        Ok(added)
    }

    fn publish(&mut self, collection: &str, objects: &[Value]) -> Result<usize, StoreError> {
        let tx = self.immediate()?;
        let latest = latest(&tx, collection)?;
        let date = next_date_added(&tx, collection)?;
        let mut added = 0;
        for object in objects {
            let (Some(id), Some(kind)) = (
                object.get("id").and_then(Value::as_str),
                object.get("type").and_then(Value::as_str),
            ) else {
                continue;
            };
            let digest = digest(object);
            let before = latest.get(id);
            if before.is_some_and(|(d, _, _)| d.as_deref() == Some(digest.as_str())) {
                continue;
            }
            let mut object = object.clone();
            let (version_us, created_us) = if object.get("created").is_some() {
                // Timestamps of domain objects are to the millisecond; a
                // new version is later than the one before.
                let now = date.div_euclid(1000) * 1000;
                let version = before.map_or(now, |(_, _, v)| now.max(v + 1000));
                let created = before.and_then(|(_, c, _)| *c).unwrap_or(version);
                let stamp = |us: i64| Value::String(cordon_detect::stix::ts(us.div_euclid(1000)));
                object["created"] = stamp(created);
                object["modified"] = stamp(version);
                if object.get("published").is_some() {
                    object["published"] = stamp(created);
                }
                (Some(version), Some(created))
            } else {
                (None, None)
            };
            let spec = object
                .get("spec_version")
                .and_then(Value::as_str)
                .unwrap_or("2.1")
                .to_string();
            let body = object.to_string();
            let outcome = insert(
                &tx,
                collection,
                date,
                &Row {
                    id,
                    kind,
                    spec_version: &spec,
                    version_us,
                    created_us,
                    digest: Some(&digest),
                    body: &body,
                },
            )?;
            if matches!(outcome, Added::New { .. }) {
                added += 1;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    fn intel_mark(&self) -> Result<(u64, i64), StoreError> {
        Ok(self
            .db
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM stix_objects \
                 WHERE collection = ? OR substr(collection, 1, length(?)) = ?",
            )?
            .query_row(
                params![crate::exchange::INTEL, SOURCE_PREFIX, SOURCE_PREFIX],
                |r| Ok((r.get::<_, i64>(0)?.unsigned_abs(), r.get(1)?)),
            )?)
    }

    fn intel_objects(
        &self,
        kind: &str,
        sink: &mut dyn FnMut(&str, &str),
    ) -> Result<u64, StoreError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT collection, body FROM stix_objects WHERE kind = ? AND is_last = 1 \
             AND (collection = ? OR substr(collection, 1, length(?)) = ?) ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![
            kind,
            crate::exchange::INTEL,
            SOURCE_PREFIX,
            SOURCE_PREFIX
        ])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let collection: String = r.get(0)?;
            let body: String = r.get(1)?;
            sink(&collection, &body);
            n += 1;
        }
        Ok(n)
    }
}
