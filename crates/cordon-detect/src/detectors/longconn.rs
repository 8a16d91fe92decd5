//! Long connections: one connection to an external destination held open
//! for longer than `min_duration`. Flow logs cut long connections into
//! records of a few minutes, so records of one 5-tuple that follow each
//! other within `max_gap` are joined before measuring. Zeek's snapshots of
//! connections still open (`open_conn`) count too: a session that never
//! closes within the data is the longest of all.
//!
//! A long connection alone is at most `medium` (`low` between hosts
//! neither known to be internal, as a sensor on a public host sees them:
//! administrators' sessions look the same); the policy saying the
//! destination is not sanctioned makes it more.

use cordon_core::FindingKind;
use std::net::IpAddr;

use cordon_flow::Flow;

use super::{Detector, c2_technique, dst_internal, fact, finding, src_internal};
use crate::bounded::{Aged, Bounded};
use crate::config::LongConnections as Settings;
use crate::finding::{Finding, Severity};

/// Most time between UDP records of one stream.
const UDP_MAX_GAP_MS: i64 = 30_000;

struct Conn {
    first_ms: i64,
    last_ms: i64,
    bytes_out: u64,
    bytes_in: u64,
    records: u32,
    reported: bool,
}

impl Aged for Conn {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// The long-connection detector.
pub struct LongConnections {
    cfg: Settings,
    conns: Bounded<(IpAddr, u16, IpAddr, u16, u8), Conn>,
}

impl LongConnections {
    /// A detector with `cfg`.
    pub fn new(cfg: Settings) -> Self {
        let conns = Bounded::new(cfg.common.max_state);
        LongConnections { cfg, conns }
    }
}

impl Detector for LongConnections {
    fn name(&self) -> &'static str {
        "long-connections"
    }

    fn sees_snapshots(&self) -> bool {
        true
    }

    fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        // One side internal and the other external, or neither known to
        // be internal (a sensor on a public host).
        let (src_in, dst_in) = (src_internal(flow), dst_internal(flow));
        if (src_in && dst_in)
            || super::allowed_by_rule(flow)
            || self
                .cfg
                .common
                .allow
                .contains(flow.dst_ip, flow.hostname.as_deref())
            || !matches!(flow.protocol, 6 | 17)
        {
            return;
        }
        let key = (
            flow.src_ip,
            flow.src_port,
            flow.dst_ip,
            flow.dst_port,
            flow.protocol,
        );
        let end = flow.end_ms.max(flow.start_ms);
        // UDP has no connection: records are one stream only while packets
        // keep flowing (NTP or DNS to one server on a fixed source port are
        // separate exchanges minutes apart, never one long connection).
        let gap = if flow.protocol == 17 {
            self.cfg.max_gap.min(UDP_MAX_GAP_MS)
        } else {
            self.cfg.max_gap
        };
        let conn = self.conns.entry(key, || Conn {
            first_ms: flow.start_ms,
            last_ms: end,
            bytes_out: 0,
            bytes_in: 0,
            records: 0,
            reported: false,
        });
        if flow.start_ms > conn.last_ms + gap {
            // A new connection on a reused 5-tuple.
            *conn = Conn {
                first_ms: flow.start_ms,
                last_ms: end,
                bytes_out: 0,
                bytes_in: 0,
                records: 0,
                reported: false,
            };
        }
        conn.first_ms = conn.first_ms.min(flow.start_ms);
        conn.last_ms = conn.last_ms.max(end);
        conn.bytes_out += flow.bytes_out;
        conn.bytes_in += flow.bytes_in;
        conn.records += 1;
        let duration = conn.last_ms - conn.first_ms;
        if duration >= self.cfg.min_duration && !conn.reported {
            conn.reported = true;
            let hours = duration as f64 / 3_600_000.0;
            let mut f = finding(
                FindingKind::LongConnection,
                &format!("{}:{}>{}:{}/{}", key.0, key.1, key.2, key.3, key.4),
                flow,
                (50.0 + 10.0 * hours).min(85.0),
                format!(
                    "connection {}:{} → {}:{} open for {hours:.1} h ({} records)",
                    key.0, key.1, key.2, key.3, conn.records
                ),
            );
            f.first_ms = conn.first_ms;
            f.last_ms = conn.last_ms;
            let (technique, _) = c2_technique(flow.protocol, flow.dst_port);
            f.techniques = vec![technique.to_string(), "T1572".to_string()];
            let unsanctioned = flow.enrichment.as_ref().is_some_and(|e| e.rule.is_none());
            let ceiling = if !src_in && !dst_in {
                (
                    Severity::Low,
                    "between hosts not known to be internal; low unless something else corroborates it"
                        .to_string(),
                )
            } else if unsanctioned {
                (
                    Severity::Critical,
                    "the policy sanctions no traffic to this destination".to_string(),
                )
            } else {
                (
                    Severity::Medium,
                    "a long connection alone (no policy says the destination is unsanctioned)"
                        .to_string(),
                )
            };
            super::calibrate(&mut f, ceiling);
            fact(&mut f, "still_open", flow.is_snapshot());
            fact(&mut f, "duration_s", duration / 1000);
            fact(&mut f, "bytes_out", conn.bytes_out);
            fact(&mut f, "bytes_in", conn.bytes_in);
            fact(&mut f, "records", conn.records);
            out.push(f);
        }
    }

    fn state(&self) -> usize {
        self.conns.len()
    }

    fn evicted(&self) -> u64 {
        self.conns.evicted()
    }
}
