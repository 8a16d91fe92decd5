//! The compiled ruleset as data. The compiler builds a [`Table`], and both
//! renderings come from it: the nft script (`Table::script`, for people,
//! `--print` and `nft -f`) and the netlink batch the agent applies
//! ([`crate::netlink`]). Both encode the same expressions, which a test
//! checks by listing what each of them loaded.

use std::fmt::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::flows::NFLOG_GROUP;

/// What the kernel would refuse in a table, said before it is asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TableError(pub String);

/// The agent's table: `inet`, named [`super::TABLE`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// The table's comment; it starts with [`super::OWNER`].
    pub comment: String,
    /// Named sets and verdict maps, referenced by the rules.
    pub sets: Vec<Set>,
    /// Chains: the ones jumped to first, the base chains last.
    pub chains: Vec<Chain>,
}

/// What a set's elements are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// IPv4 addresses.
    Ipv4,
    /// IPv6 addresses.
    Ipv6,
    /// Transport ports.
    Port,
}

impl Key {
    /// The key's length in bytes.
    #[must_use]
    pub fn width(self) -> usize {
        match self {
            Key::Ipv4 => 4,
            Key::Ipv6 => 16,
            Key::Port => 2,
        }
    }

    /// The largest key.
    #[must_use]
    pub fn max(self) -> u128 {
        match self {
            Key::Ipv4 => u128::from(u32::MAX),
            Key::Ipv6 => u128::MAX,
            Key::Port => u128::from(u16::MAX),
        }
    }

    /// The key's bytes in network order (`value` is at most [`Key::max`]).
    #[must_use]
    pub fn bytes(self, value: u128) -> Vec<u8> {
        let all = value.to_be_bytes();
        all.get(16 - self.width()..).unwrap_or_default().to_vec()
    }

    /// nft's name of the key's type.
    #[must_use]
    pub fn type_name(self) -> &'static str {
        match self {
            Key::Ipv4 => "ipv4_addr",
            Key::Ipv6 => "ipv6_addr",
            Key::Port => "inet_service",
        }
    }

    fn show(self, value: u128) -> String {
        match self {
            Key::Ipv4 => Ipv4Addr::from(u32::try_from(value).unwrap_or(u32::MAX)).to_string(),
            Key::Ipv6 => Ipv6Addr::from(value).to_string(),
            Key::Port => value.to_string(),
        }
    }
}

/// A named set, or a verdict map when `map` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    /// The set's name in the table.
    pub name: String,
    /// The elements' type.
    pub key: Key,
    /// A verdict map (every element jumps to a chain).
    pub map: bool,
    /// Elements are ranges (an interval tree); otherwise single keys (a
    /// hash table: one probe per lookup, for exact ports).
    pub interval: bool,
    /// A comment for people listing the table.
    pub comment: Option<String>,
    /// Disjoint inclusive ranges, ascending; adjacent ones only in maps,
    /// where they jump to different chains.
    pub elements: Vec<Element>,
}

/// One range of a set, with the chain a map jumps to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Element {
    /// The first key in the range.
    pub first: u128,
    /// The last key in the range.
    pub last: u128,
    /// For maps: the chain to jump to.
    pub jump: Option<String>,
}

impl Element {
    /// The element covering `net`.
    #[must_use]
    pub fn net(net: &IpNet) -> Element {
        let (first, last) = match net {
            IpNet::V4(n) => (
                u128::from(u32::from(n.network())),
                u128::from(u32::from(n.broadcast())),
            ),
            IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
        };
        Element {
            first,
            last,
            jump: None,
        }
    }
}

/// Merge `nets` (any order, overlapping or not) into ascending disjoint
/// ranges, joining neighbours: fewer elements for the kernel to hold.
#[must_use]
pub fn ranges(nets: &[IpNet]) -> Vec<Element> {
    merge(nets.iter().map(Element::net).collect())
}

/// Sort plain ranges (no jumps) and join the overlapping and adjacent ones.
#[must_use]
pub fn merge(mut all: Vec<Element>) -> Vec<Element> {
    all.sort();
    let mut out: Vec<Element> = Vec::with_capacity(all.len());
    for e in all {
        match out.last_mut() {
            Some(prev) if e.first <= prev.last.saturating_add(1) => {
                prev.last = prev.last.max(e.last);
            }
            _ => out.push(e),
        }
    }
    out
}

/// Where a base chain hooks in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    /// Packets to this host.
    Input,
    /// Packets from this host.
    Output,
}

/// A chain and its rules, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The chain's name.
    pub name: String,
    /// For base chains: the hook (type filter, priority filter, policy accept).
    pub hook: Option<Hook>,
    /// The rules, evaluated in order.
    pub rules: Vec<Rule>,
}

/// Which address of the packet a match reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The source address.
    Source,
    /// The destination address.
    Destination,
}

/// One condition of a rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Match {
    /// `ct state established,related`.
    Established,
    /// The loopback interface (`iif "lo"` on input, `oif "lo"` on output).
    Loopback(Hook),
    /// The transport protocol number.
    Protocol(u8),
    /// The address on `side` is (or with `negate`, is not) in `set`.
    AddressIn {
        /// IPv6 rather than IPv4.
        v6: bool,
        /// Which address.
        side: Side,
        /// The set's name.
        set: String,
        /// Not in the set.
        negate: bool,
    },
    /// The address on `side` is in `net`.
    AddressPrefix {
        /// Which address.
        side: Side,
        /// The prefix.
        net: IpNet,
    },
    /// The destination port is in `set` (after a [`Match::Protocol`]).
    PortIn(String),
    /// An ICMPv6 message of a link-local protocol (neighbour and router
    /// discovery, multicast listener discovery) with the hop limit its
    /// protocol requires, so it cannot come from off the link.
    LinkLocalIcmpv6 {
        /// The ICMPv6 type.
        icmp_type: u8,
        /// The hop limit: 255 for discovery, 1 for listener messages.
        hop_limit: u8,
    },
}

/// The ICMPv6 messages IPv6 needs on the link (RFC 4890 section 4.4.1):
/// type and hop limit.
pub const LINK_LOCAL_ICMPV6: [(u8, u8); 8] = [
    (130, 1),
    (131, 1),
    (132, 1),
    (143, 1),
    (133, 255),
    (134, 255),
    (135, 255),
    (136, 255),
];

/// nft's name of an ICMPv6 type.
#[must_use]
pub fn icmpv6_type_name(icmp_type: u8) -> String {
    match icmp_type {
        130 => "mld-listener-query".into(),
        131 => "mld-listener-report".into(),
        132 => "mld-listener-done".into(),
        133 => "nd-router-solicit".into(),
        134 => "nd-router-advert".into(),
        135 => "nd-neighbor-solicit".into(),
        136 => "nd-neighbor-advert".into(),
        143 => "mld2-listener-report".into(),
        n => n.to_string(),
    }
}

/// What a rule does when it matches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Let the packet through.
    Accept,
    /// Drop it.
    Drop,
    /// Jump to the chain the named verdict map gives for the destination
    /// port (after a [`Match::Protocol`]); nothing happens if no range has it.
    PortMap(String),
}

/// A rule: all matches, then a counter, an NFLOG record, the verdict.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    /// Conditions, all of which must hold.
    pub matches: Vec<Match>,
    /// Count packets and bytes.
    pub counter: bool,
    /// Send the packet to the NFLOG group with this prefix.
    pub log: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// A comment (the policy rule's name).
    pub comment: Option<String>,
}

fn protocol_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "ipv6-icmp".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |s: &Side| match s {
            Side::Source => "saddr",
            Side::Destination => "daddr",
        };
        match self {
            Match::Established => f.write_str("ct state established,related"),
            Match::Loopback(Hook::Input) => f.write_str("iif \"lo\""),
            Match::Loopback(Hook::Output) => f.write_str("oif \"lo\""),
            Match::Protocol(p) => write!(f, "meta l4proto {}", protocol_name(*p)),
            Match::AddressIn {
                v6,
                side: s,
                set,
                negate,
            } => write!(
                f,
                "{} {} {}@{set}",
                if *v6 { "ip6" } else { "ip" },
                side(s),
                if *negate { "!= " } else { "" }
            ),
            Match::AddressPrefix { side: s, net } => write!(
                f,
                "{} {} {net}",
                if matches!(net, IpNet::V6(_)) {
                    "ip6"
                } else {
                    "ip"
                },
                side(s)
            ),
            Match::PortIn(set) => write!(f, "th dport @{set}"),
            Match::LinkLocalIcmpv6 {
                icmp_type,
                hop_limit,
            } => write!(
                f,
                "icmpv6 type {} ip6 hoplimit {hop_limit}",
                icmpv6_type_name(*icmp_type)
            ),
        }
    }
}

/// Quote `text` for nft: no quotes, backslashes or newlines, bounded.
#[must_use]
pub fn quoted(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !matches!(c, '"' | '\\' | '\n' | '\r'))
        .take(max)
        .collect()
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.matches.iter().map(ToString::to_string).collect();
        if self.counter {
            parts.push("counter".into());
        }
        if let Some(prefix) = &self.log {
            parts.push(format!(
                "log group {NFLOG_GROUP} prefix \"{}\"",
                quoted(prefix, 127)
            ));
        }
        parts.push(match &self.verdict {
            Verdict::Accept => "accept".into(),
            Verdict::Drop => "drop".into(),
            Verdict::PortMap(map) => format!("th dport vmap @{map}"),
        });
        if let Some(c) = &self.comment {
            parts.push(format!("comment \"{}\"", quoted(c, 120)));
        }
        f.write_str(&parts.join(" "))
    }
}

impl Set {
    /// The set's elements as nft writes them: an address or port, a prefix
    /// when the range is one, else `first-last`; `: jump chain` for maps.
    fn element_text(&self, e: &Element) -> String {
        let mut s = if e.first == e.last {
            self.key.show(e.first)
        } else if let Some(len) = prefix_len(self.key, e.first, e.last) {
            format!("{}/{len}", self.key.show(e.first))
        } else {
            format!("{}-{}", self.key.show(e.first), self.key.show(e.last))
        };
        if let Some(chain) = &e.jump {
            let _ = write!(s, " : jump {chain}");
        }
        s
    }
}

/// The prefix length when `first..=last` is exactly one address prefix.
fn prefix_len(key: Key, first: u128, last: u128) -> Option<u32> {
    if key == Key::Port {
        return None;
    }
    let bits = 8 * key.width() as u32;
    let span = last.checked_sub(first)?;
    // A prefix: span + 1 is a power of two and `first` is aligned to it.
    let size = span.checked_add(1);
    let host_bits = match size {
        Some(s) if s.is_power_of_two() => s.trailing_zeros(),
        None if first == 0 => 128,
        _ => return None,
    };
    let aligned = host_bits >= 128 || first & ((1u128 << host_bits) - 1) == 0;
    (aligned && host_bits <= bits).then(|| bits - host_bits)
}

/// nf_tables' longest chain and set name, bytes (`NFT_NAME_MAXLEN` less the NUL).
const MAX_NAME: usize = 255;

impl Table {
    /// Check what the kernel would refuse, before it is asked: names too
    /// long or repeated, elements out of order or overlapping (neighbours
    /// only in maps), keys out of range, references to sets or chains that
    /// are not in the table.
    ///
    /// # Errors
    /// The first problem found, in words.
    pub fn check(&self) -> Result<(), TableError> {
        let mut sets = std::collections::BTreeMap::new();
        for set in &self.sets {
            if set.name.is_empty() || set.name.len() > MAX_NAME {
                return Err(TableError(format!(
                    "set name `{}` is empty or too long",
                    set.name
                )));
            }
            if sets.insert(set.name.as_str(), set).is_some() {
                return Err(TableError(format!("set `{}` is defined twice", set.name)));
            }
        }
        let chains: std::collections::BTreeSet<&str> =
            self.chains.iter().map(|c| c.name.as_str()).collect();
        if chains.len() != self.chains.len() {
            return Err(TableError("a chain is defined twice".into()));
        }
        for set in &self.sets {
            let mut previous: Option<&Element> = None;
            for e in &set.elements {
                if e.first > e.last || e.last > set.key.max() {
                    return Err(TableError(format!(
                        "set `{}`: element {}-{} is not a range of its keys",
                        set.name, e.first, e.last
                    )));
                }
                if !set.interval && e.first != e.last {
                    return Err(TableError(format!(
                        "set `{}` holds single keys, not ranges",
                        set.name
                    )));
                }
                if let Some(p) = previous {
                    let touching =
                        (set.map || !set.interval) && p.last.checked_add(1) == Some(e.first);
                    if e.first <= p.last || (!touching && p.last.checked_add(1) == Some(e.first)) {
                        return Err(TableError(format!(
                            "set `{}`: elements out of order or overlapping at {}",
                            set.name,
                            set.element_text(e)
                        )));
                    }
                }
                match (&e.jump, set.map) {
                    (Some(chain), true) if chains.contains(chain.as_str()) => {}
                    (Some(chain), true) => {
                        return Err(TableError(format!(
                            "map `{}` jumps to no chain `{chain}`",
                            set.name
                        )));
                    }
                    (None, false) => {}
                    _ => {
                        return Err(TableError(format!(
                            "set `{}`: a verdict where none belongs, or none where one does",
                            set.name
                        )));
                    }
                }
                previous = Some(e);
            }
        }
        for chain in &self.chains {
            if chain.name.is_empty() || chain.name.len() > MAX_NAME {
                return Err(TableError(format!(
                    "chain name `{}` is empty or too long",
                    chain.name
                )));
            }
            for rule in &chain.rules {
                let mut wanted: Vec<(&str, bool)> = Vec::new();
                for m in &rule.matches {
                    match m {
                        Match::AddressIn { set, .. } | Match::PortIn(set) => {
                            wanted.push((set, false))
                        }
                        _ => {}
                    }
                }
                if let Verdict::PortMap(map) = &rule.verdict {
                    wanted.push((map, true));
                }
                for (name, map) in wanted {
                    match sets.get(name) {
                        Some(s) if s.map == map => {}
                        Some(_) => {
                            return Err(TableError(format!(
                                "chain `{}`: `{name}` is used as a {} but is not one",
                                chain.name,
                                if map { "map" } else { "set" }
                            )));
                        }
                        None => {
                            return Err(TableError(format!(
                                "chain `{}`: rule `{rule}` names no set `{name}`",
                                chain.name
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The nft script that replaces the table in one transaction.
    #[must_use]
    pub fn script(&self) -> String {
        use super::TABLE;
        let mut s = String::new();
        // Create-then-delete makes the replacement one transaction whether
        // or not the table exists yet.
        let _ = writeln!(
            s,
            "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{"
        );
        let _ = writeln!(s, "  comment \"{}\"", quoted(&self.comment, 120));
        for set in &self.sets {
            let kind = if set.map { "map" } else { "set" };
            let data = if set.map { " : verdict" } else { "" };
            let _ = write!(
                s,
                "  {kind} {} {{ type {}{data}; {}",
                set.name,
                set.key.type_name(),
                if set.interval { "flags interval; " } else { "" }
            );
            if let Some(c) = &set.comment {
                let _ = write!(s, "comment \"{}\"; ", quoted(c, 120));
            }
            if !set.elements.is_empty() {
                let items: Vec<String> = set.elements.iter().map(|e| set.element_text(e)).collect();
                let _ = write!(s, "elements = {{ {} }}; ", items.join(", "));
            }
            s.push_str("}\n");
        }
        for chain in &self.chains {
            let _ = writeln!(s, "  chain {} {{", chain.name);
            match chain.hook {
                Some(Hook::Input) => {
                    s.push_str("    type filter hook input priority filter; policy accept;\n")
                }
                Some(Hook::Output) => {
                    s.push_str("    type filter hook output priority filter; policy accept;\n")
                }
                None => {}
            }
            for rule in &chain.rules {
                let _ = writeln!(s, "    {rule}");
            }
            s.push_str("  }\n");
        }
        s.push_str("}\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_neighbours_and_overlaps_and_print_as_prefixes_when_they_are() {
        let nets: Vec<IpNet> = ["10.0.1.0/24", "10.0.0.0/24", "10.0.0.5/32", "10.0.3.0/24"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let set = Set {
            name: "s".into(),
            key: Key::Ipv4,
            map: false,
            interval: true,
            comment: None,
            elements: ranges(&nets),
        };
        let shown: Vec<String> = set.elements.iter().map(|e| set.element_text(e)).collect();
        assert_eq!(shown, ["10.0.0.0/23", "10.0.3.0/24"]);
        let odd = Element {
            first: u128::from(u32::from(Ipv4Addr::new(10, 0, 0, 1))),
            last: u128::from(u32::from(Ipv4Addr::new(10, 0, 0, 2))),
            jump: None,
        };
        assert_eq!(set.element_text(&odd), "10.0.0.1-10.0.0.2");
        let all = ranges(&["::/0".parse().unwrap()]);
        assert_eq!(prefix_len(Key::Ipv6, all[0].first, all[0].last), Some(0));
        assert_eq!(Key::Port.bytes(443), [1, 187]);
    }

    fn rule(set: &str) -> Rule {
        Rule {
            matches: vec![Match::AddressIn {
                v6: false,
                side: Side::Source,
                set: set.into(),
                negate: false,
            }],
            counter: true,
            log: None,
            verdict: Verdict::Accept,
            comment: None,
        }
    }

    #[test]
    fn a_table_the_kernel_would_refuse_is_caught_first() {
        let good = Table {
            comment: "c".into(),
            sets: vec![Set {
                name: "s".into(),
                key: Key::Ipv4,
                map: false,
                interval: true,
                comment: None,
                elements: vec![
                    Element {
                        first: 1,
                        last: 5,
                        jump: None,
                    },
                    Element {
                        first: 7,
                        last: 9,
                        jump: None,
                    },
                ],
            }],
            chains: vec![Chain {
                name: "input".into(),
                hook: Some(Hook::Input),
                rules: vec![rule("s")],
            }],
        };
        assert_eq!(good.check(), Ok(()));
        let mut overlapping = good.clone();
        overlapping.sets[0].elements[1].first = 5;
        assert!(overlapping.check().unwrap_err().0.contains("overlapping"));
        let mut touching = good.clone();
        touching.sets[0].elements[1].first = 6;
        assert!(
            touching.check().is_err(),
            "neighbours must have been joined"
        );
        let mut missing = good.clone();
        missing.chains[0].rules.push(rule("nowhere"));
        assert!(missing.check().unwrap_err().0.contains("no set `nowhere`"));
        let mut long = good.clone();
        long.chains[0].name = "x".repeat(300);
        assert!(long.check().is_err());
        let mut map = good.clone();
        map.sets[0].map = true;
        map.sets[0].elements[0].jump = Some("nowhere".into());
        assert!(map.check().is_err());
    }
}
