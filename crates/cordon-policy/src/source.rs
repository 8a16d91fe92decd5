//! Where a running component's policy comes from, and when to load it
//! again: a policy file, or signed bundles (a bundle file, or bundles a
//! puller fetched from a server), each watched, plus a reload flag a
//! signal handler (SIGHUP) or a server push can set. Every successful load
//! gets the next generation number, so a daemon can say which policy a
//! decision was made under.
//!
//! The gateway and the agent both take their policy from a
//! [`PolicySource`]. With bundles, nothing is used before its signature
//! verifies, a bundle older than the one in force (or of the same version
//! with other contents) is refused, and the last good bundle stays in force
//! through any refusal; kept in a cache file, it also survives a restart,
//! so a replayed old bundle is refused then too.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use cordon_yaml::Diagnostic;

use crate::bundle::{self, Bundle, PublicKey};
use crate::load::{LoadOptions, PolicyError, load_policy};
use crate::model::Policy;

/// A file's modification time and size: a change to either is a change.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Where signed policy bundles come from and who may sign them.
#[derive(Clone, Debug)]
pub struct BundleOrigin {
    /// A bundle file to watch; `None` when bundles are offered by a
    /// puller ([`PolicySource::offer`]).
    pub file: Option<PathBuf>,
    /// Where the bundles come from, for messages: the file or the URL.
    pub location: String,
    /// The keys a bundle must be signed with (one of them).
    pub trust: Vec<PublicKey>,
    /// Where the last good bundle is kept: read at start (and enforced
    /// until a newer one comes), rewritten on each new one.
    pub cache: Option<PathBuf>,
}

/// Where a policy comes from.
#[derive(Clone, Debug)]
pub enum Origin {
    /// A policy file, with the inventory the load options name.
    File(PathBuf),
    /// Signed bundles.
    Bundle(BundleOrigin),
}

impl Origin {
    /// The bundles when given, else the policy file: how a daemon's
    /// configuration names its policy.
    pub fn of(policy: &Path, bundle: Option<&BundleOrigin>) -> Origin {
        match bundle {
            Some(b) => Origin::Bundle(b.clone()),
            None => Origin::File(policy.to_path_buf()),
        }
    }

    /// The file or the URL, for messages.
    pub fn location(&self) -> String {
        match self {
            Origin::File(path) => path.display().to_string(),
            Origin::Bundle(b) => b.location.clone(),
        }
    }
}

/// The bundle side of a source.
#[derive(Debug)]
struct Bundles {
    origin: BundleOrigin,
    /// A bundle waiting to be verified and loaded.
    offered: Option<Offer>,
    /// The bundle in force and its bytes.
    in_force: Option<(Bundle, Arc<[u8]>)>,
}

/// A bundle offered: its bytes (or why the file could not be read), and
/// whether it came from the cache (and so need not be written back).
#[derive(Debug)]
struct Offer {
    bytes: Result<Vec<u8>, String>,
    cached: bool,
}

/// A policy's origin and when it changed.
#[derive(Debug)]
pub struct PolicySource {
    origin: Origin,
    options: LoadOptions,
    seen: Stamp,
    reload: Arc<AtomicBool>,
    generation: u64,
    bundles: Option<Bundles>,
}

impl PolicySource {
    /// The policy in `path`, with `options` for its inventory. The file's
    /// stamp is taken now, before anything is loaded, so a change written
    /// while the first load runs is seen by the next [`changed`](Self::changed).
    pub fn new(path: impl Into<PathBuf>, options: LoadOptions) -> Self {
        Self::from_origin(Origin::File(path.into()), options)
    }

    /// A source of either kind. With bundles and a cache file that holds
    /// a bundle signed by a trusted key, that bundle is in force from the
    /// start: the first [`load`](Self::load) gives its policy unless a
    /// newer one was offered, and nothing older is taken after it.
    pub fn from_origin(origin: Origin, options: LoadOptions) -> Self {
        let watched = match &origin {
            Origin::File(path) => Some(path.clone()),
            Origin::Bundle(b) => b.file.clone(),
        };
        let bundles = match &origin {
            Origin::File(_) => None,
            Origin::Bundle(b) => Some(Bundles::start(b)),
        };
        PolicySource {
            seen: watched.as_deref().and_then(stamp),
            origin,
            options,
            reload: Arc::new(AtomicBool::new(false)),
            generation: 0,
            bundles,
        }
    }

    /// Where the policy comes from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The file or the URL, for messages.
    pub fn location(&self) -> String {
        self.origin.location()
    }

    /// How the inventory is loaded.
    pub fn options(&self) -> &LoadOptions {
        &self.options
    }

    /// A flag that asks for a reload when set (register it for SIGHUP).
    pub fn reload_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.reload)
    }

    /// Ask for a reload.
    pub fn request_reload(&self) {
        self.reload.store(true, Ordering::Relaxed);
    }

    /// Offer a bundle fetched from elsewhere; the next
    /// [`changed`](Self::changed) sees it unless it is the bundle in force.
    /// Ignored by a policy-file source.
    pub fn offer(&mut self, bytes: Vec<u8>) {
        if let Some(b) = &mut self.bundles {
            b.offered = Some(Offer {
                bytes: Ok(bytes),
                cached: false,
            });
        }
    }

    /// The bundle in force, with bundles.
    pub fn bundle(&self) -> Option<&Bundle> {
        self.bundles
            .as_ref()
            .and_then(|b| b.in_force.as_ref())
            .map(|(bundle, _)| bundle)
    }

    /// Whether the policy changed since it was last seen (the file, a
    /// bundle offered that is not the one in force), or a reload was asked
    /// for; either way it is then taken as seen.
    pub fn changed(&mut self) -> bool {
        let asked = self.reload.swap(false, Ordering::Relaxed);
        let watched = match &self.origin {
            Origin::File(path) => Some(path.clone()),
            Origin::Bundle(b) => b.file.clone(),
        };
        let mut file_changed = false;
        if let Some(path) = watched {
            let now = stamp(&path);
            if now != self.seen {
                self.seen = now;
                file_changed = true;
            }
        }
        let Some(b) = &mut self.bundles else {
            return asked || file_changed;
        };
        if file_changed && let Some(path) = &b.origin.file {
            // A file that cannot be read is offered as its error: the load
            // then refuses it with the reason.
            b.offered = Some(Offer {
                bytes: bundle::read_file(path)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display())),
                cached: false,
            });
        }
        if let (
            Some(Offer {
                bytes: Ok(bytes), ..
            }),
            Some((_, current)),
        ) = (&b.offered, &b.in_force)
            && bytes.as_slice() == &**current
        {
            b.offered = None;
        }
        if asked && b.offered.is_none() {
            // SIGHUP applies the bundle in force again.
            b.offered = b.in_force.as_ref().map(|(_, bytes)| Offer {
                bytes: Ok(bytes.to_vec()),
                cached: true,
            });
        }
        b.offered.is_some()
    }

    /// Load the policy as it is now; a valid one gets the next generation.
    /// With bundles, the offered bundle is verified, compared with the one
    /// in force and, when newer, put in force (and cached).
    ///
    /// # Errors
    /// The policy's diagnostics, or why the bundle is refused; the
    /// generation does not move and the bundle in force stays.
    pub fn load(&mut self) -> Result<(Policy, u64), PolicyError> {
        let policy = match (&self.origin, &mut self.bundles) {
            (Origin::File(path), _) => load_policy(path, &self.options)?,
            (Origin::Bundle(_), Some(b)) => b.load()?,
            (Origin::Bundle(o), None) => {
                return Err(refusal(&o.location, "no bundle source".to_string()));
            }
        };
        self.generation += 1;
        Ok((policy, self.generation))
    }

    /// The generation of the last valid load (0 before any).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl Bundles {
    /// The cached bundle (verified again: the trusted keys may have
    /// changed) is in force, and a watched file's bundle is offered.
    fn start(origin: &BundleOrigin) -> Bundles {
        let in_force = origin
            .cache
            .as_deref()
            .and_then(|c| bundle::read_file(c).ok())
            .and_then(|bytes| {
                let bundle = bundle::open(&bytes, &origin.trust).ok()?;
                Some((bundle, Arc::from(bytes)))
            });
        let offered = origin.file.as_deref().map(|path| Offer {
            bytes: bundle::read_file(path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display())),
            cached: false,
        });
        Bundles {
            origin: origin.clone(),
            offered,
            in_force,
        }
    }

    fn load(&mut self) -> Result<Policy, PolicyError> {
        let location = self.origin.location.clone();
        let Some(Offer { bytes, cached }) = self.offered.take() else {
            return match &self.in_force {
                Some((bundle, _)) => bundle.policy(),
                None => Err(refusal(&location, "no bundle received yet".to_string())),
            };
        };
        let from = if cached {
            format!("{location} (cached copy)")
        } else {
            location
        };
        let bytes = bytes.map_err(|e| refusal(&from, e))?;
        let bundle = bundle::open(&bytes, &self.origin.trust)
            .map_err(|e| refusal(&from, format!("bundle refused: {e}")))?;
        if let Some((current, _)) = &self.in_force {
            let same = bundle.manifest_digest() == current.manifest_digest();
            if bundle.version() < current.version() {
                return Err(refusal(
                    &from,
                    format!(
                        "bundle refused: version {} is older than version {} in force (rollback)",
                        bundle.version(),
                        current.version()
                    ),
                ));
            }
            if bundle.version() == current.version() && !same {
                return Err(refusal(
                    &from,
                    format!(
                        "bundle refused: version {} is in force with other contents (a new bundle needs a higher version)",
                        bundle.version()
                    ),
                ));
            }
        }
        let policy = bundle.policy()?;
        if !cached && let Some(cache) = &self.origin.cache {
            write_private(cache, &bytes).map_err(|e| {
                refusal(
                    &cache.display().to_string(),
                    format!("cannot keep the bundle as the last good one: {e}"),
                )
            })?;
        }
        self.in_force = Some((bundle, bytes.into()));
        Ok(policy)
    }
}

fn refusal(location: &str, message: String) -> PolicyError {
    PolicyError {
        diagnostics: vec![Diagnostic::error(&location.into(), None, message)],
    }
}

/// Write `bytes` to `path` whole or not at all, readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::PolicySource;

    const POLICY: &str = "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  groups:\n    a: {cidrs: [10.0.0.0/8]}\n";

    #[test]
    fn a_change_or_a_request_is_seen_once_and_valid_loads_count() {
        let dir = std::env::temp_dir().join(format!("cordon-source-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.yaml");
        std::fs::write(&path, POLICY).unwrap();
        let mut source = PolicySource::new(&path, Default::default());
        assert!(!source.changed());
        assert_eq!(source.load().unwrap().1, 1);
        source.request_reload();
        assert!(source.changed());
        assert!(!source.changed(), "seen once");
        // A change of size is a change even within the clock's resolution.
        std::fs::write(&path, format!("{POLICY}  rules: []\n")).unwrap();
        assert!(source.changed());
        std::fs::write(&path, "not: [a policy").unwrap();
        assert!(source.changed());
        assert!(source.load().is_err());
        assert_eq!(source.generation(), 1, "an invalid policy is no generation");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn signed(key: &crate::bundle::SigningKey, version: u64, name: &str) -> Vec<u8> {
        let mut contents = crate::bundle::Contents {
            policy: "p.yaml".to_string(),
            ..Default::default()
        };
        contents.files.insert(
            "p.yaml".to_string(),
            POLICY
                .replace("{name: p}", &format!("{{name: {name}}}"))
                .into_bytes(),
        );
        crate::bundle::build(key, version, "2026-12-07T00:00:00Z", &contents).unwrap()
    }

    fn pulled(key: &crate::bundle::SigningKey, cache: Option<std::path::PathBuf>) -> PolicySource {
        PolicySource::from_origin(
            super::Origin::Bundle(super::BundleOrigin {
                file: None,
                location: "https://cordon.example/api/v1/policy/bundle".to_string(),
                trust: vec![key.public()],
                cache,
            }),
            Default::default(),
        )
    }

    #[test]
    fn bundles_move_forward_only_and_a_refusal_keeps_the_last_good_one() {
        let key = crate::bundle::SigningKey::generate().unwrap();
        let mut source = pulled(&key, None);
        assert!(!source.changed(), "nothing offered yet");
        source.offer(signed(&key, 2, "two"));
        assert!(source.changed());
        let (policy, generation) = source.load().unwrap();
        assert_eq!((policy.name.as_str(), generation), ("two", 1));

        // The same bytes again (a server without ETags) are no change.
        source.offer(signed(&key, 2, "two"));
        assert!(!source.changed());

        for (bytes, why) in [
            (signed(&key, 1, "one"), "older than version 2"),
            (signed(&key, 2, "other"), "in force with other contents"),
            (
                signed(&crate::bundle::SigningKey::generate().unwrap(), 3, "x"),
                "does not verify",
            ),
            (b"not a bundle".to_vec(), "not a policy bundle"),
        ] {
            source.offer(bytes);
            assert!(source.changed());
            let e = source.load().unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
            assert_eq!(source.bundle().unwrap().version(), 2, "the last good stays");
            assert_eq!(source.generation(), 1);
        }
        source.offer(signed(&key, 3, "three"));
        assert!(source.changed());
        assert_eq!(source.load().unwrap().0.name, "three");
        // SIGHUP applies the bundle in force again.
        source.request_reload();
        assert!(source.changed());
        assert_eq!(source.load().unwrap().1, 3);
    }

    #[test]
    fn the_cached_bundle_survives_a_restart_and_refuses_a_replayed_older_one() {
        let dir = std::env::temp_dir().join(format!("cordon-bundle-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cache = dir.join("last-good.bundle");
        let key = crate::bundle::SigningKey::generate().unwrap();
        let mut source = pulled(&key, Some(cache.clone()));
        source.offer(signed(&key, 5, "five"));
        assert!(source.changed());
        source.load().unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Restarted: the cache is in force before the server answers.
        let mut source = pulled(&key, Some(cache.clone()));
        assert_eq!(source.bundle().unwrap().version(), 5);
        assert_eq!(source.load().unwrap().0.name, "five");
        source.offer(signed(&key, 4, "four"));
        assert!(source.changed());
        assert!(source.load().unwrap_err().to_string().contains("rollback"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_watched_bundle_file_is_read_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("cordon-bundle-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.bundle");
        let key = crate::bundle::SigningKey::generate().unwrap();
        std::fs::write(&file, signed(&key, 1, "one")).unwrap();
        let mut source = PolicySource::from_origin(
            super::Origin::Bundle(super::BundleOrigin {
                file: Some(file.clone()),
                location: file.display().to_string(),
                trust: vec![key.public()],
                cache: None,
            }),
            Default::default(),
        );
        // The first load reads the file as it is.
        assert_eq!(source.load().unwrap().0.name, "one");
        assert!(!source.changed());
        std::fs::write(&file, signed(&key, 2, "two-longer")).unwrap();
        assert!(source.changed());
        assert_eq!(source.load().unwrap().0.name, "two-longer");
        std::fs::remove_file(&file).unwrap();
        assert!(source.changed());
        assert!(
            source
                .load()
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
