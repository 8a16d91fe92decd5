//! The object endpoints: get objects (paged), add objects (an envelope,
//! answered with a status resource), get and delete one object, its
//! versions, and the manifest.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use cordon_flow::time::{format_rfc3339_us, now_us};
use cordon_store::exchange::{Added, ExchangeStore, ObjectQuery, Page, Versions};
use cordon_taxii::media::{STIX_21, TAXII_21, is_taxii_body};
use cordon_taxii::object::{check, id_of};
use serde_json::{Value, json};

use super::params::{Endpoint, Params};
use super::{MAX_ENVELOPE, TaxiiError, TaxiiResult, begin, collection, taxii_response};
use crate::App;
use crate::auth::Role;

/// The key `next` tokens are signed with, kept in the store.
async fn token_key(app: &Arc<App>) -> Result<Arc<Vec<u8>>, TaxiiError> {
    if let Some(k) = app.taxii_key.get() {
        return Ok(Arc::clone(k));
    }
    let key = app
        .with_store(|s| Ok(s.secret("taxii-next-token", &mut || crate::auth::random_bytes(32))?))
        .await?;
    if key.len() < 32 {
        return Err(TaxiiError::from(crate::ApiError::internal(
            "the key of next tokens is shorter than 32 bytes",
        )));
    }
    Ok(Arc::clone(app.taxii_key.get_or_init(|| Arc::new(key))))
}

/// A version as TAXII writes it: to the millisecond when that is exact
/// (the precision of STIX `modified`), else to the microsecond.
fn version_text(us: i64) -> String {
    if us.rem_euclid(1000) == 0 {
        cordon_detect::stix::ts(us.div_euclid(1000))
    } else {
        format_rfc3339_us(us)
    }
}

/// A page's answer, with the date-added headers of its first and last
/// object.
fn paged(page: &Page, body: String) -> Response {
    let mut r = taxii_response(StatusCode::OK, body);
    if let (Some(first), Some(last)) = (page.objects.first(), page.objects.last()) {
        for (name, us) in [
            ("x-taxii-date-added-first", first.date_added_us),
            ("x-taxii-date-added-last", last.date_added_us),
        ] {
            if let Ok(v) = HeaderValue::from_str(&format_rfc3339_us(us)) {
                r.headers_mut().insert(name, v);
            }
        }
    }
    r
}

/// One paged read: the caller checked, the query parsed and run.
struct Read {
    page: Page,
    params: Params,
    key: Arc<Vec<u8>>,
    /// What the `next` tokens of this query are bound to.
    scope: String,
}

impl Read {
    /// The opening of an envelope-like answer: `{"more":..,"next":..`.
    fn opening(&self) -> String {
        let mut out = format!("{{\"more\":{}", self.page.more);
        if self.page.more
            && let Some(last) = self.page.objects.last()
        {
            let _ = write!(
                out,
                ",\"next\":\"{}\"",
                self.params.token(&self.key, &self.scope, last.cursor())
            );
        }
        out
    }

    /// The answer: `body` after the opening, with the date-added headers.
    fn answer(&self, rest: &str) -> Response {
        let mut body = self.opening();
        body.push_str(rest);
        body.push('}');
        paged(&self.page, body)
    }
}

/// Check the caller, parse the query of `endpoint` on collection `cid`
/// (and object `oid`) and run it. `what` names the endpoint in the scope
/// `next` tokens are bound to.
async fn read(
    app: &Arc<App>,
    headers: &HeaderMap,
    cid: &str,
    oid: Option<&str>,
    q: Option<&str>,
    endpoint: Endpoint,
    what: &str,
) -> Result<Read, TaxiiError> {
    begin(app, headers, Role::Partner, false)?;
    collection(cid)?;
    let mut params = Params::parse(q, endpoint)?;
    if let Some(oid) = oid {
        object_id(oid)?;
        params.ids = vec![oid.to_string()];
    }
    let key = token_key(app).await?;
    let scope = match oid {
        Some(oid) => format!("{what} {cid} {oid}"),
        None => format!("{what} {cid}"),
    };
    let after = params.cursor(&key, &scope)?;
    let page = run(app, query(cid, &params, after)).await?;
    if let Some(oid) = oid
        && page.objects.is_empty()
        && after.is_none()
    {
        exists(app, cid, oid).await?;
    }
    Ok(Read {
        page,
        params,
        key,
        scope,
    })
}

/// Run `query` against the store.
async fn run(app: &Arc<App>, query: ObjectQuery) -> Result<Page, TaxiiError> {
    Ok(app.with_store(move |s| Ok(s.objects(&query)?)).await?)
}

fn query(cid: &str, p: &Params, after: Option<cordon_store::exchange::Cursor>) -> ObjectQuery {
    ObjectQuery {
        collection: cid.to_string(),
        added_after_us: p.added_after_us,
        ids: p.ids.clone(),
        kinds: p.kinds.clone(),
        versions: p.versions.clone(),
        spec_versions: p.spec_versions.clone(),
        after,
        limit: p.limit,
    }
}

/// Objects as an envelope: `{"more", "next", "objects"}`.
fn envelope(r: &Read) -> Response {
    let mut rest = String::new();
    if !r.page.objects.is_empty() {
        rest.push_str(",\"objects\":[");
        for (i, o) in r.page.objects.iter().enumerate() {
            if i > 0 {
                rest.push(',');
            }
            rest.push_str(&o.body);
        }
        rest.push(']');
    }
    r.answer(&rest)
}

/// Get Objects.
pub async fn get_objects(
    State(app): State<Arc<App>>,
    Path(cid): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> TaxiiResult {
    let r = read(
        &app,
        &headers,
        &cid,
        None,
        q.as_deref(),
        Endpoint::Objects,
        "objects",
    )
    .await?;
    Ok(envelope(&r))
}

/// Get Object Manifests.
pub async fn manifest(
    State(app): State<Arc<App>>,
    Path(cid): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> TaxiiResult {
    let r = read(
        &app,
        &headers,
        &cid,
        None,
        q.as_deref(),
        Endpoint::Objects,
        "manifest",
    )
    .await?;
    let mut rest = String::new();
    if !r.page.objects.is_empty() {
        let records: Vec<Value> = r
            .page
            .objects
            .iter()
            .map(|o| {
                json!({
                    "id": o.id,
                    "date_added": format_rfc3339_us(o.date_added_us),
                    "version": version_text(o.version_us),
                    "media_type": STIX_21,
                })
            })
            .collect();
        let _ = write!(rest, ",\"objects\":{}", Value::Array(records));
    }
    Ok(r.answer(&rest))
}

/// Whether `oid` looks like a STIX id at all (else it cannot be stored).
fn object_id(oid: &str) -> Result<(), TaxiiError> {
    if oid.len() > 300 || !oid.contains("--") {
        return Err(TaxiiError::not_found(format!("no object `{oid}`")));
    }
    Ok(())
}

/// 404 unless `oid` has some version in `cid`.
async fn exists(app: &Arc<App>, cid: &str, oid: &str) -> Result<(), TaxiiError> {
    let mut any = ObjectQuery::all(cid, 1);
    any.ids = vec![oid.to_string()];
    any.versions = Versions {
        all: true,
        ..Versions::default()
    };
    if run(app, any).await?.objects.is_empty() {
        return Err(TaxiiError::not_found(format!(
            "no object `{oid}` in collection `{cid}`"
        )));
    }
    Ok(())
}

/// Get An Object.
pub async fn get_object(
    State(app): State<Arc<App>>,
    Path((cid, oid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> TaxiiResult {
    let r = read(
        &app,
        &headers,
        &cid,
        Some(&oid),
        q.as_deref(),
        Endpoint::Object,
        "object",
    )
    .await?;
    Ok(envelope(&r))
}

/// Get Object Versions.
pub async fn versions(
    State(app): State<Arc<App>>,
    Path((cid, oid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> TaxiiResult {
    let r = read(
        &app,
        &headers,
        &cid,
        Some(&oid),
        q.as_deref(),
        Endpoint::Versions,
        "versions",
    )
    .await?;
    let mut rest = String::new();
    if !r.page.objects.is_empty() {
        let list: Vec<String> = r
            .page
            .objects
            .iter()
            .map(|o| version_text(o.version_us))
            .collect();
        let _ = write!(rest, ",\"versions\":{}", json!(list));
    }
    Ok(r.answer(&rest))
}

/// Delete An Object.
pub async fn delete_object(
    State(app): State<Arc<App>>,
    Path((cid, oid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> TaxiiResult {
    let caller = begin(&app, &headers, Role::Partner, true)?;
    let c = collection(&cid)?;
    if !c.can_delete(caller.principal.role) {
        return Err(read_only(c.id, c.writers));
    }
    object_id(&oid)?;
    let params = Params::parse(q.as_deref(), Endpoint::Delete)?;
    let (versions, specs) = (params.versions.clone(), params.spec_versions.clone());
    let (col, id) = (cid.clone(), oid.clone());
    let deleted = app
        .with_store(move |s| Ok(s.delete_object(&col, &id, &versions, &specs)?))
        .await?;
    if deleted == 0 {
        return Err(TaxiiError::not_found(format!(
            "no object `{oid}` in collection `{cid}` matches"
        )));
    }
    tracing::info!(collection = %cid, object = %oid, deleted, by = %caller.principal.name, "TAXII object deleted");
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::OK;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_21));
    Ok(r)
}

fn read_only(cid: &str, writers: Option<Role>) -> TaxiiError {
    TaxiiError::forbidden(match writers {
        None => format!("collection `{cid}` is read-only"),
        Some(role) => format!(
            "writing to collection `{cid}` needs the {} role (partners may add objects, not delete them)",
            role.as_str()
        ),
    })
}

/// Add Objects: every object of the envelope is checked on its own; the
/// good ones are kept even when others fail, and the status resource says
/// which and why.
pub async fn add_objects(
    State(app): State<Arc<App>>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> TaxiiResult {
    let caller = begin(&app, &headers, Role::Partner, true)?;
    let c = collection(&cid)?;
    if !c.can_write(caller.principal.role) {
        return Err(read_only(c.id, c.writers));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_taxii_body(content_type) {
        return Err(TaxiiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            title: "Unsupported media type",
            description: format!(
                "an envelope is posted as `{TAXII_21}`, not `{}`",
                content_type.unwrap_or("(no Content-Type)")
            ),
        });
    }
    let too_large = || TaxiiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        title: "Too large",
        description: format!(
            "an envelope may be at most {MAX_ENVELOPE} bytes (the API root's max_content_length); \
             send the objects in several envelopes"
        ),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_ENVELOPE as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_ENVELOPE)
        .await
        .map_err(|_| too_large())?;
    let envelope: Value = serde_json::from_slice(&bytes).map_err(|e| {
        TaxiiError::bad_request(format!(
            "the body is not JSON: {e} (at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Some(list) = envelope.get("objects").and_then(Value::as_array) else {
        return Err(TaxiiError::bad_request(
            "the body is not a TAXII envelope: it needs an `objects` list",
        ));
    };
    let request_us = now_us();
    let mut good = Vec::new();
    let mut failures = Vec::new();
    for object in list {
        match check(object) {
            Ok(o) => good.push(o),
            Err(message) => {
                let mut failure = json!({"id": id_of(object), "message": message});
                if let Some(v) = object
                    .get("modified")
                    .or_else(|| object.get("created"))
                    .and_then(Value::as_str)
                {
                    failure["version"] = json!(v);
                }
                failures.push(failure);
            }
        }
    }
    let total = list.len();
    let col = cid.clone();
    let (added, kept) = app
        .with_store(move |s| {
            let added = s.add_objects(&col, &good)?;
            Ok((added, good))
        })
        .await?;
    let successes: Vec<Value> = kept
        .iter()
        .zip(&added)
        .map(|(o, a)| match a {
            Added::New { version_us } => json!({"id": o.id, "version": version_text(*version_us)}),
            Added::Present { version_us } => json!({
                "id": o.id, "version": version_text(*version_us),
                "message": "this version was already in the collection",
            }),
        })
        .collect();
    let id = uuid_v4();
    let mut status = json!({
        "id": id,
        "status": "complete",
        "request_timestamp": format_rfc3339_us(request_us),
        "total_count": total,
        "success_count": successes.len(),
        "failure_count": failures.len(),
        "pending_count": 0,
    });
    if !successes.is_empty() {
        status["successes"] = Value::Array(successes);
    }
    if !failures.is_empty() {
        status["failures"] = Value::Array(failures);
    }
    let text = status.to_string();
    let kept_text = text.clone();
    app.with_store(move |s| Ok(s.save_status(&id, &kept_text)?))
        .await?;
    tracing::info!(collection = %cid, total, by = %caller.principal.name, "TAXII envelope added");
    Ok(taxii_response(StatusCode::ACCEPTED, text))
}

/// A random (version 4) UUID for a status resource.
fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    for (b, r) in bytes.iter_mut().zip(crate::auth::random_bytes(16)) {
        *b = r;
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}
