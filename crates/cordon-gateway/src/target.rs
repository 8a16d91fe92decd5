//! What a client asks to reach: a host (a normalised hostname or an IP
//! literal) and a port, parsed strictly so that one destination has one
//! spelling.
//!
//! Odd IPv4 spellings (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`) are
//! neither names nor addresses here: many resolvers and libraries read them
//! as IPv4 addresses, so letting them through as names would let a client
//! reach an address the guard never saw. [`Hostname::parse`] refuses names
//! whose last label looks numeric, and only the standard dotted-quad and
//! RFC 4291 forms are addresses.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use cordon_policy::Hostname;

/// The host part of a target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A hostname, normalised (IDNA, lowercase, no trailing dot).
    Name(Hostname),
    /// An IP literal (IPv4-mapped IPv6 given as IPv4).
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(h) => f.write_str(h.as_str()),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A destination: host and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The host.
    pub host: Host,
    /// The port (never 0).
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Why a target was refused before any decision.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Nothing to parse.
    #[error("empty target")]
    Empty,
    /// The port is missing where one is required.
    #[error("`{0}` has no port")]
    MissingPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("`{0}` has an invalid port (1 to 65535)")]
    BadPort(String),
    /// The host is neither a hostname nor a standard IP literal.
    #[error("`{target}` is not a valid host: {reason}")]
    BadHost {
        /// The target as given.
        target: String,
        /// Why.
        reason: String,
    },
}

/// The longest target accepted (a hostname is at most 253 bytes).
const MAX_TARGET: usize = 300;

/// Parse `host:port`, `[v6]:port`, or (when `default_port` is given)
/// `host` or `[v6]`. A bare IPv6 literal without brackets is accepted when
/// the whole text is one (it then needs `default_port`).
///
/// # Errors
/// [`TargetError`] saying what is wrong.
pub fn parse_authority(text: &str, default_port: Option<u16>) -> Result<Target, TargetError> {
    if text.is_empty() {
        return Err(TargetError::Empty);
    }
    if text.len() > MAX_TARGET {
        return Err(bad(text, "too long"));
    }
    if let Ok(v6) = text.parse::<Ipv6Addr>() {
        let port = default_port.ok_or_else(|| TargetError::MissingPort(text.to_string()))?;
        return Ok(Target {
            host: Host::Ip(canonical(IpAddr::V6(v6))),
            port,
        });
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| bad(text, "unclosed `[`"))?;
        let v6: Ipv6Addr = inside
            .parse()
            .map_err(|_| bad(text, "brackets must hold an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad(text, "text after `]`"))?,
            ),
        };
        (Host::Ip(canonical(IpAddr::V6(v6))), port)
    } else {
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        if host.contains(':') {
            return Err(bad(text, "an IPv6 address needs brackets with a port"));
        }
        (parse_host(text, host)?, port)
    };
    let port = match port {
        None => default_port.ok_or_else(|| TargetError::MissingPort(text.to_string()))?,
        Some(p) => parse_port(p).ok_or_else(|| TargetError::BadPort(text.to_string()))?,
    };
    Ok(Target { host, port })
}

/// Parse a host without a port (a Host header's host, a TLS server name).
///
/// # Errors
/// [`TargetError::BadHost`].
pub fn parse_host(target: &str, host: &str) -> Result<Host, TargetError> {
    if host.is_empty() {
        return Err(bad(target, "empty host"));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && host.contains('.') {
        // Dotted decimal: only the standard four-part form with no leading
        // zeros (Rust's parser is that strict) is an address.
        return host
            .parse::<std::net::Ipv4Addr>()
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .map_err(|_| bad(target, "not a standard dotted-quad IPv4 address"));
    }
    Hostname::parse(host)
        .map(Host::Name)
        .map_err(|e| bad(target, &e.to_string()))
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|p| *p != 0)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn bad(target: &str, reason: &str) -> TargetError {
    TargetError::BadHost {
        target: target.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests;
