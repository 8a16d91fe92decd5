//! Enrichment: addresses to workloads and groups, the vendor involved, and
//! the policy verdict for every flow.
//!
//! Every flow is decided again (a cache per endpoint pair was tried and
//! measured slower than deciding: a decision costs a few hundred
//! nanoseconds). What is cached is the enrichment built from a decision:
//! flows whose endpoints fall in the same interned group sets, with the same
//! workloads, verdict and rule, share one [`Enrichment`], so a flow costs a
//! decision and a lookup instead of an allocation and a dozen reference
//! counts; the store then encodes a shared enrichment once per block.

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
    /// Group lists already named, by their group ids: a policy has few
    /// distinct sets, and sharing one list saves an allocation per flow.
    lists: FxHashMap<Box<[u32]>, Names>,
    /// Enrichments already built, by what they were built from.
    built: FxHashMap<BuiltKey, Arc<Enrichment>>,
    /// Endpoints seen, by address (direct-mapped): a small number for
    /// their interned group set and their workload.
    endpoints: Vec<Option<(IpAddr, u32, Option<u32>)>>,
    /// Small numbers for interned group sets, by the sets' identities.
    set_numbers: FxHashMap<(usize, usize), u32>,
    /// Enrichments of hostname-less flows by what decides them: both sides'
    /// sets and workloads, protocol and port (a decision is a function of
    /// these alone).
    by_endpoints: FxHashMap<FastKey, Arc<Enrichment>>,
}

/// Slots in the endpoint cache (a power of two).
const ENDPOINT_SLOTS: usize = 1 << 14;

/// What decides a hostname-less flow's enrichment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FastKey {
    src: u32,
    dst: u32,
    src_workload: Option<u32>,
    dst_workload: Option<u32>,
    protocol: u8,
    port: u16,
}

/// What an enrichment is made of: the interned group sets of both sides
/// (their identities in the compiled policy), both workloads, the verdict
/// and the deciding rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct BuiltKey {
    src: (usize, usize),
    dst: (usize, usize),
    src_workload: Option<u32>,
    dst_workload: Option<u32>,
    verdict: Verdict,
    rule: Option<u32>,
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
        Enricher {
            compiled,
            groups,
            vendors,
            workloads,
            rules,
            lists: FxHashMap::default(),
            built: FxHashMap::default(),
            endpoints: vec![None; ENDPOINT_SLOTS],
            set_numbers: FxHashMap::default(),
            by_endpoints: FxHashMap::default(),
        }
    }

    /// Fill in `flow.enrichment`.
    pub fn enrich(&mut self, flow: &mut Flow) {
        if flow.hostname.is_none() {
            let key = FastKey {
                src: 0,
                dst: 0,
                src_workload: None,
                dst_workload: None,
                protocol: flow.protocol,
                port: flow.dst_port,
            };
            let key = match (self.endpoint(flow.src_ip), self.endpoint(flow.dst_ip)) {
                (Some((src, src_workload)), Some((dst, dst_workload))) => Some(FastKey {
                    src,
                    dst,
                    src_workload,
                    dst_workload,
                    ..key
                }),
                _ => None,
            };
            if let Some(key) = key {
                if let Some(e) = self.by_endpoints.get(&key) {
                    flow.enrichment = Some(Arc::clone(e));
                    return;
                }
                let e = self.compute(flow);
                if self.by_endpoints.len() >= MAX_LISTS {
                    self.by_endpoints.clear();
                }
                self.by_endpoints.insert(key, Arc::clone(&e));
                flow.enrichment = Some(e);
                return;
            }
        }
        flow.enrichment = Some(self.compute(flow));
    }

    /// The set number and workload of the endpoint at `ip`, from the cache
    /// or the compiled policy.
    fn endpoint(&mut self, ip: IpAddr) -> Option<(u32, Option<u32>)> {
        let slot = match ip {
            // Fibonacci hashing of the address: one multiply.
            IpAddr::V4(v4) => (u32::from(v4).wrapping_mul(0x9e37_79b9) >> 18) as usize,
            IpAddr::V6(v6) => {
                let x = u128::from(v6);
                ((x as u64 ^ (x >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 50) as usize
            }
        } & (ENDPOINT_SLOTS - 1);
        if let Some(Some((at, set, workload))) = self.endpoints.get(slot)
            && *at == ip
        {
            return Some((*set, *workload));
        }
        let identity = self.compiled.membership(&Endpoint::ip(ip)).interned()?;
        let next = self.set_numbers.len() as u32;
        let set = *self.set_numbers.entry(identity).or_insert(next);
        let workload = self.compiled.workload_at(ip).map(|w| w.0);
        if let Some(entry) = self.endpoints.get_mut(slot) {
            *entry = Some((ip, set, workload));
        }
        Some((set, workload))
    }

    fn compute(&mut self, flow: &Flow) -> Arc<Enrichment> {
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
        let compiled = &self.compiled;
        let decision = compiled.evaluate(&request);
        let src_wl = compiled.workload_at(flow.src_ip);
        let dst_wl = compiled.workload_at(flow.dst_ip);
        let rule_id = match decision.reason {
            Reason::DenyRule(id) | Reason::AllowRule(id) => Some(id),
            Reason::Default => None,
        };
        let key = match (
            decision.src_groups.interned(),
            decision.dst_groups.interned(),
        ) {
            (Some(src), Some(dst)) => Some(BuiltKey {
                src,
                dst,
                src_workload: src_wl.map(|w| w.0),
                dst_workload: dst_wl.map(|w| w.0),
                verdict: decision.verdict,
                rule: rule_id.map(|r| r.0),
            }),
            _ => None,
        };
        if let Some(e) = key.as_ref().and_then(|k| self.built.get(k)) {
            return Arc::clone(e);
        }
        let vendor_of = |set: &GroupSet<'_>| {
            set.iter()
                .find_map(|g| self.vendors.get(g.index()).cloned().flatten())
        };
        let workload = |w: Option<cordon_policy::WorkloadId>| {
            w.and_then(|w| self.workloads.get(w.index()).cloned())
        };
        let enrichment = Arc::new(Enrichment {
            src_workload: workload(src_wl),
            dst_workload: workload(dst_wl),
            src_groups: names(&mut self.lists, &self.groups, &decision.src_groups),
            dst_groups: names(&mut self.lists, &self.groups, &decision.dst_groups),
            vendor: vendor_of(&decision.dst_groups).or_else(|| vendor_of(&decision.src_groups)),
            verdict: decision.verdict,
            rule: rule_id.and_then(|id| self.rules.get(id.index()).cloned()),
        });
        if let Some(key) = key {
            if self.built.len() >= MAX_LISTS {
                self.built.clear();
            }
            self.built.insert(key, Arc::clone(&enrichment));
        }
        enrichment
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cordon_policy::{CompiledPolicy, LoadOptions, load_policy};

    use super::Enricher;
    use crate::flow::{Flow, FlowSource};

    /// The cached paths give exactly what deciding afresh gives.
    #[test]
    fn cached_enrichment_equals_a_fresh_decision() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme-prod.yaml");
        let policy = load_policy(&path, &LoadOptions::default()).unwrap();
        let compiled = Arc::new(CompiledPolicy::new(Arc::new(policy)));
        let mut cached = Enricher::new(compiled.clone());
        let addrs = [
            "10.0.1.10",
            "10.0.3.10",
            "10.0.2.10",
            "10.0.4.10",
            "10.0.9.10",
            "10.0.2.77",
            "198.51.100.25",
            "203.0.113.66",
            "52.95.1.2",
            "fd00:2::5",
        ];
        let mut n = 0;
        for round in 0..3 {
            for (i, src) in addrs.iter().enumerate() {
                for (j, dst) in addrs.iter().enumerate() {
                    for (protocol, port) in [(6, 5432), (6, 22), (6, 443), (17, 53), (1, 0)] {
                        let mut f = Flow::new(
                            FlowSource::Aws,
                            src.parse().unwrap(),
                            dst.parse().unwrap(),
                            protocol,
                        );
                        f.dst_port = port;
                        if (i + j + round) % 7 == 0 {
                            f.hostname = Some("exfil.s3.amazonaws.com".into());
                        }
                        let fresh = Enricher::new(compiled.clone()).compute(&f);
                        cached.enrich(&mut f);
                        assert_eq!(
                            f.enrichment.as_deref(),
                            Some(&*fresh),
                            "{src} -> {dst} {protocol}/{port}"
                        );
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, 1500);
    }
}
