//! Signed policy bundles: how one policy reaches many agents and gateways
//! without anyone trusting the path it travelled.
//!
//! A bundle is a tar.gz holding `manifest.json`, `manifest.sig` and the
//! files under `files/`: the policy, the inventory files it names, extra
//! inventories, and optionally the responses document. The manifest lists
//! every file with its size and SHA-256 and carries a version that only
//! goes up; `manifest.sig` is the Ed25519 signature of the manifest's exact
//! bytes, so `openssl pkeyutl -verify -rawin` checks it too.
//!
//! [`open`] trusts nothing before the signature verifies with one of the
//! trusted keys, and then nothing the manifest does not vouch for: a
//! changed byte, a swapped, missing or extra file, a wrong key, a cut
//! archive and an unsigned one are each refused with the reason. Whether
//! a version is newer than the one in force is the receiver's call
//! ([`crate::PolicySource`]).

mod archive;
pub mod keys;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use keys::{KeyError, PublicKey, SigningKey};

use crate::load::{InventoryText, PolicyError, PolicyFiles, parse_policy_with};
use crate::model::Policy;

/// The manifest's `format`.
pub const FORMAT: &str = "cordon-policy-bundle/1";
/// The largest bundle accepted, compressed.
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;
/// The most a bundle may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;
/// The most members a bundle may hold.
pub const MAX_MEMBERS: usize = 4096;
/// The longest file name inside a bundle, in bytes.
const MAX_NAME: usize = 255;

const MANIFEST: &str = "manifest.json";
const SIGNATURE: &str = "manifest.sig";
const FILES: &str = "files/";

/// What a bundle says about itself; signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The bundle's version: a receiver refuses any not above the one in
    /// force.
    pub version: u64,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The id of the key that signed it ([`PublicKey::id`]).
    pub key: String,
    /// The policy file's name among `files`.
    pub policy: String,
    /// Inventory files loaded besides the ones the policy names.
    #[serde(default)]
    pub inventory: Vec<String>,
    /// The responses document's name among `files`, if any.
    #[serde(default)]
    pub responses: Option<String>,
    /// Every file, with its size and digest.
    pub files: Vec<ManifestFile>,
}

/// One file of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Its name, relative (`acme-prod.yaml`, `inventory/pods.json`).
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

/// What goes into a bundle.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    /// The policy's name among `files`.
    pub policy: String,
    /// Extra inventory files' names among `files`.
    pub inventory: Vec<String>,
    /// The responses document's name among `files`.
    pub responses: Option<String>,
    /// Every file by name.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Why a bundle is refused or cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Larger than [`MAX_BUNDLE_BYTES`].
    #[error("the bundle is {bytes} bytes, more than the limit of {MAX_BUNDLE_BYTES}")]
    TooLarge {
        /// Its size.
        bytes: u64,
    },
    /// Not a readable tar.gz.
    #[error("not a policy bundle (a tar.gz): {0}")]
    Archive(String),
    /// A member breaks the rules.
    #[error("member `{name}` {problem}")]
    Member {
        /// The member.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// No signature, or no manifest.
    #[error("unsigned: the bundle has no `{0}`")]
    Unsigned(&'static str),
    /// The signature verifies with no trusted key.
    #[error(
        "the signature does not verify with the trusted key(s) {trusted} (the manifest names key {named})"
    )]
    Signature {
        /// The trusted keys' ids.
        trusted: String,
        /// The key id the manifest names.
        named: String,
    },
    /// The manifest names a trusted key whose signature does not verify:
    /// it was changed after signing.
    #[error(
        "the signature does not verify: the manifest was changed after trusted key {key} signed it"
    )]
    ManifestChanged {
        /// The key id.
        key: String,
    },
    /// The signed manifest is not one Cordon reads.
    #[error("the manifest is invalid: {0}")]
    Manifest(String),
    /// A file's bytes are not the ones signed.
    #[error("`{name}` was changed after signing (its SHA-256 is not the manifest's)")]
    Tampered {
        /// The file.
        name: String,
    },
    /// A signed file is not in the archive.
    #[error("`{name}` is listed in the manifest but missing")]
    Missing {
        /// The file.
        name: String,
    },
    /// A file is in the archive but not signed.
    #[error("`{name}` is in the archive but not in the signed manifest")]
    Unlisted {
        /// The file.
        name: String,
    },
    /// The policy inside is invalid.
    #[error("the policy in the bundle is invalid:\n{0}")]
    Policy(PolicyError),
}

/// A bundle whose signature and files have been verified.
#[derive(Clone, Debug)]
pub struct Bundle {
    manifest: Manifest,
    /// The SHA-256 of the signed manifest's bytes: two bundles with the
    /// same manifest hold the same files, however they were packed.
    manifest_digest: String,
    files: BTreeMap<String, Vec<u8>>,
    digest: String,
    signer: PublicKey,
}

/// The bytes of the bundle file at `path`, at most [`MAX_BUNDLE_BYTES`]
/// and one more (so [`open`] refuses a longer one with its size).
///
/// # Errors
/// The file cannot be read.
pub fn read_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    keys::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Whether `name` may name a file in a bundle: relative, `/`-separated,
/// no empty, `.` or `..` part, no backslash or control character.
fn check_name(name: &str) -> Result<(), BundleError> {
    let problem = if name.is_empty() || name.len() > MAX_NAME {
        Some(format!("is not a name of 1 to {MAX_NAME} bytes"))
    } else if name.starts_with('/') || name.contains('\\') {
        Some("is not a relative `/`-separated name".to_string())
    } else if name.chars().any(char::is_control) {
        Some("holds a control character".to_string())
    } else if name
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        Some("has an empty, `.` or `..` part".to_string())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(BundleError::Member {
            name: name.to_string(),
            problem,
        }),
        None => Ok(()),
    }
}

/// Sign `contents` as version `version`, made at `created` (RFC 3339).
///
/// # Errors
/// A named file is not among the files, or a name is unusable.
pub fn build(
    key: &SigningKey,
    version: u64,
    created: &str,
    contents: &Contents,
) -> Result<Vec<u8>, BundleError> {
    let named = std::iter::once(&contents.policy)
        .chain(&contents.inventory)
        .chain(&contents.responses);
    for name in named {
        if !contents.files.contains_key(name) {
            return Err(BundleError::Missing { name: name.clone() });
        }
    }
    for name in contents.files.keys() {
        check_name(name)?;
    }
    let manifest = Manifest {
        format: FORMAT.to_string(),
        version,
        created: created.to_string(),
        key: key.public().id(),
        policy: contents.policy.clone(),
        inventory: contents.inventory.clone(),
        responses: contents.responses.clone(),
        files: contents
            .files
            .iter()
            .map(|(name, data)| ManifestFile {
                name: name.clone(),
                bytes: data.len() as u64,
                sha256: sha256_hex(data),
            })
            .collect(),
    };
    let mut manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| BundleError::Manifest(e.to_string()))?;
    manifest_bytes.push(b'\n');
    let signature = key.sign(&manifest_bytes);
    let names: Vec<String> = contents
        .files
        .keys()
        .map(|n| format!("{FILES}{n}"))
        .collect();
    let mut members: Vec<(&str, &[u8])> = vec![
        (MANIFEST, manifest_bytes.as_slice()),
        (SIGNATURE, signature.as_slice()),
    ];
    members.extend(
        names
            .iter()
            .zip(contents.files.values())
            .map(|(n, d)| (n.as_str(), d.as_slice())),
    );
    archive::write(&members)
}

/// Verify a bundle against the trusted keys and return what it holds.
///
/// # Errors
/// Every way a bundle can be wrong, each with its reason; see
/// [`BundleError`].
pub fn open(bytes: &[u8], trust: &[PublicKey]) -> Result<Bundle, BundleError> {
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge {
            bytes: bytes.len() as u64,
        });
    }
    let mut members = archive::read(bytes)?;
    let manifest_bytes = members
        .remove(MANIFEST)
        .ok_or(BundleError::Unsigned(MANIFEST))?;
    let signature = members
        .remove(SIGNATURE)
        .ok_or(BundleError::Unsigned(SIGNATURE))?;
    let signer = trust
        .iter()
        .find(|k| k.verifies(&manifest_bytes, &signature))
        .copied()
        .ok_or_else(|| {
            let named = named_key(&manifest_bytes);
            if trust.iter().any(|k| k.id() == named) {
                BundleError::ManifestChanged { key: named }
            } else {
                BundleError::Signature {
                    trusted: trust
                        .iter()
                        .map(PublicKey::id)
                        .collect::<Vec<_>>()
                        .join(", "),
                    named,
                }
            }
        })?;
    // Signed: from here the manifest is the signer's word.
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| BundleError::Manifest(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(BundleError::Manifest(format!(
            "format `{}` is not `{FORMAT}` (a newer Cordon made it?)",
            manifest.format
        )));
    }
    let mut files = BTreeMap::new();
    for listed in &manifest.files {
        let data = members
            .remove(&format!("{FILES}{}", listed.name))
            .ok_or_else(|| BundleError::Missing {
                name: listed.name.clone(),
            })?;
        if data.len() as u64 != listed.bytes || sha256_hex(&data) != listed.sha256 {
            return Err(BundleError::Tampered {
                name: listed.name.clone(),
            });
        }
        files.insert(listed.name.clone(), data);
    }
    if let Some(name) = members.into_keys().next() {
        return Err(BundleError::Unlisted { name });
    }
    let named = std::iter::once(&manifest.policy)
        .chain(&manifest.inventory)
        .chain(&manifest.responses);
    for name in named {
        if !files.contains_key(name) {
            return Err(BundleError::Missing { name: name.clone() });
        }
    }
    Ok(Bundle {
        manifest,
        manifest_digest: sha256_hex(&manifest_bytes),
        files,
        digest: sha256_hex(bytes),
        signer,
    })
}

/// The key id an unverified manifest names, for the error message only.
fn named_key(manifest: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(manifest)
        .ok()
        .and_then(|m| m.get("key").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_else(|| "none".to_string())
}

impl Bundle {
    /// The signed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The bundle's version.
    pub fn version(&self) -> u64 {
        self.manifest.version
    }

    /// The SHA-256 of the whole bundle (what a server's ETag names).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The SHA-256 of its signed manifest: equal for bundles with the
    /// same signed contents.
    pub fn manifest_digest(&self) -> &str {
        &self.manifest_digest
    }

    /// The trusted key that signed it.
    pub fn signer(&self) -> PublicKey {
        self.signer
    }

    /// A file's bytes.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// The responses document, if the bundle carries one.
    pub fn responses(&self) -> Option<&[u8]> {
        self.manifest
            .responses
            .as_deref()
            .and_then(|n| self.file(n))
    }

    /// The policy, with the inventories the bundle holds: nothing is read
    /// from disk.
    ///
    /// # Errors
    /// The policy's diagnostics, named `bundle:NAME`.
    pub fn policy(&self) -> Result<Policy, PolicyError> {
        let text = |name: &str| -> InventoryText {
            let label: Arc<str> = format!("bundle:{name}").into();
            let bytes = self.file(name).unwrap_or_default();
            String::from_utf8(bytes.to_vec())
                .map(|t| (Arc::clone(&label), t))
                .map_err(|_| {
                    cordon_yaml::Diagnostic::error(&label, None, "not UTF-8 text".to_string())
                })
        };
        let (name, policy_text) = text(&self.manifest.policy).map_err(|d| PolicyError {
            diagnostics: vec![d],
        })?;
        let extra = self.manifest.inventory.iter().map(|n| text(n)).collect();
        let beside = InBundle {
            bundle: self,
            folder: self
                .manifest
                .policy
                .rsplit_once('/')
                .map_or("", |(folder, _)| folder),
            text: &text,
        };
        parse_policy_with(&name, &policy_text, &beside, extra)
    }
}

/// The files a bundled policy's `inventory_files` name, from the bundle.
struct InBundle<'a> {
    bundle: &'a Bundle,
    folder: &'a str,
    text: &'a dyn Fn(&str) -> InventoryText,
}

impl PolicyFiles for InBundle<'_> {
    fn inventory_file(&self, relative: &str) -> Option<InventoryText> {
        let name = bundled_name(self.folder, relative)?;
        self.bundle
            .files
            .contains_key(&name)
            .then(|| (self.text)(&name))
    }
}

/// The name inside a bundle of `relative`, written in a policy whose file
/// lies in `folder`: `..` may climb within the bundle, never out of it.
pub fn bundled_name(folder: &str, relative: &str) -> Option<String> {
    let mut parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests;
