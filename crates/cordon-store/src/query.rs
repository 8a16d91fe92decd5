//! Queries over stored flows.

use ipnet::IpNet;
use serde::Serialize;

/// Filters for [`crate::FlowStore::query`]; unset filters match everything.
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
    /// `allow`, `deny` or `would-deny`.
    pub verdict: Option<String>,
    /// Vendor name.
    pub vendor: Option<String>,
    /// At most this many flows.
    pub limit: Option<u64>,
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
    /// Verdict.
    pub verdict: String,
    /// Flows.
    pub flows: u64,
    /// Bytes from source to destination.
    pub bytes_out: u64,
    /// Bytes back.
    pub bytes_in: u64,
}
