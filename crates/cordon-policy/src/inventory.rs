//! Inventory sources: Cordon's own list format, AWS `ec2 describe-instances`
//! JSON, and Kubernetes `kubectl get pods -o json`.
//!
//! The format is recognised from the document's shape. Cloud and Kubernetes
//! exports carry many fields Cordon has no use for; those are ignored, while
//! Cordon's own format rejects unknown fields like every other Cordon file.

use cordon_yaml::{Diagnostics, Node, NodeKind};

use crate::raw::{RawWorkload, Spanned, decode_workload, ip};

/// Which inventory format a document is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InventoryFormat {
    /// A list of `{name, ips, labels, spiffe}`, or `kind: Inventory` with
    /// `workloads:`.
    Cordon,
    /// `aws ec2 describe-instances` output.
    AwsEc2,
    /// `kubectl get pods -o json` output.
    KubernetesPods,
}

/// Recognise the format of an inventory document.
pub fn detect(root: &Node) -> InventoryFormat {
    if root.get("Reservations").is_some() {
        InventoryFormat::AwsEc2
    } else if root.get("items").is_some()
        && matches!(
            root.get("kind").and_then(Node::as_str),
            Some("List" | "PodList")
        )
    {
        InventoryFormat::KubernetesPods
    } else {
        InventoryFormat::Cordon
    }
}

/// Decode the workloads of an inventory document, whatever its format.
pub fn decode(root: &Node, diags: &mut Diagnostics) -> Vec<RawWorkload> {
    match detect(root) {
        InventoryFormat::AwsEc2 => decode_aws(root, diags),
        InventoryFormat::KubernetesPods => decode_k8s(root, diags),
        InventoryFormat::Cordon => decode_cordon(root, diags),
    }
}

fn decode_cordon(root: &Node, diags: &mut Diagnostics) -> Vec<RawWorkload> {
    let list = match &root.kind {
        NodeKind::Seq(_) => Some(root),
        NodeKind::Map(_) => {
            let mut fields = root.fields(diags, "inventory");
            let workloads = fields.as_mut().and_then(|f| {
                if let Some(kind) = f.get("kind")
                    && kind.as_str() != Some("Inventory") {
                        diags.error_hint(
                            kind.pos,
                            "expected `kind: Inventory`",
                            "an inventory is a list of workloads, `kind: Inventory`, or AWS/Kubernetes JSON",
                        );
                    }
                if let Some(v) = f.get("apiVersion")
                    && v.as_str() != Some("cordon/v1") {
                        diags.error_hint(v.pos, "unsupported apiVersion", "write `apiVersion: cordon/v1`");
                    }
                f.require(diags, "workloads")
            });
            if let Some(f) = fields {
                f.finish(diags, &["apiVersion", "kind", "workloads"]);
            }
            workloads
        }
        NodeKind::Null => None,
        NodeKind::Scalar { .. } => {
            diags.error_hint(
                root.pos,
                "an inventory must be a list of workloads",
                "write `- {name: web-1, ips: [10.0.1.10], labels: {app: web}}`",
            );
            None
        }
    };
    list.and_then(|l| l.items(diags, "workloads"))
        .unwrap_or_default()
        .iter()
        .filter_map(|item| decode_workload(item, diags))
        .collect()
}

/// Scalars at `path` below `node`, where `path` steps through mappings and
/// `*` through every item of a list.
fn collect<'n>(node: &'n Node, path: &[&str], out: &mut Vec<&'n Node>) {
    let Some((first, rest)) = path.split_first() else {
        out.push(node);
        return;
    };
    if *first == "*" {
        if let NodeKind::Seq(items) = &node.kind {
            for item in items {
                collect(item, rest, out);
            }
        }
    } else if let Some(child) = node.get(first) {
        collect(child, rest, out);
    }
}

fn scalars<'n>(node: &'n Node, path: &[&str]) -> Vec<&'n Node> {
    let mut out = Vec::new();
    collect(node, path, &mut out);
    out.retain(|n| n.as_str().is_some());
    out
}

fn push_ips(workload: &mut RawWorkload, nodes: Vec<&Node>, diags: &mut Diagnostics) {
    for n in nodes {
        if let Some(addr) = ip(n, diags)
            && !workload.ips.iter().any(|i| i.value == addr.value)
        {
            workload.ips.push(addr);
        }
    }
}

/// Where `describe-instances` puts an instance's addresses.
const AWS_ADDRESS_PATHS: &[&[&str]] = &[
    &["PrivateIpAddress"],
    &["PublicIpAddress"],
    &[
        "NetworkInterfaces",
        "*",
        "PrivateIpAddresses",
        "*",
        "PrivateIpAddress",
    ],
    &[
        "NetworkInterfaces",
        "*",
        "PrivateIpAddresses",
        "*",
        "Association",
        "PublicIp",
    ],
    &[
        "NetworkInterfaces",
        "*",
        "Ipv6Addresses",
        "*",
        "Ipv6Address",
    ],
];

fn decode_aws(root: &Node, diags: &mut Diagnostics) -> Vec<RawWorkload> {
    let mut instances = Vec::new();
    collect(
        root,
        &["Reservations", "*", "Instances", "*"],
        &mut instances,
    );
    let mut out = Vec::new();
    for inst in instances {
        let id = inst.get("InstanceId").and_then(Node::as_str);
        let mut labels: Vec<(String, String)> = Vec::new();
        let mut name = None;
        if let Some(NodeKind::Seq(tags)) = inst.get("Tags").map(|t| &t.kind) {
            for tag in tags {
                let (Some(k), Some(v)) = (
                    tag.get("Key").and_then(Node::as_str),
                    tag.get("Value").and_then(Node::as_str),
                ) else {
                    continue;
                };
                if k == "Name" && !v.is_empty() {
                    name = Some(v.to_string());
                }
                labels.push((k.to_string(), v.to_string()));
            }
        }
        for (label, field) in [
            ("aws/instance-id", "InstanceId"),
            ("aws/vpc-id", "VpcId"),
            ("aws/subnet-id", "SubnetId"),
        ] {
            if let Some(v) = inst.get(field).and_then(Node::as_str) {
                labels.push((label.to_string(), v.to_string()));
            }
        }
        if let Some(az) = inst
            .get("Placement")
            .and_then(|p| p.get("AvailabilityZone"))
            .and_then(Node::as_str)
        {
            labels.push(("aws/availability-zone".to_string(), az.to_string()));
        }
        let Some(name) = name.or_else(|| id.map(str::to_string)) else {
            diags.error_hint(
                inst.pos,
                "EC2 instance without `InstanceId` or `Name` tag",
                "export with `aws ec2 describe-instances --output json`",
            );
            continue;
        };
        let mut workload = RawWorkload {
            name: Spanned::new(name, inst.pos),
            ips: Vec::new(),
            labels,
            spiffe: None,
        };
        for path in AWS_ADDRESS_PATHS {
            push_ips(&mut workload, scalars(inst, path), diags);
        }
        out.push(workload);
    }
    out
}

fn decode_k8s(root: &Node, diags: &mut Diagnostics) -> Vec<RawWorkload> {
    let mut pods = Vec::new();
    collect(root, &["items", "*"], &mut pods);
    let mut out = Vec::new();
    for pod in pods {
        let meta = pod.get("metadata");
        let Some(name) = meta.and_then(|m| m.get("name")).and_then(Node::as_str) else {
            diags.error(pod.pos, "pod without `metadata.name`");
            continue;
        };
        let namespace = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Node::as_str)
            .unwrap_or("default");
        let mut labels: Vec<(String, String)> = Vec::new();
        if let Some(NodeKind::Map(entries)) = meta.and_then(|m| m.get("labels")).map(|l| &l.kind) {
            for (k, v) in entries {
                if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                    labels.push((k.to_string(), v.to_string()));
                }
            }
        }
        labels.push(("k8s/namespace".to_string(), namespace.to_string()));
        if let Some(sa) = pod
            .get("spec")
            .and_then(|s| s.get("serviceAccountName"))
            .and_then(Node::as_str)
        {
            labels.push(("k8s/service-account".to_string(), sa.to_string()));
        }
        let mut workload = RawWorkload {
            name: Spanned::new(format!("{namespace}/{name}"), pod.pos),
            ips: Vec::new(),
            labels,
            spiffe: None,
        };
        push_ips(&mut workload, scalars(pod, &["status", "podIP"]), diags);
        push_ips(
            &mut workload,
            scalars(pod, &["status", "podIPs", "*", "ip"]),
            diags,
        );
        out.push(workload);
    }
    out
}
