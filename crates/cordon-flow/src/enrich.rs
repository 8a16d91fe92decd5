//! Enrichment: addresses to workloads and groups, the vendor involved, and
//! the policy verdict for every flow.

use std::sync::Arc;

use cordon_policy::{CompiledPolicy, Endpoint, GroupId, Hostname, Protocol, Request, explain};

use crate::flow::{Enrichment, Flow};

/// Enriches flows against one compiled policy.
pub struct Enricher {
    compiled: Arc<CompiledPolicy>,
}

impl Enricher {
    /// An enricher for `compiled`.
    pub fn new(compiled: Arc<CompiledPolicy>) -> Self {
        Enricher { compiled }
    }

    /// Fill in `flow.enrichment`.
    pub fn enrich(&self, flow: &mut Flow) {
        let policy = self.compiled.policy();
        let src = Endpoint::ip(flow.src_ip);
        let mut dst = Endpoint::ip(flow.dst_ip);
        dst.host = flow
            .hostname
            .as_deref()
            .and_then(|h| Hostname::parse(h).ok());
        let request = Request {
            src,
            dst,
            protocol: Protocol(flow.protocol),
            port: flow.dst_port,
        };
        let decision = self.compiled.evaluate(&request);
        let names = |set: &cordon_policy::GroupSet<'_>| -> Vec<String> {
            set.iter()
                .filter(|g| *g != GroupId::ANY)
                .map(|g| policy.group_name(g).to_string())
                .collect()
        };
        let vendor_of = |set: &cordon_policy::GroupSet<'_>| {
            set.iter()
                .filter_map(|g| policy.group(g))
                .find_map(|g| g.vendor.as_ref().map(|v| v.name.clone()))
        };
        let explained = explain(&self.compiled, &request, &decision);
        flow.enrichment = Some(Enrichment {
            src_workload: explained.src.workload,
            dst_workload: explained.dst.workload,
            src_groups: names(&decision.src_groups),
            dst_groups: names(&decision.dst_groups),
            vendor: vendor_of(&decision.dst_groups).or_else(|| vendor_of(&decision.src_groups)),
            verdict: decision.verdict.as_str().to_string(),
            rule: explained.decided_by,
        });
    }
}
