//! `GET /api/v1/policy/bundle`: the signed policy bundle agents and
//! gateways pull. The server holds no signing key and receivers verify;
//! given trusted keys, the server verifies too and publishes only a bundle
//! that passes (a refused one is logged, and the last good one stays
//! published). The file is read again when it changes, and the answer
//! carries its SHA-256 as a strong `ETag` so an unchanged bundle costs a
//! 304.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use cordon_policy::bundle::{MAX_BUNDLE_BYTES, PublicKey, sha256_hex};

use crate::auth::Role;
use crate::{ApiError, App};

/// The media type of a bundle.
pub const MEDIA_TYPE: &str = "application/vnd.cordon.policy-bundle+gzip";

/// The published bundle file and its last reading.
#[derive(Debug)]
pub struct Published {
    path: PathBuf,
    trust: Vec<PublicKey>,
    read: Mutex<Readings>,
}

/// The last good reading, and the stamp of a file last refused.
#[derive(Debug, Default)]
struct Readings {
    good: Option<Reading>,
    refused: Option<((SystemTime, u64), String)>,
}

#[derive(Clone, Debug)]
struct Reading {
    stamp: (SystemTime, u64),
    bytes: Arc<[u8]>,
    etag: String,
}

impl Published {
    /// Publish the bundle in `path`; with `trust`, only while it verifies
    /// with one of those keys.
    pub fn new(path: PathBuf, trust: Vec<PublicKey>) -> Published {
        Published {
            path,
            trust,
            read: Mutex::new(Readings::default()),
        }
    }

    /// The bundle's bytes and ETag as the file is now.
    fn current(&self) -> Result<Reading, String> {
        let stamp = stamp(&self.path)
            .ok_or_else(|| format!("the bundle `{}` cannot be read", self.path.display()))?;
        let mut state = self.read.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = state.good.as_ref().filter(|r| r.stamp == stamp) {
            return Ok(r.clone());
        }
        if let Some((_, why)) = state.refused.as_ref().filter(|(s, _)| *s == stamp) {
            return state.good.clone().ok_or_else(|| why.clone());
        }
        let bytes = cordon_policy::bundle::read_file(&self.path)
            .map_err(|e| format!("the bundle `{}` cannot be read: {e}", self.path.display()))?;
        if bytes.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(format!(
                "the bundle `{}` is larger than {MAX_BUNDLE_BYTES} bytes",
                self.path.display()
            ));
        }
        if !self.trust.is_empty()
            && let Err(e) = cordon_policy::bundle::open(&bytes, &self.trust)
        {
            let why = format!("the bundle `{}` is refused: {e}", self.path.display());
            tracing::error!("{why}; the last good bundle stays published");
            state.refused = Some((stamp, why.clone()));
            return state.good.clone().ok_or(why);
        }
        let reading = Reading {
            stamp,
            etag: format!("\"{}\"", sha256_hex(&bytes)),
            bytes: bytes.into(),
        };
        state.good = Some(reading.clone());
        Ok(reading)
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Whether an `If-None-Match` value names `etag` (or is `*`).
fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// `GET /api/v1/policy/bundle`
///
/// # Errors
/// 401/403 without a viewer's token; 404 when no bundle is published; 500
/// when the file cannot be read.
pub async fn get(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    app.require(&headers, Role::Viewer, false, None)?;
    let Some(published) = &app.bundle else {
        return Err(ApiError::not_found(
            "this server publishes no policy bundle (start it with --bundle FILE)",
        ));
    };
    let reading = published.current().map_err(|message| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "bundle_unavailable",
        message,
    })?;
    let etag = HeaderValue::from_str(&reading.etag).map_err(ApiError::internal)?;
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches(v, &reading.etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = axum::body::Body::from(axum::body::Bytes::copy_from_slice(&reading.bytes))
            .into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn if_none_match_lists_and_weak_tags_are_understood() {
        assert!(super::matches("\"a\", \"b\"", "\"b\""));
        assert!(super::matches("W/\"b\"", "\"b\""));
        assert!(super::matches("*", "\"b\""));
        assert!(!super::matches("\"c\"", "\"b\""));
    }
}
