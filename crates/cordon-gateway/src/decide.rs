//! The decision: policy on the name, then resolution, then policy and the
//! SSRF guard on every address, then the egress limit.
//!
//! The name is judged before it is resolved, so a denied name is never
//! looked up (no DNS leak of what was refused). Every answer is then judged
//! with the name and the address together; one answer that the policy
//! denies or the guard refuses refuses the whole name, because a name that
//! mixes public and internal answers is how SSRF through DNS works.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use cordon_policy::{
    Action, CompiledPolicy, Decision, Endpoint, GroupId, Mode, Protocol, Reason, Request, RuleId,
    Verdict,
};

use crate::Shared;
use crate::guard;
use crate::identity::Identity;
use crate::quota::{Meter, MeterKey};
use crate::target::{Host, Target};
use cordon_core::resolve::ResolveError;

/// What the gateway decided for one connection or request.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// The deciding rule.
    pub rule: Option<String>,
    /// Its id in the policy the outcome was decided under.
    pub rule_id: Option<RuleId>,
    /// Why, in one word (see [`cordon_flow::sources::cordon::gateway::GatewayRecord::reason`]).
    pub reason: &'static str,
    /// Why, for people.
    pub detail: String,
    /// The HTTP status to answer with when the connection does not go ahead
    /// (403 denied, 502 DNS failure, 504 DNS timeout); 200 otherwise.
    pub status: u16,
    /// The checked addresses to dial, in order.
    pub addrs: Vec<IpAddr>,
    /// The client's groups.
    pub src_groups: Vec<String>,
    /// The destination's groups.
    pub dst_groups: Vec<String>,
    /// The destination's vendor (or first group) for metrics.
    pub vendor: String,
    /// The egress limit the connection counts against.
    pub meter: Option<Arc<Meter>>,
    /// Whether passing the limit only records (audit mode).
    pub meter_audit: bool,
    /// Resolution time, milliseconds.
    pub dns_ms: Option<f64>,
}

impl Outcome {
    /// Whether the connection goes ahead.
    pub fn proceeds(&self) -> bool {
        self.status == 200 && self.verdict.passes()
    }

    fn refuse(mut self, reason: &'static str, detail: String, status: u16) -> Outcome {
        self.verdict = Verdict::Deny;
        self.reason = reason;
        self.detail = detail;
        self.status = status;
        self.addrs.clear();
        self
    }
}

/// Group names of a decision side, without `any`.
fn names(policy: &CompiledPolicy, groups: impl Iterator<Item = GroupId>) -> Vec<String> {
    groups
        .filter(|g| *g != GroupId::ANY)
        .map(|g| policy.policy().group_name(g).to_string())
        .collect()
}

fn from_decision(policy: &CompiledPolicy, d: &Decision<'_>) -> Outcome {
    let p = policy.policy();
    let (rule_id, reason) = match d.reason {
        Reason::AllowRule(r) | Reason::DenyRule(r) => (Some(r), "rule"),
        Reason::Default => (None, "default"),
    };
    let rule = rule_id.and_then(|r| p.rule(r)).map(|r| r.name.clone());
    let vendor = d
        .dst_groups
        .iter()
        .filter_map(|g| p.group(g))
        .find_map(|g| g.vendor.as_ref().map(|v| v.name.clone()))
        .or_else(|| {
            d.dst_groups
                .iter()
                .filter(|g| g.0 >= GroupId::BUILTIN_COUNT)
                .map(|g| p.group_name(g).to_string())
                .next()
        })
        .unwrap_or_else(|| "other".to_string());
    Outcome {
        verdict: d.verdict,
        rule,
        rule_id,
        reason,
        detail: String::new(),
        status: if d.verdict.passes() { 200 } else { 403 },
        addrs: Vec::new(),
        src_groups: names(policy, d.src_groups.iter()),
        dst_groups: names(policy, d.dst_groups.iter()),
        vendor,
        meter: None,
        meter_audit: false,
        dns_ms: None,
    }
}

/// Whether an allow rule that matched `d` names `ip` in a CIDR of a
/// user group (directly or through nesting): the one way to reach an
/// address the guard refuses.
fn explicitly_named(policy: &CompiledPolicy, d: &Decision<'_>, ip: IpAddr) -> bool {
    let p = policy.policy();
    d.rules.iter().filter_map(|r| p.rule(*r)).any(|rule| {
        rule.action == Action::Allow
            && rule.to.iter().any(|g| {
                p.group_closure(*g).into_iter().any(|g| {
                    p.group(g)
                        .is_some_and(|g| !g.builtin && g.cidrs.iter().any(|n| n.contains(&ip)))
                })
            })
    })
}

fn destination(host: &Host, ip: Option<IpAddr>) -> Endpoint {
    match host {
        Host::Name(name) => Endpoint {
            ip: ip.and_then(|ip| Endpoint::ip(ip).ip),
            host: Some(name.clone()),
            ..Endpoint::default()
        },
        Host::Ip(addr) => Endpoint::ip(*addr),
    }
}

/// Judge `(client, ip)` under `policy` without resolving: the policy
/// verdict and the guard. Used to re-judge open tunnels after a reload.
pub fn judge_address(
    shared: &Shared,
    policy: &CompiledPolicy,
    identity: &Identity,
    target: &Target,
    ip: IpAddr,
) -> Outcome {
    let request = Request {
        src: identity.endpoint(policy),
        dst: destination(&target.host, Some(ip)),
        protocol: Protocol::TCP,
        port: target.port,
    };
    let d = policy.evaluate(&request);
    let out = from_decision(policy, &d);
    if !d.verdict.passes() {
        let detail = format!("{ip} is denied");
        let reason = out.reason;
        return out.refuse(reason, detail, 403);
    }
    if let Some(out) = by_response(shared, policy, &request, &out) {
        return out;
    }
    let kind = guard::forbidden(ip)
        .or_else(|| shared.own_ips.contains(&ip).then_some("the gateway itself"));
    if let Some(kind) = kind
        && !explicitly_named(policy, &d, ip)
    {
        let detail = format!(
            "{} resolves to {ip} ({kind}); no allow rule names it in a CIDR group",
            target.host
        );
        return out.refuse("ssrf", detail, 403);
    }
    out
}

/// Decide on `identity` reaching `target` now.
pub async fn decide(shared: &Shared, identity: &Identity, target: &Target) -> Outcome {
    let policy = shared.policy();
    let first = {
        let request = Request {
            src: identity.endpoint(&policy),
            dst: destination(&target.host, None),
            protocol: Protocol::TCP,
            port: target.port,
        };
        let d = policy.evaluate(&request);
        let out = from_decision(&policy, &d);
        if !out.verdict.passes() {
            return out;
        }
        // A response that cuts the name itself refuses before any lookup.
        match by_response(shared, &policy, &request, &out) {
            Some(refused) => return refused,
            None => out,
        }
    };
    let (addrs, dns_ms) = match &target.host {
        Host::Ip(ip) => (vec![*ip], None),
        Host::Name(name) => {
            let started = Instant::now();
            let answer = shared.resolver.lookup(name).await;
            let seconds = started.elapsed().as_secs_f64();
            shared.metrics.resolved(seconds);
            match answer {
                Ok(a) => (a, Some(seconds * 1000.0)),
                Err(e) => {
                    let status = if matches!(e, ResolveError::Timeout(_)) {
                        504
                    } else {
                        502
                    };
                    let mut out = first.refuse("dns", e.to_string(), status);
                    out.verdict = Verdict::Allow;
                    out.dns_ms = Some(seconds * 1000.0);
                    return out;
                }
            }
        }
    };
    let mut decided: Option<Outcome> = None;
    for ip in &addrs {
        let out = judge_address(shared, &policy, identity, target, *ip);
        if !out.verdict.passes() {
            let mut out = out;
            out.dns_ms = dns_ms;
            return out;
        }
        match &mut decided {
            None => decided = Some(out),
            Some(d) if out.verdict == Verdict::WouldDeny => d.verdict = Verdict::WouldDeny,
            Some(_) => {}
        }
    }
    let Some(mut out) = decided else {
        return first.refuse("dns", format!("{} has no addresses", target.host), 502);
    };
    out.addrs = addrs;
    out.dns_ms = dns_ms;
    apply_limit(shared, &policy, &mut out);
    out
}

/// The refusal when a response in force denies `request` (deny
/// overrides: whatever the policy said).
fn by_response(
    shared: &Shared,
    policy: &CompiledPolicy,
    request: &Request,
    out: &Outcome,
) -> Option<Outcome> {
    let responses = shared.responses();
    if responses.enforced.is_empty() {
        return None;
    }
    let (enforced, why) = responses.denies(policy, &request.src, &request.dst)?;
    let mut refused = out.clone().refuse("response", why, 403);
    refused.rule = Some(enforced.id.0.clone());
    refused.rule_id = None;
    Some(refused)
}

/// Attach the deciding rule's egress limit, refusing when it is spent.
/// The meter's groups are the rule's groups the decision placed each side
/// in (`any` matches every side).
fn apply_limit(shared: &Shared, policy: &CompiledPolicy, out: &mut Outcome) {
    let p = policy.policy();
    if apply_throttle(shared, policy, out) {
        return;
    }
    let Some(rule) = out.rule_id.and_then(|r| p.rule(r)) else {
        return;
    };
    let (Some(limit), Action::Allow) = (rule.limit, rule.action) else {
        return;
    };
    let pick = |groups: &[GroupId], names: &[String]| {
        groups
            .iter()
            .find(|g| **g == GroupId::ANY || names.iter().any(|n| n == p.group_name(**g)))
            .map(|g| p.group_name(*g).to_string())
            .unwrap_or_else(|| "?".to_string())
    };
    let key = MeterKey {
        rule: rule.name.clone(),
        from: pick(&rule.from, &out.src_groups),
        to: pick(&rule.to, &out.dst_groups),
    };
    let window_ms = u64::try_from(limit.per.0.as_millis()).unwrap_or(u64::MAX);
    // A limit on sending to a vendor the policy says receives personal
    // data is an exfiltration control: pooled, it fails closed by default.
    let exfiltration = rule.to.iter().any(|g| {
        p.group(*g)
            .and_then(|g| g.vendor.as_ref())
            .is_some_and(|v| !v.data.is_empty())
    });
    let Some(meter) = shared
        .meters
        .meter(&key, limit.bytes_out.0, window_ms, exfiltration)
    else {
        return;
    };
    out.meter_audit = p.rule_mode(rule) == Mode::Audit;
    if meter.exceeded() {
        let detail = format!(
            "egress limit of rule `{}` spent: {} of {} bytes this window ({} → {})",
            rule.name,
            meter.used(),
            meter.limit(),
            key.from,
            key.to
        );
        if out.meter_audit {
            out.verdict = Verdict::WouldDeny;
            out.reason = "quota";
            out.detail = detail;
        } else {
            *out = out.clone().refuse("quota", detail, 403);
            return;
        }
    }
    out.meter = Some(meter);
}

/// A throttle response on the destination's vendor: its meter replaces
/// the rule's limit when it is lower (or the rule has none). Returns
/// whether one applied.
fn apply_throttle(shared: &Shared, policy: &CompiledPolicy, out: &mut Outcome) -> bool {
    let responses = shared.responses();
    if responses.enforced.is_empty() {
        return false;
    }
    let p = policy.policy();
    let groups: Vec<GroupId> = out
        .dst_groups
        .iter()
        .filter_map(|name| p.group_id(name))
        .collect();
    let Some((bytes, per, enforced)) = responses.throttle(&groups) else {
        return false;
    };
    let rule_rate = out
        .rule_id
        .and_then(|r| p.rule(r))
        .and_then(|r| r.limit)
        .map(|l| l.bytes_out.0 as f64 / l.per.0.as_secs_f64().max(1e-3));
    if rule_rate.is_some_and(|r| r <= bytes as f64 / per.as_secs_f64().max(1e-3)) {
        return false;
    }
    let key = MeterKey {
        rule: format!("response {}", enforced.id),
        from: "any".into(),
        to: enforced.target.clone(),
    };
    let window_ms = u64::try_from(per.as_millis()).unwrap_or(u64::MAX);
    // A throttle is containment in force: pooled, it fails closed.
    let Some(meter) = shared.meters.meter(&key, bytes, window_ms, true) else {
        return false;
    };
    if meter.exceeded() {
        let detail = format!(
            "egress limit lowered by response {} spent: {} of {} bytes this window ({})",
            enforced.id,
            meter.used(),
            meter.limit(),
            enforced.target
        );
        *out = out.clone().refuse("response", detail, 403);
        return true;
    }
    out.meter_audit = false;
    out.meter = Some(meter);
    true
}
