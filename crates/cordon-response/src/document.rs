//! The `kind: Responses` document: every response with its audit trail,
//! the settings that bound them (the longest TTL, the never-block list)
//! and a generation number that grows with every change. Enforcement
//! points read it; `cordon respond` and the server write it.
//!
//! Read as YAML (JSON is YAML too), with every problem located
//! (`responses.yaml:12:9: ...`); written as YAML, or JSON when the file
//! name ends in `.json`.

use std::time::Duration;

use cordon_core::hostname::FqdnPattern;
use cordon_core::units::{ByteSize, Window};
use cordon_yaml::{Diagnostics, Node};
use serde_json::{Map, Value, json};

use crate::model::{
    Action, Destination, Event, Peer, Response, ResponseId, Status, Subject, parse_net, show_net,
};

/// The longest TTL when the document does not set one.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Largest responses document read, bytes.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

/// The whole document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Responses {
    /// Grows by one with every change written.
    pub generation: u64,
    /// The longest TTL a response may have.
    pub max_ttl: Window,
    /// What no response may ever cut: addresses, hostnames, groups and
    /// workloads of the policy.
    pub never_block: Vec<Peer>,
    /// Every response, oldest first.
    pub responses: Vec<Response>,
}

impl Default for Responses {
    fn default() -> Self {
        Responses {
            generation: 0,
            max_ttl: Window(DEFAULT_MAX_TTL),
            never_block: Vec::new(),
            responses: Vec::new(),
        }
    }
}

/// Why a responses document was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DocumentError(pub String);

impl Responses {
    /// The response with id `id`.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Response> {
        self.responses.iter().find(|r| r.id.0 == id)
    }

    /// The responses in force at `now_ms`.
    pub fn in_force(&self, now_ms: i64) -> impl Iterator<Item = &Response> {
        self.responses.iter().filter(move |r| r.in_force(now_ms))
    }

    /// When the set in force next changes on its own (the earliest expiry
    /// of a response in force), milliseconds since the epoch.
    #[must_use]
    pub fn next_expiry(&self, now_ms: i64) -> Option<i64> {
        self.in_force(now_ms).filter_map(|r| r.expires).min()
    }

    /// Parse `text`, read from `file`.
    ///
    /// # Errors
    /// Every problem, located, in one message.
    pub fn parse(file: &str, text: &str) -> Result<Responses, DocumentError> {
        if text.len() > MAX_BYTES {
            return Err(DocumentError(format!(
                "{file}: {} bytes is more than the {MAX_BYTES} a responses document may have",
                text.len()
            )));
        }
        let doc = cordon_yaml::parse(file, text).map_err(|d| DocumentError(d.to_string()))?;
        let mut diags = Diagnostics::new(file);
        let out = decode(&doc.root, &mut diags);
        match out {
            Some(r) if !diags.has_errors() => Ok(r),
            _ => Err(DocumentError(diags.render())),
        }
    }

    /// The document as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "apiVersion": "cordon/v1",
            "kind": "Responses",
            "metadata": {"generation": self.generation},
            "spec": {
                "maxTtl": self.max_ttl.to_string(),
                "neverBlock": self.never_block.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "responses": self.responses.iter().map(response_json).collect::<Vec<_>>(),
            }
        })
    }

    /// The document as text: JSON for a `.json` file, YAML otherwise.
    #[must_use]
    pub fn render(&self, json_file: bool) -> String {
        let v = self.to_json();
        if json_file {
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            s
        } else {
            let mut s =
                String::from("# Cordon responses: written by `cordon respond`; edit with care\n");
            yaml(&v, 0, &mut s);
            s
        }
    }
}

/// One response as JSON (also what `respond show --json` prints).
#[must_use]
pub fn response_json(r: &Response) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id.0));
    m.insert("action".into(), json!(r.action.name()));
    match &r.action {
        Action::Quarantine { subject, allow } => {
            let target = match subject {
                Subject::Workload(w) => json!({"workload": w}),
                Subject::Address(n) => json!({"ip": show_net(n)}),
            };
            m.insert("target".into(), target);
            if !allow.is_empty() {
                m.insert(
                    "allow".into(),
                    json!(allow.iter().map(ToString::to_string).collect::<Vec<_>>()),
                );
            }
        }
        Action::Block { to, from } => {
            let value = match to {
                Destination::Fqdn(p) => p.to_string(),
                Destination::Net(n) => show_net(n),
                Destination::Group(g) | Destination::Vendor(g) => g.clone(),
            };
            let mut t = Map::new();
            t.insert(to.key().into(), json!(value));
            m.insert("to".into(), Value::Object(t));
            if let Some(f) = from {
                m.insert("from".into(), json!(f));
            }
        }
        Action::Throttle { vendor, bytes, per } => {
            m.insert("vendor".into(), json!(vendor));
            m.insert("limit".into(), json!(format!("{bytes}/{per}")));
        }
    }
    m.insert("reason".into(), json!(r.reason));
    if let Some(f) = &r.finding {
        m.insert("finding".into(), json!(f));
    }
    if let Some(i) = &r.incident {
        m.insert("incident".into(), json!(i));
    }
    m.insert("createdBy".into(), json!(r.created_by));
    m.insert("created".into(), json!(time(r.created)));
    m.insert("ttl".into(), json!(r.ttl.to_string()));
    if let Some(e) = r.expires {
        m.insert("expires".into(), json!(time(e)));
    }
    m.insert("status".into(), json!(r.status.as_str()));
    m.insert(
        "history".into(),
        serde_json::to_value(&r.history).unwrap_or(Value::Null),
    );
    Value::Object(m)
}

/// [`response_json`] with the status as of `now_ms` (an active response
/// past its expiry shows as expired before anyone writes that down).
#[must_use]
pub fn response_json_at(r: &Response, now_ms: i64) -> Value {
    let mut j = response_json(r);
    j["status"] = json!(r.status_at(now_ms).as_str());
    j
}

fn time(ms: i64) -> String {
    cordon_flow::time::format_rfc3339(ms)
}

/// Block-style YAML with every string double-quoted (JSON's quoting is
/// YAML's): no value can be read back as another type.
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                out.push_str(&pad);
                out.push_str(k);
                out.push(':');
                inline_or_block(val, indent, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // The first field on the dash's line, the rest under it.
                        let mut first = true;
                        for (k, val) in m {
                            if first {
                                out.push(' ');
                                first = false;
                            } else {
                                out.push_str(&" ".repeat(indent + 2));
                            }
                            out.push_str(k);
                            out.push(':');
                            inline_or_block(val, indent + 2, out);
                        }
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&scalar(other));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn inline_or_block(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            yaml(val, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            yaml(val, indent + 2, out);
        }
        Value::Object(_) => out.push_str(" {}\n"),
        Value::Array(_) => out.push_str(" []\n"),
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn decode(root: &Node, diags: &mut Diagnostics) -> Option<Responses> {
    let mut top = root.fields(diags, "document")?;
    top.expect_kind(diags, "Responses", "a responses file");
    if let Some(v) = top
        .get("apiVersion")
        .and_then(|n| n.text(diags, "apiVersion"))
        && v != "cordon/v1"
    {
        let pos = top.get("apiVersion").map_or(top.pos(), |n| n.pos);
        diags.error_hint(
            pos,
            format!("unknown apiVersion `{v}`"),
            "write `cordon/v1`",
        );
    }
    let mut out = Responses::default();
    if let Some(meta) = top.get("metadata")
        && let Some(mut f) = meta.fields(diags, "metadata")
    {
        if let Some(g) = f.get("generation") {
            match g.text(diags, "generation").map(str::parse::<u64>) {
                Some(Ok(n)) => out.generation = n,
                Some(Err(_)) => diags.error(g.pos, "`generation` must be a whole number"),
                None => {}
            }
        }
        f.finish(diags, &["generation", "name"]);
    }
    if let Some(spec) = top.get("spec")
        && let Some(mut f) = spec.fields(diags, "spec")
    {
        if let Some(w) = f.get("maxTtl").and_then(|n| duration(n, diags, "maxTtl")) {
            out.max_ttl = w;
        }
        if let Some(n) = f.get("neverBlock") {
            out.never_block = peers(n, diags, "neverBlock");
        }
        if let Some(n) = f.get("responses")
            && let Some(items) = n.items(diags, "responses")
        {
            for item in items {
                if let Some(r) = response(item, diags) {
                    if out.responses.iter().any(|o| o.id == r.id) {
                        diags.error(item.pos, format!("response `{}` appears twice", r.id));
                    }
                    out.responses.push(r);
                }
            }
        }
        f.finish(diags, &["maxTtl", "neverBlock", "responses"]);
    }
    top.finish(diags, &["apiVersion", "kind", "metadata", "spec"]);
    Some(out)
}

/// A duration longer than zero (`ttl`, `maxTtl`), or an error at `node`.
pub(crate) fn duration(node: &Node, diags: &mut Diagnostics, key: &str) -> Option<Window> {
    let text = node.text(diags, key)?;
    match Window::parse(text) {
        Ok(w) if !w.0.is_zero() => Some(w),
        Ok(_) => {
            diags.error(node.pos, format!("`{key}` must be longer than zero"));
            None
        }
        Err(e) => {
            diags.error(node.pos, format!("`{key}`: {e}"));
            None
        }
    }
}

/// A list of peers (`neverBlock`, `allow`): addresses, hostnames and
/// names of the policy, each checked.
pub(crate) fn peers(node: &Node, diags: &mut Diagnostics, key: &str) -> Vec<Peer> {
    let mut out = Vec::new();
    for item in node.items(diags, key).unwrap_or_default() {
        if let Some(text) = item.text(diags, &format!("{key} item")) {
            match Peer::invalid(text) {
                Some(why) => diags.error(item.pos, why),
                None => out.push(Peer::parse(text)),
            }
        }
    }
    out
}

fn text_of<'n>(
    f: &mut cordon_yaml::Fields<'n>,
    diags: &mut Diagnostics,
    key: &str,
) -> Option<(String, cordon_yaml::Pos)> {
    let n = f.get(key)?;
    n.text(diags, key).map(|t| (t.to_string(), n.pos))
}

fn required<'n>(
    f: &mut cordon_yaml::Fields<'n>,
    diags: &mut Diagnostics,
    key: &str,
) -> Option<(String, cordon_yaml::Pos)> {
    let n = f.require(diags, key)?;
    n.text(diags, key).map(|t| (t.to_string(), n.pos))
}

fn timestamp(
    diags: &mut Diagnostics,
    (t, pos): (String, cordon_yaml::Pos),
    key: &str,
) -> Option<i64> {
    let ms = cordon_flow::time::parse_rfc3339(&t);
    if ms.is_none() {
        diags.error_hint(
            pos,
            format!("`{key}`: `{t}` is not a timestamp"),
            "write RFC 3339: 2026-12-07T05:00:00Z",
        );
    }
    ms
}

const RESPONSE_FIELDS: &[&str] = &[
    "id",
    "action",
    "target",
    "allow",
    "to",
    "from",
    "vendor",
    "limit",
    "reason",
    "finding",
    "incident",
    "createdBy",
    "created",
    "ttl",
    "expires",
    "status",
    "history",
];

fn response(node: &Node, diags: &mut Diagnostics) -> Option<Response> {
    let mut f = node.fields(diags, "response")?;
    let before = diags.len();
    let id = required(&mut f, diags, "id").map(|(t, pos)| {
        if !ResponseId::valid(&t) {
            diags.error_hint(
                pos,
                format!("`{t}` is not a response id"),
                "ids look like RSP-0123456789",
            );
        }
        ResponseId(t)
    });
    let action = match required(&mut f, diags, "action") {
        Some((a, pos)) => match a.as_str() {
            "quarantine" => quarantine(&mut f, diags, node),
            "block" => block(&mut f, diags, node),
            "throttle" => throttle(&mut f, diags, node),
            other => {
                diags.error_hint(
                    pos,
                    format!("unknown action `{other}`"),
                    "one of quarantine, block, throttle",
                );
                None
            }
        },
        None => None,
    };
    let reason = required(&mut f, diags, "reason").map(|(t, _)| t);
    let finding = text_of(&mut f, diags, "finding").map(|(t, _)| t);
    let incident = text_of(&mut f, diags, "incident").map(|(t, _)| t);
    let created_by = required(&mut f, diags, "createdBy").map(|(t, _)| t);
    let created = required(&mut f, diags, "created").and_then(|t| timestamp(diags, t, "created"));
    let ttl = f
        .require(diags, "ttl")
        .and_then(|n| duration(n, diags, "ttl"));
    let expires = text_of(&mut f, diags, "expires").and_then(|t| timestamp(diags, t, "expires"));
    let status = required(&mut f, diags, "status").and_then(|(t, pos)| {
        let s = Status::parse(&t);
        if s.is_none() {
            diags.error_hint(
                pos,
                format!("unknown status `{t}`"),
                "one of proposed, active, expired, undone",
            );
        }
        s
    });
    if status == Some(Status::Active) && expires.is_none() {
        diags.error_hint(
            node.pos,
            "an active response needs `expires`",
            "every response ends: set `expires` or make it `proposed`",
        );
    }
    let mut history = Vec::new();
    if let Some(h) = f.get("history")
        && let Some(items) = h.items(diags, "history")
    {
        for item in items {
            let Some(mut e) = item.fields(diags, "history entry") else {
                continue;
            };
            let at = required(&mut e, diags, "at").and_then(|t| timestamp(diags, t, "at"));
            let by = required(&mut e, diags, "by").map(|(t, _)| t);
            let what = required(&mut e, diags, "what").map(|(t, _)| t);
            let note = text_of(&mut e, diags, "note").map(|(t, _)| t);
            e.finish(diags, &["at", "by", "what", "note"]);
            if let (Some(at), Some(by), Some(what)) = (at, by, what) {
                history.push(Event { at, by, what, note });
            }
        }
    }
    f.finish(diags, RESPONSE_FIELDS);
    if diags.len() > before {
        return None;
    }
    Some(Response {
        id: id?,
        action: action?,
        reason: reason?,
        finding,
        incident,
        created_by: created_by?,
        created: created?,
        ttl: ttl?,
        expires,
        status: status?,
        history,
    })
}

fn quarantine(
    f: &mut cordon_yaml::Fields<'_>,
    diags: &mut Diagnostics,
    node: &Node,
) -> Option<Action> {
    let Some(target) = f.require(diags, "target") else {
        let _ = node;
        return None;
    };
    let mut t = target.fields(diags, "target")?;
    let subject = match (
        text_of(&mut t, diags, "ip"),
        text_of(&mut t, diags, "workload"),
    ) {
        (Some((ip, pos)), None) => match parse_net(&ip) {
            Some(n) => Some(Subject::Address(n)),
            None => {
                diags.error(pos, format!("`{ip}` is not an address or CIDR"));
                None
            }
        },
        (None, Some((w, _))) => Some(Subject::Workload(w)),
        _ => {
            diags.error_hint(
                target.pos,
                "a quarantine's `target` names one `ip` or one `workload`",
                "target: {ip: 203.0.113.66} or target: {workload: web-1}",
            );
            None
        }
    };
    t.finish(diags, &["ip", "workload"]);
    let allow = f
        .get("allow")
        .map(|a| peers(a, diags, "allow"))
        .unwrap_or_default();
    Some(Action::Quarantine {
        subject: subject?,
        allow,
    })
}

fn block(f: &mut cordon_yaml::Fields<'_>, diags: &mut Diagnostics, _node: &Node) -> Option<Action> {
    let to = f.require(diags, "to")?;
    let mut t = to.fields(diags, "to")?;
    let mut found = Vec::new();
    for key in ["fqdn", "cidr", "group", "vendor"] {
        if let Some((v, pos)) = text_of(&mut t, diags, key) {
            found.push((key, v, pos));
        }
    }
    t.finish(diags, &["fqdn", "cidr", "group", "vendor"]);
    let dest = match found.as_slice() {
        [(key, v, pos)] => match *key {
            "fqdn" => match FqdnPattern::parse(v) {
                Ok(p) => Some(Destination::Fqdn(p)),
                Err(e) => {
                    diags.error(*pos, e.to_string());
                    None
                }
            },
            "cidr" => match parse_net(v) {
                Some(n) => Some(Destination::Net(n)),
                None => {
                    diags.error(*pos, format!("`{v}` is not an address or CIDR"));
                    None
                }
            },
            "group" => Some(Destination::Group(v.clone())),
            _ => Some(Destination::Vendor(v.clone())),
        },
        _ => {
            diags.error_hint(
                to.pos,
                "a block's `to` names exactly one of fqdn, cidr, group, vendor",
                "to: {fqdn: storage.example.com}",
            );
            None
        }
    };
    let from = text_of(f, diags, "from").map(|(t, _)| t);
    Some(Action::Block { to: dest?, from })
}

fn throttle(
    f: &mut cordon_yaml::Fields<'_>,
    diags: &mut Diagnostics,
    _node: &Node,
) -> Option<Action> {
    let vendor = required(f, diags, "vendor").map(|(t, _)| t);
    let limit = required(f, diags, "limit").and_then(|(t, pos)| match parse_limit(&t) {
        Ok(l) => Some(l),
        Err(e) => {
            diags.error(pos, e);
            None
        }
    });
    let (bytes, per) = limit?;
    Some(Action::Throttle {
        vendor: vendor?,
        bytes,
        per,
    })
}

/// Read a limit written `10MiB/h` or `10MiB/1h`.
///
/// # Errors
/// What is wrong with it.
pub fn parse_limit(text: &str) -> Result<(ByteSize, Window), String> {
    let Some((b, w)) = text.split_once('/') else {
        return Err(format!(
            "`{text}` is not a limit: write bytes per window, such as 10MiB/h"
        ));
    };
    let bytes = ByteSize::parse(b).map_err(|e| format!("limit `{text}`: {e}"))?;
    let w = w.trim();
    let w = if w.starts_with(|c: char| c.is_ascii_digit()) {
        w.to_string()
    } else {
        format!("1{w}")
    };
    let per = Window::parse(&w).map_err(|e| format!("limit `{text}`: {e}"))?;
    if bytes.0 == 0 || per.0.is_zero() {
        return Err(format!("limit `{text}` must be more than zero"));
    }
    Ok((bytes, per))
}
