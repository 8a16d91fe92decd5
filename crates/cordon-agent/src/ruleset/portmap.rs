//! Dispatch by port: rules that name ports are reached through a verdict
//! map per protocol keyed by destination port, so a packet meets the few
//! rules for its port instead of walking every rule.
//!
//! The port space of each protocol is cut into pieces where the set of
//! rules covering it is constant; each piece jumps to a chain holding those
//! rules, denies first. With the denies that name no port before the map
//! and the allows that name no port after it, deny still overrides allow
//! whatever the order of the rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use cordon_policy::ports::{PortRange, Protocol};

/// The rules that start and end covering the port space at one point.
type Edges = (Vec<usize>, Vec<usize>);

/// The rules of one base chain, sorted for dispatch.
#[derive(Debug, Default)]
pub struct ChainRules {
    /// Lines before the port map: denies that name no port.
    pub before: Vec<String>,
    /// Lines after the port map: allows that name no port.
    pub after: Vec<String>,
    /// Port-specific lines, denies first: protocol, first and last port.
    ported: Vec<(Protocol, u16, u16, String)>,
}

impl ChainRules {
    /// Add a rule's line for one peer match: `addr` (the address part),
    /// `ports` (the rule's ports), `tail` (counter, log, verdict, comment).
    /// `port_matches` renders the ports for rules that cannot be mapped.
    pub fn add(
        &mut self,
        deny: bool,
        addr: &str,
        ports: &[PortRange],
        tail: &str,
        port_matches: impl Fn(&[PortRange]) -> Vec<String>,
    ) {
        let mappable = !ports.is_empty()
            && ports
                .iter()
                .all(|p| p.protocol.is_some_and(|proto| proto.has_ports()) && !p.is_all_ports());
        if mappable {
            for p in ports {
                if let Some(proto) = p.protocol {
                    self.ported
                        .push((proto, p.first, p.last, format!("{addr}{tail}")));
                }
            }
            return;
        }
        let lines = if deny {
            &mut self.before
        } else {
            &mut self.after
        };
        for p in port_matches(ports) {
            lines.push(format!("{addr}{p}{tail}"));
        }
    }

    /// The chains the map jumps to (written to `out`, named `{base}_pN`)
    /// and the map line for the base chain, if any rule names ports.
    pub fn port_chains(&self, base: &str, out: &mut String) -> Vec<String> {
        if self.ported.is_empty() {
            return Vec::new();
        }
        // Per protocol, the pieces of the port space and the rules covering
        // each, by a sweep over range starts and ends.
        // Chains by their lines: pieces covered by the same rules share one.
        let mut chains: BTreeMap<Vec<&str>, usize> = BTreeMap::new();
        // One map per protocol: a map keyed by port alone is an interval
        // tree, whose lookup stays cheap with thousands of ports (a map
        // keyed by protocol and port together measured three times slower
        // per new connection with 10,000 ports).
        let mut maps: Vec<String> = Vec::new();
        let protocols: BTreeSet<u8> = self.ported.iter().map(|(p, ..)| p.0).collect();
        for proto in protocols {
            let mut events: BTreeMap<u32, Edges> = BTreeMap::new();
            for (i, (p, first, last, _)) in self.ported.iter().enumerate() {
                if p.0 != proto {
                    continue;
                }
                events.entry(u32::from(*first)).or_default().0.push(i);
                events.entry(u32::from(*last) + 1).or_default().1.push(i);
            }
            let mut active: BTreeSet<usize> = BTreeSet::new();
            let points: Vec<(u32, Edges)> = events.into_iter().collect();
            let mut pieces: Vec<(u32, u32, usize)> = Vec::new();
            for (k, (at, (starts, ends))) in points.iter().enumerate() {
                for e in ends {
                    active.remove(e);
                }
                active.extend(starts.iter().copied());
                let Some((next, _)) = points.get(k + 1) else {
                    continue;
                };
                if active.is_empty() {
                    continue;
                }
                let cover: Vec<&str> = active
                    .iter()
                    .filter_map(|i| self.ported.get(*i).map(|(.., line)| line.as_str()))
                    .collect();
                let n = chains.len();
                let chain = *chains.entry(cover).or_insert(n);
                match pieces.last_mut() {
                    Some(last) if last.2 == chain && last.1 + 1 == *at => last.1 = next - 1,
                    _ => pieces.push((*at, next - 1, chain)),
                }
            }
            let name = Protocol(proto).name();
            let elements: Vec<String> = pieces
                .into_iter()
                .map(|(first, last, chain)| {
                    if first == last {
                        format!("{first} : jump {base}_p{chain}")
                    } else {
                        format!("{first}-{last} : jump {base}_p{chain}")
                    }
                })
                .collect();
            maps.push(format!("{name} dport vmap {{ {} }}", elements.join(", ")));
        }
        let mut by_number: Vec<(&Vec<&str>, &usize)> = chains.iter().collect();
        by_number.sort_by_key(|(_, n)| **n);
        for (lines, n) in by_number {
            let _ = writeln!(out, "  chain {base}_p{n} {{");
            for line in lines {
                let _ = writeln!(out, "    {line}");
            }
            let _ = writeln!(out, "  }}");
        }
        maps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(proto: Protocol, first: u16, last: u16) -> PortRange {
        PortRange {
            protocol: Some(proto),
            first,
            last,
        }
    }

    #[test]
    fn overlapping_ranges_become_pieces_with_every_covering_rule() {
        let mut c = ChainRules::default();
        let none = |_: &[PortRange]| vec![String::new()];
        c.add(
            true,
            "ip saddr @a ",
            &[range(Protocol::TCP, 5000, 6000)],
            "drop",
            none,
        );
        c.add(
            false,
            "ip saddr @b ",
            &[range(Protocol::TCP, 5432, 5432)],
            "accept",
            none,
        );
        c.add(false, "", &[range(Protocol::UDP, 53, 53)], "accept", none);
        c.add(false, "ip saddr @c ", &[], "accept", none);
        let mut chains = String::new();
        let maps = c.port_chains("input", &mut chains);
        assert_eq!(
            maps,
            [
                "tcp dport vmap { 5000-5431 : jump input_p0, 5432 : jump input_p1, 5433-6000 : jump input_p0 }",
                "udp dport vmap { 53 : jump input_p2 }"
            ]
        );
        // The piece at 5432 holds the deny before the allow.
        let p1 = chains.split("chain input_p1 {").nth(1).unwrap();
        assert!(
            p1.find("drop").unwrap() < p1.find("accept").unwrap(),
            "{chains}"
        );
        assert_eq!(c.after, ["ip saddr @c accept"]);
    }
}
