//! Flows stored in blocks: a few thousand flows encoded together in one
//! compact binary value, with the strings of the block (groups, workloads,
//! verdicts, interface ids) kept once in a dictionary.
//!
//! One database row per block instead of one per flow is what lets the
//! embedded store take flows as fast as they are parsed: SQLite writes a
//! large value at sequential speed, while a row per flow costs three b-tree
//! insertions each. Blocks are decoded with every length checked, so a
//! damaged database yields an error, not a panic.

use rustc_hash::FxHashMap as HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use std::borrow::Cow;
use std::cell::OnceCell;

use cordon_flow::{Direction, Enrichment, Flow, FlowSource, Name, Names, Observed, Orientation};

/// Flows per block.
pub const BLOCK: usize = 4096;

/// Version 2 added a byte of flags after the packed byte (bit 0: the
/// record was turned around); version 1 blocks carried that as the
/// attribute `oriented=reply` and are still read. Version 3 keeps each
/// `key=value` piece of the attributes in the dictionary on its own (a
/// count, then a reference per piece) instead of the whole attribute text:
/// a Zeek record's unique connection id no longer makes every other
/// attribute of the record unique too. Versions 1 and 2 are still read.
const FORMAT_VERSION: u8 = 3;

/// Sources by their stored number: append only, never reorder.
const SOURCES: [FlowSource; 10] = FlowSource::ALL;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Writer<'a> {
    out: Vec<u8>,
    /// Each distinct string of the block with its index plus one.
    dict: HashMap<Cow<'a, str>, u64>,
    /// The distinct strings in the order of their indexes.
    order: Vec<Cow<'a, str>>,
    /// Reused to join a group list before looking it up.
    scratch: String,
    /// Dictionary index of each shared group list seen, by its address.
    lists: HashMap<usize, u64>,
    /// The references of each shared enrichment seen, by its address.
    enrichments: HashMap<usize, [u64; 7]>,
    /// Reused for the references of one flow's attribute pieces.
    pieces: Vec<u64>,
}

impl<'a> Writer<'a> {
    /// Index of `s` in the dictionary, plus one (0 means "none").
    fn string(&mut self, s: Option<&'a str>) -> u64 {
        let Some(s) = s else { return 0 };
        if let Some(i) = self.dict.get(s) {
            return *i;
        }
        self.add(Cow::Borrowed(s))
    }

    fn add(&mut self, s: Cow<'a, str>) -> u64 {
        let i = self.order.len() as u64 + 1;
        self.dict.insert(s.clone(), i);
        self.order.push(s);
        i
    }

    /// Index of the comma-joined `names`, copied only when new. Lists are
    /// shared between flows, so a list already seen is found by address.
    fn list(&mut self, names: Option<&'a Names>) -> u64 {
        let Some(names) = names else { return 0 };
        let address = names.as_ptr() as usize;
        if let Some(i) = self.lists.get(&address) {
            return *i;
        }
        let i = self.joined(names);
        // The flows outlive the writer, so the address stays theirs.
        self.lists.insert(address, i);
        i
    }

    fn joined(&mut self, names: &[Name]) -> u64 {
        self.scratch.clear();
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                self.scratch.push(',');
            }
            self.scratch.push_str(n);
        }
        if let Some(i) = self.dict.get(self.scratch.as_str()) {
            return *i;
        }
        self.add(Cow::Owned(self.scratch.clone()))
    }
}

fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend(v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend(v6.octets());
        }
    }
}

/// Encode `flows` (at most a few thousand) as one block.
pub fn encode(flows: &[Flow]) -> Vec<u8> {
    let base = flows.iter().map(|f| f.start_ms).min().unwrap_or(0);
    let mut w = Writer {
        out: Vec::with_capacity(flows.len() * 48),
        // A Zeek block has a connection id per flow, a cloud one a handful
        // of strings: room for the first keeps the table from regrowing.
        dict: HashMap::with_capacity_and_hasher(flows.len() + 64, Default::default()),
        order: Vec::with_capacity(flows.len() + 64),
        scratch: String::new(),
        lists: HashMap::default(),
        enrichments: HashMap::default(),
        pieces: Vec::new(),
    };
    for f in flows {
        let e = f.enrichment.as_ref();
        put_varint(&mut w.out, zigzag(f.start_ms - base));
        put_varint(&mut w.out, zigzag(f.end_ms - f.start_ms));
        put_ip(&mut w.out, f.src_ip);
        put_ip(&mut w.out, f.dst_ip);
        w.out.extend(f.src_port.to_le_bytes());
        w.out.extend(f.dst_port.to_le_bytes());
        w.out.push(f.protocol);
        for n in [f.bytes_out, f.bytes_in, f.packets_out, f.packets_in] {
            put_varint(&mut w.out, n);
        }
        let observed = match f.observed {
            None => 0,
            Some(Observed::Accepted) => 1,
            Some(Observed::Rejected) => 2,
        };
        let direction = match f.direction {
            None => 0,
            Some(Direction::Ingress) => 1,
            Some(Direction::Egress) => 2,
        };
        let source = SOURCES.iter().position(|s| *s == f.source).unwrap_or(0) as u8;
        w.out.push(observed | direction << 2 | source << 4);
        w.out.push(u8::from(f.orientation.is_reversed()));
        let host = w.string(f.hostname.as_deref());
        // Enrichments are shared between flows: one seen before in this
        // block is found by address (the flows outlive the writer).
        let shared = e.map(|e| std::sync::Arc::as_ptr(e) as usize);
        let known = shared.and_then(|a| w.enrichments.get(&a).copied());
        let enriched = match known {
            Some(refs) => refs,
            None => {
                let refs = [
                    w.string(e.and_then(|e| e.src_workload.as_deref())),
                    w.string(e.and_then(|e| e.dst_workload.as_deref())),
                    w.list(e.map(|e| &e.src_groups)),
                    w.list(e.map(|e| &e.dst_groups)),
                    w.string(e.and_then(|e| e.vendor.as_deref())),
                    w.string(e.map(|e| e.verdict.as_str())),
                    w.string(e.and_then(|e| e.rule.as_deref())),
                ];
                if let Some(a) = shared {
                    w.enrichments.insert(a, refs);
                }
                refs
            }
        };
        put_varint(&mut w.out, host);
        for r in enriched {
            put_varint(&mut w.out, r);
        }
        w.pieces.clear();
        for piece in f.attrs.pieces() {
            let i = w.string(Some(piece));
            w.pieces.push(i);
        }
        put_varint(&mut w.out, w.pieces.len() as u64);
        for i in 0..w.pieces.len() {
            put_varint(&mut w.out, w.pieces[i]);
        }
    }
    let strings = &w.order;
    let mut block = Vec::with_capacity(w.out.len() + strings.len() * 16 + 32);
    block.push(FORMAT_VERSION);
    put_varint(&mut block, flows.len() as u64);
    put_varint(&mut block, zigzag(base));
    put_varint(&mut block, strings.len() as u64);
    for s in strings {
        put_varint(&mut block, s.len() as u64);
        block.extend(s.as_bytes());
    }
    block.extend(&w.out);
    block
}

/// Why a stored block could not be read.
#[derive(Debug, thiserror::Error)]
#[error("damaged flow block at byte {at}: {what}")]
pub struct BlockError {
    /// Byte offset in the block.
    pub at: usize,
    /// What was wrong.
    pub what: &'static str,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, what: &'static str) -> BlockError {
        BlockError { at: self.pos, what }
    }

    fn byte(&mut self) -> Result<u8, BlockError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.fail("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BlockError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.fail("length overflow"))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| self.fail("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, BlockError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.fail("varint too long"))
    }

    fn ip(&mut self) -> Result<IpAddr, BlockError> {
        match self.byte()? {
            4 => {
                let b = self.take(4)?;
                Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(self.take(16)?);
                Ok(IpAddr::V6(Ipv6Addr::from(o)))
            }
            _ => Err(self.fail("bad address tag")),
        }
    }

    fn u16(&mut self) -> Result<u16, BlockError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
}

/// Decode a block, keeping the flows `keep` accepts.
pub fn decode(
    data: &[u8],
    keep: &mut dyn FnMut(&Flow) -> bool,
    out: &mut Vec<Flow>,
) -> Result<(), BlockError> {
    let mut r = Reader { data, pos: 0 };
    let version = r.byte()?;
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(r.fail("unknown block format"));
    }
    let count = r.varint()?;
    let base = unzigzag(r.varint()?);
    let n_strings = r.varint()?;
    if n_strings > data.len() as u64 || count > data.len() as u64 {
        return Err(r.fail("counts larger than the block"));
    }
    let mut strings: Vec<&str> = Vec::with_capacity(n_strings as usize);
    for _ in 0..n_strings {
        let len = usize::try_from(r.varint()?).map_err(|_| r.fail("length overflow"))?;
        let bytes = r.take(len)?;
        strings.push(std::str::from_utf8(bytes).map_err(|_| r.fail("invalid UTF-8"))?);
    }
    let string = |i: u64, r: &Reader<'_>| -> Result<Option<&str>, BlockError> {
        if i == 0 {
            return Ok(None);
        }
        strings
            .get(i as usize - 1)
            .copied()
            .map(Some)
            .ok_or_else(|| r.fail("bad string index"))
    };
    // Names shared by the block's flows: decoded once each, on first use.
    let names: Vec<OnceCell<Name>> = strings.iter().map(|_| OnceCell::new()).collect();
    let lists: Vec<OnceCell<Names>> = strings.iter().map(|_| OnceCell::new()).collect();
    let name = |i: u64, r: &Reader<'_>| -> Result<Option<Name>, BlockError> {
        let Some(s) = string(i, r)? else {
            return Ok(None);
        };
        let cell = names
            .get(i as usize - 1)
            .ok_or_else(|| r.fail("bad string index"))?;
        Ok(Some(Name::clone(cell.get_or_init(|| Name::from(s)))))
    };
    let list = |i: u64, r: &Reader<'_>| -> Result<Names, BlockError> {
        let Some(s) = string(i, r)? else {
            return Ok(Names::default());
        };
        let cell = lists
            .get(i as usize - 1)
            .ok_or_else(|| r.fail("bad string index"))?;
        Ok(cell
            .get_or_init(|| {
                s.split(',')
                    .filter(|g| !g.is_empty())
                    .map(Name::from)
                    .collect()
            })
            .clone())
    };
    let mut shared_enrichments: HashMap<[u64; 7], std::sync::Arc<Enrichment>> = HashMap::default();
    let mut pieces: Vec<&str> = Vec::new();
    for _ in 0..count {
        let start = base + unzigzag(r.varint()?);
        let end = start + unzigzag(r.varint()?);
        let src = r.ip()?;
        let dst = r.ip()?;
        let src_port = r.u16()?;
        let dst_port = r.u16()?;
        let protocol = r.byte()?;
        let mut f = Flow::new(FlowSource::Aws, src, dst, protocol);
        f.start_ms = start;
        f.end_ms = end;
        f.src_port = src_port;
        f.dst_port = dst_port;
        f.bytes_out = r.varint()?;
        f.bytes_in = r.varint()?;
        f.packets_out = r.varint()?;
        f.packets_in = r.varint()?;
        let packed = r.byte()?;
        f.observed = match packed & 3 {
            1 => Some(Observed::Accepted),
            2 => Some(Observed::Rejected),
            _ => None,
        };
        f.direction = match packed >> 2 & 3 {
            1 => Some(Direction::Ingress),
            2 => Some(Direction::Egress),
            _ => None,
        };
        f.source = *SOURCES
            .get(usize::from(packed >> 4))
            .ok_or_else(|| r.fail("bad source"))?;
        if version >= 2 && r.byte()? & 1 == 1 {
            f.orientation = Orientation::Reversed;
        }
        // Before version 3 the attributes were one reference, the ninth.
        let n_refs = if version >= 3 { 8 } else { 9 };
        let mut refs = [0u64; 9];
        for slot in &mut refs[..n_refs] {
            *slot = r.varint()?;
        }
        f.hostname = string(refs[0], &r)?.map(str::to_string);
        if refs[6] != 0 {
            // Flows with the same references share one enrichment.
            let mut key = [0u64; 7];
            key.copy_from_slice(&refs[1..8]);
            let shared = match shared_enrichments.get(&key) {
                Some(e) => std::sync::Arc::clone(e),
                None => {
                    let verdict = string(refs[6], &r)?
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| r.fail("bad verdict"))?;
                    let e = std::sync::Arc::new(Enrichment {
                        src_workload: name(refs[1], &r)?,
                        dst_workload: name(refs[2], &r)?,
                        src_groups: list(refs[3], &r)?,
                        dst_groups: list(refs[4], &r)?,
                        vendor: name(refs[5], &r)?,
                        verdict,
                        rule: name(refs[7], &r)?,
                    });
                    shared_enrichments.insert(key, std::sync::Arc::clone(&e));
                    e
                }
            };
            f.enrichment = Some(shared);
        }
        if version >= 3 {
            let n = r.varint()?;
            if n > 0 {
                if n > (data.len() - r.pos) as u64 {
                    return Err(r.fail("attribute count larger than the block"));
                }
                pieces.clear();
                for _ in 0..n {
                    let i = r.varint()?;
                    pieces.push(string(i, &r)?.ok_or_else(|| r.fail("empty attribute"))?);
                }
                f.attrs = cordon_flow::Attrs::from_pairs(pieces.iter().copied());
            }
        } else if let Some(attrs) = string(refs[8], &r)? {
            f.attrs = cordon_flow::Attrs::from_encoded(attrs);
            if version == 1 && f.attrs.get("oriented") == Some("reply") {
                f.orientation = Orientation::Reversed;
                f.attrs.remove("oriented");
            }
        }
        if keep(&f) {
            out.push(f);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeek_flow(uid: &str) -> Flow {
        let mut f = Flow::new(
            FlowSource::Zeek,
            "10.0.0.1".parse().unwrap(),
            "192.0.2.7".parse().unwrap(),
            6,
        );
        f.start_ms = 1_700_000_000_000;
        f.end_ms = f.start_ms + 1_500;
        f.attr("conn_state", "SF");
        f.attr("uid", uid);
        f.attr("history", "ShADadFf");
        f
    }

    fn decode_all(block: &[u8]) -> Result<Vec<Flow>, BlockError> {
        let mut out = Vec::new();
        decode(block, &mut |_| true, &mut out)?;
        Ok(out)
    }

    #[test]
    fn attribute_pieces_are_kept_once_per_block_and_come_back_in_order() {
        let flows: Vec<Flow> = (0..100).map(|i| zeek_flow(&format!("C{i}"))).collect();
        let block = encode(&flows);
        let back = decode_all(&block).unwrap();
        assert_eq!(back.len(), 100);
        for (a, b) in flows.iter().zip(&back) {
            assert_eq!(a.attrs.as_encoded(), b.attrs.as_encoded());
        }
        // The repeated pieces are stored once: a hundred connection ids and
        // two shared pieces, not a hundred copies of the whole text.
        let text = String::from_utf8_lossy(&block);
        assert_eq!(text.matches("history=ShADadFf").count(), 1);
        assert_eq!(text.matches("conn_state=SF").count(), 1);
        assert_eq!(text.matches("uid=C").count(), 100);
    }

    #[test]
    fn a_flow_without_attributes_stays_without() {
        let mut f = zeek_flow("C1");
        f.attrs = cordon_flow::Attrs::default();
        let back = decode_all(&encode(&[f])).unwrap();
        assert!(back[0].attrs.is_empty());
    }

    #[test]
    fn blocks_written_by_version_2_are_still_read() {
        // One flow as version 2 wrote it: the whole attribute text was
        // the ninth string reference.
        let attrs = "conn_state=SF\u{1f}uid=C9";
        let mut b = vec![2u8];
        put_varint(&mut b, 1); // flows
        put_varint(&mut b, zigzag(1_700_000_000_000));
        put_varint(&mut b, 1); // strings
        put_varint(&mut b, attrs.len() as u64);
        b.extend(attrs.as_bytes());
        put_varint(&mut b, zigzag(0));
        put_varint(&mut b, zigzag(250));
        put_ip(&mut b, "10.0.0.1".parse().unwrap());
        put_ip(&mut b, "192.0.2.7".parse().unwrap());
        b.extend(40_000u16.to_le_bytes());
        b.extend(443u16.to_le_bytes());
        b.push(6);
        for n in [10, 20, 1, 2] {
            put_varint(&mut b, n);
        }
        let zeek = SOURCES.iter().position(|s| *s == FlowSource::Zeek).unwrap() as u8;
        b.push(1 | zeek << 4);
        b.push(1); // reversed
        b.extend([0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let back = decode_all(&b).unwrap();
        assert_eq!(back.len(), 1);
        let f = &back[0];
        assert_eq!(f.source, FlowSource::Zeek);
        assert_eq!(f.end_ms - f.start_ms, 250);
        assert_eq!(f.dst_port, 443);
        assert!(f.orientation.is_reversed());
        assert_eq!(f.get_attr("uid"), Some("C9"));
        assert_eq!(f.get_attr("conn_state"), Some("SF"));
    }

    #[test]
    fn damaged_attribute_references_are_errors_not_panics() {
        let block = encode(&[zeek_flow("C1")]);
        // Every truncation and every single-byte change is read or refused.
        for cut in 0..block.len() {
            let _ = decode_all(&block[..cut]);
        }
        for i in 0..block.len() {
            for v in [0u8, 0x7f, 0x80, 0xff] {
                let mut b = block.clone();
                b[i] = v;
                let _ = decode_all(&b);
            }
        }
        let mut b = block.clone();
        let last = b.len() - 1;
        b[last] = 0x7f; // a piece index past the dictionary
        assert!(decode_all(&b).is_err());
    }
}
