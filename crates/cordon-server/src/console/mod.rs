//! The web console: server-rendered pages (no build step, nothing fetched
//! from elsewhere, a few lines of inline script only for the filter's
//! autocompletion), readable on a laptop screen and usable with the
//! keyboard. Every page needs a session; forms that change anything carry
//! the session's CSRF token.

mod pages;
mod responses;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::auth::Principal;
use crate::{ApiError, App, Caller, SESSION_COOKIE, Via, cookie};

/// The routes of the console.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/", get(pages::overview))
        .route("/topology", get(pages::topology))
        .route("/flows", get(pages::flows))
        .route("/flows.csv", get(pages::flows_csv))
        .route("/findings", get(pages::findings))
        .route("/incidents", get(pages::incidents))
        .route("/incidents/{id}", get(pages::incident))
        .route("/incidents/{id}/{action}", post(pages::incident_action))
        .route("/vendors", get(pages::vendors))
        .route("/policy", get(pages::policy).post(pages::what_if))
        .route("/responses", get(responses::responses))
        .route("/responses/{id}/{action}", post(responses::action))
}

/// Escape text for HTML.
pub use cordon_incident::report::escape_html as esc;

/// Percent-encode a query value.
pub fn url(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

const STYLE: &str = "
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;background:#f6f8fb}
header{background:#17203a;color:#fff;display:flex;align-items:center;gap:1.2em;padding:.5em 1.2em;flex-wrap:wrap}
header a{color:#cfd8ea;text-decoration:none;padding:.2em .1em}header a:hover,header a:focus,header a[aria-current]{color:#fff;text-decoration:underline}
header .brand{font-weight:700;color:#fff;margin-right:.6em}header form{margin-left:auto}header .who{margin-left:auto;color:#cfd8ea}
main{max-width:1280px;margin:1.2em auto;padding:0 1.2em}h1{font-size:1.45em;margin:.2em 0 .6em}h2{font-size:1.15em;margin-top:1.4em}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{background:#fff;border:1px solid #dde3ec;border-radius:8px;padding:.8em 1em;min-width:150px}
.card b{display:block;font-size:1.6em}table{border-collapse:collapse;width:100%;background:#fff;margin:.5em 0}
th,td{border:1px solid #dde3ec;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#eef2f8}
td.num{text-align:right;font-variant-numeric:tabular-nums}.badge{display:inline-block;padding:0 .5em;border-radius:.8em;color:#fff;font-size:.85em;font-weight:600}
.sev-low{background:#6b7f99}.sev-medium{background:#c98a00}.sev-high{background:#d9480f}.sev-critical{background:#b00020}
.rsp-active{background:#b00020}.rsp-proposed{background:#c98a00}.rsp-expired,.rsp-undone{background:#6b7f99}td.nowrap,td.nowrap code{white-space:nowrap}
.v-deny{color:#b00020;font-weight:600}.v-would-deny{color:#b35c00;font-weight:600}.v-allow{color:#2f6f3e}
input,textarea,select,button{font:inherit}input[type=text],input[type=search],input[type=password],textarea{border:1px solid #b8c2d3;border-radius:4px;padding:.35em .5em}
button{background:#2456c7;color:#fff;border:0;border-radius:4px;padding:.4em .9em;cursor:pointer}button.secondary{background:#5a6478}
:focus-visible{outline:3px solid #f5a623;outline-offset:2px}.error{background:#fde8e8;border:1px solid #f3b4b4;padding:.6em .8em;border-radius:6px;white-space:pre-wrap}
.note{color:#4a5568}form.inline{display:inline}code{font:12px ui-monospace,Menlo,monospace;background:#eef2f8;padding:.1em .3em;border-radius:3px}
svg{background:#fff;border:1px solid #dde3ec;border-radius:8px;max-width:100%;height:auto}.filter{display:flex;gap:.5em;flex-wrap:wrap;align-items:center}
.filter input[name=q]{min-width:28em;flex:1}
";

/// A whole page around `body`.
pub fn page(title: &str, caller: &Caller, current: &str, body: &str) -> Response {
    let nav = [
        ("/", "Overview"),
        ("/topology", "Topology"),
        ("/flows", "Flows"),
        ("/findings", "Findings"),
        ("/incidents", "Incidents"),
        ("/vendors", "Vendors"),
        ("/policy", "Policy what-if"),
        ("/responses", "Responses"),
    ];
    let mut links = String::new();
    for (href, name) in nav {
        let cur = if href == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        links.push_str(&format!("<a href=\"{href}\"{cur}>{name}</a>"));
    }
    let csrf = csrf_of(caller);
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{} · Cordon</title><style>{STYLE}</style></head><body><header><span class=\"brand\">Cordon</span>{links}<span class=\"who\">{} ({})</span><form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button class=\"secondary\" type=\"submit\">Log out</button></form></header><main>{body}</main></body></html>",
        esc(title),
        esc(&caller.principal.name),
        caller.principal.role.as_str(),
        esc(&csrf)
    );
    html_response(html)
}

/// HTML with the console's security headers.
pub fn html_response(html: String) -> Response {
    let mut r = html.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The CSRF token of a session caller (empty for bearer callers).
pub fn csrf_of(caller: &Caller) -> String {
    match &caller.via {
        Via::Session { csrf } => csrf.clone(),
        Via::Bearer => String::new(),
    }
}

/// The caller of a console page, or the way to the login form.
pub fn session(app: &App, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
    app.caller(headers)
        .map_err(|_| Box::new(Redirect::to("/login").into_response()))
}

/// An API error shown as a page.
pub fn error_page(caller: &Caller, e: &ApiError) -> Response {
    let mut r = page(
        "Error",
        caller,
        "",
        &format!(
            "<h1>{}</h1><p class=\"error\">{}</p>",
            e.status,
            esc(&e.message)
        ),
    );
    *r.status_mut() = e.status;
    r
}

async fn login_form() -> Response {
    login_page("", StatusCode::OK)
}

fn login_page(message: &str, status: StatusCode) -> Response {
    let error = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(message))
    };
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Log in · Cordon</title><style>{STYLE}</style></head><body><header><span class=\"brand\">Cordon</span></header><main><h1>Log in</h1>{error}<form method=\"post\" action=\"/login\"><p><label for=\"token\">Token</label><br><input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" size=\"48\" required autofocus></p><p><button type=\"submit\">Log in</button></p></form><p class=\"note\">A token from the server's token file. Without one, the first start wrote an admin token to the store folder and printed where.</p></main></body></html>"
    );
    let mut r = html_response(html);
    *r.status_mut() = status;
    r
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(app): State<Arc<App>>, Form(form): Form<LoginForm>) -> Response {
    let Some(principal) = app.tokens.check(form.token.trim()).cloned() else {
        app.metrics
            .auth_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The same answer, and no faster, whatever was wrong.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        return login_page("That token is not valid.", StatusCode::UNAUTHORIZED);
    };
    if principal.role == crate::auth::Role::Partner {
        return login_page(
            "That token is for exchanging threat intelligence over TAXII only.",
            StatusCode::FORBIDDEN,
        );
    }
    let (id, _) = app.sessions.open(Principal {
        name: principal.name,
        role: principal.role,
    });
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    let cookie_value = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        crate::auth::SESSION_LIFETIME.as_secs()
    );
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie_value) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(e) = app.require(&headers, crate::auth::Role::Viewer, true, Some(&form.csrf)) {
        return e.into_response();
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        app.sessions.close(id);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cordon_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}
