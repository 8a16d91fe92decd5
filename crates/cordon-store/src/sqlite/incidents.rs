//! Incidents as rows, and their status changes as an append-only table:
//! the current status is the latest change, so concurrent changes from two
//! processes are both kept (each is one insert in its own transaction).

use std::collections::BTreeSet;

use cordon_detect::Severity;
use cordon_flow::time::now_ms;
use cordon_incident::link::Linked;
use cordon_incident::{Incident, Status, StatusChange};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::{IncidentStore, StoreError};

use super::{SqliteStore, damaged, json};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS incidents(
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    severity_reason TEXT NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    stages TEXT NOT NULL,
    findings TEXT NOT NULL,
    entities TEXT NOT NULL,
    techniques TEXT NOT NULL,
    tactics TEXT NOT NULL,
    controls TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_time ON incidents(first_ms);
CREATE TABLE IF NOT EXISTS incident_events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    incident TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    actor TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_events_by ON incident_events(incident, seq);
";

const COLUMNS: &str = "id, title, severity, severity_reason, first_ms, last_ms, stages, \
    findings, entities, techniques, tactics, controls";

/// Create the tables.
pub(super) fn prepare(db: &Connection) -> Result<(), StoreError> {
    db.execute_batch(SCHEMA)?;
    Ok(())
}

/// What a row of this table is, in errors.
const ROW: &str = "incident";

fn insert(db: &Connection, i: &Incident) -> Result<(), StoreError> {
    db.prepare_cached(&format!(
        "INSERT OR REPLACE INTO incidents({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    ))?
    .execute(params![
        i.id,
        i.title,
        i.severity.as_str(),
        i.severity_reason,
        i.first_ms,
        i.last_ms,
        json(ROW, &i.id, &i.stages)?,
        json(ROW, &i.id, &i.findings)?,
        json(ROW, &i.id, &i.entities)?,
        json(ROW, &i.id, &i.techniques)?,
        json(ROW, &i.id, &i.tactics)?,
        json(ROW, &i.id, &i.controls)?,
    ])?;
    Ok(())
}

fn read(row: &Row<'_>) -> Result<Result<Incident, StoreError>, rusqlite::Error> {
    let id: String = row.get(0)?;
    let text = |i: usize| row.get::<_, String>(i);
    let (title, severity, severity_reason) = (text(1)?, text(2)?, text(3)?);
    let (first_ms, last_ms): (i64, i64) = (row.get(4)?, row.get(5)?);
    let lists = [text(6)?, text(7)?, text(8)?, text(9)?, text(10)?, text(11)?];
    Ok((|| {
        fn typed<T: serde::de::DeserializeOwned>(
            id: &str,
            what: &str,
            text: &str,
        ) -> Result<T, StoreError> {
            serde_json::from_str(text).map_err(|e| damaged(ROW, id, format!("{what}: {e}")))
        }
        Ok(Incident {
            severity: Severity::parse(&severity)
                .ok_or_else(|| damaged(ROW, &id, format!("severity `{severity}`")))?,
            stages: typed(&id, "stages", &lists[0])?,
            findings: typed(&id, "findings", &lists[1])?,
            entities: typed(&id, "entities", &lists[2])?,
            techniques: typed(&id, "techniques", &lists[3])?,
            tactics: typed(&id, "tactics", &lists[4])?,
            controls: typed(&id, "controls", &lists[5])?,
            status: Status::Open,
            history: Vec::new(),
            id: id.clone(),
            title,
            severity_reason,
            first_ms,
            last_ms,
        })
    })())
}

fn history(db: &Connection, id: &str) -> Result<Vec<StatusChange>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT status, actor, at_ms, note FROM incident_events WHERE incident = ? ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (status, by, at_ms, note) = row?;
        out.push(StatusChange {
            status: status.parse().map_err(|e| damaged(ROW, id, e))?,
            by,
            at_ms,
            note,
        });
    }
    Ok(out)
}

/// The incident with its status and history filled in.
fn complete(db: &Connection, mut incident: Incident) -> Result<Incident, StoreError> {
    incident.history = history(db, &incident.id)?;
    incident.status = incident.history.last().map_or(Status::Open, |c| c.status);
    Ok(incident)
}

fn one(db: &Connection, id: &str) -> Result<Option<Incident>, StoreError> {
    let mut stmt = db.prepare_cached(&format!("SELECT {COLUMNS} FROM incidents WHERE id = ?"))?;
    match stmt.query_row(params![id], read).optional()?.transpose()? {
        Some(i) => Ok(Some(complete(db, i)?)),
        None => Ok(None),
    }
}

fn append(db: &Connection, id: &str, c: &StatusChange) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO incident_events(incident, at_ms, status, actor, note) VALUES (?,?,?,?,?)",
    )?
    .execute(params![id, c.at_ms, c.status.as_str(), c.by, c.note])?;
    Ok(())
}

impl IncidentStore for SqliteStore {
    fn save_incidents(&mut self, linked: Linked) -> Result<Vec<Incident>, StoreError> {
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (old, new) in &linked.absorbed {
            tx.execute(
                "UPDATE incident_events SET incident = ? WHERE incident = ?",
                params![new, old],
            )?;
            tx.execute("DELETE FROM incidents WHERE id = ?", params![old])?;
        }
        let mut out = Vec::with_capacity(linked.incidents.len());
        for incident in linked.incidents {
            if let Some(stored) = one(&tx, &incident.id)? {
                let before: BTreeSet<&String> = stored.findings.iter().collect();
                let new = incident
                    .findings
                    .iter()
                    .filter(|f| !before.contains(f))
                    .count();
                if stored.status == Status::Resolved && new > 0 {
                    let change = StatusChange {
                        status: Status::Open,
                        by: "cordon".to_string(),
                        at_ms: now_ms(),
                        note: format!("opened again: {new} new finding(s) joined it"),
                    };
                    append(&tx, &incident.id, &change)?;
                }
            }
            insert(&tx, &incident)?;
            out.push(complete(&tx, incident)?);
        }
        tx.commit()?;
        Ok(out)
    }

    fn incidents(&self, status: Option<Status>) -> Result<Vec<Incident>, StoreError> {
        let mut stmt = self.db.prepare(&format!(
            "SELECT {COLUMNS} FROM incidents ORDER BY first_ms, id"
        ))?;
        let rows = stmt.query_map([], read)?;
        let mut out = Vec::new();
        for row in rows {
            let incident = complete(&self.db, row??)?;
            if status.is_none_or(|s| s == incident.status) {
                out.push(incident);
            }
        }
        Ok(out)
    }

    fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        one(&self.db, id)
    }

    fn set_status(&mut self, id: &str, change: StatusChange) -> Result<Incident, StoreError> {
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if one(&tx, id)?.is_none() {
            return Err(StoreError::NotFound {
                what: "incident",
                id: id.to_string(),
            });
        }
        append(&tx, id, &change)?;
        let incident = one(&tx, id)?.ok_or_else(|| StoreError::NotFound {
            what: "incident",
            id: id.to_string(),
        })?;
        tx.commit()?;
        Ok(incident)
    }
}
