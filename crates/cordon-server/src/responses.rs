//! Responses over the API and the console: the responses file the agents
//! and gateways follow (`cordon serve --responses FILE`), listed for
//! viewers, made, approved and undone by responders. Every change goes
//! through the response crate's locked update, so the server and
//! `cordon respond` never lose each other's writes.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use cordon_core::units::Window;
use cordon_policy::CompiledPolicy;
use cordon_response::file;
use cordon_response::{
    Action, NewResponse, Peer, Refused, Responses, Subject, UpdateError, response_json_at,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Role;
use crate::{ApiError, App};

type AppState = State<Arc<App>>;
type ApiResult = Result<axum::response::Response, ApiError>;

impl From<UpdateError> for ApiError {
    fn from(f: UpdateError) -> ApiError {
        match f {
            UpdateError::Refused(r) if r.0.starts_with("no response") => ApiError::not_found(r.0),
            UpdateError::Refused(r) => ApiError {
                status: StatusCode::CONFLICT,
                code: "refused",
                message: r.0,
            },
            UpdateError::File(e) => ApiError::internal(e),
        }
    }
}

fn file_of(app: &App) -> Result<PathBuf, ApiError> {
    app.responses.clone().ok_or_else(|| ApiError {
        status: StatusCode::CONFLICT,
        code: "not_configured",
        message:
            "this server has no responses file (start it with `cordon serve --responses FILE`)"
                .into(),
    })
}

fn policy_of(app: &App) -> Result<Arc<CompiledPolicy>, ApiError> {
    match &app.policy {
        Some(p) => Ok(p.clone()),
        None => cordon_response::empty_policy().map_err(ApiError::internal),
    }
}

/// Every response in the file, oldest first, and the document's
/// generation (an empty list when the server has no file).
pub async fn list_json(app: &Arc<App>) -> Result<Value, ApiError> {
    let Some(path) = app.responses.clone() else {
        return Ok(json!({"configured": false, "generation": 0, "responses": []}));
    };
    let doc = tokio::task::spawn_blocking(move || file::read(&path))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let now = cordon_flow::time::now_ms();
    Ok(json!({
        "configured": true,
        "generation": doc.generation,
        "responses": doc.responses.iter().map(|r| response_json_at(r, now)).collect::<Vec<_>>(),
    }))
}

/// `GET /api/v1/responses`
pub async fn list(State(app): AppState, headers: HeaderMap) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    Ok(Json(list_json(&app).await?).into_response())
}

/// Approve or undo.
#[derive(Clone, Copy, Debug)]
pub enum Change {
    /// Put a proposed response in force.
    Approve,
    /// Take a response back.
    Undo,
}

/// Apply `change` to response `id` as `by`, with `note`.
pub async fn change(
    app: &Arc<App>,
    id: String,
    what: Change,
    by: String,
    note: Option<String>,
) -> Result<Value, ApiError> {
    let path = file_of(app)?;
    let policy = policy_of(app)?;
    let done = tokio::task::spawn_blocking(move || {
        let now = cordon_flow::time::now_ms();
        let never = cordon_response::system_never_block();
        file::update(&path, |doc: &mut Responses| -> Result<Value, UpdateError> {
            match what {
                Change::Approve => {
                    cordon_response::approve(doc, &id, &by, note, &policy, now, &never)?;
                }
                Change::Undo => cordon_response::undo(doc, &id, &by, note, now)?,
            }
            let r = doc
                .get(&id)
                .ok_or_else(|| Refused(format!("no response `{id}`")))?;
            Ok(response_json_at(r, now))
        })
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(done?)
}

#[derive(Debug, Default, Deserialize)]
struct NoteBody {
    #[serde(default)]
    note: Option<String>,
}

fn note_of(bytes: &[u8]) -> Result<Option<String>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<NoteBody>(bytes)
        .map(|b| b.note)
        .map_err(|e| {
            ApiError::bad_request(format!("the body is not the JSON this route takes: {e}"))
        })
}

/// `POST /api/v1/responses/{id}/approve`
pub async fn approve(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    change_route(app, headers, id, &bytes, Change::Approve).await
}

/// `POST /api/v1/responses/{id}/undo`
pub async fn undo(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    change_route(app, headers, id, &bytes, Change::Undo).await
}

async fn change_route(
    app: Arc<App>,
    headers: HeaderMap,
    id: String,
    bytes: &[u8],
    what: Change,
) -> ApiResult {
    let caller = app.require(&headers, Role::Responder, true, None)?;
    let note = note_of(bytes)?;
    let by = format!("api:{}", caller.principal.name);
    Ok(Json(change(&app, id, what, by, note).await?).into_response())
}

/// The body of `POST /api/v1/responses`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// `quarantine`, `block` or `throttle`.
    action: String,
    /// Quarantine: an address or CIDR.
    #[serde(default)]
    ip: Option<String>,
    /// Quarantine: a workload.
    #[serde(default)]
    workload: Option<String>,
    /// Quarantine: peers it may still reach.
    #[serde(default)]
    allow: Vec<String>,
    /// Block: the destination (`vendor:NAME`, `group:NAME`, CIDR, FQDN).
    #[serde(default)]
    to: Option<String>,
    /// Block: the sources' group.
    #[serde(default)]
    from: Option<String>,
    /// Throttle: the vendor.
    #[serde(default)]
    vendor: Option<String>,
    /// Throttle: `10MiB/h`.
    #[serde(default)]
    limit: Option<String>,
    ttl: String,
    reason: String,
    #[serde(default)]
    finding: Option<String>,
    #[serde(default)]
    incident: Option<String>,
    /// Make it a proposal.
    #[serde(default)]
    propose: bool,
}

fn action_of(b: &CreateBody, policy: &CompiledPolicy) -> Result<Action, ApiError> {
    let bad = |m: String| ApiError::bad_request(m);
    match b.action.as_str() {
        "quarantine" => {
            let subject = match (&b.ip, &b.workload) {
                (Some(ip), None) => Subject::Address(
                    cordon_response::model::parse_net(ip)
                        .ok_or_else(|| bad(format!("`ip`: `{ip}` is not an address or CIDR")))?,
                ),
                (None, Some(w)) => Subject::Workload(w.clone()),
                _ => return Err(bad("a quarantine names one of `ip` or `workload`".into())),
            };
            Ok(Action::Quarantine {
                subject,
                allow: b.allow.iter().map(|a| Peer::parse(a)).collect(),
            })
        }
        "block" => {
            let to =
                b.to.as_deref()
                    .ok_or_else(|| bad("a block names `to`".into()))?;
            let to =
                cordon_response::destination(to, policy).map_err(|e| bad(format!("`to`: {e}")))?;
            Ok(Action::Block {
                to,
                from: b.from.clone(),
            })
        }
        "throttle" => {
            let vendor = b
                .vendor
                .clone()
                .ok_or_else(|| bad("a throttle names `vendor`".into()))?;
            let limit = b
                .limit
                .as_deref()
                .ok_or_else(|| bad("a throttle names `limit`".into()))?;
            let (bytes, per) = cordon_response::document::parse_limit(limit)
                .map_err(|e| bad(format!("`limit`: {e}")))?;
            Ok(Action::Throttle { vendor, bytes, per })
        }
        other => Err(bad(format!(
            "unknown action `{other}` (quarantine, block, throttle)"
        ))),
    }
}

/// `POST /api/v1/responses`
pub async fn create(
    State(app): AppState,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let caller = app.require(&headers, Role::Responder, true, None)?;
    let b: CreateBody = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("the body is not the JSON this route takes: {e}"))
    })?;
    let path = file_of(&app)?;
    let policy = policy_of(&app)?;
    let action = action_of(&b, &policy)?;
    let ttl = Window::parse(&b.ttl).map_err(|e| ApiError::bad_request(format!("`ttl`: {e}")))?;
    let new = NewResponse {
        action,
        reason: b.reason,
        finding: b.finding,
        incident: b.incident,
        by: format!("api:{}", caller.principal.name),
        ttl,
        propose: b.propose,
    };
    let made = tokio::task::spawn_blocking(move || {
        let now = cordon_flow::time::now_ms();
        let never = cordon_response::system_never_block();
        file::update(&path, |doc: &mut Responses| -> Result<Value, UpdateError> {
            let id = cordon_response::add(doc, new, &policy, now, &never)?;
            let r = doc
                .get(&id.0)
                .ok_or_else(|| Refused(format!("no response `{id}`")))?;
            Ok(response_json_at(r, now))
        })
    })
    .await
    .map_err(ApiError::internal)??;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}
