//! TAXII 2.1: `cordon serve`'s service driven by the reference clients
//! (taxii2-client, the stix2 library), by hand for every error the spec
//! gives, and paged through 10,000 objects that share one `date_added`;
//! `cordon intel pull` and `push` against medallion, the reference server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::{Reply, Server, http, spawn_serve};
use common::{cordon, lines, stderr, stdout, temp_dir, wait_for};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789abcdef";
const RESPONDER: &str = "responder-token-0123456789ab";
const VIEWER: &str = "viewer-token-0123456789abcde";
const PARTNER: &str = "partner-token-0123456789abcd";
const TAXII: &str = "application/taxii+json;version=2.1";

fn tokens(dir: &Path) -> PathBuf {
    let file = dir.join("tokens.txt");
    std::fs::write(
        &file,
        format!(
            "{ADMIN} admin alice\n{RESPONDER} responder bob\n{VIEWER} viewer carol\n{PARTNER} partner isac\n"
        ),
    )
    .unwrap();
    file
}

fn serve_store(dir: &Path) -> Server {
    let t = tokens(dir);
    spawn_serve(&dir.join("store"), &["--tokens", t.to_str().unwrap()])
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A TAXII request with `token`.
fn taxii(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> Reply {
    let auth = bearer(token);
    let mut headers = vec![("Authorization", auth.as_str()), ("Accept", TAXII)];
    if !body.is_empty() {
        headers.push(("Content-Type", TAXII));
    }
    http(addr, method, path, &headers, body)
}

fn body(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

/// The TAXII error of `r`: its status, TAXII media type and the
/// `http_status` and description it carries.
fn error(r: &Reply, status: u16, says: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.headers
            .contains("content-type: application/taxii+json;version=2.1"),
        "{}",
        r.raw_headers
    );
    let v = body(r);
    assert_eq!(v["http_status"], status.to_string());
    let d = v["description"].as_str().unwrap();
    assert!(d.contains(says), "{d}");
}

fn indicator(n: u32, ip: &str, modified: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--{:08x}-0000-4000-8000-000000000000", n),
        "created": "2026-12-01T10:00:00.000Z", "modified": modified,
        "name": format!("test {n}"),
        "pattern": format!("[ipv4-addr:value = '{ip}']"), "pattern_type": "stix",
        "valid_from": "2026-12-01T10:00:00Z",
    })
}

fn envelope(objects: &[Value]) -> Vec<u8> {
    json!({ "objects": objects }).to_string().into_bytes()
}

const INTEL: &str = "/taxii2/cordon/collections/intel/objects/";

/// A POST announcing one byte more than an envelope may have: the answer
/// comes before the body is sent.
fn oversized(addr: &str) -> Reply {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {INTEL} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {RESPONDER}\r\n\
         Accept: {TAXII}\r\nContent-Type: {TAXII}\r\nContent-Length: {}\r\n\r\n{{\"objects\": [",
        16 * 1024 * 1024 + 1
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Reply {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        headers: head.to_ascii_lowercase(),
        raw_headers: head.to_string(),
        body: body.to_string(),
    }
}

#[test]
fn the_spec_errors_come_with_their_status_and_message() {
    let dir = temp_dir("taxii-errors");
    let server = serve_store(&dir);
    let a = server.addr.as_str();

    // Authentication: nothing, a wrong token, Basic with the token's name.
    let r = http(a, "GET", "/taxii2/", &[("Accept", TAXII)], b"");
    error(&r, 401, "Authorization");
    assert!(
        r.headers.contains("www-authenticate: basic"),
        "{}",
        r.raw_headers
    );
    error(
        &taxii(a, "GET", "/taxii2/", "not-a-token-at-all", b""),
        401,
        "",
    );
    let basic = |user: &str, password: &str| {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {e}")
    };
    let good = basic("carol", VIEWER);
    let r = http(
        a,
        "GET",
        "/taxii2/",
        &[("Authorization", good.as_str())],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        body(&r)["api_roots"][0],
        format!("http://{a}/taxii2/cordon/")
    );
    let wrong_user = basic("mallory", VIEWER);
    error(
        &http(
            a,
            "GET",
            "/taxii2/",
            &[("Authorization", wrong_user.as_str())],
            b"",
        ),
        401,
        "",
    );

    // Negotiation: 406 for what the server cannot answer in.
    for accept in ["application/json", "application/taxii+json;version=2.0"] {
        let auth = bearer(VIEWER);
        let r = http(
            a,
            "GET",
            "/taxii2/cordon/",
            &[("Authorization", auth.as_str()), ("Accept", accept)],
            b"",
        );
        error(&r, 406, accept);
    }

    // Unknown things are 404.
    error(
        &taxii(
            a,
            "GET",
            "/taxii2/cordon/collections/nope/objects/",
            VIEWER,
            b"",
        ),
        404,
        "no collection `nope`",
    );
    error(
        &taxii(
            a,
            "GET",
            "/taxii2/cordon/status/0b5c2a50-7e1c-4f57-8b0e-2d7f1b8c9a10/",
            VIEWER,
            b"",
        ),
        404,
        "no status",
    );

    // Rights: read-only collections, and writing needs the responder role.
    let one = envelope(&[indicator(1, "192.0.2.10", "2026-12-01T10:00:00.000Z")]);
    error(
        &taxii(
            a,
            "POST",
            "/taxii2/cordon/collections/findings/objects/",
            ADMIN,
            &one,
        ),
        403,
        "read-only",
    );
    error(&taxii(a, "POST", INTEL, VIEWER, &one), 403, "responder");
    let r = taxii(a, "GET", "/taxii2/cordon/collections/intel/", VIEWER, b"");
    assert_eq!(body(&r)["can_write"], false);
    let r = taxii(
        a,
        "GET",
        "/taxii2/cordon/collections/intel/",
        RESPONDER,
        b"",
    );
    assert_eq!(body(&r)["can_write"], true);

    // The body: its media type (415), its size (413), its form (400).
    let auth = bearer(RESPONDER);
    let r = http(
        a,
        "POST",
        INTEL,
        &[
            ("Authorization", auth.as_str()),
            ("Accept", TAXII),
            ("Content-Type", "application/json"),
        ],
        &one,
    );
    error(&r, 415, "application/json");
    error(&oversized(a), 413, "max_content_length");
    error(
        &taxii(a, "POST", INTEL, RESPONDER, b"{\"objects\": [1,"),
        400,
        "not JSON",
    );
    error(
        &taxii(a, "POST", INTEL, RESPONDER, b"{\"bundle\": 1}"),
        400,
        "objects",
    );

    // Invalid STIX is refused in the status, the good objects kept.
    let mut no_pattern = indicator(2, "192.0.2.11", "2026-12-01T10:00:00.000Z");
    no_pattern.as_object_mut().unwrap().remove("pattern");
    let mut bad_time = indicator(3, "192.0.2.12", "2026-12-01T10:00:00.000Z");
    bad_time["modified"] = json!("2026-12-01 10:00");
    let r = taxii(
        a,
        "POST",
        INTEL,
        RESPONDER,
        &envelope(&[
            indicator(1, "192.0.2.10", "2026-12-01T10:00:00.000Z"),
            no_pattern,
            bad_time,
            json!({"type": "indicator", "id": "indicator--1"}),
        ]),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let status = body(&r);
    assert_eq!(status["status"], "complete");
    assert_eq!(status["total_count"], 4);
    assert_eq!(status["success_count"], 1);
    assert_eq!(status["failure_count"], 3);
    let messages: Vec<&str> = status["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(messages[0].contains("`pattern`"), "{messages:?}");
    assert!(messages[1].contains("`modified`"), "{messages:?}");
    assert!(messages[2].contains("`id`"), "{messages:?}");
    let path = format!("/taxii2/cordon/status/{}/", status["id"].as_str().unwrap());
    assert_eq!(body(&taxii(a, "GET", &path, VIEWER, b"")), status);

    // Versions: a newer one becomes the default, the first stays reachable.
    let newer = indicator(1, "192.0.2.99", "2026-12-03T10:00:00.000Z");
    assert_eq!(
        taxii(a, "POST", INTEL, RESPONDER, &envelope(&[newer])).status,
        202
    );
    let id = "indicator--00000001-0000-4000-8000-000000000000";
    let object = format!("{INTEL}{id}/");
    let latest = body(&taxii(a, "GET", &object, VIEWER, b""));
    assert_eq!(latest["objects"].as_array().unwrap().len(), 1);
    assert!(
        latest["objects"][0]["pattern"]
            .as_str()
            .unwrap()
            .contains("192.0.2.99")
    );
    let first = body(&taxii(
        a,
        "GET",
        &format!("{object}?match[version]=first"),
        VIEWER,
        b"",
    ));
    assert!(
        first["objects"][0]["pattern"]
            .as_str()
            .unwrap()
            .contains("192.0.2.10")
    );
    let all = body(&taxii(
        a,
        "GET",
        &format!("{object}?match[version]=all"),
        VIEWER,
        b"",
    ));
    assert_eq!(all["objects"].as_array().unwrap().len(), 2);
    let versions = body(&taxii(a, "GET", &format!("{object}versions/"), VIEWER, b""));
    assert_eq!(
        versions["versions"],
        json!(["2026-12-01T10:00:00.000Z", "2026-12-03T10:00:00.000Z"])
    );
    let manifest = body(&taxii(
        a,
        "GET",
        "/taxii2/cordon/collections/intel/manifest/",
        VIEWER,
        b"",
    ));
    assert_eq!(
        manifest["objects"][0]["version"],
        "2026-12-03T10:00:00.000Z"
    );
    error(
        &taxii(
            a,
            "GET",
            &format!("{object}?match[version]=newest"),
            VIEWER,
            b"",
        ),
        400,
        "match[version]",
    );

    // A `next` token belongs to its query.
    let more = [
        indicator(4, "192.0.2.13", "2026-12-01T10:00:00.000Z"),
        indicator(5, "192.0.2.14", "2026-12-01T10:00:00.000Z"),
    ];
    assert_eq!(
        taxii(a, "POST", INTEL, RESPONDER, &envelope(&more)).status,
        202
    );
    let page = body(&taxii(a, "GET", &format!("{INTEL}?limit=1"), VIEWER, b""));
    assert_eq!(page["more"], true);
    let next = page["next"].as_str().unwrap();
    let r = taxii(
        a,
        "GET",
        &format!("{INTEL}?limit=1&next={next}"),
        VIEWER,
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.headers.contains("x-taxii-date-added-first: 20"),
        "{}",
        r.raw_headers
    );
    for other in [
        format!("{INTEL}?limit=1&next={next}&match[type]=indicator"),
        format!("/taxii2/cordon/collections/findings/objects/?next={next}"),
        format!("/taxii2/cordon/collections/intel/manifest/?next={next}"),
        format!("{INTEL}?next=AAAA{}", &next[4..]),
    ] {
        error(&taxii(a, "GET", &other, VIEWER, b""), 400, "`next`");
    }

    // A partner reads the collections and adds to intel, nothing more.
    let r = taxii(
        a,
        "GET",
        "/taxii2/cordon/collections/findings/objects/",
        PARTNER,
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let shared = envelope(&[indicator(9, "192.0.2.90", "2026-12-01T10:00:00.000Z")]);
    assert_eq!(taxii(a, "POST", INTEL, PARTNER, &shared).status, 202);
    error(
        &taxii(a, "DELETE", &object, PARTNER, b""),
        403,
        "partners may add",
    );
    assert_eq!(
        http(
            a,
            "GET",
            "/api/v1/overview",
            &[("Authorization", &bearer(PARTNER))],
            b""
        )
        .status,
        403
    );
    let login = format!("token={PARTNER}");
    let r = http(
        a,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        login.as_bytes(),
    );
    assert_eq!(r.status, 403, "a partner has no console");
    assert!(!r.headers.contains("set-cookie"), "{}", r.raw_headers);

    // Delete needs write rights; it takes the latest version unless told
    // otherwise, and the one before becomes the latest.
    error(&taxii(a, "DELETE", &object, VIEWER, b""), 403, "responder");
    assert_eq!(taxii(a, "DELETE", &object, RESPONDER, b"").status, 200);
    let left = body(&taxii(a, "GET", &object, VIEWER, b""));
    assert!(
        left["objects"][0]["pattern"]
            .as_str()
            .unwrap()
            .contains("192.0.2.10")
    );
    let every = format!("{object}?match[version]=all");
    assert_eq!(taxii(a, "DELETE", &every, RESPONDER, b"").status, 200);
    error(&taxii(a, "GET", &object, VIEWER, b""), 404, "no object");
    error(
        &taxii(a, "DELETE", &object, RESPONDER, b""),
        404,
        "no object",
    );
}

#[test]
fn ten_thousand_objects_sharing_one_date_added_page_one_by_one_exactly_once() {
    let dir = temp_dir("taxii-paging");
    let server = serve_store(&dir);
    let a = server.addr.clone();
    let objects: Vec<Value> = (0..10_000u32)
        .map(|n| indicator(n, "192.0.2.1", "2026-12-01T10:00:00.000Z"))
        .collect();
    let r = taxii(&a, "POST", INTEL, RESPONDER, &envelope(&objects));
    assert_eq!(body(&r)["success_count"], 10_000);
    let manifest = body(&taxii(
        &a,
        "GET",
        "/taxii2/cordon/collections/intel/manifest/?limit=10000",
        VIEWER,
        b"",
    ));
    let dates: std::collections::BTreeSet<&str> = manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["date_added"].as_str().unwrap())
        .collect();
    assert_eq!(dates.len(), 1, "one envelope, one date_added");

    // One object per request over one kept-alive connection, while
    // another envelope arrives half-way: every object exactly once.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen = runtime.block_on(async {
        let root = url::Url::parse(&format!("http://{a}/taxii2/cordon/")).unwrap();
        let mut options = cordon_taxii::client::Options::new(root);
        options.auth = cordon_taxii::client::Auth::Bearer(VIEWER.to_string());
        let client = cordon_taxii::client::Client::new(options).unwrap();
        let base = client.url("collections/intel/objects/").unwrap();
        let mut seen: Vec<String> = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut url = base.clone();
            url.query_pairs_mut().append_pair("limit", "1");
            if let Some(n) = &next {
                url.query_pairs_mut().append_pair("next", n);
            }
            let page = client.get(&url).await.unwrap().body;
            let got = page["objects"].as_array().unwrap();
            assert_eq!(got.len(), 1);
            seen.push(got[0]["id"].as_str().unwrap().to_string());
            if seen.len() == 5_000 {
                let late: Vec<Value> = (10_000..10_010u32)
                    .map(|n| indicator(n, "192.0.2.2", "2026-12-01T10:00:00.000Z"))
                    .collect();
                let r = taxii(&a, "POST", INTEL, RESPONDER, &envelope(&late));
                assert_eq!(r.status, 202);
            }
            if page["more"] != true {
                break;
            }
            next = Some(page["next"].as_str().unwrap().to_string());
        }
        seen
    });
    assert_eq!(seen.len(), 10_010);
    let distinct: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), 10_010, "an object came twice");
}

/// Whether the Python modules are there (the reference peers).
fn python_has(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/taxii")
        .join(name)
}

/// A flow from 10.0.1.10 to `ip` now, as an AWS flow log line.
fn flow_to(dir: &Path, ip: &str) -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let file = dir.join(format!("flow-{ip}.log"));
    std::fs::write(
        &file,
        format!(
            "2 123456789012 eni-1 10.0.1.10 {ip} 40000 443 6 10 4000 {now} {} ACCEPT OK\n",
            now + 10
        ),
    )
    .unwrap();
    file
}

/// The threat-intel findings in `store` naming `indicator`.
fn intel_findings(store: &Path, indicator: &str) -> usize {
    let out = cordon(&["detect", "--store", store.to_str().unwrap(), "--json"]);
    stdout(&out)
        .lines()
        .filter(|l| l.contains("\"threat-intel\"") && l.contains(indicator))
        .count()
}

#[test]
#[ignore = "needs Python's taxii2-client and stix2 (pip install taxii2-client stix2)"]
fn the_reference_clients_page_push_and_query_and_pushed_intel_is_detected() {
    assert!(
        python_has("taxii2client, stix2"),
        "pip install taxii2-client stix2"
    );
    let dir = temp_dir("taxii-clients");
    let out = cordon(&["demo", "--out", dir.to_str().unwrap(), "--hours", "12"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let server = serve_store(&dir);
    let out = Command::new("python3")
        .arg(script("reference_clients.py"))
        .arg(format!("http://{}/taxii2/", server.addr))
        .args(["carol", VIEWER, "bob", RESPONDER])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let seen: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        seen["collections"],
        json!({"findings": [true, false], "indicators": [true, false], "intel": [true, false]})
    );
    assert!(seen["findings_objects"].as_u64().unwrap() > 20, "{seen}");
    assert_eq!(seen["findings_pages"], seen["findings_objects"]);
    assert!(seen["indicators"].as_u64().unwrap() >= 1);
    assert!(seen["failure"].as_str().unwrap().contains("`id`"));

    // The indicator the client pushed is matched by the next detection.
    let store = dir.join("store");
    let flows = flow_to(&dir, "192.0.2.200");
    let out = cordon(&[
        "ingest",
        flows.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--detect",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("indicators from the store"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        intel_findings(&store, "indicator--6f1f6c8e-5a0b-4c3f-8a52-6c1b0c2e9d41"),
        1
    );
    drop(server);
}

/// medallion on a free loopback port, stopped when dropped.
struct Medallion {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn medallion(dir: &Path, indicators: u32, page_size: u32) -> Medallion {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("python3")
        .arg(script("medallion_server.py"))
        .arg(dir)
        .arg(port.to_string())
        .args(["--indicators", &indicators.to_string()])
        .args(["--page-size", &page_size.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines(&mut child);
    wait_for(&rx, "medallion listening");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "medallion did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(dir.join("password"), "medallion-pass\n").unwrap();
    Medallion {
        child,
        url: format!("http://127.0.0.1:{port}/api1/"),
        dir: dir.to_path_buf(),
    }
}

fn pull(m: &Medallion, store: &Path, extra: &[&str]) -> (bool, Value) {
    let password = m.dir.join("password");
    let mut args = vec![
        "intel",
        "pull",
        "--taxii",
        &m.url,
        "--collection",
        "feed",
        "--user",
        "cordon",
        "--password-file",
        password.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = cordon(&args);
    let report: Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (out.status.success(), report)
}

fn kept(store: &Path) -> u64 {
    let out = cordon(&[
        "intel",
        "list",
        "--store",
        store.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    v["sources"][0]["objects"].as_u64().unwrap()
}

#[test]
#[ignore = "needs medallion, the OASIS TAXII server (pip install medallion)"]
fn pulls_from_medallion_are_incremental_and_resume_without_duplicates() {
    assert!(python_has("medallion"), "pip install medallion");
    let dir = temp_dir("taxii-medallion");
    let m = medallion(&dir, 25, 10);
    let store = dir.join("store");

    let (ok, first) = pull(&m, &store, &["--limit", "10"]);
    assert!(ok, "{first}");
    assert_eq!(first["added"], 25);
    assert_eq!(first["pages"], 3);
    let (ok, second) = pull(&m, &store, &["--limit", "10"]);
    assert!(ok, "{second}");
    assert_eq!(second["received"], 0, "the second pull fetches nothing new");
    assert_eq!(second["added"], 0);
    assert_eq!(kept(&store), 25);

    // The server fails after the first page, past the retries: what came
    // is kept, and the next pull goes on from there.
    let resumed = dir.join("resumed");
    std::fs::write(dir.join("fail"), "").unwrap();
    let (ok, broken) = pull(&m, &resumed, &["--limit", "10", "--retries", "1"]);
    assert!(!ok);
    assert_eq!(broken["added"], 10);
    assert!(
        broken["error"].as_str().unwrap().contains("503"),
        "{broken}"
    );
    std::fs::remove_file(dir.join("fail")).unwrap();
    let (ok, rest) = pull(&m, &resumed, &["--limit", "10"]);
    assert!(ok, "{rest}");
    assert_eq!(rest["added"], 15, "{rest}");
    assert_eq!(kept(&resumed), 25, "no object twice, none missing");

    // A pulled indicator is matched (indicator 0 is 198.51.100.1).
    let flows = flow_to(&dir, "198.51.100.1");
    let out = cordon(&[
        "ingest",
        flows.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--detect",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        intel_findings(&store, "test indicator 0"),
        1,
        "{}",
        stderr(&out)
    );

    // Findings go out to medallion's writable collection.
    let demo = dir.join("demo");
    let out = cordon(&["demo", "--out", demo.to_str().unwrap(), "--hours", "12"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let password = m.dir.join("password");
    let out = cordon(&[
        "intel",
        "push",
        "--taxii",
        &m.url,
        "--collection",
        "inbox",
        "--user",
        "cordon",
        "--password-file",
        password.to_str().unwrap(),
        "--findings",
        "--store",
        demo.join("store").to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let pushed: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(pushed["total"].as_u64().unwrap() > 20, "{pushed}");
    assert_eq!(pushed["success"], pushed["total"], "{pushed}");
}

#[test]
fn push_reports_what_the_server_refused() {
    let dir = temp_dir("taxii-push");
    let server = serve_store(&dir);
    let bundle = dir.join("bundle.json");
    let mut bad = indicator(2, "192.0.2.77", "2026-12-01T10:00:00.000Z");
    bad["valid_until"] = json!("2026-11-01T00:00:00Z");
    std::fs::write(
        &bundle,
        json!({"type": "bundle", "id": "bundle--7a2f9c4e-0d3b-4b8e-9f1a-2c6d8e0b4a57",
               "objects": [indicator(1, "192.0.2.66", "2026-12-01T10:00:00.000Z"), bad]})
        .to_string(),
    )
    .unwrap();
    let token = dir.join("token");
    std::fs::write(&token, format!("{RESPONDER}\n")).unwrap();
    let url = format!("http://{}/taxii2/cordon/", server.addr);
    let out = cordon(&[
        "intel",
        "push",
        "--taxii",
        &url,
        "--collection",
        "intel",
        "--token-file",
        token.to_str().unwrap(),
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(70), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("2 objects in 1 envelopes: 1 taken, 1 refused"),
        "{text}"
    );
    assert!(text.contains("`valid_until` must be later"), "{text}");

    // Bad input on our side: not a bundle, a missing token file.
    std::fs::write(&bundle, "{\"type\": \"bundle\",\n \"objects\": [}").unwrap();
    let out = cordon(&[
        "intel",
        "push",
        "--taxii",
        &url,
        "--collection",
        "intel",
        "--token-file",
        token.to_str().unwrap(),
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(stderr(&out).contains("bundle.json:2:"), "{}", stderr(&out));
    let out = cordon(&[
        "intel",
        "pull",
        "--taxii",
        &url,
        "--collection",
        "intel",
        "--token-file",
        dir.join("missing").to_str().unwrap(),
        "--store",
        dir.join("s").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
    // A pull from our own server of what was pushed.
    let out = cordon(&[
        "intel",
        "pull",
        "--taxii",
        &url,
        "--collection",
        "intel",
        "--token-file",
        token.to_str().unwrap(),
        "--store",
        dir.join("s").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 new"), "{}", stdout(&out));
}
