//! From a captured frame to what a connection table needs: addresses,
//! protocol, ports, TCP flags and the IP length. Link types: Ethernet
//! (with 802.1Q/802.1ad tags), raw IP, Linux cooked v1 and v2, BSD
//! loopback. Every offset is checked: a short frame is a skip, not a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a frame carries, as far as connections go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IANA protocol.
    pub protocol: u8,
    /// Source port (0 without ports).
    pub src_port: u16,
    /// Destination port; the ICMP type for ICMP.
    pub dst_port: u16,
    /// TCP flags (0 for other protocols).
    pub tcp_flags: u8,
    /// Bytes at the IP layer, as the IP header states them.
    pub ip_bytes: u64,
    /// Bytes of application payload (after the TCP or UDP header), as the
    /// headers state them; 0 for other protocols.
    pub payload: u64,
}

/// Why a frame carries no datagram a connection can be built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotDatagram {
    /// Not IP (ARP, LLDP, spanning tree...).
    NotIp(String),
    /// A fragment after the first: its bytes are not attributed.
    LaterFragment,
    /// Shorter than its headers say, or a header that cannot be right.
    Malformed(String),
    /// A link type this reader does not know.
    LinkType(u32),
}

/// TCP FIN.
pub const TCP_FIN: u8 = 0x01;
/// TCP SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP RST.
pub const TCP_RST: u8 = 0x04;
/// TCP ACK.
pub const TCP_ACK: u8 = 0x10;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn short(what: &str) -> NotDatagram {
    NotDatagram::Malformed(format!("frame too short for its {what}"))
}

/// Parse one captured frame of link type `linktype`.
///
/// # Errors
/// [`NotDatagram`] saying why the frame makes no connection.
pub fn parse(linktype: u32, frame: &[u8]) -> Result<Datagram, NotDatagram> {
    let (ethertype, at) = match linktype {
        // Ethernet, with any number of VLAN tags.
        1 => {
            let mut at = 12;
            let mut ethertype = be16(frame, at).ok_or_else(|| short("Ethernet header"))?;
            let mut tags = 0;
            while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
                tags += 1;
                if tags > 4 {
                    return Err(NotDatagram::Malformed("more than four VLAN tags".into()));
                }
                at += 4;
                ethertype = be16(frame, at).ok_or_else(|| short("VLAN tag"))?;
            }
            (ethertype, at + 2)
        }
        // Raw IP: the version nibble says which.
        101 | 12 | 14 | 228 | 229 => match frame.first().map(|b| b >> 4) {
            Some(4) => (0x0800, 0),
            Some(6) => (0x86dd, 0),
            _ => {
                return Err(NotDatagram::Malformed(
                    "raw frame is neither IPv4 nor IPv6".into(),
                ));
            }
        },
        // Linux cooked capture v1: protocol at 14, payload at 16.
        113 => (be16(frame, 14).ok_or_else(|| short("cooked header"))?, 16),
        // Linux cooked capture v2: protocol at 0, payload at 20.
        276 => (be16(frame, 0).ok_or_else(|| short("cooked header"))?, 20),
        // BSD loopback: a host-order address family.
        0 | 108 => {
            let family = frame.get(..4).ok_or_else(|| short("loopback header"))?;
            let le = u32::from_le_bytes([family[0], family[1], family[2], family[3]]);
            let be = u32::from_be_bytes([family[0], family[1], family[2], family[3]]);
            let ethertype = if le == 2 || be == 2 {
                0x0800
            } else if [24, 28, 30].contains(&le) || [24, 28, 30].contains(&be) {
                0x86dd
            } else {
                return Err(NotDatagram::NotIp(format!("loopback family {le}")));
            };
            (ethertype, 4)
        }
        other => return Err(NotDatagram::LinkType(other)),
    };
    let ip = frame.get(at..).unwrap_or_default();
    match ethertype {
        0x0800 => ipv4(ip),
        0x86dd => ipv6(ip),
        0x0806 => Err(NotDatagram::NotIp("ARP".into())),
        other => Err(NotDatagram::NotIp(format!("ethertype 0x{other:04x}"))),
    }
}

fn ipv4(b: &[u8]) -> Result<Datagram, NotDatagram> {
    let first = *b.first().ok_or_else(|| short("IPv4 header"))?;
    if first >> 4 != 4 {
        return Err(NotDatagram::Malformed(format!(
            "IPv4 header with version {}",
            first >> 4
        )));
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || b.len() < ihl {
        return Err(short("IPv4 header"));
    }
    let total = be16(b, 2).ok_or_else(|| short("IPv4 header"))?;
    let fragment = be16(b, 6).ok_or_else(|| short("IPv4 header"))?;
    if fragment & 0x1fff != 0 {
        return Err(NotDatagram::LaterFragment);
    }
    let protocol = b[9];
    let src = IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]));
    transport(
        src,
        dst,
        protocol,
        b.get(ihl..).unwrap_or_default(),
        (u64::from(total), ihl as u64),
    )
}

fn ipv6(b: &[u8]) -> Result<Datagram, NotDatagram> {
    if b.len() < 40 {
        return Err(short("IPv6 header"));
    }
    if b[0] >> 4 != 6 {
        return Err(NotDatagram::Malformed(format!(
            "IPv6 header with version {}",
            b[0] >> 4
        )));
    }
    let payload = be16(b, 4).ok_or_else(|| short("IPv6 header"))?;
    let mut next = b[6];
    let mut src = [0u8; 16];
    src.copy_from_slice(&b[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&b[24..40]);
    let (src, dst) = (
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
    );
    let mut at = 40;
    // Extension headers, at most a handful.
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                let len = usize::from(*b.get(at + 1).ok_or_else(|| short("extension header"))?);
                next = *b.get(at).ok_or_else(|| short("extension header"))?;
                at += (len + 1) * 8;
            }
            51 => {
                let len = usize::from(*b.get(at + 1).ok_or_else(|| short("AH header"))?);
                next = *b.get(at).ok_or_else(|| short("AH header"))?;
                at += (len + 2) * 4;
            }
            44 => {
                let offset = be16(b, at + 2).ok_or_else(|| short("fragment header"))?;
                if offset & 0xfff8 != 0 {
                    return Err(NotDatagram::LaterFragment);
                }
                next = *b.get(at).ok_or_else(|| short("fragment header"))?;
                at += 8;
            }
            _ => break,
        }
    }
    transport(
        src,
        dst,
        next,
        b.get(at..).unwrap_or_default(),
        (40 + u64::from(payload), at as u64),
    )
}

/// The transport header in `b`; `ip_bytes` is the IP length the IP header
/// states and `ip_header` how much of it the IP headers take.
fn transport(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    b: &[u8],
    (ip_bytes, ip_header): (u64, u64),
) -> Result<Datagram, NotDatagram> {
    let segment = ip_bytes.saturating_sub(ip_header);
    let mut d = Datagram {
        src,
        dst,
        protocol,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        ip_bytes,
        payload: 0,
    };
    match protocol {
        6 => {
            d.src_port = be16(b, 0).ok_or_else(|| short("TCP header"))?;
            d.dst_port = be16(b, 2).ok_or_else(|| short("TCP header"))?;
            d.tcp_flags = *b.get(13).ok_or_else(|| short("TCP header"))?;
            let offset = u64::from(*b.get(12).ok_or_else(|| short("TCP header"))? >> 4) * 4;
            d.payload = segment.saturating_sub(offset.max(20));
        }
        17 | 132 => {
            d.src_port = be16(b, 0).ok_or_else(|| short("UDP header"))?;
            d.dst_port = be16(b, 2).ok_or_else(|| short("UDP header"))?;
            d.payload = segment.saturating_sub(8);
        }
        1 | 58 => {
            d.dst_port = u16::from(*b.first().ok_or_else(|| short("ICMP header"))?);
        }
        _ => {}
    }
    Ok(d)
}
