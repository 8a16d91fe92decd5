//! Cordon's flow lake: stored flows written as OCSF Network Activity
//! (class 4001) in Parquet, laid out as Amazon Security Lake lays out a
//! custom source, so Athena, Trino, DuckDB, Spark and pyarrow read them
//! with the column names security teams already query
//! (`src_endpoint.ip`, `traffic.bytes_out`).
//!
//! The layout: `ext/cordon-network-activity/region=R/accountId=A/
//! eventDay=YYYYMMDD/cordon-4001-YYYYMMDD.zstd.parquet`: one class per
//! file, one file per day (by the flow's start), rows sorted by time, zstd,
//! row groups of at most a million rows, bloom filters on both addresses.
//! The main design choice is that a day is always written whole and under
//! the same name: exporting a range again replaces its days' files
//! (written beside and renamed into place), never adds a second copy.
//! Between exports the continuous sink ([`sink`]) adds the flows a store
//! stores as they come, a file per day and flush, and an export of a day
//! supersedes them. `manifest.json` at the root lists every file, with its
//! rows, bytes, time range and SHA-256, and how far each store's flows are
//! in the lake ([`manifest`]). [`read`] gives flows back for a query.
//!
//! ```no_run
//! # fn f(store: &dyn cordon_store::FlowReader) -> Result<(), cordon_lake::LakeError> {
//! let options = cordon_lake::ExportOptions::new("lake".into());
//! let location = cordon_lake::Location::Dir("lake".into());
//! let _lock = cordon_lake::manifest::lock(&options.out)?;
//! let summary = cordon_lake::export_flows(store, &options, &mut |_rows| {})?;
//! cordon_lake::manifest::publish(&location, &options.out, &summary.edit())?;
//! println!("{} flows in {} files", summary.rows, summary.files.len());
//! # Ok(()) }
//! ```

pub mod columns;
pub mod documents;
pub mod manifest;
pub mod read;
pub mod s3;
pub mod sink;

pub use manifest::{Edit, LakeFile, Manifest, StoreMarks};

use std::fs::File;
use std::io::{BufWriter, Read as _};
use std::path::{Path, PathBuf};

use cordon_store::{FlowQuery, FlowReader};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;

use crate::columns::NetworkActivity;

/// Rows per row group at most (about 40 MB of zstd for flows).
pub const ROW_GROUP_ROWS: usize = 1 << 20;
/// Rows gathered before they are handed to the writer.
const BATCH_ROWS: usize = 64 * 1024;
const DAY_MS: i64 = 86_400_000;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The store could not be read.
    #[error("reading the store: {0}")]
    Store(#[from] cordon_store::StoreError),
    /// A file could not be written.
    #[error("`{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The Parquet writer failed.
    #[error("`{path}`: {message}")]
    Parquet {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// An option is unusable.
    #[error("{0}")]
    Options(String),
}

/// What to export and where.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The lake's root folder.
    pub out: PathBuf,
    /// The `region=` partition.
    pub region: String,
    /// The `accountId=` partition.
    pub account: String,
    /// Days from the one holding this time (ms); `None`: the first stored.
    pub since_ms: Option<i64>,
    /// Days up to the one holding this time (ms); `None`: the last stored.
    pub until_ms: Option<i64>,
    /// Rows per row group at most.
    pub row_group_rows: usize,
}

impl ExportOptions {
    /// Every stored day into `out`, region `local`, account `000000000000`.
    pub fn new(out: PathBuf) -> ExportOptions {
        ExportOptions {
            out,
            region: "local".to_string(),
            account: "000000000000".to_string(),
            since_ms: None,
            until_ms: None,
            row_group_rows: ROW_GROUP_ROWS,
        }
    }
}

/// What an export wrote.
#[derive(Clone, Debug, Serialize)]
pub struct ExportSummary {
    /// Rows written.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// The files written (each replacing any earlier one of its day).
    pub files: Vec<LakeFile>,
    /// The store the flows came from.
    pub store: String,
    /// The last block of the store the export read.
    pub through: i64,
}

impl ExportSummary {
    /// The manifest change that makes this export part of the lake: its
    /// files, and its days marked as exported (superseding the sink's
    /// files of those days).
    pub fn edit(&self) -> Edit {
        let days = self
            .files
            .iter()
            .filter(|f| f.class_uid == 4001)
            .map(|f| f.event_day.clone())
            .collect();
        Edit {
            written: self.files.clone(),
            store: Some(self.store.clone()),
            exported: Some((days, self.through)),
            sink_through: None,
        }
    }
}

/// Where a lake is.
#[derive(Clone, Debug)]
pub enum Location {
    /// A folder.
    Dir(PathBuf),
    /// A bucket and prefix.
    S3(Box<s3::S3Target>),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(d) => write!(f, "{}", d.display()),
            Location::S3(t) if t.prefix.is_empty() => write!(f, "s3://{}", t.bucket),
            Location::S3(t) => write!(f, "s3://{}/{}", t.bucket, t.prefix),
        }
    }
}

/// The folder of `source` (`cordon-network-activity`) for `day`
/// (`YYYYMMDD`).
fn partition_of(options: &ExportOptions, source: &str, day: &str) -> String {
    format!(
        "ext/{source}/region={}/accountId={}/eventDay={day}",
        options.region, options.account
    )
}

/// The folder of class 4001 for `day`.
fn partition(options: &ExportOptions, day: &str) -> String {
    partition_of(options, "cordon-network-activity", day)
}

/// Distinct addresses a row group's bloom filter is sized for: about
/// 80 KiB per address column at a 5% false-positive rate.
const BLOOM_NDV: u64 = 64 * 1024;

fn writer_properties(row_group_rows: usize) -> WriterProperties {
    let mut builder = WriterProperties::builder();
    // Bloom filters on the addresses: a query for one address skips the
    // row groups that never saw it, in any engine that reads them.
    for side in ["src_endpoint", "dst_endpoint"] {
        let column = parquet::schema::types::ColumnPath::new(vec![side.into(), "ip".into()]);
        builder = builder
            .set_column_bloom_filter_enabled(column.clone(), true)
            .set_column_bloom_filter_max_ndv(column, BLOOM_NDV);
    }
    builder
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_created_by(concat!("cordon ", env!("CARGO_PKG_VERSION")).to_string())
        .build()
}

/// A Parquet file being written beside its place in the lake.
struct Staged {
    relative: String,
    tmp: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
}

impl Staged {
    /// Start the file `relative` (under the lake) with `schema`.
    fn create(
        options: &ExportOptions,
        relative: String,
        schema: arrow_schema::SchemaRef,
    ) -> Result<Staged, LakeError> {
        let path = options.out.join(&relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let tmp = options
            .out
            .join(format!("{relative}.tmp{}", std::process::id()));
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            schema,
            Some(writer_properties(options.row_group_rows)),
        )
        .map_err(parquet_error(&tmp))?;
        Ok(Staged {
            relative,
            tmp,
            writer,
        })
    }

    fn write(&mut self, batch: &arrow_array::RecordBatch) -> Result<(), LakeError> {
        self.writer.write(batch).map_err(parquet_error(&self.tmp))
    }

    /// Close the file and rename it into place. The file's class, day,
    /// rows and times are left for the caller to fill in.
    fn seal(self, out: &Path) -> Result<LakeFile, LakeError> {
        let tmp = self.tmp;
        self.writer.close().map_err(parquet_error(&tmp))?;
        let path = out.join(&self.relative);
        let sha256 = file_sha256(&tmp)?;
        let bytes = std::fs::metadata(&tmp).map_err(io(&tmp))?.len();
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(LakeFile {
            path: self.relative,
            class_uid: 0,
            event_day: String::new(),
            rows: 0,
            bytes,
            first_ms: 0,
            last_ms: 0,
            sha256,
            store: None,
            blocks: None,
        })
    }
}

/// Write `batches` as the Parquet file `relative` under the lake, beside
/// and renamed into place (see [`Staged::seal`]).
fn write_batches(
    options: &ExportOptions,
    relative: &str,
    schema: arrow_schema::SchemaRef,
    batches: &[arrow_array::RecordBatch],
) -> Result<LakeFile, LakeError> {
    let mut file = Staged::create(options, relative.to_string(), schema)?;
    for b in batches {
        file.write(b)?;
    }
    file.seal(&options.out)
}

/// Write findings' (2004) and incidents' (2005) OCSF documents, one file
/// per class and day (to be published with [`manifest::publish`]).
///
/// # Errors
/// See [`documents::export_documents`].
pub fn export_findings(
    options: &ExportOptions,
    findings: Vec<serde_json::Value>,
    incidents: Vec<serde_json::Value>,
) -> Result<Vec<LakeFile>, LakeError> {
    check_partition_value("--region", &options.region)?;
    check_partition_value("--account", &options.account)?;
    let mut written =
        documents::export_documents(options, 2004, "cordon-detection-finding", findings)?;
    written.extend(documents::export_documents(
        options,
        2005,
        "cordon-incident-finding",
        incidents,
    )?);
    Ok(written)
}

/// `YYYYMMDD` of the UTC day holding `ms`.
pub fn event_day(ms: i64) -> String {
    let text = cordon_flow::time::format_rfc3339(ms.div_euclid(DAY_MS) * DAY_MS);
    text.get(..10).unwrap_or_default().replace('-', "")
}

fn check_partition_value(what: &str, value: &str) -> Result<(), LakeError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(LakeError::Options(format!(
            "{what} `{value}`: letters, digits, `-` and `_` only (it names a folder)"
        )))
    }
}

/// One day's file being written.
struct DayFile {
    day: String,
    blocks: Option<[i64; 2]>,
    file: Staged,
    rows: u64,
    first_ms: i64,
    last_ms: i64,
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> LakeError + '_ {
    move |source| LakeError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn parquet_error(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> LakeError + '_ {
    move |e| LakeError::Parquet {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl DayFile {
    /// The day's file: the whole day's for an export, the day's part of
    /// the store's blocks `[after, through]` for the sink (named by them).
    fn open(
        options: &ExportOptions,
        store: &str,
        day: &str,
        blocks: Option<[i64; 2]>,
    ) -> Result<DayFile, LakeError> {
        let folder = partition(options, day);
        let relative = match blocks {
            None => format!("{folder}/cordon-4001-{day}.zstd.parquet"),
            Some([after, through]) => format!(
                "{folder}/cordon-4001-{day}-{store}-{}-{through}.zstd.parquet",
                after + 1
            ),
        };
        Ok(DayFile {
            day: day.to_string(),
            blocks,
            file: Staged::create(options, relative, columns::network_activity_schema())?,
            rows: 0,
            first_ms: i64::MAX,
            last_ms: i64::MIN,
        })
    }

    fn write(&mut self, piece: &Piece) -> Result<(), LakeError> {
        self.rows += piece.batch.num_rows() as u64;
        self.first_ms = self.first_ms.min(piece.first_ms);
        self.last_ms = self.last_ms.max(piece.last_ms);
        self.file.write(&piece.batch)
    }

    /// Close the file and rename it over the day's file.
    fn finish(self, out: &Path, store: &str) -> Result<LakeFile, LakeError> {
        Ok(LakeFile {
            class_uid: 4001,
            store: Some(store.to_string()),
            blocks: self.blocks,
            event_day: self.day,
            rows: self.rows,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            ..self.file.seal(out)?
        })
    }
}

/// Rows of one day, columns built, on their way to the writer.
pub(crate) struct Piece {
    pub(crate) day: String,
    /// The store's blocks the rows come from, for the sink's files.
    pub(crate) blocks: Option<[i64; 2]>,
    pub(crate) batch: arrow_array::RecordBatch,
    pub(crate) first_ms: i64,
    pub(crate) last_ms: i64,
}

/// The writer's side: pieces into day files, a file closed when its day
/// (or, for the sink, its blocks) ends. Runs on its own thread so encoding
/// and compressing overlap the store scan and the column building.
pub(crate) fn write_pieces(
    options: &ExportOptions,
    store: &str,
    pieces: std::sync::mpsc::Receiver<Piece>,
) -> Result<Vec<LakeFile>, LakeError> {
    let mut current: Option<DayFile> = None;
    let mut written = Vec::new();
    for piece in pieces {
        if current
            .as_ref()
            .is_none_or(|c| c.day != piece.day || c.blocks != piece.blocks)
        {
            if let Some(done) = current.take() {
                written.push(done.finish(&options.out, store)?);
            }
            current = Some(DayFile::open(options, store, &piece.day, piece.blocks)?);
        }
        if let Some(c) = current.as_mut() {
            c.write(&piece)?;
        }
    }
    if let Some(done) = current.take() {
        written.push(done.finish(&options.out, store)?);
    }
    Ok(written)
}

fn file_sha256(path: &Path) -> Result<String, LakeError> {
    use std::fmt::Write as _;
    let mut file = File::open(path).map_err(io(path))?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        context.update(buf.get(..n).unwrap_or_default());
    }
    Ok(context
        .finish()
        .as_ref()
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        }))
}

/// Export the stored flows of the chosen days, one file per day; each
/// replaces the day's earlier file. `progress` hears the rows written so
/// far now and then.
///
/// # Errors
/// The store cannot be read, a file cannot be written, or an option is
/// unusable. Days finished before the error keep their new files.
pub fn export_flows(
    reader: &dyn FlowReader,
    options: &ExportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary, LakeError> {
    check_partition_value("--region", &options.region)?;
    check_partition_value("--account", &options.account)?;
    let store = reader.store_id()?;
    let through = reader.last_block()?;
    // Whole days: a day's file always holds all of the day.
    let query = FlowQuery {
        through_block: Some(through),
        since_ms: options.since_ms.map(|s| s.div_euclid(DAY_MS) * DAY_MS),
        until_ms: options
            .until_ms
            .map(|u| (u.div_euclid(DAY_MS) + 1) * DAY_MS),
        ..FlowQuery::default()
    };
    let (send, pieces) = std::sync::mpsc::sync_channel::<Piece>(2);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_pieces(options, &store, pieces));
        let scanned = scan_into(reader, &query, send, progress);
        let written = writer
            .join()
            .map_err(|_| LakeError::Options("the Parquet writer thread failed".to_string()))?;
        // A writer error explains a scan that stopped early; report it first.
        let written = written?;
        let total = scanned?;
        Ok((written, total))
    })
    .map(|(written, total): (Vec<LakeFile>, u64)| {
        progress(total);
        ExportSummary {
            rows: total,
            bytes: written.iter().map(|f| f.bytes).sum(),
            files: written,
            store: store.clone(),
            through,
        }
    })
}

/// The scanning side: flows into columns, a piece sent at every
/// [`BATCH_ROWS`] rows and at the end of every day. Returns the rows sent.
fn scan_into(
    reader: &dyn FlowReader,
    query: &FlowQuery,
    send: std::sync::mpsc::SyncSender<Piece>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, LakeError> {
    let mut rows = NetworkActivity::new();
    let mut day = String::new();
    let (mut first_ms, mut last_ms) = (i64::MAX, i64::MIN);
    let mut total = 0u64;
    let mut failure: Option<LakeError> = None;
    let flush = |rows: &mut NetworkActivity, day: &str, first: i64, last: i64| {
        if rows.is_empty() {
            return Ok(true);
        }
        let batch = rows.take().map_err(|e| LakeError::Parquet {
            path: day.to_string(),
            message: e.to_string(),
        })?;
        Ok::<bool, LakeError>(
            send.send(Piece {
                day: day.to_string(),
                blocks: None,
                batch,
                first_ms: first,
                last_ms: last,
            })
            .is_ok(),
        )
    };
    reader.scan(query, &mut |flow| {
        let this_day = event_day(flow.start_ms);
        let mut go_on = true;
        if this_day != day || rows.len() >= BATCH_ROWS {
            match flush(&mut rows, &day, first_ms, last_ms) {
                Ok(alive) => go_on = alive,
                Err(e) => {
                    failure = Some(e);
                    return false;
                }
            }
            (first_ms, last_ms) = (i64::MAX, i64::MIN);
            day = this_day;
        }
        first_ms = first_ms.min(flow.start_ms);
        last_ms = last_ms.max(flow.start_ms);
        rows.push(&flow);
        total += 1;
        if total.is_multiple_of(1_000_000) {
            progress(total);
        }
        go_on
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    flush(&mut rows, &day, first_ms, last_ms)?;
    Ok(total)
}

#[cfg(test)]
mod tests;
