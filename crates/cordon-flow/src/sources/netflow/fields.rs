//! Information elements Cordon reads (IANA IPFIX registry; NetFlow v9 uses
//! the same numbers for the first 127).

/// A field of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// Information element id (enterprise bit cleared).
    pub id: u16,
    /// Length in bytes, or `None` for variable length (IPFIX 65535).
    pub length: Option<u16>,
    /// Enterprise number for enterprise-specific elements.
    pub enterprise: Option<u32>,
}

pub const OCTET_DELTA_COUNT: u16 = 1;
pub const PACKET_DELTA_COUNT: u16 = 2;
pub const PROTOCOL: u16 = 4;
pub const TCP_FLAGS: u16 = 6;
pub const SRC_PORT: u16 = 7;
pub const SRC_IPV4: u16 = 8;
pub const INPUT_INTERFACE: u16 = 10;
pub const DST_PORT: u16 = 11;
pub const DST_IPV4: u16 = 12;
pub const OUTPUT_INTERFACE: u16 = 14;
pub const LAST_SWITCHED: u16 = 21;
pub const FIRST_SWITCHED: u16 = 22;
pub const POST_OCTET_DELTA_COUNT: u16 = 23;
pub const POST_PACKET_DELTA_COUNT: u16 = 24;
pub const SRC_IPV6: u16 = 27;
pub const DST_IPV6: u16 = 28;
pub const SAMPLING_INTERVAL: u16 = 34;
pub const SAMPLER_RANDOM_INTERVAL: u16 = 50;
pub const FLOW_DIRECTION: u16 = 61;
pub const OCTET_TOTAL_COUNT: u16 = 85;
pub const PACKET_TOTAL_COUNT: u16 = 86;
pub const FLOW_START_SECONDS: u16 = 150;
pub const FLOW_END_SECONDS: u16 = 151;
pub const FLOW_START_MILLISECONDS: u16 = 152;
pub const FLOW_END_MILLISECONDS: u16 = 153;
pub const SYSTEM_INIT_TIME_MILLISECONDS: u16 = 160;
pub const SAMPLING_PACKET_INTERVAL: u16 = 305;
/// IPFIX reverse counters (RFC 5103), enterprise 29305.
pub const REVERSE_PEN: u32 = 29305;
