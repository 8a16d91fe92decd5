//! Where a running component's policy comes from, and when to load it
//! again: the policy file, watched by modification time and size, and a
//! reload flag a signal handler (SIGHUP) or a server push can set. Every
//! successful load gets the next generation number, so a daemon can say
//! which policy a decision was made under.
//!
//! The gateway and the agent both take their policy from a
//! [`PolicySource`]; a pull from a server is another way to set the flag.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use crate::load::{LoadOptions, PolicyError, load_policy};
use crate::model::Policy;

/// A file's modification time and size: a change to either is a change.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// A policy file and when it changed.
#[derive(Debug)]
pub struct PolicySource {
    path: PathBuf,
    options: LoadOptions,
    seen: Stamp,
    reload: Arc<AtomicBool>,
    generation: u64,
}

impl PolicySource {
    /// The policy in `path`, with `options` for its inventory. The file's
    /// stamp is taken now, before anything is loaded, so a change written
    /// while the first load runs is seen by the next [`changed`](Self::changed).
    pub fn new(path: impl Into<PathBuf>, options: LoadOptions) -> Self {
        let path = path.into();
        PolicySource {
            seen: stamp(&path),
            path,
            options,
            reload: Arc::new(AtomicBool::new(false)),
            generation: 0,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
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

    /// Whether the file changed since it was last seen, or a reload was
    /// asked for; either way it is then taken as seen.
    pub fn changed(&mut self) -> bool {
        let now = stamp(&self.path);
        let asked = self.reload.swap(false, Ordering::Relaxed);
        if now == self.seen && !asked {
            return false;
        }
        self.seen = now;
        true
    }

    /// Load the policy as the file is now; a valid one gets the next
    /// generation.
    ///
    /// # Errors
    /// The policy's diagnostics; the generation does not move.
    pub fn load(&mut self) -> Result<(Policy, u64), PolicyError> {
        let policy = load_policy(&self.path, &self.options)?;
        self.generation += 1;
        Ok((policy, self.generation))
    }

    /// The generation of the last valid load (0 before any).
    pub fn generation(&self) -> u64 {
        self.generation
    }
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
}
