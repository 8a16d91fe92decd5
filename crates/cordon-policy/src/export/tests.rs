//! Exports of the example policy against golden files, the objects' fields
//! against the published API types, and the mappings one by one.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::{cilium, k8s};
use crate::load::{LoadOptions, load_policy, parse_policy};

fn example() -> crate::Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme-prod.yaml");
    load_policy(&path, &LoadOptions::default()).unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/export")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs (UPDATE_SNAPSHOTS=1 rewrites it):\n{actual}",
        path.display()
    );
}

/// The fields each object type may have, from the published API types
/// (k8s.io/api networking/v1 types.go; cilium pkg/policy/api rule,
/// ingress, egress, l4, fqdn, cidr, entity, icmp and selector types).
fn allowed(kind: &str, path: &str) -> &'static [&'static str] {
    match (kind, path) {
        (_, "") => &["apiVersion", "kind", "metadata", "spec"],
        (_, "metadata") => &["name", "namespace", "labels"],
        (_, p)
            if p.ends_with("Selector")
                || p.ends_with("toEndpoints[]")
                || p.ends_with("fromEndpoints[]") =>
        {
            &["matchLabels", "matchExpressions"]
        }
        ("NetworkPolicy", "spec") => &["podSelector", "policyTypes", "ingress", "egress"],
        ("NetworkPolicy", "spec.ingress[]") => &["from", "ports"],
        ("NetworkPolicy", "spec.egress[]") => &["to", "ports"],
        ("NetworkPolicy", "spec.ingress[].from[]" | "spec.egress[].to[]") => {
            &["podSelector", "namespaceSelector", "ipBlock"]
        }
        ("NetworkPolicy", p) if p.ends_with("ipBlock") => &["cidr", "except"],
        ("NetworkPolicy", p) if p.ends_with("ports[]") => &["protocol", "port", "endPort"],
        ("CiliumNetworkPolicy", "spec") => &[
            "endpointSelector",
            "nodeSelector",
            "ingress",
            "ingressDeny",
            "egress",
            "egressDeny",
            "labels",
            "description",
        ],
        ("CiliumNetworkPolicy", "spec.egress[]" | "spec.egressDeny[]") => &[
            "toEndpoints",
            "toRequires",
            "toCIDR",
            "toCIDRSet",
            "toEntities",
            "toServices",
            "toFQDNs",
            "toGroups",
            "toNodes",
            "toPorts",
            "icmps",
            "authentication",
        ],
        ("CiliumNetworkPolicy", "spec.ingress[]" | "spec.ingressDeny[]") => &[
            "fromEndpoints",
            "fromRequires",
            "fromCIDR",
            "fromCIDRSet",
            "fromEntities",
            "fromGroups",
            "fromNodes",
            "toPorts",
            "icmps",
            "authentication",
        ],
        ("CiliumNetworkPolicy", p) if p.ends_with("CIDRSet[]") => {
            &["cidr", "cidrGroupRef", "except"]
        }
        ("CiliumNetworkPolicy", p) if p.ends_with("toFQDNs[]") => &["matchName", "matchPattern"],
        ("CiliumNetworkPolicy", p) if p.ends_with("toPorts[]") => &[
            "ports",
            "rules",
            "terminatingTLS",
            "originatingTLS",
            "serverNames",
            "listener",
        ],
        ("CiliumNetworkPolicy", p) if p.ends_with("toPorts[].ports[]") => {
            &["port", "endPort", "protocol"]
        }
        ("CiliumNetworkPolicy", p) if p.ends_with("toPorts[].rules") => {
            &["http", "kafka", "dns", "l7proto", "l7"]
        }
        ("CiliumNetworkPolicy", p) if p.ends_with("rules.dns[]") => &["matchName", "matchPattern"],
        (_, p) if p.ends_with("matchExpressions[]") => &["key", "operator", "values"],
        ("CiliumNetworkPolicy", p) if p.ends_with("icmps[]") => &["fields"],
        ("CiliumNetworkPolicy", p) if p.ends_with("icmps[].fields[]") => &["type", "family"],
        _ => &[],
    }
}

/// Every mapping in `v` has only fields its API type defines.
fn check_fields(kind: &str, path: &str, v: &Value, seen: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            if path.ends_with("matchLabels") || path.ends_with("metadata.labels") {
                return;
            }
            let ok = allowed(kind, path);
            for (k, child) in map {
                assert!(
                    ok.contains(&k.as_str()),
                    "{kind}: `{k}` is not a field at `{path}`"
                );
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                seen.insert(sub.clone());
                check_fields(kind, &sub, child, seen);
            }
        }
        Value::Array(items) => {
            for item in items {
                check_fields(kind, &format!("{path}[]"), item, seen);
            }
        }
        _ => {}
    }
}

#[test]
fn the_example_exports_to_network_policies() {
    let e = k8s::export(&example(), "acme");
    golden("acme-prod.k8s.yaml", &e.to_yaml());
    let mut seen = BTreeSet::new();
    for o in &e.objects {
        assert_eq!(o["apiVersion"], "networking.k8s.io/v1");
        assert_eq!(o["kind"], "NetworkPolicy");
        assert_eq!(o["metadata"]["namespace"], "acme");
        check_fields("NetworkPolicy", "", o, &mut seen);
    }
    // Default deny first; the web tier takes HTTPS from the internet.
    assert_eq!(e.objects[0]["spec"]["podSelector"], serde_json::json!({}));
    let web = e
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "cordon-internet-to-web-ingress-0-0")
        .unwrap();
    assert_eq!(web["spec"]["ingress"][0]["ports"][0]["port"], 443);
    // Denies and hostnames are listed, not dropped silently.
    let why: Vec<String> = e
        .unexpressible
        .iter()
        .map(|u| format!("{:?} {}", u.rule, u.what))
        .collect();
    assert!(
        why.iter()
            .any(|w| w.contains("no-admin-from-app-tier") && w.contains("deny rule")),
        "{why:#?}"
    );
    assert!(
        why.iter()
            .any(|w| w.contains("notifier-to-mailer") && w.contains("*.mailer.example")),
        "{why:#?}"
    );
    assert!(
        why.iter().any(|w| w.contains("limit 50MiB per 1h")),
        "{why:#?}"
    );
}

#[test]
fn the_example_exports_to_cilium_network_policies() {
    let e = cilium::export(&example(), "acme");
    golden("acme-prod.cilium.yaml", &e.to_yaml());
    let mut seen = BTreeSet::new();
    for o in &e.objects {
        assert_eq!(o["apiVersion"], "cilium.io/v2");
        assert_eq!(o["kind"], "CiliumNetworkPolicy");
        check_fields("CiliumNetworkPolicy", "", o, &mut seen);
    }
    for field in [
        "spec.egressDeny",
        "spec.egress",
        "spec.ingress",
        "spec.egress[].toFQDNs",
        "spec.egress[].toCIDRSet",
        "spec.ingress[].fromEntities",
    ] {
        assert!(
            seen.iter()
                .any(|s| s.starts_with(field) || s.contains(field.trim_start_matches("spec."))),
            "{field} never used: {seen:#?}"
        );
    }
    // FQDN egress comes with the DNS rule that lets Cilium see lookups.
    let mailer = e
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "cordon-notifier-to-mailer-egress-0-0")
        .unwrap();
    let rules = mailer["spec"]["egress"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["toFQDNs"][0]["matchPattern"] == "*.mailer.example")
    );
    assert!(
        rules
            .iter()
            .any(|r| r["toPorts"][0]["rules"]["dns"][0]["matchPattern"] == "*")
    );
    // The lateral-movement guard is a deny.
    let guard = e
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "cordon-no-admin-from-app-tier-egress-0-0")
        .unwrap();
    assert_eq!(guard["spec"]["egressDeny"][0]["toEntities"][0], "all");
    assert!(
        e.unexpressible
            .iter()
            .any(|u| u.what.contains("wildcard depth"))
    );
}

#[test]
fn builtins_ports_and_protocols_map_as_documented() {
    let text = r#"apiVersion: cordon/v1
kind: Policy
metadata: {name: t}
spec:
  default: allow
  groups:
    a: {labels: {app: a}}
    b: {labels: {app: b}, cidrs: [192.0.2.0/24]}
    ids: {spiffe: ["spiffe://x/ns/y/sa/z"]}
  rules:
    - {name: r1, from: [a], to: [private], ports: [tcp/8000-8100, udp/53, icmp], action: allow}
    - {name: r2, from: [ids], to: [b], ports: [sctp/9], action: allow}
    - {name: r3, from: [a], to: [internet], action: deny}
"#;
    let policy = parse_policy("t.yaml", text, &LoadOptions::default()).unwrap();
    let k = k8s::export(&policy, "ns");
    assert!(k.unexpressible.iter().any(|u| u.what == "default: allow"));
    assert!(k.unexpressible.iter().any(|u| u.what == "protocol icmp"));
    assert!(k.unexpressible.iter().any(|u| u.what.contains("SPIFFE")));
    let r1 = k
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "cordon-r1-egress-0-0")
        .unwrap();
    let ports = &r1["spec"]["egress"][0]["ports"];
    assert_eq!(
        ports[0],
        serde_json::json!({"protocol": "TCP", "port": 8000, "endPort": 8100})
    );
    assert_eq!(ports[1], serde_json::json!({"protocol": "UDP", "port": 53}));
    assert_eq!(
        r1["spec"]["egress"][0]["to"].as_array().unwrap().len(),
        5,
        "the private ranges"
    );
    let c = cilium::export(&policy, "ns");
    let r1 = c
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "cordon-r1-egress-0-0")
        .unwrap();
    let rule = &r1["spec"]["egress"][0];
    assert_eq!(
        rule["toPorts"][0]["ports"][0],
        serde_json::json!({"port": "8000", "endPort": 8100, "protocol": "TCP"})
    );
    // ICMP types are a rule of their own: Cilium takes `icmps` only
    // without `toPorts`.
    assert!(rule.get("icmps").is_none(), "{rule}");
    let icmp = &r1["spec"]["egress"][1];
    assert_eq!(icmp["icmps"][0]["fields"][0]["type"], 8);
    assert!(icmp.get("toPorts").is_none(), "{icmp}");
    let r3 = c
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "cordon-r3-egress-0-0")
        .unwrap();
    assert_eq!(r3["spec"]["egressDeny"][0]["toEntities"][0], "world");
    // r2's source is identities only: its ingress on b still exports.
    assert!(
        c.objects
            .iter()
            .all(|o| o["metadata"]["name"] != "cordon-r2-egress-0-0")
    );
    let yaml = c.to_yaml();
    assert!(
        yaml.starts_with("---\napiVersion: cilium.io/v2\n"),
        "{yaml}"
    );
    // The YAML reads back as the same objects.
    let docs: Vec<&str> = yaml.split("---\n").filter(|d| !d.is_empty()).collect();
    assert_eq!(docs.len(), c.objects.len());
    for (d, o) in docs.iter().zip(&c.objects) {
        let parsed = cordon_yaml::parse("x.yaml", d).unwrap();
        assert_eq!(yaml_to_json(&parsed.root), *o);
    }
}

/// What the Cilium agent refuses or reads differently, on the example and on
/// a policy mixing every kind of peer: no rule combines kinds of peers, no
/// deny rule names hostnames (listed as not expressible instead), and peers
/// by labels match in every namespace, as in the Kubernetes export.
#[test]
fn cilium_rules_are_what_the_agent_accepts() {
    let text = r#"
apiVersion: cordon/v1
kind: Policy
metadata: {name: t}
spec:
  groups:
    app: {labels: {app: app}}
    mixed: {labels: {app: db}, cidrs: [10.9.0.0/16], fqdns: [db.example.com]}
    web: {fqdns: ["*.example.org"], cidrs: [203.0.113.0/24]}
  rules:
    - {name: a1, from: [app], to: [mixed, web], ports: [tcp/443, icmp], action: allow}
    - {name: d1, from: [app], to: [web], ports: [tcp/80], action: deny}
"#;
    let policy = parse_policy("t.yaml", text, &LoadOptions::default()).unwrap();
    for export in [
        cilium::export(&policy, "ns"),
        cilium::export(&example(), "ns"),
    ] {
        for o in &export.objects {
            for key in ["egress", "ingress", "egressDeny", "ingressDeny"] {
                for rule in o["spec"][key].as_array().into_iter().flatten() {
                    let peers: Vec<&String> = rule
                        .as_object()
                        .unwrap()
                        .keys()
                        .filter(|k| *k != "toPorts" && *k != "icmps")
                        .collect();
                    assert!(peers.len() <= 1, "{key} combines {peers:?}: {rule}");
                    assert!(
                        !(rule.get("icmps").is_some() && rule.get("toPorts").is_some()),
                        "{rule}"
                    );
                    assert!(
                        !(key == "egressDeny" && rule.get("toFQDNs").is_some()),
                        "deny rules have no toFQDNs: {rule}"
                    );
                    for sel in rule["toEndpoints"]
                        .as_array()
                        .into_iter()
                        .chain(rule["fromEndpoints"].as_array())
                        .flatten()
                    {
                        let label = "k8s:io.kubernetes.pod.namespace";
                        if sel["matchLabels"].get(label).is_some() {
                            continue; // names its namespace (kube-dns)
                        }
                        let ns = &sel["matchExpressions"][0];
                        assert_eq!(ns["key"], label, "{sel}");
                        assert_eq!(ns["operator"], "Exists", "{sel}");
                    }
                }
            }
        }
    }
    let c = cilium::export(&policy, "ns");
    assert!(
        c.unexpressible
            .iter()
            .any(|u| u.rule.as_deref() == Some("d1") && u.what == "deny to hostnames"),
        "{:?}",
        c.unexpressible
    );
    // The allow towards `mixed` and `web` became one rule per kind of peer.
    let a1 = c
        .objects
        .iter()
        .find(|o| o["metadata"]["name"] == "cordon-a1-egress-0-0")
        .unwrap();
    let kinds: BTreeSet<String> = a1["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_object().unwrap().keys().cloned())
        .collect();
    for k in ["toEndpoints", "toCIDRSet", "toFQDNs", "toPorts", "icmps"] {
        assert!(kinds.contains(k), "{k} missing: {a1}");
    }
}

fn yaml_to_json(n: &cordon_yaml::Node) -> Value {
    use cordon_yaml::NodeKind;
    match &n.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Scalar { value, quoted } => {
            if !quoted {
                if let Ok(i) = value.parse::<i64>() {
                    return Value::from(i);
                }
                if value == "true" || value == "false" {
                    return Value::Bool(value == "true");
                }
            }
            Value::String(value.clone())
        }
        NodeKind::Seq(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        NodeKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or("").to_string(), yaml_to_json(v)))
                .collect(),
        ),
    }
}
