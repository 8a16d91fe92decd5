//! `cordon policy fmt`: one canonical layout for policies, so reviews show
//! meaning, not whitespace. The output parses back to the same policy
//! (tested); comments are not kept.

use std::fmt::Write;

use crate::raw::{RawGroup, RawPolicy, RawRule, RawWorkload};

/// Whether `s` can be written as a plain YAML scalar and read back as the
/// same string in both block and flow context.
fn plain_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let keyword = matches!(
        s.to_ascii_lowercase().as_str(),
        "null" | "~" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    let numeric = s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || s.starts_with(".inf")
        || s.starts_with(".nan");
    (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '@'))
        && !keyword
        && !numeric
}

/// `s` as a YAML scalar: plain when safe, else double-quoted.
fn scalar(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

fn flow_list<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let items: Vec<String> = items.into_iter().map(|s| scalar(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

fn flow_map(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}: {}", scalar(k), scalar(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn workload(out: &mut String, w: &RawWorkload) {
    let mut parts = vec![format!("name: {}", scalar(&w.name.value))];
    if !w.ips.is_empty() {
        parts.push(format!(
            "ips: {}",
            flow_list(w.ips.iter().map(|i| i.value.to_string()))
        ));
    }
    if !w.labels.is_empty() {
        parts.push(format!("labels: {}", flow_map(&w.labels)));
    }
    if let Some(s) = &w.spiffe {
        parts.push(format!("spiffe: {}", scalar(&s.value)));
    }
    let _ = writeln!(out, "    - {{{}}}", parts.join(", "));
}

fn group(out: &mut String, g: &RawGroup) {
    let _ = writeln!(out, "    {}:", scalar(&g.name.value));
    if let Some(d) = &g.description {
        let _ = writeln!(out, "      description: {}", scalar(d));
    }
    if g.external {
        let _ = writeln!(out, "      external: true");
    }
    if let Some(l) = &g.labels {
        let _ = writeln!(out, "      labels: {}", flow_map(&l.value));
    }
    if !g.cidrs.is_empty() {
        let _ = writeln!(
            out,
            "      cidrs: {}",
            flow_list(g.cidrs.iter().map(|c| c.value.to_string()))
        );
    }
    if !g.fqdns.is_empty() {
        let _ = writeln!(
            out,
            "      fqdns: {}",
            flow_list(g.fqdns.iter().map(|f| f.value.to_string()))
        );
    }
    if !g.spiffe.is_empty() {
        let _ = writeln!(
            out,
            "      spiffe: {}",
            flow_list(g.spiffe.iter().map(|s| s.value.as_str()))
        );
    }
    if !g.identities.is_empty() {
        let _ = writeln!(
            out,
            "      identities: {}",
            flow_list(g.identities.iter().map(|s| s.value.to_string()))
        );
    }
    if !g.data.is_empty() {
        let _ = writeln!(out, "      data: {}", flow_list(g.data.iter()));
    }
    if !g.groups.is_empty() {
        let _ = writeln!(
            out,
            "      groups: {}",
            flow_list(g.groups.iter().map(|s| s.value.as_str()))
        );
    }
    if let Some(v) = &g.vendor {
        let _ = writeln!(out, "      vendor:");
        let _ = writeln!(out, "        name: {}", scalar(&v.name));
        if !v.data.is_empty() {
            let _ = writeln!(out, "        data: {}", flow_list(&v.data));
        }
        if let Some(c) = v.criticality {
            let _ = writeln!(out, "        criticality: {c}");
        }
        if let Some(c) = &v.contact {
            let _ = writeln!(out, "        contact: {}", scalar(c));
        }
        if let Some(c) = &v.contract {
            let _ = writeln!(out, "        contract: {}", scalar(c));
        }
    }
}

fn rule(out: &mut String, r: &RawRule) {
    let _ = writeln!(out, "    - name: {}", scalar(&r.name.value));
    if let Some(d) = &r.description {
        let _ = writeln!(out, "      description: {}", scalar(d));
    }
    let _ = writeln!(
        out,
        "      from: {}",
        flow_list(r.from.iter().map(|s| s.value.as_str()))
    );
    let _ = writeln!(
        out,
        "      to: {}",
        flow_list(r.to.iter().map(|s| s.value.as_str()))
    );
    if !r.ports.is_empty() {
        let _ = writeln!(
            out,
            "      ports: {}",
            flow_list(r.ports.iter().map(|p| p.value.to_string()))
        );
    }
    let _ = writeln!(out, "      action: {}", r.action.value);
    if let Some(l) = &r.limit {
        let _ = writeln!(
            out,
            "      limit: {{bytes_out: {}, per: {}}}",
            l.bytes_out, l.per
        );
    }
    if r.log {
        let _ = writeln!(out, "      log: true");
    }
    if let Some(m) = &r.mode {
        let _ = writeln!(out, "      mode: {}", m.value);
    }
}

/// The canonical text of a policy.
pub fn format_policy(p: &RawPolicy) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "apiVersion: {}", scalar(&p.api_version.value));
    let _ = writeln!(out, "kind: {}", scalar(&p.kind.value));
    let _ = writeln!(out, "metadata:");
    let _ = writeln!(out, "  name: {}", scalar(&p.name.value));
    if let Some(d) = &p.description {
        let _ = writeln!(out, "  description: {}", scalar(d));
    }
    let header = out.len();
    let _ = writeln!(out, "spec:");
    if let Some(m) = &p.mode {
        let _ = writeln!(out, "  mode: {}", m.value);
    }
    if let Some(d) = &p.default {
        let _ = writeln!(out, "  default: {}", d.value);
    }
    if !p.inventory_files.is_empty() {
        let _ = writeln!(
            out,
            "  inventory_files: {}",
            flow_list(p.inventory_files.iter().map(|f| f.value.as_str()))
        );
    }
    if !p.inventory.is_empty() {
        let _ = writeln!(out, "  inventory:");
        for w in &p.inventory {
            workload(&mut out, w);
        }
    }
    if !p.groups.is_empty() {
        let _ = writeln!(out, "  groups:");
        for g in &p.groups {
            group(&mut out, g);
        }
    }
    if !p.rules.is_empty() {
        let _ = writeln!(out, "  rules:");
        for r in &p.rules {
            rule(&mut out, r);
        }
    }
    if out.len() == header + "spec:\n".len() {
        // An empty spec must stay a mapping, not become null.
        out.truncate(header);
        out.push_str("spec: {}\n");
    }
    out
}
