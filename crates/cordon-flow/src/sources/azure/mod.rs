//! Azure flow logs: NSG flow logs version 1 and 2 (`properties.flows`) and
//! VNet flow logs version 4 (`flowRecords.flows[].flowGroups`).
//!
//! Each tuple becomes one flow. Tuple state `B` (begin) carries no counts;
//! `C` (continuing) and `E` (end) carry counts since the last update, so the
//! bytes of a connection are the sum over its tuples; `D` (v4) is a denied
//! flow. The state is kept as attribute `flow_state`.
//!
//! Files come as storage writes them (one `{"records": [...]}` document) or
//! as Event Hubs, SIEM exports and shippers deliver them: one record per
//! line, or several documents one after another. Each JSON value in the
//! input is read as a document or as a single record.

use serde_json::Value;

use crate::flow::{Direction, Flow, FlowSource, Observed};
use crate::read::{Location, Report, Skip, SkipReason};
use crate::sources::{DocumentDecoder, clip, parse_ip, parse_num, protocol_number};

/// Decoder for NSG and VNet flow log documents.
#[derive(Debug, Default)]
pub struct AzureDecoder;

/// Timestamps above this are milliseconds (the documented v4 sample), below
/// it seconds (other pages).
const MS_THRESHOLD: i64 = 100_000_000_000;

fn count(fields: &[&str], i: usize, name: &str) -> Result<u64, Skip> {
    match fields.get(i).map(|s| s.trim()) {
        None | Some("") => Ok(0),
        Some(v) => parse_num(name, v),
    }
}

/// Decode one tuple. `version` 4 is the VNet layout; 1 and 2 are NSG.
fn tuple(text: &str, version: u64, rule: Option<&str>) -> Result<Flow, Skip> {
    let f: Vec<&str> = text.split(',').collect();
    let min = if version >= 4 { 9 } else { 8 };
    if f.len() < min {
        return Err(Skip::malformed(format!(
            "tuple has {} fields, expected at least {min}: `{}`",
            f.len(),
            clip(text)
        )));
    }
    let get = |i: usize| f.get(i).copied().unwrap_or("");
    let ts: i64 = parse_num("timestamp", get(0))?;
    let ms = if ts > MS_THRESHOLD {
        ts
    } else {
        ts.saturating_mul(1000)
    };
    let src = parse_ip("source address", get(1))?;
    let dst = parse_ip("destination address", get(2))?;
    let protocol = if version >= 4 {
        parse_num::<u8>("protocol", get(5))?
    } else {
        match get(5) {
            "T" => 6,
            "U" => 17,
            other => protocol_number(other)
                .ok_or_else(|| Skip::malformed(format!("unknown protocol `{}`", clip(other))))?,
        }
    };
    let mut flow = Flow::new(FlowSource::Azure, src, dst, protocol);
    flow.start_ms = ms;
    flow.end_ms = ms;
    flow.src_port = parse_num("source port", get(3))?;
    flow.dst_port = parse_num("destination port", get(4))?;
    flow.direction = match get(6) {
        "I" => Some(Direction::Ingress),
        "O" => Some(Direction::Egress),
        other => {
            return Err(Skip::malformed(format!(
                "unknown direction `{}`",
                clip(other)
            )));
        }
    };
    if let Some(rule) = rule {
        flow.attr("rule", rule);
    }
    if version >= 4 {
        let state = get(7);
        flow.observed = Some(if state == "D" {
            Observed::Rejected
        } else {
            Observed::Accepted
        });
        flow.attr("flow_state", state);
        if !get(8).is_empty() {
            flow.attr("encryption", get(8));
        }
        flow.packets_out = count(&f, 9, "packets sent")?;
        flow.bytes_out = count(&f, 10, "bytes sent")?;
        flow.packets_in = count(&f, 11, "packets received")?;
        flow.bytes_in = count(&f, 12, "bytes received")?;
    } else {
        flow.observed = match get(7) {
            "A" => Some(Observed::Accepted),
            "D" => Some(Observed::Rejected),
            other => {
                return Err(Skip::malformed(format!(
                    "unknown decision `{}`",
                    clip(other)
                )));
            }
        };
        if f.len() > 8 {
            flow.attr("flow_state", get(8));
            flow.packets_out = count(&f, 9, "packets source to destination")?;
            flow.bytes_out = count(&f, 10, "bytes source to destination")?;
            flow.packets_in = count(&f, 11, "packets destination to source")?;
            flow.bytes_in = count(&f, 12, "bytes destination to source")?;
        }
    }
    Ok(flow)
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl DocumentDecoder for AzureDecoder {
    fn document(
        &mut self,
        text: &str,
        at: &Location,
        report: &mut Report,
        emit: &mut dyn FnMut(&Location, Vec<Flow>),
    ) {
        let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let mut n_record = 0usize;
        loop {
            let start = values.byte_offset();
            let doc = match values.next() {
                None => break,
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    report.records += 1;
                    let here = Location {
                        offset: start as u64,
                        within: Some(format!("line {} column {}", e.line(), e.column())),
                        ..at.clone()
                    };
                    report.skip(&here, Skip::malformed(format!("invalid JSON: {e}")));
                    // After a syntax error nothing that follows aligns.
                    return;
                }
            };
            let here = Location {
                offset: start as u64,
                ..at.clone()
            };
            let records: &[Value] = match doc.get("records").and_then(Value::as_array) {
                Some(r) => r,
                // One record on its own (a line of an export).
                None if doc.get("properties").is_some() || doc.get("flowRecords").is_some() => {
                    std::slice::from_ref(&doc)
                }
                None => {
                    report.records += 1;
                    report.skip(
                        &here,
                        Skip::new(
                            SkipReason::NotAFlow,
                            "neither a `records` document nor a flow log record",
                        ),
                    );
                    continue;
                }
            };
            self.records(records, &mut n_record, &here, report, emit);
        }
    }
}

impl AzureDecoder {
    /// The tuples of `records` as flows; `n_record` counts records across
    /// the whole input, for locations.
    fn records(
        &mut self,
        records: &[Value],
        n_record: &mut usize,
        at: &Location,
        report: &mut Report,
        emit: &mut dyn FnMut(&Location, Vec<Flow>),
    ) {
        for record in records {
            *n_record += 1;
            let ri = *n_record - 1;
            let mut groups: Vec<(u64, Option<&str>, Vec<&str>)> = Vec::new();
            if let Some(flows) = record
                .get("properties")
                .and_then(|p| p.get("flows"))
                .and_then(Value::as_array)
            {
                let version = record
                    .get("properties")
                    .and_then(|p| p.get("Version"))
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                for rule_flows in flows {
                    let rule = rule_flows.get("rule").and_then(Value::as_str);
                    for f in rule_flows
                        .get("flows")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                    {
                        groups.push((version, rule, strings(f.get("flowTuples"))));
                    }
                }
            } else if let Some(flows) = record
                .get("flowRecords")
                .and_then(|p| p.get("flows"))
                .and_then(Value::as_array)
            {
                let version = record
                    .get("flowLogVersion")
                    .and_then(Value::as_u64)
                    .unwrap_or(4);
                for acl in flows {
                    for g in acl
                        .get("flowGroups")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                    {
                        groups.push((
                            version,
                            g.get("rule").and_then(Value::as_str),
                            strings(g.get("flowTuples")),
                        ));
                    }
                }
            } else {
                report.records += 1;
                let here = Location {
                    within: Some(format!("record {}", ri + 1)),
                    ..at.clone()
                };
                report.skip(
                    &here,
                    Skip::new(SkipReason::NotAFlow, "record has no flows"),
                );
                continue;
            }
            let mut n = 0;
            for (version, rule, tuples) in groups {
                for t in tuples {
                    n += 1;
                    report.records += 1;
                    let here = Location {
                        within: Some(format!("record {} tuple {n}", ri + 1)),
                        ..at.clone()
                    };
                    match tuple(t, version, rule) {
                        Ok(flow) => emit(&here, vec![flow]),
                        Err(skip) => report.skip(&here, skip),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
