//! TAXII 2.1 under `/taxii2/`: discovery, one API root (`/taxii2/cordon/`),
//! its collections, objects, versions, manifests and status resources.
//!
//! Collections: `findings` (Cordon's findings and incidents as STIX, a new
//! version each time one changes; read-only), `indicators` (the
//! indicators derived from them; read-only) and `intel` (feeds partners
//! push; the threat-intel detector reads them). Reading needs the viewer
//! role, writing to `intel` the responder role; a `partner` token (for an
//! ISAC or a partner's TAXII client) reads the collections and adds to
//! `intel`, and can do nothing else on the server. Callers authenticate with
//! `Authorization: Bearer TOKEN`, or HTTP Basic with the token's name as
//! user and the token as password, or the console's session.
//!
//! Every answer, errors included, is `application/taxii+json;version=2.1`;
//! an `Accept` that does not allow it is 406, a body of another type 415.
//! Paging is by `next` tokens bound to the query (see [`params`]).

pub mod objects;
pub mod params;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use cordon_store::exchange::{ExchangeStore, FINDINGS, INDICATORS, INTEL};
use cordon_taxii::media::{STIX_21, TAXII_21, accepts_taxii};
use serde_json::{Value, json};

use crate::auth::Role;
use crate::{ApiError, App, Caller};

/// The API root's path.
pub const API_ROOT: &str = "/taxii2/cordon/";
/// Largest envelope a client may post.
pub const MAX_ENVELOPE: usize = 16 * 1024 * 1024;

/// A TAXII error message (§3.6.1), as the answer to a request.
#[derive(Debug)]
pub struct TaxiiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short title.
    pub title: &'static str,
    /// What is wrong, for people.
    pub description: String,
}

impl TaxiiError {
    /// 400.
    pub fn bad_request(description: impl Into<String>) -> TaxiiError {
        TaxiiError {
            status: StatusCode::BAD_REQUEST,
            title: "Bad request",
            description: description.into(),
        }
    }

    /// 404.
    pub fn not_found(description: impl Into<String>) -> TaxiiError {
        TaxiiError {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            description: description.into(),
        }
    }

    /// 403.
    pub fn forbidden(description: impl Into<String>) -> TaxiiError {
        TaxiiError {
            status: StatusCode::FORBIDDEN,
            title: "Forbidden",
            description: description.into(),
        }
    }
}

impl From<ApiError> for TaxiiError {
    fn from(e: ApiError) -> TaxiiError {
        let title = match e.status {
            StatusCode::UNAUTHORIZED => "Unauthorized",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
            _ => "Server error",
        };
        TaxiiError {
            status: e.status,
            title,
            description: e.message,
        }
    }
}

impl From<cordon_store::StoreError> for TaxiiError {
    fn from(e: cordon_store::StoreError) -> TaxiiError {
        TaxiiError::from(ApiError::from(e))
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_str(),
        });
        let mut r = taxii_response(self.status, body.to_string());
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"cordon\", Bearer realm=\"cordon\""),
            );
        }
        r
    }
}

/// What TAXII handlers return.
pub type TaxiiResult = Result<Response, TaxiiError>;

/// A TAXII answer: `body` (JSON text) as `application/taxii+json;version=2.1`.
pub fn taxii_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_21));
    r
}

/// The caller of a TAXII request, who must have `role`, and whose `Accept`
/// must allow a TAXII answer.
///
/// # Errors
/// 401, 403, or 406.
pub fn begin(
    app: &App,
    headers: &HeaderMap,
    role: Role,
    changes_state: bool,
) -> Result<Caller, TaxiiError> {
    let caller = app
        .require(headers, role, changes_state, None)
        .map_err(|e| {
            let mut e = TaxiiError::from(e);
            if e.status == StatusCode::UNAUTHORIZED {
                e.description = "send `Authorization: Bearer TOKEN`, or HTTP Basic with the \
                                 token's name as user and the token as password"
                    .to_string();
            }
            e
        })?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if !accepts_taxii(accept) {
        return Err(TaxiiError {
            status: StatusCode::NOT_ACCEPTABLE,
            title: "Not acceptable",
            description: format!(
                "this server answers `{TAXII_21}`; the request's Accept is `{}`",
                accept.unwrap_or_default()
            ),
        });
    }
    Ok(caller)
}

/// One of Cordon's collections.
pub struct Collection {
    /// Its id (the `{id}` in its URL).
    pub id: &'static str,
    title: &'static str,
    description: &'static str,
    /// The role that may write to it, if anyone may (partners may add to
    /// a writable collection too).
    pub writers: Option<Role>,
}

/// The collections of the API root.
pub const COLLECTIONS: [Collection; 3] = [
    Collection {
        id: FINDINGS,
        title: "Cordon findings",
        description: "Findings and incidents Cordon detected, as STIX 2.1 (indicators, sightings, \
                      observed data, attack patterns, incidents and reports); a new version of an \
                      object each time its finding changes.",
        writers: None,
    },
    Collection {
        id: INDICATORS,
        title: "Cordon indicators",
        description: "The indicators Cordon derived from its findings.",
        writers: None,
    },
    Collection {
        id: INTEL,
        title: "Partner intelligence",
        description: "Threat intelligence pushed by partners; Cordon's threat-intel detector \
                      matches flows against its indicators.",
        writers: Some(Role::Responder),
    },
];

/// The collection `id`.
///
/// # Errors
/// 404 for an unknown id.
pub fn collection(id: &str) -> Result<&'static Collection, TaxiiError> {
    COLLECTIONS.iter().find(|c| c.id == id).ok_or_else(|| {
        TaxiiError::not_found(format!(
            "no collection `{id}` (there are: {})",
            COLLECTIONS.map(|c| c.id).join(", ")
        ))
    })
}

impl Collection {
    /// Whether `role` may add objects here.
    pub fn can_write(&self, role: Role) -> bool {
        self.writers
            .is_some_and(|w| role >= w || role == Role::Partner)
    }

    /// Whether `role` may delete objects here (not partners).
    pub fn can_delete(&self, role: Role) -> bool {
        self.writers.is_some_and(|w| role >= w)
    }

    fn resource(&self, role: Role) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "can_read": true,
            "can_write": self.can_write(role),
            "media_types": [STIX_21],
        })
    }
}

/// A route at `path` and at `path` without its trailing slash.
fn both(router: Router<Arc<App>>, path: &str, route: MethodRouter<Arc<App>>) -> Router<Arc<App>> {
    let bare = path.trim_end_matches('/');
    router.route(path, route.clone()).route(bare, route)
}

/// The TAXII routes.
pub fn routes() -> Router<Arc<App>> {
    let mut r = Router::new();
    r = both(r, "/taxii2/", get(discovery));
    r = both(r, API_ROOT, get(api_root));
    r = both(r, "/taxii2/cordon/status/{id}/", get(status));
    r = both(r, "/taxii2/cordon/collections/", get(collections));
    r = both(r, "/taxii2/cordon/collections/{cid}/", get(one_collection));
    r = both(
        r,
        "/taxii2/cordon/collections/{cid}/objects/",
        get(objects::get_objects).post(objects::add_objects),
    );
    r = both(
        r,
        "/taxii2/cordon/collections/{cid}/objects/{oid}/",
        get(objects::get_object).delete(objects::delete_object),
    );
    r = both(
        r,
        "/taxii2/cordon/collections/{cid}/objects/{oid}/versions/",
        get(objects::versions),
    );
    both(
        r,
        "/taxii2/cordon/collections/{cid}/manifest/",
        get(objects::manifest),
    )
}

async fn discovery(State(app): State<Arc<App>>, headers: HeaderMap) -> TaxiiResult {
    begin(&app, &headers, Role::Partner, false)?;
    let root = absolute(&app, &headers, API_ROOT);
    let body = json!({
        "title": "Cordon",
        "description": "Cordon's TAXII 2.1 service: its findings and indicators, and partner intelligence.",
        "default": root,
        "api_roots": [root],
    });
    Ok(taxii_response(StatusCode::OK, body.to_string()))
}

/// `path` as an absolute URL on the host the request was sent to, when
/// that is a plain host name or address (else the path alone).
fn absolute(app: &App, headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
    match host {
        Some(h) => {
            let scheme = if app.secure_cookies { "https" } else { "http" };
            format!("{scheme}://{h}{path}")
        }
        None => path.to_string(),
    }
}

async fn api_root(State(app): State<Arc<App>>, headers: HeaderMap) -> TaxiiResult {
    begin(&app, &headers, Role::Partner, false)?;
    let body = json!({
        "title": "Cordon",
        "description": "Findings, indicators and partner intelligence.",
        "versions": [TAXII_21],
        "max_content_length": MAX_ENVELOPE,
    });
    Ok(taxii_response(StatusCode::OK, body.to_string()))
}

async fn collections(State(app): State<Arc<App>>, headers: HeaderMap) -> TaxiiResult {
    let caller = begin(&app, &headers, Role::Partner, false)?;
    let list: Vec<Value> = COLLECTIONS
        .iter()
        .map(|c| c.resource(caller.principal.role))
        .collect();
    Ok(taxii_response(
        StatusCode::OK,
        json!({ "collections": list }).to_string(),
    ))
}

async fn one_collection(
    State(app): State<Arc<App>>,
    Path(cid): Path<String>,
    headers: HeaderMap,
) -> TaxiiResult {
    let caller = begin(&app, &headers, Role::Partner, false)?;
    let c = collection(&cid)?;
    Ok(taxii_response(
        StatusCode::OK,
        c.resource(caller.principal.role).to_string(),
    ))
}

async fn status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> TaxiiResult {
    begin(&app, &headers, Role::Partner, false)?;
    if id.len() > 64 {
        return Err(TaxiiError::not_found("no such status"));
    }
    let lookup = id.clone();
    let body = app
        .with_store(move |s| Ok(s.status(&lookup)?))
        .await?
        .ok_or_else(|| TaxiiError::not_found(format!("no status `{id}`")))?;
    Ok(taxii_response(StatusCode::OK, body))
}
