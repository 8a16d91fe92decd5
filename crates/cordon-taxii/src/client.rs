//! A TAXII 2.1 HTTP client: one kept-alive HTTP/1.1 connection (TLS with
//! the system's roots or a given CA file), HTTP Basic or bearer
//! credentials, TAXII media types on every request, bounded answers, and
//! retries with exponential backoff on what may pass (connection errors,
//! timeouts, 429 and 5xx, honouring `Retry-After`).

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap};
use hyper::{Method, Request, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use crate::media::{TAXII_21, is_taxii_body};

/// Largest answer read (a page of objects).
pub const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// How the client proves who it is.
#[derive(Clone, Default)]
pub enum Auth {
    /// Anonymous.
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach a log.
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// What the client needs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The API root's URL (`https://host/api1/`).
    pub api_root: Url,
    /// Credentials.
    pub auth: Auth,
    /// CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Longest one request may take.
    pub timeout: Duration,
    /// Attempts after the first for a request that may pass.
    pub retries: u32,
    /// The first wait between attempts (doubled each time, at most 30 s).
    pub backoff: Duration,
}

impl Options {
    /// Defaults for `api_root`: anonymous, system roots, 60 s requests, 5
    /// retries from 500 ms.
    pub fn new(api_root: Url) -> Options {
        Options {
            api_root,
            auth: Auth::None,
            ca_file: None,
            timeout: Duration::from_secs(60),
            retries: 5,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL or an option is unusable.
    #[error("{0}")]
    Config(String),
    /// The connection failed or timed out.
    #[error("{url}: {message}")]
    Connection {
        /// The URL asked for.
        url: String,
        /// What happened.
        message: String,
    },
    /// The server answered with an error.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The URL asked for.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The TAXII error's title and description, or the body's start.
        message: String,
        /// Seconds the server asked to wait (`Retry-After`).
        retry_after: Option<u64>,
    },
    /// The answer is not what TAXII 2.1 says.
    #[error("{url}: {message}")]
    Protocol {
        /// The URL asked for.
        url: String,
        /// What is wrong.
        message: String,
    },
}

impl ClientError {
    /// Whether trying again may help.
    pub fn transient(&self) -> bool {
        match self {
            ClientError::Connection { .. } => true,
            ClientError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its JSON body (`Null` when empty).
    pub body: Value,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

use cordon_fetch::Sender;

/// A TAXII client of one API root.
pub struct Client {
    options: Options,
    tls: Option<tokio_rustls::TlsConnector>,
    connection: Mutex<Option<Sender>>,
}

impl Client {
    /// A client for `options`.
    ///
    /// # Errors
    /// The URL is not http(s), or the CA certificates are unusable.
    pub fn new(mut options: Options) -> Result<Client, ClientError> {
        let url = &options.api_root;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ClientError::Config(format!(
                "`{url}` is not an http:// or https:// URL of a TAXII API root"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ClientError::Config(
                "give credentials with --user and --password-file or --token-file, not in the URL"
                    .to_string(),
            ));
        }
        if !options.api_root.path().ends_with('/') {
            let path = format!("{}/", options.api_root.path());
            options.api_root.set_path(&path);
        }
        let tls = if options.api_root.scheme() == "https" {
            Some(
                cordon_fetch::tls_connector(options.ca_file.as_deref())
                    .map_err(ClientError::Config)?,
            )
        } else {
            None
        };
        Ok(Client {
            options,
            tls,
            connection: Mutex::new(None),
        })
    }

    /// The API root.
    pub fn api_root(&self) -> &Url {
        &self.options.api_root
    }

    /// `path` (relative to the API root) as a URL.
    ///
    /// # Errors
    /// A path that does not make a URL.
    pub fn url(&self, path: &str) -> Result<Url, ClientError> {
        self.options
            .api_root
            .join(path)
            .map_err(|e| ClientError::Config(format!("{path}: {e}")))
    }

    /// One attempt.
    async fn once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Bytes>,
    ) -> Result<Reply, ClientError> {
        let connection_error = |message: String| ClientError::Connection {
            url: url.to_string(),
            message,
        };
        let path = cordon_fetch::path_and_query(url);
        let authority = cordon_fetch::authority(url);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, authority)
            .header(ACCEPT, TAXII_21);
        match &self.options.auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                use base64::Engine as _;
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                request = request.header(AUTHORIZATION, format!("Basic {encoded}"));
            }
            Auth::Bearer(token) => {
                request = request.header(AUTHORIZATION, format!("Bearer {token}"));
            }
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, TAXII_21);
        }
        let request = request
            .body(Full::new(body.cloned().unwrap_or_default()))
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let mut guard = self.connection.lock().await;
        let reusable = match guard.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            *guard = Some(
                cordon_fetch::connect(url, self.tls.as_ref())
                    .await
                    .map_err(connection_error)?,
            );
        }
        let Some(sender) = guard.as_mut() else {
            return Err(connection_error("no connection".to_string()));
        };
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                *guard = None;
                return Err(connection_error(e.to_string()));
            }
        };
        let (parts, incoming) = response.into_parts();
        let bytes = match Limited::new(incoming, MAX_ANSWER).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                *guard = None;
                return Err(connection_error(format!(
                    "reading the answer: {e} (at most {MAX_ANSWER} bytes)"
                )));
            }
        };
        drop(guard);
        let status = parts.status;
        if !status.is_success() {
            let message = match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) if v.get("title").is_some() => format!(
                    "{}{}",
                    v["title"].as_str().unwrap_or_default(),
                    v.get("description")
                        .and_then(Value::as_str)
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
                _ => String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
            };
            let retry_after = parts
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            return Err(ClientError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                message,
                retry_after,
            });
        }
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            if !is_taxii_body(content_type) {
                return Err(ClientError::Protocol {
                    url: url.to_string(),
                    message: format!(
                        "the answer is `{}`, not `{TAXII_21}` (is this a TAXII 2.1 API root?)",
                        content_type.unwrap_or("(no Content-Type)")
                    ),
                });
            }
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
                url: url.to_string(),
                message: format!("the answer is not JSON: {e}"),
            })?
        };
        Ok(Reply {
            status,
            headers: parts.headers,
            body,
        })
    }

    /// Send a request, trying again (with backoff) while it fails in a way
    /// that may pass.
    ///
    /// # Errors
    /// The last failure.
    pub async fn request(
        &self,
        method: Method,
        url: &Url,
        body: Option<Bytes>,
    ) -> Result<Reply, ClientError> {
        let mut attempt = 0;
        loop {
            let outcome =
                tokio::time::timeout(self.options.timeout, self.once(&method, url, body.as_ref()))
                    .await
                    .unwrap_or_else(|_| {
                        Err(ClientError::Connection {
                            url: url.to_string(),
                            message: format!(
                                "no answer within {} s",
                                self.options.timeout.as_secs()
                            ),
                        })
                    });
            match outcome {
                Err(e) if e.transient() && attempt < self.options.retries => {
                    let backoff = self
                        .options
                        .backoff
                        .saturating_mul(1 << attempt.min(16))
                        .min(Duration::from_secs(30));
                    let wait = match &e {
                        ClientError::Status {
                            retry_after: Some(s),
                            ..
                        } => Duration::from_secs((*s).min(60)),
                        _ => backoff,
                    };
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "retrying");
                    // A failed connection is not reused.
                    *self.connection.lock().await = None;
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// GET `url`.
    ///
    /// # Errors
    /// See [`Client::request`].
    pub async fn get(&self, url: &Url) -> Result<Reply, ClientError> {
        self.request(Method::GET, url, None).await
    }

    /// POST `body` (an envelope) to `url`.
    ///
    /// # Errors
    /// See [`Client::request`].
    pub async fn post(&self, url: &Url, body: Vec<u8>) -> Result<Reply, ClientError> {
        self.request(Method::POST, url, Some(Bytes::from(body)))
            .await
    }
}
