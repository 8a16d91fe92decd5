//! The bundle's container: a gzip-compressed POSIX tar archive (so
//! `tar tzf` lists it), written reproducibly (owner 0, mode 0644, time 0)
//! and read within limits before anything in it is trusted.

use std::collections::BTreeMap;
use std::io::Read;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::{BundleError, MAX_MEMBERS, MAX_UNPACKED_BYTES, check_name};

/// Write `members` (name, bytes), in order, as a tar.gz.
pub(super) fn write(members: &[(&str, &[u8])]) -> Result<Vec<u8>, BundleError> {
    let gz = GzEncoder::new(Vec::new(), Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (name, data) in members {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, name, *data)
            .map_err(|e| BundleError::Archive(format!("cannot add `{name}`: {e}")))?;
    }
    tar.into_inner()
        .and_then(GzEncoder::finish)
        .map_err(|e| BundleError::Archive(e.to_string()))
}

/// Counts what is read through it and stops at the limit.
struct Bounded<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > MAX_UNPACKED_BYTES {
            return Err(std::io::Error::other(format!(
                "unpacks to more than the limit of {MAX_UNPACKED_BYTES} bytes"
            )));
        }
        Ok(n)
    }
}

/// Read every member of a tar.gz: regular files only, each named once
/// with a clean relative name, at most [`MAX_MEMBERS`] of them and
/// [`MAX_UNPACKED_BYTES`] in all.
pub(super) fn read(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let corrupt = |e: std::io::Error| {
        BundleError::Archive(if e.kind() == std::io::ErrorKind::UnexpectedEof {
            "truncated (the archive ends early)".to_string()
        } else {
            e.to_string()
        })
    };
    let mut archive = tar::Archive::new(Bounded {
        inner: GzDecoder::new(bytes),
        read: 0,
    });
    let mut members = BTreeMap::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| BundleError::Archive("a member's name is not UTF-8".to_string()))?;
        let kind = entry.header().entry_type();
        // A bundle packed again by `tar czf B -C DIR .` names its members
        // `./x` and lists its folders: folders carry nothing and are
        // passed over; anything else that is not a file is refused.
        let name = raw.strip_prefix("./").unwrap_or(&raw).to_string();
        if kind.is_dir() || matches!(kind, tar::EntryType::XGlobalHeader) || name.is_empty() {
            continue;
        }
        if !kind.is_file() {
            return Err(BundleError::Member {
                name,
                problem: "is not a regular file (links, folders and devices are refused)"
                    .to_string(),
            });
        }
        check_name(&name)?;
        if members.len() >= MAX_MEMBERS {
            return Err(BundleError::Archive(format!(
                "more than {MAX_MEMBERS} members"
            )));
        }
        let size = entry.size();
        if size > MAX_UNPACKED_BYTES {
            return Err(BundleError::Member {
                name,
                problem: format!("is larger than the limit of {MAX_UNPACKED_BYTES} bytes"),
            });
        }
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
        entry.read_to_end(&mut data).map_err(corrupt)?;
        if members.insert(name.clone(), data).is_some() {
            return Err(BundleError::Member {
                name,
                problem: "appears twice".to_string(),
            });
        }
    }
    // The gzip stream must end where the archive says it ends: a bundle
    // cut short inside its trailing blocks is still a cut bundle.
    let mut rest = Vec::new();
    archive
        .into_inner()
        .read_to_end(&mut rest)
        .map_err(corrupt)?;
    if members.is_empty() {
        return Err(BundleError::Archive("the archive is empty".to_string()));
    }
    Ok(members)
}
