//! Cloud audit events in SQLite, in blocks: each batch an ingest commits
//! (up to a few thousand events) is one row holding the records as the
//! cloud wrote them (or the normalised JSON of an event that came from
//! elsewhere), LZ4-compressed, with its time span, committed with the input
//! offset like flow blocks and pruned with the same retention. Reading
//! decompresses a block and normalises its records again (the same reader,
//! the same event); the query's filters apply to the events.
//!
//! The main design choice is the block: audit records are kilobytes of
//! JSON that compress several times over, and one row per event cost an
//! index update and a copy of every byte through the write-ahead log. A
//! store written before blocks keeps its one-row-per-event table, read
//! first.

use cordon_audit::AuditEvent;
use rusqlite::{Connection, params, params_from_iter};

use crate::{AuditQuery, AuditStore, StoreError};

use super::SqliteStore;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_events(
    seq INTEGER PRIMARY KEY,
    input_id INTEGER,
    time_ms INTEGER NOT NULL,
    cloud TEXT NOT NULL,
    account TEXT NOT NULL,
    principal TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    success INTEGER NOT NULL,
    raw INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events(time_ms);
CREATE TABLE IF NOT EXISTS audit_blocks(
    seq INTEGER PRIMARY KEY,
    input_id INTEGER,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    events INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_blocks_time ON audit_blocks(first_ms);
";

/// The largest block decompressed (a block holds one commit's events,
/// each at most a record's limit; anything claiming more is damaged).
const MAX_BLOCK_BYTES: usize = 256 * 1024 * 1024;

pub(super) fn prepare(db: &Connection) -> Result<(), StoreError> {
    db.execute_batch(SCHEMA)?;
    Ok(())
}

/// A block's bytes: per event a kind byte (1: the record as written, 0:
/// normalised JSON), its length (u32, little-endian) and its bytes; then
/// LZ4 with the length prepended.
fn encode(events: &[AuditEvent]) -> Result<Vec<u8>, StoreError> {
    // Sized once: the raw records are most of it (growing it copied each
    // block's bytes again).
    let size: usize = events
        .iter()
        .map(|e| 5 + e.raw.as_deref().map_or(1024, str::len))
        .sum();
    let mut plain = Vec::with_capacity(size);
    for e in events {
        let normalised;
        let (kind, body): (u8, &[u8]) = match &e.raw {
            Some(raw) => (1, raw.as_bytes()),
            None => {
                normalised = serde_json::to_vec(e).map_err(|e| StoreError::Query(e.to_string()))?;
                (0, &normalised)
            }
        };
        let len = u32::try_from(body.len())
            .map_err(|_| StoreError::Query("an audit record over 4 GiB".into()))?;
        plain.push(kind);
        plain.extend_from_slice(&len.to_le_bytes());
        plain.extend_from_slice(body);
    }
    Ok(lz4_flex::block::compress_prepend_size(&plain))
}

/// The events of a block, in stored order.
fn decode(block: &[u8]) -> Result<Vec<AuditEvent>, StoreError> {
    let bad = |e: String| StoreError::Query(format!("a stored audit block: {e}"));
    let size = block
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| bad("too short".into()))?;
    if size > MAX_BLOCK_BYTES {
        return Err(bad(format!("claims {size} bytes, over the limit")));
    }
    let plain =
        lz4_flex::block::decompress_size_prepended(block).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    let mut rest = plain.as_slice();
    while let Some((&kind, tail)) = rest.split_first() {
        let len = tail
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| bad("a record's length cut short".into()))?;
        let body = tail
            .get(4..4 + len)
            .ok_or_else(|| bad("a record cut short".into()))?;
        rest = &tail[4 + len..];
        let text = std::str::from_utf8(body).map_err(|e| bad(e.to_string()))?;
        out.push(event(kind == 1, text)?);
    }
    Ok(out)
}

/// One stored record back as its event.
fn event(raw: bool, body: &str) -> Result<AuditEvent, StoreError> {
    let bad = |e: String| StoreError::Query(format!("a stored audit event: {e}"));
    if raw {
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| bad(e.to_string()))?;
        let mut e = cordon_audit::normalise(value)
            .map_err(|_| bad("no cloud's audit record".into()))?
            .map_err(bad)?;
        e.raw = Some(body.into());
        Ok(e)
    } else {
        serde_json::from_str(body).map_err(|e| bad(e.to_string()))
    }
}

/// Whether `e` is one `q` asks for (its time range aside for legacy rows,
/// which SQL filters).
fn wanted(q: &AuditQuery, e: &AuditEvent) -> bool {
    let contains = |hay: &str, needle: &str| {
        hay.to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase())
    };
    q.since_ms.is_none_or(|t| e.time_ms >= t)
        && q.until_ms.is_none_or(|t| e.time_ms < t)
        && q.cloud.as_deref().is_none_or(|c| e.cloud.as_str() == c)
        && q.account.as_deref().is_none_or(|a| e.account == a)
        && q.source.as_deref().is_none_or(|s| e.source == s)
        && q.principal
            .as_deref()
            .is_none_or(|p| contains(&e.principal.id, p))
        && q.action
            .as_deref()
            .is_none_or(|a| contains(&format!("{}:{}", e.service, e.action), a))
        && (!q.failed_only || !e.success)
}

impl SqliteStore {
    /// Store `events` as blocks of `tx`, of input `input`.
    fn insert_audit_block(
        tx: &rusqlite::Transaction<'_>,
        input: Option<i64>,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let first = events.iter().map(|e| e.time_ms).min().unwrap_or(0);
        let last = events.iter().map(|e| e.time_ms).max().unwrap_or(0);
        let body = encode(events)?;
        tx.prepare_cached(
            "INSERT INTO audit_blocks(input_id, first_ms, last_ms, events, body) VALUES (?,?,?,?,?)",
        )?
        .execute(params![
            input,
            first,
            last,
            i64::try_from(events.len()).unwrap_or(i64::MAX),
            body
        ])?;
        Ok(())
    }

    /// Drop audit events older than `before_ms`: whole blocks, and the old
    /// part of a block that straddles the line.
    pub(super) fn prune_audit(
        tx: &rusqlite::Transaction<'_>,
        before_ms: i64,
    ) -> Result<(), StoreError> {
        tx.execute(
            "DELETE FROM audit_events WHERE time_ms < ?",
            params![before_ms],
        )?;
        tx.execute(
            "DELETE FROM audit_blocks WHERE last_ms < ?",
            params![before_ms],
        )?;
        let straddling: Vec<(i64, Option<i64>, Vec<u8>)> = tx
            .prepare("SELECT seq, input_id, body FROM audit_blocks WHERE first_ms < ?")?
            .query_map(params![before_ms], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        for (seq, input, body) in straddling {
            let kept: Vec<AuditEvent> = decode(&body)?
                .into_iter()
                .filter(|e| e.time_ms >= before_ms)
                .collect();
            tx.execute("DELETE FROM audit_blocks WHERE seq = ?", params![seq])?;
            Self::insert_audit_block(tx, input, &kept)?;
        }
        Ok(())
    }

    /// The rows of the one-row-per-event table older stores have.
    fn scan_legacy(
        &self,
        q: &AuditQuery,
        sink: &mut dyn FnMut(AuditEvent) -> bool,
        handed: &mut u64,
    ) -> Result<bool, StoreError> {
        let mut sql = String::from("SELECT raw, body FROM audit_events WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(t) = q.since_ms {
            sql.push_str(" AND time_ms >= ?");
            args.push(t.into());
        }
        if let Some(t) = q.until_ms {
            sql.push_str(" AND time_ms < ?");
            args.push(t.into());
        }
        sql.push_str(" ORDER BY time_ms, seq");
        let mut stmt = self.db.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (raw, body) = row?;
            let e = event(raw, &body)?;
            if !wanted(q, &e) {
                continue;
            }
            if q.limit.is_some_and(|n| *handed >= n as u64) {
                return Ok(false);
            }
            *handed += 1;
            if !sink(e) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl AuditStore for SqliteStore {
    fn append_events(
        &mut self,
        input: Option<i64>,
        events: &[AuditEvent],
        committed_offset: u64,
    ) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        Self::insert_audit_block(&tx, input, events)?;
        if let Some(input) = input {
            tx.execute(
                "UPDATE inputs SET committed_offset = MAX(committed_offset, ?) WHERE id = ?",
                params![i64::try_from(committed_offset).unwrap_or(i64::MAX), input],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.db.query_row(
            "SELECT (SELECT count(*) FROM audit_events) + (SELECT coalesce(sum(events), 0) FROM audit_blocks)",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Blocks in the order of their first event, each block's events in
    /// time order: events of inputs whose times overlap come out in time
    /// order block by block.
    fn scan_events(
        &self,
        q: &AuditQuery,
        sink: &mut dyn FnMut(AuditEvent) -> bool,
    ) -> Result<u64, StoreError> {
        let mut handed = 0u64;
        if !self.scan_legacy(q, sink, &mut handed)? {
            return Ok(handed);
        }
        let mut stmt = self.db.prepare(
            "SELECT body FROM audit_blocks WHERE last_ms >= ? AND first_ms < ? ORDER BY first_ms, seq",
        )?;
        let rows = stmt.query_map(
            params![
                q.since_ms.unwrap_or(i64::MIN),
                q.until_ms.unwrap_or(i64::MAX)
            ],
            |r| r.get::<_, Vec<u8>>(0),
        )?;
        for row in rows {
            let mut events: Vec<AuditEvent> = decode(&row?)?
                .into_iter()
                .filter(|e| wanted(q, e))
                .collect();
            events.sort_by_key(|e| e.time_ms);
            for e in events {
                if q.limit.is_some_and(|n| handed >= n as u64) {
                    return Ok(handed);
                }
                handed += 1;
                if !sink(e) {
                    return Ok(handed);
                }
            }
        }
        Ok(handed)
    }
}
