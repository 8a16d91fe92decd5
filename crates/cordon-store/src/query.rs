//! Queries over stored flows.

use std::net::IpAddr;

use cordon_core::{Verdict, WellKnownGroup, first_user_group, ip};
use cordon_flow::{Flow, Name};
use ipnet::IpNet;
use serde::Serialize;

/// Filters for [`crate::FlowReader::query`]; unset filters match everything.
#[derive(Clone, Debug, Default)]
pub struct FlowQuery {
    /// Flows starting at or after this (epoch ms).
    pub since_ms: Option<i64>,
    /// Flows starting before this (epoch ms).
    pub until_ms: Option<i64>,
    /// Source or destination in this range.
    pub addr: Option<IpNet>,
    /// Source in this range.
    pub src: Option<IpNet>,
    /// Destination in this range.
    pub dst: Option<IpNet>,
    /// Source or destination in this group.
    pub group: Option<String>,
    /// Destination port.
    pub port: Option<u16>,
    /// IP protocol number.
    pub protocol: Option<u8>,
    /// The policy verdict stamped at ingest.
    pub verdict: Option<Verdict>,
    /// Vendor name.
    pub vendor: Option<String>,
    /// At most this many flows.
    pub limit: Option<u64>,
    /// Only flows in blocks with ids up to this one (see
    /// [`crate::FlowReader::scan_blocks`]).
    pub through_block: Option<i64>,
}

impl FlowQuery {
    /// Whether `f` passes every filter but `through_block` and `limit` (a
    /// backend narrows what it reads by its own indexes; this decides).
    pub fn matches(&self, f: &Flow) -> bool {
        let e = f.enrichment.as_ref();
        self.since_ms.is_none_or(|s| f.start_ms >= s)
            && self.until_ms.is_none_or(|u| f.start_ms < u)
            && self
                .addr
                .is_none_or(|n| n.contains(&f.src_ip) || n.contains(&f.dst_ip))
            && self.src.is_none_or(|n| n.contains(&f.src_ip))
            && self.dst.is_none_or(|n| n.contains(&f.dst_ip))
            && self.group.as_ref().is_none_or(|g| {
                e.is_some_and(|e| {
                    e.src_groups
                        .iter()
                        .chain(e.dst_groups.iter())
                        .any(|x| **x == **g)
                })
            })
            && self.port.is_none_or(|p| f.dst_port == p)
            && self.protocol.is_none_or(|p| f.protocol == p)
            && self
                .verdict
                .as_ref()
                .is_none_or(|v| e.is_some_and(|e| e.verdict == *v))
            && self
                .vendor
                .as_ref()
                .is_none_or(|v| e.is_some_and(|e| e.vendor.as_deref() == Some(v.as_str())))
    }
}

/// Traffic from one group to another, summed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// Source group.
    pub src_group: String,
    /// Destination group.
    pub dst_group: String,
    /// Destination port.
    pub dst_port: u16,
    /// Protocol.
    pub protocol: u8,
    /// Verdict; `None` for flows stored without a policy.
    pub verdict: Option<Verdict>,
    /// Flows.
    pub flows: u64,
    /// Bytes from source to destination.
    pub bytes_out: u64,
    /// Bytes back.
    pub bytes_in: u64,
}

/// The group a flow endpoint is drawn under in the topology: its first user
/// group, else its first group, else the built-in class of its address.
pub fn topology_label(groups: Option<&[Name]>, ip: IpAddr) -> &str {
    if let Some(g) = groups.and_then(|g| first_user_group(g).or(g.first())) {
        return g;
    }
    if ip::is_private(ip) {
        WellKnownGroup::Private.as_str()
    } else if ip::is_internet(ip) {
        WellKnownGroup::Internet.as_str()
    } else {
        "other"
    }
}
