//! `/responses`: the responses file as a table, with approve and undo
//! forms for responders.

use std::fmt::Write as _;

use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{csrf_of, error_page, esc, page, session, url};
use crate::api::AppState;
use crate::auth::Role;
use crate::responses::{Change, change, list_json};

/// `/responses`
pub async fn responses(State(app): AppState, headers: HeaderMap) -> Response {
    let caller = match session(&app, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let data = match list_json(&app).await {
        Ok(v) => v,
        Err(e) => return error_page(&caller, &e),
    };
    let mut b = String::from("<h1>Responses</h1>");
    if data["configured"] != true {
        b.push_str("<p>This server follows no responses file: start it with <code>cordon serve --responses FILE</code>, the file <code>cordon agent --responses</code> and <code>cordon gateway --responses</code> follow.</p>");
        return page("Responses", &caller, "/responses", &b);
    }
    let responder = caller.principal.role >= Role::Responder;
    let _ = write!(
        b,
        "<p class=\"note\">Generation {}. Quarantines and blocks are enforced by every agent and gateway that follows the file, within a second of a change; each ends by itself when its TTL runs out.{}</p>",
        data["generation"],
        if responder {
            ""
        } else {
            " Approving and undoing needs the responder role."
        }
    );
    let rows = data["responses"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        b.push_str("<p>No responses yet.</p>");
        return page("Responses", &caller, "/responses", &b);
    }
    b.push_str("<table><thead><tr><th>ID</th><th>Status</th><th>Action</th><th>Target</th><th>Expires</th><th>Reason</th><th>By</th><th></th></tr></thead><tbody>");
    let csrf = esc(&csrf_of(&caller));
    let mut approve_shown = false;
    for r in rows.iter().rev() {
        let id = r["id"].as_str().unwrap_or_default();
        let status = r["status"].as_str().unwrap_or_default();
        let target = match r["action"].as_str() {
            Some("quarantine") => r["target"]["ip"]
                .as_str()
                .or(r["target"]["workload"].as_str())
                .unwrap_or_default()
                .to_string(),
            Some("block") => {
                let to = r["to"]
                    .as_object()
                    .and_then(|m| m.values().next())
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                match r["from"].as_str() {
                    Some(f) => format!("{to} from {f}"),
                    None => to.to_string(),
                }
            }
            _ => format!(
                "{} to {}",
                r["vendor"].as_str().unwrap_or_default(),
                r["limit"].as_str().unwrap_or_default()
            ),
        };
        let mut controls = String::new();
        if responder {
            if status == "proposed" {
                // The first proposal's button carries the id the tests and
                // keyboard users find it by.
                let attr = if approve_shown { "" } else { " id=\"approve\"" };
                approve_shown = true;
                let _ = write!(
                    controls,
                    "<form method=\"post\" action=\"/responses/{rid}/approve\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\"{attr}>Approve</button></form> ",
                    rid = esc(&url(id))
                );
            }
            if status == "proposed" || status == "active" {
                let _ = write!(
                    controls,
                    "<form method=\"post\" action=\"/responses/{rid}/undo\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\" class=\"secondary\">Undo</button></form>",
                    rid = esc(&url(id))
                );
            }
        }
        let _ = write!(
            b,
            "<tr data-id=\"{}\" data-status=\"{}\"><td class=\"nowrap\"><code>{}</code></td><td><span class=\"badge rsp-{}\">{}</span></td><td>{}</td><td>{}</td><td class=\"nowrap\">{}</td><td>{}</td><td>{}</td><td class=\"nowrap\">{controls}</td></tr>",
            esc(id),
            esc(status),
            esc(id),
            esc(status),
            esc(status),
            esc(r["action"].as_str().unwrap_or_default()),
            esc(&target),
            esc(&short(r["expires"].as_str().unwrap_or("-"))),
            esc(r["reason"].as_str().unwrap_or_default()),
            esc(r["createdBy"].as_str().unwrap_or_default()),
        );
    }
    b.push_str("</tbody></table>");
    page("Responses", &caller, "/responses", &b)
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /responses/{id}/{approve|undo}` from the console.
pub async fn action(
    State(app): AppState,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let what = match action.as_str() {
        "approve" => Change::Approve,
        "undo" => Change::Undo,
        _ => return crate::ApiError::not_found("no such action").into_response(),
    };
    let caller = match app.require(&headers, Role::Responder, true, Some(&form.csrf)) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let by = format!("console:{}", caller.principal.name);
    match change(&app, id, what, by, None).await {
        Ok(_) => Redirect::to("/responses").into_response(),
        Err(e) => error_page(&caller, &e),
    }
}

/// `2026-12-07T06:59:58.352Z` as `2026-12-07 06:59Z`: enough to act on,
/// one line in a table.
fn short(t: &str) -> String {
    match (t.get(..10), t.get(11..16)) {
        (Some(day), Some(hm)) if t.len() > 16 => format!("{day} {hm}Z"),
        _ => t.to_string(),
    }
}
