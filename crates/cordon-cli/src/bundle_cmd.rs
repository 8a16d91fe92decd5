//! `cordon policy keygen | bundle | verify-bundle`, and the bundle feed
//! (`--policy-url`, `--policy-bundle`, `--trust`) of agents and gateways.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use cordon_fetch::PullOptions;
use cordon_policy::bundle::{self, Contents, MAX_BUNDLE_BYTES, PublicKey, SigningKey};
use cordon_policy::{BundleOrigin, load_policy};
use serde_json::json;

use crate::args::{BundleArgs, KeygenArgs, PolicyFeedArgs, VerifyBundleArgs};
use crate::common::{print_policy_errors, read_limited, secret, warn_plain_credentials};
use crate::{EXIT_CONFIG, outln};

fn fail(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(EXIT_CONFIG))
}

/// Write `bytes` to a new file `path` readable by its owner only.
fn write_new(path: &Path, bytes: &[u8], mode: u32, force: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// `cordon policy keygen`
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let key = SigningKey::generate()?;
    let public = key.public();
    let mut pub_path = args.out.clone().into_os_string();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    for (path, bytes, mode) in [
        (&args.out, key.to_pem(), 0o600),
        (&pub_path, public.to_pem(), 0o644),
    ] {
        if let Err(e) = write_new(path, bytes.as_bytes(), mode, args.force) {
            let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
                " (give --force to replace it)"
            } else {
                ""
            };
            return fail(format_args!("cannot write `{}`: {e}{hint}", path.display()));
        }
    }
    if args.json {
        outln!(
            "{}",
            json!({"key_id": public.id(), "private_key": args.out.display().to_string(), "public_key": pub_path.display().to_string()})
        );
    } else {
        outln!(
            "wrote {} (private, mode 0600) and {} (public): key {}",
            args.out.display(),
            pub_path.display(),
            public.id()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read_key(path: &Path) -> Result<SigningKey, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let text = read_limited(path, 64 * 1024)
        .map_err(|e| format!("cannot read the key `{}`: {e}", path.display()))?;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: the signing key `{}` can be read by others (chmod 600 it)",
            path.display()
        );
    }
    SigningKey::from_pem(&text).map_err(|e| format!("`{}`: {e}", path.display()))
}

/// Read trusted public keys.
pub fn read_trust(paths: &[PathBuf]) -> Result<Vec<PublicKey>, String> {
    paths
        .iter()
        .map(|p| {
            let text = read_limited(p, 64 * 1024)
                .map_err(|e| format!("cannot read the trusted key `{}`: {e}", p.display()))?;
            PublicKey::from_pem(&text).map_err(|e| format!("`{}`: {e}", p.display()))
        })
        .collect()
}

/// `path` with `.` and `..` resolved by name (the file need not exist).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The folder every one of `paths` lies in.
fn common_folder(paths: &[PathBuf]) -> PathBuf {
    let mut base = paths
        .first()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for p in paths {
        while !p.starts_with(&base) {
            if !base.pop() {
                break;
            }
        }
    }
    base
}

fn name_in_bundle(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The inventory files a policy names, as paths beside it.
fn referenced_inventories(policy: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = cordon_policy::load::read_text(policy).map_err(|d| anyhow::anyhow!("{d}"))?;
    let name = policy.display().to_string();
    let doc = cordon_yaml::parse(name.as_str(), &text).map_err(|d| anyhow::anyhow!("{d}"))?;
    let mut diags = cordon_yaml::Diagnostics::new(name.as_str());
    let raw = cordon_policy::raw::decode_policy(&doc.root, &mut diags);
    let folder = policy.parent().unwrap_or(Path::new(""));
    Ok(raw
        .inventory_files
        .iter()
        .map(|f| lexical(&folder.join(&f.value)))
        .collect())
}

/// Whether a file is a responses document (`kind: Responses`).
fn is_responses(path: &Path) -> bool {
    read_limited(path, 1024 * 1024).is_ok_and(|text| {
        text.lines().any(|l| {
            let l = l.trim();
            l == "kind: Responses" || l.replace(' ', "").contains("\"kind\":\"Responses\"")
        })
    })
}

/// Read a file within the bundle limit.
fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes =
        bundle::read_file(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        anyhow::bail!(
            "`{}` is larger than the bundle limit of {MAX_BUNDLE_BYTES} bytes",
            path.display()
        );
    }
    Ok(bytes)
}

/// `cordon policy bundle`
pub fn bundle_cmd(args: &BundleArgs) -> anyhow::Result<ExitCode> {
    let key = match read_key(&args.key) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let Some((policy_path, rest)) = args.files.split_first() else {
        return fail("no policy given");
    };
    let mut inventories = args.inventory.inventory.clone();
    let mut responses = args.responses.clone();
    for f in rest {
        if is_responses(f) {
            if responses.replace(f.clone()).is_some() {
                return fail("more than one responses document given");
            }
        } else {
            inventories.push(f.clone());
        }
    }
    // An invalid policy is never signed.
    let options = cordon_policy::LoadOptions {
        inventory: inventories.clone(),
    };
    if let Err(e) = load_policy(policy_path, &options) {
        print_policy_errors(&e);
        return fail(format_args!(
            "`{}` is invalid; nothing was signed",
            policy_path.display()
        ));
    }
    let policy_path = lexical(&std::path::absolute(policy_path)?);
    let referenced = referenced_inventories(&policy_path)?;
    let mut tree = vec![policy_path.clone()];
    tree.extend(referenced.iter().cloned());
    let base = common_folder(&tree);
    let mut contents = Contents {
        policy: name_in_bundle(&policy_path, &base),
        ..Contents::default()
    };
    for path in &tree {
        contents
            .files
            .insert(name_in_bundle(path, &base), read_bytes(path)?);
    }
    let mut add = |folder: &str, path: &Path| -> anyhow::Result<String> {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_string());
        let mut name = format!("{folder}/{file}");
        let mut n = 1;
        while contents.files.contains_key(&name) {
            n += 1;
            name = format!("{folder}/{n}-{file}");
        }
        contents.files.insert(name.clone(), read_bytes(path)?);
        Ok(name)
    };
    let mut extra = Vec::new();
    for path in &inventories {
        extra.push(add(".inventory", path)?);
    }
    let responses_name = responses
        .as_deref()
        .map(|p| add(".responses", p))
        .transpose()?;
    contents.inventory = extra;
    contents.responses = responses_name;
    let now = cordon_flow::time::now_ms();
    let version = args
        .version
        .unwrap_or_else(|| u64::try_from(now / 1000).unwrap_or(0));
    let created = cordon_flow::time::format_rfc3339(now);
    let bytes = bundle::build(&key, version, &created, &contents)?;
    // Check what was written as a receiver will.
    let opened = bundle::open(&bytes, &[key.public()])?;
    opened
        .policy()
        .map_err(|e| anyhow::anyhow!("the bundled policy does not load:\n{e}"))?;
    let tmp = args.out.with_extension("bundle-tmp");
    std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("cannot write `{}`", args.out.display()))?;
    let manifest = opened.manifest();
    if args.json {
        outln!(
            "{}",
            json!({"file": args.out.display().to_string(), "bytes": bytes.len(), "sha256": opened.digest(), "manifest": manifest})
        );
    } else {
        outln!(
            "wrote {}: version {}, signed by {}, {} files ({} bytes), sha256 {}",
            args.out.display(),
            manifest.version,
            manifest.key,
            manifest.files.len(),
            bytes.len(),
            opened.digest()
        );
        for f in &manifest.files {
            let role = if f.name == manifest.policy {
                "policy"
            } else if manifest.responses.as_deref() == Some(f.name.as_str()) {
                "responses"
            } else {
                "inventory"
            };
            outln!("  {:<10} {} ({} bytes)", role, f.name, f.bytes);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cordon policy verify-bundle`
pub fn verify(args: &VerifyBundleArgs) -> anyhow::Result<ExitCode> {
    let trust = match read_trust(&args.trust) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let refuse = |reason: String| -> anyhow::Result<ExitCode> {
        if args.json {
            outln!(
                "{}",
                json!({"file": args.file.display().to_string(), "valid": false, "reason": reason})
            );
            Ok(ExitCode::from(EXIT_CONFIG))
        } else {
            fail(format_args!("{}: refused: {reason}", args.file.display()))
        }
    };
    let bytes = match read_bytes(&args.file) {
        Ok(b) => b,
        Err(e) => return refuse(format!("{e:#}")),
    };
    let opened = match bundle::open(&bytes, &trust) {
        Ok(b) => b,
        Err(e) => return refuse(e.to_string()),
    };
    if let Some(floor) = args.newer_than
        && opened.version() <= floor
    {
        return refuse(format!(
            "version {} is not above version {floor} (rollback)",
            opened.version()
        ));
    }
    let policy = match opened.policy() {
        Ok(p) => p,
        Err(e) => {
            if !args.json {
                print_policy_errors(&e);
            }
            return refuse("the policy in it is invalid".to_string());
        }
    };
    let manifest = opened.manifest();
    if args.json {
        outln!(
            "{}",
            json!({
                "file": args.file.display().to_string(), "valid": true, "sha256": opened.digest(),
                "signer": opened.signer().id(), "policy_name": policy.name, "manifest": manifest,
            })
        );
    } else {
        outln!(
            "{}: ok: version {} of policy `{}`, made {}, signed by {} (trusted), {} files intact",
            args.file.display(),
            manifest.version,
            policy.name,
            manifest.created,
            opened.signer().id(),
            manifest.files.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Where an agent or gateway takes bundles from; `None` with a policy
/// file. An error says what is wrong with the arguments.
pub fn feed(args: &PolicyFeedArgs) -> Result<Option<(BundleOrigin, Option<PullOptions>)>, String> {
    if args.policy_url.is_none() && args.policy_bundle.is_none() {
        if !args.trust.is_empty() {
            return Err("--trust needs --policy-url or --policy-bundle".to_string());
        }
        return Ok(None);
    }
    let trust = read_trust(&args.trust)?;
    if trust.is_empty() {
        return Err("--trust PUBKEY is required with --policy-url or --policy-bundle".to_string());
    }
    let pull = match &args.policy_url {
        None => None,
        Some(text) => {
            let url = url::Url::parse(text).map_err(|e| format!("--policy-url `{text}`: {e}"))?;
            let token = args.policy_token_file.as_deref().map(secret).transpose()?;
            if token.is_some() {
                warn_plain_credentials(&url);
            }
            Some(PullOptions {
                token,
                ca_file: args.policy_ca_file.clone(),
                every: Duration::from_secs(args.policy_poll),
                ..PullOptions::new(url)
            })
        }
    };
    let location = match (&args.policy_url, &args.policy_bundle) {
        (Some(url), _) => url.clone(),
        (None, Some(file)) => file.display().to_string(),
        (None, None) => String::new(),
    };
    Ok(Some((
        BundleOrigin {
            file: args.policy_bundle.clone(),
            location,
            trust,
            cache: args.policy_cache.clone(),
        },
        pull,
    )))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    #[test]
    fn files_beside_and_above_the_policy_share_one_folder() {
        let policy = PathBuf::from("/etc/cordon/policies/prod.yaml");
        let inventory = super::lexical(Path::new("/etc/cordon/policies/../inventory/pods.json"));
        let base = super::common_folder(&[policy.clone(), inventory.clone()]);
        assert_eq!(base, PathBuf::from("/etc/cordon"));
        assert_eq!(super::name_in_bundle(&policy, &base), "policies/prod.yaml");
        assert_eq!(
            super::name_in_bundle(&inventory, &base),
            "inventory/pods.json"
        );
    }
}
