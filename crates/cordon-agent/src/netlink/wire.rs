//! Netlink messages as bytes: writing a batch of nf_tables messages, and
//! reading the kernel's answers. Netlink headers and attribute headers are
//! in host order; nf_tables values are big-endian unless noted.

/// `NLMSG_ERROR`: an error or acknowledgement.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NFNL_MSG_BATCH_BEGIN`.
const BATCH_BEGIN: u16 = 0x10;
/// `NFNL_MSG_BATCH_END`.
const BATCH_END: u16 = 0x11;
/// `NFNL_SUBSYS_NFTABLES`.
const SUBSYS_NFTABLES: u16 = 10;
/// `NFNL_BATCH_GENID`: the batch applies only at this ruleset generation.
const BATCH_GENID: u16 = 1;

/// `NLM_F_REQUEST`.
pub const F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
pub const F_ACK: u16 = 0x4;
/// `NLM_F_DUMP`.
pub const F_DUMP: u16 = 0x300;
/// `NLM_F_CREATE`.
pub const F_CREATE: u16 = 0x400;
/// `NLM_F_APPEND`.
pub const F_APPEND: u16 = 0x800;
/// `NLA_F_NESTED`.
const F_NESTED: u16 = 0x8000;

/// The largest attribute: its length is 16 bits.
pub const MAX_ATTRIBUTE: usize = 0xffff;

/// nf_tables message types (`enum nf_tables_msg_types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Kind {
    /// Create or update a table.
    NewTable = 0,
    /// Get a table.
    GetTable = 1,
    /// Delete a table.
    DelTable = 2,
    /// Create a chain.
    NewChain = 3,
    /// Get or dump chains.
    GetChain = 4,
    /// Append a rule.
    NewRule = 6,
    /// Create a set.
    NewSet = 9,
    /// Get or dump sets.
    GetSet = 10,
    /// Add set elements.
    NewSetElem = 12,
    /// Remove set elements.
    DelSetElem = 14,
    /// Get the ruleset generation.
    GetGen = 16,
}

/// The netlink type of an nf_tables message.
#[must_use]
pub fn nft_type(kind: Kind) -> u16 {
    (SUBSYS_NFTABLES << 8) | kind as u16
}

fn pad(len: usize) -> usize {
    (len + 3) & !3
}

/// What a message of a batch is about, for error reports; indexes are
/// into the table being loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// The table itself.
    Table,
    /// The chain at this index.
    Chain(usize),
    /// The set at this index.
    Set(usize),
    /// Bounds `first..first + count` of the set at index `set`.
    Elements {
        /// The set's index.
        set: usize,
        /// The first bound in the message.
        first: usize,
        /// How many bounds.
        count: usize,
    },
    /// Rule `index` of the chain at index `chain`.
    Rule {
        /// The chain's index.
        chain: usize,
        /// The rule's index in the chain.
        index: usize,
    },
    /// A request outside a batch.
    Request,
}

/// A buffer of netlink messages under construction.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
    seq: u32,
    /// Sequence numbers and what each message is, for error reports.
    pub labels: Vec<(u32, Label)>,
}

/// Where an open message or nested attribute starts.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct Open(usize);

impl Writer {
    /// An empty buffer whose first message has sequence number `seq`,
    /// with room for `capacity` bytes.
    #[must_use]
    pub fn new(seq: u32, capacity: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(capacity),
            seq,
            labels: Vec::new(),
        }
    }

    /// Make room for `more` bytes.
    pub fn reserve(&mut self, more: usize) {
        self.buf.reserve(more);
    }

    /// The bytes written.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The sequence number the next message gets.
    #[must_use]
    pub fn next_seq(&self) -> u32 {
        self.seq
    }

    fn header(&mut self, ty: u16, flags: u16, family: u8, res_id: u16) -> Open {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // struct nfgenmsg: family, version 0, resource id (big-endian).
        self.buf.push(family);
        self.buf.push(0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        Open(at)
    }

    /// Start an nf_tables message; `label` names it in errors.
    pub fn begin(&mut self, kind: Kind, flags: u16, family: u8, label: Label) -> Open {
        self.labels.push((self.seq, label));
        self.header(nft_type(kind), F_REQUEST | flags, family, 0)
    }

    /// Finish the message started at `open`.
    pub fn end(&mut self, open: Open) {
        let len = self.buf.len() - open.0;
        if let Some(field) = self.buf.get_mut(open.0..open.0 + 4) {
            field.copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
        }
    }

    /// `NFNL_MSG_BATCH_BEGIN`, bound to ruleset generation `generation`
    /// when given (the kernel then refuses the batch if anything changed).
    pub fn batch_begin(&mut self, generation: Option<u32>) {
        let open = self.header(BATCH_BEGIN, F_REQUEST, 0, SUBSYS_NFTABLES);
        if let Some(g) = generation {
            self.u32(BATCH_GENID, g);
        }
        self.end(open);
    }

    /// `NFNL_MSG_BATCH_END`.
    pub fn batch_end(&mut self) {
        let open = self.header(BATCH_END, F_REQUEST, 0, SUBSYS_NFTABLES);
        self.end(open);
    }

    /// An attribute with raw `data`.
    pub fn put(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len() + pad(len) - len, 0);
    }

    /// A NUL-terminated string attribute.
    pub fn string(&mut self, ty: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.put(ty, &data);
    }

    /// A big-endian u32 attribute.
    pub fn u32(&mut self, ty: u16, v: u32) {
        self.put(ty, &v.to_be_bytes());
    }

    /// A big-endian u16 attribute.
    pub fn u16(&mut self, ty: u16, v: u16) {
        self.put(ty, &v.to_be_bytes());
    }

    /// Start a nested attribute.
    pub fn nest(&mut self, ty: u16) -> Open {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(ty | F_NESTED).to_ne_bytes());
        Open(at)
    }

    /// The bytes written since `open`.
    #[must_use]
    pub fn since(&self, open: Open) -> usize {
        self.buf.len() - open.0
    }

    /// Finish the nested attribute started at `open` (at most
    /// [`MAX_ATTRIBUTE`] bytes: callers split longer lists).
    pub fn unnest(&mut self, open: Open) {
        let len = self.buf.len() - open.0;
        if let Some(field) = self.buf.get_mut(open.0..open.0 + 2) {
            field.copy_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        }
    }
}

/// One message the kernel sent.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The netlink message type.
    pub ty: u16,
    /// The sequence number it answers.
    pub seq: u32,
    /// The payload after the netlink header.
    pub payload: &'a [u8],
}

impl Reply<'_> {
    /// For `NLMSG_ERROR`: the error number (0 for an acknowledgement).
    #[must_use]
    pub fn error(&self) -> Option<i32> {
        if self.ty != NLMSG_ERROR {
            return None;
        }
        let code: [u8; 4] = self.payload.get(..4)?.try_into().ok()?;
        Some(i32::from_ne_bytes(code))
    }

    /// For nf_tables messages: the attributes after the `nfgenmsg` header.
    #[must_use]
    pub fn attributes(&self) -> Attributes<'_> {
        Attributes::of_message(self.payload)
    }
}

/// Why bytes from the kernel could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed netlink message at byte {offset}: {what}")]
pub struct Malformed {
    /// Where in the datagram.
    pub offset: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// Split a datagram into messages, checking every length.
///
/// # Errors
/// A length that runs past the datagram or is shorter than a header.
pub fn replies(datagram: &[u8]) -> Result<Vec<Reply<'_>>, Malformed> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < datagram.len() {
        let head = datagram.get(at..at + 16).ok_or(Malformed {
            offset: at,
            what: "truncated header",
        })?;
        let word = |i: usize| -> u32 {
            let b: [u8; 4] = head
                .get(i..i + 4)
                .and_then(|s| s.try_into().ok())
                .unwrap_or_default();
            u32::from_ne_bytes(b)
        };
        let len = word(0) as usize;
        let ty = u16::from_ne_bytes([head[4], head[5]]);
        if len < 16 {
            return Err(Malformed {
                offset: at,
                what: "length shorter than the header",
            });
        }
        let payload = datagram.get(at + 16..at + len).ok_or(Malformed {
            offset: at,
            what: "length past the end",
        })?;
        out.push(Reply {
            ty,
            seq: word(8),
            payload,
        });
        at += pad(len);
    }
    Ok(out)
}

/// Attributes of a message or of a nested attribute.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    /// The attribute's type (without flags) and data.
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let head = self.rest.get(..4)?;
        let len = usize::from(u16::from_ne_bytes([head[0], head[1]]));
        let ty = u16::from_ne_bytes([head[2], head[3]]) & 0x3fff;
        let data = self.rest.get(4..len)?;
        self.rest = self.rest.get(pad(len)..).unwrap_or_default();
        Some((ty, data))
    }
}

impl<'a> Attributes<'a> {
    /// The attributes of an nf_tables message's payload (after its
    /// `nfgenmsg` header).
    #[must_use]
    pub fn of_message(payload: &'a [u8]) -> Attributes<'a> {
        Attributes {
            rest: payload.get(4..).unwrap_or_default(),
        }
    }

    /// The attributes inside nested attribute data.
    #[must_use]
    pub fn nested(data: &'a [u8]) -> Attributes<'a> {
        Attributes { rest: data }
    }

    /// The first attribute of type `ty`.
    #[must_use]
    pub fn get(mut self, ty: u16) -> Option<&'a [u8]> {
        Iterator::find(&mut self, |(t, _)| *t == ty).map(|(_, d)| d)
    }
}

/// A NUL-terminated string attribute's text.
#[must_use]
pub fn text(data: &[u8]) -> String {
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(data.get(..end).unwrap_or_default()).into_owned()
}

/// A big-endian u32 attribute's value.
#[must_use]
pub fn be32(data: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(..4)?.try_into().ok()?))
}

/// The comment in libnftnl-style user data (type-length-value, one byte
/// each), stored under `ty`.
#[must_use]
pub fn udata_comment(udata: &[u8], ty: u8) -> Option<String> {
    let mut at = 0;
    while let (Some(t), Some(len)) = (udata.get(at), udata.get(at + 1)) {
        let value = udata.get(at + 2..at + 2 + usize::from(*len))?;
        if *t == ty {
            return Some(text(value));
        }
        at += 2 + usize::from(*len);
    }
    None
}

/// Append a user-data record: type, length, value.
pub fn udata_put(out: &mut Vec<u8>, ty: u8, value: &[u8]) {
    let len = value.len().min(255);
    out.push(ty);
    out.push(u8::try_from(len).unwrap_or(u8::MAX));
    out.extend_from_slice(value.get(..len).unwrap_or_default());
}

/// A user-data comment: the text (at most 254 bytes) and a NUL.
pub fn udata_put_comment(out: &mut Vec<u8>, ty: u8, text: &str) {
    let mut value: Vec<u8> = text.bytes().take(254).collect();
    value.push(0);
    udata_put(out, ty, &value);
}
