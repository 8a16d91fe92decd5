//! Findings as rows: one column per field (lists and evidence as JSON),
//! merged by id inside the transaction that writes them.

use cordon_detect::{Finding, Severity};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{FindingStore, StoreError};

use super::{SqliteStore, damaged, json};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS findings(
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    confidence REAL NOT NULL,
    score REAL NOT NULL,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    src_entity TEXT NOT NULL,
    dst_entity TEXT NOT NULL,
    port INTEGER,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    techniques TEXT NOT NULL,
    tactics TEXT NOT NULL,
    stage TEXT NOT NULL,
    controls TEXT NOT NULL,
    action TEXT NOT NULL,
    stopped_by TEXT,
    updates INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_time ON findings(last_ms);
CREATE INDEX IF NOT EXISTS findings_kind ON findings(kind, severity);
";

const COLUMNS: &str = "id, kind, title, severity, confidence, score, src, dst, src_entity, \
    dst_entity, port, first_ms, last_ms, evidence, techniques, tactics, stage, controls, action, \
    stopped_by, updates";

/// Create the findings table; a store written when findings were one JSON
/// body per row is moved over to rows with their fields.
pub(super) fn prepare(db: &Connection) -> Result<(), StoreError> {
    let old_layout: bool = db
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('findings') WHERE name = 'body'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)?;
    if !old_layout {
        db.execute_batch(SCHEMA)?;
        return Ok(());
    }
    db.execute_batch("BEGIN IMMEDIATE")?;
    let moved = (|| -> Result<(), StoreError> {
        db.execute_batch(
            "ALTER TABLE findings RENAME TO findings_v1; DROP INDEX IF EXISTS findings_time;",
        )?;
        db.execute_batch(SCHEMA)?;
        let bodies: Vec<(String, String)> = {
            let mut stmt = db.prepare("SELECT id, body FROM findings_v1")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, body) in bodies {
            let finding: Finding = serde_json::from_str(&body).map_err(|e| damaged(ROW, &id, e))?;
            insert(db, &finding)?;
        }
        db.execute_batch("DROP TABLE findings_v1")?;
        Ok(())
    })();
    match moved {
        Ok(()) => db.execute_batch("COMMIT")?,
        Err(e) => {
            db.execute_batch("ROLLBACK")?;
            return Err(e);
        }
    }
    Ok(())
}

/// What a row of this table is, in errors.
const ROW: &str = "finding";

fn insert(db: &Connection, f: &Finding) -> Result<(), StoreError> {
    let mut stmt = db.prepare_cached(&format!(
        "INSERT OR REPLACE INTO findings({COLUMNS}) \
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    ))?;
    stmt.execute(params![
        f.id,
        f.kind.as_str(),
        f.title,
        f.severity.as_str(),
        f.confidence,
        f.score,
        f.src,
        f.dst,
        json(ROW, &f.id, &f.src_entity)?,
        json(ROW, &f.id, &f.dst_entity)?,
        f.port,
        f.first_ms,
        f.last_ms,
        json(ROW, &f.id, &f.evidence)?,
        json(ROW, &f.id, &f.techniques)?,
        json(ROW, &f.id, &f.tactics)?,
        f.stage,
        json(ROW, &f.id, &f.controls)?,
        f.action,
        f.stopped_by,
        f.updates,
    ])?;
    Ok(())
}

/// A row back into a finding; a field that does not read is an error that
/// names the finding.
fn read(row: &Row<'_>) -> Result<Result<Finding, StoreError>, rusqlite::Error> {
    let id: String = row.get(0)?;
    let text = |i: usize| row.get::<_, String>(i);
    let kind = text(1)?;
    let severity = text(3)?;
    let (src_entity, dst_entity, evidence, techniques, tactics, controls) = (
        text(8)?,
        text(9)?,
        text(13)?,
        text(14)?,
        text(15)?,
        text(17)?,
    );
    let (title, src, dst, stage, action) = (text(2)?, text(6)?, text(7)?, text(16)?, text(18)?);
    let (confidence, score): (f64, f64) = (row.get(4)?, row.get(5)?);
    let port: Option<u16> = row.get(10)?;
    let (first_ms, last_ms): (i64, i64) = (row.get(11)?, row.get(12)?);
    let stopped_by: Option<String> = row.get(19)?;
    let updates: u32 = row.get(20)?;
    Ok((|| {
        let parse = |what: &str, e: serde_json::Error| damaged(ROW, &id, format!("{what}: {e}"));
        Ok(Finding {
            kind: kind.parse().map_err(|e| damaged(ROW, &id, e))?,
            severity: Severity::parse(&severity)
                .ok_or_else(|| damaged(ROW, &id, format!("severity `{severity}`")))?,
            src_entity: serde_json::from_str(&src_entity).map_err(|e| parse("src_entity", e))?,
            dst_entity: serde_json::from_str(&dst_entity).map_err(|e| parse("dst_entity", e))?,
            evidence: serde_json::from_str(&evidence).map_err(|e| parse("evidence", e))?,
            techniques: serde_json::from_str(&techniques).map_err(|e| parse("techniques", e))?,
            tactics: serde_json::from_str(&tactics).map_err(|e| parse("tactics", e))?,
            controls: serde_json::from_str(&controls).map_err(|e| parse("controls", e))?,
            id: id.clone(),
            title,
            confidence,
            score,
            src,
            dst,
            port,
            first_ms,
            last_ms,
            stage,
            action,
            stopped_by,
            updates,
        })
    })())
}

fn one(db: &Connection, id: &str) -> Result<Option<Finding>, StoreError> {
    let mut stmt = db.prepare_cached(&format!("SELECT {COLUMNS} FROM findings WHERE id = ?"))?;
    stmt.query_row(params![id], read).optional()?.transpose()
}

impl FindingStore for SqliteStore {
    fn save_findings(&mut self, findings: Vec<Finding>) -> Result<Vec<Finding>, StoreError> {
        let tx = self.db.transaction()?;
        let mut out = Vec::with_capacity(findings.len());
        for f in findings {
            let merged = match one(&tx, &f.id)? {
                Some(mut stored) if f.first_ms > stored.first_ms => {
                    stored.merge(f);
                    stored
                }
                _ => f,
            };
            insert(&tx, &merged)?;
            out.push(merged);
        }
        tx.commit()?;
        Ok(out)
    }

    fn findings(&self, since_ms: Option<i64>) -> Result<Vec<Finding>, StoreError> {
        let mut stmt = self.db.prepare(&format!(
            "SELECT {COLUMNS} FROM findings WHERE last_ms >= ? ORDER BY first_ms, id"
        ))?;
        let rows = stmt.query_map(params![since_ms.unwrap_or(i64::MIN)], read)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    fn finding(&self, id: &str) -> Result<Option<Finding>, StoreError> {
        one(&self.db, id)
    }
}
