//! `cordon serve` over the demo's store: every API route against the
//! OpenAPI document, authentication and roles, CSRF, limits and bad input
//! over real HTTP; and the console in a real browser (Playwright driving
//! Chromium).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::serve::{Reply, Server, http, spawn_serve};
use common::{cordon, stderr, temp_dir};
use serde_json::Value;

const ADMIN: &str = "admin-token-0123456789abcdef";
const RESPONDER: &str = "responder-token-0123456789ab";
const VIEWER: &str = "viewer-token-0123456789abcde";

fn demo() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = temp_dir("console-demo");
        let out = cordon(&["demo", "--out", dir.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::write(
            dir.join("tokens.txt"),
            format!("# test tokens\n{ADMIN} admin alice\n{RESPONDER} responder bob\n{VIEWER} viewer carol\n"),
        )
        .unwrap();
        dir
    })
}

/// A copy of the demo's store for a test that changes it.
fn store_copy(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    for f in std::fs::read_dir(demo().join("store")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    dir
}

fn serve(store: &Path, extra: &[&str]) -> Server {
    let d = demo();
    let policy = d.join("acme-prod.yaml");
    let mut args = vec!["--policy", policy.to_str().unwrap()];
    args.extend_from_slice(extra);
    spawn_serve(store, &args)
}

fn get(addr: &str, path: &str, token: Option<&str>) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http(addr, "GET", path, &headers, b"")
}

fn post_json(addr: &str, path: &str, token: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {token}");
    http(
        addr,
        "POST",
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
}

fn json(r: &Reply) -> Value {
    // Bodies may be chunked: take the JSON between the first { and last }.
    let (a, b) = (
        r.body.find(['{', '[']).unwrap_or(0),
        r.body.rfind(['}', ']']).unwrap_or(0),
    );
    serde_json::from_str(&r.body[a..=b]).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

#[test]
fn every_route_in_the_openapi_document_answers_and_checks_who_calls() {
    let store = store_copy("console-routes");
    let s = serve(
        &store,
        &["--tokens", demo().join("tokens.txt").to_str().unwrap()],
    );
    let a = &s.addr;
    assert_eq!(get(a, "/healthz", None).status, 200);
    let doc = json(&get(a, "/api/v1/openapi.json", Some(VIEWER)));
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let id = {
        let list = json(&get(a, "/api/v1/incidents", Some(VIEWER)));
        list["incidents"][0]["id"].as_str().unwrap().to_string()
    };
    for (path, ops) in paths {
        let concrete = path.replace("{id}", &id);
        for (method, op) in ops.as_object().unwrap() {
            let method = method.to_uppercase();
            let public = op["security"].as_array().is_some_and(Vec::is_empty);
            // Without a token: 401 (except /healthz).
            let anon = http(a, &method, &concrete, &[], b"");
            if public {
                assert_eq!(anon.status, 200, "{method} {path}");
                continue;
            }
            assert_eq!(anon.status, 401, "{method} {path} without a token");
            assert!(anon.headers.contains("www-authenticate: bearer"), "{path}");
            // A wrong token: 401 too.
            let bad = http(
                a,
                &method,
                &concrete,
                &[("Authorization", "Bearer nope-nope-nope-nope")],
                b"",
            );
            assert_eq!(bad.status, 401, "{method} {path} with a wrong token");
            // With the role the document names: an answer that is not an
            // auth failure or a missing route.
            let role = op["description"].as_str().unwrap();
            let token = if role.contains("responder") {
                RESPONDER
            } else {
                VIEWER
            };
            let body = match path.as_str() {
                "/api/v1/policy/explain" => {
                    serde_json::json!({"from": "notifier-1", "to": "user-db-1", "port": "tcp/5432"})
                }
                "/api/v1/policy/what-if" => {
                    serde_json::json!({"policy": std::fs::read_to_string(demo().join("acme-prod.yaml")).unwrap()})
                }
                _ => serde_json::json!({"note": "from the tests"}),
            };
            let r = if method == "GET" {
                get(a, &concrete, Some(token))
            } else {
                post_json(a, &concrete, token, &body)
            };
            // Responses: listed (200); changes need a responses file this
            // server was not given (409) and a body of their own (400).
            let expected: &[u16] = if path.contains("/responses") && method != "GET" {
                &[400, 409]
            } else if path == "/api/v1/policy/bundle" {
                // This server publishes no bundle (tests/bundles.rs serves one).
                &[404]
            } else {
                &[200]
            };
            assert!(
                expected.contains(&r.status),
                "{method} {path}: {} {}",
                r.status,
                r.body
            );
            // A viewer may not change anything.
            if role.contains("responder") {
                let r = post_json(a, &concrete, VIEWER, &body);
                assert_eq!(r.status, 403, "{method} {path} as a viewer");
                assert_eq!(json(&r)["error"]["code"], "forbidden");
            }
        }
    }
    // Every route the server has is in the document.
    for route in [
        "/api/v1/overview",
        "/api/v1/flows",
        "/api/v1/topology",
        "/api/v1/findings",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/incidents/{id}/ack",
        "/api/v1/incidents/{id}/resolve",
        "/api/v1/incidents/{id}/report",
        "/api/v1/vendors",
        "/api/v1/policy",
        "/api/v1/policy/explain",
        "/api/v1/policy/lint",
        "/api/v1/policy/what-if",
        "/api/v1/responses",
        "/metrics",
    ] {
        assert!(paths.contains_key(route), "{route} is not documented");
    }
}

#[test]
fn bad_input_gets_a_reason_and_limits_hold() {
    let s = serve(
        &demo().join("store"),
        &["--tokens", demo().join("tokens.txt").to_str().unwrap()],
    );
    let a = &s.addr;
    for (path, says) in [
        ("/api/v1/flows?q=port:http", "not a port"),
        ("/api/v1/flows?q=colour:red", "unknown key"),
        ("/api/v1/flows?limit=0", "limit"),
        ("/api/v1/flows?limit=999999", "limit"),
        ("/api/v1/flows?cursor=garbage", "cursor"),
        ("/api/v1/flows?group_by=colour", "group_by"),
        ("/api/v1/flows?bucket=7m", "bucket"),
        ("/api/v1/flows?since=yesterday-ish", "since"),
        ("/api/v1/findings?min_severity=dire", "min_severity"),
        ("/api/v1/incidents?status=closed", "status"),
        (
            "/api/v1/incidents/INC-0000000000/report?format=pdf",
            "format",
        ),
    ] {
        let r = get(a, path, Some(VIEWER));
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        let e = json(&r);
        assert_eq!(e["error"]["code"], "bad_request");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{path}: {}",
            r.body
        );
    }
    let r = get(a, "/api/v1/incidents/INC-0000000000", Some(VIEWER));
    assert_eq!(r.status, 404);
    // An invalid candidate policy says where.
    let r = post_json(
        a,
        "/api/v1/policy/what-if",
        VIEWER,
        &serde_json::json!({"policy": "apiVersion: cordon/v1\nkind: Policy\nspec: {rules: [{name: x}]}\n"}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("candidate policy is invalid"), "{}", r.body);
    // Oversized bodies are refused before they are read whole.
    let big = vec![b'a'; 2 * 1024 * 1024];
    let auth = format!("Bearer {VIEWER}");
    let r = http(
        a,
        "POST",
        "/api/v1/policy/what-if",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &big,
    );
    assert_eq!(r.status, 413, "{}", r.body);

    // Pages of flows chain by cursor without repeating or losing flows.
    let first = json(&get(
        a,
        "/api/v1/flows?q=group:notifier&limit=50",
        Some(VIEWER),
    ));
    let next = first["next_cursor"].as_str().unwrap();
    let second = json(&get(
        a,
        &format!("/api/v1/flows?q=group:notifier&limit=50&cursor={next}"),
        Some(VIEWER),
    ));
    let both = json(&get(
        a,
        "/api/v1/flows?q=group:notifier&limit=100",
        Some(VIEWER),
    ));
    let key = |f: &Value| {
        format!(
            "{}{}{}{}",
            f["start_ms"], f["src_port"], f["dst_ip"], f["dst_port"]
        )
    };
    let paged: Vec<String> = first["flows"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["flows"].as_array().unwrap())
        .map(key)
        .collect();
    let whole: Vec<String> = both["flows"].as_array().unwrap().iter().map(key).collect();
    assert_eq!(paged, whole);
}

#[test]
fn the_console_needs_a_session_and_csrf_on_every_change() {
    let store = store_copy("console-csrf");
    let s = serve(
        &store,
        &["--tokens", demo().join("tokens.txt").to_str().unwrap()],
    );
    let a = &s.addr;
    let r = get(a, "/flows", None);
    assert_eq!(r.status, 303, "{}", r.headers);
    assert!(r.headers.contains("location: /login"));
    // Log in with a form: an HttpOnly, SameSite=Strict cookie.
    let r = http(
        a,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("token={RESPONDER}").as_bytes(),
    );
    assert_eq!(r.status, 303);
    let cookie_line = r
        .raw_headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap()
        .to_string();
    let lower = cookie_line.to_ascii_lowercase();
    assert!(
        lower.contains("httponly") && lower.contains("samesite=strict"),
        "{cookie_line}"
    );
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("cordon_session="));
    let page = http(a, "GET", "/", &[("Cookie", &cookie)], b"");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("INC-"),
        "the overview shows the incident"
    );
    assert!(page.headers.contains("content-security-policy"));
    let id = page
        .body
        .split("/incidents/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    // Acknowledging without the CSRF token is refused; with it, it works.
    let form = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let r = http(a, "POST", &format!("/incidents/{id}/ack"), &form, b"note=x");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("csrf"));
    let r = http(
        a,
        "POST",
        &format!("/api/v1/incidents/{id}/ack"),
        &form,
        b"",
    );
    assert_eq!(r.status, 403, "API call by cookie without the CSRF header");
    let incident_page = http(
        a,
        "GET",
        &format!("/incidents/{id}"),
        &[("Cookie", &cookie)],
        b"",
    );
    let csrf = incident_page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = http(
        a,
        "POST",
        &format!("/incidents/{id}/ack"),
        &form,
        format!("csrf={csrf}&note=on+it").as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let after = json(&get(a, &format!("/api/v1/incidents/{id}"), Some(VIEWER)));
    let history = after["incident"]["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|c| c["by"] == "bob" && c["note"] == "on it"),
        "{history:?}"
    );
}

#[test]
fn first_start_without_tokens_makes_one_admin_token_and_keeps_only_its_digest() {
    let dir = temp_dir("console-first");
    let store = dir.join("store");
    // An empty store is fine; the token file exists before the server
    // says where it listens.
    let first = spawn_serve(&store, &[]);
    let token_file = store.join("admin-token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let digests = std::fs::read_to_string(store.join("server-tokens.sha256")).unwrap();
    assert!(!digests.contains(&token), "the token itself is not kept");
    drop(first);
    // The next start uses the digest and makes no new token.
    std::fs::remove_file(&token_file).unwrap();
    let again = spawn_serve(&store, &[]);
    let addr = again.addr.clone();
    assert!(!token_file.exists());
    assert_eq!(get(&addr, "/api/v1/overview", Some(&token)).status, 200);
    assert_eq!(get(&addr, "/api/v1/overview", None).status, 401);
    drop(again);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `cordon serve` on `store` with `extra` arguments, stopped when dropped.
#[test]
fn what_a_concurrent_ingest_commits_shows_up_without_a_restart() {
    let dir = temp_dir("console-live");
    let store = dir.join("store");
    let tokens = dir.join("tokens.txt");
    std::fs::write(&tokens, format!("{VIEWER} viewer carol\n")).unwrap();
    let server = spawn_serve(&store, &["--tokens", tokens.to_str().unwrap()]);
    let addr = server.addr.clone();
    let before = json(&get(&addr, "/api/v1/overview", Some(VIEWER)));
    assert_eq!(before["flows"], 0);
    let log = dir.join("flows.log");
    std::fs::write(
        &log,
        "2 123456789012 eni-1 10.0.1.10 10.0.2.10 40000 5432 6 10 1000 1770076800 1770076860 ACCEPT OK\n\
         2 123456789012 eni-1 10.0.1.10 52.216.1.1 40001 443 6 10 1000 1770076800 1770076860 ACCEPT OK\n",
    )
    .unwrap();
    let out = cordon(&[
        "ingest",
        "--store",
        store.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = json(&get(&addr, "/api/v1/overview", Some(VIEWER)));
    assert_eq!(after["flows"], 2, "{after}");
    let page = json(&get(&addr, "/api/v1/flows?q=port:5432", Some(VIEWER)));
    assert_eq!(page["count"], 1);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "needs openssl and curl; CI runs it"]
fn the_server_speaks_tls_with_the_given_certificate() {
    let dir = temp_dir("console-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let tokens = dir.join("tokens.txt");
    std::fs::write(&tokens, format!("{VIEWER} viewer carol\n")).unwrap();
    let server = spawn_serve(
        &dir.join("store"),
        &[
            "--tokens",
            tokens.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let addr = server.addr.clone();
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&cert)
            .args(args)
            .output()
            .expect("curl runs")
    };
    let health = curl(&[&format!("https://{addr}/healthz")]);
    assert!(
        String::from_utf8_lossy(&health.stdout).contains("ok"),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    // Over TLS the session cookie is Secure.
    let login = curl(&[
        "-i",
        "-d",
        &format!("token={VIEWER}"),
        &format!("https://{addr}/login"),
    ]);
    let head = String::from_utf8_lossy(&login.stdout).to_ascii_lowercase();
    assert!(
        head.contains("set-cookie:") && head.contains("; secure"),
        "{head}"
    );
    // Plain HTTP to the TLS port gets nothing useful.
    let plain = get(&addr, "/healthz", None);
    assert_ne!(plain.status, 200);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "needs node with npm playwright-core (tests/browser) and chromium; CI runs it"]
fn the_console_works_in_a_real_browser() {
    let store = store_copy("console-browser");
    // One proposal waiting for a responder.
    let responses = store.join("responses.yaml");
    let made = cordon(&[
        "respond",
        "quarantine",
        "--ip",
        "203.0.113.66",
        "--ttl",
        "1h",
        "--reason",
        "beacon to a lookalike domain",
        "--propose",
        "--responses",
        responses.to_str().unwrap(),
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let s = serve(
        &store,
        &[
            "--tokens",
            demo().join("tokens.txt").to_str().unwrap(),
            "--responses",
            responses.to_str().unwrap(),
        ],
    );
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let shot = std::env::var("CORDON_SCREENSHOT").ok();
    let mut cmd = Command::new("node");
    cmd.arg(browser.join("console.mjs"))
        .arg(format!("http://{}", s.addr))
        .args([ADMIN, RESPONDER, VIEWER])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme-prod.yaml"));
    if let Some(shot) = &shot {
        cmd.arg(shot);
    }
    let out = cmd.output().expect("node runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn responses_are_made_approved_and_undone_over_the_api() {
    let store = store_copy("console-responses");
    let responses = store.join("responses.yaml");
    let s = serve(
        &store,
        &[
            "--tokens",
            demo().join("tokens.txt").to_str().unwrap(),
            "--responses",
            responses.to_str().unwrap(),
        ],
    );
    let a = &s.addr;
    let list = get(a, "/api/v1/responses", Some(VIEWER));
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(json(&list)["responses"], serde_json::json!([]));
    // A proposal, then its approval and its undoing, each in the trail.
    let made = post_json(
        a,
        "/api/v1/responses",
        RESPONDER,
        &serde_json::json!({"action": "block", "to": "storage.googleapis.com", "from": "notifier",
            "ttl": "2h", "reason": "exfiltration to cloud storage", "propose": true}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let id = json(&made)["id"].as_str().unwrap().to_string();
    assert_eq!(json(&made)["status"], "proposed");
    let approved = post_json(
        a,
        &format!("/api/v1/responses/{id}/approve"),
        RESPONDER,
        &serde_json::json!({"note": "confirmed"}),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(json(&approved)["status"], "active");
    let undone = post_json(
        a,
        &format!("/api/v1/responses/{id}/undo"),
        RESPONDER,
        &serde_json::json!({}),
    );
    assert_eq!(json(&undone)["status"], "undone");
    let trail: Vec<String> = json(&undone)["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["what"].as_str().unwrap(),
                e["by"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        trail,
        ["proposed api:bob", "approved api:bob", "undone api:bob"],
        "{}",
        undone.body
    );
    // Refusals say why: the TTL bound, an unknown group, twice undone.
    let long = post_json(
        a,
        "/api/v1/responses",
        RESPONDER,
        &serde_json::json!({"action": "quarantine", "ip": "203.0.113.66", "ttl": "30d", "reason": "x"}),
    );
    assert_eq!(long.status, 409, "{}", long.body);
    assert!(long.body.contains("longer than"), "{}", long.body);
    let unknown = post_json(
        a,
        "/api/v1/responses",
        RESPONDER,
        &serde_json::json!({"action": "block", "to": "storage.googleapis.com", "from": "notifiers", "ttl": "1h", "reason": "x"}),
    );
    assert_eq!(unknown.status, 409, "{}", unknown.body);
    assert!(
        unknown.body.contains("did you mean `notifier`"),
        "{}",
        unknown.body
    );
    let again = post_json(
        a,
        &format!("/api/v1/responses/{id}/undo"),
        RESPONDER,
        &serde_json::json!({}),
    );
    assert_eq!(again.status, 409, "{}", again.body);
    let missing = post_json(
        a,
        "/api/v1/responses/RSP-0000000000/undo",
        RESPONDER,
        &serde_json::json!({}),
    );
    assert_eq!(missing.status, 404, "{}", missing.body);
    // The file is what the command line and the enforcement points read.
    let cli = cordon(&[
        "respond",
        "show",
        &id,
        "--json",
        "--responses",
        responses.to_str().unwrap(),
    ]);
    let shown: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(shown["status"], "undone");
}
