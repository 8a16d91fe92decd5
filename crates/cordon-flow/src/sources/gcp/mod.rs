//! GCP VPC Flow Logs as exported from Cloud Logging: `jsonPayload` with
//! `connection`, counters as strings (int64 in JSON), RFC 3339 times, the
//! `reporter`, and instance/VPC objects.

use serde_json::Value;

use crate::flow::{Direction, Flow, FlowSource};
use crate::read::{Location, Report, Skip, SkipReason};
use crate::sources::{DocumentDecoder, LineDecoder, clip, parse_ip};
use crate::time::parse_rfc3339;

/// Decoder for both JSON lines and whole documents.
#[derive(Debug, Default)]
pub struct GcpDecoder;

/// An int64 that Cloud Logging writes as a string (or a plain number).
fn int(v: Option<&Value>, field: &str) -> Result<u64, Skip> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| Skip::malformed(format!("`{field}` is not a number: `{}`", clip(s)))),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| Skip::malformed(format!("`{field}` is not a non-negative integer"))),
        Some(_) => Err(Skip::malformed(format!("`{field}` is not a number"))),
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Decode one log entry (a JSON value).
fn entry(value: &Value) -> Result<Flow, Skip> {
    let payload = value
        .get("jsonPayload")
        .or_else(|| value.get("connection").map(|_| value))
        .ok_or_else(|| Skip::new(SkipReason::NotAFlow, "no `jsonPayload`"))?;
    let conn = payload
        .get("connection")
        .ok_or_else(|| Skip::malformed("`jsonPayload` has no `connection`"))?;
    let src = parse_ip(
        "connection.src_ip",
        text(conn, &["src_ip"]).unwrap_or_default(),
    )?;
    let dst = parse_ip(
        "connection.dest_ip",
        text(conn, &["dest_ip"]).unwrap_or_default(),
    )?;
    let port = |k: &str| -> Result<u16, Skip> {
        let n = int(conn.get(k), &format!("connection.{k}"))?;
        u16::try_from(n)
            .map_err(|_| Skip::malformed(format!("`connection.{k}` is out of range: {n}")))
    };
    let protocol = u8::try_from(int(conn.get("protocol"), "connection.protocol")?)
        .map_err(|_| Skip::malformed("`connection.protocol` is out of range"))?;
    let mut flow = Flow::new(FlowSource::Gcp, src, dst, protocol);
    flow.src_port = port("src_port")?;
    flow.dst_port = port("dest_port")?;
    flow.bytes_out = int(payload.get("bytes_sent"), "bytes_sent")?;
    flow.packets_out = int(payload.get("packets_sent"), "packets_sent")?;
    let time = |k: &str| -> Result<Option<i64>, Skip> {
        match text(payload, &[k]) {
            None => Ok(None),
            Some(t) => parse_rfc3339(t).map(Some).ok_or_else(|| {
                Skip::malformed(format!("`{k}` is not an RFC 3339 time: `{}`", clip(t)))
            }),
        }
    };
    flow.start_ms = time("start_time")?
        .or_else(|| text(value, &["timestamp"]).and_then(parse_rfc3339))
        .unwrap_or(0);
    flow.end_ms = time("end_time")?.unwrap_or(flow.start_ms);
    if let Some(r) = text(payload, &["reporter"]) {
        flow.direction = match r {
            "SRC" => Some(Direction::Egress),
            "DEST" => Some(Direction::Ingress),
            _ => None,
        };
        flow.attr("reporter", r);
    }
    for (side, key) in [("src", "src_instance"), ("dst", "dest_instance")] {
        if let Some(vm) = text(payload, &[key, "vm_name"]) {
            flow.attr(&format!("{side}_vm"), vm);
        }
        if let Some(p) = text(payload, &[key, "project_id"]) {
            flow.attr(&format!("{side}_project"), p);
        }
        if let Some(z) = text(payload, &[key, "zone"]) {
            flow.attr(&format!("{side}_zone"), z);
        }
    }
    for (side, key) in [("src", "src_vpc"), ("dst", "dest_vpc")] {
        if let Some(v) = text(payload, &[key, "vpc_name"]) {
            flow.attr(&format!("{side}_vpc"), v);
        }
        if let Some(s) = text(payload, &[key, "subnetwork_name"]) {
            flow.attr(&format!("{side}_subnet"), s);
        }
    }
    if let Some(rtt) = text(payload, &["rtt_msec"]) {
        flow.attr("rtt_msec", rtt);
    }
    Ok(flow)
}

impl LineDecoder for GcpDecoder {
    fn line(&mut self, line: &str, out: &mut Vec<Flow>) -> Result<(), Skip> {
        if line.trim().is_empty() {
            return Err(Skip::new(SkipReason::NotAFlow, "empty line"));
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| Skip::malformed(format!("invalid JSON: {e}")))?;
        out.push(entry(&value)?);
        Ok(())
    }
}

impl DocumentDecoder for GcpDecoder {
    fn document(
        &mut self,
        text: &str,
        at: &Location,
        report: &mut Report,
        emit: &mut dyn FnMut(&Location, Vec<Flow>),
    ) {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let mut index = 0u64;
        loop {
            let start = stream.byte_offset() as u64;
            let value = match stream.next() {
                None => break,
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    report.records += 1;
                    let here = Location {
                        offset: start,
                        within: Some(format!("line {} column {}", e.line(), e.column())),
                        ..at.clone()
                    };
                    report.skip(&here, Skip::malformed(format!("invalid JSON: {e}")));
                    // Nothing after a syntax error can be trusted to align.
                    break;
                }
            };
            let items: Vec<Value> = match value {
                Value::Array(items) => items,
                other => vec![other],
            };
            for item in items {
                index += 1;
                report.records += 1;
                let here = Location {
                    offset: start,
                    within: Some(format!("entry {index}")),
                    ..at.clone()
                };
                match entry(&item) {
                    Ok(flow) => emit(&here, vec![flow]),
                    Err(skip) => report.skip(&here, skip),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
