//! Zeek `conn.log`, as TSV with `#fields`/`#types` headers and as JSON lines.
//!
//! JSON comes in the shapes Zeek and log shippers write it: dotted keys
//! (`id.orig_h`, Zeek's own), keys flattened with underscores (`id_orig_h`,
//! as Elastic and Splunk pipelines and the OTRF datasets have them, with
//! `@stream`/`@system` beside them), and nested objects (`"id": {"orig_h":
//! ...}`). Records of other Zeek logs in the same stream (`@stream` other
//! than `conn`) are not flows.
//!
//! Bytes are IP-level (`orig_ip_bytes`/`resp_ip_bytes`) when present, like
//! cloud flow logs; otherwise the payload counts (`orig_bytes`/`resp_bytes`).
//! Kept as attributes: `uid` (to pivot to the other Zeek logs), `service`,
//! `conn_state` and `history`.
//! `-` is unset and `(empty)` an empty set; columns after the known ones
//! (labelled datasets add some) are ignored. Connections Zeek saw refused
//! (`REJ`) are rejected flows.

use std::collections::HashMap;

use serde_json::Value;

use crate::flow::{Flow, FlowSource, Observed, SNAPSHOT};
use crate::read::{Skip, SkipReason};
use crate::sources::{LineDecoder, clip, parse_ip, parse_num, protocol_number};
use crate::time::parse_rfc3339;

/// The default `conn.log` columns, for files without a `#fields` line.
const DEFAULT_FIELDS: &str = "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes resp_bytes conn_state local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents";

/// Field values of one record, by position in [`USED`].
trait Record {
    fn get(&self, field: usize) -> Option<&str>;
}

/// Seconds (possibly fractional) to milliseconds.
fn seconds_ms(field: &str, v: &str) -> Result<i64, Skip> {
    if let Some(ms) = decimal_seconds_ms(v) {
        return Ok(ms);
    }
    let s: f64 = parse_num(field, v)?;
    if !s.is_finite() || !(0.0..=1e13).contains(&s) {
        return Err(Skip::malformed(format!(
            "`{field}` is out of range: `{}`",
            clip(v)
        )));
    }
    Ok((s * 1000.0).round() as i64)
}

/// `digits[.digits]` seconds (how Zeek writes times and durations) to
/// milliseconds, rounded half up like the float path; `None` for anything
/// else (signs, exponents, spaces, more than 13 integer digits), which the
/// float path then reads or refuses.
fn decimal_seconds_ms(v: &str) -> Option<i64> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() || int.len() > 13 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ms: i64 = 0;
    for b in int.bytes() {
        ms = ms * 10 + i64::from(b - b'0');
    }
    let f = frac.as_bytes();
    let digit = |i: usize| f.get(i).map_or(0, |b| i64::from(b - b'0'));
    ms = ms * 1000 + digit(0) * 100 + digit(1) * 10 + digit(2);
    if digit(3) >= 5 {
        ms += 1;
    }
    Some(ms)
}

fn build(r: &dyn Record) -> Result<Flow, Skip> {
    let need = |field: usize| {
        r.get(field).ok_or_else(|| {
            Skip::malformed(format!("`{}` is missing", USED.get(field).unwrap_or(&"?")))
        })
    };
    let src = parse_ip("id.orig_h", need(F_ID_ORIG_H)?)?;
    let dst = parse_ip("id.resp_h", need(F_ID_RESP_H)?)?;
    let proto_name = need(F_PROTO)?;
    let protocol = protocol_number(proto_name)
        .ok_or_else(|| Skip::malformed(format!("unknown proto `{}`", clip(proto_name))))?;
    let mut flow = Flow::new(FlowSource::Zeek, src, dst, protocol);
    flow.attrs.reserve(48);
    let ts = need(F_TS)?;
    flow.start_ms = match decimal_seconds_ms(ts).or_else(|| parse_rfc3339(ts)) {
        Some(ms) => ms,
        None => seconds_ms("ts", ts)?,
    };
    flow.end_ms = flow.start_ms
        + r.get(F_DURATION)
            .map(|d| seconds_ms("duration", d))
            .transpose()?
            .unwrap_or(0);
    let port = |field: usize| {
        r.get(field)
            .map(|p| parse_num::<u16>(USED.get(field).unwrap_or(&"port"), p))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    flow.src_port = port(F_ID_ORIG_P)?;
    flow.dst_port = port(F_ID_RESP_P)?;
    let num = |field: usize| {
        r.get(field)
            .map(|v| parse_num::<u64>(USED.get(field).unwrap_or(&"count"), v))
            .transpose()
    };
    flow.bytes_out = match num(F_ORIG_IP_BYTES)? {
        Some(b) => b,
        None => num(F_ORIG_BYTES)?.unwrap_or(0),
    };
    flow.bytes_in = match num(F_RESP_IP_BYTES)? {
        Some(b) => b,
        None => num(F_RESP_BYTES)?.unwrap_or(0),
    };
    flow.packets_out = num(F_ORIG_PKTS)?.unwrap_or(0);
    flow.packets_in = num(F_RESP_PKTS)?.unwrap_or(0);
    if let Some(state) = r.get(F_CONN_STATE) {
        flow.observed = Some(if state == "REJ" {
            Observed::Rejected
        } else {
            Observed::Accepted
        });
        flow.attr("conn_state", state);
    }
    for (field, key) in [
        (F_UID, "uid"),
        (F_SERVICE, "service"),
        (F_HISTORY, "history"),
    ] {
        if let Some(v) = r.get(field) {
            flow.attr(key, v);
        }
    }
    Ok(flow)
}

/// The columns `build` reads, in a fixed order, so a TSV record finds each
/// by position instead of by name.
const USED: [&str; 17] = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
];

const F_TS: usize = 0;
const F_UID: usize = 1;
const F_ID_ORIG_H: usize = 2;
const F_ID_ORIG_P: usize = 3;
const F_ID_RESP_H: usize = 4;
const F_ID_RESP_P: usize = 5;
const F_PROTO: usize = 6;
const F_SERVICE: usize = 7;
const F_DURATION: usize = 8;
const F_ORIG_BYTES: usize = 9;
const F_RESP_BYTES: usize = 10;
const F_CONN_STATE: usize = 11;
const F_HISTORY: usize = 12;
const F_ORIG_PKTS: usize = 13;
const F_ORIG_IP_BYTES: usize = 14;
const F_RESP_PKTS: usize = 15;
const F_RESP_IP_BYTES: usize = 16;

/// TSV decoder: the separator and the columns come from the headers.
#[derive(Debug)]
pub struct ZeekTsvDecoder {
    separator: String,
    /// For each column of the header, its place in `USED`, or `UNUSED`.
    slots: Vec<u8>,
    width: usize,
    unset: String,
    empty: String,
    /// The log's `#path` when it is not `conn` or `open_conn` (`ssl`,
    /// `dns`, ...): its records are not connections.
    other_log: Option<String>,
    /// The log is `open_conn`: snapshots of connections still open.
    snapshot: bool,
}

/// A column `build` does not read.
const UNUSED: u8 = u8::MAX;

impl Default for ZeekTsvDecoder {
    fn default() -> Self {
        let mut d = ZeekTsvDecoder {
            separator: "\t".into(),
            slots: Vec::new(),
            width: 0,
            unset: "-".into(),
            empty: "(empty)".into(),
            other_log: None,
            snapshot: false,
        };
        d.set_fields(DEFAULT_FIELDS.split(' '));
        d
    }
}

impl ZeekTsvDecoder {
    fn set_fields<'a>(&mut self, names: impl Iterator<Item = &'a str>) {
        self.slots = names
            .map(|n| {
                USED.iter()
                    .position(|u| *u == n)
                    .map_or(UNUSED, |i| i as u8)
            })
            .collect();
        // A name given twice: the first column holds it, as before.
        for i in 0..self.slots.len() {
            let slot = self.slots[i];
            if slot != UNUSED && self.slots[..i].contains(&slot) {
                self.slots[i] = UNUSED;
            }
        }
        self.width = self.slots.len();
    }

    /// Put the value `v` of `column` in its place, if `build` reads it.
    fn keep<'a>(&self, record: &mut TsvRecord<'a>, column: usize, v: &'a str) {
        if let Some(&slot) = self.slots.get(column)
            && slot != UNUSED
            && !self.is_blank(v)
            && let Some(place) = record.values.get_mut(usize::from(slot))
        {
            *place = v;
        }
    }

    /// Whether `v` is Zeek's mark for an unset field or an empty set.
    fn is_blank(&self, v: &str) -> bool {
        // The first byte rules out nearly every value without a compare.
        let first = v.as_bytes().first();
        first.is_none()
            || (first == self.unset.as_bytes().first() && v == self.unset)
            || (first == self.empty.as_bytes().first() && v == self.empty)
    }
}

/// The values of one TSV record that `build` reads, by place in `USED`
/// (`""` where absent or blank).
struct TsvRecord<'a> {
    values: [&'a str; USED.len()],
}

impl Record for TsvRecord<'_> {
    fn get(&self, field: usize) -> Option<&str> {
        self.values.get(field).copied().filter(|v| !v.is_empty())
    }
}

/// Decode Zeek's `\x09`-style escapes in the `#separator` header.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\\x") {
        out.push_str(rest.get(..i).unwrap_or(""));
        let hex = rest.get(i + 2..i + 4).unwrap_or("");
        match u8::from_str_radix(hex, 16) {
            Ok(b) if hex.len() == 2 => {
                out.push(char::from(b));
                rest = rest.get(i + 4..).unwrap_or("");
            }
            _ => {
                out.push_str("\\x");
                rest = rest.get(i + 2..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out
}

impl LineDecoder for ZeekTsvDecoder {
    fn line(&mut self, line: &str, out: &mut Vec<Flow>) -> Result<(), Skip> {
        if let Some(header) = line.strip_prefix('#') {
            if let Some(sep) = header.strip_prefix("separator ") {
                let sep = unescape(sep.trim());
                if sep.is_empty() {
                    return Err(Skip::malformed("empty #separator"));
                }
                self.separator = sep;
            } else {
                let mut parts = header.split(self.separator.as_str());
                match parts.next() {
                    Some("fields") => {
                        let names: Vec<&str> = parts.collect();
                        self.set_fields(names.into_iter());
                    }
                    Some("unset_field") => self.unset = parts.next().unwrap_or("-").to_string(),
                    Some("empty_field") => {
                        self.empty = parts.next().unwrap_or("(empty)").to_string()
                    }
                    // Snapshots of open connections (`open_conn`) are read
                    // (marked: see [`SNAPSHOT`]); other logs are not
                    // connections.
                    Some("path") => {
                        let path = parts.next();
                        self.snapshot = path == Some("open_conn");
                        self.other_log = path
                            .filter(|p| *p != "conn" && *p != "open_conn")
                            .map(|p| clip(p).to_string());
                    }
                    _ => {}
                }
            }
            return Err(Skip::new(SkipReason::NotAFlow, "header line"));
        }
        if line.trim().is_empty() {
            return Err(Skip::new(SkipReason::NotAFlow, "empty line"));
        }
        if let Some(log) = &self.other_log {
            return Err(Skip::new(
                SkipReason::NotAFlow,
                format!("a record of Zeek's `{log}` log, not conn"),
            ));
        }
        let mut record = TsvRecord {
            values: [""; USED.len()],
        };
        let mut column = 0;
        // A one-byte separator (the tab, nearly always) is found by one
        // vectorised scan of the whole line; a string pattern costs a
        // two-way search per field.
        match self.separator.as_bytes() {
            [b] if b.is_ascii() => {
                let mut start = 0;
                // Fields are a few bytes long: a plain scan beats a
                // vectorised search restarted for each.
                for (at, c) in line.bytes().enumerate() {
                    if c != *b {
                        continue;
                    }
                    // The separator is ASCII: both ends are char boundaries.
                    self.keep(&mut record, column, line.get(start..at).unwrap_or(""));
                    column += 1;
                    start = at + 1;
                }
                self.keep(&mut record, column, line.get(start..).unwrap_or(""));
            }
            _ => {
                for v in line.split(self.separator.as_str()) {
                    self.keep(&mut record, column, v);
                    column += 1;
                }
                column -= 1;
            }
        }
        let columns = column + 1;
        if columns < self.width.min(7) {
            return Err(Skip::malformed(format!(
                "{columns} columns, the header names {}",
                self.width
            )));
        }
        let mut flow = build(&record)?;
        if self.snapshot {
            flow.attr(SNAPSHOT.0, SNAPSHOT.1);
        }
        out.push(flow);
        Ok(())
    }
}

/// JSON-lines decoder.
#[derive(Debug, Default)]
pub struct ZeekJsonDecoder;

struct JsonRecord {
    values: HashMap<String, String>,
}

impl Record for JsonRecord {
    fn get(&self, field: usize) -> Option<&str> {
        let name = *USED.get(field)?;
        let value = match self.values.get(name) {
            Some(v) => Some(v),
            // Shippers flatten `id.orig_h` to `id_orig_h`.
            None if name.contains('.') => self.values.get(&name.replace('.', "_")),
            None => None,
        };
        value.map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Scalar values of `map` by key, nested objects' values by dotted key
/// (`id` → `orig_h` is `id.orig_h`), at most two levels deep.
fn flatten(
    prefix: &str,
    map: serde_json::Map<String, Value>,
    depth: u8,
    out: &mut HashMap<String, String>,
) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::String(s) => {
                out.insert(key, s);
            }
            Value::Number(n) => {
                out.insert(key, n.to_string());
            }
            Value::Bool(b) => {
                out.insert(key, b.to_string());
            }
            Value::Object(inner) if depth < 2 => flatten(&key, inner, depth + 1, out),
            _ => {}
        }
    }
}

impl LineDecoder for ZeekJsonDecoder {
    fn line(&mut self, line: &str, out: &mut Vec<Flow>) -> Result<(), Skip> {
        if line.trim().is_empty() {
            return Err(Skip::new(SkipReason::NotAFlow, "empty line"));
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| Skip::malformed(format!("invalid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(Skip::malformed("not a JSON object"));
        };
        // A stream of several Zeek logs (shippers tag each record with the
        // log it came from): only `conn` records are connections.
        let stream = map
            .get("@stream")
            .or_else(|| map.get("_path"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(stream) = &stream
            && stream != "conn"
            && stream != "open_conn"
        {
            return Err(Skip::new(
                SkipReason::NotAFlow,
                format!("a `{}` record, not conn", clip(stream)),
            ));
        }
        let mut values = HashMap::new();
        flatten("", map, 0, &mut values);
        let mut flow = build(&JsonRecord { values })?;
        if stream.as_deref() == Some("open_conn") {
            flow.attr(SNAPSHOT.0, SNAPSHOT.1);
        }
        out.push(flow);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
