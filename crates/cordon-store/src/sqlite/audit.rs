//! Cloud audit events in SQLite: one row per event (the record as the
//! cloud wrote it, or the normalised JSON of an event that came from
//! elsewhere, and the columns queries filter on), committed with the input
//! offset like flow blocks, pruned with the same retention. Reading
//! normalises a record again: the same reader, the same event.

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
";

pub(super) fn prepare(db: &Connection) -> Result<(), StoreError> {
    db.execute_batch(SCHEMA)?;
    Ok(())
}

impl AuditStore for SqliteStore {
    fn append_events(
        &mut self,
        input: Option<i64>,
        events: &[AuditEvent],
        committed_offset: u64,
    ) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO audit_events(input_id, time_ms, cloud, account, principal, source, action, success, raw, body)
                 VALUES (?,?,?,?,?,?,?,?,?,?)",
            )?;
            let mut action = String::new();
            for e in events {
                let normalised;
                let body = match &e.raw {
                    Some(raw) => &**raw,
                    None => {
                        normalised = serde_json::to_string(e)
                            .map_err(|e| StoreError::Query(e.to_string()))?;
                        normalised.as_str()
                    }
                };
                action.clear();
                action.push_str(&e.service);
                action.push(':');
                action.push_str(&e.action);
                insert.execute(params![
                    input,
                    e.time_ms,
                    e.cloud.as_str(),
                    e.account,
                    e.principal.id,
                    e.source,
                    action,
                    e.success,
                    e.raw.is_some(),
                    body
                ])?;
            }
        }
        if let Some(input) = input {
            tx.execute(
                "UPDATE inputs SET committed_offset = MAX(committed_offset, ?) WHERE id = ?",
                params![i64::try_from(committed_offset).unwrap_or(i64::MAX), input],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn scan_events(
        &self,
        q: &AuditQuery,
        sink: &mut dyn FnMut(AuditEvent) -> bool,
    ) -> Result<u64, StoreError> {
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
        for (column, value) in [
            ("cloud", &q.cloud),
            ("account", &q.account),
            ("source", &q.source),
        ] {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                args.push(v.clone().into());
            }
        }
        // Principals and actions by part: `vendor-mailer`, `GetObject`,
        // `s3:` all find what people mean.
        for (column, value) in [("principal", &q.principal), ("action", &q.action)] {
            if let Some(v) = value {
                sql.push_str(&format!(" AND instr(lower({column}), lower(?)) > 0"));
                args.push(v.clone().into());
            }
        }
        if q.failed_only {
            sql.push_str(" AND success = 0");
        }
        sql.push_str(" ORDER BY time_ms, seq");
        if let Some(n) = q.limit {
            sql.push_str(" LIMIT ?");
            args.push(i64::try_from(n).unwrap_or(i64::MAX).into());
        }
        let mut stmt = self.db.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?))
        })?;
        let bad = |e: String| StoreError::Query(format!("a stored audit event: {e}"));
        let mut n = 0u64;
        for row in rows {
            let (raw, body) = row?;
            let event = if raw {
                let value: serde_json::Value =
                    serde_json::from_str(&body).map_err(|e| bad(e.to_string()))?;
                let mut e = cordon_audit::read::normalise_owned(value)
                    .map_err(|_| bad("no cloud's audit record".into()))?
                    .map_err(bad)?;
                e.raw = Some(body.into_boxed_str());
                e
            } else {
                serde_json::from_str(&body).map_err(|e| bad(e.to_string()))?
            };
            n += 1;
            if !sink(event) {
                break;
            }
        }
        Ok(n)
    }
}
