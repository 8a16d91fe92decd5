//! The embedded SQLite backend.

use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;
use std::path::Path;

use cordon_flow::Flow;
use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::query::{Edge, FlowQuery, topology_label};
use crate::{Bucket, FlowReader, FlowWriter, IngestLedger, InputState, Store, StoreError};

mod audit;
mod block;
mod exchange;
mod findings;
mod incidents;
#[cfg(test)]
mod tests;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inputs(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    committed_offset INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS blocks(
    id INTEGER PRIMARY KEY,
    input_id INTEGER,
    min_start INTEGER NOT NULL,
    max_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_time ON blocks(max_start, min_start);
CREATE TABLE IF NOT EXISTS block_prefixes(
    prefix BLOB NOT NULL,
    block_id INTEGER NOT NULL,
    PRIMARY KEY(prefix, block_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS block_nets(
    net BLOB NOT NULL,
    block_id INTEGER NOT NULL,
    PRIMARY KEY(net, block_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS block_groups(
    grp TEXT NOT NULL,
    block_id INTEGER NOT NULL,
    PRIMARY KEY(grp, block_id)
) WITHOUT ROWID;
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
CREATE TABLE IF NOT EXISTS counters(
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// A rollup row's key: minute, source group, destination group, port,
/// protocol, verdict.
type RollupKey<'a> = (i64, &'a str, &'a str, u16, u8, &'a str);

/// Flows in a SQLite database in one folder.
pub struct SqliteStore {
    db: Connection,
}

/// Addresses as 16 bytes (IPv4 mapped into IPv6), so ranges compare as bytes.
fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The indexed prefix of an address: its /24 for IPv4, its /64 for IPv6.
fn prefix(ip: IpAddr) -> [u8; 16] {
    let mut b = ip_bytes(ip);
    let keep = if b.starts_with(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]) {
        15
    } else {
        8
    };
    for byte in b.iter_mut().skip(keep) {
        *byte = 0;
    }
    b
}

/// The range of indexed prefixes that can hold addresses of `net`.
fn prefix_range(net: &IpNet) -> ([u8; 16], [u8; 16]) {
    (prefix(net.network()), prefix(net.broadcast()))
}

/// Most fine prefixes (/24, /64) indexed for one block. A block with more
/// (flows from all over the internet) is indexed by coarser networks
/// instead, so the index grows with blocks, not with distinct addresses.
const MAX_FINE_PREFIXES: usize = 512;

/// Coarse levels, as prefix lengths of the 128-bit (IPv4-mapped) address:
/// IPv4 /16 and /8, IPv6 /48 and /32.
const COARSE_LEVELS: [(u8, u8); 2] = [(112, 48), (104, 32)];

/// The coarse index key of `ip` at `level` (a level byte, then the masked
/// address), so keys of one level sort together.
fn net_key(ip: IpAddr, (v4_bits, v6_bits): (u8, u8)) -> [u8; 17] {
    let b = ip_bytes(ip);
    let bits = if matches!(ip, IpAddr::V4(_)) {
        v4_bits
    } else {
        v6_bits
    };
    let mut key = [0u8; 17];
    key[0] = v4_bits;
    for (i, byte) in b.iter().enumerate() {
        let keep = (u32::from(bits)).saturating_sub(8 * i as u32).min(8);
        let mask = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        key[i + 1] = byte & mask;
    }
    key
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored row of `kind` (`finding`, `incident`) that does not read back.
fn damaged(kind: &str, id: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Damaged {
        what: format!("{kind} `{id}`"),
        detail: e.to_string(),
    }
}

/// A value of a row of `kind` as a JSON column.
fn json<T: serde::Serialize>(kind: &str, id: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| damaged(kind, id, e))
}

/// Groups indexed per block; a block with more is left unindexed (always
/// read when filtering by group).
const MAX_BLOCK_GROUPS: usize = 256;

/// The marker row of a block whose groups are indexed.
const GROUPS_INDEXED: &str = "";

/// Record the policy groups a block's flows are in, so a query by group
/// reads only the blocks that can hold it. Blocks written before the index
/// (no marker row) are always read.
fn index_groups(tx: &rusqlite::Transaction<'_>, id: i64, flows: &[Flow]) -> Result<(), StoreError> {
    let mut groups: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
    // Flows share enrichments: each shared one is looked at once.
    let mut seen: rustc_hash::FxHashSet<usize> = rustc_hash::FxHashSet::default();
    for e in flows.iter().filter_map(|f| f.enrichment.as_ref()) {
        if !seen.insert(std::sync::Arc::as_ptr(e) as usize) {
            continue;
        }
        for g in e.src_groups.iter().chain(e.dst_groups.iter()) {
            groups.insert(g);
        }
        if groups.len() > MAX_BLOCK_GROUPS {
            return Ok(());
        }
    }
    let mut stmt =
        tx.prepare_cached("INSERT OR IGNORE INTO block_groups(grp, block_id) VALUES (?, ?)")?;
    stmt.execute(params![GROUPS_INDEXED, id])?;
    let mut sorted: Vec<&str> = groups.into_iter().collect();
    sorted.sort_unstable();
    for g in sorted {
        stmt.execute(params![g, id])?;
    }
    Ok(())
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
        // Blocks are values of a few hundred KiB: 16 KiB pages write them
        // with a quarter of the page and WAL frame bookkeeping of 4 KiB
        // ones. Only a new database takes the page size; existing stores
        // keep theirs.
        db.pragma_update(None, "page_size", 16_384)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.pragma_update(None, "temp_store", "MEMORY")?;
        db.pragma_update(None, "cache_size", -65_536)?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(SCHEMA)?;
        db.execute(
            "INSERT OR IGNORE INTO counters(name, value) VALUES ('store', random())",
            [],
        )?;
        findings::prepare(&db)?;
        incidents::prepare(&db)?;
        exchange::prepare(&db)?;
        audit::prepare(&db)?;
        Ok(SqliteStore { db })
    }

    /// A new block id: above every id ever given, even those pruned since,
    /// so readers that remember how far they got ([`FlowReader::scan_blocks`])
    /// never miss a block written under a reused id.
    fn next_block_id(tx: &rusqlite::Transaction<'_>) -> Result<i64, StoreError> {
        Ok(tx
            .prepare_cached(
                "INSERT INTO counters(name, value)
                   VALUES ('block', (SELECT COALESCE(MAX(id), 0) FROM blocks) + 1)
                 ON CONFLICT(name) DO UPDATE
                   SET value = MAX(value, (SELECT COALESCE(MAX(id), 0) FROM blocks)) + 1
                 RETURNING value",
            )?
            .query_row([], |r| r.get(0))?)
    }

    /// Store one block of flows and index its address prefixes, under `id`
    /// (a block rewritten in place) or a new id.
    fn insert_block(
        tx: &rusqlite::Transaction<'_>,
        id: Option<i64>,
        input: Option<i64>,
        flows: &[Flow],
    ) -> Result<(), StoreError> {
        let min = flows.iter().map(|f| f.start_ms).min().unwrap_or(0);
        let max = flows.iter().map(|f| f.start_ms).max().unwrap_or(0);
        let data = block::encode(flows);
        let id = match id {
            Some(id) => id,
            None => Self::next_block_id(tx)?,
        };
        tx.prepare_cached(
            "INSERT INTO blocks(id, input_id, min_start, max_start, count, data) VALUES (?,?,?,?,?,?)",
        )?
        .execute(params![id, input, min, max, flows.len() as i64, data])?;
        index_groups(tx, id, flows)?;
        // Few distinct prefixes among thousands of addresses: dedupe by
        // hash, then sort the few for b-tree friendly inserts.
        let distinct: rustc_hash::FxHashSet<[u8; 16]> = flows
            .iter()
            .flat_map(|f| [prefix(f.src_ip), prefix(f.dst_ip)])
            .collect();
        if distinct.len() > MAX_FINE_PREFIXES {
            let mut nets: Vec<[u8; 17]> = Vec::new();
            for level in COARSE_LEVELS {
                let coarse: rustc_hash::FxHashSet<[u8; 17]> = flows
                    .iter()
                    .flat_map(|f| [net_key(f.src_ip, level), net_key(f.dst_ip, level)])
                    .collect();
                nets = coarse.into_iter().collect();
                if nets.len() <= MAX_FINE_PREFIXES {
                    break;
                }
            }
            nets.sort_unstable();
            let mut stmt =
                tx.prepare_cached("INSERT OR IGNORE INTO block_nets(net, block_id) VALUES (?, ?)")?;
            for n in nets {
                stmt.execute(params![&n[..], id])?;
            }
            return Ok(());
        }
        let mut prefixes: Vec<[u8; 16]> = distinct.into_iter().collect();
        prefixes.sort_unstable();
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO block_prefixes(prefix, block_id) VALUES (?, ?)",
        )?;
        for p in prefixes {
            stmt.execute(params![&p[..], id])?;
        }
        Ok(())
    }

    /// The blocks that may hold flows matching `q`, oldest first.
    fn candidate_blocks(&self, q: &FlowQuery) -> Result<Vec<(i64, i64)>, StoreError> {
        use rusqlite::types::Value as V;
        let mut sql = String::from("SELECT id, min_start FROM blocks WHERE 1 = 1");
        let mut args: Vec<V> = Vec::new();
        if let Some(s) = q.since_ms {
            sql.push_str(" AND max_start >= ?");
            args.push(V::Integer(s));
        }
        if let Some(u) = q.until_ms {
            sql.push_str(" AND min_start < ?");
            args.push(V::Integer(u));
        }
        if let Some(b) = q.through_block {
            sql.push_str(" AND id <= ?");
            args.push(V::Integer(b));
        }
        for net in [&q.src, &q.dst, &q.addr].into_iter().flatten() {
            let (lo, hi) = prefix_range(net);
            sql.push_str(
                " AND (id IN (SELECT block_id FROM block_prefixes WHERE prefix BETWEEN ? AND ?)",
            );
            args.push(V::Blob(lo.to_vec()));
            args.push(V::Blob(hi.to_vec()));
            for level in COARSE_LEVELS {
                sql.push_str(
                    " OR id IN (SELECT block_id FROM block_nets WHERE net BETWEEN ? AND ?)",
                );
                args.push(V::Blob(net_key(net.network(), level).to_vec()));
                args.push(V::Blob(net_key(net.broadcast(), level).to_vec()));
            }
            sql.push(')');
        }
        if let Some(g) = &q.group {
            sql.push_str(
                " AND (id IN (SELECT block_id FROM block_groups WHERE grp = ?) \
                 OR id NOT IN (SELECT block_id FROM block_groups WHERE grp = ?))",
            );
            args.push(V::Text(g.clone()));
            args.push(V::Text(GROUPS_INDEXED.to_string()));
        }
        sql.push_str(" ORDER BY min_start, id");
        let mut stmt = self.db.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// A block's encoded flows; `None` when no block has the id (pruned
    /// since its id was read).
    fn block_data(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .prepare_cached("SELECT data FROM blocks WHERE id = ?")?
            .query_row(params![id], |r| r.get(0))
            .optional()?)
    }

    /// [`SqliteStore::block_data`] of a block that must be there.
    fn existing_block(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .block_data(id)?
            .ok_or(rusqlite::Error::QueryReturnedNoRows)?)
    }
}

impl IngestLedger for SqliteStore {
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

    fn finish_input(&mut self, input: i64) -> Result<(), StoreError> {
        self.db
            .execute("UPDATE inputs SET done = 1 WHERE id = ?", params![input])?;
        Ok(())
    }
}

impl FlowWriter for SqliteStore {
    fn append(
        &mut self,
        input: i64,
        flows: &[Flow],
        committed_offset: u64,
    ) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        for chunk in flows.chunks(block::BLOCK) {
            Self::insert_block(&tx, None, Some(input), chunk)?;
        }
        let mut rollups: HashMap<RollupKey, (u64, u64, u64)> = HashMap::default();
        // Snapshots of connections still open are kept (detection replays
        // them) but not counted: the connection's own record counts it.
        for f in flows.iter().filter(|f| !f.is_snapshot()) {
            let e = f.enrichment.as_ref();
            let key = (
                f.start_ms.div_euclid(60_000) * 60_000,
                topology_label(e.map(|e| &*e.src_groups), f.src_ip),
                topology_label(e.map(|e| &*e.dst_groups), f.dst_ip),
                f.dst_port,
                f.protocol,
                e.map_or("-", |e| e.verdict.as_str()),
            );
            let r = rollups.entry(key).or_default();
            r.0 += 1;
            r.1 += f.bytes_out;
            r.2 += f.bytes_in;
        }
        {
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
        }
        tx.execute(
            "UPDATE inputs SET committed_offset = MAX(committed_offset, ?) WHERE id = ?",
            params![as_i64(committed_offset), input],
        )?;
        tx.commit()?;
        Ok(())
    }
}

impl FlowReader for SqliteStore {
    fn query(&self, q: &FlowQuery) -> Result<Vec<Flow>, StoreError> {
        if let Some(g) = q.group.as_ref().filter(|g| g.contains(',')) {
            return Err(StoreError::Query(format!("invalid group name `{g}`")));
        }
        let limit = q
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let mut out: Vec<Flow> = Vec::new();
        for (id, min_start) in self.candidate_blocks(q)? {
            // Blocks come oldest first: once `limit` flows are kept, a block
            // starting after the newest kept one cannot contribute.
            if out.len() >= limit {
                out.sort_by_key(|f| f.start_ms);
                out.truncate(limit);
                if out.last().is_some_and(|f| min_start > f.start_ms) {
                    break;
                }
            }
            let data = self.existing_block(id)?;
            block::decode(&data, &mut |f| q.matches(f), &mut out)
                .map_err(|e| StoreError::Query(e.to_string()))?;
        }
        out.sort_by_key(|f| f.start_ms);
        out.truncate(limit);
        Ok(out)
    }

    fn scan(&self, q: &FlowQuery, sink: &mut dyn FnMut(Flow) -> bool) -> Result<u64, StoreError> {
        if let Some(g) = q.group.as_ref().filter(|g| g.contains(',')) {
            return Err(StoreError::Query(format!("invalid group name `{g}`")));
        }
        let blocks = self.candidate_blocks(q)?;
        let mut pending: Vec<Flow> = Vec::new();
        let mut passed = 0u64;
        for (i, (id, _)) in blocks.iter().enumerate() {
            let data = self.existing_block(*id)?;
            block::decode(&data, &mut |f| q.matches(f), &mut pending)
                .map_err(|e| StoreError::Query(e.to_string()))?;
            // Blocks come by their earliest flow: nothing later can start
            // before the next block's earliest, so those are final.
            let bound = blocks.get(i + 1).map_or(i64::MAX, |b| b.1);
            pending.sort_by_key(|f| f.start_ms);
            let cut = pending.partition_point(|f| f.start_ms < bound);
            for f in pending.drain(..cut) {
                passed += 1;
                if !sink(f) {
                    return Ok(passed);
                }
            }
        }
        Ok(passed)
    }

    fn store_id(&self) -> Result<String, StoreError> {
        let id: i64 =
            self.db
                .query_row("SELECT value FROM counters WHERE name = 'store'", [], |r| {
                    r.get(0)
                })?;
        Ok(format!("{:016x}", id.cast_unsigned()))
    }

    fn last_block(&self) -> Result<i64, StoreError> {
        let counted: Option<i64> = self
            .db
            .query_row("SELECT value FROM counters WHERE name = 'block'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let stored: i64 =
            self.db
                .query_row("SELECT COALESCE(MAX(id), 0) FROM blocks", [], |r| r.get(0))?;
        Ok(counted.unwrap_or(0).max(stored))
    }

    fn scan_blocks(
        &self,
        after: i64,
        through: i64,
        sink: &mut dyn FnMut(i64, Flow) -> bool,
    ) -> Result<u64, StoreError> {
        let ids: Vec<i64> = {
            let mut stmt = self
                .db
                .prepare_cached("SELECT id FROM blocks WHERE id > ? AND id <= ? ORDER BY id")?;
            let rows = stmt.query_map(params![after, through], |r| r.get(0))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        let mut passed = 0u64;
        let mut flows = Vec::new();
        for id in ids {
            // A block pruned away since the ids were read holds nothing now.
            let Some(data) = self.block_data(id)? else {
                continue;
            };
            flows.clear();
            block::decode(&data, &mut |_| true, &mut flows)
                .map_err(|e| damaged("flow block", &id.to_string(), e))?;
            for f in flows.drain(..) {
                passed += 1;
                if !sink(id, f) {
                    return Ok(passed);
                }
            }
        }
        Ok(passed)
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
                verdict: r.get::<_, String>(4)?.parse().ok(),
                flows: n(5)?,
                bytes_out: n(6)?,
                bytes_in: n(7)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn timeline(&self, q: &FlowQuery, bucket_ms: i64) -> Result<Vec<Bucket>, StoreError> {
        let bucket = bucket_ms.max(60_000);
        let since = q
            .since_ms
            .map_or(i64::MIN, |s| s.div_euclid(60_000) * 60_000);
        let until = q.until_ms.unwrap_or(i64::MAX);
        let mut stmt = self.db.prepare_cached(
            "SELECT (minute / ?1) * ?1 AS t, verdict, SUM(flows), SUM(bytes_out) + SUM(bytes_in)
             FROM rollups WHERE minute >= ?2 AND minute < ?3
             GROUP BY t, verdict ORDER BY t, verdict",
        )?;
        let rows = stmt.query_map(params![bucket, since, until], |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
            Ok(Bucket {
                start_ms: r.get(0)?,
                verdict: r.get::<_, String>(1)?.parse().ok(),
                flows: n(2)?,
                bytes: n(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn time_span(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let span: (Option<i64>, Option<i64>) = self.db.query_row(
            "SELECT MIN(min_start), MAX(max_start) FROM blocks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(match span {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        })
    }

    fn count(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = self
            .db
            .query_row("SELECT COALESCE(SUM(count), 0) FROM blocks", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }
}

impl Store for SqliteStore {
    fn prune(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        let tx = self.db.transaction()?;
        let mut deleted: i64 = tx.query_row(
            "SELECT COALESCE(SUM(count), 0) FROM blocks WHERE max_start < ?",
            params![before_ms],
            |r| r.get(0),
        )?;
        for table in ["block_prefixes", "block_nets", "block_groups"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE block_id IN (SELECT id FROM blocks WHERE max_start < ?)"),
                params![before_ms],
            )?;
        }
        tx.execute("DELETE FROM blocks WHERE max_start < ?", params![before_ms])?;
        // Blocks that straddle the cut are rewritten without the old flows.
        let straddling: Vec<(i64, Option<i64>, Vec<u8>)> = {
            let mut stmt =
                tx.prepare("SELECT id, input_id, data FROM blocks WHERE min_start < ?")?;
            let rows = stmt.query_map(params![before_ms], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for (id, input, data) in straddling {
            let mut kept = Vec::new();
            let mut dropped = 0i64;
            block::decode(
                &data,
                &mut |f| {
                    let keep = f.start_ms >= before_ms;
                    dropped += i64::from(!keep);
                    keep
                },
                &mut kept,
            )
            .map_err(|e| StoreError::Query(e.to_string()))?;
            deleted += dropped;
            tx.execute("DELETE FROM block_prefixes WHERE block_id = ?", params![id])?;
            tx.execute("DELETE FROM block_nets WHERE block_id = ?", params![id])?;
            tx.execute("DELETE FROM block_groups WHERE block_id = ?", params![id])?;
            tx.execute("DELETE FROM blocks WHERE id = ?", params![id])?;
            // The block keeps its id: what it still holds was written
            // under that id and readers by id have already seen it.
            if !kept.is_empty() {
                Self::insert_block(&tx, Some(id), input, &kept)?;
            }
        }
        tx.execute(
            "DELETE FROM rollups WHERE minute < ?",
            params![before_ms.div_euclid(60_000) * 60_000],
        )?;
        // Audit events keep the same retention as flows.
        Self::prune_audit(&tx, before_ms)?;
        tx.commit()?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }
}
