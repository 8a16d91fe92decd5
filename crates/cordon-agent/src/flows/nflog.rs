//! Packets the ruleset denied or audited, from the kernel's NFLOG group:
//! read as the pcap stream `tcpdump -i nflog:GROUP -w -` writes (link type
//! NFLOG, whose records keep the rule's log prefix), so the verdict and
//! the rule of each logged packet are known.
//!
//! Everything here comes from outside: every length is checked, a record
//! larger than [`MAX_RECORD`] ends the stream with an error, and nothing
//! read is trusted to be well formed.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The largest record accepted (tcpdump runs with a 256-byte snap length;
/// this bounds memory against a stream that lies).
pub const MAX_RECORD: usize = 64 * 1024;

/// pcap's link type for NFLOG.
const LINKTYPE_NFLOG: u32 = 239;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;

/// One logged packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// Capture time, epoch ms.
    pub time_ms: i64,
    /// The rule's log prefix (`cordon deny RULE: `).
    pub prefix: String,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol.
    pub protocol: u8,
    /// Source port (0 without ports).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// The packet's IP length.
    pub length: u64,
}

impl Logged {
    /// The verdict and rule named by the prefix: `("deny", "rule")` or
    /// `("would-deny", "default")`.
    pub fn verdict(&self) -> Option<(&str, &str)> {
        let rest = self.prefix.strip_prefix("cordon ")?;
        let (verdict, rule) = rest.split_once(' ')?;
        Some((verdict, rule.trim_end().trim_end_matches(':')))
    }
}

/// Why the stream could not be read further.
#[derive(Debug, thiserror::Error)]
pub enum NflogError {
    /// Reading failed.
    #[error("reading the NFLOG stream: {0}")]
    Io(#[from] std::io::Error),
    /// Not a pcap stream of NFLOG records.
    #[error("NFLOG stream at byte {at}: {what}")]
    Format {
        /// Byte offset in the stream.
        at: u64,
        /// What was wrong.
        what: String,
    },
}

/// Reads logged packets from a pcap stream.
pub struct Reader<R> {
    inner: R,
    big_endian: bool,
    nanos: bool,
    at: u64,
}

impl<R: Read> Reader<R> {
    /// Read the pcap header.
    ///
    /// # Errors
    /// When the stream is not pcap with NFLOG records.
    pub fn new(mut inner: R) -> Result<Self, NflogError> {
        let mut header = [0u8; 24];
        inner.read_exact(&mut header)?;
        let magic = [header[0], header[1], header[2], header[3]];
        let (big_endian, nanos) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            _ => {
                return Err(NflogError::Format {
                    at: 0,
                    what: "not a pcap stream".into(),
                });
            }
        };
        let r = Reader {
            inner,
            big_endian,
            nanos,
            at: 24,
        };
        let link = r.u32(&header[20..24]);
        if link & 0x0fff_ffff != LINKTYPE_NFLOG {
            return Err(NflogError::Format {
                at: 20,
                what: format!("link type {link}, not NFLOG ({LINKTYPE_NFLOG})"),
            });
        }
        Ok(r)
    }

    fn u32(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    /// The next logged packet; `Ok(None)` at the end of the stream.
    /// Records that are not IP packets with a prefix are skipped.
    ///
    /// # Errors
    /// A read error or a record that lies about its length.
    pub fn next_packet(&mut self) -> Result<Option<Logged>, NflogError> {
        loop {
            let mut header = [0u8; 16];
            match self.inner.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            let secs = i64::from(self.u32(&header[0..4]));
            let frac = i64::from(self.u32(&header[4..8]));
            let len = self.u32(&header[8..12]) as usize;
            if len > MAX_RECORD {
                return Err(NflogError::Format {
                    at: self.at + 8,
                    what: format!("record of {len} bytes (at most {MAX_RECORD})"),
                });
            }
            let mut record = vec![0u8; len];
            self.inner.read_exact(&mut record)?;
            self.at += 16 + len as u64;
            let time_ms = secs * 1000
                + if self.nanos {
                    frac / 1_000_000
                } else {
                    frac / 1000
                };
            if let Some(p) = parse_record(&record, time_ms) {
                return Ok(Some(p));
            }
        }
    }
}

/// One NFLOG record: a 4-byte header, then type-length-value attributes
/// (host byte order, each padded to 4 bytes).
pub fn parse_record(record: &[u8], time_ms: i64) -> Option<Logged> {
    let mut at = 4;
    let mut prefix = None;
    let mut payload = None;
    while at + 4 <= record.len() {
        let len = usize::from(u16::from_le_bytes([record[at], record[at + 1]]));
        let kind = u16::from_le_bytes([record[at + 2], record[at + 3]]);
        if len < 4 {
            return None;
        }
        let value = record.get(at + 4..at + len)?;
        match kind {
            NFULA_PREFIX => {
                let text = value.split(|b| *b == 0).next().unwrap_or(&[]);
                prefix = Some(String::from_utf8_lossy(text).into_owned());
            }
            NFULA_PAYLOAD => payload = Some(value),
            _ => {}
        }
        at += (len + 3) & !3;
    }
    let (src, dst, protocol, sport, dport, length) = parse_ip(payload?)?;
    Some(Logged {
        time_ms,
        prefix: prefix?,
        src,
        dst,
        protocol,
        sport,
        dport,
        length,
    })
}

type Header = (IpAddr, IpAddr, u8, u16, u16, u64);

/// The upper-layer protocol of an IPv6 packet and its header: past
/// hop-by-hop, routing, destination options and fragment headers (at
/// most eight; a truncated chain leaves the last header reached).
fn skip_extension_headers(mut next: u8, mut rest: &[u8]) -> (u8, &[u8]) {
    for _ in 0..8 {
        let len = match next {
            // Hop-by-hop, routing, destination options: 8-octet units
            // after the first 8.
            0 | 43 | 60 => match rest.get(1) {
                Some(units) => 8 + 8 * usize::from(*units),
                None => break,
            },
            // Fragment: always 8.
            44 => 8,
            _ => break,
        };
        let (Some(header), Some(after)) = (rest.first(), rest.get(len..)) else {
            break;
        };
        next = *header;
        rest = after;
    }
    (next, rest)
}

fn parse_ip(p: &[u8]) -> Option<Header> {
    let version = p.first()? >> 4;
    let (src, dst, protocol, rest, length): (IpAddr, IpAddr, u8, &[u8], u64) = match version {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            if ihl < 20 {
                return None;
            }
            let src = Ipv4Addr::new(*p.get(12)?, *p.get(13)?, *p.get(14)?, *p.get(15)?);
            let dst = Ipv4Addr::new(*p.get(16)?, *p.get(17)?, *p.get(18)?, *p.get(19)?);
            let length = u64::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
            (
                src.into(),
                dst.into(),
                *p.get(9)?,
                p.get(ihl..).unwrap_or(&[]),
                length,
            )
        }
        6 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(p.get(8..24)?);
            let mut b = [0u8; 16];
            b.copy_from_slice(p.get(24..40)?);
            let length = 40 + u64::from(u16::from_be_bytes([*p.get(4)?, *p.get(5)?]));
            let (protocol, rest) = skip_extension_headers(*p.get(6)?, p.get(40..).unwrap_or(&[]));
            (
                Ipv6Addr::from(a).into(),
                Ipv6Addr::from(b).into(),
                protocol,
                rest,
                length,
            )
        }
        _ => return None,
    };
    let (sport, dport) = if matches!(protocol, 6 | 17 | 132) && rest.len() >= 4 {
        (
            u16::from_be_bytes([rest[0], rest[1]]),
            u16::from_be_bytes([rest[2], rest[3]]),
        )
    } else {
        (0, 0)
    };
    Some((src, dst, protocol, sport, dport, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = ((value.len() + 4) as u16).to_le_bytes().to_vec();
        v.extend(kind.to_le_bytes());
        v.extend(value);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }

    fn record(prefix: &str) -> Vec<u8> {
        let mut ip = vec![0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip.extend([203, 0, 113, 66, 10, 0, 2, 10]);
        ip.extend(40000u16.to_be_bytes());
        ip.extend(5432u16.to_be_bytes());
        let mut r = vec![2, 0, 0, 100];
        r.extend(tlv(NFULA_PREFIX, format!("{prefix}\0").as_bytes()));
        r.extend(tlv(NFULA_PAYLOAD, &ip));
        r
    }

    #[test]
    fn a_stream_of_logged_packets() {
        let mut stream = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        stream.extend(256u32.to_le_bytes());
        stream.extend(LINKTYPE_NFLOG.to_le_bytes());
        for prefix in ["cordon deny default: ", "cordon would-deny no-admin: "] {
            let r = record(prefix);
            stream.extend(1_700_000_000u32.to_le_bytes());
            stream.extend(500_000u32.to_le_bytes());
            stream.extend((r.len() as u32).to_le_bytes());
            stream.extend((r.len() as u32).to_le_bytes());
            stream.extend(r);
        }
        let mut reader = Reader::new(&stream[..]).unwrap();
        let a = reader.next_packet().unwrap().unwrap();
        assert_eq!(a.verdict(), Some(("deny", "default")));
        assert_eq!(
            (a.sport, a.dport, a.protocol, a.length),
            (40000, 5432, 6, 60)
        );
        assert_eq!(a.time_ms, 1_700_000_000_500);
        let b = reader.next_packet().unwrap().unwrap();
        assert_eq!(b.verdict(), Some(("would-deny", "no-admin")));
        assert!(reader.next_packet().unwrap().is_none());
        // A record that claims to be huge is refused, not allocated.
        let mut lying = stream[..24].to_vec();
        lying.extend([0u8; 8]);
        lying.extend(u32::MAX.to_le_bytes());
        lying.extend([0u8; 4]);
        assert!(Reader::new(&lying[..]).unwrap().next_packet().is_err());
        assert!(Reader::new(&b"not pcap at all, really"[..]).is_err());
    }

    #[test]
    fn ipv6_extension_headers_are_walked_to_the_transport_header() {
        // Hop-by-hop (router alert, one 8-byte unit) then ICMPv6 (58).
        let mut packet = vec![0x60, 0, 0, 0, 0, 16, 0, 1];
        packet.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        packet.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16]);
        packet.extend_from_slice(&[58, 0, 5, 2, 0, 0, 1, 0]);
        packet.extend_from_slice(&[143, 0, 0, 0, 0, 0, 0, 1]);
        let header = parse_ip(&packet).unwrap();
        assert_eq!(header.2, 58);
        // A chain cut short keeps the last protocol reached.
        assert_eq!(skip_extension_headers(0, &[58]).0, 0);
        assert_eq!(
            skip_extension_headers(44, &[6, 0, 0, 0, 0, 0, 0, 0, 1, 2]).0,
            6
        );
    }

    #[test]
    fn truncated_records_are_skipped() {
        let whole = record("cordon deny x: ");
        assert!(parse_record(&whole, 0).is_some(), "the whole record parses");
        for cut in 0..whole.len() {
            assert!(
                parse_record(&whole[..cut], 0).is_none(),
                "a record cut after {cut} of {} bytes is skipped",
                whole.len()
            );
        }
    }
}
