//! Wire-level decoding, every read bounds-checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::fields::*;
use super::{FieldSpec, Limits, PacketOutcome, Template};
use crate::flow::{Direction, Flow, FlowSource};
use crate::read::{Skip, SkipReason};

/// A reader over a byte slice that never reads past its end.
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Big-endian unsigned integer of 1 to 8 bytes.
fn uint(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
}

/// What decoding a data record needs from its packet's header.
#[derive(Clone, Debug)]
pub struct Header {
    /// Export time, epoch seconds.
    pub export_secs: u32,
    /// v9: milliseconds since the exporter booted, at export.
    pub sys_uptime: u32,
    /// v9 source id or IPFIX observation domain.
    pub domain: u32,
    /// Where the sets begin.
    pub body: usize,
}

pub fn header(version: u16, data: &[u8]) -> Result<Header, Skip> {
    let mut c = Cursor::new(data);
    let short = || Skip::malformed("packet shorter than its header");
    c.u16().ok_or_else(short)?;
    if version == 9 {
        let _count = c.u16().ok_or_else(short)?;
        let sys_uptime = c.u32().ok_or_else(short)?;
        let export_secs = c.u32().ok_or_else(short)?;
        let _sequence = c.u32().ok_or_else(short)?;
        let domain = c.u32().ok_or_else(short)?;
        Ok(Header {
            export_secs,
            sys_uptime,
            domain,
            body: 20,
        })
    } else {
        let length = c.u16().ok_or_else(short)?;
        if usize::from(length) > data.len() || length < 16 {
            return Err(Skip::malformed(format!(
                "IPFIX message length {length} but the packet has {} bytes",
                data.len()
            )));
        }
        let export_secs = c.u32().ok_or_else(short)?;
        let _sequence = c.u32().ok_or_else(short)?;
        let domain = c.u32().ok_or_else(short)?;
        Ok(Header {
            export_secs,
            sys_uptime: 0,
            domain,
            body: 16,
        })
    }
}

/// The sets of a v9 or IPFIX packet: (set id, body). A set whose length
/// lies ends the list with an error for the rest.
pub fn sets(version: u16, data: &[u8], body: usize) -> Result<Vec<(u16, &[u8])>, Skip> {
    let end = if version == 10 {
        usize::from(u16::from_be_bytes([
            data.get(2).copied().unwrap_or(0),
            data.get(3).copied().unwrap_or(0),
        ]))
    } else {
        data.len()
    };
    let mut c = Cursor::new(data.get(body..end.min(data.len())).unwrap_or(&[]));
    let mut out = Vec::new();
    while c.remaining() >= 4 {
        let id = c.u16().unwrap_or(0);
        let len = usize::from(c.u16().unwrap_or(0));
        if len < 4 {
            return Err(Skip::malformed(format!(
                "set {id} has length {len}, less than its own header"
            )));
        }
        let Some(body) = c.take(len - 4) else {
            return Err(Skip::malformed(format!(
                "set {id} claims {len} bytes but {} remain",
                c.remaining() + 4
            )));
        };
        out.push((id, body));
    }
    Ok(out)
}

fn spec(c: &mut Cursor<'_>, version: u16) -> Option<FieldSpec> {
    let raw = c.u16()?;
    let length = c.u16()?;
    let (id, enterprise) = if version == 10 && raw & 0x8000 != 0 {
        (raw & 0x7fff, Some(c.u32()?))
    } else {
        (raw, None)
    };
    let length = if version == 10 && length == 65535 {
        None
    } else {
        Some(length)
    };
    Some(FieldSpec {
        id,
        length,
        enterprise,
    })
}

/// Templates in a template or options-template set: `(id, None)` is an
/// IPFIX withdrawal.
pub fn templates(
    version: u16,
    options: bool,
    body: &[u8],
    limits: &Limits,
) -> Result<Vec<(u16, Option<Template>)>, Skip> {
    let mut c = Cursor::new(body);
    let mut out = Vec::new();
    // Anything shorter than a template header is padding.
    while c.remaining() >= 4 {
        let id = c.u16().unwrap_or(0);
        let (count, scope) = if version == 9 && options {
            let scope_len = usize::from(c.u16().unwrap_or(0));
            let option_len = usize::from(
                c.u16()
                    .ok_or_else(|| Skip::malformed("truncated options template"))?,
            );
            ((scope_len + option_len) / 4, scope_len / 4)
        } else {
            let count = usize::from(c.u16().unwrap_or(0));
            let scope = if options {
                if count == 0 {
                    0
                } else {
                    usize::from(
                        c.u16()
                            .ok_or_else(|| Skip::malformed("truncated options template"))?,
                    )
                }
            } else {
                0
            };
            (count, scope)
        };
        if id == 0 && count == 0 {
            // v9 padding.
            break;
        }
        if count == 0 {
            if version == 10 {
                out.push((id, None));
                continue;
            }
            return Err(Skip::malformed(format!("template {id} has no fields")));
        }
        if id < 256 && !(version == 10 && count == 0) {
            return Err(Skip::malformed(format!("template id {id} is reserved")));
        }
        if count > limits.max_fields {
            return Err(Skip::malformed(format!(
                "template {id} has {count} fields, more than {}",
                limits.max_fields
            )));
        }
        let mut fields = Vec::with_capacity(count);
        for _ in 0..count {
            fields.push(
                spec(&mut c, version)
                    .ok_or_else(|| Skip::malformed(format!("template {id} is truncated")))?,
            );
        }
        if fields.iter().all(|f| f.length == Some(0)) {
            return Err(Skip::malformed(format!(
                "template {id} describes zero-length records"
            )));
        }
        out.push((
            id,
            Some(Template {
                fields,
                options,
                scope_fields: scope.min(count),
            }),
        ));
    }
    Ok(out)
}

fn ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(bytes);
            Some(cordon_core::canonical_ip(IpAddr::V6(Ipv6Addr::from(o))))
        }
        _ => None,
    }
}

/// Decode the records of one data set with `template`.
pub fn data(
    version: u16,
    template: &Template,
    header: &Header,
    body: &[u8],
    sampling: &mut Option<u64>,
    out: &mut Vec<Flow>,
    outcome: &mut PacketOutcome,
) {
    let min_len: usize = template
        .fields
        .iter()
        .map(|f| f.length.map_or(1, usize::from))
        .sum();
    let mut c = Cursor::new(body);
    while c.remaining() >= min_len.max(1) {
        let mut values: Vec<(FieldSpec, &[u8])> = Vec::with_capacity(template.fields.len());
        for f in &template.fields {
            let len = match f.length {
                Some(l) => Some(usize::from(l)),
                None => match c.u8() {
                    Some(255) => c.u16().map(usize::from),
                    Some(l) => Some(usize::from(l)),
                    None => None,
                },
            };
            match len.and_then(|l| c.take(l)) {
                Some(v) => values.push((*f, v)),
                None => {
                    outcome
                        .skipped
                        .push(Skip::malformed("data record runs past the end of its set"));
                    return;
                }
            }
        }
        if template.options {
            for (f, v) in values.iter().skip(template.scope_fields) {
                if f.enterprise.is_none()
                    && matches!(
                        f.id,
                        SAMPLING_INTERVAL | SAMPLER_RANDOM_INTERVAL | SAMPLING_PACKET_INTERVAL
                    )
                    && let Some(n) = uint(v).filter(|n| *n > 0)
                {
                    *sampling = Some(n);
                }
            }
            continue;
        }
        match record(version, header, &values, sampling.unwrap_or(1)) {
            Ok(flow) => {
                out.push(flow);
                outcome.flows += 1;
            }
            Err(skip) => outcome.skipped.push(skip),
        }
    }
}

fn record(
    version: u16,
    h: &Header,
    values: &[(FieldSpec, &[u8])],
    sampling: u64,
) -> Result<Flow, Skip> {
    let get = |id: u16| {
        values
            .iter()
            .find(|(f, _)| f.id == id && f.enterprise.is_none())
            .map(|(_, v)| *v)
    };
    let num = |id: u16| get(id).and_then(uint);
    let src = get(SRC_IPV4).or_else(|| get(SRC_IPV6)).and_then(ip);
    let dst = get(DST_IPV4).or_else(|| get(DST_IPV6)).and_then(ip);
    let (Some(src), Some(dst)) = (src, dst) else {
        return Err(Skip::new(
            SkipReason::NotAFlow,
            "record without source and destination addresses",
        ));
    };
    let protocol = num(PROTOCOL)
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or(0);
    let source = if version == 10 {
        FlowSource::Ipfix
    } else {
        FlowSource::Netflow
    };
    let mut flow = Flow::new(source, src, dst, protocol);
    flow.src_port = num(SRC_PORT)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0);
    flow.dst_port = num(DST_PORT)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0);
    let bytes = num(OCTET_DELTA_COUNT)
        .or_else(|| num(OCTET_TOTAL_COUNT))
        .or_else(|| num(POST_OCTET_DELTA_COUNT))
        .unwrap_or(0);
    let packets = num(PACKET_DELTA_COUNT)
        .or_else(|| num(PACKET_TOTAL_COUNT))
        .or_else(|| num(POST_PACKET_DELTA_COUNT))
        .unwrap_or(0);
    flow.bytes_out = bytes.saturating_mul(sampling);
    flow.packets_out = packets.saturating_mul(sampling);
    // RFC 5103 reverse counters of a bidirectional IPFIX record.
    let reverse = |id: u16| {
        values
            .iter()
            .find(|(f, _)| f.id == id && f.enterprise == Some(REVERSE_PEN))
            .and_then(|(_, v)| uint(v))
    };
    flow.bytes_in = reverse(OCTET_DELTA_COUNT)
        .or_else(|| reverse(OCTET_TOTAL_COUNT))
        .unwrap_or(0)
        .saturating_mul(sampling);
    flow.packets_in = reverse(PACKET_DELTA_COUNT)
        .or_else(|| reverse(PACKET_TOTAL_COUNT))
        .unwrap_or(0)
        .saturating_mul(sampling);
    let export_ms = i64::from(h.export_secs) * 1000;
    let uptime = |id: u16| -> Option<i64> {
        let at = i64::try_from(num(id)?).ok()?;
        if version == 9 {
            Some(export_ms - (i64::from(h.sys_uptime) - at))
        } else {
            let init = i64::try_from(num(SYSTEM_INIT_TIME_MILLISECONDS)?).ok()?;
            Some(init + at)
        }
    };
    let secs = |id: u16| {
        num(id)
            .and_then(|s| i64::try_from(s).ok())
            .map(|s| s * 1000)
    };
    let millis = |id: u16| num(id).and_then(|s| i64::try_from(s).ok());
    flow.start_ms = millis(FLOW_START_MILLISECONDS)
        .or_else(|| secs(FLOW_START_SECONDS))
        .or_else(|| uptime(FIRST_SWITCHED))
        .unwrap_or(export_ms);
    flow.end_ms = millis(FLOW_END_MILLISECONDS)
        .or_else(|| secs(FLOW_END_SECONDS))
        .or_else(|| uptime(LAST_SWITCHED))
        .unwrap_or(flow.start_ms);
    if let Some(flags) = num(TCP_FLAGS) {
        flow.attr("tcp_flags", flags.to_string());
    }
    flow.direction = match num(FLOW_DIRECTION) {
        Some(0) => Some(Direction::Ingress),
        Some(1) => Some(Direction::Egress),
        _ => None,
    };
    for (id, key) in [
        (INPUT_INTERFACE, "input_interface"),
        (OUTPUT_INTERFACE, "output_interface"),
    ] {
        if let Some(v) = num(id) {
            flow.attr(key, v.to_string());
        }
    }
    if sampling > 1 {
        flow.attr("sampling", sampling.to_string());
    }
    Ok(flow)
}

/// NetFlow v5: a fixed header and fixed 48-byte records.
pub fn v5(data: &[u8], out: &mut Vec<Flow>, outcome: &mut PacketOutcome) {
    let mut c = Cursor::new(data);
    let parsed = (|| {
        c.u16()?;
        let count = c.u16()?;
        let sys_uptime = c.u32()?;
        let secs = c.u32()?;
        let nsecs = c.u32()?;
        let _seq = c.u32()?;
        let _engine = c.u16()?;
        let sampling = c.u16()?;
        Some((count, sys_uptime, secs, nsecs, sampling))
    })();
    let Some((count, sys_uptime, secs, nsecs, sampling)) = parsed else {
        outcome
            .skipped
            .push(Skip::malformed("NetFlow v5 packet shorter than its header"));
        return;
    };
    let interval = u64::from(sampling & 0x3fff);
    let rate = if sampling >> 14 != 0 && interval > 1 {
        interval
    } else {
        1
    };
    let export_ms = i64::from(secs) * 1000 + i64::from(nsecs) / 1_000_000;
    let fits = c.remaining() / 48;
    if usize::from(count) > fits || count > 30 {
        outcome.skipped.push(Skip::malformed(format!(
            "NetFlow v5 header counts {count} records but the packet holds {fits}"
        )));
    }
    for _ in 0..usize::from(count).min(fits).min(30) {
        let Some(r) = c.take(48) else { break };
        let src = IpAddr::V4(Ipv4Addr::new(r[0], r[1], r[2], r[3]));
        let dst = IpAddr::V4(Ipv4Addr::new(r[4], r[5], r[6], r[7]));
        let mut flow = Flow::new(FlowSource::Netflow, src, dst, r[38]);
        let be32 = |i: usize| u32::from_be_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
        flow.packets_out = u64::from(be32(16)).saturating_mul(rate);
        flow.bytes_out = u64::from(be32(20)).saturating_mul(rate);
        flow.start_ms = export_ms - (i64::from(sys_uptime) - i64::from(be32(24)));
        flow.end_ms = export_ms - (i64::from(sys_uptime) - i64::from(be32(28)));
        flow.src_port = u16::from_be_bytes([r[32], r[33]]);
        flow.dst_port = u16::from_be_bytes([r[34], r[35]]);
        flow.attr("tcp_flags", r[37].to_string());
        flow.attr(
            "input_interface",
            u16::from_be_bytes([r[12], r[13]]).to_string(),
        );
        flow.attr(
            "output_interface",
            u16::from_be_bytes([r[14], r[15]]).to_string(),
        );
        if rate > 1 {
            flow.attr("sampling", rate.to_string());
        }
        out.push(flow);
        outcome.flows += 1;
    }
}
