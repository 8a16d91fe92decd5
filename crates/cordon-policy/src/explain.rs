//! Decisions told in words and in JSON.

use serde::Serialize;

use crate::compile::CompiledPolicy;
use crate::decision::{Decision, Endpoint, Reason, Request};
use crate::model::{Action, Mode};

/// One matching rule, named.
#[derive(Clone, Debug, Serialize)]
pub struct MatchedRule {
    /// Rule name.
    pub name: String,
    /// allow or deny.
    pub action: Action,
    /// Effective mode.
    pub mode: Mode,
    /// Where it is defined (`line:col`).
    pub at: Option<String>,
}

/// One side of the request, named.
#[derive(Clone, Debug, Serialize)]
pub struct ExplainedEndpoint {
    /// The address, if known.
    pub ip: Option<String>,
    /// The hostname, if known.
    pub host: Option<String>,
    /// The workload, if the inventory knows it.
    pub workload: Option<String>,
    /// The SPIFFE ID, if presented.
    pub spiffe: Option<String>,
    /// Every group it is in.
    pub groups: Vec<String>,
    /// Vendor names of the external groups it is in.
    pub vendors: Vec<String>,
}

/// A decision with names instead of ids, for people and for `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// `allow`, `deny` or `would-deny`.
    pub verdict: &'static str,
    /// Names of every matching rule.
    pub rules: Vec<String>,
    /// The rule that decided, if one did.
    pub decided_by: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
    /// The matching rules in detail.
    pub matched: Vec<MatchedRule>,
    /// The source.
    pub src: ExplainedEndpoint,
    /// The destination.
    pub dst: ExplainedEndpoint,
    /// Protocol and port, as `tcp/443`.
    pub port: String,
}

fn endpoint(
    compiled: &CompiledPolicy,
    e: &Endpoint,
    groups: &crate::decision::GroupSet<'_>,
) -> ExplainedEndpoint {
    let policy = compiled.policy();
    let workload = e
        .workload
        .or_else(|| e.ip.and_then(|ip| compiled.workload_at(ip)))
        .and_then(|w| policy.workload(w))
        .map(|w| w.name.clone());
    let in_groups: Vec<_> = groups.iter().filter_map(|g| policy.group(g)).collect();
    ExplainedEndpoint {
        ip: e.ip.map(|i| i.to_string()),
        host: e.host.as_ref().map(ToString::to_string),
        workload,
        spiffe: e.spiffe.clone(),
        groups: in_groups.iter().map(|g| g.name.clone()).collect(),
        vendors: in_groups
            .iter()
            .filter_map(|g| g.vendor.as_ref().map(|v| v.name.clone()))
            .collect(),
    }
}

/// Name every part of `decision`.
pub fn explain(
    compiled: &CompiledPolicy,
    request: &Request,
    decision: &Decision<'_>,
) -> Explanation {
    let policy = compiled.policy();
    let matched: Vec<MatchedRule> = decision
        .rules
        .iter()
        .filter_map(|id| policy.rule(*id))
        .map(|r| MatchedRule {
            name: r.name.clone(),
            action: r.action,
            mode: policy.rule_mode(r),
            at: r.pos.map(|p| p.to_string()),
        })
        .collect();
    let name = |id| policy.rule(id).map_or("?".to_string(), |r| r.name.clone());
    let (decided_by, reason) = match decision.reason {
        Reason::DenyRule(id) => {
            let allows = matched.iter().filter(|m| m.action == Action::Allow).count();
            let audit = policy
                .rule(id)
                .is_some_and(|r| policy.rule_mode(r) == Mode::Audit);
            let mut text = format!("denied by rule `{}`", name(id));
            if audit {
                text.push_str(" in audit mode: the traffic passes and is recorded as would-deny");
            }
            if allows > 0 {
                text.push_str(&format!(
                    "; deny overrides the {allows} matching allow rule{}",
                    if allows == 1 { "" } else { "s" }
                ));
            }
            (Some(name(id)), text)
        }
        Reason::AllowRule(id) => (Some(name(id)), format!("allowed by rule `{}`", name(id))),
        Reason::Default => {
            let mut text = format!("no rule matches; the policy default is {}", policy.default);
            if policy.default == Action::Deny && policy.mode == Mode::Audit {
                text.push_str(" (audit mode: recorded as would-deny, not stopped)");
            }
            (None, text)
        }
    };
    Explanation {
        verdict: decision.verdict.as_str(),
        rules: matched.iter().map(|m| m.name.clone()).collect(),
        decided_by,
        reason,
        matched,
        src: endpoint(compiled, &request.src, &decision.src_groups),
        dst: endpoint(compiled, &request.dst, &decision.dst_groups),
        port: if request.protocol.has_ports() {
            format!("{}/{}", request.protocol, request.port)
        } else {
            request.protocol.to_string()
        },
    }
}
