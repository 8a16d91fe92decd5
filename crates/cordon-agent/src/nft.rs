//! Applying rulesets with the `nft` command, one transaction each.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::ruleset::{OWNER, TABLE};

/// Why a ruleset could not be applied (nothing of it is in force then).
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` is not installed.
    #[error("`nft` was not found: install nftables")]
    Missing,
    /// The kernel or `nft` refused the script.
    #[error("nft refused the ruleset: {0}")]
    Refused(String),
    /// A table named like ours belongs to someone else.
    #[error("table inet {TABLE} exists and is not Cordon's; remove or rename it first")]
    NotOurs,
    /// Anything else running `nft`.
    #[error("cannot run nft: {0}")]
    Io(#[from] std::io::Error),
}

fn nft(args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NftError::Missing,
            _ => NftError::Io(e),
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(NftError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The agent's table as nft lists it, if it exists.
///
/// # Errors
/// `nft` missing or failing for another reason than a missing table.
pub fn current() -> Result<Option<String>, NftError> {
    match nft(&["list", "table", "inet", TABLE], None) {
        Ok(text) => Ok(Some(text)),
        Err(NftError::Refused(msg)) if msg.contains("No such file") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replace the agent's table with `script` in one transaction, after
/// checking that an existing table of that name is the agent's. Returns
/// the table as listed back.
///
/// # Errors
/// The table is someone else's, or nft refused the script (the previous
/// ruleset is then still in force).
pub fn apply(script: &str) -> Result<String, NftError> {
    if let Some(existing) = current()?
        && !existing.contains(OWNER)
    {
        return Err(NftError::NotOurs);
    }
    nft(&["-f", "-"], Some(script))?;
    current()?.ok_or_else(|| NftError::Refused("the table is missing after loading".into()))
}

/// Remove the agent's table, if it is there and the agent's.
///
/// # Errors
/// The table is someone else's, or nft failed.
pub fn cleanup() -> Result<bool, NftError> {
    match current()? {
        None => Ok(false),
        Some(existing) if !existing.contains(OWNER) => Err(NftError::NotOurs),
        Some(_) => {
            nft(&["delete", "table", "inet", TABLE], None)?;
            Ok(true)
        }
    }
}
