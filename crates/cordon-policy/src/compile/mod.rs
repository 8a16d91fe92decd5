//! The compiled policy: every question a decision asks is a table lookup.
//!
//! - addresses → group sets by a swept prefix table ([`ranges`]),
//! - hostnames → group sets by a reversed-label trie ([`fqdn`]),
//! - group membership as interned bitsets ([`sets`]),
//! - rules indexed by source group, destination group and port; a decision
//!   scans only the candidates of the most selective index.

pub mod fqdn;
pub mod ranges;
pub mod sets;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use crate::decision::{Decision, Endpoint, GroupSet, Reason, Request, Verdict};
use crate::model::{Action, GroupId, Mode, Policy, RuleId, WorkloadId};
use crate::ports::{PortRange, Protocol};
use crate::special;
use fqdn::FqdnTrie;
use ranges::{AddressTable, AddressTableBuilder};
use sets::{SetId, SetInterner, SetTable};

/// A rule reduced to what matching needs.
#[derive(Debug)]
struct CompiledRule {
    from: Box<[u32]>,
    to: Box<[u32]>,
    ports: Box<[PortRange]>,
    deny: bool,
    /// For deny rules: whether the effective mode is audit.
    audit: bool,
}

impl CompiledRule {
    #[inline]
    fn matches(&self, src: &[u64], dst: &[u64], protocol: Protocol, port: u16) -> bool {
        self.from.iter().any(|g| sets::contains(src, *g))
            && self.to.iter().any(|g| sets::contains(dst, *g))
            && (self.ports.is_empty() || self.ports.iter().any(|p| p.matches(protocol, port)))
    }
}

/// Rules by port for one protocol: sorted class starts and the rules whose
/// ranges cover each class.
#[derive(Debug, Default)]
struct PortIndex {
    starts: Vec<u16>,
    classes: Vec<Vec<RuleId>>,
}

impl PortIndex {
    fn build(ranges: &[(u16, u16, RuleId)]) -> Self {
        let mut points: Vec<u16> = vec![0];
        for (first, last, _) in ranges {
            points.push(*first);
            if let Some(after) = last.checked_add(1) {
                points.push(after);
            }
        }
        points.sort_unstable();
        points.dedup();
        let mut classes: Vec<Vec<RuleId>> = vec![Vec::new(); points.len()];
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
    fn lookup(&self, port: u16) -> &[RuleId] {
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

fn bucket(protocol: Protocol) -> usize {
    PROTOCOL_BUCKETS
        .iter()
        .position(|p| *p == protocol)
        .unwrap_or(PROTOCOL_BUCKETS.len())
}

/// Sizes of the compiled structures, for benchmarks and `--verbose` output.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct CompiledStats {
    /// Distinct group sets.
    pub sets: usize,
    /// Disjoint IPv4 intervals.
    pub v4_intervals: usize,
    /// Disjoint IPv6 intervals.
    pub v6_intervals: usize,
    /// FQDN trie nodes.
    pub fqdn_nodes: usize,
    /// Approximate bytes used by the lookup tables.
    pub table_bytes: usize,
}

/// A policy compiled for fast decisions. Cheap to share across threads.
#[derive(Debug)]
pub struct CompiledPolicy {
    policy: Arc<Policy>,
    sets: SetTable,
    v4: AddressTable,
    v6: AddressTable,
    fqdn: FqdnTrie,
    spiffe: FxHashMap<String, SetId>,
    workloads: Vec<SetId>,
    workload_by_ip: FxHashMap<IpAddr, WorkloadId>,
    /// Membership of an endpoint known by nothing (just `any`).
    any_only: SetId,
    rules: Vec<CompiledRule>,
    from_index: Vec<Vec<RuleId>>,
    to_index: Vec<Vec<RuleId>>,
    port_index: Vec<PortIndex>,
    all_ports: Vec<RuleId>,
    default_verdict: Verdict,
}

fn v4_key(ip: std::net::Ipv4Addr) -> u128 {
    u128::from(u32::from(ip))
}

/// The family table a network belongs to and its inclusive key range.
/// IPv6 networks inside `::ffff:0:0/96` are IPv4 networks.
fn net_range(net: &IpNet) -> (bool, u128, u128) {
    match net {
        IpNet::V4(n) => (true, v4_key(n.network()), v4_key(n.broadcast())),
        IpNet::V6(n) => {
            let first = u128::from(n.network());
            let last = u128::from(n.broadcast());
            let mapped = 0xffff_0000_0000u128;
            if n.prefix_len() >= 96 && first >> 32 == mapped >> 32 {
                (true, first & 0xffff_ffff, last & 0xffff_ffff)
            } else {
                (false, first, last)
            }
        }
    }
}

fn ip_key(ip: IpAddr) -> (bool, u128) {
    match crate::raw::canonical_ip(ip) {
        IpAddr::V4(v4) => (true, v4_key(v4)),
        IpAddr::V6(v6) => (false, u128::from(v6)),
    }
}

impl CompiledPolicy {
    /// Compile `policy`.
    pub fn new(policy: Arc<Policy>) -> Self {
        let group_count = policy.groups.len();
        let closure = closures(&policy);
        let closure_of = |g: GroupId| closure.get(g.index()).cloned().unwrap_or_default();
        let mut interner = SetInterner::new(group_count);

        // Workloads: label and SPIFFE selectors.
        let mut spiffe_groups: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
        for (gi, g) in policy.groups.iter().enumerate() {
            for id in &g.spiffe {
                spiffe_groups
                    .entry(id.as_str())
                    .or_default()
                    .extend(closure_of(GroupId(gi as u32)));
            }
        }
        let mut workload_bits: Vec<Vec<u32>> = Vec::with_capacity(policy.workloads.len());
        for w in &policy.workloads {
            let mut bits = Vec::new();
            for (gi, g) in policy.groups.iter().enumerate() {
                if let Some(labels) = &g.labels
                    && labels.iter().all(|(k, v)| w.labels.get(k) == Some(v))
                {
                    bits.extend(closure_of(GroupId(gi as u32)));
                }
            }
            if let Some(groups) = w.spiffe.as_deref().and_then(|s| spiffe_groups.get(s)) {
                bits.extend(groups);
            }
            bits.sort_unstable();
            bits.dedup();
            workload_bits.push(bits);
        }

        // Addresses.
        let mut v4 = AddressTableBuilder::default();
        let mut v6 = AddressTableBuilder::default();
        let any = closure_of(GroupId::ANY);
        let any_v4 = v4.contribution(any.clone());
        let any_v6 = v6.contribution(any.clone());
        v4.add(0, u128::from(u32::MAX), any_v4);
        v6.add(0, u128::MAX, any_v6);
        // `internet` is the complement of the special ranges within each
        // family's public space.
        let internet = closure_of(GroupId::INTERNET);
        let (i4, i6) = (v4.contribution(internet.clone()), v6.contribution(internet));
        for (first, last) in complement(
            0,
            u128::from(u32::MAX),
            &special::nets(special::NOT_INTERNET_V4),
        ) {
            v4.add(first, last, i4);
        }
        if let Ok(global) = special::GLOBAL_UNICAST_V6.parse::<IpNet>() {
            let (_, g_first, g_last) = net_range(&global);
            for (first, last) in complement(
                g_first,
                g_last,
                &special::nets(special::NOT_INTERNET_V6_IN_GLOBAL),
            ) {
                v6.add(first, last, i6);
            }
        }
        let private = closure_of(GroupId::PRIVATE);
        let (p4, p6) = (v4.contribution(private.clone()), v6.contribution(private));
        for net in special::nets(special::PRIVATE) {
            add_net(&net, p4, p6, &mut v4, &mut v6);
        }
        for (gi, g) in policy.groups.iter().enumerate() {
            if g.cidrs.is_empty() {
                continue;
            }
            let bits = closure_of(GroupId(gi as u32));
            let (c4, c6) = (v4.contribution(bits.clone()), v6.contribution(bits));
            for net in &g.cidrs {
                add_net(net, c4, c6, &mut v4, &mut v6);
            }
        }
        let mut workload_by_ip = FxHashMap::default();
        for (wi, w) in policy.workloads.iter().enumerate() {
            let bits = workload_bits.get(wi).cloned().unwrap_or_default();
            let (c4, c6) = (v4.contribution(bits.clone()), v6.contribution(bits));
            for ip in &w.ips {
                workload_by_ip.entry(*ip).or_insert(WorkloadId(wi as u32));
                let (is_v4, key) = ip_key(*ip);
                if is_v4 {
                    v4.add(key, key, c4);
                } else {
                    v6.add(key, key, c6);
                }
            }
        }
        let v4 = v4.build(&mut interner);
        let v6 = v6.build(&mut interner);

        // Hostnames.
        let mut fqdn = FqdnTrie::new();
        for (gi, g) in policy.groups.iter().enumerate() {
            let bits = closure_of(GroupId(gi as u32));
            for pattern in &g.fqdns {
                fqdn.insert(&pattern.name, pattern.wildcard, &bits);
            }
        }
        let mut base = any.clone();
        base.extend(closure_of(GroupId::INTERNET));
        fqdn.finish(&mut interner, &base);

        let mut spiffe_sets: FxHashMap<&str, Vec<u32>> = spiffe_groups.clone();
        for (w, bits) in policy.workloads.iter().zip(&workload_bits) {
            if let Some(id) = w.spiffe.as_deref() {
                spiffe_sets.entry(id).or_default().extend(bits);
            }
        }
        let spiffe = spiffe_sets
            .iter()
            .map(|(id, bits)| {
                let mut bits = bits.clone();
                bits.extend(&any);
                ((*id).to_string(), interner.intern_groups(&bits))
            })
            .collect();
        let workloads = workload_bits
            .iter()
            .map(|bits| {
                let mut bits = bits.clone();
                bits.extend(&any);
                interner.intern_groups(&bits)
            })
            .collect();
        let any_only = interner.intern_groups(&any);

        // Rules and their indexes.
        let mut rules = Vec::with_capacity(policy.rules.len());
        let mut from_index = vec![Vec::new(); group_count];
        let mut to_index = vec![Vec::new(); group_count];
        let mut port_ranges: Vec<Vec<(u16, u16, RuleId)>> =
            vec![Vec::new(); PROTOCOL_BUCKETS.len() + 1];
        let mut all_ports = Vec::new();
        for (ri, r) in policy.rules.iter().enumerate() {
            let id = RuleId(ri as u32);
            for g in &r.from {
                if let Some(list) = from_index.get_mut(g.index()) {
                    list.push(id);
                }
            }
            for g in &r.to {
                if let Some(list) = to_index.get_mut(g.index()) {
                    list.push(id);
                }
            }
            if r.ports.is_empty() || r.ports.iter().any(|p| p.protocol.is_none()) {
                all_ports.push(id);
            } else {
                for p in &r.ports {
                    if let Some(protocol) = p.protocol {
                        let b = bucket(protocol);
                        // Protocols outside the buckets share the last one,
                        // whose ranges are checked again when matching.
                        if let Some(list) = port_ranges.get_mut(b) {
                            list.push((p.first, p.last, id));
                        }
                    }
                }
            }
            rules.push(CompiledRule {
                from: r.from.iter().map(|g| g.0).collect(),
                to: r.to.iter().map(|g| g.0).collect(),
                ports: r.ports.clone().into_boxed_slice(),
                deny: r.action == Action::Deny,
                audit: policy.rule_mode(r) == Mode::Audit,
            });
        }
        let port_index = port_ranges
            .iter()
            .map(|ranges| PortIndex::build(ranges))
            .collect();
        let default_verdict = match (policy.default, policy.mode) {
            (Action::Allow, _) => Verdict::Allow,
            (Action::Deny, Mode::Enforce) => Verdict::Deny,
            (Action::Deny, Mode::Audit) => Verdict::WouldDeny,
        };
        CompiledPolicy {
            policy,
            sets: interner.finish(),
            v4,
            v6,
            fqdn,
            spiffe,
            workloads,
            workload_by_ip,
            any_only,
            rules,
            from_index,
            to_index,
            port_index,
            all_ports,
            default_verdict,
        }
    }

    /// The policy this was compiled from.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Sizes of the compiled structures.
    pub fn stats(&self) -> CompiledStats {
        CompiledStats {
            sets: self.sets.len(),
            v4_intervals: self.v4.len(),
            v6_intervals: self.v6.len(),
            fqdn_nodes: self.fqdn.len(),
            table_bytes: self.sets.heap_bytes() + self.v4.heap_bytes() + self.v6.heap_bytes(),
        }
    }

    /// The workload that owns `ip`, if the inventory names one.
    pub fn workload_at(&self, ip: IpAddr) -> Option<WorkloadId> {
        self.workload_by_ip
            .get(&crate::raw::canonical_ip(ip))
            .copied()
    }

    /// The groups `endpoint` is in.
    pub fn membership(&self, endpoint: &Endpoint) -> GroupSet<'_> {
        let mut parts: [Option<SetId>; 4] = [None; 4];
        if let Some(ip) = endpoint.ip {
            let (is_v4, key) = ip_key(ip);
            let table = if is_v4 { &self.v4 } else { &self.v6 };
            parts[0] = table.lookup(key);
        }
        if let Some(host) = &endpoint.host {
            parts[1] = Some(self.fqdn.lookup(host, endpoint.ip.is_none()));
        }
        if let Some(w) = endpoint.workload {
            parts[2] = self.workloads.get(w.index()).copied();
        }
        if let Some(id) = &endpoint.spiffe {
            parts[3] = Some(self.spiffe.get(id).copied().unwrap_or(self.any_only));
        }
        let mut present = parts.iter().flatten();
        let Some(first) = present.next() else {
            return GroupSet(Cow::Borrowed(self.sets.get(self.any_only)));
        };
        let mut rest = present.peekable();
        if rest.peek().is_none() {
            return GroupSet(Cow::Borrowed(self.sets.get(*first)));
        }
        let mut bits = self.sets.get(*first).to_vec();
        for id in rest {
            for (word, other) in bits.iter_mut().zip(self.sets.get(*id)) {
                *word |= other;
            }
        }
        GroupSet(Cow::Owned(bits))
    }

    /// Decide on `request`.
    pub fn evaluate(&self, request: &Request) -> Decision<'_> {
        let src = self.membership(&request.src);
        let dst = self.membership(&request.dst);
        let mut rules = Vec::new();
        self.matching_rules(
            src.bits(),
            dst.bits(),
            request.protocol,
            request.port,
            &mut rules,
        );
        let mut deny_enforced = None;
        let mut deny_audited = None;
        let mut allow = None;
        for id in &rules {
            let Some(rule) = self.rules.get(id.index()) else {
                continue;
            };
            let slot = match (rule.deny, rule.audit) {
                (true, false) => &mut deny_enforced,
                (true, true) => &mut deny_audited,
                (false, _) => &mut allow,
            };
            slot.get_or_insert(*id);
        }
        let (verdict, reason) = if let Some(id) = deny_enforced {
            (Verdict::Deny, Reason::DenyRule(id))
        } else if let Some(id) = deny_audited {
            (Verdict::WouldDeny, Reason::DenyRule(id))
        } else if let Some(id) = allow {
            (Verdict::Allow, Reason::AllowRule(id))
        } else {
            (self.default_verdict, Reason::Default)
        };
        Decision {
            verdict,
            reason,
            rules,
            src_groups: src,
            dst_groups: dst,
        }
    }

    /// Append every rule matching the memberships and port to `out`, in rule
    /// order, scanning only the smallest candidate list.
    fn matching_rules(
        &self,
        src: &[u64],
        dst: &[u64],
        protocol: Protocol,
        port: u16,
        out: &mut Vec<RuleId>,
    ) {
        let cost = |index: &[Vec<RuleId>], bits: &[u64]| -> usize {
            sets::iter(bits)
                .map(|g| index.get(g.index()).map_or(0, Vec::len))
                .sum()
        };
        let by_port = self
            .port_index
            .get(bucket(protocol))
            .map_or(&[][..], |p| p.lookup(port));
        let port_cost = by_port.len() + self.all_ports.len();
        let src_cost = cost(&self.from_index, src);
        let dst_cost = cost(&self.to_index, dst);
        let check = |id: &RuleId| {
            self.rules
                .get(id.index())
                .is_some_and(|r| r.matches(src, dst, protocol, port))
        };
        if port_cost <= src_cost && port_cost <= dst_cost {
            out.extend(by_port.iter().chain(&self.all_ports).filter(|id| check(id)));
        } else {
            let (index, bits) = if src_cost <= dst_cost {
                (&self.from_index, src)
            } else {
                (&self.to_index, dst)
            };
            for g in sets::iter(bits) {
                if let Some(list) = index.get(g.index()) {
                    out.extend(list.iter().filter(|id| check(id)));
                }
            }
        }
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
    }
}

/// For each group, the groups that contain it (itself included), through
/// nested `groups:`. Cycles were refused when the policy was resolved; the
/// walk still stops on them.
fn closures(policy: &Policy) -> Vec<Vec<u32>> {
    let n = policy.groups.len();
    let mut parents: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (gi, g) in policy.groups.iter().enumerate() {
        for m in &g.members {
            if let Some(p) = parents.get_mut(m.index()) {
                p.push(gi as u32);
            }
        }
    }
    (0..n)
        .map(|start| {
            let mut seen = vec![start as u32];
            let mut i = 0;
            while let Some(&g) = seen.get(i) {
                for p in parents.get(g as usize).into_iter().flatten() {
                    if !seen.contains(p) {
                        seen.push(*p);
                    }
                }
                i += 1;
            }
            seen
        })
        .collect()
}

fn add_net(
    net: &IpNet,
    c4: u32,
    c6: u32,
    v4: &mut AddressTableBuilder,
    v6: &mut AddressTableBuilder,
) {
    let (is_v4, first, last) = net_range(net);
    if is_v4 {
        v4.add(first, last, c4);
    } else {
        v6.add(first, last, c6);
    }
}

/// The parts of `first..=last` not covered by `holes`.
fn complement(first: u128, last: u128, holes: &[IpNet]) -> Vec<(u128, u128)> {
    let mut spans: Vec<(u128, u128)> = holes
        .iter()
        .map(|n| {
            let (_, a, b) = net_range(n);
            (a, b)
        })
        .filter(|(a, b)| *b >= first && *a <= last)
        .collect();
    spans.sort_unstable();
    let mut out = Vec::new();
    let mut next = first;
    let mut done = false;
    for (a, b) in spans {
        if done {
            break;
        }
        if a > next {
            out.push((next, a - 1));
        }
        if b >= last {
            done = true;
        } else if b + 1 > next {
            next = b + 1;
        }
    }
    if !done {
        out.push((next, last));
    }
    out
}
