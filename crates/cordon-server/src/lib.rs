//! `cordon serve`: one process serving the HTTP API (`/api/v1`, described
//! by its OpenAPI document), the web console, Prometheus `/metrics` and
//! `/healthz`, over plain HTTP or TLS.
//!
//! Every read goes to the store (SQLite in WAL mode: readers never wait
//! for a writer), so flows, findings and incidents that a concurrent
//! `ingest` or `collect` commits appear on the next request. Nothing is
//! anonymous but `/healthz`: API calls carry `Authorization: Bearer TOKEN`,
//! the console logs in with a token and keeps an HttpOnly, SameSite=Strict
//! session cookie, and every state-changing console request carries the
//! session's CSRF token.

pub mod api;
pub mod auth;
pub mod bundle;
pub mod console;
pub mod filter;
pub mod openapi;
pub mod responses;
pub mod taxii;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cordon_policy::{CompiledPolicy, Policy};
use cordon_store::{SqliteStore, StoreError};
use serde_json::json;

use auth::{Principal, Role, Sessions, Tokens};

/// Largest request body (a candidate policy is the biggest thing posted).
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest a request may spend in the store.
pub const QUERY_TIME: Duration = Duration::from_secs(20);
/// Largest page of flows.
pub const MAX_PAGE: u64 = 5_000;

/// What the server needs.
pub struct Config {
    /// The store folder.
    pub store: PathBuf,
    /// The policy in force, when given.
    pub policy: Option<Policy>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Tokens (`TOKEN ROLE NAME` lines); else the store's, made on first start.
    pub tokens: Tokens,
    /// TLS certificate chain and key (PEM), when serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Listening or serving failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered, by route and status class.
    pub requests: Mutex<std::collections::BTreeMap<(String, u16), u64>>,
    /// Requests refused for want of credentials or role.
    pub auth_failures: AtomicU64,
    /// Store queries that ran past [`QUERY_TIME`].
    pub timeouts: AtomicU64,
}

/// Shared state of every handler.
pub struct App {
    /// The store folder.
    pub store_dir: PathBuf,
    stores: Mutex<Vec<SqliteStore>>,
    /// The policy in force.
    pub policy: Option<Arc<CompiledPolicy>>,
    /// Known tokens.
    pub tokens: Tokens,
    /// Console sessions.
    pub sessions: Sessions,
    /// Counters.
    pub metrics: Metrics,
    /// Whether cookies get `Secure` (served over TLS).
    pub secure_cookies: bool,
    /// The responses file the agents and gateways follow, when given.
    pub responses: Option<PathBuf>,
    /// The key TAXII `next` tokens are signed with (read from the store
    /// on first use).
    pub taxii_key: std::sync::OnceLock<Arc<Vec<u8>>>,
    /// The signed policy bundle published to agents and gateways.
    pub bundle: Option<bundle::Published>,
}

/// An error as the API answers it: a status and `{"error": {code, message}}`.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (`bad_request`, `unauthorized`, ...).
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

impl ApiError {
    /// 400 with a reason.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }

    /// 404 for `what`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }

    /// 401.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "send `Authorization: Bearer TOKEN` (or log in to the console)".to_string(),
        }
    }

    /// 403 for want of `role`.
    pub fn forbidden(role: Role) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!("this needs the {} role", role.as_str()),
        }
    }

    /// 500 without internals.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "request failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "the server failed; its log says why".to_string(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { what, id } => ApiError::not_found(format!("no {what} `{id}`")),
            StoreError::Query(m) => ApiError::bad_request(m),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cordon\""),
            );
        }
        r
    }
}

/// How the caller proved who they are.
#[derive(Clone, Debug)]
pub enum Via {
    /// A bearer token (no ambient credential: not open to CSRF).
    Bearer,
    /// The console's session cookie, whose CSRF token is this.
    Session {
        /// The session's CSRF token.
        csrf: String,
    },
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// How.
    pub via: Via,
}

/// The user and password of HTTP Basic credentials (base64 of `user:password`).
fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cordon_session";

/// A cookie's value from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl App {
    /// State for `config`; opens the store once to check it.
    ///
    /// # Errors
    /// The store cannot be opened.
    pub fn new(
        store_dir: &Path,
        policy: Option<Policy>,
        tokens: Tokens,
        secure_cookies: bool,
    ) -> Result<App, StoreError> {
        let first = SqliteStore::open(store_dir)?;
        Ok(App {
            store_dir: store_dir.to_path_buf(),
            stores: Mutex::new(vec![first]),
            policy: policy.map(|p| Arc::new(CompiledPolicy::new(Arc::new(p)))),
            tokens,
            sessions: Sessions::default(),
            metrics: Metrics::default(),
            secure_cookies,
            responses: None,
            taxii_key: std::sync::OnceLock::new(),
            bundle: None,
        })
    }

    /// The signed policy bundle this server publishes; with `trust`, only
    /// while it verifies.
    #[must_use]
    pub fn with_bundle(
        mut self,
        bundle: Option<PathBuf>,
        trust: Vec<cordon_policy::bundle::PublicKey>,
    ) -> App {
        self.bundle = bundle.map(|b| bundle::Published::new(b, trust));
        self
    }

    /// The responses file this server lists and changes.
    #[must_use]
    pub fn with_responses(mut self, responses: Option<PathBuf>) -> App {
        self.responses = responses;
        self
    }

    /// Who is calling: a bearer token (or HTTP Basic with the token's name
    /// and the token), else the session cookie.
    ///
    /// # Errors
    /// 401 when neither is valid.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            let value = auth.to_str().unwrap_or_default();
            let principal = if let Some(token) = value.strip_prefix("Bearer ") {
                self.tokens.check(token.trim())
            } else if let Some(basic) = value.strip_prefix("Basic ") {
                basic_credentials(basic).and_then(|(user, token)| {
                    self.tokens
                        .check(&token)
                        .filter(|p| auth::same_secret(&p.name, &user))
                })
            } else {
                None
            };
            return match principal {
                Some(p) => Ok(Caller {
                    principal: p.clone(),
                    via: Via::Bearer,
                }),
                None => {
                    self.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
                    Err(ApiError::unauthorized())
                }
            };
        }
        match cookie(headers, SESSION_COOKIE).and_then(|id| self.sessions.get(id)) {
            Some(s) => Ok(Caller {
                principal: s.principal,
                via: Via::Session { csrf: s.csrf },
            }),
            None => {
                self.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
                Err(ApiError::unauthorized())
            }
        }
    }

    /// The caller, who must have at least `role`; a state-changing request
    /// by session must also carry the CSRF token (header `x-csrf-token` or
    /// the form's `csrf` field, passed as `form_csrf`).
    ///
    /// # Errors
    /// 401, 403, or 403 `csrf` when the token is missing or wrong.
    pub fn require(
        &self,
        headers: &HeaderMap,
        role: Role,
        changes_state: bool,
        form_csrf: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let caller = self.caller(headers)?;
        if caller.principal.role < role {
            self.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::forbidden(role));
        }
        if changes_state && let Via::Session { csrf } = &caller.via {
            let sent = headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .or(form_csrf);
            if !sent.is_some_and(|s| auth::same_secret(s, csrf)) {
                self.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError {
                    status: StatusCode::FORBIDDEN,
                    code: "csrf",
                    message: "missing or wrong CSRF token; reload the page".to_string(),
                });
            }
        }
        Ok(caller)
    }

    /// Run `work` on a store connection off the async threads, within
    /// [`QUERY_TIME`].
    ///
    /// # Errors
    /// What `work` returns; 503 past the time limit.
    pub async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut SqliteStore) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = Arc::clone(self);
        let job = tokio::task::spawn_blocking(move || {
            let taken = app
                .stores
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            let mut store = match taken {
                Some(s) => s,
                None => SqliteStore::open(&app.store_dir)?,
            };
            let out = work(&mut store);
            let mut pool = app
                .stores
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pool.len() < 8 {
                pool.push(store);
            }
            out
        });
        match tokio::time::timeout(QUERY_TIME, job).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(ApiError::internal(e)),
            Err(_) => {
                self.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "timeout",
                    message: format!(
                        "the query ran past {} s; narrow the time range or the filter",
                        QUERY_TIME.as_secs()
                    ),
                })
            }
        }
    }
}

async fn count_requests(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    *app.metrics
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry((route, status))
        .or_default() += 1;
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    response
}

/// The whole application: API, console, metrics and health.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(console::routes())
        .merge(taxii::routes())
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ServerError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serve `router` on `listener` until `shutdown` resolves.
///
/// # Errors
/// The TLS configuration is unusable, or serving failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<(PathBuf, PathBuf)>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let Some((cert, key)) = tls else {
        return axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| ServerError::Io {
                what: "serving".to_string(),
                source,
            });
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(&cert, &key)?));
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let _ = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(Duration::from_secs(10))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}
