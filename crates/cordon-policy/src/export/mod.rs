//! The policy as objects a Kubernetes cluster enforces: `networking.k8s.io/v1`
//! NetworkPolicy ([`k8s`]) and `cilium.io/v2` CiliumNetworkPolicy
//! ([`cilium`]), with the list of everything that could not be expressed
//! and why. Label groups become pod selectors, CIDR groups `ipBlock` /
//! `toCIDRSet`, FQDN groups Cilium `toFQDNs`; built-ins map to entities or
//! address blocks.

pub mod cilium;
pub mod k8s;
pub mod yaml;

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::Value;

use crate::model::{GroupId, Policy};
use cordon_core::hostname::FqdnPattern;

/// Something of the policy that an export leaves out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unexpressible {
    /// The rule concerned (none for policy-wide settings).
    pub rule: Option<String>,
    /// What is left out.
    pub what: String,
    /// Why the target cannot express it.
    pub why: String,
}

/// The objects of one export and what they leave out.
#[derive(Clone, Debug)]
pub struct Export {
    /// Kubernetes objects, in order.
    pub objects: Vec<Value>,
    /// What could not be expressed.
    pub unexpressible: Vec<Unexpressible>,
}

impl Export {
    /// The objects as a YAML stream.
    pub fn to_yaml(&self) -> String {
        yaml::documents(&self.objects)
    }
}

/// What a group selects, flattened through nested groups.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selectors {
    pub labels: Vec<BTreeMap<String, String>>,
    pub cidrs: Vec<IpNet>,
    pub fqdns: Vec<FqdnPattern>,
    pub spiffe: Vec<String>,
    pub any: bool,
    pub internet: bool,
    pub private: bool,
}

/// The selectors of `group`, through its members.
pub(crate) fn selectors(policy: &Policy, group: GroupId) -> Selectors {
    let mut out = Selectors::default();
    for id in policy.group_closure(group) {
        match id {
            GroupId::ANY => out.any = true,
            GroupId::INTERNET => out.internet = true,
            GroupId::PRIVATE => out.private = true,
            _ => {}
        }
        let Some(g) = policy.group(id) else { continue };
        if g.builtin {
            continue;
        }
        if let Some(l) = &g.labels
            && !out.labels.contains(l)
        {
            out.labels.push(l.clone());
        }
        out.cidrs.extend(g.cidrs.iter().copied());
        out.fqdns.extend(g.fqdns.iter().cloned());
        out.spiffe.extend(g.spiffe.iter().cloned());
    }
    out
}

/// Private address space, as the built-in `private` group defines it.
pub(crate) use cordon_core::ip::PRIVATE;

/// A name Kubernetes accepts (DNS-1123 subdomain, at most 253 characters).
pub(crate) fn object_name(parts: &[&str]) -> String {
    let raw = parts.join("-").to_ascii_lowercase();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(253);
    name.trim_matches(|c: char| c == '-' || c == '.')
        .to_string()
}

/// Object metadata: name, namespace, and labels saying Cordon made it.
pub(crate) fn metadata(name: String, namespace: &str, policy: &Policy) -> Value {
    serde_json::json!({
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "cordon", "cordon.dev/policy": object_name(&[&policy.name])},
    })
}

/// Record what of `rule` was left out: the parts in `notes`, and the whole
/// rule when nothing was emitted (`nothing_to_attach` says why when no part
/// was left out either).
pub(crate) fn close_rule(
    out: &mut Vec<Unexpressible>,
    mut notes: Vec<Unexpressible>,
    emitted: bool,
    rule: &crate::model::Rule,
    nothing_to_attach: &str,
) {
    notes.dedup();
    let partial = !notes.is_empty();
    out.extend(notes);
    if !emitted {
        out.push(Unexpressible {
            rule: Some(rule.name.clone()),
            what: "the whole rule".into(),
            why: if partial {
                "nothing of it is left once the parts above are taken out".into()
            } else {
                nothing_to_attach.into()
            },
        });
    }
}

/// A label selector for `labels`.
pub(crate) fn match_labels(labels: &BTreeMap<String, String>) -> Value {
    serde_json::json!({ "matchLabels": labels })
}

/// Rule-level settings neither target has: limits, logging, audit mode.
pub(crate) fn rule_settings(policy: &Policy, out: &mut Vec<Unexpressible>) {
    for r in &policy.rules {
        if let Some(limit) = &r.limit {
            out.push(Unexpressible {
                rule: Some(r.name.clone()),
                what: format!("limit {} per {}", limit.bytes_out, limit.per),
                why: "network policies have no byte quotas; the Cordon gateway meters them".into(),
            });
        }
        if r.log {
            out.push(Unexpressible {
                rule: Some(r.name.clone()),
                what: "log: true".into(),
                why: "logging is configured in the CNI (e.g. Hubble), not in the policy".into(),
            });
        }
        if r.mode == Some(crate::model::Mode::Audit) {
            out.push(Unexpressible {
                rule: Some(r.name.clone()),
                what: "mode: audit".into(),
                why: "exported rules always enforce; leave audit rules out of the cluster until enforced".into(),
            });
        }
    }
    if policy.mode == crate::model::Mode::Audit {
        out.push(Unexpressible {
            rule: None,
            what: "policy mode: audit".into(),
            why: "exported objects enforce; use the CNI's audit mode (Cilium: policy-audit-mode) to observe first".into(),
        });
    }
}

#[cfg(test)]
mod tests;
