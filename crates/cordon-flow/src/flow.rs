//! The one normalised connection record every source is turned into.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use cordon_core::{Direction, Name, Names, Orientation, Verdict};

/// Where a flow record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowSource {
    /// AWS VPC Flow Logs.
    Aws,
    /// GCP VPC Flow Logs.
    Gcp,
    /// Azure NSG or VNet flow logs.
    Azure,
    /// Zeek conn.log.
    Zeek,
    /// NetFlow v5 or v9.
    Netflow,
    /// IPFIX.
    Ipfix,
    /// Cilium Hubble.
    Hubble,
    /// Cordon's egress gateway.
    Gateway,
    /// Cordon's host agent.
    Agent,
    /// A packet capture (pcap, pcapng), assembled into connections.
    Pcap,
}

impl FlowSource {
    /// Every source, in a fixed order (stored encodings index into it).
    pub const ALL: [FlowSource; 10] = [
        FlowSource::Aws,
        FlowSource::Gcp,
        FlowSource::Azure,
        FlowSource::Zeek,
        FlowSource::Netflow,
        FlowSource::Ipfix,
        FlowSource::Hubble,
        FlowSource::Gateway,
        FlowSource::Agent,
        FlowSource::Pcap,
    ];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowSource::Aws => "aws",
            FlowSource::Gcp => "gcp",
            FlowSource::Azure => "azure",
            FlowSource::Zeek => "zeek",
            FlowSource::Netflow => "netflow",
            FlowSource::Ipfix => "ipfix",
            FlowSource::Hubble => "hubble",
            FlowSource::Gateway => "gateway",
            FlowSource::Agent => "agent",
            FlowSource::Pcap => "pcap",
        }
    }

    /// Parse a lowercase name.
    pub fn from_name(s: &str) -> Option<FlowSource> {
        FlowSource::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for FlowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the reporting device did with the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Observed {
    /// Let through.
    Accepted,
    /// Dropped or refused.
    Rejected,
}

/// One connection (or a time slice of one), normalised. Counts are from the
/// source's point of view: `bytes_out` is what the source sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// Start, epoch milliseconds.
    pub start_ms: i64,
    /// End, epoch milliseconds.
    pub end_ms: i64,
    /// Source address (initiator when known).
    pub src_ip: IpAddr,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// Source port (0 when none).
    pub src_port: u16,
    /// Destination port (0 when none; ICMP type for ICMP where known).
    pub dst_port: u16,
    /// IANA protocol number.
    pub protocol: u8,
    /// Bytes from source to destination.
    pub bytes_out: u64,
    /// Bytes from destination to source.
    pub bytes_in: u64,
    /// Packets from source to destination.
    pub packets_out: u64,
    /// Packets from destination to source.
    pub packets_in: u64,
    /// What the reporting device did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    /// Direction relative to the reporting point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Whether the pipeline turned the record around so the source is the
    /// initiator.
    #[serde(default, skip_serializing_if = "is_as_recorded")]
    pub orientation: Orientation,
    /// Which kind of record this came from.
    pub source: FlowSource,
    /// Hostname from SNI, Host or DNS, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Source-specific details worth keeping (`tcp_flags`, `interface`,
    /// `traffic_path`, `pkt_src`, `reporter`, `rule`, ...).
    #[serde(default, skip_serializing_if = "Attrs::is_empty")]
    pub attrs: Attrs,
    /// Who the endpoints are and what the policy says, once enriched.
    /// Shared: flows with the same endpoints' identities and decision carry
    /// one enrichment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment: Option<std::sync::Arc<Enrichment>>,
}

/// The attribute of a snapshot of a connection still open (Zeek's
/// `open_conn` log): its duration and bytes so far. A snapshot is stored
/// and informs detection of long connections, but nothing counts it (the
/// conn log reports the connection when it ends, and hourly snapshots of
/// one connection would count its bytes again and again).
pub const SNAPSHOT: (&str, &str) = ("zeek_log", "open_conn");

impl Flow {
    /// A flow with the given endpoints and everything else zero or unknown.
    pub fn new(source: FlowSource, src_ip: IpAddr, dst_ip: IpAddr, protocol: u8) -> Self {
        Flow {
            start_ms: 0,
            end_ms: 0,
            src_ip,
            dst_ip,
            src_port: 0,
            dst_port: 0,
            protocol,
            bytes_out: 0,
            bytes_in: 0,
            packets_out: 0,
            packets_in: 0,
            observed: None,
            direction: None,
            orientation: Orientation::AsRecorded,
            source,
            hostname: None,
            attrs: Attrs::default(),
            enrichment: None,
        }
    }

    /// Keep a source-specific attribute.
    pub fn attr(&mut self, key: &str, value: impl AsRef<str>) {
        self.attrs.push(key, value.as_ref());
    }

    /// The value of attribute `key`.
    pub fn get_attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key)
    }

    /// Whether this is a snapshot of a connection still open (see
    /// [`SNAPSHOT`]): the long-connection detector reads it; nothing that
    /// counts connections or bytes does.
    pub fn is_snapshot(&self) -> bool {
        // Only Zeek writes them: other flows skip the attribute lookup,
        // which runs for every flow detected and stored.
        let (key, value) = SNAPSHOT;
        self.source == FlowSource::Zeek && self.get_attr(key) == Some(value)
    }
}

impl Enrichment {
    /// An enrichment with `verdict` and nothing else known.
    pub fn with_verdict(verdict: Verdict) -> Self {
        Enrichment {
            src_workload: None,
            dst_workload: None,
            src_groups: Names::default(),
            dst_groups: Names::default(),
            vendor: None,
            verdict,
            rule: None,
        }
    }
}

fn is_as_recorded(o: &Orientation) -> bool {
    *o == Orientation::AsRecorded
}

/// Separates one attribute from the next in [`Attrs`]' text.
const ATTR_SEPARATOR: char = '\u{1f}';

/// Source-specific attributes of a flow, in the order they were added.
///
/// Kept as one string of `key=value` pairs separated by U+001F, which is
/// how the store encodes them too: a flow costs one allocation for all its
/// attributes, and storing them is a copy. Keys cannot hold `=` or U+001F
/// and values cannot hold U+001F; [`Attrs::push`] replaces them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs(String);

impl Attrs {
    /// Add `key` = `value`.
    pub fn push(&mut self, key: &str, value: &str) {
        let s = &mut self.0;
        if !s.is_empty() {
            s.push(ATTR_SEPARATOR);
        }
        push_clean(s, key, |b| b == b'=' || b == 0x1f, '_');
        s.push('=');
        push_clean(s, value, |b| b == 0x1f, ' ');
    }

    /// Drop every pair with `key`.
    pub fn remove(&mut self, key: &str) {
        let kept: Attrs = {
            let mut a = Attrs::default();
            for (k, v) in self.iter().filter(|(k, _)| *k != key) {
                a.push(k, v);
            }
            a
        };
        *self = kept;
    }

    /// Make room for `additional` more bytes of text.
    pub fn reserve(&mut self, additional: usize) {
        self.0.reserve(additional);
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .split(ATTR_SEPARATOR)
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .split(ATTR_SEPARATOR)
            .filter_map(|kv| kv.split_once('='))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The encoded text (see the type's documentation).
    pub fn as_encoded(&self) -> &str {
        &self.0
    }

    /// Attributes from their encoded text; pieces without `=` are dropped.
    pub fn from_encoded(text: &str) -> Attrs {
        Attrs::from_pairs(text.split(ATTR_SEPARATOR))
    }

    /// The pairs as their encoded `key=value` pieces, in order (the store
    /// keeps each piece once per block: `conn_state=SF` repeats, a
    /// connection id does not).
    pub fn pieces(&self) -> impl Iterator<Item = &str> {
        self.0.split(ATTR_SEPARATOR).filter(|kv| !kv.is_empty())
    }

    /// Attributes from `key=value` pieces; pieces without `=` are dropped.
    pub fn from_pairs<'a>(pieces: impl IntoIterator<Item = &'a str>) -> Attrs {
        let mut a = Attrs::default();
        for (k, v) in pieces.into_iter().filter_map(|kv| kv.split_once('=')) {
            a.push(k, v);
        }
        a
    }
}

/// Append `v` to `s` with every byte that `bad` picks replaced by `with`
/// (the bytes picked are ASCII, so the text stays valid UTF-8).
fn push_clean(s: &mut String, v: &str, bad: impl Fn(u8) -> bool, with: char) {
    if v.bytes().any(&bad) {
        s.extend(v.chars().map(|c| {
            if c.is_ascii() && bad(c as u8) {
                with
            } else {
                c
            }
        }));
    } else {
        s.push_str(v);
    }
}

impl Serialize for Attrs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Attrs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(String, String)>::deserialize(deserializer)?;
        let mut a = Attrs::default();
        for (k, v) in &pairs {
            a.push(k, v);
        }
        Ok(a)
    }
}

/// What enrichment adds: identities, groups, vendor, policy verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    /// Source workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_workload: Option<Name>,
    /// Destination workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_workload: Option<Name>,
    /// Source groups (user groups; built-ins other than `internet`/`private` left out).
    #[serde(default)]
    pub src_groups: Names,
    /// Destination groups.
    #[serde(default)]
    pub dst_groups: Names,
    /// Vendor of the destination (or of the source for inbound vendor traffic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<Name>,
    /// What the policy says.
    pub verdict: Verdict,
    /// The deciding rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Name>,
}

#[cfg(test)]
mod tests;
