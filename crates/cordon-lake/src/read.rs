//! The lake read back as flows: what `cordon flows query --lake` uses for
//! the time the local store no longer holds.
//!
//! Reading skips what cannot match before decoding anything: files by the
//! time range the manifest gives them, row groups by the minimum and
//! maximum start time and addresses their statistics record, and, for a
//! query on one address, by the bloom filters every file keeps on
//! `src_endpoint.ip` and `dst_endpoint.ip`. From S3 only the footer, the
//! bloom filters and the row groups that may match are fetched, by ranged
//! GETs. What is decoded is filtered exactly as the store filters.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StructArray};
use arrow_schema::ArrowError;
use bytes::Bytes;
use cordon_flow::flow::{Attrs, Direction, Enrichment, Flow, FlowSource, Observed, Orientation};
use cordon_store::FlowQuery;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowPredicate, ArrowPredicateFn, ArrowReaderMetadata, ParquetRecordBatchReaderBuilder,
    RowFilter,
};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::statistics::Statistics;

use crate::s3::S3Target;
use crate::{LakeError, LakeFile, Location, Manifest};

/// How much of the lake a query read.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReadStats {
    /// Flow files the manifest lists.
    pub files: u64,
    /// Files whose time range overlapped the query.
    pub files_opened: u64,
    /// Row groups in the files opened.
    pub row_groups: u64,
    /// Row groups decoded (the others were skipped by their statistics or
    /// bloom filters).
    pub row_groups_read: u64,
    /// Rows decoded whole: those the start-time and address filters,
    /// decoded first, let through.
    pub rows_read: u64,
    /// Bytes fetched from S3 (0 for a folder).
    pub bytes_fetched: u64,
}

/// A lake opened for reading: its manifest, and a runtime for S3.
pub struct LakeReader {
    location: Location,
    manifest: Manifest,
    runtime: Option<Arc<tokio::runtime::Runtime>>,
}

fn damaged(path: &str, message: impl std::fmt::Display) -> LakeError {
    LakeError::Parquet {
        path: path.to_string(),
        message: message.to_string(),
    }
}

impl LakeReader {
    /// Open the lake at `location` by its `manifest.json`.
    ///
    /// # Errors
    /// No manifest (not a lake Cordon wrote), or it does not read.
    pub fn open(location: Location) -> Result<LakeReader, LakeError> {
        let Some(manifest) = crate::manifest::read_if_any(&location)? else {
            return Err(match &location {
                Location::Dir(dir) => LakeError::Io {
                    path: dir.join("manifest.json").display().to_string(),
                    source: std::io::ErrorKind::NotFound.into(),
                },
                Location::S3(_) => LakeError::Options(format!(
                    "{location}: no manifest.json (not a lake `cordon lake export` wrote)"
                )),
            });
        };
        let runtime = match &location {
            Location::S3(_) => Some(Arc::new(crate::manifest::runtime()?)),
            Location::Dir(_) => None,
        };
        Ok(LakeReader {
            location,
            manifest,
            runtime,
        })
    }

    /// The flow files, oldest first.
    fn flow_files(&self) -> Vec<&LakeFile> {
        let mut files: Vec<&LakeFile> = self
            .manifest
            .files
            .iter()
            .filter(|f| f.class_uid == 4001)
            .collect();
        files.sort_by(|a, b| (&a.event_day, a.first_ms).cmp(&(&b.event_day, b.first_ms)));
        files
    }

    /// The start times of the oldest and newest flows the lake holds.
    pub fn time_span(&self) -> Option<(i64, i64)> {
        let files = self.flow_files();
        let first = files.iter().map(|f| f.first_ms).min()?;
        let last = files.iter().map(|f| f.last_ms).max()?;
        Some((first, last))
    }

    /// Flows matching `query`, oldest first, at most its `limit`.
    ///
    /// # Errors
    /// A file cannot be fetched or does not read as a flow file.
    pub fn query(&self, query: &FlowQuery, stats: &mut ReadStats) -> Result<Vec<Flow>, LakeError> {
        let limit = query
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let files = self.flow_files();
        stats.files += files.len() as u64;
        // Files of one day overlap in time (a day's file and the pieces the
        // continuous sink wrote after it): a day is read whole, then sorted.
        let mut days: BTreeMap<&str, Vec<&LakeFile>> = BTreeMap::new();
        for f in files {
            let overlaps = query.since_ms.is_none_or(|s| f.last_ms >= s)
                && query.until_ms.is_none_or(|u| f.first_ms < u);
            if overlaps {
                days.entry(&f.event_day).or_default().push(f);
            }
        }
        let mut out = Vec::new();
        for files in days.values() {
            let mut day = Vec::new();
            for f in files {
                stats.files_opened += 1;
                self.read_file(f, query, &mut day, stats)?;
            }
            day.sort_by_key(|f: &Flow| f.start_ms);
            out.append(&mut day);
            if out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    fn read_file(
        &self,
        file: &LakeFile,
        query: &FlowQuery,
        out: &mut Vec<Flow>,
        stats: &mut ReadStats,
    ) -> Result<(), LakeError> {
        match (&self.location, &self.runtime) {
            (Location::S3(target), Some(runtime)) => {
                let ranged = Ranged::new((**target).clone(), file, runtime.clone())?;
                let fetched = ranged.inner.clone();
                let result = read_parquet(
                    ranged.clone(),
                    &file.path,
                    query,
                    out,
                    stats,
                    |meta, rgs| ranged.prefetch(meta, rgs),
                );
                stats.bytes_fetched += fetched.fetched.load(Ordering::Relaxed);
                result
            }
            (Location::Dir(dir), _) => {
                let path = dir.join(&file.path);
                let handle = File::open(&path).map_err(|source| LakeError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                read_parquet(handle, &file.path, query, out, stats, |_, _| Ok(()))
            }
            (Location::S3(_), None) => Err(LakeError::Options("no runtime for S3".to_string())),
        }
    }
}

/// The single address a network stands for, as the lake writes it.
fn host_of(net: Option<&ipnet::IpNet>) -> Option<String> {
    let net = net?;
    (net.prefix_len() == net.max_prefix_len()).then(|| net.addr().to_string())
}

/// Index of the leaf column at `path` (`src_endpoint.ip`).
fn leaf(meta: &ParquetMetaData, path: &str) -> Option<usize> {
    meta.file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().string() == path)
}

/// Whether `value` may lie within the string statistics of a column chunk.
fn within_stats(stats: Option<&Statistics>, value: &str) -> bool {
    let Some(Statistics::ByteArray(s)) = stats else {
        return true;
    };
    let (Some(min), Some(max)) = (s.min_opt(), s.max_opt()) else {
        return true;
    };
    min.data() <= value.as_bytes() && value.as_bytes() <= max.data()
}

/// The row groups whose statistics allow a match.
fn by_statistics(meta: &ParquetMetaData, query: &FlowQuery) -> Vec<usize> {
    let start = leaf(meta, "start_time");
    let src = leaf(meta, "src_endpoint.ip");
    let dst = leaf(meta, "dst_endpoint.ip");
    let (src_host, dst_host, any_host) = (
        host_of(query.src.as_ref()),
        host_of(query.dst.as_ref()),
        host_of(query.addr.as_ref()),
    );
    (0..meta.num_row_groups())
        .filter(|&i| {
            let rg = meta.row_group(i);
            let time_ok = match start.and_then(|c| rg.column(c).statistics()) {
                Some(Statistics::Int64(s)) => {
                    let max_ok = query
                        .since_ms
                        .is_none_or(|since| s.max_opt().is_none_or(|m| *m >= since));
                    let min_ok = query
                        .until_ms
                        .is_none_or(|until| s.min_opt().is_none_or(|m| *m < until));
                    max_ok && min_ok
                }
                _ => true,
            };
            let stats = |c: Option<usize>| c.and_then(|c| rg.column(c).statistics());
            let src_ok = src_host
                .as_deref()
                .is_none_or(|h| within_stats(stats(src), h));
            let dst_ok = dst_host
                .as_deref()
                .is_none_or(|h| within_stats(stats(dst), h));
            let any_ok = any_host
                .as_deref()
                .is_none_or(|h| within_stats(stats(src), h) || within_stats(stats(dst), h));
            time_ok && src_ok && dst_ok && any_ok
        })
        .collect()
}

/// Decode the row groups of one file that may match, keeping the flows
/// that do. `prefetch` hears the row groups chosen before they are read.
fn read_parquet<R: ChunkReader + 'static>(
    reader: R,
    path: &str,
    query: &FlowQuery,
    out: &mut Vec<Flow>,
    stats: &mut ReadStats,
    prefetch: impl FnOnce(&ParquetMetaData, &[usize]) -> Result<(), LakeError>,
) -> Result<(), LakeError> {
    let metadata =
        ArrowReaderMetadata::load(&reader, Default::default()).map_err(|e| damaged(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(reader, metadata);
    let meta = builder.metadata().clone();
    stats.row_groups += meta.num_row_groups() as u64;
    let mut chosen = by_statistics(&meta, query);
    // One address asked for: a row group whose bloom filter has not seen it
    // on the side asked is skipped.
    let sides = [
        (host_of(query.src.as_ref()), vec!["src_endpoint.ip"]),
        (host_of(query.dst.as_ref()), vec!["dst_endpoint.ip"]),
        (
            host_of(query.addr.as_ref()),
            vec!["src_endpoint.ip", "dst_endpoint.ip"],
        ),
    ];
    for (host, columns) in sides {
        let Some(host) = host else { continue };
        let columns: Vec<usize> = columns.iter().filter_map(|c| leaf(&meta, c)).collect();
        let mut kept = Vec::with_capacity(chosen.len());
        for rg in chosen {
            let mut may = columns.is_empty();
            for &c in &columns {
                may |= match builder
                    .get_row_group_column_bloom_filter(rg, c)
                    .map_err(|e| damaged(path, e))?
                {
                    Some(filter) => filter.check(host.as_str()),
                    None => true,
                };
            }
            if may {
                kept.push(rg);
            }
        }
        chosen = kept;
    }
    if chosen.is_empty() {
        return Ok(());
    }
    stats.row_groups_read += chosen.len() as u64;
    prefetch(&meta, &chosen)?;
    let filter = row_filter(&meta, query);
    let mut builder = builder.with_row_groups(chosen).with_batch_size(64 * 1024);
    if let Some(f) = filter {
        builder = builder.with_row_filter(f);
    }
    let batches = builder.build().map_err(|e| damaged(path, e))?;
    for batch in batches {
        let batch = batch.map_err(|e| damaged(path, e))?;
        stats.rows_read += batch.num_rows() as u64;
        flows_of(&batch, query, out).map_err(|e| damaged(path, e))?;
    }
    Ok(())
}

/// The addresses of one side in a filter's batch (`src_endpoint.ip`).
fn addresses(batch: &RecordBatch, side: &str) -> Result<Vec<Option<IpAddr>>, ArrowError> {
    let strings = batch
        .column_by_name(side)
        .and_then(|c| c.as_struct_opt())
        .and_then(|s| s.column_by_name("ip"))
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| ArrowError::SchemaError(format!("no `{side}.ip` column")))?;
    Ok(strings
        .iter()
        .map(|s| s.and_then(|s| s.parse().ok()))
        .collect())
}

/// Filters decoded before the rest of a row (late materialisation): the
/// start time and the addresses; a row they drop is never built.
fn row_filter(meta: &ParquetMetaData, query: &FlowQuery) -> Option<RowFilter> {
    let schema = meta.file_metadata().schema_descr();
    let mut predicates: Vec<Box<dyn ArrowPredicate>> = Vec::new();
    if (query.since_ms.is_some() || query.until_ms.is_some())
        && let Some(start) = leaf(meta, "start_time")
    {
        let (since, until) = (query.since_ms, query.until_ms);
        predicates.push(Box::new(ArrowPredicateFn::new(
            ProjectionMask::leaves(schema, [start]),
            move |batch: RecordBatch| {
                let times = batch
                    .column_by_name("start_time")
                    .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
                    .ok_or_else(|| ArrowError::SchemaError("no `start_time`".into()))?;
                Ok(times
                    .iter()
                    .map(|t| t.map(|t| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u)))
                    .collect::<BooleanArray>())
            },
        )));
    }
    let (src, dst, addr) = (query.src, query.dst, query.addr);
    if src.is_some() || dst.is_some() || addr.is_some() {
        let sides: Vec<usize> = ["src_endpoint.ip", "dst_endpoint.ip"]
            .iter()
            .filter_map(|c| leaf(meta, c))
            .collect();
        if sides.len() == 2 {
            predicates.push(Box::new(ArrowPredicateFn::new(
                ProjectionMask::leaves(schema, sides),
                move |batch: RecordBatch| {
                    let from = addresses(&batch, "src_endpoint")?;
                    let to = addresses(&batch, "dst_endpoint")?;
                    let within = |net: Option<ipnet::IpNet>, ip: Option<IpAddr>| {
                        net.is_none_or(|n| ip.is_some_and(|ip| n.contains(&ip)))
                    };
                    Ok(from
                        .iter()
                        .zip(&to)
                        .map(|(&s, &d)| {
                            Some(
                                within(src, s)
                                    && within(dst, d)
                                    && addr.is_none_or(|n| {
                                        s.is_some_and(|ip| n.contains(&ip))
                                            || d.is_some_and(|ip| n.contains(&ip))
                                    }),
                            )
                        })
                        .collect::<BooleanArray>())
                },
            )));
        }
    }
    (!predicates.is_empty()).then(|| RowFilter::new(predicates))
}

fn column<'a>(parent: &'a StructArray, name: &str) -> Result<&'a ArrayRef, String> {
    parent
        .column_by_name(name)
        .ok_or_else(|| format!("no column `{name}` (not a Cordon flow file)"))
}

fn nested<'a>(parent: &'a StructArray, name: &str) -> Result<&'a StructArray, String> {
    column(parent, name)?
        .as_struct_opt()
        .ok_or_else(|| format!("`{name}` is not a struct"))
}

fn text(array: &ArrayRef, row: usize) -> Option<&str> {
    let strings = array.as_string_opt::<i32>()?;
    (!strings.is_null(row)).then(|| strings.value(row))
}

fn strings_at(array: &ArrayRef, row: usize) -> Vec<cordon_flow::Name> {
    let Some(lists) = array.as_list_opt::<i32>() else {
        return Vec::new();
    };
    if lists.is_null(row) {
        return Vec::new();
    }
    let values = lists.value(row);
    let Some(values) = values.as_string_opt::<i32>() else {
        return Vec::new();
    };
    values
        .iter()
        .flatten()
        .map(cordon_flow::Name::from)
        .collect()
}

/// The flows of a Network Activity batch that match `query`.
fn flows_of(batch: &RecordBatch, query: &FlowQuery, out: &mut Vec<Flow>) -> Result<(), String> {
    let root = StructArray::from(batch.clone());
    let times = |name: &str| {
        column(&root, name)?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| format!("`{name}` is not a time"))
    };
    let (start, end) = (times("start_time")?, times("end_time")?);
    let (src, dst) = (
        nested(&root, "src_endpoint")?,
        nested(&root, "dst_endpoint")?,
    );
    let ints = |s: &StructArray, name: &str| -> Result<arrow_array::Int32Array, String> {
        column(s, name)?
            .as_primitive_opt::<Int32Type>()
            .cloned()
            .ok_or_else(|| format!("`{name}` is not an int"))
    };
    let (src_port, dst_port) = (ints(src, "port")?, ints(dst, "port")?);
    let (src_ip, dst_ip) = (column(src, "ip")?, column(dst, "ip")?);
    let (src_name, dst_name) = (column(src, "name")?, column(dst, "name")?);
    let dst_host = column(dst, "hostname")?;
    let connection = nested(&root, "connection_info")?;
    let protocol = ints(connection, "protocol_num")?;
    let direction = ints(connection, "direction_id")?;
    let traffic = nested(&root, "traffic")?;
    let counts: Vec<&arrow_array::Int64Array> =
        ["bytes_out", "bytes_in", "packets_out", "packets_in"]
            .into_iter()
            .map(|n| {
                column(traffic, n)?
                    .as_primitive_opt::<Int64Type>()
                    .ok_or_else(|| format!("`traffic.{n}` is not an int"))
            })
            .collect::<Result<_, _>>()?;
    let log_name = column(nested(&root, "metadata")?, "log_name")?;
    let cordon = nested(nested(&root, "unmapped")?, "cordon")?;
    let verdict = column(cordon, "verdict")?;
    let rule = column(cordon, "rule")?;
    let vendor = column(cordon, "vendor")?;
    let (src_groups, dst_groups) = (column(cordon, "src_groups")?, column(cordon, "dst_groups")?);
    // Written since the lake first shipped; older files read without them.
    let observed = cordon.column_by_name("observed");
    let reversed = cordon
        .column_by_name("reversed")
        .and_then(|c| c.as_boolean_opt());
    let attrs = cordon.column_by_name("attrs").and_then(|c| c.as_map_opt());
    let count = |i: usize, row: usize| {
        counts
            .get(i)
            .map_or(0, |c| u64::try_from(c.value(row)).unwrap_or(0))
    };
    for row in 0..batch.num_rows() {
        let ip = |a: &ArrayRef| -> Result<IpAddr, String> {
            let t = text(a, row).unwrap_or_default();
            t.parse()
                .map_err(|_| format!("row {row}: `{t}` is not an address"))
        };
        let source = text(log_name, row).unwrap_or_default();
        let source = FlowSource::from_name(source)
            .ok_or_else(|| format!("row {row}: unknown flow source `{source}`"))?;
        let mut flow = Flow::new(
            source,
            ip(src_ip)?,
            ip(dst_ip)?,
            u8::try_from(protocol.value(row)).unwrap_or(0),
        );
        flow.start_ms = start.value(row);
        flow.end_ms = end.value(row);
        flow.src_port = u16::try_from(src_port.value(row)).unwrap_or(0);
        flow.dst_port = u16::try_from(dst_port.value(row)).unwrap_or(0);
        (flow.bytes_out, flow.bytes_in) = (count(0, row), count(1, row));
        (flow.packets_out, flow.packets_in) = (count(2, row), count(3, row));
        flow.direction = match direction.value(row) {
            1 => Some(Direction::Ingress),
            2 => Some(Direction::Egress),
            _ => None,
        };
        flow.hostname = text(dst_host, row).map(str::to_string);
        flow.observed = match observed.and_then(|o| text(o, row)) {
            Some("accepted") => Some(Observed::Accepted),
            Some("rejected") => Some(Observed::Rejected),
            _ => None,
        };
        if reversed.is_some_and(|r| r.value(row)) {
            flow.orientation = Orientation::Reversed;
        }
        if let Some(map) = attrs
            && !map.is_null(row)
        {
            let entries = map.value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            if let (Some(k), Some(v)) = (keys.as_string_opt::<i32>(), values.as_string_opt::<i32>())
            {
                let mut a = Attrs::default();
                for i in 0..k.len() {
                    a.push(k.value(i), if v.is_null(i) { "" } else { v.value(i) });
                }
                flow.attrs = a;
            }
        }
        if let Some(v) = text(verdict, row) {
            let verdict = v
                .parse()
                .map_err(|_| format!("row {row}: unknown verdict `{v}`"))?;
            flow.enrichment = Some(Arc::new(Enrichment {
                src_workload: text(src_name, row).map(cordon_flow::Name::from),
                dst_workload: text(dst_name, row).map(cordon_flow::Name::from),
                src_groups: strings_at(src_groups, row).into(),
                dst_groups: strings_at(dst_groups, row).into(),
                vendor: text(vendor, row).map(cordon_flow::Name::from),
                rule: text(rule, row).map(cordon_flow::Name::from),
                ..Enrichment::with_verdict(verdict)
            }));
        }
        if query.matches(&flow) {
            out.push(flow);
        }
    }
    Ok(())
}

/// Bytes fetched per ranged GET at least (a footer, a bloom filter).
const MIN_FETCH: u64 = 64 * 1024;
/// Bytes fetched per ranged GET at most.
const MAX_FETCH: u64 = 32 * 1024 * 1024;

/// What a [`Ranged`] reader shares between its clones.
struct RangedInner {
    target: S3Target,
    key: String,
    size: u64,
    runtime: Arc<tokio::runtime::Runtime>,
    /// Fetched pieces: (offset, bytes).
    cache: Mutex<Vec<(u64, Bytes)>>,
    fetched: AtomicU64,
}

/// An S3 object read by ranged GETs, for the Parquet reader: the footer
/// first, then the spans of the row groups chosen, then anything else
/// asked for (bloom filters) as it is asked.
#[derive(Clone)]
struct Ranged {
    inner: Arc<RangedInner>,
}

impl Ranged {
    fn new(
        target: S3Target,
        file: &LakeFile,
        runtime: Arc<tokio::runtime::Runtime>,
    ) -> Result<Ranged, LakeError> {
        let ranged = Ranged {
            inner: Arc::new(RangedInner {
                target,
                key: file.path.clone(),
                size: file.bytes,
                runtime,
                cache: Mutex::new(Vec::new()),
                fetched: AtomicU64::new(0),
            }),
        };
        // The footer and the metadata before it, in one GET.
        let tail = file.bytes.min(MIN_FETCH);
        ranged.fetch(file.bytes - tail, tail)?;
        Ok(ranged)
    }

    fn fetch(&self, start: u64, length: u64) -> Result<Bytes, LakeError> {
        let i = &self.inner;
        let mut pieces = Vec::new();
        let mut at = start;
        while at < start + length {
            let n = (start + length - at).min(MAX_FETCH);
            pieces.push(i.runtime.block_on(i.target.get_range(&i.key, at, n))?);
            at += n;
        }
        let bytes = if pieces.len() == 1 {
            pieces.pop().unwrap_or_default()
        } else {
            Bytes::from(pieces.concat())
        };
        i.fetched.fetch_add(length, Ordering::Relaxed);
        if let Ok(mut cache) = i.cache.lock() {
            cache.push((start, bytes.clone()));
        }
        Ok(bytes)
    }

    /// Fetch `spans` (start, end), forgetting what earlier row groups
    /// fetched.
    fn prefetch_spans(&self, spans: &[(u64, u64)]) -> Result<(), LakeError> {
        if let Ok(mut cache) = self.inner.cache.lock() {
            // The footer stays; what earlier row groups fetched goes.
            cache.truncate(1);
        }
        for &(start, end) in spans {
            self.fetch(start, end - start)?;
        }
        Ok(())
    }

    /// Fetch what the chosen row groups span, neighbours in one GET.
    fn prefetch(&self, meta: &ParquetMetaData, chosen: &[usize]) -> Result<(), LakeError> {
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for &rg in chosen {
            let columns = meta.row_group(rg).columns();
            let start = columns.iter().map(|c| c.byte_range().0).min();
            let end = columns
                .iter()
                .map(|c| c.byte_range().0 + c.byte_range().1)
                .max();
            let (Some(start), Some(end)) = (start, end) else {
                continue;
            };
            match spans.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => spans.push((start, end)),
            }
        }
        self.prefetch_spans(&spans)
    }

    fn cached(&self, start: u64, length: u64) -> Option<Bytes> {
        let cache = self.inner.cache.lock().ok()?;
        cache.iter().find_map(|(at, bytes)| {
            let from = start.checked_sub(*at)?;
            let to = from + length;
            (to <= bytes.len() as u64).then(|| {
                bytes.slice(usize::try_from(from).unwrap_or(0)..usize::try_from(to).unwrap_or(0))
            })
        })
    }
}

impl Length for Ranged {
    fn len(&self) -> u64 {
        self.inner.size
    }
}

/// A reader over a [`Ranged`] object from an offset, fetching as it goes.
struct RangedRead {
    ranged: Ranged,
    at: u64,
}

impl Read for RangedRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.ranged.inner.size.saturating_sub(self.at);
        let n = (buf.len() as u64).min(left);
        if n == 0 {
            return Ok(0);
        }
        let bytes = self
            .ranged
            .get_bytes(self.at, usize::try_from(n).unwrap_or(0))
            .map_err(std::io::Error::other)?;
        let got = bytes.len();
        buf.get_mut(..got)
            .ok_or_else(|| std::io::Error::other("short buffer"))?
            .copy_from_slice(&bytes);
        self.at += got as u64;
        Ok(got)
    }
}

impl ChunkReader for Ranged {
    type T = RangedRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<RangedRead> {
        Ok(RangedRead {
            ranged: self.clone(),
            at: start,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let length = length as u64;
        if start + length > self.inner.size {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "{} bytes at {start} of a {}-byte object",
                length, self.inner.size
            )));
        }
        if let Some(bytes) = self.cached(start, length) {
            return Ok(bytes);
        }
        let want = length.max(MIN_FETCH).min(self.inner.size - start);
        let bytes = self
            .fetch(start, want)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        Ok(bytes.slice(..usize::try_from(length).unwrap_or(0)))
    }
}
