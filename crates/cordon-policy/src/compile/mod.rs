//! The compiled policy: every question a decision asks is a table lookup.
//!
//! - addresses → group sets by a swept prefix table ([`ranges`]),
//! - hostnames → group sets by a reversed-label trie ([`fqdn`]),
//! - group membership as interned sets ([`sets`]),
//! - rules indexed by source group, destination group and port; a decision
//!   scans only the candidates of the most selective index ([`rules`]).

pub mod fqdn;
pub mod ranges;
pub mod rules;
pub mod sets;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use crate::decision::{Decision, Endpoint, GroupSet, Reason, Request, Verdict};
use crate::model::{Action, GroupId, Mode, Policy, WorkloadId};
use cordon_core::ip as special;
use fqdn::FqdnTrie;
use ranges::{AddressTable, AddressTableBuilder};
use rules::RuleTable;
use sets::{SetId, SetInterner, SetTable, remap_id};

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
    rules: RuleTable,
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
    match cordon_core::canonical_ip(ip) {
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
        let v4 = v4.build(&mut interner, 32);
        let v6 = v6.build(&mut interner, 128);

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
        let spiffe: FxHashMap<String, SetId> = spiffe_sets
            .iter()
            .map(|(id, bits)| {
                let mut bits = bits.clone();
                bits.extend(&any);
                ((*id).to_string(), interner.intern_groups(&bits))
            })
            .collect();
        let workloads: Vec<SetId> = workload_bits
            .iter()
            .map(|bits| {
                let mut bits = bits.clone();
                bits.extend(&any);
                interner.intern_groups(&bits)
            })
            .collect();
        let any_only = interner.intern_groups(&any);

        let rules = RuleTable::new(&policy, group_count);
        let (sets, remap) = interner.finish(&rules.from_counts(), &rules.to_counts());
        let (mut v4, mut v6) = (v4, v6);
        v4.remap(&remap);
        v6.remap(&remap);
        fqdn.remap(&remap);
        let spiffe = spiffe
            .into_iter()
            .map(|(k, id)| (k, remap_id(&remap, id)))
            .collect();
        let workloads = workloads
            .into_iter()
            .map(|id| remap_id(&remap, id))
            .collect();
        let any_only = remap_id(&remap, any_only);
        let default_verdict = match (policy.default, policy.mode) {
            (Action::Allow, _) => Verdict::Allow,
            (Action::Deny, Mode::Enforce) => Verdict::Deny,
            (Action::Deny, Mode::Audit) => Verdict::WouldDeny,
        };
        CompiledPolicy {
            policy,
            sets,
            v4,
            v6,
            fqdn,
            spiffe,
            workloads,
            workload_by_ip,
            any_only,
            rules,
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
            table_bytes: self.sets.heap_bytes()
                + self.v4.heap_bytes()
                + self.v6.heap_bytes()
                + self.rules.heap_bytes(),
        }
    }

    /// The workload that owns `ip`, if the inventory names one.
    pub fn workload_at(&self, ip: IpAddr) -> Option<WorkloadId> {
        self.workload_by_ip
            .get(&cordon_core::canonical_ip(ip))
            .copied()
    }

    /// The addresses of `group`: its workloads, its CIDRs and the
    /// addresses `resolve` gives for its exact hostnames, through members;
    /// `None` for `any`, which is every address. Overlaps are left for the
    /// caller to merge.
    pub fn group_addresses(
        &self,
        group: GroupId,
        resolve: &dyn Fn(&str) -> Vec<IpAddr>,
    ) -> Option<std::collections::BTreeSet<IpNet>> {
        if group == GroupId::ANY {
            return None;
        }
        let policy = self.policy();
        let mut out = std::collections::BTreeSet::new();
        for w in &policy.workloads {
            for ip in &w.ips {
                if self.membership(&Endpoint::ip(*ip)).contains(group) {
                    out.insert(IpNet::from(*ip));
                }
            }
        }
        for g in policy
            .group_closure(group)
            .into_iter()
            .filter_map(|id| policy.group(id))
        {
            out.extend(g.cidrs.iter().map(IpNet::trunc));
            for f in g.fqdns.iter().filter(|f| !f.wildcard) {
                out.extend(resolve(f.name.as_str()).into_iter().map(IpNet::from));
            }
        }
        Some(out)
    }

    /// The groups `endpoint` is in.
    pub fn membership(&self, endpoint: &Endpoint) -> GroupSet<'_> {
        self.membership_with_costs(endpoint).0
    }

    /// The groups `endpoint` is in, and how many rules name them as source
    /// and as destination.
    #[inline]
    fn membership_with_costs(&self, endpoint: &Endpoint) -> (GroupSet<'_>, u32, u32) {
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
        let first = present.next().copied().unwrap_or(self.any_only);
        let mut rest = present.peekable();
        if rest.peek().is_none() {
            let meta = self.sets.meta(first);
            return (
                GroupSet(Cow::Borrowed(self.sets.members(first))),
                meta.from_cost,
                meta.to_cost,
            );
        }
        let mut ids = self.sets.members(first).to_vec();
        for id in rest {
            ids.extend_from_slice(self.sets.members(*id));
        }
        ids.sort_unstable();
        ids.dedup();
        let (from_cost, to_cost) = (self.rules.cost(&ids, true), self.rules.cost(&ids, false));
        (GroupSet(Cow::Owned(ids)), from_cost, to_cost)
    }

    /// Decide on `request`.
    pub fn evaluate(&self, request: &Request) -> Decision<'_> {
        let (src, src_cost, _) = self.membership_with_costs(&request.src);
        let (dst, _, dst_cost) = self.membership_with_costs(&request.dst);
        let mut rules = Vec::new();
        self.rules.matching(
            (src.ids(), src_cost),
            (dst.ids(), dst_cost),
            request.protocol,
            request.port,
            &mut rules,
        );
        let mut deny_enforced = None;
        let mut deny_audited = None;
        let mut allow = None;
        for id in &rules {
            let slot = match self.rules.effect(*id) {
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
