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
/// attribute `oriented=reply` and are still read.
const FORMAT_VERSION: u8 = 2;

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
    /// Reused to join a group list before looking it up.
    scratch: String,
    /// Dictionary index of each shared group list seen, by its address.
    lists: HashMap<usize, u64>,
    /// The references of each shared enrichment seen, by its address.
    enrichments: HashMap<usize, [u64; 7]>,
}

impl<'a> Writer<'a> {
    /// Index of `s` in the dictionary, plus one (0 means "none").
    fn string(&mut self, s: Option<&'a str>) -> u64 {
        let Some(s) = s else { return 0 };
        if let Some(i) = self.dict.get(s) {
            return *i;
        }
        let i = self.dict.len() as u64 + 1;
        self.dict.insert(Cow::Borrowed(s), i);
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
        let i = self.dict.len() as u64 + 1;
        self.dict.insert(Cow::Owned(self.scratch.clone()), i);
        i
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
        dict: HashMap::default(),
        scratch: String::new(),
        lists: HashMap::default(),
        enrichments: HashMap::default(),
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
        let attrs = w.string(Some(f.attrs.as_encoded()).filter(|a| !a.is_empty()));
        put_varint(&mut w.out, host);
        for r in enriched {
            put_varint(&mut w.out, r);
        }
        put_varint(&mut w.out, attrs);
    }
    let mut strings: Vec<(&str, u64)> = w.dict.iter().map(|(s, i)| (&**s, *i)).collect();
    strings.sort_unstable_by_key(|(_, i)| *i);
    let mut block = Vec::with_capacity(w.out.len() + strings.len() * 16 + 32);
    block.push(FORMAT_VERSION);
    put_varint(&mut block, flows.len() as u64);
    put_varint(&mut block, zigzag(base));
    put_varint(&mut block, strings.len() as u64);
    for (s, _) in strings {
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
    if version != FORMAT_VERSION && version != 1 {
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
        let mut refs = [0u64; 9];
        for slot in &mut refs {
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
        if let Some(attrs) = string(refs[8], &r)? {
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
