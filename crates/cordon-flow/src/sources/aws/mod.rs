//! AWS VPC Flow Logs: the default version 2 format and custom field orders
//! (versions 3 to 8) named by a header line, as S3 delivery writes them.

use crate::flow::{Direction, Flow, FlowSource, Observed};
use crate::read::{Skip, SkipReason};
use crate::sources::{LineDecoder, clip, parse_ip, parse_num};

/// The default (version 2) field order.
pub const DEFAULT_FIELDS: [&str; 14] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// Fields kept as attributes when present.
const KEPT: &[&str] = &[
    "account-id",
    "interface-id",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "traffic-path",
    "ecs-cluster-name",
    "ecs-service-name",
    "ecs-task-id",
    "reject-reason",
];

/// Decoder state: the field order in force.
#[derive(Debug)]
pub struct AwsDecoder {
    fields: Vec<String>,
    index: Index,
    /// Fields kept as attributes: their position and attribute name.
    kept: Vec<(usize, String)>,
}

#[derive(Debug, Default)]
struct Index {
    srcaddr: Option<usize>,
    dstaddr: Option<usize>,
    srcport: Option<usize>,
    dstport: Option<usize>,
    protocol: Option<usize>,
    packets: Option<usize>,
    bytes: Option<usize>,
    start: Option<usize>,
    end: Option<usize>,
    action: Option<usize>,
    log_status: Option<usize>,
    flow_direction: Option<usize>,
}

impl Default for AwsDecoder {
    fn default() -> Self {
        let mut d = AwsDecoder {
            fields: Vec::new(),
            index: Index::default(),
            kept: Vec::new(),
        };
        d.set_fields(DEFAULT_FIELDS.iter().map(|s| s.to_string()).collect());
        d
    }
}

impl AwsDecoder {
    fn set_fields(&mut self, fields: Vec<String>) {
        let pos = |name: &str| fields.iter().position(|f| f == name);
        self.index = Index {
            srcaddr: pos("srcaddr"),
            dstaddr: pos("dstaddr"),
            srcport: pos("srcport"),
            dstport: pos("dstport"),
            protocol: pos("protocol"),
            packets: pos("packets"),
            bytes: pos("bytes"),
            start: pos("start"),
            end: pos("end"),
            action: pos("action"),
            log_status: pos("log-status"),
            flow_direction: pos("flow-direction"),
        };
        self.kept = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| KEPT.contains(&f.as_str()))
            .map(|(i, f)| (i, f.replace('-', "_")))
            .collect();
        self.fields = fields;
    }
}

/// The most fields a record may have (version 8 has 29).
const MAX_FIELDS: usize = 64;

fn field<'a>(tokens: &[&'a str], i: Option<usize>) -> Option<&'a str> {
    i.and_then(|i| tokens.get(i)).copied().filter(|v| *v != "-")
}

impl LineDecoder for AwsDecoder {
    fn line(&mut self, line: &str, out: &mut Vec<Flow>) -> Result<(), Skip> {
        // No allocation per line: the fields go into a fixed array. AWS
        // separates fields with single spaces, found with memchr; lines with
        // other whitespace take the general split.
        let mut slots = [""; MAX_FIELDS];
        let bytes = line.as_bytes();
        let mut n = 0;
        if memchr::memchr3(b'\t', b'\r', b'\x0c', bytes).is_none() {
            let mut start = 0;
            for space in memchr::memchr_iter(b' ', bytes) {
                if space > start {
                    put(&mut slots, &mut n, line.get(start..space).unwrap_or(""))?;
                }
                start = space + 1;
            }
            if start < bytes.len() {
                put(&mut slots, &mut n, line.get(start..).unwrap_or(""))?;
            }
        } else {
            for t in line.split_ascii_whitespace() {
                put(&mut slots, &mut n, t)?;
            }
        }
        let tokens = slots.get(..n).unwrap_or(&[]);
        if tokens.is_empty() {
            return Err(Skip::new(SkipReason::NotAFlow, "empty line"));
        }
        // A header names fields; a record holds addresses (with `.` or `:`)
        // unless it is NODATA/SKIPDATA, so most lines skip the name check.
        let maybe_header = memchr::memchr2(b'.', b':', line.as_bytes()).is_none();
        if maybe_header && (tokens.contains(&"srcaddr") || tokens.first() == Some(&"version")) {
            if let Some(unknown) = tokens.iter().find(|t| {
                t.chars()
                    .any(|c| !(c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit()))
            }) {
                return Err(Skip::malformed(format!(
                    "header names an invalid field `{}`",
                    clip(unknown)
                )));
            }
            self.set_fields(tokens.iter().map(|s| s.to_string()).collect());
            return Err(Skip::new(SkipReason::NotAFlow, "header line"));
        }
        if tokens.len() != self.fields.len() {
            return Err(Skip::malformed(format!(
                "{} fields, the format has {}",
                tokens.len(),
                self.fields.len()
            )));
        }
        let ix = &self.index;
        match field(tokens, ix.log_status) {
            Some("NODATA") => {
                return Err(Skip::new(
                    SkipReason::NoData,
                    "NODATA: no traffic in the window",
                ));
            }
            Some("SKIPDATA") => {
                return Err(Skip::new(
                    SkipReason::SkipData,
                    "SKIPDATA: records lost in the window",
                ));
            }
            _ => {}
        }
        let need = |name: &str, i: Option<usize>| {
            field(tokens, i).ok_or_else(|| Skip::malformed(format!("`{name}` is missing")))
        };
        let src = parse_ip("srcaddr", need("srcaddr", ix.srcaddr)?)?;
        let dst = parse_ip("dstaddr", need("dstaddr", ix.dstaddr)?)?;
        let protocol: u8 = parse_num("protocol", need("protocol", ix.protocol)?)?;
        let mut flow = Flow::new(FlowSource::Aws, src, dst, protocol);
        if let Some(p) = field(tokens, ix.srcport) {
            flow.src_port = parse_num("srcport", p)?;
        }
        if let Some(p) = field(tokens, ix.dstport) {
            flow.dst_port = parse_num("dstport", p)?;
        }
        if let Some(p) = field(tokens, ix.packets) {
            flow.packets_out = parse_num("packets", p)?;
        }
        if let Some(b) = field(tokens, ix.bytes) {
            flow.bytes_out = parse_num("bytes", b)?;
        }
        if let Some(s) = field(tokens, ix.start) {
            flow.start_ms = parse_num::<i64>("start", s)?.saturating_mul(1000);
        }
        flow.end_ms = match field(tokens, ix.end) {
            Some(e) => parse_num::<i64>("end", e)?.saturating_mul(1000),
            None => flow.start_ms,
        };
        flow.observed = match field(tokens, ix.action) {
            Some("ACCEPT") => Some(Observed::Accepted),
            Some("REJECT") => Some(Observed::Rejected),
            Some(other) => {
                return Err(Skip::malformed(format!("unknown action `{}`", clip(other))));
            }
            None => None,
        };
        flow.direction = match field(tokens, ix.flow_direction) {
            Some("ingress") => Some(Direction::Ingress),
            Some("egress") => Some(Direction::Egress),
            _ => None,
        };
        let kept = || {
            self.kept
                .iter()
                .filter_map(|(i, name)| Some((name, tokens.get(*i).filter(|v| **v != "-")?)))
        };
        flow.attrs
            .reserve(kept().map(|(k, v)| k.len() + v.len() + 2).sum());
        for (name, value) in kept() {
            flow.attrs.push(name, value);
        }
        out.push(flow);
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// Put one token of a line into the next of `slots`.
#[inline]
fn put<'a>(slots: &mut [&'a str; MAX_FIELDS], n: &mut usize, t: &'a str) -> Result<(), Skip> {
    match slots.get_mut(*n) {
        Some(slot) => *slot = t,
        None => return Err(Skip::malformed(format!("more than {MAX_FIELDS} fields"))),
    }
    *n += 1;
    Ok(())
}
