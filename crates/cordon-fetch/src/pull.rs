//! The puller: GET one URL again and again, cheaply when it has not
//! changed.

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, ETAG, HOST, IF_NONE_MATCH, USER_AGENT};
use url::Url;

/// What the puller needs.
#[derive(Clone)]
pub struct PullOptions {
    /// The document's URL (http or https).
    pub url: Url,
    /// `Authorization: Bearer` token.
    pub token: Option<String>,
    /// CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Longest one poll may take, connection included.
    pub timeout: Duration,
    /// Largest body read.
    pub max_bytes: usize,
    /// How often to poll.
    pub every: Duration,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token never reaches a log.
        f.debug_struct("PullOptions")
            .field("url", &self.url.as_str())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .field("max_bytes", &self.max_bytes)
            .field("every", &self.every)
            .finish()
    }
}

impl PullOptions {
    /// Defaults for `url`: anonymous, the system's roots, 30 s, 64 MiB,
    /// every 10 s.
    pub fn new(url: Url) -> PullOptions {
        PullOptions {
            url,
            token: None,
            ca_file: None,
            timeout: Duration::from_secs(30),
            max_bytes: 64 * 1024 * 1024,
            every: Duration::from_secs(10),
        }
    }
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL or an option is unusable.
    #[error("{0}")]
    Config(String),
    /// The connection failed, timed out, or the body was too large.
    #[error("{url}: {message}")]
    Connection {
        /// The URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// The server answered with an error.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The body's start.
        message: String,
    },
}

/// What a poll brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Pulled {
    /// The document is the one fetched last (304).
    NotModified,
    /// A new document.
    New(Vec<u8>),
}

/// Polls one URL.
pub struct Puller {
    options: PullOptions,
    tls: Option<tokio_rustls::TlsConnector>,
    etag: Option<String>,
}

impl Puller {
    /// A puller for `options`.
    ///
    /// # Errors
    /// The URL is not http(s) or carries credentials; the CA file is
    /// unusable.
    pub fn new(options: PullOptions) -> Result<Puller, FetchError> {
        let url = &options.url;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(FetchError::Config(format!(
                "`{url}` is not an http:// or https:// URL"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::Config(
                "give the token with --policy-token-file, not in the URL".to_string(),
            ));
        }
        let tls = if url.scheme() == "https" {
            Some(crate::tls_connector(options.ca_file.as_deref()).map_err(FetchError::Config)?)
        } else {
            None
        };
        Ok(Puller {
            options,
            tls,
            etag: None,
        })
    }

    /// The URL polled.
    pub fn url(&self) -> &Url {
        &self.options.url
    }

    /// How often to poll.
    pub fn every(&self) -> Duration {
        self.options.every
    }

    /// Forget the last ETag: the next poll fetches the document whole.
    pub fn forget(&mut self) {
        self.etag = None;
    }

    /// Fetch the document unless it is the one fetched last.
    ///
    /// # Errors
    /// The connection failed or timed out, the body is larger than the
    /// limit, or the server answered with an error.
    pub async fn poll(&mut self) -> Result<Pulled, FetchError> {
        let url = self.options.url.to_string();
        match tokio::time::timeout(self.options.timeout, self.once()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(FetchError::Connection {
                url,
                message: format!("no answer within {} s", self.options.timeout.as_secs()),
            }),
        }
    }

    async fn once(&mut self) -> Result<Pulled, FetchError> {
        let url = &self.options.url;
        let connection = |message: String| FetchError::Connection {
            url: url.to_string(),
            message,
        };
        let mut request = Request::get(crate::path_and_query(url))
            .header(HOST, crate::authority(url))
            .header(USER_AGENT, concat!("cordon/", env!("CARGO_PKG_VERSION")));
        if let Some(token) = &self.options.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(etag) = &self.etag {
            request = request.header(IF_NONE_MATCH, etag.as_str());
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| FetchError::Config(e.to_string()))?;
        let mut sender = crate::connect(url, self.tls.as_ref())
            .await
            .map_err(connection)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| connection(e.to_string()))?;
        let (parts, incoming) = response.into_parts();
        if parts.status == hyper::StatusCode::NOT_MODIFIED {
            return Ok(Pulled::NotModified);
        }
        let max = self.options.max_bytes;
        let body = Limited::new(incoming, max)
            .collect()
            .await
            .map_err(|e| connection(format!("reading the answer: {e} (at most {max} bytes)")))?
            .to_bytes();
        if !parts.status.is_success() {
            let start = body.get(..body.len().min(200)).unwrap_or_default();
            return Err(FetchError::Status {
                url: url.to_string(),
                status: parts.status.as_u16(),
                message: String::from_utf8_lossy(start).trim().to_string(),
            });
        }
        self.etag = parts
            .headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Pulled::New(body.to_vec()))
    }
}

#[cfg(test)]
mod tests;
