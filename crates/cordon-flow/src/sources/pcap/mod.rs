//! Packet captures (pcap and pcapng) assembled into connections the way
//! Zeek's conn.log reports them: TCP by handshake, FIN and RST with a
//! connection state (`S0`, `REJ`, `S1`, `SF`, `RSTO`, `RSTR`, `SH`, `S2`,
//! `S3`, `OTH`), UDP and ICMP by inactivity, bytes (at the IP layer) and
//! packets each way, the originator being the side that opened.
//!
//! The main design choice is a bounded connection table: a connection is
//! reported when it closes (FIN both ways or a RST, after a short linger
//! for the last ACKs), when it has been idle past its protocol's timeout,
//! or when the table is full and it is the least recently active, so memory
//! stays bounded on any capture. Fragments after the first are counted,
//! not reassembled: the first fragment carries the ports and the IP length
//! of the whole datagram.
//!
//! Inside one connection the table also notes **beats**: the moments the
//! originator spoke again after the connection had been silent for a
//! second or more (a check-in of an implant holding one session open, as
//! C2 over QUIC or a websocket does). They are reported as the `beats`
//! attribute, milliseconds from the connection's start, when there are at
//! least [`MIN_BEATS`], so the beacon detector can score a cadence no
//! count of connections shows.

pub mod capture;
pub mod packet;

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::flow::{Flow, FlowSource, Observed};
use packet::{Datagram, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};

/// Connections held at most before the least recently active is reported.
pub const MAX_CONNECTIONS: usize = 65_536;
/// A TCP connection silent this long is reported (Zeek's default).
const TCP_IDLE_US: i64 = 300_000_000;
/// A UDP or ICMP exchange silent this long is reported, and a later packet
/// starts a new one: exchanges are never joined across gaps.
const OTHER_IDLE_US: i64 = 60_000_000;
/// A closed TCP connection stays this long for its last ACKs.
const CLOSE_LINGER_US: i64 = 5_000_000;
/// How often (capture time) idle connections are looked for.
const SWEEP_EVERY_US: i64 = 5_000_000;
/// Silence after which the originator speaking again is a beat.
const BEAT_SILENCE_US: i64 = 1_000_000;
/// Beats kept per connection (the first ones).
const MAX_BEATS: usize = 64;
/// Beats a connection needs before they are reported.
pub const MIN_BEATS: usize = 4;

type Key = (u8, IpAddr, u16, IpAddr, u16);

#[derive(Clone, Debug)]
struct Conn {
    orig: (IpAddr, u16),
    resp: (IpAddr, u16),
    protocol: u8,
    first_us: i64,
    last_us: i64,
    orig_bytes: u64,
    resp_bytes: u64,
    orig_packets: u64,
    resp_packets: u64,
    syn_orig: bool,
    synack_resp: bool,
    fin_orig: bool,
    fin_resp: bool,
    rst_orig: bool,
    rst_resp: bool,
    closed_us: Option<i64>,
    /// Beats (see the module docs), milliseconds from `first_us`.
    beats: Vec<u32>,
}

impl Conn {
    fn idle_limit(&self) -> i64 {
        if self.protocol == 6 {
            TCP_IDLE_US
        } else {
            OTHER_IDLE_US
        }
    }

    /// Whether the connection is over at capture time `now`.
    fn over(&self, now: i64) -> bool {
        now.saturating_sub(self.last_us) > self.idle_limit()
            || self
                .closed_us
                .is_some_and(|c| now.saturating_sub(c) > CLOSE_LINGER_US)
    }

    /// Zeek's connection state.
    fn state(&self) -> &'static str {
        if self.protocol == 1 || self.protocol == 58 {
            return "OTH";
        }
        if self.protocol != 6 {
            return if self.resp_packets > 0 { "SF" } else { "S0" };
        }
        match (self.syn_orig, self.synack_resp) {
            (false, _) => "OTH",
            (true, false) if self.rst_resp => "REJ",
            (true, false) if self.fin_orig => "SH",
            (true, false) if self.rst_orig => "RSTOS0",
            (true, false) => "S0",
            (true, true) if self.rst_orig => "RSTO",
            (true, true) if self.rst_resp => "RSTR",
            (true, true) => match (self.fin_orig, self.fin_resp) {
                (true, true) => "SF",
                (true, false) => "S2",
                (false, true) => "S3",
                (false, false) => "S1",
            },
        }
    }

    fn flow(&self) -> Flow {
        let mut f = Flow::new(FlowSource::Pcap, self.orig.0, self.resp.0, self.protocol);
        f.start_ms = self.first_us.div_euclid(1000);
        f.end_ms = self.last_us.div_euclid(1000);
        f.src_port = self.orig.1;
        f.dst_port = self.resp.1;
        f.bytes_out = self.orig_bytes;
        f.bytes_in = self.resp_bytes;
        f.packets_out = self.orig_packets;
        f.packets_in = self.resp_packets;
        let state = self.state();
        f.observed = Some(if state == "REJ" {
            Observed::Rejected
        } else {
            Observed::Accepted
        });
        f.attr("conn_state", state);
        if self.beats.len() >= MIN_BEATS {
            let text: Vec<String> = self.beats.iter().map(u32::to_string).collect();
            f.attr("beats", text.join(","));
        }
        f
    }
}

/// The connection table (see the module docs).
#[derive(Debug)]
pub struct ConnTable {
    conns: FxHashMap<Key, Conn>,
    max: usize,
    last_sweep_us: i64,
}

impl Default for ConnTable {
    fn default() -> Self {
        ConnTable::with_capacity(MAX_CONNECTIONS)
    }
}

fn key(d: &Datagram) -> Key {
    let a = (d.src, d.src_port);
    let b = (d.dst, d.dst_port);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    (d.protocol, lo.0, lo.1, hi.0, hi.1)
}

impl ConnTable {
    /// A table holding at most `max` connections.
    pub fn with_capacity(max: usize) -> Self {
        ConnTable {
            conns: FxHashMap::default(),
            max: max.max(1),
            last_sweep_us: i64::MIN,
        }
    }

    /// Connections held now.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Account one datagram seen at `time_us`; connections it (or the
    /// passing time) ends are pushed to `out`.
    pub fn packet(&mut self, time_us: i64, d: &Datagram, out: &mut Vec<Flow>) {
        let k = key(d);
        if let Some(c) = self.conns.get(&k)
            && c.over(time_us)
            && let Some(c) = self.conns.remove(&k)
        {
            out.push(c.flow());
        }
        if !self.conns.contains_key(&k) && self.conns.len() >= self.max {
            self.sweep(time_us, out);
            if self.conns.len() >= self.max {
                self.evict_oldest(out);
            }
        }
        let c = self.conns.entry(k).or_insert_with(|| {
            // The side that opened is the originator; a capture that starts
            // with the answer to a SYN has the opener as its destination.
            let synack = d.protocol == 6 && d.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK;
            let (orig, resp) = if synack {
                ((d.dst, d.dst_port), (d.src, d.src_port))
            } else {
                ((d.src, d.src_port), (d.dst, d.dst_port))
            };
            Conn {
                orig,
                resp,
                protocol: d.protocol,
                first_us: time_us,
                last_us: time_us,
                orig_bytes: 0,
                resp_bytes: 0,
                orig_packets: 0,
                resp_packets: 0,
                syn_orig: false,
                synack_resp: false,
                fin_orig: false,
                fin_resp: false,
                rst_orig: false,
                rst_resp: false,
                closed_us: None,
                beats: Vec::new(),
            }
        });
        let from_orig = (d.src, d.src_port) == c.orig;
        // A keepalive probe carries at most one byte: not a beat.
        if from_orig
            && d.payload > 1
            && time_us.saturating_sub(c.last_us) >= BEAT_SILENCE_US
            && c.beats.len() < MAX_BEATS
        {
            let at = (time_us - c.first_us) / 1000;
            c.beats.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        c.last_us = c.last_us.max(time_us);
        if from_orig {
            c.orig_bytes += d.ip_bytes;
            c.orig_packets += 1;
        } else {
            c.resp_bytes += d.ip_bytes;
            c.resp_packets += 1;
        }
        if d.protocol == 6 {
            let f = d.tcp_flags;
            let syn = f & TCP_SYN != 0;
            let ack = f & TCP_ACK != 0;
            match from_orig {
                true => {
                    c.syn_orig |= syn && !ack;
                    c.fin_orig |= f & TCP_FIN != 0;
                    c.rst_orig |= f & TCP_RST != 0;
                }
                false => {
                    c.synack_resp |= syn && ack;
                    c.fin_resp |= f & TCP_FIN != 0;
                    c.rst_resp |= f & TCP_RST != 0;
                }
            }
            if c.closed_us.is_none() && (c.rst_orig || c.rst_resp || (c.fin_orig && c.fin_resp)) {
                c.closed_us = Some(time_us);
            }
        }
        if time_us.saturating_sub(self.last_sweep_us) >= SWEEP_EVERY_US {
            self.sweep(time_us, out);
        }
    }

    /// Report every connection that is over at `now_us`.
    fn sweep(&mut self, now_us: i64, out: &mut Vec<Flow>) {
        self.last_sweep_us = now_us;
        let mut over: Vec<Conn> = Vec::new();
        self.conns.retain(|_, c| {
            if c.over(now_us) {
                over.push(c.clone());
                false
            } else {
                true
            }
        });
        over.sort_by_key(|c| c.first_us);
        out.extend(over.iter().map(Conn::flow));
    }

    fn evict_oldest(&mut self, out: &mut Vec<Flow>) {
        let oldest = self
            .conns
            .iter()
            .min_by_key(|(_, c)| c.last_us)
            .map(|(k, _)| *k);
        if let Some(c) = oldest.and_then(|k| self.conns.remove(&k)) {
            out.push(c.flow());
        }
    }

    /// The capture ended: report every connection still held, oldest first.
    pub fn finish(&mut self, out: &mut Vec<Flow>) {
        let mut all: Vec<Conn> = self.conns.drain().map(|(_, c)| c).collect();
        all.sort_by_key(|c| c.first_us);
        out.extend(all.iter().map(Conn::flow));
    }
}

#[cfg(test)]
mod tests;
