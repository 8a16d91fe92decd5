//! The continuous sink: what a store stored since the sink's last flush,
//! written into the lake as it arrives (`cordon ingest|collect --lake`).
//!
//! The sink follows the store rather than the pipeline: it reads the
//! blocks above the last one it wrote ([`FlowReader::scan_blocks`]; block
//! ids are never reused and survive retention), so whatever the store
//! committed reaches the lake exactly once, a crash or a restart resumes
//! where the manifest says it stopped, and writing the same blocks again
//! gives the same file names (it replaces, never duplicates). Each flush
//! writes a file per day the new blocks touch, rows sorted by time; a day
//! `cordon lake export` wrote whole is left out of later flushes as far as
//! that export read, and the export replaces the sink's files it covers.

use std::collections::BTreeMap;

use cordon_flow::Flow;
use cordon_store::FlowReader;

use crate::columns::NetworkActivity;
use crate::manifest::{self, Edit};
use crate::{BATCH_ROWS, ExportOptions, LakeError, LakeFile, Location, Piece, event_day};

/// Blocks read per round of a flush (about half a million flows): a first
/// flush over a large store goes in rounds of this, memory stays flat.
const ROUND_BLOCKS: i64 = 128;

/// What one flush wrote.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Flushed {
    /// Flows written.
    pub rows: u64,
    /// Files written.
    pub files: Vec<LakeFile>,
    /// The last block now in the lake.
    pub through: i64,
}

/// Write what the store holds above the sink's mark into the lake at
/// `location`; files are made under `options.out` (the lake's folder, or a
/// staging folder for S3) and published with the manifest. A folder lake
/// is locked for the flush.
///
/// # Errors
/// The store or the manifest cannot be read, or a file cannot be written.
pub fn flush(
    reader: &dyn FlowReader,
    location: &Location,
    options: &ExportOptions,
) -> Result<Flushed, LakeError> {
    crate::check_partition_value("--region", &options.region)?;
    crate::check_partition_value("--account", &options.account)?;
    let _lock = match location {
        Location::Dir(dir) => Some(manifest::lock(dir)?),
        Location::S3(_) => None,
    };
    let store = reader.store_id()?;
    let manifest = manifest::read(location)?;
    let marks = manifest.stores.get(&store).cloned().unwrap_or_default();
    let last = reader.last_block()?;
    let mut flushed = Flushed {
        through: marks.through,
        ..Flushed::default()
    };
    if last <= marks.through {
        return Ok(flushed);
    }
    // Columns are built here while the writer thread encodes, as in an
    // export.
    let (send, pieces) = std::sync::mpsc::sync_channel::<Piece>(2);
    let files = std::thread::scope(|scope| {
        let writer = scope.spawn(|| crate::write_pieces(options, &store, pieces));
        let scanned = scan_rounds(reader, &marks, last, &send);
        drop(send);
        let written = writer
            .join()
            .map_err(|_| LakeError::Options("the Parquet writer thread failed".to_string()))?;
        // A writer error explains a scan that stopped early.
        let written = written?;
        scanned?;
        Ok::<_, LakeError>(written)
    })?;
    flushed.rows = files.iter().map(|f| f.rows).sum();
    flushed.files = files;
    flushed.through = last;
    manifest::publish(
        location,
        &options.out,
        &Edit {
            written: flushed.files.clone(),
            store: Some(store),
            exported: None,
            sink_through: Some(last),
        },
    )?;
    Ok(flushed)
}

/// The blocks above the sink's mark up to `last`, in rounds of
/// [`ROUND_BLOCKS`]: each round's flows by day, sorted by time, as pieces
/// for the writer (a file per day and round).
fn scan_rounds(
    reader: &dyn FlowReader,
    marks: &crate::StoreMarks,
    last: i64,
    send: &std::sync::mpsc::SyncSender<Piece>,
) -> Result<(), LakeError> {
    let mut after = marks.through;
    while after < last {
        let through = (after + ROUND_BLOCKS).min(last);
        let mut days: BTreeMap<String, Vec<Flow>> = BTreeMap::new();
        reader.scan_blocks(after, through, &mut |block, flow| {
            let day = event_day(flow.start_ms);
            // An export read this day up to its mark: those blocks' flows of
            // the day are in its file.
            if marks.days.get(&day).is_none_or(|m| block > *m) {
                days.entry(day).or_default().push(flow);
            }
            true
        })?;
        for (day, mut flows) in days {
            flows.sort_by_key(|f| f.start_ms);
            let mut rows = NetworkActivity::new();
            for chunk in flows.chunks(BATCH_ROWS) {
                for f in chunk {
                    rows.push(f);
                }
                let batch = rows.take().map_err(|e| LakeError::Parquet {
                    path: day.clone(),
                    message: e.to_string(),
                })?;
                let piece = Piece {
                    day: day.clone(),
                    blocks: Some([after, through]),
                    batch,
                    first_ms: chunk.first().map_or(0, |f| f.start_ms),
                    last_ms: chunk.last().map_or(0, |f| f.start_ms),
                };
                if send.send(piece).is_err() {
                    // The writer stopped: its error says why.
                    return Ok(());
                }
            }
        }
        after = through;
    }
    Ok(())
}
