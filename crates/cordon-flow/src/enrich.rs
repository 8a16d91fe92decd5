//! Enrichment: addresses to workloads and groups, the vendor involved, and
//! the policy verdict for every flow.
//!
//! A cache per endpoint pair was tried and measured slower than deciding
//! again: a decision costs a few hundred nanoseconds, less than hashing the
//! key and cloning a cached enrichment.

use std::net::IpAddr;
use std::sync::Arc;

use cordon_policy::{
    CompiledPolicy, Endpoint, GroupId, GroupSet, Hostname, Protocol, Reason, Request, Verdict,
};

use rustc_hash::FxHashMap;

use crate::flow::{Enrichment, Flow, Name, Names};

/// Enriches flows against one compiled policy.
pub struct Enricher {
    compiled: Arc<CompiledPolicy>,
    /// Names by group index, shared by every flow that carries them.
    groups: Vec<Name>,
    /// The vendor of each group, by group index.
    vendors: Vec<Option<Name>>,
    workloads: Vec<Name>,
    rules: Vec<Name>,
    verdicts: [Name; 3],
    /// Group lists already named, by their group ids: a policy has few
    /// distinct sets, and sharing one list saves an allocation per flow.
    lists: FxHashMap<Box<[u32]>, Names>,
}

/// Distinct group sets remembered before the memory starts over.
const MAX_LISTS: usize = 1 << 16;

impl Enricher {
    /// An enricher for `compiled`.
    pub fn new(compiled: Arc<CompiledPolicy>) -> Self {
        let policy = compiled.policy();
        let groups = policy
            .groups
            .iter()
            .map(|g| Name::from(g.name.as_str()))
            .collect();
        let vendors = policy
            .groups
            .iter()
            .map(|g| g.vendor.as_ref().map(|v| Name::from(v.name.as_str())))
            .collect();
        let workloads = policy
            .workloads
            .iter()
            .map(|w| Name::from(w.name.as_str()))
            .collect();
        let rules = policy
            .rules
            .iter()
            .map(|r| Name::from(r.name.as_str()))
            .collect();
        let verdicts =
            [Verdict::Allow, Verdict::Deny, Verdict::WouldDeny].map(|v| Name::from(v.as_str()));
        Enricher {
            compiled,
            groups,
            vendors,
            workloads,
            rules,
            verdicts,
            lists: FxHashMap::default(),
        }
    }

    /// Fill in `flow.enrichment`.
    pub fn enrich(&mut self, flow: &mut Flow) {
        flow.enrichment = Some(Box::new(self.compute(flow)));
    }

    fn compute(&mut self, flow: &Flow) -> Enrichment {
        let mut dst = Endpoint::ip(flow.dst_ip);
        dst.host = flow
            .hostname
            .as_deref()
            .and_then(|h| Hostname::parse(h).ok());
        let request = Request {
            src: Endpoint::ip(flow.src_ip),
            dst,
            protocol: Protocol(flow.protocol),
            port: flow.dst_port,
        };
        let decision = self.compiled.evaluate(&request);
        let vendor_of = |set: &GroupSet<'_>| {
            set.iter()
                .find_map(|g| self.vendors.get(g.index()).cloned().flatten())
        };
        let workload = |ip: IpAddr| {
            self.compiled
                .workload_at(ip)
                .and_then(|w| self.workloads.get(w.index()).cloned())
        };
        let rule = match decision.reason {
            Reason::DenyRule(id) | Reason::AllowRule(id) => self.rules.get(id.index()).cloned(),
            Reason::Default => None,
        };
        let [allow, deny, would_deny] = &self.verdicts;
        let verdict = match decision.verdict {
            Verdict::Allow => allow,
            Verdict::Deny => deny,
            Verdict::WouldDeny => would_deny,
        };
        Enrichment {
            src_workload: workload(flow.src_ip),
            dst_workload: workload(flow.dst_ip),
            src_groups: names(&mut self.lists, &self.groups, &decision.src_groups),
            dst_groups: names(&mut self.lists, &self.groups, &decision.dst_groups),
            vendor: vendor_of(&decision.dst_groups).or_else(|| vendor_of(&decision.src_groups)),
            verdict: Name::clone(verdict),
            rule,
        }
    }
}

/// The shared names of `set` (without `any`), from `lists` when seen before.
fn names(lists: &mut FxHashMap<Box<[u32]>, Names>, groups: &[Name], set: &GroupSet<'_>) -> Names {
    if let Some(names) = lists.get(set.ids()) {
        return Names::clone(names);
    }
    let names: Names = set
        .iter()
        .filter(|g| *g != GroupId::ANY)
        .filter_map(|g| groups.get(g.index()).cloned())
        .collect();
    if lists.len() >= MAX_LISTS {
        lists.clear();
    }
    lists.insert(set.ids().into(), Names::clone(&names));
    names
}
