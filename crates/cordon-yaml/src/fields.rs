//! Field-by-field decoding of mappings, with unknown-field detection.

use crate::suggest::closest;
use crate::{Diagnostics, Node, NodeKind, Pos};

/// The fields of one YAML mapping being decoded into a struct.
///
/// Each [`Fields::get`] marks a key as known; [`Fields::finish`] reports every
/// key nobody asked for as an unknown field, with the closest known name.
pub struct Fields<'n> {
    what: String,
    pos: Pos,
    entries: &'n [(Node, Node)],
    used: Vec<bool>,
}

impl<'n> Fields<'n> {
    /// Where the mapping starts.
    pub fn pos(&self) -> Pos {
        self.pos
    }

    /// The value of `key`, if present, marking it as known. A key whose value
    /// is null counts as absent.
    pub fn get(&mut self, key: &str) -> Option<&'n Node> {
        let entries = self.entries;
        for (i, (k, v)) in entries.iter().enumerate() {
            if k.as_str() == Some(key) {
                if let Some(used) = self.used.get_mut(i) {
                    *used = true;
                }
                return (!v.is_null()).then_some(v);
            }
        }
        None
    }

    /// The value of `key`, or an error naming the missing field.
    pub fn require(&mut self, diags: &mut Diagnostics, key: &str) -> Option<&'n Node> {
        let value = self.get(key);
        if value.is_none() {
            diags.error(
                self.pos,
                format!("`{}` is missing field `{key}`", self.what),
            );
        }
        value
    }

    /// Check the document's required `kind:` is `kind`; `what` names such a
    /// document in the hint (`a playbook`).
    pub fn expect_kind(&mut self, diags: &mut Diagnostics, kind: &str, what: &str) {
        let Some(node) = self.require(diags, "kind") else {
            return;
        };
        match node.text(diags, "kind") {
            Some(k) if k == kind => {}
            Some(other) => diags.error_hint(
                node.pos,
                format!("this is a `{other}` document, not `{kind}`"),
                format!("{what} starts with `kind: {kind}`"),
            ),
            None => {}
        }
    }

    /// Report every key that was not asked for, suggesting the closest of
    /// `known`.
    pub fn finish(self, diags: &mut Diagnostics, known: &[&str]) {
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let name = key.as_str().unwrap_or("?");
            let mut hint = String::new();
            if let Some(best) = closest(name, known.iter().copied()) {
                hint.push_str(&format!("did you mean `{best}`? "));
            }
            hint.push_str(&format!("known fields: {}", known.join(", ")));
            diags.error_hint(
                key.pos,
                format!("unknown field `{name}` in `{}`", self.what),
                hint,
            );
        }
    }
}

impl Node {
    /// This mapping's fields for decoding `what`; an error if it is not a
    /// mapping.
    pub fn fields(&self, diags: &mut Diagnostics, what: &str) -> Option<Fields<'_>> {
        let entries = self.entries(diags, what)?;
        Some(Fields {
            what: what.to_string(),
            pos: self.pos,
            entries,
            used: vec![false; entries.len()],
        })
    }

    /// This mapping's entries, for mappings used as dictionaries (names to
    /// definitions); an error if it is not a mapping.
    pub fn entries(&self, diags: &mut Diagnostics, what: &str) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            NodeKind::Null => Some(&[]),
            _ => {
                diags.error(
                    self.pos,
                    format!("`{what}` must be a mapping, found {}", self.type_name()),
                );
                None
            }
        }
    }

    /// This list's items; an error if it is not a list. A lone scalar is
    /// accepted as a list of one, as people often write `from: web`.
    pub fn items(&self, diags: &mut Diagnostics, what: &str) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            NodeKind::Scalar { .. } => Some(std::slice::from_ref(self)),
            NodeKind::Null => Some(&[]),
            NodeKind::Map(_) => {
                diags.error(
                    self.pos,
                    format!("`{what}` must be a list, found a mapping"),
                );
                None
            }
        }
    }

    /// This scalar's text; an error if it is not a scalar.
    pub fn text(&self, diags: &mut Diagnostics, what: &str) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => {
                diags.error(
                    self.pos,
                    format!("`{what}` must be a string, found {}", self.type_name()),
                );
                None
            }
        }
    }

    /// This scalar as a boolean (`true` or `false`).
    pub fn boolean(&self, diags: &mut Diagnostics, what: &str) -> Option<bool> {
        match &self.kind {
            NodeKind::Scalar {
                value,
                quoted: false,
            } if value == "true" => Some(true),
            NodeKind::Scalar {
                value,
                quoted: false,
            } if value == "false" => Some(false),
            _ => {
                diags.error_hint(
                    self.pos,
                    format!("`{what}` must be `true` or `false`"),
                    "write true or false without quotes",
                );
                None
            }
        }
    }
}
