//! Cilium `cilium.io/v2` CiliumNetworkPolicy: allows and denies.
//!
//! Each rule becomes, for every label group in `from`, an `egress` (or
//! `egressDeny`) rule on those endpoints towards the rule's destinations —
//! endpoints by labels, `toCIDRSet`, `toEntities` (`world` for `internet`,
//! `all` for `any`) and `toFQDNs` — and for every label group in `to`, an
//! `ingress` (or `ingressDeny`) rule on those endpoints from the sources.
//! Endpoints with FQDN rules also get the DNS rule that lets Cilium see the
//! lookups (`toFQDNs` only works on names it saw resolved).
//!
//! What the Cilium agent accepts, not only the API server:
//! - each kind of peer is its own rule in the list (the agent refuses a
//!   rule combining `toCIDRSet` with `toEndpoints` or with `toFQDNs`, and
//!   would silently not enforce it);
//! - deny rules have no `toFQDNs`: a deny towards hostnames is listed as
//!   not expressible (the Cordon gateway enforces it);
//! - peers selected by labels match in every namespace (a namespace
//!   `Exists` expression), as in the Kubernetes export; without it Cilium
//!   would match only the policy's own namespace.

use serde_json::{Value, json};

use super::{
    Export, PRIVATE, Selectors, Unexpressible, close_rule, match_labels, metadata, object_name,
    rule_settings, selectors,
};
use crate::model::{Action, Policy, Rule};
use crate::ports::Protocol;

/// The DNS rule `toFQDNs` needs: lookups through kube-dns, visible to Cilium.
fn dns_rule() -> Value {
    json!({
        "toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}],
        "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}],
    })
}

fn to_ports(rule: &Rule, out: &mut Vec<Unexpressible>) -> (Option<Value>, Vec<Value>) {
    if rule.ports.is_empty() {
        return (None, Vec::new());
    }
    let mut ports = Vec::new();
    let mut icmps = Vec::new();
    for p in &rule.ports {
        let proto = match p.protocol {
            Some(Protocol::TCP) => "TCP",
            Some(Protocol::UDP) => "UDP",
            Some(Protocol::SCTP) => "SCTP",
            None => return (None, Vec::new()),
            Some(Protocol::ICMP) => {
                icmps.push(json!({"fields": [{"type": 8, "family": "IPv4"}]}));
                out.push(Unexpressible {
                    rule: Some(rule.name.clone()),
                    what: "icmp (all types)".into(),
                    why: "Cilium selects ICMP by type; only echo request (type 8) is exported"
                        .into(),
                });
                continue;
            }
            Some(Protocol::ICMPV6) => {
                icmps.push(json!({"fields": [{"type": 128, "family": "IPv6"}]}));
                out.push(Unexpressible {
                    rule: Some(rule.name.clone()),
                    what: "icmpv6 (all types)".into(),
                    why: "Cilium selects ICMP by type; only echo request (type 128) is exported"
                        .into(),
                });
                continue;
            }
            Some(other) => {
                out.push(Unexpressible {
                    rule: Some(rule.name.clone()),
                    what: format!("protocol {}", other.name()),
                    why: "Cilium port rules are TCP, UDP, SCTP or ANY".into(),
                });
                continue;
            }
        };
        let mut port = if p.is_all_ports() {
            json!({"port": "0", "protocol": proto})
        } else {
            json!({"port": p.first.to_string(), "protocol": proto})
        };
        if p.last != p.first && !p.is_all_ports() {
            port["endPort"] = json!(p.last);
        }
        ports.push(port);
    }
    let ports = (!ports.is_empty()).then(|| json!([{"ports": ports}]));
    (ports, icmps)
}

/// The namespace label Cilium gives every endpoint.
const NAMESPACE_LABEL: &str = "k8s:io.kubernetes.pod.namespace";

/// A peer selector by labels that matches in any namespace.
fn peer_labels(labels: &std::collections::BTreeMap<String, String>) -> Value {
    let mut sel = match_labels(labels);
    sel["matchExpressions"] = json!([{"key": NAMESPACE_LABEL, "operator": "Exists"}]);
    sel
}

/// The peer fields for `s` (`to…` or `from…` by `dir`), one per kind of
/// peer: each becomes a rule of its own.
fn peer_fields(
    s: &Selectors,
    dir: &str,
    rule: &Rule,
    out: &mut Vec<Unexpressible>,
) -> Vec<(String, Value)> {
    let key = |k: &str| format!("{dir}{k}");
    let mut fields = Vec::new();
    if s.any {
        fields.push((key("Entities"), json!(["all"])));
        return fields;
    }
    if !s.labels.is_empty() {
        let sel: Vec<Value> = s.labels.iter().map(peer_labels).collect();
        fields.push((key("Endpoints"), json!(sel)));
    }
    let mut cidrs: Vec<Value> = s
        .cidrs
        .iter()
        .map(|c| json!({"cidr": c.to_string()}))
        .collect();
    if s.private {
        cidrs.extend(PRIVATE.iter().map(|p| json!({"cidr": p})));
    }
    if !cidrs.is_empty() {
        fields.push((key("CIDRSet"), json!(cidrs)));
    }
    if s.internet {
        fields.push((key("Entities"), json!(["world"])));
    }
    if !s.fqdns.is_empty() {
        if rule.action == Action::Deny {
            out.push(Unexpressible {
                rule: Some(rule.name.clone()),
                what: "deny to hostnames".into(),
                why: "Cilium deny rules cannot select FQDNs (no toFQDNs in egressDeny); the Cordon gateway enforces this deny".into(),
            });
        } else if dir == "to" {
            let sel: Vec<Value> = s
                .fqdns
                .iter()
                .map(|f| {
                    if f.wildcard {
                        json!({"matchPattern": format!("*.{}", f.name)})
                    } else {
                        json!({"matchName": f.name.as_str()})
                    }
                })
                .collect();
            fields.push(("toFQDNs".to_string(), json!(sel)));
            if s.fqdns.iter().any(|f| f.wildcard) {
                out.push(Unexpressible {
                    rule: Some(rule.name.clone()),
                    what: "wildcard depth of FQDN patterns".into(),
                    why: "Cilium's `*.example.com` matches one label; Cordon's matches any depth below it".into(),
                });
            }
        } else {
            out.push(Unexpressible {
                rule: Some(rule.name.clone()),
                what: "source hostnames".into(),
                why: "Cilium matches names only for egress (toFQDNs)".into(),
            });
        }
    }
    for id in &s.spiffe {
        out.push(Unexpressible {
            rule: Some(rule.name.clone()),
            what: format!("SPIFFE ID {id}"),
            why: "CiliumNetworkPolicy selects endpoints by labels; give the pods labels".into(),
        });
    }
    fields
}

/// The CiliumNetworkPolicy objects for `policy` in `namespace`.
pub fn export(policy: &Policy, namespace: &str) -> Export {
    let mut objects = Vec::new();
    let mut out = Vec::new();
    if policy.default == Action::Allow {
        out.push(Unexpressible {
            rule: None,
            what: "default: allow".into(),
            why: "an endpoint selected by a CiliumNetworkPolicy denies what no rule allows in that direction".into(),
        });
    }
    for rule in &policy.rules {
        let from: Vec<Selectors> = rule.from.iter().map(|g| selectors(policy, *g)).collect();
        let to: Vec<Selectors> = rule.to.iter().map(|g| selectors(policy, *g)).collect();
        let (ports, icmps) = to_ports(rule, &mut out);
        let deny = rule.action == Action::Deny;
        let mut notes = Vec::new();
        let mut emitted = false;
        let build =
            |dir: &str, peers: &[Selectors], notes: &mut Vec<Unexpressible>| -> Vec<Value> {
                let mut rules = Vec::new();
                for s in peers {
                    for (k, v) in peer_fields(s, dir, rule, notes) {
                        // Ports and ICMP types go in rules of their own too:
                        // Cilium takes `icmps` only without `toPorts`.
                        let mut variants = Vec::new();
                        if let Some(p) = &ports {
                            variants.push(("toPorts", p.clone()));
                        }
                        if !icmps.is_empty() {
                            variants.push(("icmps", json!(icmps)));
                        }
                        if variants.is_empty() {
                            rules.push(json!({ k: v }));
                            continue;
                        }
                        for (what, value) in variants {
                            let mut r = serde_json::Map::new();
                            r.insert(k.clone(), v.clone());
                            r.insert(what.into(), value);
                            rules.push(Value::Object(r));
                        }
                    }
                }
                rules
            };
        let egress = build("to", &to, &mut notes);
        let ingress = build("from", &from, &mut notes);
        let fqdn = to.iter().any(|s| !s.fqdns.is_empty());
        for (side, selected, peers_rules, key) in [
            (
                "egress",
                &from,
                &egress,
                if deny { "egressDeny" } else { "egress" },
            ),
            (
                "ingress",
                &to,
                &ingress,
                if deny { "ingressDeny" } else { "ingress" },
            ),
        ] {
            if peers_rules.is_empty() {
                continue;
            }
            for (i, s) in selected.iter().enumerate() {
                for (j, l) in s.labels.iter().enumerate() {
                    let mut rules = peers_rules.clone();
                    if fqdn && side == "egress" && !deny {
                        rules.push(dns_rule());
                    }
                    let mut spec = json!({"endpointSelector": match_labels(l)});
                    spec[key] = json!(rules);
                    if let Some(d) = &rule.description {
                        spec["description"] = json!(d);
                    }
                    objects.push(json!({
                        "apiVersion": "cilium.io/v2",
                        "kind": "CiliumNetworkPolicy",
                        "metadata": metadata(
                            object_name(&["cordon", &rule.name, side, &i.to_string(), &j.to_string()]),
                            namespace,
                            policy,
                        ),
                        "spec": spec,
                    }));
                    emitted = true;
                }
            }
        }
        close_rule(
            &mut out,
            notes,
            emitted,
            rule,
            "neither side selects endpoints by labels, so there is nothing to attach it to",
        );
    }
    rule_settings(policy, &mut out);
    Export {
        objects,
        unexpressible: out,
    }
}
