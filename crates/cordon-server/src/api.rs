//! `/api/v1`: JSON over the store, the policy and the incident workflow,
//! plus `/healthz`, `/metrics` and the OpenAPI document.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cordon_detect::Severity;
use cordon_detect::kb::Kb;
use cordon_flow::Flow;
use cordon_flow::time::{now_ms, parse_time_arg};
use cordon_incident::{Status, StatusChange, report};
use cordon_policy::{CompiledPolicy, Endpoint, LoadOptions, Request, parse_policy};
use cordon_store::{
    AuditStore, FindingStore, FlowQuery, FlowReader, IncidentStore, topology_label,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Role;
use crate::{ApiError, App, MAX_PAGE, QUERY_TIME};

/// The state every handler takes.
pub type AppState = State<Arc<App>>;
/// What every handler returns.
pub type ApiResult = Result<Response, ApiError>;

/// Scan the flows of `query` into `sink` for at most half of
/// [`QUERY_TIME`]; true when it stopped early (the answer says
/// `truncated`).
fn scan_within(
    s: &cordon_store::SqliteStore,
    query: &FlowQuery,
    mut sink: impl FnMut(Flow),
) -> Result<bool, ApiError> {
    let started = Instant::now();
    let mut truncated = false;
    s.scan(query, &mut |f| {
        sink(f);
        if started.elapsed() > QUERY_TIME / 2 {
            truncated = true;
            return false;
        }
        true
    })?;
    Ok(truncated)
}

/// A JSON body, read after the caller is checked (so an anonymous
/// request gets 401 whatever it sent).
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!("the body is not the JSON this route takes: {e}"))
    })
}

/// An optional JSON body: empty is the default.
fn optional_body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        body(bytes)
    }
}

/// The routes of this module.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/overview", get(overview))
        .route("/api/v1/flows", get(flows))
        .route("/api/v1/topology", get(topology))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/incidents/{id}", get(incident))
        .route("/api/v1/incidents/{id}/ack", post(ack))
        .route("/api/v1/incidents/{id}/resolve", post(resolve))
        .route("/api/v1/incidents/{id}/report", get(incident_report))
        .route("/api/v1/vendors", get(vendors))
        .route("/api/v1/policy", get(policy))
        .route("/api/v1/policy/bundle", get(crate::bundle::get))
        .route("/api/v1/policy/explain", post(explain))
        .route("/api/v1/policy/lint", get(lint))
        .route("/api/v1/policy/what-if", post(what_if))
        .route(
            "/api/v1/responses",
            get(crate::responses::list).post(crate::responses::create),
        )
        .route(
            "/api/v1/responses/{id}/approve",
            post(crate::responses::approve),
        )
        .route("/api/v1/responses/{id}/undo", post(crate::responses::undo))
}

async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

async fn metrics(State(app): AppState, headers: HeaderMap) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    let mut text = String::new();
    text.push_str("# HELP cordon_server_requests_total Requests answered, by route and status.\n");
    text.push_str("# TYPE cordon_server_requests_total counter\n");
    for ((route, status), n) in app
        .metrics
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        let route = route.replace('\\', "\\\\").replace('"', "\\\"");
        text.push_str(&format!(
            "cordon_server_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
        ));
    }
    text.push_str(&format!(
        "# HELP cordon_server_auth_failures_total Requests refused for want of credentials, role or CSRF token.\n# TYPE cordon_server_auth_failures_total counter\ncordon_server_auth_failures_total {}\n",
        app.metrics.auth_failures.load(Ordering::Relaxed)
    ));
    text.push_str(&format!(
        "# HELP cordon_server_query_timeouts_total Store queries that ran out of time.\n# TYPE cordon_server_query_timeouts_total counter\ncordon_server_query_timeouts_total {}\n",
        app.metrics.timeouts.load(Ordering::Relaxed)
    ));
    let (flows, open) = app
        .with_store(|s| Ok((s.count()?, s.incidents(Some(Status::Open))?.len() as u64)))
        .await?;
    text.push_str(&format!(
        "# HELP cordon_store_flows Flows in the store.\n# TYPE cordon_store_flows gauge\ncordon_store_flows {flows}\n# HELP cordon_incidents_open Incidents nobody has taken yet.\n# TYPE cordon_incidents_open gauge\ncordon_incidents_open {open}\n"
    ));
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}

async fn openapi(State(app): AppState, headers: HeaderMap) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    Ok(Json(crate::openapi::document()).into_response())
}

/// Time range parameters shared by the listing routes.
#[derive(Debug, Default, Deserialize)]
pub struct Range {
    /// RFC 3339, epoch seconds, or a duration back from now (24h).
    pub since: Option<String>,
    /// Same.
    pub until: Option<String>,
}

impl Range {
    /// As milliseconds.
    ///
    /// # Errors
    /// 400 naming the parameter.
    pub fn ms(&self) -> Result<(Option<i64>, Option<i64>), ApiError> {
        let now = now_ms();
        let one = |name: &str, v: &Option<String>| {
            v.as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| {
                    parse_time_arg(t, now).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "{name}: `{t}` is not a time (RFC 3339, epoch seconds, or 24h/7d)"
                        ))
                    })
                })
                .transpose()
        };
        Ok((one("since", &self.since)?, one("until", &self.until)?))
    }
}

/// `GET /api/v1/flows` parameters.
#[derive(Debug, Default, Deserialize)]
pub struct FlowParams {
    /// Filter language (`group:notifier port:443`).
    pub q: Option<String>,
    /// Start of the range.
    pub since: Option<String>,
    /// End of the range.
    pub until: Option<String>,
    /// Page size (at most 5,000; default 100).
    pub limit: Option<u64>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Group by: src_group, dst_group, port, verdict, vendor, src, dst.
    pub group_by: Option<String>,
    /// Time buckets: 1m, 5m, 1h, 1d.
    pub bucket: Option<String>,
    /// Console only: `all` counts every matching flow instead of stopping
    /// after a short budget.
    pub count: Option<String>,
}

/// What flows can be grouped by.
pub const GROUP_BY: [&str; 7] = [
    "src_group",
    "dst_group",
    "port",
    "verdict",
    "vendor",
    "src",
    "dst",
];

fn encode_cursor(start_ms: i64, skip: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{start_ms}:{skip}"))
}

/// The position a cursor of [`flows_json`] names.
///
/// # Errors
/// 400 when it is not a cursor this server gave.
pub fn decode_cursor(c: &str) -> Result<(i64, u64), ApiError> {
    let bad = || ApiError::bad_request("cursor: not a cursor this server gave");
    let text = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (a, b) = text.split_once(':').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

fn bucket_ms(text: &str) -> Result<i64, ApiError> {
    match text {
        "1m" => Ok(60_000),
        "5m" => Ok(300_000),
        "1h" => Ok(3_600_000),
        "1d" => Ok(86_400_000),
        other => Err(ApiError::bad_request(format!(
            "bucket: `{other}` (1m, 5m, 1h, 1d)"
        ))),
    }
}

/// The flow query of `p`.
///
/// # Errors
/// 400 naming what is wrong.
pub fn flow_query(p: &FlowParams) -> Result<FlowQuery, ApiError> {
    let (since_ms, until_ms) = Range {
        since: p.since.clone(),
        until: p.until.clone(),
    }
    .ms()?;
    let mut q = FlowQuery {
        since_ms,
        until_ms,
        ..FlowQuery::default()
    };
    if let Some(text) = &p.q {
        crate::filter::apply(text, &mut q).map_err(ApiError::bad_request)?;
    }
    Ok(q)
}

fn group_key(f: &Flow, by: &str) -> String {
    let e = f.enrichment.as_ref();
    match by {
        "src_group" => topology_label(e.map(|e| &e.src_groups[..]), f.src_ip).to_string(),
        "dst_group" => topology_label(e.map(|e| &e.dst_groups[..]), f.dst_ip).to_string(),
        "port" => format!("{}/{}", cordon_core::Protocol(f.protocol), f.dst_port),
        "verdict" => e.map_or_else(|| "unknown".to_string(), |e| e.verdict.to_string()),
        "vendor" => e
            .and_then(|e| e.vendor.as_deref())
            .unwrap_or("-")
            .to_string(),
        "src" => f.src_ip.to_string(),
        _ => f.dst_ip.to_string(),
    }
}

/// Flows a page at a time, grouped, or counted per time bucket.
pub async fn flows_json(app: &Arc<App>, p: FlowParams) -> Result<Value, ApiError> {
    let mut q = flow_query(&p)?;
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!("limit: 1 to {MAX_PAGE}")));
    }
    if let Some(by) = p.group_by.clone() {
        if !GROUP_BY.contains(&by.as_str()) {
            return Err(ApiError::bad_request(format!(
                "group_by: `{by}` (src_group, dst_group, port, verdict, vendor, src, dst)"
            )));
        }
        return app
            .with_store(move |s| {
                let mut groups: HashMap<String, (u64, u64, u64)> = HashMap::new();
                let truncated = scan_within(s, &q, |f| {
                    let key = group_key(&f, &by);
                    if groups.len() < 100_000 || groups.contains_key(&key) {
                        let g = groups.entry(key).or_default();
                        g.0 += 1;
                        g.1 = g.1.saturating_add(f.bytes_out);
                        g.2 = g.2.saturating_add(f.bytes_in);
                    }
                })?;
                let mut rows: Vec<Value> = groups
                    .into_iter()
                    .map(|(k, (n, o, i))| json!({"key": k, "flows": n, "bytes_out": o, "bytes_in": i}))
                    .collect();
                rows.sort_by(|a, b| b["flows"].as_u64().cmp(&a["flows"].as_u64()).then(a["key"].as_str().cmp(&b["key"].as_str())));
                let total = rows.len();
                rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                Ok(json!({"group_by": by, "groups": rows, "total_groups": total, "truncated": truncated}))
            })
            .await;
    }
    if let Some(bucket) = &p.bucket {
        let size = bucket_ms(bucket)?;
        return app
            .with_store(move |s| {
                let rows = s.timeline(&q, size)?;
                Ok(json!({"bucket_ms": size, "buckets": rows}))
            })
            .await;
    }
    let (from, skip) = match &p.cursor {
        Some(c) => decode_cursor(c)?,
        None => (i64::MIN, 0),
    };
    if from != i64::MIN {
        q.since_ms = Some(q.since_ms.map_or(from, |s| s.max(from)));
    }
    app.with_store(move |s| {
        let started = Instant::now();
        let mut page: Vec<Flow> = Vec::new();
        let mut skipped = 0u64;
        let mut more = false;
        let mut timed_out = false;
        s.scan(&q, &mut |f| {
            if f.start_ms == from && skipped < skip {
                skipped += 1;
                return true;
            }
            if page.len() as u64 == limit {
                more = true;
                return false;
            }
            page.push(f);
            if started.elapsed() > QUERY_TIME / 2 {
                timed_out = true;
                return false;
            }
            true
        })?;
        let next = if more || timed_out {
            page.last().map(|last| {
                let same = page.iter().filter(|f| f.start_ms == last.start_ms).count() as u64;
                let carried = if last.start_ms == from { skip } else { 0 };
                encode_cursor(last.start_ms, same + carried)
            })
        } else {
            None
        };
        Ok(json!({"flows": page, "count": page.len(), "next_cursor": next}))
    })
    .await
}

async fn flows(State(app): AppState, headers: HeaderMap, Query(p): Query<FlowParams>) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    Ok(Json(flows_json(&app, p).await?).into_response())
}

async fn topology(State(app): AppState, headers: HeaderMap, Query(r): Query<Range>) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    let (since_ms, until_ms) = r.ms()?;
    let q = FlowQuery {
        since_ms,
        until_ms,
        ..FlowQuery::default()
    };
    let edges = app.with_store(move |s| Ok(s.topology(&q)?)).await?;
    Ok(Json(json!({"edges": edges})).into_response())
}

/// The overview: counts, open incidents, top talkers, verdicts over time.
pub async fn overview_json(app: &Arc<App>) -> Result<Value, ApiError> {
    app.with_store(|s| {
        let span = s.time_span()?;
        let findings = s.findings(None)?;
        let mut by_severity: HashMap<&str, u64> = HashMap::new();
        for f in &findings {
            *by_severity.entry(f.severity.as_str()).or_default() += 1;
        }
        let incidents = s.incidents(None)?;
        let open: Vec<&cordon_incident::Incident> = incidents
            .iter()
            .filter(|i| i.status != Status::Resolved)
            .collect();
        // The last day of data, whenever it was.
        let (since, until) = span.map_or((None, None), |(_, last)| {
            (Some(last - 86_400_000), Some(last + 60_000))
        });
        let q = FlowQuery {
            since_ms: since,
            until_ms: until,
            ..FlowQuery::default()
        };
        let mut edges = s.topology(&q)?;
        edges.truncate(10);
        let trend = s.timeline(&q, 3_600_000)?;
        Ok(json!({
            "flows": s.count()?,
            "audit_events": s.event_count()?,
            "first_ms": span.map(|s| s.0),
            "last_ms": span.map(|s| s.1),
            "findings": findings.len(),
            "findings_by_severity": by_severity,
            "incidents": incidents.len(),
            "open_incidents": open,
            "top_talkers": edges,
            "trend": trend,
        }))
    })
    .await
}

async fn overview(State(app): AppState, headers: HeaderMap) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    Ok(Json(overview_json(&app).await?).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct FindingParams {
    since: Option<String>,
    min_severity: Option<String>,
    kind: Option<String>,
    limit: Option<usize>,
}

async fn findings(
    State(app): AppState,
    headers: HeaderMap,
    Query(p): Query<FindingParams>,
) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    let (since, _) = Range {
        since: p.since.clone(),
        until: None,
    }
    .ms()?;
    let min = match p.min_severity.as_deref() {
        None | Some("") => None,
        Some(s) => Some(Severity::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("min_severity: `{s}` (low, medium, high, critical)"))
        })?),
    };
    let limit = p.limit.unwrap_or(1000).min(10_000);
    let kind = p.kind.clone();
    let mut list = app.with_store(move |s| Ok(s.findings(since)?)).await?;
    list.retain(|f| {
        min.is_none_or(|m| f.severity >= m) && kind.as_deref().is_none_or(|k| f.kind.as_str() == k)
    });
    list.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.first_ms.cmp(&b.first_ms))
    });
    let total = list.len();
    list.truncate(limit);
    Ok(Json(json!({"findings": list, "total": total})).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct IncidentParams {
    status: Option<String>,
}

async fn incidents(
    State(app): AppState,
    headers: HeaderMap,
    Query(p): Query<IncidentParams>,
) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    let status = match p.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<Status>()
                .map_err(|e| ApiError::bad_request(format!("status: {e}")))?,
        ),
    };
    let list = app.with_store(move |s| Ok(s.incidents(status)?)).await?;
    Ok(Json(json!({"incidents": list})).into_response())
}

/// 404 for an incident that is not stored.
fn found<T>(value: Option<T>, id: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::not_found(format!("no incident `{id}`")))
}

/// An incident and its findings.
pub async fn incident_json(app: &Arc<App>, id: String) -> Result<Value, ApiError> {
    app.with_store(move |s| {
        let (incident, findings) = found(s.incident_with_findings(&id)?, &id)?;
        Ok(json!({"incident": incident, "findings": findings}))
    })
    .await
}

async fn incident(State(app): AppState, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    Ok(Json(incident_json(&app, id).await?).into_response())
}

/// A status change's body.
#[derive(Debug, Default, Deserialize)]
pub struct ChangeBody {
    /// Why.
    #[serde(default)]
    pub note: String,
}

/// Record a status change by `by`.
pub async fn change_status(
    app: &Arc<App>,
    id: String,
    status: Status,
    by: String,
    note: String,
) -> Result<Value, ApiError> {
    if note.len() > 10_000 {
        return Err(ApiError::bad_request("note: at most 10,000 bytes"));
    }
    let incident = app
        .with_store(move |s| {
            Ok(s.set_status(
                &id,
                StatusChange {
                    status,
                    by,
                    at_ms: now_ms(),
                    note,
                },
            )?)
        })
        .await?;
    Ok(json!({"incident": incident}))
}

/// A status change through the API: a responder, the note in the body.
async fn status_route(
    app: Arc<App>,
    headers: HeaderMap,
    id: String,
    bytes: &[u8],
    status: Status,
) -> ApiResult {
    let caller = app.require(&headers, Role::Responder, true, None)?;
    let note = optional_body::<ChangeBody>(bytes)?.note;
    let v = change_status(&app, id, status, caller.principal.name, note).await?;
    Ok(Json(v).into_response())
}

async fn ack(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    status_route(app, headers, id, &bytes, Status::Acknowledged).await
}

async fn resolve(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    status_route(app, headers, id, &bytes, Status::Resolved).await
}

#[derive(Debug, Default, Deserialize)]
struct ReportParams {
    format: Option<String>,
}

/// The report of incident `id`, checked against the policy in force.
pub async fn report_of(app: &Arc<App>, id: String) -> Result<report::Report, ApiError> {
    let policy = app.policy.as_ref().map(|c| c.policy().as_ref().clone());
    let store = app.store_dir.display().to_string();
    app.with_store(move |s| {
        let (incident, findings) = found(s.incident_with_findings(&id)?, &id)?;
        let kb = Kb::embedded().map_err(ApiError::internal)?;
        Ok(report::build(
            &incident,
            &findings,
            &kb,
            policy.as_ref(),
            Some(&store),
            now_ms(),
        ))
    })
    .await
}

/// The report of incident `id` in `format` (md, html, json).
pub async fn report_response(app: &Arc<App>, id: String, format: &str) -> ApiResult {
    if !["md", "html", "json"].contains(&format) {
        return Err(ApiError::bad_request(format!(
            "format: `{format}` (md, html, json)"
        )));
    }
    let built = report_of(app, id).await?;
    let name = format!("{}.{format}", built.incident.id);
    let (body, kind) = match format {
        "md" => (report::markdown(&built), "text/markdown; charset=utf-8"),
        "html" => (report::html(&built), "text/html; charset=utf-8"),
        _ => (
            serde_json::to_string_pretty(&built).map_err(ApiError::internal)?,
            "application/json",
        ),
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    Ok(r)
}

async fn incident_report(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<ReportParams>,
) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    report_response(&app, id, p.format.as_deref().unwrap_or("html")).await
}

/// The vendor register over `range`.
pub async fn vendors_json(app: &Arc<App>, r: Range) -> Result<Value, ApiError> {
    let (since_ms, until_ms) = r.ms()?;
    let policy = app.policy.as_ref().map(|c| c.policy().as_ref().clone());
    app.with_store(move |s| {
        let mut register = cordon_incident::vendors::Register::new(policy.as_ref());
        let query = FlowQuery {
            since_ms,
            until_ms,
            ..FlowQuery::default()
        };
        let truncated = scan_within(s, &query, |f| register.add(&f))?;
        let parties = register.finish(&s.findings(since_ms)?, &s.incidents(None)?);
        Ok(json!({"vendors": parties, "truncated": truncated}))
    })
    .await
}

async fn vendors(State(app): AppState, headers: HeaderMap, Query(r): Query<Range>) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    Ok(Json(vendors_json(&app, r).await?).into_response())
}

fn current(app: &App) -> Result<&Arc<CompiledPolicy>, ApiError> {
    app.policy.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        code: "no_policy",
        message: "the server runs without a policy (start it with --policy FILE)".to_string(),
    })
}

async fn policy(State(app): AppState, headers: HeaderMap) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    let c = current(&app)?;
    let p = c.policy();
    let text = std::fs::read_to_string(&p.file).unwrap_or_default();
    let groups: Vec<Value> = p
        .groups
        .iter()
        .filter(|g| !g.builtin)
        .map(|g| {
            json!({
                "name": g.name,
                "external": g.external,
                "vendor": g.vendor.as_ref().map(|v| v.name.clone()),
            })
        })
        .collect();
    let rules: Vec<Value> = p
        .rules
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "from": r.from.iter().map(|g| p.group_name(*g)).collect::<Vec<_>>(),
                "to": r.to.iter().map(|g| p.group_name(*g)).collect::<Vec<_>>(),
                "ports": r.ports.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "action": r.action.to_string(),
            })
        })
        .collect();
    Ok(Json(
        json!({"name": p.name, "file": p.file, "groups": groups, "rules": rules, "text": text}),
    )
    .into_response())
}

/// `POST /api/v1/policy/explain` body.
#[derive(Debug, Deserialize)]
pub struct ExplainBody {
    /// Source: workload, address or hostname.
    pub from: String,
    /// Destination.
    pub to: String,
    /// `tcp/443`.
    pub port: String,
}

async fn explain(State(app): AppState, headers: HeaderMap, bytes: axum::body::Bytes) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    let body: ExplainBody = body(&bytes)?;
    let c = current(&app)?;
    let p = c.policy();
    let src = Endpoint::parse(p, &body.from)
        .map_err(|e| ApiError::bad_request(format!("from: {}", e.0)))?;
    let dst =
        Endpoint::parse(p, &body.to).map_err(|e| ApiError::bad_request(format!("to: {}", e.0)))?;
    let (protocol, port) = Request::parse_port(&body.port)
        .map_err(|e| ApiError::bad_request(format!("port: {}", e.0)))?;
    let request = Request {
        src,
        dst,
        protocol,
        port,
    };
    let decision = c.evaluate(&request);
    let e = cordon_policy::explain(c, &request, &decision);
    Ok(Json(serde_json::to_value(&e).map_err(ApiError::internal)?).into_response())
}

async fn lint(State(app): AppState, headers: HeaderMap) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    let c = current(&app)?;
    let findings = cordon_policy::lint::lint(c.policy());
    Ok(Json(json!({"findings": findings})).into_response())
}

/// `POST /api/v1/policy/what-if` body.
#[derive(Debug, Deserialize)]
pub struct WhatIfBody {
    /// The candidate policy, as YAML.
    pub policy: String,
    /// Start of the range of stored flows to judge.
    pub since: Option<String>,
    /// End of it.
    pub until: Option<String>,
}

/// Judge stored flows by the candidate policy `text`.
pub async fn what_if_json(app: &Arc<App>, body: WhatIfBody) -> Result<Value, ApiError> {
    let (since_ms, until_ms) = Range {
        since: body.since.clone(),
        until: body.until.clone(),
    }
    .ms()?;
    // The candidate's inventory files resolve beside the current policy.
    let base = app
        .policy
        .as_ref()
        .map(|c| std::path::PathBuf::from(&c.policy().file))
        .and_then(|f| f.parent().map(|d| d.join("candidate.yaml")))
        .unwrap_or_else(|| std::path::PathBuf::from("candidate.yaml"));
    let candidate = parse_policy(
        &base.display().to_string(),
        &body.policy,
        &LoadOptions::default(),
    )
    .map_err(|e| {
        let lines: Vec<String> = e.diagnostics.iter().map(ToString::to_string).collect();
        ApiError::bad_request(format!(
            "the candidate policy is invalid:\n{}",
            lines.join("\n")
        ))
    })?;
    let diff = app
        .policy
        .as_ref()
        .map(|c| cordon_policy::diff::diff(c.policy(), &candidate));
    let compiled = Arc::new(CompiledPolicy::new(Arc::new(candidate)));
    let current = app.policy.clone();
    let report = app
        .with_store(move |s| {
            let mut what_if = cordon_pipeline::WhatIf::new(current, compiled);
            let query = FlowQuery {
                since_ms,
                until_ms,
                ..FlowQuery::default()
            };
            let truncated = scan_within(s, &query, |f| what_if.observe(f))?;
            Ok((what_if.finish(), truncated))
        })
        .await?;
    Ok(json!({"flows": report.0, "truncated": report.1, "reachability": diff}))
}

async fn what_if(State(app): AppState, headers: HeaderMap, bytes: axum::body::Bytes) -> ApiResult {
    app.require(&headers, Role::Viewer, false, None)?;
    let request: WhatIfBody = body(&bytes)?;
    Ok(Json(what_if_json(&app, request).await?).into_response())
}
