//! Loading the agent's table through nf_tables netlink, without `nft`.
//!
//! A whole table goes to the kernel as one batch (one transaction): the
//! kernel applies all of it or none, and answers each message. A later
//! change that only adds or removes set elements is sent as just those
//! element changes, bound to the ruleset generation the agent last saw:
//! if anything changed the ruleset since, the kernel refuses the batch and
//! the agent replaces the table whole instead.
//!
//! The script `nft -f` loads ([`Table::script`]) and these messages encode
//! the same expressions; a test loads one each way and compares what
//! `nft list` shows.

mod encode;
mod socket;
pub mod wire;

use std::collections::BTreeSet;
use std::io;
use std::time::Duration;

use crate::ruleset::model::Table;
use crate::ruleset::{OWNER, TABLE};
use encode::FAMILY_INET;
use socket::Socket;
use wire::{F_ACK, F_DUMP, Kind, NLMSG_DONE, Writer};

/// Why the table could not be loaded or removed (nothing changed then).
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// No CAP_NET_ADMIN in this network namespace.
    #[error("permission denied: loading nftables rules needs CAP_NET_ADMIN (run as root)")]
    Permission,
    /// A table named like ours belongs to someone else.
    #[error("table inet {TABLE} exists and is not Cordon's; remove or rename it first")]
    NotOurs,
    /// The kernel refused a message of the batch.
    #[error("the kernel refused {what}: {reason}")]
    Refused {
        /// The message refused.
        what: String,
        /// The kernel's reason.
        reason: io::Error,
    },
    /// The ruleset changed while the agent was loading it, every time it tried.
    #[error("the ruleset kept changing while the table was being loaded")]
    Busy,
    /// The table is one the kernel would refuse; nothing was sent.
    #[error("the ruleset is not valid, nothing was sent to the kernel: {0}")]
    Invalid(#[from] crate::ruleset::model::TableError),
    /// The table listed back differs from the one loaded.
    #[error("the loaded table does not match: {0}")]
    Mismatch(String),
    /// The netlink socket failed.
    #[error("netlink: {0}")]
    Io(io::Error),
    /// The kernel's answer could not be read.
    #[error(transparent)]
    Malformed(#[from] wire::Malformed),
}

impl From<io::Error> for NetlinkError {
    fn from(e: io::Error) -> NetlinkError {
        match e.raw_os_error() {
            Some(EPERM | EACCES) => NetlinkError::Permission,
            _ => NetlinkError::Io(e),
        }
    }
}

/// `EACCES`.
const EACCES: i32 = 13;
/// `ERESTART`: the batch's generation is not the ruleset's any more.
const ERESTART: i32 = 85;
/// `EPERM`.
const EPERM: i32 = 1;
/// `ENOENT`.
const ENOENT: i32 = 2;

/// A table in force, and the ruleset generation right after it was loaded.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The table in force.
    pub table: Table,
    generation: u32,
}

/// How a table came into force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The whole table was replaced.
    Replaced,
    /// Only set elements changed: bounds added and removed (a range is a
    /// start bound and an end bound).
    Updated {
        /// Bounds added.
        added: usize,
        /// Bounds removed.
        removed: usize,
    },
    /// The table was already in force.
    Unchanged,
}

struct Session {
    socket: Socket,
    seq: u32,
}

impl Session {
    fn open() -> Result<Session, NetlinkError> {
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        Ok(Session {
            socket: Socket::open()?,
            seq,
        })
    }

    fn writer(&self) -> Writer {
        Writer::new(self.seq, 1 << 12)
    }

    /// Send a batch about `table` and wait for the kernel's answer to each
    /// message.
    fn transact(&mut self, w: &Writer, table: &Table) -> Result<(), NetlinkError> {
        self.seq = w.next_seq();
        self.socket.send(w.bytes())?;
        let batch_seq = w.labels.first().map_or(0, |(s, _)| s.wrapping_sub(1));
        let mut pending: BTreeSet<u32> = w.labels.iter().map(|(s, _)| *s).collect();
        let mut failed: Option<(u32, i32)> = None;
        while !pending.is_empty() {
            let datagram = match self.socket.receive() {
                Ok(d) => d,
                // After a refusal the kernel may answer no further messages.
                Err(e) if failed.is_some() && e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            };
            let mut stop = false;
            for reply in wire::replies(datagram)? {
                let Some(code) = reply.error() else { continue };
                pending.remove(&reply.seq);
                if code != 0 {
                    failed.get_or_insert((reply.seq, -code));
                    // A refused batch header ends the batch.
                    stop |= reply.seq == batch_seq;
                }
            }
            if stop {
                break;
            }
            if failed.is_some() {
                self.socket.set_timeout(Duration::from_millis(300))?;
            }
        }
        self.socket.set_timeout(socket::ANSWER_TIMEOUT)?;
        let Some((seq, errno)) = failed else {
            return Ok(());
        };
        if errno == EPERM {
            return Err(NetlinkError::Permission);
        }
        let what = w
            .labels
            .iter()
            .find(|(s, _)| *s == seq)
            .map_or_else(|| "the batch".to_string(), |(_, l)| describe(*l, table));
        Err(NetlinkError::Refused {
            what,
            reason: io::Error::from_raw_os_error(errno),
        })
    }

    /// Send a request and collect the nf_tables answers (type, attributes
    /// as owned bytes) until its acknowledgement or the end of the dump.
    fn request(
        &mut self,
        kind: Kind,
        flags: u16,
        family: u8,
        attrs: impl FnOnce(&mut Writer),
    ) -> Result<Result<Vec<Vec<u8>>, i32>, NetlinkError> {
        let mut w = self.writer();
        let m = w.begin(kind, flags, family, wire::Label::Request);
        attrs(&mut w);
        w.end(m);
        let seq = self.seq;
        self.seq = w.next_seq();
        self.socket.send(w.bytes())?;
        let mut out = Vec::new();
        loop {
            let datagram = self.socket.receive()?;
            for reply in wire::replies(datagram)? {
                if reply.seq != seq {
                    continue;
                }
                if let Some(code) = reply.error() {
                    return Ok(if code == 0 { Ok(out) } else { Err(-code) });
                }
                if reply.ty == NLMSG_DONE {
                    return Ok(Ok(out));
                }
                out.push(reply.payload.to_vec());
            }
        }
    }

    /// The ruleset's generation number.
    fn generation(&mut self) -> Result<u32, NetlinkError> {
        let answers = self
            .request(Kind::GetGen, F_ACK, 0, |_| {})?
            .map_err(|e| NetlinkError::from(io::Error::from_raw_os_error(e)))?;
        answers
            .iter()
            .find_map(|payload| {
                wire::Attributes::of_message(payload)
                    .get(1)
                    .and_then(wire::be32)
            })
            .ok_or_else(|| NetlinkError::Mismatch("no generation in the kernel's answer".into()))
    }

    /// The comment of the table named like ours, if it exists.
    fn owner(&mut self) -> Result<Option<String>, NetlinkError> {
        match self.request(Kind::GetTable, F_ACK, FAMILY_INET, |w| w.string(1, TABLE))? {
            Err(ENOENT) => Ok(None),
            Err(EPERM) => Err(NetlinkError::Permission),
            Err(e) => Err(io::Error::from_raw_os_error(e).into()),
            Ok(answers) => Ok(Some(
                answers
                    .iter()
                    .find_map(|payload| {
                        wire::Attributes::of_message(payload)
                            .get(6)
                            .and_then(|u| wire::udata_comment(u, 0))
                    })
                    .unwrap_or_default(),
            )),
        }
    }

    /// Names of the chains or sets (`kind`) of our table in the kernel.
    fn names(&mut self, kind: Kind) -> Result<BTreeSet<String>, NetlinkError> {
        let answers = self
            .request(kind, F_DUMP, FAMILY_INET, |_| {})?
            .map_err(|e| NetlinkError::from(io::Error::from_raw_os_error(e)))?;
        // Chains and sets both carry the table as attribute 1; the name is
        // 3 for chains and 2 for sets.
        let name_attr = if kind == Kind::GetChain { 3 } else { 2 };
        Ok(answers
            .iter()
            .filter_map(|payload| {
                let attrs = wire::Attributes::of_message(payload);
                (attrs.get(1).map(wire::text).as_deref() == Some(TABLE))
                    .then(|| attrs.get(name_attr).map(wire::text))
                    .flatten()
            })
            .collect())
    }

    /// Check that the kernel holds our table with `table`'s chains and sets.
    fn verify(&mut self, table: &Table) -> Result<(), NetlinkError> {
        match self.owner()? {
            Some(c) if c == table.comment => {}
            Some(c) => {
                return Err(NetlinkError::Mismatch(format!(
                    "the table's comment is `{c}`"
                )));
            }
            None => return Err(NetlinkError::Mismatch("the table is missing".into())),
        }
        let chains: BTreeSet<String> = table.chains.iter().map(|c| c.name.clone()).collect();
        let sets: BTreeSet<String> = table.sets.iter().map(|s| s.name.clone()).collect();
        for (kind, want, what) in [
            (Kind::GetChain, chains, "chains"),
            (Kind::GetSet, sets, "sets"),
        ] {
            let have = self.names(kind)?;
            if have != want {
                return Err(NetlinkError::Mismatch(format!(
                    "{what} in the kernel: {} of {} expected",
                    have.intersection(&want).count(),
                    want.len()
                )));
            }
        }
        Ok(())
    }
}

/// What a message was, in words.
fn describe(label: wire::Label, table: &Table) -> String {
    use wire::Label;
    let chain = |i: usize| table.chains.get(i).map_or("?", |c| c.name.as_str());
    let set = |i: usize| table.sets.get(i).map_or("?", |s| s.name.as_str());
    match label {
        Label::Table => format!("table inet {TABLE}"),
        Label::Chain(c) => format!("chain `{}`", chain(c)),
        Label::Set(s) => format!("set `{}`", set(s)),
        Label::Elements {
            set: s,
            first,
            count,
        } => format!(
            "bounds {}-{} of set `{}` (a range is a start and an end bound)",
            first + 1,
            first + count,
            set(s)
        ),
        Label::Rule { chain: c, index } => {
            let text = table
                .chains
                .get(c)
                .and_then(|ch| ch.rules.get(index))
                .map(ToString::to_string)
                .unwrap_or_default();
            format!("rule {} of chain `{}` ({text})", index + 1, chain(c))
        }
        Label::Request => "a request".into(),
    }
}

/// Bring `table` into force: element changes only when `previous` is the
/// table in force and only elements differ, else a whole replacement
/// after checking that an existing table of that name is the agent's.
///
/// # Errors
/// The table is someone else's, the kernel refused it (the previous table
/// is then still in force), or netlink failed.
pub fn apply(table: &Table, previous: Option<&Applied>) -> Result<(Applied, Change), NetlinkError> {
    table.check()?;
    let mut s = Session::open()?;
    if let Some(prev) = previous {
        if prev.table == *table {
            return Ok((prev.clone(), Change::Unchanged));
        }
        let mut w = s.writer();
        w.batch_begin(Some(prev.generation));
        if let Some((added, removed)) = encode::update(&mut w, &prev.table, table) {
            w.batch_end();
            match s.transact(&w, table) {
                Ok(()) => {
                    let generation = s.generation()?;
                    return Ok((
                        Applied {
                            table: table.clone(),
                            generation,
                        },
                        Change::Updated { added, removed },
                    ));
                }
                // Someone changed the ruleset since: replace it whole.
                Err(NetlinkError::Refused { ref reason, .. })
                    if reason.raw_os_error() == Some(ERESTART) => {}
                Err(e) => return Err(e),
            }
        }
    }
    // The generation binds the ownership check to the batch: if a table
    // appears in between, the kernel refuses the batch and we look again.
    for _ in 0..3 {
        let generation = s.generation()?;
        if let Some(comment) = s.owner()?
            && !comment.starts_with(OWNER)
        {
            return Err(NetlinkError::NotOurs);
        }
        let mut w = s.writer();
        w.batch_begin(Some(generation));
        encode::replace(&mut w, table);
        w.batch_end();
        match s.transact(&w, table) {
            Ok(()) => {
                s.verify(table)?;
                let generation = s.generation()?;
                return Ok((
                    Applied {
                        table: table.clone(),
                        generation,
                    },
                    Change::Replaced,
                ));
            }
            Err(NetlinkError::Refused { ref reason, .. })
                if reason.raw_os_error() == Some(ERESTART) => {}
            Err(e) => return Err(e),
        }
    }
    Err(NetlinkError::Busy)
}

/// Remove the agent's table, if it is there and the agent's.
///
/// # Errors
/// The table is someone else's, or netlink failed.
pub fn cleanup() -> Result<bool, NetlinkError> {
    let mut s = Session::open()?;
    for _ in 0..3 {
        let generation = s.generation()?;
        match s.owner()? {
            None => return Ok(false),
            Some(c) if !c.starts_with(OWNER) => return Err(NetlinkError::NotOurs),
            Some(_) => {}
        }
        let mut w = s.writer();
        w.batch_begin(Some(generation));
        encode::delete_table(&mut w);
        w.batch_end();
        match s.transact(&w, &Table::default()) {
            Ok(()) => return Ok(true),
            Err(NetlinkError::Refused { ref reason, .. })
                if reason.raw_os_error() == Some(ERESTART) => {}
            Err(e) => return Err(e),
        }
    }
    Err(NetlinkError::Busy)
}

/// The batch that replaces the agent's table with `table`, as it would be
/// sent: for inspection and benchmarks (nothing is sent).
#[must_use]
pub fn replacement_batch(table: &Table) -> Vec<u8> {
    let mut w = Writer::new(1, 0);
    w.batch_begin(None);
    encode::replace(&mut w, table);
    w.batch_end();
    w.bytes().to_vec()
}

#[cfg(test)]
mod tests;
