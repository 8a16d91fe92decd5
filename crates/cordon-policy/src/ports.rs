//! Protocols and port ranges: `tcp/443`, `udp/53`, `tcp/8000-8100`, `icmp`, `any`.

use std::fmt;

pub use cordon_core::Protocol;

/// What a rule's `ports` entry matches: a protocol (or any) and an inclusive
/// port range (the whole range for protocols without ports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    /// The protocol, or `None` for any protocol.
    pub protocol: Option<Protocol>,
    /// First port, inclusive.
    pub first: u16,
    /// Last port, inclusive.
    pub last: u16,
}

impl PortRange {
    /// Every protocol and port.
    pub const ANY: PortRange = PortRange {
        protocol: None,
        first: 0,
        last: u16::MAX,
    };

    /// Whether `(protocol, port)` is in this range. For protocols without
    /// ports the port is ignored.
    #[inline]
    pub fn matches(&self, protocol: Protocol, port: u16) -> bool {
        match self.protocol {
            None => true,
            Some(p) if p != protocol => false,
            Some(p) if !p.has_ports() => true,
            Some(_) => self.first <= port && port <= self.last,
        }
    }

    /// Whether every (protocol, port) this range matches is also matched by
    /// `other`.
    pub fn is_within(&self, other: &PortRange) -> bool {
        match (self.protocol, other.protocol) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => a == b && other.first <= self.first && self.last <= other.last,
        }
    }

    /// Whether the whole port space of its protocol is covered.
    pub fn is_all_ports(&self) -> bool {
        self.first == 0 && self.last == u16::MAX
    }

    /// Parse one entry of `ports`.
    ///
    /// # Errors
    /// A message saying what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<PortRange, cordon_core::InvalidValue> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("any") {
            return Ok(PortRange::ANY);
        }
        let (proto_text, range_text) = match text.split_once('/') {
            Some((p, r)) => (p, Some(r)),
            None => (text, None),
        };
        let Some(protocol) = Protocol::from_name(proto_text) else {
            let hint = if proto_text.chars().all(|c| c.is_ascii_digit()) && !proto_text.is_empty() {
                format!("name the protocol: `tcp/{proto_text}` or `udp/{proto_text}`")
            } else {
                "protocols are tcp, udp, sctp, icmp, icmpv6, or `any`".to_string()
            };
            return Err(cordon_core::InvalidValue::new(
                format!("invalid port `{text}`"),
                hint,
            ));
        };
        let Some(range_text) = range_text else {
            return Ok(PortRange {
                protocol: Some(protocol),
                first: 0,
                last: u16::MAX,
            });
        };
        if !protocol.has_ports() {
            return Err(cordon_core::InvalidValue::new(
                format!("invalid port `{text}`: {protocol} has no ports"),
                format!("write `{protocol}`"),
            ));
        }
        let port = |s: &str| -> Result<u16, cordon_core::InvalidValue> {
            s.parse::<u16>().map_err(|_| {
                cordon_core::InvalidValue::new(
                    format!("invalid port `{text}`: `{s}` is not a port number"),
                    "ports are whole numbers from 0 to 65535",
                )
            })
        };
        let (first, last) = match range_text.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(range_text)?;
                (p, p)
            }
        };
        if first > last {
            return Err(cordon_core::InvalidValue::new(
                format!("invalid port range `{text}`: {first} is greater than {last}"),
                format!("write `{protocol}/{last}-{first}`"),
            ));
        }
        Ok(PortRange {
            protocol: Some(protocol),
            first,
            last,
        })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            None => f.write_str("any"),
            Some(p) if !p.has_ports() || self.is_all_ports() => write!(f, "{p}"),
            Some(p) if self.first == self.last => write!(f, "{p}/{}", self.first),
            Some(p) => write!(f, "{p}/{}-{}", self.first, self.last),
        }
    }
}
