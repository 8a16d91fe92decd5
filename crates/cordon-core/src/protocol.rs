//! IP protocols by number, with the one table of their names.

use std::fmt;

/// An IP protocol number (IANA), as carried in flows and requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Protocol(pub u8);

/// A protocol Cordon names: its number, the name Cordon writes (and policies
/// use), the IANA keyword other tools write, and other spellings read.
struct Known {
    number: u8,
    name: &'static str,
    keyword: &'static str,
    aliases: &'static [&'static str],
    /// Whether policies may name it in `ports`.
    in_policies: bool,
}

/// The one table of protocol names.
const KNOWN: &[Known] = &[
    Known {
        number: 1,
        name: "icmp",
        keyword: "icmp",
        aliases: &[],
        in_policies: true,
    },
    Known {
        number: 6,
        name: "tcp",
        keyword: "tcp",
        aliases: &[],
        in_policies: true,
    },
    Known {
        number: 17,
        name: "udp",
        keyword: "udp",
        aliases: &[],
        in_policies: true,
    },
    Known {
        number: 47,
        name: "gre",
        keyword: "gre",
        aliases: &[],
        in_policies: false,
    },
    Known {
        number: 50,
        name: "esp",
        keyword: "esp",
        aliases: &[],
        in_policies: false,
    },
    Known {
        number: 58,
        name: "icmpv6",
        keyword: "ipv6-icmp",
        aliases: &["icmp6", "ipv6-icmp"],
        in_policies: true,
    },
    Known {
        number: 132,
        name: "sctp",
        keyword: "sctp",
        aliases: &[],
        in_policies: true,
    },
];

impl Protocol {
    /// ICMP for IPv4.
    pub const ICMP: Protocol = Protocol(1);
    /// TCP.
    pub const TCP: Protocol = Protocol(6);
    /// UDP.
    pub const UDP: Protocol = Protocol(17);
    /// ICMP for IPv6.
    pub const ICMPV6: Protocol = Protocol(58);
    /// SCTP.
    pub const SCTP: Protocol = Protocol(132);

    fn known(self) -> Option<&'static Known> {
        KNOWN.iter().find(|k| k.number == self.0)
    }

    /// The protocol a policy's `ports` entry names (`tcp`, `udp`, `sctp`,
    /// `icmp`, `icmpv6`), case-insensitively.
    pub fn from_name(name: &str) -> Option<Protocol> {
        KNOWN
            .iter()
            .find(|k| k.in_policies && k.name.eq_ignore_ascii_case(name))
            .map(|k| Protocol(k.number))
    }

    /// The protocol a record or an argument names: any name, IANA keyword
    /// or alias in the table (`ipv6-icmp`, `gre`, ...), or a number.
    pub fn from_any_name(name: &str) -> Option<Protocol> {
        let found = KNOWN.iter().find(|k| {
            k.name.eq_ignore_ascii_case(name)
                || k.keyword.eq_ignore_ascii_case(name)
                || k.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        });
        match found {
            Some(k) => Some(Protocol(k.number)),
            None => name.parse().ok().map(Protocol),
        }
    }

    /// Whether the protocol has ports.
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::TCP | Protocol::UDP | Protocol::SCTP)
    }

    /// The name Cordon writes (`tcp`, `icmpv6`), or `proto-N`.
    pub fn name(self) -> String {
        match self.known() {
            Some(k) => k.name.to_string(),
            None => format!("proto-{}", self.0),
        }
    }

    /// The IANA keyword (`tcp`, `ipv6-icmp`) when the table knows it: what
    /// OCSF and STIX write.
    pub fn keyword(self) -> Option<&'static str> {
        self.known().map(|k| k.keyword)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.name())
    }
}

impl From<u8> for Protocol {
    fn from(n: u8) -> Self {
        Protocol(n)
    }
}

#[cfg(test)]
mod tests {
    use super::Protocol;

    #[test]
    fn names_round_trip_through_the_table() {
        for n in [1u8, 6, 17, 47, 50, 58, 132] {
            let p = Protocol(n);
            assert_eq!(Protocol::from_any_name(&p.name()), Some(p));
            assert_eq!(Protocol::from_any_name(p.keyword().unwrap_or("")), Some(p));
        }
        assert_eq!(Protocol(99).name(), "proto-99");
        assert_eq!(Protocol::from_any_name("99"), Some(Protocol(99)));
        assert_eq!(Protocol::from_any_name("ICMP6"), Some(Protocol::ICMPV6));
    }

    #[test]
    fn policies_name_only_their_protocols() {
        assert_eq!(Protocol::from_name("TCP"), Some(Protocol::TCP));
        assert_eq!(Protocol::from_name("icmpv6"), Some(Protocol::ICMPV6));
        assert_eq!(Protocol::from_name("gre"), None);
        assert_eq!(Protocol::from_name("6"), None);
    }
}
