//! Building the located tree from the YAML event stream, within limits.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle};

use crate::{Diagnostic, Node, NodeKind, Pos};

/// The error returned when a document cannot be parsed at all.
pub type ParseError = Diagnostic;

/// Bounds on what a document may cost to load. Every YAML input comes from
/// outside, so nothing about its size is trusted.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of lists and mappings.
    pub max_depth: usize,
    /// Most nodes in the finished tree, counting alias expansions (this is
    /// what stops "billion laughs" documents).
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024 * 1024,
            max_depth: 64,
            max_nodes: 4_000_000,
        }
    }
}

/// A parsed YAML document.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file it came from, as the user named it.
    pub file: Arc<str>,
    /// The top-level value (null for an empty document).
    pub root: Node,
}

/// Parse one YAML document with the default [`Limits`].
///
/// # Errors
/// A [`Diagnostic`] locating the first syntax error or exceeded limit.
pub fn parse(file: impl Into<Arc<str>>, source: &str) -> Result<Document, ParseError> {
    parse_with_limits(file, source, Limits::default())
}

/// Parse one YAML document within `limits`.
///
/// # Errors
/// A [`Diagnostic`] locating the first syntax error or exceeded limit.
pub fn parse_with_limits(
    file: impl Into<Arc<str>>,
    source: &str,
    limits: Limits,
) -> Result<Document, ParseError> {
    let file = file.into();
    if source.len() > limits.max_bytes {
        return Err(Diagnostic::error(
            &file,
            None,
            format!(
                "file is {} bytes, more than the limit of {} bytes",
                source.len(),
                limits.max_bytes
            ),
        )
        .with_hint("split it into smaller files"));
    }
    let mut builder = Builder {
        file: Arc::clone(&file),
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        documents: 0,
    };
    let mut parser = Parser::new_from_str(source);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            Diagnostic::error(
                &file,
                Some(pos_of(*e.marker())),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        builder.on_event(event, pos_of(span.start))?;
    }
    Ok(Document {
        file,
        root: builder.root.unwrap_or(Node {
            kind: NodeKind::Null,
            pos: Pos { line: 1, col: 1 },
        }),
    })
}

fn pos_of(marker: Marker) -> Pos {
    Pos {
        line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
        col: u32::try_from(marker.col().saturating_add(1)).unwrap_or(u32::MAX),
    }
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// Keys seen so far and the line of each, to reject duplicates in
        /// constant time per key.
        seen: HashMap<String, u32>,
    },
}

struct Builder {
    file: Arc<str>,
    limits: Limits,
    stack: Vec<Frame>,
    /// Anchored nodes with their node counts, for alias expansion.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    root: Option<Node>,
    documents: usize,
}

impl Builder {
    fn error(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(&self.file, Some(pos), message)
    }

    fn count(&mut self, pos: Pos, n: usize) -> Result<(), Diagnostic> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(self
                .error(
                    pos,
                    format!("document has more than {} values", self.limits.max_nodes),
                )
                .with_hint("aliases count once per use; split the document or expand less"));
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event<'_>, pos: Pos) -> Result<(), Diagnostic> {
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self
                        .error(pos, "more than one YAML document in the file")
                        .with_hint("keep one document per file"));
                }
                Ok(())
            }
            Event::Scalar(value, style, anchor, tag) => {
                if tag.is_some() {
                    return Err(self
                        .error(pos, "YAML tags are not supported")
                        .with_hint("remove the `!tag`; quote the value if it must stay text"));
                }
                self.count(pos, 1)?;
                let kind = if style == ScalarStyle::Plain
                    && matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL")
                {
                    NodeKind::Null
                } else {
                    NodeKind::Scalar {
                        value: value.into_owned(),
                        quoted: style != ScalarStyle::Plain,
                    }
                };
                self.complete(Node { kind, pos }, anchor, 1)
            }
            Event::Alias(id) => {
                let Some((node, size)) = self.anchors.get(&id).cloned() else {
                    return Err(self.error(pos, "alias to an unknown anchor"));
                };
                self.count(pos, size)?;
                let node = Node { pos, ..node };
                self.complete(node, 0, size)
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag)
                if tag.is_some() =>
            {
                let _ = anchor;
                Err(self
                    .error(pos, "YAML tags are not supported")
                    .with_hint("remove the `!tag`"))
            }
            Event::SequenceStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    seen: HashMap::new(),
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err(self.error(pos, "unbalanced YAML collection"));
                };
                let (node, anchor) = match frame {
                    Frame::Seq { pos, anchor, items } => (
                        Node {
                            kind: NodeKind::Seq(items),
                            pos,
                        },
                        anchor,
                    ),
                    Frame::Map {
                        pos,
                        anchor,
                        entries,
                        ..
                    } => (
                        Node {
                            kind: NodeKind::Map(entries),
                            pos,
                        },
                        anchor,
                    ),
                };
                let size = if anchor == 0 { 1 } else { size_of(&node) };
                self.complete(node, anchor, size)
            }
        }
    }

    fn open(&mut self, pos: Pos) -> Result<(), Diagnostic> {
        self.count(pos, 1)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(self
                .error(
                    pos,
                    format!("nesting deeper than {} levels", self.limits.max_depth),
                )
                .with_hint("flatten the document"));
        }
        Ok(())
    }

    /// Attach a finished node to its parent (or make it the root).
    fn complete(&mut self, node: Node, anchor: usize, size: usize) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let file = Arc::clone(&self.file);
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match key.take() {
                None => {
                    if !matches!(node.kind, NodeKind::Scalar { .. }) {
                        return Err(Diagnostic::error(
                            &file,
                            Some(node.pos),
                            format!("mapping keys must be strings, found {}", node.type_name()),
                        ));
                    }
                    let name = node.as_str().unwrap_or_default().to_string();
                    if let Some(first_line) = seen.get(&name) {
                        return Err(Diagnostic::error(
                            &file,
                            Some(node.pos),
                            format!("duplicate key `{name}` (first at line {first_line})"),
                        )
                        .with_hint("each key may appear once in a mapping"));
                    }
                    seen.insert(name, node.pos.line);
                    *key = Some(node);
                    Ok(())
                }
                Some(k) => {
                    entries.push((k, node));
                    Ok(())
                }
            },
        }
    }
}

/// How many nodes a tree holds (bounded by the depth limit, so recursion is
/// safe here).
fn size_of(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Null | NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(size_of).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| size_of(k) + size_of(v))
                .sum::<usize>()
        }
    }
}
