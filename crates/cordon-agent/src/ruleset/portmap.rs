//! Dispatch by port: rules that name ports are reached through a verdict
//! map per protocol keyed by destination port, so a packet meets the few
//! rules for its port instead of walking every rule.
//!
//! The port space of each protocol is cut into pieces where the set of
//! rules covering it is constant; each piece jumps to a chain holding those
//! rules, in tier order.
//!
//! Tiers follow the policy engine: an enforced deny overrides an audited
//! deny, which overrides an allow. Without audited denies one map serves
//! both other tiers: enforced denies naming no port, then the map (each
//! piece's chain: its denies, then its allows), then allows naming no port.
//! With audited denies each tier gets its rules naming no port and its own
//! map, in tier order, so no audited deny can accept a packet an enforced
//! deny drops, and no allow can let through unlogged a packet an audited
//! deny would deny.

use std::collections::{BTreeMap, BTreeSet};

use cordon_policy::ports::{PortRange, Protocol};

use super::model::{self, Chain, Element, Hook, Key, Match, Rule, Set, Verdict};

/// Ranges of fewer ports than this go in the exact-port map one by one.
const SPELLED_OUT: u32 = 16;

/// The rules that start and end covering the port space at one point.
type Edges = (Vec<usize>, Vec<usize>);

/// Which kind of rule: the tiers, in the order they are decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// An enforced deny: drops.
    Deny,
    /// An audited deny: logs `would-deny` and accepts.
    WouldDeny,
    /// An allow: accepts.
    Allow,
}

impl Tier {
    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Tier::Deny => "deny",
            Tier::WouldDeny => "audit",
            Tier::Allow => "allow",
        }
    }
}

/// A rule for one port range of one protocol.
type Ported = (Protocol, u16, u16, Rule);

/// The rules of one base chain, sorted for dispatch.
#[derive(Debug)]
pub struct ChainRules {
    /// The base chain's name: `input` or `output`.
    base: &'static str,
    /// Per tier: the rules that name no port (or cannot go through a map).
    portless: [Vec<Rule>; 3],
    /// Per tier: port-specific rules: protocol, first and last port.
    ported: [Vec<Ported>; 3],
    /// Port sets of rules that cannot go through a map.
    port_sets: Vec<Set>,
}

impl ChainRules {
    /// No rules yet for the base chain `base`.
    pub fn new(base: &'static str) -> ChainRules {
        ChainRules {
            base,
            portless: Default::default(),
            ported: Default::default(),
            port_sets: Vec::new(),
        }
    }

    /// Add a policy rule for one peer: `addr` (the address matches),
    /// `ports` (the rule's ports), `template` (counter, log, verdict,
    /// comment; its matches are ignored).
    pub fn add(&mut self, tier: Tier, addr: Vec<Match>, ports: &[PortRange], template: &Rule) {
        let with = |extra: Vec<Match>| {
            let mut matches = addr.clone();
            matches.extend(extra);
            Rule {
                matches,
                ..template.clone()
            }
        };
        let mappable = !ports.is_empty()
            && ports
                .iter()
                .all(|p| p.protocol.is_some_and(|proto| proto.has_ports()) && !p.is_all_ports());
        if mappable {
            for p in ports {
                if let Some((proto, list)) = p.protocol.zip(self.ported.get_mut(tier.index())) {
                    list.push((proto, p.first, p.last, with(Vec::new())));
                }
            }
            return;
        }
        let rules: Vec<Rule> = self.port_matches(ports).into_iter().map(with).collect();
        if let Some(list) = self.portless.get_mut(tier.index()) {
            list.extend(rules);
        }
    }

    /// The matches for ports that cannot go through a map: one list per
    /// protocol, port lists as named sets.
    fn port_matches(&mut self, ports: &[PortRange]) -> Vec<Vec<Match>> {
        if ports.is_empty() || ports.iter().any(|p| p.protocol.is_none()) {
            return vec![Vec::new()];
        }
        let mut out = Vec::new();
        for proto in [Protocol::TCP, Protocol::UDP, Protocol::SCTP] {
            let list: Vec<&PortRange> =
                ports.iter().filter(|p| p.protocol == Some(proto)).collect();
            if list.is_empty() {
                continue;
            }
            if list.iter().any(|p| p.is_all_ports()) {
                out.push(vec![Match::Protocol(proto.0)]);
                continue;
            }
            let name = format!("{}_ports{}", self.base, self.port_sets.len());
            self.port_sets.push(Set {
                name: name.clone(),
                key: Key::Port,
                map: false,
                interval: true,
                comment: None,
                elements: model::merge(
                    list.iter()
                        .map(|p| Element {
                            first: u128::from(p.first),
                            last: u128::from(p.last),
                            jump: None,
                        })
                        .collect(),
                ),
            });
            out.push(vec![Match::Protocol(proto.0), Match::PortIn(name)]);
        }
        for p in ports {
            match p.protocol {
                Some(proto) if !proto.has_ports() => out.push(vec![Match::Protocol(proto.0)]),
                _ => {}
            }
        }
        out.dedup();
        out
    }

    /// Build the base chain for `hook` (established, loopback and
    /// link-local ICMPv6 first, then the tiers, `default` last) with the
    /// chains its maps jump to and the sets they use.
    pub fn finish(
        mut self,
        hook: Hook,
        first: &[Rule],
        default: &Rule,
        sets: &mut Vec<Set>,
        chains: &mut Vec<Chain>,
    ) {
        let base = self.base;
        let [deny, would_deny, allow] = std::mem::take(&mut self.portless);
        let [deny_ported, would_deny_ported, allow_ported] = std::mem::take(&mut self.ported);
        let mut tiers: Vec<Rule> = Vec::new();
        if would_deny.is_empty() && would_deny_ported.is_empty() {
            // One map for both tiers: each piece's chain holds its denies
            // before its allows.
            let mut both = deny_ported;
            both.extend(allow_ported);
            tiers.extend(deny);
            tiers.extend(dispatch(base, &both, sets, chains));
            tiers.extend(allow);
        } else {
            for (tier, portless, ported) in [
                (Tier::Deny, deny, deny_ported),
                (Tier::WouldDeny, would_deny, would_deny_ported),
                (Tier::Allow, allow, allow_ported),
            ] {
                tiers.extend(portless);
                let prefix = format!("{base}_{}", tier.name());
                tiers.extend(dispatch(&prefix, &ported, sets, chains));
            }
        }
        sets.append(&mut self.port_sets);
        // Loopback and the link's own ICMPv6 first: nothing (not even a
        // response) cuts a host off from itself or its link. Then `first`
        // (the responses), which must see established connections too.
        let mut rules = vec![Rule {
            matches: vec![Match::Loopback(hook)],
            counter: false,
            log: None,
            verdict: Verdict::Accept,
            comment: None,
        }];
        // IPv6 needs neighbour discovery (ARP's part) to reach anyone,
        // router discovery for its addresses and listener reports for its
        // multicast groups; conntrack does not see these as related to
        // anything, so default deny would cut the host off.
        for (icmp_type, hop_limit) in model::LINK_LOCAL_ICMPV6 {
            rules.push(Rule {
                matches: vec![Match::LinkLocalIcmpv6 {
                    icmp_type,
                    hop_limit,
                }],
                counter: false,
                log: None,
                verdict: Verdict::Accept,
                comment: None,
            });
        }
        rules.extend(first.iter().cloned());
        rules.push(Rule {
            matches: vec![Match::Established],
            counter: true,
            log: None,
            verdict: Verdict::Accept,
            comment: None,
        });
        rules.append(&mut tiers);
        rules.push(default.clone());
        chains.push(Chain {
            name: base.to_string(),
            hook: Some(hook),
            rules,
        });
    }
}

/// The maps and chains that dispatch `ported` by destination port: one
/// hash map (and one interval map for long ranges) per protocol, named
/// `{prefix}_{protocol}`, jumping to chains `{prefix}_pN`. Returns the
/// rules of the base chain that consult them.
fn dispatch(
    prefix: &str,
    ported: &[Ported],
    sets: &mut Vec<Set>,
    chains: &mut Vec<Chain>,
) -> Vec<Rule> {
    let base = prefix;
    let mut targets: BTreeMap<Vec<&Rule>, usize> = BTreeMap::new();
    let mut dispatch: Vec<Rule> = Vec::new();
    // One map per protocol: a map keyed by port alone is an interval
    // tree, whose lookup stays cheap with thousands of ports (a map
    // keyed by protocol and port together measured three times slower
    // per new connection with 10,000 ports).
    let protocols: BTreeSet<u8> = ported.iter().map(|(p, ..)| p.0).collect();
    for proto in protocols {
        // The pieces of the port space and the rules covering each, by
        // a sweep over range starts and ends.
        let mut events: BTreeMap<u32, Edges> = BTreeMap::new();
        for (i, (p, first, last, _)) in ported.iter().enumerate() {
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
            let cover: Vec<&Rule> = active
                .iter()
                .filter_map(|i| ported.get(*i).map(|(.., rule)| rule))
                .collect();
            let n = targets.len();
            let chain = *targets.entry(cover).or_insert(n);
            match pieces.last_mut() {
                Some(last) if last.2 == chain && last.1 + 1 == *at => last.1 = next - 1,
                _ => pieces.push((*at, next - 1, chain)),
            }
        }
        // Exact ports (and short ranges, spelled out) go in a hash map:
        // one probe per new connection. Longer ranges go in an interval
        // map consulted after it; pieces are disjoint, so a port is in
        // at most one of them.
        let mut exact: Vec<Element> = Vec::new();
        let mut ranges: Vec<Element> = Vec::new();
        for (first, last, chain) in pieces {
            let jump = Some(format!("{base}_p{chain}"));
            if last - first < SPELLED_OUT {
                exact.extend((first..=last).map(|port| Element {
                    first: u128::from(port),
                    last: u128::from(port),
                    jump: jump.clone(),
                }));
            } else {
                ranges.push(Element {
                    first: u128::from(first),
                    last: u128::from(last),
                    jump,
                });
            }
        }
        let name = Protocol(proto).name();
        for (map, interval, elements) in [
            (format!("{base}_{name}"), false, exact),
            (format!("{base}_{name}_ranges"), true, ranges),
        ] {
            if elements.is_empty() {
                continue;
            }
            sets.push(Set {
                name: map.clone(),
                key: Key::Port,
                map: true,
                interval,
                comment: None,
                elements,
            });
            dispatch.push(Rule {
                matches: vec![Match::Protocol(proto)],
                counter: false,
                log: None,
                verdict: Verdict::PortMap(map),
                comment: None,
            });
        }
    }
    let mut by_number: Vec<(Vec<&Rule>, usize)> = targets.into_iter().collect();
    by_number.sort_by_key(|(_, n)| *n);
    for (rules, n) in by_number {
        chains.push(Chain {
            name: format!("{base}_p{n}"),
            hook: None,
            rules: rules.into_iter().cloned().collect(),
        });
    }
    dispatch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::Table;

    fn range(proto: Protocol, first: u16, last: u16) -> PortRange {
        PortRange {
            protocol: Some(proto),
            first,
            last,
        }
    }

    fn rule(set: &str, verdict: Verdict) -> (Vec<Match>, Rule) {
        let addr = vec![Match::AddressIn {
            v6: false,
            side: model::Side::Source,
            set: set.into(),
            negate: false,
        }];
        let template = Rule {
            matches: Vec::new(),
            counter: true,
            log: None,
            verdict,
            comment: None,
        };
        (addr, template)
    }

    #[test]
    fn overlapping_ranges_become_pieces_with_every_covering_rule() {
        let mut c = ChainRules::new("input");
        let (a, t) = rule("a", Verdict::Drop);
        c.add(Tier::Deny, a, &[range(Protocol::TCP, 5000, 6000)], &t);
        let (b, t) = rule("b", Verdict::Accept);
        c.add(Tier::Allow, b, &[range(Protocol::TCP, 5432, 5432)], &t);
        let (_, t) = rule("-", Verdict::Accept);
        c.add(Tier::Allow, Vec::new(), &[range(Protocol::UDP, 53, 53)], &t);
        let (d, t) = rule("c", Verdict::Accept);
        c.add(Tier::Allow, d, &[], &t);
        let (mut sets, mut chains) = (Vec::new(), Vec::new());
        let default = rule("-", Verdict::Drop).1;
        c.finish(Hook::Input, &[], &default, &mut sets, &mut chains);
        let table = Table {
            comment: String::new(),
            sets,
            chains,
        };
        let s = table.script();
        assert!(
            s.contains("map input_tcp_ranges { type inet_service : verdict; flags interval; elements = { 5000-5431 : jump input_p0, 5433-6000 : jump input_p0 }; }"),
            "{s}"
        );
        assert!(
            s.contains("map input_tcp { type inet_service : verdict; elements = { 5432 : jump input_p1 }; }"),
            "{s}"
        );
        assert!(
            s.contains(
                "map input_udp { type inet_service : verdict; elements = { 53 : jump input_p2 }; }"
            ),
            "{s}"
        );
        // The piece at 5432 holds the deny before the allow.
        let p1 = s.split("chain input_p1 {").nth(1).unwrap();
        assert!(p1.find("drop").unwrap() < p1.find("accept").unwrap(), "{s}");
        let input = s.split("chain input {").nth(1).unwrap();
        let maps = input
            .find("meta l4proto tcp th dport vmap @input_tcp")
            .unwrap();
        assert!(
            maps < input.find("ip saddr @c counter accept").unwrap(),
            "{s}"
        );
    }

    #[test]
    fn port_lists_that_cannot_be_mapped_become_named_sets() {
        let mut c = ChainRules::new("output");
        let (a, t) = rule("a", Verdict::Accept);
        let icmp = PortRange {
            protocol: Some(Protocol::ICMP),
            ..PortRange::ANY
        };
        c.add(
            Tier::Allow,
            a,
            &[
                range(Protocol::TCP, 80, 80),
                range(Protocol::TCP, 81, 90),
                icmp,
            ],
            &t,
        );
        assert_eq!(c.portless[2].len(), 2);
        assert_eq!(c.port_sets[0].elements.len(), 1, "80 and 81-90 merge");
        assert_eq!(c.portless[2][1].matches[1], Match::Protocol(1));
    }
}
