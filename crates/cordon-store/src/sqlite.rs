//! The embedded SQLite backend.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

use cordon_flow::{Direction, Enrichment, Flow, FlowSource, Observed};
use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::query::{Edge, FlowQuery};
use crate::{FlowStore, InputState, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inputs(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    committed_offset INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS flows(
    id INTEGER PRIMARY KEY,
    input_id INTEGER,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    src_ip BLOB NOT NULL,
    dst_ip BLOB NOT NULL,
    src_port INTEGER NOT NULL,
    dst_port INTEGER NOT NULL,
    protocol INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    packets_out INTEGER NOT NULL,
    packets_in INTEGER NOT NULL,
    observed INTEGER,
    direction INTEGER,
    source TEXT NOT NULL,
    hostname TEXT,
    src_workload TEXT,
    dst_workload TEXT,
    src_groups TEXT,
    dst_groups TEXT,
    vendor TEXT,
    verdict TEXT,
    rule TEXT,
    attrs TEXT
);
CREATE INDEX IF NOT EXISTS flows_start ON flows(start_ms);
CREATE INDEX IF NOT EXISTS flows_src ON flows(src_ip);
CREATE INDEX IF NOT EXISTS flows_dst ON flows(dst_ip);
CREATE TABLE IF NOT EXISTS rollups(
    minute INTEGER NOT NULL,
    src_group TEXT NOT NULL,
    dst_group TEXT NOT NULL,
    dst_port INTEGER NOT NULL,
    protocol INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    flows INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    PRIMARY KEY(minute, src_group, dst_group, dst_port, protocol, verdict)
) WITHOUT ROWID;
";

/// A rollup row's key: minute, source group, destination group, port,
/// protocol, verdict.
type RollupKey = (i64, String, String, u16, u8, String);

/// Flows in a SQLite database in one folder.
pub struct SqliteStore {
    db: Connection,
}

/// Addresses are stored as 16 bytes (IPv4 mapped into IPv6), so a CIDR is a
/// byte range and `BETWEEN` uses the index.
fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn ip_from(bytes: &[u8]) -> IpAddr {
    let mut octets = [0u8; 16];
    if bytes.len() == 16 {
        octets.copy_from_slice(bytes);
    }
    let v6 = Ipv6Addr::from(octets);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

fn net_bytes(net: &IpNet) -> ([u8; 16], [u8; 16]) {
    (ip_bytes(net.network()), ip_bytes(net.broadcast()))
}

/// The group a flow endpoint is drawn under in the topology: its first user
/// group, else the built-in class of its address.
pub fn topology_label(groups: Option<&Vec<String>>, ip: IpAddr) -> String {
    if let Some(groups) = groups {
        if let Some(g) = groups.iter().find(|g| *g != "internet" && *g != "private") {
            return g.clone();
        }
        if let Some(g) = groups.first() {
            return g.clone();
        }
    }
    if cordon_policy::special::is_private(ip) {
        "private".into()
    } else if cordon_policy::special::is_internet(ip) {
        "internet".into()
    } else {
        "other".into()
    }
}

fn join(groups: &[String]) -> Option<String> {
    (!groups.is_empty()).then(|| format!(",{},", groups.join(",")))
}

fn split(s: Option<String>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

impl SqliteStore {
    /// Open (or create) the store in folder `dir`.
    ///
    /// # Errors
    /// When the folder or database cannot be created or opened.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let db = Connection::open(dir.join("flows.sqlite"))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.pragma_update(None, "temp_store", "MEMORY")?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(SCHEMA)?;
        Ok(SqliteStore { db })
    }

    fn where_clause(q: &FlowQuery) -> Result<(String, Vec<rusqlite::types::Value>), StoreError> {
        use rusqlite::types::Value as V;
        let mut clauses = Vec::new();
        let mut args: Vec<V> = Vec::new();
        if let Some(s) = q.since_ms {
            clauses.push("start_ms >= ?".to_string());
            args.push(V::Integer(s));
        }
        if let Some(u) = q.until_ms {
            clauses.push("start_ms < ?".to_string());
            args.push(V::Integer(u));
        }
        let range = |col: &str, net: &IpNet, clauses: &mut Vec<String>, args: &mut Vec<V>| {
            let (lo, hi) = net_bytes(net);
            clauses.push(format!("{col} BETWEEN ? AND ?"));
            args.push(V::Blob(lo.to_vec()));
            args.push(V::Blob(hi.to_vec()));
        };
        if let Some(n) = &q.src {
            range("src_ip", n, &mut clauses, &mut args);
        }
        if let Some(n) = &q.dst {
            range("dst_ip", n, &mut clauses, &mut args);
        }
        if let Some(n) = &q.addr {
            let (lo, hi) = net_bytes(n);
            clauses.push("(src_ip BETWEEN ? AND ? OR dst_ip BETWEEN ? AND ?)".to_string());
            for _ in 0..2 {
                args.push(V::Blob(lo.to_vec()));
                args.push(V::Blob(hi.to_vec()));
            }
        }
        if let Some(g) = &q.group {
            if g.contains([',', '%', '_']) {
                return Err(StoreError::Query(format!("invalid group name `{g}`")));
            }
            clauses.push("(src_groups LIKE ? OR dst_groups LIKE ?)".to_string());
            let pattern = format!("%,{g},%");
            args.push(V::Text(pattern.clone()));
            args.push(V::Text(pattern));
        }
        if let Some(p) = q.port {
            clauses.push("dst_port = ?".to_string());
            args.push(V::Integer(i64::from(p)));
        }
        if let Some(p) = q.protocol {
            clauses.push("protocol = ?".to_string());
            args.push(V::Integer(i64::from(p)));
        }
        if let Some(v) = &q.verdict {
            clauses.push("verdict = ?".to_string());
            args.push(V::Text(v.clone()));
        }
        if let Some(v) = &q.vendor {
            clauses.push("vendor = ?".to_string());
            args.push(V::Text(v.clone()));
        }
        let sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        Ok((sql, args))
    }
}

fn observed_code(o: Option<Observed>) -> Option<i64> {
    o.map(|o| match o {
        Observed::Accepted => 1,
        Observed::Rejected => 2,
    })
}

fn direction_code(d: Option<Direction>) -> Option<i64> {
    d.map(|d| match d {
        Direction::Ingress => 1,
        Direction::Egress => 2,
    })
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl FlowStore for SqliteStore {
    fn begin_input(&mut self, key: &str, name: &str) -> Result<InputState, StoreError> {
        self.db.execute(
            "INSERT OR IGNORE INTO inputs(key, name) VALUES (?, ?)",
            params![key, name],
        )?;
        let state = self.db.query_row(
            "SELECT id, committed_offset, done FROM inputs WHERE key = ?",
            params![key],
            |r| {
                Ok(InputState {
                    id: r.get(0)?,
                    committed_offset: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    done: r.get::<_, i64>(2)? != 0,
                })
            },
        )?;
        Ok(state)
    }

    fn append(
        &mut self,
        input: i64,
        flows: &[Flow],
        committed_offset: u64,
    ) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        let mut rollups: HashMap<RollupKey, (u64, u64, u64)> = HashMap::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO flows(input_id, start_ms, end_ms, src_ip, dst_ip, src_port, dst_port, protocol,
                    bytes_out, bytes_in, packets_out, packets_in, observed, direction, source, hostname,
                    src_workload, dst_workload, src_groups, dst_groups, vendor, verdict, rule, attrs)
                 VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            )?;
            for f in flows {
                let e = f.enrichment.as_ref();
                let attrs = if f.attrs.is_empty() {
                    None
                } else {
                    serde_json::to_string(&f.attrs).ok()
                };
                insert.execute(params![
                    input,
                    f.start_ms,
                    f.end_ms,
                    &ip_bytes(f.src_ip)[..],
                    &ip_bytes(f.dst_ip)[..],
                    f.src_port,
                    f.dst_port,
                    f.protocol,
                    as_i64(f.bytes_out),
                    as_i64(f.bytes_in),
                    as_i64(f.packets_out),
                    as_i64(f.packets_in),
                    observed_code(f.observed),
                    direction_code(f.direction),
                    f.source.as_str(),
                    f.hostname,
                    e.and_then(|e| e.src_workload.as_deref()),
                    e.and_then(|e| e.dst_workload.as_deref()),
                    e.and_then(|e| join(&e.src_groups)),
                    e.and_then(|e| join(&e.dst_groups)),
                    e.and_then(|e| e.vendor.as_deref()),
                    e.map(|e| e.verdict.as_str()),
                    e.and_then(|e| e.rule.as_deref()),
                    attrs,
                ])?;
                let key = (
                    f.start_ms.div_euclid(60_000) * 60_000,
                    topology_label(e.map(|e| &e.src_groups), f.src_ip),
                    topology_label(e.map(|e| &e.dst_groups), f.dst_ip),
                    f.dst_port,
                    f.protocol,
                    e.map_or_else(|| "-".to_string(), |e| e.verdict.clone()),
                );
                let r = rollups.entry(key).or_default();
                r.0 += 1;
                r.1 += f.bytes_out;
                r.2 += f.bytes_in;
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO rollups(minute, src_group, dst_group, dst_port, protocol, verdict, flows, bytes_out, bytes_in)
                 VALUES (?,?,?,?,?,?,?,?,?)
                 ON CONFLICT DO UPDATE SET flows = flows + excluded.flows,
                    bytes_out = bytes_out + excluded.bytes_out, bytes_in = bytes_in + excluded.bytes_in",
            )?;
            for ((minute, sg, dg, port, proto, verdict), (n, bo, bi)) in rollups {
                upsert.execute(params![
                    minute,
                    sg,
                    dg,
                    port,
                    proto,
                    verdict,
                    as_i64(n),
                    as_i64(bo),
                    as_i64(bi)
                ])?;
            }
            tx.execute(
                "UPDATE inputs SET committed_offset = MAX(committed_offset, ?) WHERE id = ?",
                params![as_i64(committed_offset), input],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn finish_input(&mut self, input: i64) -> Result<(), StoreError> {
        self.db
            .execute("UPDATE inputs SET done = 1 WHERE id = ?", params![input])?;
        Ok(())
    }

    fn query(&self, q: &FlowQuery) -> Result<Vec<Flow>, StoreError> {
        let (clause, args) = Self::where_clause(q)?;
        let limit = q.limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        let sql = format!(
            "SELECT start_ms, end_ms, src_ip, dst_ip, src_port, dst_port, protocol, bytes_out, bytes_in,
                packets_out, packets_in, observed, direction, source, hostname, src_workload, dst_workload,
                src_groups, dst_groups, vendor, verdict, rule, attrs
             FROM flows {clause} ORDER BY start_ms, id{limit}"
        );
        let mut stmt = self.db.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            let src: Vec<u8> = r.get(2)?;
            let dst: Vec<u8> = r.get(3)?;
            let source: String = r.get(13)?;
            let mut f = Flow::new(
                FlowSource::from_name(&source).unwrap_or(FlowSource::Agent),
                ip_from(&src),
                ip_from(&dst),
                r.get(6)?,
            );
            f.start_ms = r.get(0)?;
            f.end_ms = r.get(1)?;
            f.src_port = r.get(4)?;
            f.dst_port = r.get(5)?;
            let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
            f.bytes_out = n(7)?;
            f.bytes_in = n(8)?;
            f.packets_out = n(9)?;
            f.packets_in = n(10)?;
            f.observed = match r.get::<_, Option<i64>>(11)? {
                Some(1) => Some(Observed::Accepted),
                Some(2) => Some(Observed::Rejected),
                _ => None,
            };
            f.direction = match r.get::<_, Option<i64>>(12)? {
                Some(1) => Some(Direction::Ingress),
                Some(2) => Some(Direction::Egress),
                _ => None,
            };
            f.hostname = r.get(14)?;
            let verdict: Option<String> = r.get(20)?;
            if let Some(verdict) = verdict {
                f.enrichment = Some(Enrichment {
                    src_workload: r.get(15)?,
                    dst_workload: r.get(16)?,
                    src_groups: split(r.get(17)?),
                    dst_groups: split(r.get(18)?),
                    vendor: r.get(19)?,
                    verdict,
                    rule: r.get(21)?,
                });
            }
            let attrs: Option<String> = r.get(22)?;
            f.attrs = attrs
                .and_then(|a| serde_json::from_str(&a).ok())
                .unwrap_or_default();
            Ok(f)
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn topology(&self, q: &FlowQuery) -> Result<Vec<Edge>, StoreError> {
        let mut clauses = Vec::new();
        let mut args: Vec<i64> = Vec::new();
        if let Some(s) = q.since_ms {
            clauses.push("minute >= ?");
            args.push(s.div_euclid(60_000) * 60_000);
        }
        if let Some(u) = q.until_ms {
            clauses.push("minute < ?");
            args.push(u);
        }
        let clause = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT src_group, dst_group, dst_port, protocol, verdict, SUM(flows), SUM(bytes_out), SUM(bytes_in)
             FROM rollups {clause}
             GROUP BY src_group, dst_group, dst_port, protocol, verdict
             ORDER BY SUM(bytes_out) + SUM(bytes_in) DESC, src_group, dst_group, dst_port"
        );
        let mut stmt = self.db.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
            Ok(Edge {
                src_group: r.get(0)?,
                dst_group: r.get(1)?,
                dst_port: r.get(2)?,
                protocol: r.get(3)?,
                verdict: r.get(4)?,
                flows: n(5)?,
                bytes_out: n(6)?,
                bytes_in: n(7)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn prune(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        let tx = self.db.transaction()?;
        let n = tx.execute("DELETE FROM flows WHERE start_ms < ?", params![before_ms])?;
        tx.execute(
            "DELETE FROM rollups WHERE minute < ?",
            params![before_ms.div_euclid(60_000) * 60_000],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn count(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = self
            .db
            .query_row("SELECT COUNT(*) FROM flows", [], |r| r.get(0))
            .optional()?;
        Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }
}
