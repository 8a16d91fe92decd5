//! Kubernetes `networking.k8s.io/v1` NetworkPolicy: allow rules only.
//!
//! Each allow rule becomes, for every label group in `to`, an ingress rule
//! on those pods from the rule's sources, and for every label group in
//! `from`, an egress rule from those pods to the rule's destinations. A
//! policy whose default is deny also gets `cordon-default-deny`, selecting
//! every pod for both directions with no rules. Peers select pods in any
//! namespace (`namespaceSelector: {}`), since groups are not namespaced.

use serde_json::{Value, json};

use super::{
    Export, PRIVATE, Selectors, Unexpressible, close_rule, match_labels, metadata, object_name,
    rule_settings, selectors,
};
use crate::model::{Action, Policy, Rule};
use crate::ports::{PortRange, Protocol};

/// Peers for `s`, and what of it cannot be a peer.
fn peers(s: &Selectors, rule: &Rule, side: &str, out: &mut Vec<Unexpressible>) -> Vec<Value> {
    let mut v = Vec::new();
    if s.any {
        v.push(json!({"namespaceSelector": {}}));
        v.push(json!({"ipBlock": {"cidr": "0.0.0.0/0"}}));
        v.push(json!({"ipBlock": {"cidr": "::/0"}}));
        return v;
    }
    for l in &s.labels {
        v.push(json!({"namespaceSelector": {}, "podSelector": match_labels(l)}));
    }
    for c in &s.cidrs {
        v.push(json!({"ipBlock": {"cidr": c.to_string()}}));
    }
    if s.internet {
        let v4: Vec<&str> = PRIVATE
            .iter()
            .copied()
            .filter(|p| !p.contains(':'))
            .collect();
        v.push(json!({"ipBlock": {"cidr": "0.0.0.0/0", "except": v4}}));
        v.push(json!({"ipBlock": {"cidr": "::/0", "except": ["fc00::/7"]}}));
    }
    if s.private {
        for p in PRIVATE {
            v.push(json!({"ipBlock": {"cidr": p}}));
        }
    }
    for f in &s.fqdns {
        out.push(Unexpressible {
            rule: Some(rule.name.clone()),
            what: format!("{side} hostname {f}"),
            why: "NetworkPolicy selects addresses, not names; use the Cilium export (toFQDNs) or the Cordon gateway".into(),
        });
    }
    for id in &s.spiffe {
        out.push(Unexpressible {
            rule: Some(rule.name.clone()),
            what: format!("{side} SPIFFE ID {id}"),
            why: "NetworkPolicy has no workload identities; give the pods labels".into(),
        });
    }
    v
}

fn ports(rule: &Rule, out: &mut Vec<Unexpressible>) -> Option<Vec<Value>> {
    if rule.ports.is_empty() {
        return Some(Vec::new());
    }
    let mut v = Vec::new();
    for p in &rule.ports {
        let PortRange {
            protocol,
            first,
            last,
        } = *p;
        let name = match protocol {
            Some(Protocol::TCP) => "TCP",
            Some(Protocol::UDP) => "UDP",
            Some(Protocol::SCTP) => "SCTP",
            None => {
                // Any protocol: no ports list at all.
                return Some(Vec::new());
            }
            Some(other) => {
                out.push(Unexpressible {
                    rule: Some(rule.name.clone()),
                    what: format!("protocol {}", other.name()),
                    why: "NetworkPolicy ports are TCP, UDP or SCTP only".into(),
                });
                continue;
            }
        };
        let mut port = json!({"protocol": name});
        if !p.is_all_ports() {
            port["port"] = json!(first);
            if last != first {
                port["endPort"] = json!(last);
            }
        }
        v.push(port);
    }
    // Only unsupported protocols: the rule cannot be exported.
    (!v.is_empty()).then_some(v)
}

/// The NetworkPolicy objects for `policy` in `namespace`.
pub fn export(policy: &Policy, namespace: &str) -> Export {
    let mut objects = Vec::new();
    let mut out = Vec::new();
    let meta = |name: String| metadata(name, namespace, policy);
    if policy.default == Action::Deny {
        objects.push(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta(object_name(&["cordon", &policy.name, "default-deny"])),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        }));
    } else {
        out.push(Unexpressible {
            rule: None,
            what: "default: allow".into(),
            why: "pods selected by any NetworkPolicy deny what it does not allow; leave pods unselected to allow by default".into(),
        });
    }
    for rule in &policy.rules {
        if rule.action == Action::Deny {
            out.push(Unexpressible {
                rule: Some(rule.name.clone()),
                what: "deny rule".into(),
                why: "NetworkPolicy can only allow; use the Cilium export (egressDeny/ingressDeny) or the Cordon agent".into(),
            });
            continue;
        }
        let from: Vec<Selectors> = rule.from.iter().map(|g| selectors(policy, *g)).collect();
        let to: Vec<Selectors> = rule.to.iter().map(|g| selectors(policy, *g)).collect();
        let Some(rule_ports) = ports(rule, &mut out) else {
            continue;
        };
        let mut notes = Vec::new();
        let from_peers: Vec<Value> = from
            .iter()
            .flat_map(|s| peers(s, rule, "source", &mut notes))
            .collect();
        let to_peers: Vec<Value> = to
            .iter()
            .flat_map(|s| peers(s, rule, "destination", &mut notes))
            .collect();
        let mut emitted = false;
        for (i, s) in to.iter().enumerate() {
            for (j, l) in s.labels.iter().enumerate() {
                if from_peers.is_empty() {
                    continue;
                }
                let mut ingress = json!({"from": from_peers});
                if !rule_ports.is_empty() {
                    ingress["ports"] = json!(rule_ports);
                }
                objects.push(json!({
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": meta(object_name(&["cordon", &rule.name, "ingress", &i.to_string(), &j.to_string()])),
                    "spec": {"podSelector": match_labels(l), "policyTypes": ["Ingress"], "ingress": [ingress]},
                }));
                emitted = true;
            }
        }
        for (i, s) in from.iter().enumerate() {
            for (j, l) in s.labels.iter().enumerate() {
                if to_peers.is_empty() {
                    continue;
                }
                let mut egress = json!({"to": to_peers});
                if !rule_ports.is_empty() {
                    egress["ports"] = json!(rule_ports);
                }
                objects.push(json!({
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": meta(object_name(&["cordon", &rule.name, "egress", &i.to_string(), &j.to_string()])),
                    "spec": {"podSelector": match_labels(l), "policyTypes": ["Egress"], "egress": [egress]},
                }));
                emitted = true;
            }
        }
        close_rule(
            &mut out,
            notes,
            emitted,
            rule,
            "neither side selects pods by labels, so there is nothing to attach a NetworkPolicy to",
        );
    }
    rule_settings(policy, &mut out);
    Export {
        objects,
        unexpressible: out,
    }
}
