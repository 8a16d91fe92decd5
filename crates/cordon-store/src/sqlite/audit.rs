//! Cloud audit events in SQLite: one row per event (its normalised JSON
//! and the columns queries filter on), committed with the input offset
//! like flow blocks, pruned with the same retention.

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
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events(time_ms);
CREATE INDEX IF NOT EXISTS audit_events_principal ON audit_events(principal, time_ms);
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
                "INSERT INTO audit_events(input_id, time_ms, cloud, account, principal, source, action, success, body)
                 VALUES (?,?,?,?,?,?,?,?,?)",
            )?;
            for e in events {
                let body =
                    serde_json::to_string(e).map_err(|e| StoreError::Query(e.to_string()))?;
                insert.execute(params![
                    input,
                    e.time_ms,
                    e.cloud.as_str(),
                    e.account,
                    e.principal.id,
                    e.source,
                    format!("{}:{}", e.service, e.action),
                    e.success,
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

    fn events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql = String::from("SELECT body FROM audit_events WHERE 1=1");
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
        let rows = stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            let body = body?;
            out.push(
                serde_json::from_str(&body)
                    .map_err(|e| StoreError::Query(format!("a stored audit event: {e}")))?,
            );
        }
        Ok(out)
    }

    fn event_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .db
            .query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
