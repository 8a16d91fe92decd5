//! Reading packet captures: the classic pcap format (microsecond and
//! nanosecond, either byte order) and pcapng (section, interface and
//! enhanced/simple packet blocks), one packet at a time, every length
//! checked against a limit before anything is allocated.

use std::io::Read;

use crate::read::read_full;

/// The largest packet or block accepted (the largest snap length tools
/// write is 262,144 bytes).
pub const MAX_PACKET: usize = 256 * 1024 + 64;

/// One captured packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// 1 for the first packet of the capture.
    pub number: u64,
    /// Byte offset of the packet's record in the capture.
    pub offset: u64,
    /// Capture time, microseconds since the epoch.
    pub time_us: i64,
    /// The link type of the interface it was captured on.
    pub linktype: u32,
    /// The bytes captured (possibly fewer than were on the wire).
    pub data: Vec<u8>,
    /// The packet's length on the wire.
    pub wire_len: u32,
}

/// Why a capture cannot be read on.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file does not start like a pcap or pcapng capture.
    #[error("not a pcap or pcapng capture (starts with {0:02x?})")]
    NotACapture([u8; 4]),
    /// Reading failed.
    #[error("at byte {offset}: {source}")]
    Io {
        /// Where.
        offset: u64,
        /// Why.
        source: std::io::Error,
    },
    /// A record or block that cannot be right; nothing after it aligns.
    #[error("at byte {offset} (packet {packet}): {what}")]
    Malformed {
        /// Where the record starts.
        offset: u64,
        /// The packet number it would have been.
        packet: u64,
        /// What is wrong.
        what: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Classic pcap; nanosecond timestamps when true.
    Pcap { nanos: bool },
    /// pcapng.
    PcapNg,
}

/// An interface of a pcapng section.
#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    /// Timestamp units per second.
    units_per_second: u64,
}

/// Reads packets from a capture.
pub struct CaptureReader<R> {
    input: R,
    kind: Kind,
    big_endian: bool,
    /// Classic pcap's link type.
    linktype: u32,
    interfaces: Vec<Interface>,
    offset: u64,
    packets: u64,
}

/// Whether `head` starts like a capture.
pub fn is_capture(head: &[u8]) -> bool {
    matches!(
        head.get(..4),
        Some(
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x0a, 0x0d, 0x0d, 0x0a]
        )
    )
}

impl<R: Read> CaptureReader<R> {
    /// A reader over `input`, after its file header.
    ///
    /// # Errors
    /// Not a capture, or the header cannot be read.
    pub fn new(mut input: R) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        let n = read_full(&mut input, &mut magic)
            .map_err(|source| CaptureError::Io { offset: 0, source })?;
        if n < 4 {
            return Err(CaptureError::NotACapture(magic));
        }
        let mut reader = CaptureReader {
            input,
            kind: Kind::PcapNg,
            big_endian: false,
            linktype: 1,
            interfaces: Vec::new(),
            offset: 4,
            packets: 0,
        };
        match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => reader.kind = Kind::Pcap { nanos: false },
            [0xa1, 0xb2, 0xc3, 0xd4] => {
                reader.kind = Kind::Pcap { nanos: false };
                reader.big_endian = true;
            }
            [0x4d, 0x3c, 0xb2, 0xa1] => reader.kind = Kind::Pcap { nanos: true },
            [0xa1, 0xb2, 0x3c, 0x4d] => {
                reader.kind = Kind::Pcap { nanos: true };
                reader.big_endian = true;
            }
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                let mut length = [0u8; 4];
                reader.fill(&mut length, "section header")?;
                reader.section_rest(0, length)?;
                return Ok(reader);
            }
            other => return Err(CaptureError::NotACapture(other)),
        }
        let mut rest = [0u8; 20];
        reader.fill(&mut rest, "file header")?;
        reader.linktype = reader.u32_at(&rest, 16) & 0x0fff_ffff;
        Ok(reader)
    }

    fn malformed(&self, offset: u64, what: impl Into<String>) -> CaptureError {
        CaptureError::Malformed {
            offset,
            packet: self.packets + 1,
            what: what.into(),
        }
    }

    /// Fill `buf` exactly; the end of the input inside it is malformed.
    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), CaptureError> {
        let at = self.offset;
        let n = read_full(&mut self.input, buf)
            .map_err(|source| CaptureError::Io { offset: at, source })?;
        self.offset += n as u64;
        if n < buf.len() {
            return Err(self.malformed(
                at,
                format!(
                    "the capture ends inside a {what} ({n} of {} bytes)",
                    buf.len()
                ),
            ));
        }
        Ok(())
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let v = bytes_at(b, at);
        if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    fn u16_at(&self, b: &[u8], at: usize) -> u16 {
        let v = bytes_at(b, at);
        if self.big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }

    /// The rest of a section header block starting at `start`, whose
    /// length field (in the section's byte order, not known yet) is
    /// `length`: the byte-order magic, then the options, skipped.
    fn section_rest(&mut self, start: u64, length: [u8; 4]) -> Result<(), CaptureError> {
        let mut bom = [0u8; 4];
        self.fill(&mut bom, "section header")?;
        self.big_endian = match bom {
            [0x1a, 0x2b, 0x3c, 0x4d] => true,
            [0x4d, 0x3c, 0x2b, 0x1a] => false,
            _ => {
                return Err(self.malformed(start, "section header without its byte-order magic"));
            }
        };
        let total = self.u32_at(&length, 0) as usize;
        if !(28..=MAX_PACKET).contains(&total) || !total.is_multiple_of(4) {
            return Err(self.malformed(start, format!("section header of {total} bytes")));
        }
        let mut rest = vec![0u8; total - 12];
        self.fill(&mut rest, "section header")?;
        // A new section starts its own interfaces.
        self.interfaces.clear();
        Ok(())
    }

    /// The next packet, or `None` at the end of the capture.
    ///
    /// # Errors
    /// A record that cannot be right, or a read failure; what came before
    /// stays read.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, CaptureError> {
        match self.kind {
            Kind::Pcap { nanos } => self.next_pcap(nanos),
            Kind::PcapNg => self.next_block(),
        }
    }

    /// The next record's header, or `None` when the capture ends cleanly
    /// before it; ending inside it is malformed.
    fn record_header<const N: usize>(
        &mut self,
        what: &str,
    ) -> Result<Option<[u8; N]>, CaptureError> {
        let start = self.offset;
        let mut head = [0u8; N];
        let n = read_full(&mut self.input, &mut head).map_err(|source| CaptureError::Io {
            offset: start,
            source,
        })?;
        self.offset += n as u64;
        match n {
            0 => Ok(None),
            n if n < N => Err(self.malformed(
                start,
                format!("the capture ends inside a {what} ({n} of {N} bytes)"),
            )),
            _ => Ok(Some(head)),
        }
    }

    fn next_pcap(&mut self, nanos: bool) -> Result<Option<Packet>, CaptureError> {
        let start = self.offset;
        let Some(head) = self.record_header::<16>("packet header")? else {
            return Ok(None);
        };
        let seconds = i64::from(self.u32_at(&head, 0));
        let fraction = i64::from(self.u32_at(&head, 4));
        let captured = self.u32_at(&head, 8) as usize;
        let wire_len = self.u32_at(&head, 12);
        if captured > MAX_PACKET {
            return Err(self.malformed(start, format!("a packet of {captured} captured bytes")));
        }
        let mut data = vec![0u8; captured];
        self.fill(&mut data, "packet")?;
        self.packets += 1;
        let micros = if nanos { fraction / 1000 } else { fraction };
        Ok(Some(Packet {
            number: self.packets,
            offset: start,
            time_us: seconds * 1_000_000 + micros,
            linktype: self.linktype,
            data,
            wire_len,
        }))
    }

    fn next_block(&mut self) -> Result<Option<Packet>, CaptureError> {
        loop {
            let start = self.offset;
            let Some(head) = self.record_header::<8>("block header")? else {
                return Ok(None);
            };
            if head[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                // A new section: its byte order may differ.
                let mut length = [0u8; 4];
                length.copy_from_slice(&head[4..8]);
                self.section_rest(start, length)?;
                continue;
            }
            let kind = self.u32_at(&head, 0);
            let total = self.u32_at(&head, 4) as usize;
            if !(12..=MAX_PACKET).contains(&total) || !total.is_multiple_of(4) {
                return Err(self.malformed(start, format!("a block of {total} bytes")));
            }
            let mut body = vec![0u8; total - 8];
            self.fill(&mut body, "block")?;
            let body = body.get(..total - 12).unwrap_or_default();
            match kind {
                // Interface description.
                1 => {
                    let linktype = u32::from(self.u16_at(body, 0));
                    let mut units = 1_000_000u64;
                    // Options after link type, reserved and snap length.
                    let mut at = 8;
                    while at + 4 <= body.len() {
                        let code = self.u16_at(body, at);
                        let len = usize::from(self.u16_at(body, at + 2));
                        if code == 0 {
                            break;
                        }
                        if code == 9 && len >= 1 {
                            let r = body.get(at + 4).copied().unwrap_or(6);
                            let exp = u32::from(r & 0x7f).min(18);
                            units = if r & 0x80 != 0 {
                                1u64 << exp.min(60)
                            } else {
                                10u64.pow(exp)
                            };
                        }
                        at += 4 + len.div_ceil(4) * 4;
                    }
                    self.interfaces.push(Interface {
                        linktype,
                        units_per_second: units.max(1),
                    });
                }
                // Enhanced packet.
                6 => {
                    if body.len() < 20 {
                        return Err(
                            self.malformed(start, "enhanced packet block shorter than its header")
                        );
                    }
                    let interface = self.u32_at(body, 0) as usize;
                    let Some(iface) = self.interfaces.get(interface).copied() else {
                        return Err(self.malformed(
                            start,
                            format!("a packet on interface {interface}, which was never described"),
                        ));
                    };
                    let ticks =
                        (u64::from(self.u32_at(body, 4)) << 32) | u64::from(self.u32_at(body, 8));
                    let captured = self.u32_at(body, 12) as usize;
                    let wire_len = self.u32_at(body, 16);
                    let Some(data) = body.get(20..20 + captured) else {
                        return Err(self.malformed(
                            start,
                            format!("a packet of {captured} bytes in a block of {total}"),
                        ));
                    };
                    self.packets += 1;
                    let per = iface.units_per_second;
                    let time_us = i64::try_from(
                        (u128::from(ticks) * 1_000_000 / u128::from(per)).min(i64::MAX as u128),
                    )
                    .unwrap_or(i64::MAX);
                    return Ok(Some(Packet {
                        number: self.packets,
                        offset: start,
                        time_us,
                        linktype: iface.linktype,
                        data: data.to_vec(),
                        wire_len,
                    }));
                }
                // Simple packet: no time, the first interface.
                3 => {
                    let Some(iface) = self.interfaces.first().copied() else {
                        return Err(
                            self.malformed(start, "a simple packet block before any interface")
                        );
                    };
                    let wire_len = self.u32_at(body, 0);
                    let captured = (wire_len as usize).min(body.len().saturating_sub(4));
                    let data = body.get(4..4 + captured).unwrap_or_default().to_vec();
                    self.packets += 1;
                    return Ok(Some(Packet {
                        number: self.packets,
                        offset: start,
                        time_us: 0,
                        linktype: iface.linktype,
                        data,
                        wire_len,
                    }));
                }
                // Statistics, name resolution, custom blocks: not packets.
                _ => {}
            }
        }
    }
}

/// `N` bytes of `b` at `at`, zeros where `b` is shorter (callers check
/// lengths first; this only keeps a short read from panicking).
fn bytes_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut v = [0u8; N];
    if let Some(s) = b.get(at..at + N) {
        v.copy_from_slice(s);
    }
    v
}
