//! The responses file on disk: read it, change it under a lock so two
//! writers never lose each other's update, and notice when it changes.
//!
//! A change is read-modify-write under an exclusive lock on a sibling
//! `.NAME.lock` file, written to a temporary file and renamed over the
//! document: readers see the old document or the new one, never half.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::document::{DocumentError, MAX_BYTES, Responses};

/// Why the responses file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading or writing failed.
    #[error("`{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The document is invalid.
    #[error("{0}")]
    Document(#[from] DocumentError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read the document at `path`; a missing file is an empty document (no
/// responses).
///
/// # Errors
/// The file cannot be read or is invalid.
pub fn read(path: &Path) -> Result<Responses, FileError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Responses::default()),
        Err(e) => return Err(io(path)(e)),
    };
    if bytes.len() > MAX_BYTES {
        return Err(DocumentError(format!(
            "{}: {} bytes is more than the {MAX_BYTES} a responses document may have",
            path.display(),
            bytes.len()
        ))
        .into());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        DocumentError(format!(
            "{}: not UTF-8 at byte {}",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(Responses::parse(&path.display().to_string(), &text)?)
}

fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "responses".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.lock"))
}

/// Change the document at `path` with `change` under an exclusive lock and
/// write it back with the generation one higher (when `change` returns
/// `Ok` and changed something). Returns what `change` returned.
///
/// # Errors
/// The lock, the read or the write failed, or `change` refused.
pub fn update<T, E>(
    path: &Path,
    change: impl FnOnce(&mut Responses) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<FileError>,
{
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(path))
        .map_err(io(path))?;
    lock.lock().map_err(io(path))?;
    let mut doc = read(path)?;
    let before = doc.clone();
    let out = change(&mut doc)?;
    if doc != before {
        doc.generation = before.generation.saturating_add(1);
        write(path, &doc)?;
    }
    drop(lock);
    Ok(out)
}

/// Write `doc` to `path` atomically (temporary file, fsync, rename).
///
/// # Errors
/// The write failed.
pub fn write(path: &Path, doc: &Responses) -> Result<(), FileError> {
    let json = path.extension().is_some_and(|e| e == "json");
    let text = doc.render(json);
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map_or_else(|| "responses".into(), |n| n.to_string_lossy().into_owned())
    ));
    let mut f = File::create(&tmp).map_err(io(path))?;
    f.write_all(text.as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

/// What identifies one version of the file: modification time, size and
/// inode (a rename over it changes the inode even within one mtime tick).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp(Option<(SystemTime, u64, u64)>);

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp(std::fs::metadata(path).ok().map(|m| {
        (
            m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            m.len(),
            m.ino(),
        )
    }))
}

/// Follows the responses file for an enforcement point: says when it
/// changed (including appearing and disappearing) or a reload was asked
/// for, and keeps the last good document when a new one is invalid.
pub struct Source {
    path: PathBuf,
    seen: Stamp,
    reload: std::sync::Arc<std::sync::atomic::AtomicBool>,
    good: Responses,
}

impl Source {
    /// A source for `path`; nothing is read yet.
    #[must_use]
    pub fn new(path: &Path) -> Source {
        Source {
            path: path.to_path_buf(),
            seen: Stamp(Some((SystemTime::UNIX_EPOCH, u64::MAX, 0))),
            reload: std::sync::Arc::default(),
            good: Responses::default(),
        }
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Set to ask for a reload (SIGHUP).
    #[must_use]
    pub fn reload_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.reload.clone()
    }

    /// Whether the file differs from what was last loaded, or a reload
    /// was asked for.
    #[must_use]
    pub fn changed(&self) -> bool {
        self.reload.load(std::sync::atomic::Ordering::Relaxed) || stamp(&self.path) != self.seen
    }

    /// Read the file. On success the document becomes the last good one;
    /// on error the last good one stays and the error says why.
    ///
    /// # Errors
    /// The file cannot be read or is invalid.
    pub fn load(&mut self) -> Result<&Responses, FileError> {
        self.reload
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let before = stamp(&self.path);
        self.seen = before;
        let doc = read(&self.path)?;
        self.good = doc;
        Ok(&self.good)
    }

    /// The last good document.
    #[must_use]
    pub fn good(&self) -> &Responses {
        &self.good
    }
}
