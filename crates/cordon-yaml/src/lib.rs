//! YAML documents that remember where every value came from.
//!
//! Cordon's configuration (policies, inventories, detector settings) is YAML
//! written by people, and an error that says `policy.yaml:14:7` is worth more
//! than one that says "invalid type". This crate parses YAML into a small tree
//! of [`Node`]s, each carrying its [`Pos`], and offers [`Fields`] for the
//! two-phase decoding the rest of Cordon uses: read the raw form field by field,
//! collect every problem as a [`Diagnostic`], reject unknown fields with a
//! "did you mean" hint.
//!
//! The main design choice is to build the tree from the parser's event stream
//! ourselves rather than through serde: that is what lets every error carry a
//! location and lets decoding go on past the first error, and it is where the
//! limits on hostile input live (nesting depth, node count, alias expansion).
//!
//! ```
//! use cordon_yaml::{parse, Diagnostics};
//!
//! let doc = parse("policy.yaml", "spec:\n  mode: enforce\n  colour: blue\n").unwrap();
//! let mut diags = Diagnostics::new("policy.yaml");
//! let mut top = doc.root.fields(&mut diags, "policy").unwrap();
//! let spec = top.get("spec").unwrap();
//! let mut spec_fields = spec.fields(&mut diags, "spec").unwrap();
//! assert_eq!(spec_fields.get("mode").and_then(|n| n.as_str()), Some("enforce"));
//! spec_fields.finish(&mut diags, &["mode", "default"]);
//! top.finish(&mut diags, &["spec"]);
//! let errors = diags.render();
//! assert!(errors.contains("policy.yaml:3:3: unknown field `colour` in `spec`"));
//! ```

mod diagnostic;
mod fields;
mod node;
mod parse;
mod suggest;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use fields::Fields;
pub use node::{Node, NodeKind, Pos};
pub use parse::{Document, Limits, ParseError, parse, parse_with_limits};
pub use suggest::closest;

#[cfg(test)]
mod tests;
