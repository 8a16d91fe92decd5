//! What would have stopped a finding's traffic: the rule that denies it, or
//! for traffic the policy allowed, a deny rule proposed from the finding's
//! entities and checked with the policy engine against every evidence flow.

use std::sync::Arc;

use cordon_core::{FqdnPattern, Hostname, Protocol, Verdict};
use cordon_detect::Finding;
use cordon_detect::finding::Entity;
use cordon_policy::model::Group;
use cordon_policy::{Action, CompiledPolicy, Endpoint, GroupId, Policy, PortRange, Request, Rule};
use ipnet::IpNet;

use super::{ProposedRule, Stopper};

pub(super) fn stopper(f: &Finding, policy: Option<&Policy>) -> Stopper {
    if f.kind.is_cloud_plane() {
        // A cloud API call is no network path: the network policy neither
        // allowed nor could deny it; the kind's action says what would.
        return Stopper {
            rule: None,
            proposed: None,
            text: format!("A cloud API call, outside the network policy. {}", f.action),
        };
    }
    if let Some(rule) = &f.stopped_by {
        return Stopper {
            rule: Some(rule.clone()),
            proposed: None,
            text: format!("Enforced, the policy denies this traffic: {rule}."),
        };
    }
    let Some(policy) = policy else {
        return Stopper {
            rule: None,
            proposed: None,
            text: "The policy allows this path (a trusted or unlisted route); give the policy to get a proposed rule.".to_string(),
        };
    };
    match propose(f, policy) {
        Some(p) => Stopper {
            rule: None,
            text: format!(
                "The policy allows this path. A deny rule that would have stopped it: {}",
                p.check
            ),
            proposed: Some(p),
        },
        None => Stopper {
            rule: None,
            proposed: None,
            text: "The policy allows this path, and the finding names no endpoints to write a rule for.".to_string(),
        },
    }
}

/// A user group of `e` that the policy has, or a new group for its address
/// or name.
fn side(
    e: &Entity,
    policy: &Policy,
    role: &str,
    external: bool,
    new: &mut Vec<Group>,
) -> Option<(GroupId, Option<String>)> {
    for name in &e.groups {
        if let Some(id) = policy.group_id(name)
            && !policy.groups[id.index()].builtin
        {
            return Some((id, None));
        }
    }
    let (cidrs, fqdns, yaml) = match (e.ip, &e.hostname) {
        (_, Some(h)) if external => {
            let pattern = FqdnPattern {
                name: Hostname::parse(h).ok()?,
                wildcard: false,
            };
            (Vec::new(), vec![pattern], format!("fqdns: [{h}]"))
        }
        (Some(ip), _) => {
            let net = IpNet::from(ip);
            (vec![net], Vec::new(), format!("cidrs: [{net}]"))
        }
        _ => return None,
    };
    let name = format!("incident-{role}-{}", policy.groups.len() + new.len());
    let id = GroupId(u32::try_from(policy.groups.len() + new.len()).ok()?);
    new.push(Group {
        name: name.clone(),
        description: Some("proposed from an incident".to_string()),
        builtin: false,
        labels: None,
        cidrs,
        fqdns,
        spiffe: Vec::new(),
        identities: Vec::new(),
        data: Vec::new(),
        members: Vec::new(),
        external,
        vendor: None,
        pos: None,
    });
    Some((id, Some(format!("  {name}: {{{yaml}}}"))))
}

fn propose(f: &Finding, policy: &Policy) -> Option<ProposedRule> {
    let mut groups = Vec::new();
    let external =
        f.dst_entity.ip.is_some_and(cordon_core::ip::is_internet) || f.dst_entity.vendor.is_some();
    let (from, from_yaml) = side(&f.src_entity, policy, "src", false, &mut groups)?;
    let (to, to_yaml) = side(&f.dst_entity, policy, "dst", external, &mut groups)?;
    let sample = f.evidence.flows.first();
    let protocol = Protocol(sample.map_or(6, |r| r.protocol));
    let port = f.port.or(sample.map(|r| r.dst_port));
    let ports: Vec<PortRange> = match (protocol.name().as_str(), port) {
        ("tcp" | "udp" | "sctp", Some(p)) => PortRange::parse(&format!("{}/{p}", protocol.name()))
            .ok()
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    let name = format!("deny-{}-{}", f.kind, &f.id[f.id.len().saturating_sub(6)..]);
    let mut patched = policy.clone();
    patched.groups.extend(groups);
    patched.rules.push(Rule {
        name: name.clone(),
        description: Some(format!("Proposed from finding {}", f.id)),
        from: vec![from],
        to: vec![to],
        ports: ports.clone(),
        action: Action::Deny,
        limit: None,
        log: true,
        mode: None,
        pos: None,
    });
    let group_name = |id: GroupId| patched.group_name(id).to_string();
    let ports_yaml = ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut yaml = String::new();
    let new_groups: Vec<String> = [from_yaml, to_yaml].into_iter().flatten().collect();
    if !new_groups.is_empty() {
        yaml.push_str("groups:\n");
        for g in &new_groups {
            yaml.push_str(g);
            yaml.push('\n');
        }
    }
    yaml.push_str(&format!(
        "rules:\n  - {{name: {name}, from: [{}], to: [{}],{} action: deny, log: true}}\n",
        group_name(from),
        group_name(to),
        if ports_yaml.is_empty() {
            String::new()
        } else {
            format!(" ports: [{ports_yaml}],")
        }
    ));

    // The check: every evidence flow is denied with the rule added.
    let compiled = CompiledPolicy::new(Arc::new(patched));
    let mut denied = 0;
    for r in &f.evidence.flows {
        let mut src = Endpoint::ip(r.src_ip);
        src.workload = compiled.workload_at(r.src_ip);
        let mut dst = Endpoint::ip(r.dst_ip);
        dst.workload = compiled.workload_at(r.dst_ip);
        if f.dst_entity.ip == Some(r.dst_ip) {
            dst.host = f
                .dst_entity
                .hostname
                .as_deref()
                .and_then(|h| Hostname::parse(h).ok());
        }
        let request = Request {
            src,
            dst,
            protocol: Protocol(r.protocol),
            port: r.dst_port,
        };
        if compiled.evaluate(&request).verdict == Verdict::Deny {
            denied += 1;
        }
    }
    let total = f.evidence.flows.len();
    let checked = total > 0 && denied == total;
    let check = if total == 0 {
        "no evidence flow to check it against.".to_string()
    } else {
        format!(
            "checked with the policy engine, it denies {denied} of the {total} evidence flow(s)."
        )
    };
    Some(ProposedRule {
        yaml,
        checked,
        check,
    })
}
