//! Rules compiled for matching: each rule is a short run of words in one
//! array (its id, action, groups and ports together, usually one cache
//! line), indexed by source group, destination group and port.

use super::sets::list_contains;
use crate::model::{Action, Mode, Policy, RuleId};
use crate::ports::Protocol;

/// Flags word of a compiled rule.
const DENY: u32 = 1;
const AUDIT: u32 = 2;
/// A port entry's protocol word for "any protocol".
const ANY_PROTOCOL: u32 = 0x100;
/// In an index entry: the rule names more than one group on the other side.
const MANY: u32 = u32::MAX;

/// Offset of a rule in [`RuleTable::code`].
type RuleAt = u32;

/// Rules by port for one protocol: sorted class starts and the rules whose
/// ranges cover each class.
#[derive(Debug, Default)]
struct PortIndex {
    starts: Vec<u16>,
    classes: Vec<Vec<RuleAt>>,
}

impl PortIndex {
    fn build(ranges: &[(u16, u16, RuleAt)]) -> Self {
        let mut points: Vec<u16> = vec![0];
        for (first, last, _) in ranges {
            points.push(*first);
            if let Some(after) = last.checked_add(1) {
                points.push(after);
            }
        }
        points.sort_unstable();
        points.dedup();
        let mut classes: Vec<Vec<RuleAt>> = vec![Vec::new(); points.len()];
        for (first, last, rule) in ranges {
            let from = points.partition_point(|p| p < first);
            let to = points.partition_point(|p| p <= last);
            for class in classes.iter_mut().take(to).skip(from) {
                if class.last() != Some(rule) {
                    class.push(*rule);
                }
            }
        }
        PortIndex {
            starts: points,
            classes,
        }
    }

    #[inline]
    fn lookup(&self, port: u16) -> &[RuleAt] {
        let i = self.starts.partition_point(|p| *p <= port);
        i.checked_sub(1)
            .and_then(|i| self.classes.get(i))
            .map_or(&[], Vec::as_slice)
    }
}

const PROTOCOL_BUCKETS: [Protocol; 5] = [
    Protocol::TCP,
    Protocol::UDP,
    Protocol::SCTP,
    Protocol::ICMP,
    Protocol::ICMPV6,
];

/// The port-index bucket of a protocol; protocols outside the list share
/// the last bucket (their rules are checked exactly when matching).
fn bucket(protocol: Protocol) -> usize {
    PROTOCOL_BUCKETS
        .iter()
        .position(|p| *p == protocol)
        .unwrap_or(PROTOCOL_BUCKETS.len())
}

/// The compiled rules and their indexes.
#[derive(Debug, Default)]
pub struct RuleTable {
    /// Per rule: `[id, flags, n_from, n_to, n_ports, from.., to.., (protocol, first, last)..]`.
    code: Vec<u32>,
    /// Rule id → offset in `code`.
    offsets: Vec<RuleAt>,
    /// Per source group: its rules, each with the rule's only destination
    /// group (or `MANY`), so most non-matches are rejected without reading
    /// the rule.
    from_index: Vec<Vec<(RuleAt, u32)>>,
    /// Per destination group: its rules, each with the only source group.
    to_index: Vec<Vec<(RuleAt, u32)>>,
    port_index: Vec<PortIndex>,
    all_ports: Vec<RuleAt>,
}

impl RuleTable {
    /// Compile `policy`'s rules for `groups` groups.
    pub fn new(policy: &Policy, groups: usize) -> Self {
        let mut t = RuleTable {
            from_index: vec![Vec::new(); groups],
            to_index: vec![Vec::new(); groups],
            ..RuleTable::default()
        };
        let mut port_ranges: Vec<Vec<(u16, u16, RuleAt)>> =
            vec![Vec::new(); PROTOCOL_BUCKETS.len() + 1];
        for (ri, r) in policy.rules.iter().enumerate() {
            let at = RuleAt::try_from(t.code.len()).unwrap_or(RuleAt::MAX);
            t.offsets.push(at);
            let mut flags = 0;
            if r.action == Action::Deny {
                flags |= DENY;
            }
            if policy.rule_mode(r) == Mode::Audit {
                flags |= AUDIT;
            }
            t.code.extend([
                ri as u32,
                flags,
                r.from.len() as u32,
                r.to.len() as u32,
                r.ports.len() as u32,
            ]);
            t.code.extend(r.from.iter().map(|g| g.0));
            t.code.extend(r.to.iter().map(|g| g.0));
            for p in &r.ports {
                let protocol = p.protocol.map_or(ANY_PROTOCOL, |p| u32::from(p.0));
                t.code
                    .extend([protocol, u32::from(p.first), u32::from(p.last)]);
            }
            let only = |groups: &[crate::model::GroupId]| match groups {
                [one] => one.0,
                _ => MANY,
            };
            for g in &r.from {
                if let Some(list) = t.from_index.get_mut(g.index()) {
                    list.push((at, only(&r.to)));
                }
            }
            for g in &r.to {
                if let Some(list) = t.to_index.get_mut(g.index()) {
                    list.push((at, only(&r.from)));
                }
            }
            if r.ports.is_empty() || r.ports.iter().any(|p| p.protocol.is_none()) {
                t.all_ports.push(at);
            } else {
                for p in &r.ports {
                    if let Some(list) = p.protocol.and_then(|pr| port_ranges.get_mut(bucket(pr))) {
                        list.push((p.first, p.last, at));
                    }
                }
            }
        }
        t.port_index = port_ranges.iter().map(|r| PortIndex::build(r)).collect();
        t
    }

    /// How many rules name each group as source.
    pub fn from_counts(&self) -> Vec<u32> {
        self.from_index.iter().map(|l| l.len() as u32).collect()
    }

    /// How many rules name each group as destination.
    pub fn to_counts(&self) -> Vec<u32> {
        self.to_index.iter().map(|l| l.len() as u32).collect()
    }

    /// How many rules name `groups` as source (or destination).
    pub fn cost(&self, groups: &[u32], source: bool) -> u32 {
        let index = if source {
            &self.from_index
        } else {
            &self.to_index
        };
        groups
            .iter()
            .map(|g| index.get(*g as usize).map_or(0, Vec::len) as u32)
            .sum()
    }

    /// Whether rule `id` denies, and whether its effective mode is audit.
    #[inline]
    pub fn effect(&self, id: RuleId) -> (bool, bool) {
        let flags = self
            .offsets
            .get(id.index())
            .and_then(|at| self.code.get(*at as usize + 1))
            .copied()
            .unwrap_or(0);
        (flags & DENY != 0, flags & AUDIT != 0)
    }

    /// The rule at `at`, if it matches.
    #[inline]
    fn check(
        &self,
        at: RuleAt,
        src: &[u32],
        dst: &[u32],
        protocol: Protocol,
        port: u16,
    ) -> Option<RuleId> {
        let at = at as usize;
        let &[id, _flags, n_from, n_to, n_ports] = self.code.get(at..at + 5)? else {
            return None;
        };
        let (n_from, n_to, n_ports) = (n_from as usize, n_to as usize, n_ports as usize);
        let body = self
            .code
            .get(at + 5..at + 5 + n_from + n_to + 3 * n_ports)?;
        let (from, rest) = body.split_at(n_from);
        let (to, ports) = rest.split_at(n_to);
        if !from.iter().any(|g| list_contains(src, *g))
            || !to.iter().any(|g| list_contains(dst, *g))
        {
            return None;
        }
        let proto = u32::from(protocol.0);
        let port = u32::from(port);
        let port_ok = n_ports == 0
            || ports.chunks_exact(3).any(|p| match *p {
                [ANY_PROTOCOL, _, _] => true,
                [pr, _, _] if pr != proto => false,
                [_, first, last] => !protocol.has_ports() || (first <= port && port <= last),
                _ => false,
            });
        port_ok.then_some(RuleId(id))
    }

    /// Append every rule matching the memberships and port to `out`, in rule
    /// order, scanning only the smallest candidate list: the rules of the
    /// source's groups, of the destination's groups, or of the port.
    pub fn matching(
        &self,
        (src, src_cost): (&[u32], u32),
        (dst, dst_cost): (&[u32], u32),
        protocol: Protocol,
        port: u16,
        out: &mut Vec<RuleId>,
    ) {
        let by_port = self
            .port_index
            .get(bucket(protocol))
            .map_or(&[][..], |p| p.lookup(port));
        let port_cost = (by_port.len() + self.all_ports.len()) as u32;
        let check = |at: &RuleAt| self.check(*at, src, dst, protocol, port);
        if port_cost <= src_cost && port_cost <= dst_cost {
            out.extend(by_port.iter().chain(&self.all_ports).filter_map(check));
        } else {
            let (index, groups, other) = if src_cost <= dst_cost {
                (&self.from_index, src, dst)
            } else {
                (&self.to_index, dst, src)
            };
            for g in groups {
                if let Some(list) = index.get(*g as usize) {
                    out.extend(
                        list.iter()
                            .filter(|(_, only)| *only == MANY || list_contains(other, *only))
                            .filter_map(|(at, _)| check(at)),
                    );
                }
            }
        }
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
    }

    /// Bytes used.
    pub fn heap_bytes(&self) -> usize {
        self.code.capacity() * 4
            + self
                .from_index
                .iter()
                .chain(&self.to_index)
                .map(|l| l.capacity() * 8)
                .sum::<usize>()
    }
}
