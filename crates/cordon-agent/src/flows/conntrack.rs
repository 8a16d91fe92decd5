//! Connections the kernel let through, from the conntrack table.
//!
//! The table is read with `conntrack -L -o extended,id` (byte and packet
//! counters need `nf_conntrack_acct`, which the agent turns on for its
//! namespace). Conntrack's own events carry counters only when an entry is
//! destroyed, which the kernel's garbage collection may delay by a minute,
//! so the agent polls instead: a TCP connection is reported when it reaches
//! `TIME_WAIT` or `CLOSE` (its counters are final), any other entry when it
//! leaves the table, with the counters last seen (at most one poll
//! interval short).

use std::collections::HashMap;
use std::net::IpAddr;

/// One conntrack entry: the original direction's tuple and both counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Conntrack's id for the entry.
    pub id: u64,
    /// IP protocol number.
    pub protocol: u8,
    /// TCP (or SCTP) state, when the protocol has one.
    pub state: Option<String>,
    /// Initiator.
    pub src: IpAddr,
    /// Responder.
    pub dst: IpAddr,
    /// Initiator's port (0 without ports).
    pub sport: u16,
    /// Responder's port.
    pub dport: u16,
    /// Packets and bytes from the initiator.
    pub out: (u64, u64),
    /// Packets and bytes from the responder.
    pub back: (u64, u64),
}

/// One direction's tuple and counters.
#[derive(Default)]
struct Side {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: u16,
    dport: u16,
    packets: u64,
    bytes: u64,
}

/// Parse one line of `conntrack -L -o extended,id`; `None` for lines that
/// are not entries (the summary line) or are malformed. The original
/// direction's `key=value` words come first; a second `src=` starts the
/// reply direction.
pub fn parse_line(line: &str) -> Option<Entry> {
    let mut words = line.split_whitespace();
    let family = words.next()?;
    if family != "ipv4" && family != "ipv6" {
        return None;
    }
    words.next()?; // family number
    words.next()?; // protocol name
    let protocol: u8 = words.next()?.parse().ok()?;
    words.next()?; // timeout
    let mut state = None;
    let mut sides = [Side::default(), Side::default()];
    let mut side = 0;
    let mut id = None;
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            if state.is_none() && !word.starts_with('[') && sides[0].src.is_none() {
                state = Some(word.to_string());
            }
            continue;
        };
        if key == "src" && sides[0].src.is_some() {
            side = 1;
        }
        let s = &mut sides[side];
        match key {
            "src" => s.src = value.parse().ok(),
            "dst" => s.dst = value.parse().ok(),
            "sport" => s.sport = value.parse().unwrap_or(0),
            "dport" => s.dport = value.parse().unwrap_or(0),
            "packets" => s.packets = value.parse().unwrap_or(0),
            "bytes" => s.bytes = value.parse().unwrap_or(0),
            "id" => id = value.parse().ok(),
            _ => {}
        }
    }
    let [out, back] = sides;
    Some(Entry {
        id: id?,
        protocol,
        state,
        src: out.src?,
        dst: out.dst?,
        sport: out.sport,
        dport: out.dport,
        out: (out.packets, out.bytes),
        back: (back.packets, back.bytes),
    })
}

/// A connection that ended, with when it was first seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The entry as last seen.
    pub entry: Entry,
    /// First seen, epoch ms.
    pub first_ms: i64,
    /// Reported, epoch ms.
    pub last_ms: i64,
}

struct Tracked {
    entry: Entry,
    first_ms: i64,
    reported: bool,
}

/// Follows entries across polls; bounded to `cap` entries.
pub struct Tracker {
    entries: HashMap<u64, Tracked>,
    cap: usize,
}

impl Tracker {
    /// A tracker keeping at most `cap` entries.
    pub fn new(cap: usize) -> Tracker {
        Tracker {
            entries: HashMap::new(),
            cap,
        }
    }

    /// Take one poll's entries; return the connections that ended.
    pub fn poll(&mut self, now: Vec<Entry>, now_ms: i64) -> Vec<Ended> {
        let mut ended = Vec::new();
        let mut present = std::collections::HashSet::with_capacity(now.len());
        for entry in now {
            present.insert(entry.id);
            let closing = entry.protocol == 6
                && matches!(entry.state.as_deref(), Some("TIME_WAIT" | "CLOSE"));
            if self.entries.len() >= self.cap && !self.entries.contains_key(&entry.id) {
                continue;
            }
            let t = self.entries.entry(entry.id).or_insert_with(|| Tracked {
                entry: entry.clone(),
                first_ms: now_ms,
                reported: false,
            });
            t.entry = entry;
            if closing && !t.reported {
                t.reported = true;
                ended.push(Ended {
                    entry: t.entry.clone(),
                    first_ms: t.first_ms,
                    last_ms: now_ms,
                });
            }
        }
        self.entries.retain(|id, t| {
            if present.contains(id) {
                return true;
            }
            if !t.reported {
                ended.push(Ended {
                    entry: t.entry.clone(),
                    first_ms: t.first_ms,
                    last_ms: now_ms,
                });
            }
            false
        });
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "ipv4     2 tcp      6 119 TIME_WAIT src=10.0.3.10 dst=10.0.2.10 sport=57798 dport=5432 packets=5 bytes=1268 src=10.0.2.10 dst=10.0.3.10 sport=5432 dport=57798 packets=4 bytes=300 [ASSURED] mark=0 use=1 id=3566664501";
    const UDP: &str = "ipv4     2 udp      17 29 src=10.0.3.10 dst=10.0.2.10 sport=40997 dport=5353 packets=1 bytes=30 [UNREPLIED] src=10.0.2.10 dst=10.0.3.10 sport=5353 dport=40997 packets=0 bytes=0 mark=0 use=1 id=7";

    #[test]
    fn entries_parse() {
        let e = parse_line(TCP).unwrap();
        assert_eq!(e.state.as_deref(), Some("TIME_WAIT"));
        assert_eq!((e.sport, e.dport, e.protocol), (57798, 5432, 6));
        assert_eq!((e.out, e.back), ((5, 1268), (4, 300)));
        assert_eq!(e.src.to_string(), "10.0.3.10");
        let u = parse_line(UDP).unwrap();
        assert_eq!((u.state, u.out), (None, (1, 30)));
        assert_eq!(
            parse_line("conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown."),
            None
        );
        assert_eq!(parse_line("ipv4 2 tcp"), None);
    }

    #[test]
    fn connections_are_reported_once_when_they_end() {
        let mut t = Tracker::new(10);
        let mut open = parse_line(TCP).unwrap();
        open.state = Some("ESTABLISHED".into());
        assert!(
            t.poll(vec![open, parse_line(UDP).unwrap()], 1000)
                .is_empty()
        );
        let ended = t.poll(
            vec![parse_line(TCP).unwrap(), parse_line(UDP).unwrap()],
            2000,
        );
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].first_ms, 1000);
        assert!(
            t.poll(vec![parse_line(TCP).unwrap()], 3000).len() == 1,
            "the UDP entry left"
        );
        assert!(
            t.poll(Vec::new(), 4000).is_empty(),
            "the TCP one was already reported"
        );
    }
}
