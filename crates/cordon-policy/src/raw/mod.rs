//! The policy as users write it, decoded field by field with locations.
//!
//! This is the first phase of STYLE's two-phase configuration. It is decoded
//! by hand from the located YAML tree rather than through serde so that every
//! value keeps its position and every problem in the file is reported at once;
//! unknown fields are errors, exactly as `deny_unknown_fields` would make
//! them. Values that can be checked on their own (CIDRs, ports, patterns,
//! sizes) are parsed here; names are resolved in [`crate::resolve`].

use std::net::IpAddr;

use cordon_yaml::{Diagnostics, Node, Pos};
use ipnet::IpNet;

use crate::ports::PortRange;
use crate::terms::{Action, Criticality, Limit, Mode, Vendor};
use cordon_core::hostname::FqdnPattern;
use cordon_core::units::{ByteSize, Window};

mod values;

pub use values::parse_cidr;
pub(crate) use values::{check_spiffe, decode_workload, ip, labels, strings};

/// A value and where it was written. Equality ignores the position, so a
/// policy compares equal to itself reformatted.
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it starts in the source.
    pub pos: Pos,
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T> Spanned<T> {
    /// A value at `pos`.
    pub fn new(value: T, pos: Pos) -> Self {
        Spanned { value, pos }
    }
}

/// The whole policy document as written.
#[derive(Clone, Debug, PartialEq)]
pub struct RawPolicy {
    /// `apiVersion`, always `cordon/v1` for now.
    pub api_version: Spanned<String>,
    /// `kind`, always `Policy`.
    pub kind: Spanned<String>,
    /// `metadata.name`.
    pub name: Spanned<String>,
    /// `metadata.description`.
    pub description: Option<String>,
    /// `spec.mode`: enforce (default) or audit.
    pub mode: Option<Spanned<Mode>>,
    /// `spec.default`: deny (default) or allow.
    pub default: Option<Spanned<Action>>,
    /// `spec.inventory`: workloads written inline.
    pub inventory: Vec<RawWorkload>,
    /// `spec.inventory_files`: inventory files, relative to the policy file.
    pub inventory_files: Vec<Spanned<String>>,
    /// `spec.groups`, in file order.
    pub groups: Vec<RawGroup>,
    /// `spec.rules`, in file order (order has no effect on verdicts).
    pub rules: Vec<RawRule>,
}

/// One workload as written in an inventory.
#[derive(Clone, Debug, PartialEq)]
pub struct RawWorkload {
    /// Unique name.
    pub name: Spanned<String>,
    /// Its addresses.
    pub ips: Vec<Spanned<IpAddr>>,
    /// Its labels, in file order.
    pub labels: Vec<(String, String)>,
    /// Its SPIFFE ID, when it presents one over mTLS.
    pub spiffe: Option<Spanned<String>>,
}

/// One group as written.
#[derive(Clone, Debug, PartialEq)]
pub struct RawGroup {
    /// Unique name (the mapping key).
    pub name: Spanned<String>,
    /// Free text.
    pub description: Option<String>,
    /// Workloads carrying all these labels.
    pub labels: Option<Spanned<Vec<(String, String)>>>,
    /// Address ranges.
    pub cidrs: Vec<Spanned<IpNet>>,
    /// Hostname patterns.
    pub fqdns: Vec<Spanned<FqdnPattern>>,
    /// SPIFFE IDs.
    pub spiffe: Vec<Spanned<String>>,
    /// Cloud identities (accounts, roles, service accounts, app ids).
    pub identities: Vec<Spanned<crate::identity::CloudIdentity>>,
    /// Categories of data the group's endpoints hold (`email`, `name`...).
    pub data: Vec<String>,
    /// Other groups whose members are members of this one.
    pub groups: Vec<Spanned<String>>,
    /// Whether the group is a third party outside the organisation.
    pub external: bool,
    /// Third-party metadata.
    pub vendor: Option<Vendor>,
}

/// One rule as written.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRule {
    /// Unique name.
    pub name: Spanned<String>,
    /// Free text.
    pub description: Option<String>,
    /// Source groups.
    pub from: Vec<Spanned<String>>,
    /// Destination groups.
    pub to: Vec<Spanned<String>>,
    /// Protocols and ports (empty: any).
    pub ports: Vec<Spanned<PortRange>>,
    /// allow or deny.
    pub action: Spanned<Action>,
    /// Egress limit for allowed traffic.
    pub limit: Option<Limit>,
    /// Whether matches are logged.
    pub log: bool,
    /// Mode for this rule, overriding the policy's.
    pub mode: Option<Spanned<Mode>>,
}

const POLICY_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
const METADATA_FIELDS: &[&str] = &["name", "description"];
const SPEC_FIELDS: &[&str] = &[
    "mode",
    "default",
    "inventory",
    "inventory_files",
    "groups",
    "rules",
];
pub(crate) const WORKLOAD_FIELDS: &[&str] = &["name", "ips", "labels", "spiffe"];
const GROUP_FIELDS: &[&str] = &[
    "description",
    "labels",
    "cidrs",
    "fqdns",
    "spiffe",
    "identities",
    "data",
    "groups",
    "external",
    "vendor",
];
const VENDOR_FIELDS: &[&str] = &["name", "data", "criticality", "contact", "contract"];
const RULE_FIELDS: &[&str] = &[
    "name",
    "description",
    "from",
    "to",
    "ports",
    "action",
    "limit",
    "log",
    "mode",
];
const LIMIT_FIELDS: &[&str] = &["bytes_out", "per"];

/// Decode a policy document, recording every problem in `diags`. The result
/// is as complete as the document allows, even when there are errors.
pub fn decode_policy(root: &Node, diags: &mut Diagnostics) -> RawPolicy {
    let unknown = |pos| Spanned::new(String::new(), pos);
    let mut policy = RawPolicy {
        api_version: unknown(root.pos),
        kind: unknown(root.pos),
        name: unknown(root.pos),
        description: None,
        mode: None,
        default: None,
        inventory: Vec::new(),
        inventory_files: Vec::new(),
        groups: Vec::new(),
        rules: Vec::new(),
    };
    let Some(mut top) = root.fields(diags, "policy") else {
        return policy;
    };
    if let Some(v) = top.require(diags, "apiVersion")
        && let Some(text) = v.text(diags, "apiVersion")
    {
        if text != "cordon/v1" {
            diags.error_hint(
                v.pos,
                format!("unsupported apiVersion `{text}`"),
                "write `apiVersion: cordon/v1`",
            );
        }
        policy.api_version = Spanned::new(text.to_string(), v.pos);
    }
    if let Some(v) = top.require(diags, "kind")
        && let Some(text) = v.text(diags, "kind")
    {
        if text != "Policy" {
            diags.error_hint(
                v.pos,
                format!("expected `kind: Policy`, found `{text}`"),
                "inventories are loaded with --inventory or spec.inventory_files",
            );
        }
        policy.kind = Spanned::new(text.to_string(), v.pos);
    }
    if let Some(meta) = top.require(diags, "metadata")
        && let Some(mut fields) = meta.fields(diags, "metadata")
    {
        if let Some(name) = fields.require(diags, "name")
            && let Some(text) = name.text(diags, "metadata.name")
        {
            policy.name = Spanned::new(text.to_string(), name.pos);
        }
        policy.description = fields
            .get("description")
            .and_then(|d| d.text(diags, "description"))
            .map(str::to_string);
        fields.finish(diags, METADATA_FIELDS);
    }
    if let Some(spec) = top.require(diags, "spec") {
        decode_spec(spec, diags, &mut policy);
    }
    top.finish(diags, POLICY_FIELDS);
    policy
}

fn decode_spec(spec: &Node, diags: &mut Diagnostics, policy: &mut RawPolicy) {
    let Some(mut fields) = spec.fields(diags, "spec") else {
        return;
    };
    policy.mode = fields.get("mode").and_then(|n| decode_mode(n, diags));
    policy.default = fields
        .get("default")
        .and_then(|n| decode_action(n, diags, "default"));
    if let Some(list) = fields.get("inventory") {
        for item in list.items(diags, "inventory").unwrap_or_default() {
            if let Some(w) = decode_workload(item, diags) {
                policy.inventory.push(w);
            }
        }
    }
    if let Some(list) = fields.get("inventory_files") {
        policy.inventory_files = strings(list, diags, "inventory_files");
    }
    if let Some(groups) = fields.get("groups") {
        for (key, value) in groups.entries(diags, "groups").unwrap_or_default() {
            let Some(name) = key.text(diags, "group name") else {
                continue;
            };
            policy.groups.push(decode_group(
                Spanned::new(name.to_string(), key.pos),
                value,
                diags,
            ));
        }
    }
    if let Some(rules) = fields.get("rules") {
        for item in rules.items(diags, "rules").unwrap_or_default() {
            if let Some(rule) = decode_rule(item, diags) {
                policy.rules.push(rule);
            }
        }
    }
    fields.finish(diags, SPEC_FIELDS);
}

fn decode_mode(node: &Node, diags: &mut Diagnostics) -> Option<Spanned<Mode>> {
    let text = node.text(diags, "mode")?;
    match text {
        "enforce" => Some(Spanned::new(Mode::Enforce, node.pos)),
        "audit" => Some(Spanned::new(Mode::Audit, node.pos)),
        other => {
            diags.error_hint(
                node.pos,
                format!("invalid mode `{other}`"),
                "mode is `enforce` or `audit`",
            );
            None
        }
    }
}

fn decode_action(node: &Node, diags: &mut Diagnostics, what: &str) -> Option<Spanned<Action>> {
    let text = node.text(diags, what)?;
    match text {
        "allow" => Some(Spanned::new(Action::Allow, node.pos)),
        "deny" => Some(Spanned::new(Action::Deny, node.pos)),
        other => {
            diags.error_hint(
                node.pos,
                format!("invalid {what} `{other}`"),
                format!("{what} is `allow` or `deny`"),
            );
            None
        }
    }
}

fn decode_group(name: Spanned<String>, node: &Node, diags: &mut Diagnostics) -> RawGroup {
    let mut group = RawGroup {
        name,
        description: None,
        labels: None,
        cidrs: Vec::new(),
        fqdns: Vec::new(),
        spiffe: Vec::new(),
        identities: Vec::new(),
        data: Vec::new(),
        groups: Vec::new(),
        external: false,
        vendor: None,
    };
    let what = format!("group {}", group.name.value);
    let Some(mut fields) = node.fields(diags, &what) else {
        return group;
    };
    let selectors = ["labels", "cidrs", "fqdns", "spiffe", "identities", "groups"];
    if !selectors
        .iter()
        .any(|k| node.get(k).is_some_and(|v| !v.is_null()))
    {
        diags.error_hint(
            group.name.pos,
            format!(
                "group `{}` has no selector and matches nothing",
                group.name.value
            ),
            "give it labels, cidrs, fqdns, spiffe, identities or groups",
        );
    }
    group.description = fields
        .get("description")
        .and_then(|d| d.text(diags, "description"))
        .map(str::to_string);
    if let Some(n) = fields.get("labels") {
        let l = labels(n, diags);
        if l.is_empty() {
            diags.error_hint(
                n.pos,
                "empty `labels` selector",
                "list at least one label; use group `any` to mean every workload",
            );
        }
        group.labels = Some(Spanned::new(l, n.pos));
    }
    if let Some(list) = fields.get("cidrs") {
        for item in list.items(diags, "cidrs").unwrap_or_default() {
            if let Some(text) = item.text(diags, "cidr")
                && let Some(net) = parse_cidr(text, item.pos, diags)
            {
                group.cidrs.push(Spanned::new(net, item.pos));
            }
        }
    }
    if let Some(list) = fields.get("fqdns") {
        for item in list.items(diags, "fqdns").unwrap_or_default() {
            if let Some(text) = item.text(diags, "fqdn") {
                match FqdnPattern::parse(text) {
                    Ok(p) => group.fqdns.push(Spanned::new(p, item.pos)),
                    Err(e) => diags.error_hint(item.pos, e.message, e.hint),
                }
            }
        }
    }
    if let Some(list) = fields.get("spiffe") {
        group.spiffe = strings(list, diags, "spiffe")
            .into_iter()
            .filter(|s| check_spiffe(&s.value, s.pos, diags))
            .collect();
    }
    if let Some(list) = fields.get("identities") {
        for item in strings(list, diags, "identities") {
            match crate::identity::CloudIdentity::parse(&item.value) {
                Ok(id) => group.identities.push(Spanned::new(id, item.pos)),
                Err(e) => diags.error_hint(item.pos, e.message, e.hint),
            }
        }
    }
    if let Some(list) = fields.get("data") {
        group.data = strings(list, diags, "data")
            .into_iter()
            .map(|s| s.value)
            .collect();
    }
    if let Some(list) = fields.get("groups") {
        group.groups = strings(list, diags, "groups");
    }
    if let Some(n) = fields.get("external") {
        group.external = n.boolean(diags, "external").unwrap_or(false);
    }
    if let Some(n) = fields.get("vendor") {
        group.vendor = decode_vendor(n, diags);
    }
    fields.finish(diags, GROUP_FIELDS);
    group
}

fn decode_vendor(node: &Node, diags: &mut Diagnostics) -> Option<Vendor> {
    let mut fields = node.fields(diags, "vendor")?;
    let name = fields
        .require(diags, "name")
        .and_then(|n| n.text(diags, "vendor name"))
        .map(str::to_string);
    let data = fields
        .get("data")
        .map(|n| {
            strings(n, diags, "data")
                .into_iter()
                .map(|s| s.value)
                .collect()
        })
        .unwrap_or_default();
    let criticality = fields.get("criticality").and_then(|n| {
        let text = n.text(diags, "criticality")?;
        let c = Criticality::from_name(text);
        if c.is_none() {
            diags.error_hint(
                n.pos,
                format!("invalid criticality `{text}`"),
                "criticality is low, medium, high or critical",
            );
        }
        c
    });
    let contact = fields
        .get("contact")
        .and_then(|n| n.text(diags, "contact"))
        .map(str::to_string);
    let contract = fields
        .get("contract")
        .and_then(|n| n.text(diags, "contract"))
        .map(str::to_string);
    fields.finish(diags, VENDOR_FIELDS);
    Some(Vendor {
        name: name?,
        data,
        criticality,
        contact,
        contract,
    })
}

fn decode_rule(node: &Node, diags: &mut Diagnostics) -> Option<RawRule> {
    let mut fields = node.fields(diags, "rule")?;
    let name = fields.require(diags, "name").and_then(|n| {
        n.text(diags, "rule name")
            .map(|t| Spanned::new(t.to_string(), n.pos))
    });
    let description = fields
        .get("description")
        .and_then(|d| d.text(diags, "description"))
        .map(str::to_string);
    let from = fields
        .require(diags, "from")
        .map(|n| strings(n, diags, "from"));
    let to = fields.require(diags, "to").map(|n| strings(n, diags, "to"));
    let mut ports = Vec::new();
    if let Some(list) = fields.get("ports") {
        for item in list.items(diags, "ports").unwrap_or_default() {
            if let Some(text) = item.text(diags, "port") {
                match PortRange::parse(text) {
                    Ok(p) => ports.push(Spanned::new(p, item.pos)),
                    Err(e) => diags.error_hint(item.pos, e.message, e.hint),
                }
            }
        }
    }
    let action = fields
        .require(diags, "action")
        .and_then(|n| decode_action(n, diags, "action"));
    let limit = fields.get("limit").and_then(|n| decode_limit(n, diags));
    let log = fields
        .get("log")
        .and_then(|n| n.boolean(diags, "log"))
        .unwrap_or(false);
    let mode = fields.get("mode").and_then(|n| decode_mode(n, diags));
    fields.finish(diags, RULE_FIELDS);
    Some(RawRule {
        name: name?,
        description,
        from: from?,
        to: to?,
        ports,
        action: action?,
        limit,
        log,
        mode,
    })
}

fn decode_limit(node: &Node, diags: &mut Diagnostics) -> Option<Limit> {
    let mut fields = node.fields(diags, "limit")?;
    let bytes = fields.require(diags, "bytes_out").and_then(|n| {
        let text = n.text(diags, "bytes_out")?;
        match ByteSize::parse(text) {
            Ok(b) if b.0 > 0 => Some(b),
            Ok(_) => {
                diags.error_hint(
                    n.pos,
                    "`bytes_out` is zero",
                    "to block traffic write a deny rule",
                );
                None
            }
            Err(e) => {
                diags.error_hint(
                    n.pos,
                    e.to_string(),
                    "write a size such as `50MiB`, `1GB` or `1048576`",
                );
                None
            }
        }
    });
    let per = fields.require(diags, "per").and_then(|n| {
        let text = n.text(diags, "per")?;
        match Window::parse(text) {
            Ok(w) if !w.0.is_zero() => Some(w),
            Ok(_) => {
                diags.error(n.pos, "`per` is zero");
                None
            }
            Err(e) => {
                diags.error_hint(
                    n.pos,
                    e.to_string(),
                    "write a window such as `30s`, `5m`, `1h` or `1d`",
                );
                None
            }
        }
    });
    fields.finish(diags, LIMIT_FIELDS);
    Some(Limit {
        bytes_out: bytes?,
        per: per?,
    })
}
