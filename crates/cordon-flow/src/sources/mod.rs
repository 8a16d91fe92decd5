//! Flow sources: one directory per format, each a decoder of the same shape.
//!
//! Line formats implement [`LineDecoder`] (one record per line, state such as
//! a header carried between lines); whole-document formats implement
//! [`DocumentDecoder`]. [`Format::detect`] recognises a format from the
//! first bytes of an input.

pub mod aws;
pub mod azure;
pub mod cordon;
pub mod gcp;
pub mod hubble;
pub mod netflow;
pub mod pcap;
pub mod zeek;

use std::fmt;
use std::net::IpAddr;

use crate::flow::Flow;
use crate::read::{Location, Report, Skip};

/// A decoder of one record per line.
pub trait LineDecoder: Send {
    /// Decode one line (without its newline) into zero or more flows.
    ///
    /// # Errors
    /// A [`Skip`] saying why the line is not a flow.
    fn line(&mut self, line: &str, out: &mut Vec<Flow>) -> Result<(), Skip>;
}

/// A decoder of a whole JSON document.
pub trait DocumentDecoder: Send {
    /// Decode `text`, sending each record's flows with the record's
    /// location to `emit`, and counting skipped records in `report`.
    fn document(
        &mut self,
        text: &str,
        at: &Location,
        report: &mut Report,
        emit: &mut dyn FnMut(&Location, Vec<Flow>),
    );
}

/// The input formats Cordon reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// AWS VPC Flow Logs, default or custom field order.
    Aws,
    /// GCP VPC Flow Logs from Cloud Logging, JSON lines.
    Gcp,
    /// GCP VPC Flow Logs as one document: a JSON array, or JSON objects
    /// one after another in any layout.
    GcpArray,
    /// Azure NSG (v1, v2) or VNet (v4) flow logs.
    Azure,
    /// Zeek conn.log, TSV with headers.
    ZeekTsv,
    /// Zeek conn.log, JSON lines.
    ZeekJson,
    /// Cilium Hubble flow export, JSON lines.
    Hubble,
    /// Cordon's own flow records (gateway, agent, exports), JSON lines.
    Cordon,
    /// A file of IPFIX messages one after another (RFC 5655), as IPFIX
    /// collectors and `nfcapd`-style tools store them.
    IpfixFile,
    /// A packet capture, pcap or pcapng.
    Pcap,
}

impl Format {
    /// Every format, for `--help` and errors.
    pub const ALL: [Format; 10] = [
        Format::Aws,
        Format::Gcp,
        Format::GcpArray,
        Format::Azure,
        Format::ZeekTsv,
        Format::ZeekJson,
        Format::Hubble,
        Format::Cordon,
        Format::IpfixFile,
        Format::Pcap,
    ];

    /// The name used on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Format::Aws => "aws",
            Format::Gcp => "gcp",
            Format::GcpArray => "gcp-array",
            Format::Azure => "azure",
            Format::ZeekTsv => "zeek",
            Format::ZeekJson => "zeek-json",
            Format::Hubble => "hubble",
            Format::Cordon => "cordon",
            Format::IpfixFile => "ipfix",
            Format::Pcap => "pcap",
        }
    }

    /// The format called `name`.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Recognise the format from the first bytes of an input.
    pub fn detect(head: &[u8]) -> Option<Format> {
        if pcap::capture::is_capture(head) {
            return Some(Format::Pcap);
        }
        if let [0, 10, hi, lo, ..] = head
            && u16::from_be_bytes([*hi, *lo]) >= 16
        {
            return Some(Format::IpfixFile);
        }
        let text = String::from_utf8_lossy(head);
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        if trimmed.starts_with("#separator") || trimmed.starts_with("#fields") {
            return Some(Format::ZeekTsv);
        }
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let has = |s: &str| trimmed.contains(s);
            return if has("\"flowTuples\"") {
                Some(Format::Azure)
            } else if has("\"jsonPayload\"") || (has("\"connection\"") && has("\"src_ip\"")) {
                // One object per line is JSON lines; anything else (an
                // array, pretty-printed objects) is read as a document.
                let first = trimmed.lines().next().unwrap_or("").trim_end();
                Some(if first.starts_with('{') && first.ends_with('}') {
                    Format::Gcp
                } else {
                    Format::GcpArray
                })
            } else if has("\"id.orig_h\"")
                || has("\"id_orig_h\"")
                || (has("\"id\"") && has("\"orig_h\""))
            {
                Some(Format::ZeekJson)
            } else if has("\"start_ms\"") && has("\"src_ip\"") {
                Some(Format::Cordon)
            } else if has("\"flow\"") || has("\"verdict\"") && has("\"IP\"") {
                Some(Format::Hubble)
            } else {
                None
            };
        }
        let first = trimmed.lines().next().unwrap_or("");
        let tokens: Vec<&str> = first.split_ascii_whitespace().collect();
        if tokens.iter().any(|t| *t == "srcaddr" || *t == "dstaddr") {
            return Some(Format::Aws);
        }
        if tokens.len() >= 14
            && tokens
                .first()
                .is_some_and(|v| matches!(*v, "2" | "3" | "4" | "5" | "6" | "7" | "8"))
        {
            return Some(Format::Aws);
        }
        None
    }

    /// A fresh decoder for this format.
    pub fn decoder(self) -> Decoder {
        match self {
            Format::Aws => Decoder::Lines(Box::new(aws::AwsDecoder::default())),
            Format::Gcp => Decoder::Lines(Box::new(gcp::GcpDecoder)),
            Format::GcpArray => Decoder::Document(Box::new(gcp::GcpDecoder)),
            Format::Azure => Decoder::Document(Box::new(azure::AzureDecoder)),
            Format::ZeekTsv => Decoder::Lines(Box::new(zeek::ZeekTsvDecoder::default())),
            Format::ZeekJson => Decoder::Lines(Box::new(zeek::ZeekJsonDecoder)),
            Format::Hubble => Decoder::Lines(Box::new(hubble::HubbleDecoder)),
            Format::Cordon => Decoder::Lines(Box::new(cordon::CordonDecoder)),
            Format::IpfixFile => Decoder::Messages(Box::default()),
            Format::Pcap => Decoder::Capture(Box::default()),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoder of either shape.
pub enum Decoder {
    /// One record per line.
    Lines(Box<dyn LineDecoder>),
    /// One JSON document.
    Document(Box<dyn DocumentDecoder>),
    /// Length-prefixed IPFIX messages.
    Messages(Box<netflow::NetflowDecoder>),
    /// Packets of a capture, assembled into connections.
    Capture(Box<pcap::ConnTable>),
}

/// `value` without surrounding whitespace (most values have none).
fn trimmed(value: &str) -> &str {
    let b = value.as_bytes();
    let padded = |c: Option<&u8>| c.is_some_and(u8::is_ascii_whitespace);
    if padded(b.first()) || padded(b.last()) {
        value.trim()
    } else {
        value
    }
}

/// A dotted-quad IPv4 address written the one way the standard parser
/// accepts (four decimal octets, no leading zeros), read without its
/// generality; anything else is left to the standard parser.
fn quick_ipv4(s: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|b| *b == b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let mut v: u16 = 0;
        for d in part {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u16::from(d - b'0');
        }
        *octet = u8::try_from(v).ok()?;
    }
    parts
        .next()
        .is_none()
        .then(|| std::net::Ipv4Addr::from(octets))
}

/// Parse an address field, naming the field in the error.
pub(crate) fn parse_ip(field: &str, value: &str) -> Result<IpAddr, Skip> {
    if let Some(v4) = quick_ipv4(value.as_bytes()) {
        return Ok(IpAddr::V4(v4));
    }
    trimmed(value)
        .parse::<IpAddr>()
        .map(cordon_core::canonical_ip)
        .map_err(|_| Skip::malformed(format!("`{field}` is not an IP address: `{}`", clip(value))))
}

/// Parse a number field, naming the field in the error.
pub(crate) fn parse_num<T: std::str::FromStr>(field: &str, value: &str) -> Result<T, Skip> {
    trimmed(value).parse::<T>().map_err(|_| {
        Skip::malformed(format!(
            "`{field}` is not a valid number: `{}`",
            clip(value)
        ))
    })
}

/// At most 64 characters of `s`, for error messages about outside input.
pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(64).collect();
        c.push('…');
        c
    }
}

/// The IANA number of a protocol name (`tcp`, `udp`, `ipv6-icmp`, ...) or
/// number.
pub(crate) fn protocol_number(name: &str) -> Option<u8> {
    cordon_core::Protocol::from_any_name(name).map(|p| p.0)
}

#[cfg(test)]
mod tests;
