//! Problems found in a document, with where they are and what to do.

use std::fmt;
use std::sync::Arc;

use crate::Pos;

/// How bad a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The input cannot be used.
    Error,
    /// The input works but is probably not what was meant.
    Warning,
}

/// One problem in one file: what is wrong, where, and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// The file the problem is in, as the user named it.
    pub file: Arc<str>,
    /// Where in the file, when known.
    pub pos: Option<Pos>,
    /// What is wrong, lowercase, naming the input in backticks.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `pos` in `file`.
    pub fn error(file: &Arc<str>, pos: Option<Pos>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: Arc::clone(file),
            pos,
            message: message.into(),
            hint: None,
        }
    }

    /// The same diagnostic with a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:col`, or just the file when the position is unknown.
    pub fn location(&self) -> String {
        match self.pos {
            Some(pos) => format!("{}:{}", self.file, pos),
            None => self.file.to_string(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location())?;
        if self.severity == Severity::Warning {
            write!(f, "warning: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// A collector of diagnostics for one file, so decoding can report every
/// problem rather than stop at the first.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    file: Arc<str>,
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// A collector for problems in `file`.
    pub fn new(file: impl Into<Arc<str>>) -> Self {
        Diagnostics {
            file: file.into(),
            list: Vec::new(),
        }
    }

    /// The file this collector reports on.
    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    /// Record an error at `pos`.
    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.list
            .push(Diagnostic::error(&self.file, Some(pos), message));
    }

    /// Record an error at `pos` with a hint.
    pub fn error_hint(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<String>) {
        self.list
            .push(Diagnostic::error(&self.file, Some(pos), message).with_hint(hint));
    }

    /// Record an already-built diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.list.push(diagnostic);
    }

    /// Whether any error (not warning) was recorded.
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }

    /// How many diagnostics were recorded.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The diagnostics, sorted by position.
    pub fn into_vec(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|d| d.pos);
        self.list
    }

    /// Every diagnostic, one per paragraph, sorted by position.
    pub fn render(&self) -> String {
        let mut sorted: Vec<&Diagnostic> = self.list.iter().collect();
        sorted.sort_by_key(|d| d.pos);
        sorted
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}
