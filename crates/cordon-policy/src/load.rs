//! Reading policies and inventories from files, with every error reported.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cordon_yaml::{Diagnostic, Diagnostics, Limits, Pos, parse_with_limits};

use crate::model::Policy;
use crate::raw::decode_policy;
use crate::resolve::{SourcedWorkload, resolve};
use crate::{inventory, raw::RawWorkload};

/// The largest policy or inventory file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Everything wrong with a policy: every error found, not just the first.
#[derive(Clone, Debug, thiserror::Error)]
pub struct PolicyError {
    /// The problems, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self.diagnostics.iter().map(ToString::to_string).collect();
        f.write_str(&text.join("\n"))
    }
}

impl PolicyError {
    fn one(d: Diagnostic) -> Self {
        PolicyError {
            diagnostics: vec![d],
        }
    }
}

/// Where to find a policy's inventory beyond what the policy says itself.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Inventory files (Cordon, AWS EC2 or Kubernetes pods format).
    pub inventory: Vec<PathBuf>,
}

/// Read a file as UTF-8 within [`MAX_FILE_BYTES`], with a located error.
pub fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let name: Arc<str> = path.display().to_string().into();
    let file = std::fs::File::open(path)
        .map_err(|e| Diagnostic::error(&name, None, format!("cannot read `{name}`: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Diagnostic::error(&name, None, format!("cannot read `{name}`: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            &name,
            None,
            format!("file is larger than the limit of {MAX_FILE_BYTES} bytes"),
        )
        .with_hint("split it into smaller files"));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let prefix = e.as_bytes().get(..offset).unwrap_or_default();
        let line = prefix.iter().filter(|b| **b == b'\n').count() + 1;
        let col = prefix.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        Diagnostic::error(
            &name,
            Some(Pos {
                line: u32::try_from(line).unwrap_or(u32::MAX),
                col: u32::try_from(col).unwrap_or(u32::MAX),
            }),
            format!("invalid UTF-8 at byte offset {offset}"),
        )
        .with_hint("policy and inventory files are UTF-8 text")
    })
}

/// Parse the workloads of an inventory document.
///
/// # Errors
/// Every problem found, located.
pub fn parse_inventory(file: &str, text: &str) -> Result<Vec<RawWorkload>, PolicyError> {
    let doc = parse_with_limits(file, text, limits()).map_err(PolicyError::one)?;
    let mut diags = Diagnostics::new(file);
    let workloads = inventory::decode(&doc.root, &mut diags);
    if diags.has_errors() {
        return Err(PolicyError {
            diagnostics: diags.into_vec(),
        });
    }
    Ok(workloads)
}

fn limits() -> Limits {
    Limits {
        max_bytes: MAX_FILE_BYTES as usize,
        ..Limits::default()
    }
}

fn parse_inventory_into(
    name: Arc<str>,
    text: &str,
    out: &mut Vec<SourcedWorkload>,
    errors: &mut Vec<Diagnostic>,
) {
    match parse_inventory(&name, text) {
        Ok(workloads) => out.extend(workloads.into_iter().map(|workload| SourcedWorkload {
            file: Arc::clone(&name),
            workload,
        })),
        Err(e) => errors.extend(e.diagnostics),
    }
}

/// An inventory file's name (for errors) and text, or why it cannot be read.
pub(crate) type InventoryText = Result<(Arc<str>, String), Diagnostic>;

/// Where the files a policy's `inventory_files` name are read from: the
/// disk beside the policy, or the members of a signed bundle.
pub(crate) trait PolicyFiles {
    /// The file `relative` (as the policy writes it); `None` when it does
    /// not exist.
    fn inventory_file(&self, relative: &str) -> Option<InventoryText>;

    /// How `relative` is named when it is missing.
    fn describe(&self, relative: &str) -> String {
        relative.to_string()
    }
}

/// The files beside a policy on disk.
struct Beside<'a> {
    base: &'a Path,
}

impl PolicyFiles for Beside<'_> {
    fn inventory_file(&self, relative: &str) -> Option<InventoryText> {
        let path = self.base.join(relative);
        if !path.exists() {
            return None;
        }
        let name: Arc<str> = path.display().to_string().into();
        Some(read_text(&path).map(|text| (name, text)))
    }

    fn describe(&self, relative: &str) -> String {
        self.base.join(relative).display().to_string()
    }
}

/// Parse, validate and resolve a policy from text. `file` names it in
/// errors; `inventory_files` in the policy are read relative to its folder.
///
/// # Errors
/// Every problem found in the policy and its inventories.
pub fn parse_policy(file: &str, text: &str, options: &LoadOptions) -> Result<Policy, PolicyError> {
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    let extra = options
        .inventory
        .iter()
        .map(|path| {
            let name: Arc<str> = path.display().to_string().into();
            read_text(path).map(|text| (name, text))
        })
        .collect();
    parse_policy_with(file, text, &Beside { base }, extra)
}

/// [`parse_policy`] with the policy's inventory files read from `files`
/// and `extra` inventories already read.
pub(crate) fn parse_policy_with(
    file: &str,
    text: &str,
    files: &dyn PolicyFiles,
    extra: Vec<InventoryText>,
) -> Result<Policy, PolicyError> {
    let doc = parse_with_limits(file, text, limits()).map_err(PolicyError::one)?;
    let mut diags = Diagnostics::new(file);
    let raw = decode_policy(&doc.root, &mut diags);
    let mut workloads = Vec::new();
    let mut errors = Vec::new();
    for f in &raw.inventory_files {
        match files.inventory_file(&f.value) {
            None => diags.error_hint(
                f.pos,
                format!("inventory file `{}` not found", files.describe(&f.value)),
                "paths in inventory_files are relative to the policy file",
            ),
            Some(Ok((name, text))) => {
                parse_inventory_into(name, &text, &mut workloads, &mut errors);
            }
            Some(Err(d)) => errors.push(d),
        }
    }
    for inventory in extra {
        match inventory {
            Ok((name, text)) => parse_inventory_into(name, &text, &mut workloads, &mut errors),
            Err(d) => errors.push(d),
        }
    }
    let policy = resolve(&raw, workloads, &mut diags);
    errors.extend(diags.into_vec());
    if errors
        .iter()
        .any(|d| d.severity == cordon_yaml::Severity::Error)
    {
        return Err(PolicyError {
            diagnostics: errors,
        });
    }
    Ok(policy)
}

/// Read, validate and resolve the policy in `path`.
///
/// # Errors
/// Every problem found in the policy and its inventories.
pub fn load_policy(path: &Path, options: &LoadOptions) -> Result<Policy, PolicyError> {
    let text = read_text(path).map_err(PolicyError::one)?;
    parse_policy(&path.display().to_string(), &text, options)
}
