//! `manifest.json`: every file the lake holds, and how far each store's
//! flows are in it.
//!
//! Two writers put flows in a lake: `cordon lake export` writes a day
//! whole (`cordon-4001-DAY.zstd.parquet`), and the continuous sink writes
//! the blocks a store stored since its last flush, a file per day they
//! touch (`cordon-4001-DAY-STORE-FROM-TO.zstd.parquet`). They never hold
//! the same flow twice because the manifest keeps, per store, the last
//! block the sink wrote (`through`) and, per day exported, the last block
//! that export read (`days`): the sink leaves out of a day what blocks up
//! to that day's mark hold, and an export replaces the day's sink files it
//! covers. Writers of a folder lake take `.cordon-lake.lock` around their
//! work, so an export and a sink do not interleave.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::s3::S3Target;
use crate::{LakeError, Location, io};

/// One file of the lake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LakeFile {
    /// Its path under the lake's root, `/`-separated.
    pub path: String,
    /// The OCSF class of its rows.
    pub class_uid: u32,
    /// The day it holds (`YYYYMMDD`).
    pub event_day: String,
    /// Rows.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// The earliest and latest start times in it (ms).
    pub first_ms: i64,
    /// See `first_ms`.
    pub last_ms: i64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// The store whose flows it holds (flow files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// The store's blocks `[after, through]` a sink file holds (`None`: a
    /// whole day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<[i64; 2]>,
}

/// How far one store's flows are in the lake.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreMarks {
    /// The last block the continuous sink wrote.
    #[serde(default)]
    pub through: i64,
    /// Per day exported whole, the last block that export read.
    #[serde(default)]
    pub days: BTreeMap<String, i64>,
}

/// `manifest.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `cordon-lake/1`.
    pub format: String,
    /// The files, by path.
    pub files: Vec<LakeFile>,
    /// Per store id, how far its flows are in the lake.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stores: BTreeMap<String, StoreMarks>,
}

/// A change to the manifest: files written, and what they supersede.
#[derive(Clone, Debug, Default)]
pub struct Edit {
    /// The files written (each replaces a file of the same path).
    pub written: Vec<LakeFile>,
    /// The store the flows came from.
    pub store: Option<String>,
    /// Days exported whole from the store's blocks up to this id: their
    /// sink files up to it are superseded.
    pub exported: Option<(Vec<String>, i64)>,
    /// The sink wrote the store's blocks up to this id.
    pub sink_through: Option<i64>,
}

impl Edit {
    /// Apply to `manifest`; returns the paths of the files superseded.
    pub fn apply(&self, manifest: &mut Manifest) -> Vec<String> {
        manifest.format = "cordon-lake/1".to_string();
        let mut removed = Vec::new();
        if let (Some(store), Some((days, through))) = (&self.store, &self.exported) {
            let superseded = |f: &LakeFile| {
                f.class_uid == 4001
                    && f.store.as_ref() == Some(store)
                    && days.contains(&f.event_day)
                    && f.blocks.is_some_and(|[_, to]| to <= *through)
            };
            manifest.files.retain(|f| {
                let gone = superseded(f);
                if gone {
                    removed.push(f.path.clone());
                }
                !gone
            });
            let marks = manifest.stores.entry(store.clone()).or_default();
            for d in days {
                marks.days.insert(d.clone(), *through);
            }
        }
        if let (Some(store), Some(through)) = (&self.store, self.sink_through) {
            let marks = manifest.stores.entry(store.clone()).or_default();
            marks.through = marks.through.max(through);
        }
        let mut by_path: BTreeMap<String, LakeFile> = std::mem::take(&mut manifest.files)
            .into_iter()
            .map(|f| (f.path.clone(), f))
            .collect();
        for f in &self.written {
            by_path.insert(f.path.clone(), f.clone());
        }
        manifest.files = by_path.into_values().collect();
        removed.retain(|p| !self.written.iter().any(|w| &w.path == p));
        removed
    }
}

/// The lock a folder lake's writers hold while they write (released when
/// the file is dropped).
///
/// # Errors
/// The folder or the lock file cannot be created.
pub fn lock(dir: &Path) -> Result<File, LakeError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(".cordon-lake.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    file.lock().map_err(io(&path))?;
    Ok(file)
}

fn parse(location: &str, bytes: &[u8]) -> Result<Manifest, LakeError> {
    serde_json::from_slice(bytes).map_err(|e| LakeError::Parquet {
        path: format!("{location}/manifest.json"),
        message: e.to_string(),
    })
}

/// The runtime S3 requests are run on from blocking code.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, LakeError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LakeError::Options(format!("cannot start the runtime: {e}")))
}

/// The manifest of the lake at `location`; `None` when it has none.
///
/// # Errors
/// It cannot be read or fetched, or does not parse.
pub fn read_if_any(location: &Location) -> Result<Option<Manifest>, LakeError> {
    let bytes = match location {
        Location::Dir(dir) => {
            let path = dir.join("manifest.json");
            match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Location::S3(target) => match runtime()?.block_on(target.get("manifest.json"))? {
            Some(bytes) => bytes.to_vec(),
            None => return Ok(None),
        },
    };
    parse(&location.to_string(), &bytes).map(Some)
}

/// The manifest of the lake at `location`; an empty one when it has none.
///
/// # Errors
/// As [`read_if_any`].
pub fn read(location: &Location) -> Result<Manifest, LakeError> {
    Ok(read_if_any(location)?.unwrap_or_default())
}

/// Make `edit` part of the lake at `location`. For a folder its files are
/// already in place; for S3 they are put from `staging` first. Then the
/// manifest is merged and written, then the files it no longer lists are
/// deleted.
///
/// # Errors
/// A file cannot be read, written or put, or the manifest does not parse.
pub fn publish(location: &Location, staging: &Path, edit: &Edit) -> Result<(), LakeError> {
    match location {
        Location::Dir(dir) => {
            let mut manifest = read(location)?;
            let removed = edit.apply(&mut manifest);
            write_local(dir, &manifest)?;
            for p in removed {
                let path = dir.join(&p);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&path)(e)),
                }
            }
            Ok(())
        }
        Location::S3(target) => runtime()?.block_on(publish_s3(target, staging, edit)),
    }
}

async fn publish_s3(target: &S3Target, staging: &Path, edit: &Edit) -> Result<(), LakeError> {
    for f in &edit.written {
        target.put_file(&f.path, &staging.join(&f.path)).await?;
    }
    let mut manifest = match target.get("manifest.json").await? {
        Some(bytes) => parse(&format!("s3://{}/{}", target.bucket, target.prefix), &bytes)?,
        None => Manifest::default(),
    };
    let removed = edit.apply(&mut manifest);
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| LakeError::Parquet {
        path: "manifest.json".to_string(),
        message: e.to_string(),
    })?;
    target.put("manifest.json", text).await?;
    for p in removed {
        target.delete(&p).await?;
    }
    Ok(())
}

/// Write `manifest` into `dir`, beside and renamed into place.
fn write_local(dir: &Path, manifest: &Manifest) -> Result<(), LakeError> {
    let path = dir.join("manifest.json");
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!("manifest.json.tmp{}", std::process::id()));
    let text = serde_json::to_vec_pretty(manifest).map_err(|e| LakeError::Parquet {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))
}
