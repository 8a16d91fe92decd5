//! Values that appear in several places of a policy or inventory: label
//! maps, addresses, CIDRs, SPIFFE IDs, workloads.

use std::net::IpAddr;

use cordon_yaml::{Diagnostics, Node, Pos};
use ipnet::IpNet;

use super::{RawWorkload, Spanned, WORKLOAD_FIELDS};

/// A list of strings (or a single string) with positions.
pub(crate) fn strings(node: &Node, diags: &mut Diagnostics, what: &str) -> Vec<Spanned<String>> {
    node.items(diags, what)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| {
            n.text(diags, what)
                .map(|t| Spanned::new(t.to_string(), n.pos))
        })
        .collect()
}

/// A mapping of label keys to values.
pub(crate) fn labels(node: &Node, diags: &mut Diagnostics) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in node.entries(diags, "labels").unwrap_or_default() {
        let (Some(key), Some(value)) = (k.text(diags, "label key"), v.text(diags, "label value"))
        else {
            continue;
        };
        if key.is_empty() || key.len() > 317 || key.chars().any(char::is_whitespace) {
            diags.error_hint(
                k.pos,
                format!("invalid label key `{key}`"),
                "label keys are non-empty, without spaces, at most 317 characters",
            );
            continue;
        }
        out.push((key.to_string(), value.to_string()));
    }
    out
}

pub(crate) fn ip(node: &Node, diags: &mut Diagnostics) -> Option<Spanned<IpAddr>> {
    let text = node.text(diags, "ip")?;
    match text.parse::<IpAddr>() {
        Ok(ip) => Some(Spanned::new(cordon_core::canonical_ip(ip), node.pos)),
        Err(_) => {
            diags.error_hint(
                node.pos,
                format!("invalid IP address `{text}`"),
                "write a plain address such as `10.0.1.10` or `fd00::10`",
            );
            None
        }
    }
}

pub(crate) fn decode_workload(node: &Node, diags: &mut Diagnostics) -> Option<RawWorkload> {
    let mut fields = node.fields(diags, "workload")?;
    let name = fields.require(diags, "name").and_then(|n| {
        n.text(diags, "workload name")
            .map(|t| Spanned::new(t.to_string(), n.pos))
    });
    let ips = match fields.get("ips") {
        Some(list) => list
            .items(diags, "ips")
            .unwrap_or_default()
            .iter()
            .filter_map(|n| ip(n, diags))
            .collect(),
        None => Vec::new(),
    };
    let labels = fields
        .get("labels")
        .map(|n| labels(n, diags))
        .unwrap_or_default();
    let spiffe = fields.get("spiffe").and_then(|n| {
        let text = n.text(diags, "spiffe")?;
        check_spiffe(text, n.pos, diags).then(|| Spanned::new(text.to_string(), n.pos))
    });
    fields.finish(diags, WORKLOAD_FIELDS);
    Some(RawWorkload {
        name: name?,
        ips,
        labels,
        spiffe,
    })
}

/// Check a SPIFFE ID's form: `spiffe://trust-domain/path`.
pub(crate) fn check_spiffe(text: &str, pos: Pos, diags: &mut Diagnostics) -> bool {
    let ok = text.strip_prefix("spiffe://").is_some_and(|rest| {
        let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
        !domain.is_empty()
            && domain.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')
            })
            && path
                .split('/')
                .all(|seg| !seg.is_empty() || path.is_empty())
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
    });
    if !ok {
        diags.error_hint(
            pos,
            format!("invalid SPIFFE ID `{text}`"),
            "write `spiffe://trust-domain/path` with a lowercase trust domain",
        );
    }
    ok
}

/// Parse a CIDR (or a bare address as a single-host range), refusing host
/// bits set beyond the prefix, which usually means a typo.
pub fn parse_cidr(text: &str, pos: Pos, diags: &mut Diagnostics) -> Option<IpNet> {
    let net = if text.contains('/') {
        text.parse::<IpNet>().ok()
    } else {
        text.parse::<IpAddr>().ok().map(IpNet::from)
    };
    let Some(net) = net else {
        let hint = match text.split_once('/') {
            Some((_, len)) if len.parse::<u8>().is_ok_and(|l| l > 32) && !text.contains(':') => {
                "an IPv4 prefix length is at most 32".to_string()
            }
            _ => "write an address and prefix length such as `10.0.2.0/24` or `fd00:2::/64`"
                .to_string(),
        };
        diags.error_hint(pos, format!("invalid CIDR `{text}`"), hint);
        return None;
    };
    if net.trunc() != net {
        diags.error_hint(
            pos,
            format!("CIDR `{text}` has host bits set"),
            format!("did you mean `{}`?", net.trunc()),
        );
        return None;
    }
    Some(net)
}
