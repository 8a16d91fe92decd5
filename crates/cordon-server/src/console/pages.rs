//! The console's pages.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use cordon_detect::finding::human_bytes;
use cordon_incident::Status;
use cordon_store::{FlowQuery, FlowReader};
use serde::Deserialize;
use serde_json::Value;

use super::{csrf_of, error_page, esc, page, session, url};
use crate::api::{self, FlowParams, Range, WhatIfBody};
use crate::auth::Role;
use crate::{App, Caller};

type AppState = State<Arc<App>>;

fn time(ms: Option<i64>) -> String {
    ms.map(cordon_incident::report::short_time)
        .unwrap_or_default()
}

fn sev(s: &str) -> String {
    format!("<span class=\"badge sev-{s}\">{s}</span>")
}

fn verdict_class(v: &str) -> &'static str {
    match v {
        "deny" => "v-deny",
        "would-deny" => "v-would-deny",
        _ => "v-allow",
    }
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// `/`: counts, open incidents, top talkers, verdicts per hour.
pub async fn overview(State(app): AppState, headers: HeaderMap) -> Response {
    let caller = match session(&app, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let o = match api::overview_json(&app).await {
        Ok(o) => o,
        Err(e) => return error_page(&caller, &e),
    };
    let mut b = String::from("<h1>Overview</h1><div class=\"cards\">");
    let by = &o["findings_by_severity"];
    let open = o["open_incidents"].as_array().cloned().unwrap_or_default();
    for (label, value) in [
        ("flows stored", num(&o["flows"]).to_string()),
        ("cloud audit events", num(&o["audit_events"]).to_string()),
        ("findings", num(&o["findings"]).to_string()),
        (
            "critical / high",
            format!("{} / {}", num(&by["critical"]), num(&by["high"])),
        ),
        ("open incidents", open.len().to_string()),
    ] {
        let _ = write!(b, "<div class=\"card\"><b>{}</b>{label}</div>", esc(&value));
    }
    let _ = write!(
        b,
        "</div><p class=\"note\">Data from {} to {}.</p><h2>Open incidents</h2>",
        time(o["first_ms"].as_i64()),
        time(o["last_ms"].as_i64())
    );
    if open.is_empty() {
        b.push_str("<p>None.</p>");
    } else {
        b.push_str("<table><tr><th>Incident</th><th>Severity</th><th>Status</th><th>Stages</th><th>First seen</th></tr>");
        for i in &open {
            let _ = write!(
                b,
                "<tr class=\"incident\"><td><a href=\"/incidents/{}\">{}</a> {}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                url(text(i, "id")),
                esc(text(i, "id")),
                esc(text(i, "title")),
                sev(text(i, "severity")),
                esc(text(i, "status")),
                i["stages"].as_array().map_or(0, Vec::len),
                time(i["first_ms"].as_i64())
            );
        }
        b.push_str("</table>");
    }
    b.push_str("<h2>Top talkers (last day of data)</h2><table><tr><th>From</th><th>To</th><th>Port</th><th>Verdict</th><th>Flows</th><th>Bytes</th></tr>");
    for e in o["top_talkers"].as_array().into_iter().flatten() {
        let v = text(e, "verdict");
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}/{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(text(e, "src_group")),
            esc(text(e, "dst_group")),
            cordon_core::Protocol(u8::try_from(num(&e["protocol"])).unwrap_or(0)),
            num(&e["dst_port"]),
            verdict_class(v),
            esc(if v.is_empty() { "-" } else { v }),
            num(&e["flows"]),
            human_bytes(num(&e["bytes_out"]) + num(&e["bytes_in"]))
        );
    }
    b.push_str("</table><h2>Denied and would-deny flows per hour (last day of data)</h2>");
    b.push_str(&trend_svg(
        o["trend"].as_array().map_or(&[][..], Vec::as_slice),
    ));
    page("Overview", &caller, "/", &b)
}

/// Bars of denied (red) and would-deny (orange) flows per bucket.
fn trend_svg(buckets: &[Value]) -> String {
    let mut per: BTreeMap<i64, (u64, u64, u64)> = BTreeMap::new();
    for b in buckets {
        let slot = per.entry(b["start_ms"].as_i64().unwrap_or(0)).or_default();
        match text(b, "verdict") {
            "deny" => slot.0 += num(&b["flows"]),
            "would-deny" => slot.1 += num(&b["flows"]),
            _ => slot.2 += num(&b["flows"]),
        }
    }
    let max = per.values().map(|v| v.0 + v.1).max().unwrap_or(0).max(1);
    let w = 900.0;
    let bar = w / per.len().max(1) as f64;
    let mut s = String::from(
        "<svg viewBox=\"0 0 900 160\" role=\"img\" aria-label=\"Denied and would-deny flows per hour\">",
    );
    for (i, (t, (deny, would, _))) in per.iter().enumerate() {
        let x = i as f64 * bar;
        let hd = *deny as f64 / max as f64 * 130.0;
        let hw = *would as f64 / max as f64 * 130.0;
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hd:.1}\" fill=\"#b00020\"><title>{}: {deny} denied</title></rect><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hw:.1}\" fill=\"#e08a00\"><title>{}: {would} would-deny</title></rect>",
            140.0 - hd,
            (bar - 1.0).max(1.0),
            esc(&time(Some(*t))),
            140.0 - hd - hw,
            (bar - 1.0).max(1.0),
            esc(&time(Some(*t)))
        );
    }
    s.push_str("<text x=\"4\" y=\"156\" font-size=\"11\" fill=\"#4a5568\">red: denied · orange: would-deny (audit)</text></svg>");
    s
}

#[derive(Debug, Default, Deserialize)]
pub struct TopologyParams {
    since: Option<String>,
    until: Option<String>,
    hide: Option<String>,
}

/// `/topology`: groups and vendors as nodes, edges coloured by verdict.
pub async fn topology(
    State(app): AppState,
    headers: HeaderMap,
    Query(p): Query<TopologyParams>,
) -> Response {
    let caller = match session(&app, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let range = Range {
        since: p.since.clone(),
        until: p.until.clone(),
    };
    let (since_ms, until_ms) = match range.ms() {
        Ok(r) => r,
        Err(e) => return error_page(&caller, &e),
    };
    let edges = match app
        .with_store(move |s| {
            Ok(s.topology(&FlowQuery {
                since_ms,
                until_ms,
                ..FlowQuery::default()
            })?)
        })
        .await
    {
        Ok(e) => e,
        Err(e) => return error_page(&caller, &e),
    };
    let hide: BTreeSet<String> = p
        .hide
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    // One edge per group pair and verdict.
    let mut pairs: Pairs = BTreeMap::new();
    for e in &edges {
        if hide.contains(&e.src_group) || hide.contains(&e.dst_group) {
            continue;
        }
        let v = e
            .verdict
            .map_or_else(|| "unknown".to_string(), |v| v.to_string());
        let slot = pairs
            .entry((e.src_group.clone(), e.dst_group.clone(), v))
            .or_default();
        slot.0 += e.flows;
        slot.1 += e.bytes_out + e.bytes_in;
        if slot.2.len() < 8 {
            slot.2.insert(format!(
                "{}/{}",
                cordon_core::Protocol(e.protocol),
                e.dst_port
            ));
        }
    }
    let vendors: BTreeSet<String> = app
        .policy
        .as_ref()
        .map(|c| {
            c.policy()
                .groups
                .iter()
                .filter(|g| g.vendor.is_some() || g.external)
                .map(|g| g.name.clone())
                .collect()
        })
        .unwrap_or_default();
    let svg = topology_svg(&pairs, &vendors);
    let mut b = String::from(
        "<h1>Topology</h1><form class=\"filter\" method=\"get\" action=\"/topology\">",
    );
    let _ = write!(
        b,
        "<label>Since <input type=\"text\" name=\"since\" value=\"{}\" placeholder=\"2026-02-04T00:00:00Z or 24h\"></label><label>Until <input type=\"text\" name=\"until\" value=\"{}\"></label><label>Hide <input type=\"text\" name=\"hide\" value=\"{}\" placeholder=\"internet,private\"></label><button type=\"submit\">Show</button></form>",
        esc(p.since.as_deref().unwrap_or("")),
        esc(p.until.as_deref().unwrap_or("")),
        esc(p.hide.as_deref().unwrap_or(""))
    );
    b.push_str(&svg);
    b.push_str("<p class=\"note\">Green: allowed · red: denied · orange dashed: would be denied (audit mode) · grey: not judged. Vendors are drawn as squares.</p>");
    b.push_str("<table><tr><th>From</th><th>To</th><th>Verdict</th><th>Ports</th><th>Flows</th><th>Bytes</th></tr>");
    for ((from, to, v), (flows, bytes, ports)) in &pairs {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td class=\"num\">{flows}</td><td class=\"num\">{}</td></tr>",
            esc(from),
            esc(to),
            verdict_class(v),
            esc(v),
            esc(&ports.iter().cloned().collect::<Vec<_>>().join(", ")),
            human_bytes(*bytes)
        );
    }
    b.push_str("</table>");
    page("Topology", &caller, "/topology", &b)
}

type Pairs = BTreeMap<(String, String, String), (u64, u64, BTreeSet<String>)>;

fn topology_svg(pairs: &Pairs, vendors: &BTreeSet<String>) -> String {
    let mut nodes: Vec<String> = pairs
        .keys()
        .flat_map(|(a, b, _)| [a.clone(), b.clone()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    nodes.sort();
    let n = nodes.len().max(1) as f64;
    let (cx, cy, r) = (450.0, 320.0, 250.0);
    let pos = |name: &str| -> (f64, f64) {
        let i = nodes.iter().position(|x| x == name).unwrap_or(0) as f64;
        let a = i / n * std::f64::consts::TAU - std::f64::consts::FRAC_PI_2;
        (cx + r * a.cos(), cy + r * a.sin())
    };
    let mut s = String::from(
        "<svg id=\"topology\" viewBox=\"0 0 900 660\" role=\"img\" aria-label=\"Group to group traffic\" font-family=\"system-ui,sans-serif\" font-size=\"12\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"10\" markerHeight=\"10\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#5a6478\"/></marker></defs>",
    );
    let max = pairs.values().map(|v| v.1).max().unwrap_or(1).max(1) as f64;
    for ((from, to, v), (flows, bytes, ports)) in pairs {
        let (x1, y1) = pos(from);
        let (x2, y2) = pos(to);
        let (colour, dash) = match v.as_str() {
            "deny" => ("#b00020", ""),
            "would-deny" => ("#e08a00", " stroke-dasharray=\"6 4\""),
            "allow" => ("#2f8f4e", ""),
            _ => ("#9aa5b8", ""),
        };
        let width = 1.0 + 5.0 * ((*bytes as f64).ln_1p() / max.ln_1p());
        // Shorten to the node's edge and bend a little, so both directions show.
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / len, dy / len);
        let (sx, sy, ex, ey) = (
            x1 + ux * 22.0,
            y1 + uy * 22.0,
            x2 - ux * 24.0,
            y2 - uy * 24.0,
        );
        let (mx, my) = ((sx + ex) / 2.0 - uy * 18.0, (sy + ey) / 2.0 + ux * 18.0);
        let _ = write!(
            s,
            "<g class=\"edge\" data-src=\"{}\" data-dst=\"{}\" data-verdict=\"{}\"><path d=\"M{sx:.1},{sy:.1} Q{mx:.1},{my:.1} {ex:.1},{ey:.1}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width:.1}\"{dash} marker-end=\"url(#arrow)\"/><title>{} → {}: {} ({} flows, {}; {})</title></g>",
            esc(from),
            esc(to),
            esc(v),
            esc(from),
            esc(to),
            esc(v),
            flows,
            human_bytes(*bytes),
            esc(&ports.iter().cloned().collect::<Vec<_>>().join(", "))
        );
    }
    for name in &nodes {
        let (x, y) = pos(name);
        let shape = if vendors.contains(name) {
            format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"36\" height=\"36\" rx=\"4\" fill=\"#fff4e0\" stroke=\"#b35c00\"/>",
                x - 18.0,
                y - 18.0
            )
        } else {
            format!(
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"18\" fill=\"#e8eefb\" stroke=\"#2456c7\"/>"
            )
        };
        let _ = write!(
            s,
            "<g class=\"node\" data-name=\"{}\">{shape}<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
            esc(name),
            y + 32.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

fn autocomplete(app: &App) -> String {
    // Keys, then values: groups, vendors and common ports.
    let mut options: Vec<String> = crate::filter::KEYS
        .iter()
        .map(|k| format!("{k}:"))
        .collect();
    if let Some(c) = &app.policy {
        for g in c.policy().groups.iter() {
            options.push(format!("group:{}", g.name));
            if let Some(v) = &g.vendor {
                options.push(format!("vendor:\"{}\"", v.name));
            }
        }
    }
    for p in [22, 53, 80, 443, 445, 3389, 5432, 587, 8080] {
        options.push(format!("port:{p}"));
    }
    for v in ["allow", "deny", "would-deny"] {
        options.push(format!("verdict:{v}"));
    }
    let mut s = String::from("<datalist id=\"terms\">");
    for o in options {
        let _ = write!(s, "<option value=\"{}\">", esc(&o));
    }
    s.push_str("</datalist>");
    s
}

/// How long the flow explorer counts matching flows before it says "more
/// than".
const COUNT_BUDGET: std::time::Duration = std::time::Duration::from_millis(120);

/// The filter box: suggests terms for the word being typed.
const FILTER_SCRIPT: &str = "<script>(function(){var q=document.getElementById('q');var opts=[].map.call(document.querySelectorAll('#terms option'),function(o){return o.value});var list=document.getElementById('suggest');q.addEventListener('input',function(){var words=q.value.split(' ');var last=words[words.length-1];list.innerHTML='';if(!last)return;opts.filter(function(o){return o.indexOf(last)===0&&o!==last}).slice(0,8).forEach(function(o){var b=document.createElement('button');b.type='button';b.className='secondary';b.textContent=o;b.addEventListener('click',function(){words[words.length-1]=o;q.value=words.join(' ')+(o.endsWith(':')?'':' ');q.focus();list.innerHTML=''});list.appendChild(b)})})})();</script>";

/// `/flows`: the flow explorer.
pub async fn flows(
    State(app): AppState,
    headers: HeaderMap,
    Query(p): Query<FlowParams>,
) -> Response {
    let caller = match session(&app, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let q = p.q.clone().unwrap_or_default();
    let mut b = String::from(
        "<h1>Flows</h1><form class=\"filter\" method=\"get\" action=\"/flows\" role=\"search\">",
    );
    let _ = write!(
        b,
        "<input type=\"search\" id=\"q\" name=\"q\" list=\"terms\" value=\"{}\" placeholder=\"group:notifier port:443 verdict:deny\" aria-label=\"Filter\" autocomplete=\"off\"><label>Since <input type=\"text\" name=\"since\" size=\"14\" value=\"{}\"></label><label>Until <input type=\"text\" name=\"until\" size=\"14\" value=\"{}\"></label><label>Group by <select name=\"group_by\"><option value=\"\">-</option>",
        esc(&q),
        esc(p.since.as_deref().unwrap_or("")),
        esc(p.until.as_deref().unwrap_or(""))
    );
    for g in api::GROUP_BY {
        let sel = if p.group_by.as_deref() == Some(g) {
            " selected"
        } else {
            ""
        };
        let _ = write!(b, "<option{sel}>{g}</option>");
    }
    b.push_str("</select></label><button type=\"submit\">Filter</button></form><div id=\"suggest\" class=\"filter\"></div>");
    b.push_str(&autocomplete(&app));
    let csv_link = format!(
        "/flows.csv?q={}&since={}&until={}",
        url(&q),
        url(p.since.as_deref().unwrap_or("")),
        url(p.until.as_deref().unwrap_or(""))
    );
    let group_by = p.group_by.clone().filter(|g| !g.is_empty());
    let (since, until) = (p.since.clone(), p.until.clone());
    let mut params = p;
    params.group_by = group_by.clone();
    params.limit = Some(params.limit.unwrap_or(100).min(1000));
    // The total: the matching flows counted within a time budget, so a
    // filter over millions of flows still answers quickly ("more than");
    // counted beside the page, on another connection.
    let query = match api::flow_query(&params) {
        Ok(q) => q,
        Err(e) => return error_page(&caller, &e),
    };
    let budget = if params.count.as_deref() == Some("all") {
        crate::QUERY_TIME / 2
    } else {
        COUNT_BUDGET
    };
    let counting = app.with_store(move |s| {
        let started = std::time::Instant::now();
        let mut n = 0u64;
        let mut complete = true;
        s.scan(&query, &mut |_| {
            n += 1;
            if started.elapsed() > budget {
                complete = false;
                return false;
            }
            true
        })?;
        Ok((n, complete))
    });
    let (counted, data) = tokio::join!(counting, api::flows_json(&app, params));
    let ((total, complete), data) = match (counted, data) {
        (Ok(c), Ok(d)) => (c, d),
        (Err(e), _) | (_, Err(e)) => return error_page(&caller, &e),
    };
    if complete {
        let _ = write!(
            b,
            "<p><span id=\"flow-count\" data-count=\"{total}\">{total} matching flows</span> · <a href=\"{}\">CSV export</a></p>",
            esc(&csv_link)
        );
    } else {
        let _ = write!(
            b,
            "<p><span id=\"flow-count\">more than {total} matching flows (counting stopped after {} ms)</span> · <a id=\"count-all\" href=\"/flows?q={}&since={}&until={}&count=all\">count them all</a> · <a href=\"{}\">CSV export</a></p>",
            budget.as_millis(),
            url(&q),
            url(since.as_deref().unwrap_or("")),
            url(until.as_deref().unwrap_or("")),
            esc(&csv_link)
        );
    }
    if group_by.is_some() {
        b.push_str("<table><tr><th>Key</th><th>Flows</th><th>Bytes out</th><th>Bytes in</th></tr>");
        for g in data["groups"].as_array().into_iter().flatten() {
            let _ = write!(
                b,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(text(g, "key")),
                num(&g["flows"]),
                human_bytes(num(&g["bytes_out"])),
                human_bytes(num(&g["bytes_in"]))
            );
        }
        b.push_str("</table>");
    } else {
        b.push_str("<table id=\"flows\"><tr><th>Start</th><th>Source</th><th>Destination</th><th>Port</th><th>Bytes out / in</th><th>Verdict</th><th>Rule</th></tr>");
        for f in data["flows"].as_array().into_iter().flatten() {
            let e = &f["enrichment"];
            let src = e["src_workload"]
                .as_str()
                .map_or_else(|| text(f, "src_ip").to_string(), str::to_string);
            let dst = f["hostname"]
                .as_str()
                .or(e["dst_workload"].as_str())
                .map_or_else(|| text(f, "dst_ip").to_string(), str::to_string);
            let v = e["verdict"].as_str().unwrap_or("-");
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td class=\"num\">{} / {}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                time(f["start_ms"].as_i64()),
                esc(&src),
                esc(&dst),
                cordon_core::Protocol(u8::try_from(num(&f["protocol"])).unwrap_or(0)),
                num(&f["dst_port"]),
                human_bytes(num(&f["bytes_out"])),
                human_bytes(num(&f["bytes_in"])),
                verdict_class(v),
                esc(v),
                esc(e["rule"].as_str().unwrap_or(""))
            );
        }
        b.push_str("</table>");
        if let Some(next) = data["next_cursor"].as_str() {
            let _ = write!(
                b,
                "<p><a href=\"/flows?q={}&since={}&until={}&cursor={}\">Next page</a></p>",
                url(&q),
                url(""),
                url(""),
                url(next)
            );
        }
    }
    b.push_str(FILTER_SCRIPT);
    page("Flows", &caller, "/flows", &b)
}

/// `/flows.csv`: the filtered flows as CSV (at most 100,000).
pub async fn flows_csv(
    State(app): AppState,
    headers: HeaderMap,
    Query(p): Query<FlowParams>,
) -> Response {
    if let Err(e) = app.require(&headers, Role::Viewer, false, None) {
        return e.into_response();
    }
    let query = match api::flow_query(&p) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let csv = app
        .with_store(move |s| {
            let mut out = format!("{}\r\n", cordon_flow::csv::HEADER);
            let mut n = 0;
            s.scan(&query, &mut |f| {
                out.push_str(&cordon_flow::csv::row(&f));
                out.push_str("\r\n");
                n += 1;
                n < 100_000
            })?;
            Ok(out)
        })
        .await;
    match csv {
        Ok(body) => {
            let mut r = body.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"flows.csv\""),
            );
            r
        }
        Err(e) => e.into_response(),
    }
}

/// `/findings`.
pub async fn findings(State(app): AppState, headers: HeaderMap) -> Response {
    let caller = match session(&app, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let list = match app
        .with_store(|s| Ok(cordon_store::FindingStore::findings(s, None)?))
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(&caller, &e),
    };
    let mut list = list;
    list.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.first_ms.cmp(&b.first_ms))
    });
    let mut b = format!(
        "<h1>Findings</h1><p>{} findings, gravest first.</p><table><tr><th>Severity</th><th>Kind</th><th>Source → destination</th><th>First seen</th><th>Stage</th><th>What was seen</th></tr>",
        list.len()
    );
    for f in list.iter().take(2000) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            sev(f.severity.as_str()),
            esc(f.kind.as_str()),
            esc(&f.src),
            esc(&f.dst),
            time(Some(f.first_ms)),
            esc(&f.stage),
            esc(&f.evidence.summary)
        );
    }
    b.push_str("</table>");
    page("Findings", &caller, "/findings", &b)
}

/// `/incidents`.
pub async fn incidents(State(app): AppState, headers: HeaderMap) -> Response {
    let caller = match session(&app, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let list = match app
        .with_store(|s| Ok(cordon_store::IncidentStore::incidents(s, None)?))
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(&caller, &e),
    };
    let mut b = String::from(
        "<h1>Incidents</h1><table><tr><th>Incident</th><th>Severity</th><th>Status</th><th>Stages</th><th>Findings</th><th>First seen</th></tr>",
    );
    for i in &list {
        let _ = write!(
            b,
            "<tr class=\"incident\"><td><a href=\"/incidents/{}\">{}</a> {}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            url(&i.id),
            esc(&i.id),
            esc(&i.title),
            sev(i.severity.as_str()),
            i.status,
            i.stages.len(),
            i.findings.len(),
            time(Some(i.first_ms))
        );
    }
    b.push_str("</table>");
    page("Incidents", &caller, "/incidents", &b)
}

/// `/incidents/{id}`.
pub async fn incident(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match session(&app, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let report = match api::report_of(&app, id).await {
        Ok(r) => r,
        Err(e) => return error_page(&caller, &e),
    };
    let incident = &report.incident;
    let mut b = format!(
        "<h1>{}: {}</h1><p>{} {} · status <b id=\"status\">{}</b> · {} → {}</p><p>{}</p>",
        esc(&incident.id),
        esc(&incident.title),
        sev(incident.severity.as_str()),
        esc(&incident.severity_reason),
        incident.status,
        time(Some(incident.first_ms)),
        time(Some(incident.last_ms)),
        esc(&report.summary)
    );
    let rid = url(&incident.id);
    let _ = write!(
        b,
        "<p>Report: <a id=\"report-html\" href=\"/api/v1/incidents/{rid}/report?format=html\" download>HTML</a> · <a href=\"/api/v1/incidents/{rid}/report?format=md\" download>Markdown</a> · <a href=\"/api/v1/incidents/{rid}/report?format=json\" download>JSON</a></p>"
    );
    if caller.principal.role >= Role::Responder {
        let csrf = esc(&csrf_of(&caller));
        for (action, label) in [
            ("ack", "Acknowledge"),
            ("resolve", "Resolve"),
            ("reopen", "Reopen"),
        ] {
            let _ = write!(
                b,
                "<form method=\"post\" action=\"/incidents/{rid}/{action}\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"text\" name=\"note\" placeholder=\"note\" aria-label=\"Note for {label}\"> <button type=\"submit\">{label}</button></form> "
            );
        }
    }
    b.push_str("<h2>Kill chain</h2>");
    let html = cordon_incident::report::html(&report);
    if let (Some(a), Some(z)) = (html.find("<svg"), html.find("</svg>")) {
        b.push_str(&html[a..z + 6]);
    }
    for st in &report.stages {
        let _ = write!(b, "<h3>{}</h3><ul>", esc(&st.name));
        for f in &st.findings {
            let _ = write!(
                b,
                "<li>{} <b>{}</b> — {}<br><span class=\"note\">{}</span>",
                sev(f.severity.as_str()),
                esc(&f.kind),
                esc(&f.summary),
                esc(&f.stopped_by.text)
            );
            if !f.evidence.is_empty() {
                b.push_str("<ul>");
                for e in f.evidence.iter().take(3) {
                    let _ = write!(b, "<li><code>{}</code></li>", esc(&e.text));
                }
                b.push_str("</ul>");
            }
            b.push_str("</li>");
        }
        b.push_str("</ul>");
    }
    if !incident.history.is_empty() {
        b.push_str("<h2>History</h2>");
        b.push_str(&cordon_incident::report::history_html(&incident.history));
    }
    page(&incident.id, &caller, "/incidents", &b)
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

/// `POST /incidents/{id}/{ack|resolve|reopen}` from the console.
pub async fn incident_action(
    State(app): AppState,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let status = match action.as_str() {
        "ack" => Status::Acknowledged,
        "resolve" => Status::Resolved,
        "reopen" => Status::Open,
        _ => return crate::ApiError::not_found("no such action").into_response(),
    };
    let caller = match app.require(&headers, Role::Responder, true, Some(&form.csrf)) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match api::change_status(
        &app,
        id.clone(),
        status,
        caller.principal.name.clone(),
        form.note,
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/incidents/{}", url(&id))).into_response(),
        Err(e) => error_page(&caller, &e),
    }
}

/// `/vendors`.
pub async fn vendors(State(app): AppState, headers: HeaderMap, Query(r): Query<Range>) -> Response {
    let caller = match session(&app, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let data = match api::vendors_json(&app, r).await {
        Ok(v) => v,
        Err(e) => return error_page(&caller, &e),
    };
    let mut b = String::from(
        "<h1>Vendor register</h1><p class=\"note\">Every third party the flows show: declared vendors (the policy's vendor groups) and undeclared ones.</p><table><tr><th>Party</th><th>Declared</th><th>Criticality</th><th>Data shared</th><th>Internal users</th><th>Out / day</th><th>In / day</th><th>Denied</th><th>Findings</th><th>Incidents</th></tr>",
    );
    for p in data["vendors"].as_array().into_iter().flatten() {
        let list = |k: &str| {
            p[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let declared = p["declared"].as_bool().unwrap_or(false);
        let _ = write!(
            b,
            "<tr class=\"party\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(text(p, "name")),
            if declared { "yes" } else { "<b>undeclared</b>" },
            esc(p["criticality"].as_str().unwrap_or("-")),
            esc(&list("data")),
            esc(&list("internal")),
            human_bytes(num(&p["bytes_out_per_day"])),
            human_bytes(num(&p["bytes_in_per_day"])),
            num(&p["denied"]),
            p["findings"].as_array().map_or(0, Vec::len),
            esc(&list("incidents"))
        );
    }
    b.push_str("</table>");
    page("Vendors", &caller, "/vendors", &b)
}

/// `/policy`: the what-if form, filled with the policy in force.
pub async fn policy(State(app): AppState, headers: HeaderMap) -> Response {
    let caller = match session(&app, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let text = app
        .policy
        .as_ref()
        .and_then(|c| std::fs::read_to_string(&c.policy().file).ok())
        .unwrap_or_default();
    page(
        "Policy what-if",
        &caller,
        "/policy",
        &what_if_form(&caller, &text, "", "", ""),
    )
}

fn what_if_form(caller: &Caller, text: &str, since: &str, until: &str, result: &str) -> String {
    format!(
        "<h1>Policy what-if</h1><p class=\"note\">Paste or edit a candidate policy: Cordon judges the stored flows by it and by the policy in force, and lists what it would newly deny (what would break) and what it would no longer deny.</p><form method=\"post\" action=\"/policy\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><p><label for=\"policy\">Candidate policy (YAML)</label><br><textarea id=\"policy\" name=\"policy\" rows=\"18\" cols=\"110\" spellcheck=\"false\">{}</textarea></p><p class=\"filter\"><label>Since <input type=\"text\" name=\"since\" value=\"{}\"></label><label>Until <input type=\"text\" name=\"until\" value=\"{}\"></label><button type=\"submit\">What would change?</button></p></form>{result}",
        esc(&csrf_of(caller)),
        esc(text),
        esc(since),
        esc(until)
    )
}

#[derive(Debug, Deserialize)]
pub struct WhatIfForm {
    #[serde(default)]
    csrf: String,
    policy: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

/// `POST /policy`: the what-if result.
pub async fn what_if(
    State(app): AppState,
    headers: HeaderMap,
    Form(form): Form<WhatIfForm>,
) -> Response {
    let caller = match app.require(&headers, Role::Viewer, true, Some(&form.csrf)) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let body = WhatIfBody {
        policy: form.policy.clone(),
        since: Some(form.since.clone()).filter(|s| !s.is_empty()),
        until: Some(form.until.clone()).filter(|s| !s.is_empty()),
    };
    let result = match api::what_if_json(&app, body).await {
        Ok(v) => {
            let f = &v["flows"];
            let mut r = format!(
                "<h2>Result</h2><p id=\"what-if-summary\">{} flows judged: <b>{}</b> newly denied, <b>{}</b> no longer denied, <b>{}</b> decided the same way by another rule.</p><table id=\"what-if\"><tr><th>From</th><th>To</th><th>Port</th><th>Now</th><th>With the candidate</th><th>Flows</th><th>Example</th></tr>",
                num(&f["flows"]),
                num(&f["newly_denied"]),
                num(&f["no_longer_denied"]),
                num(&f["rule_changed"])
            );
            for c in f["changes"].as_array().into_iter().flatten() {
                let _ = write!(
                    r,
                    "<tr class=\"change\" data-from=\"{}\" data-to=\"{}\" data-before=\"{}\" data-after=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{} ({})</td><td class=\"{}\">{} ({})</td><td class=\"num\">{}</td><td>{}{}</td></tr>",
                    esc(text(c, "from")),
                    esc(text(c, "to")),
                    esc(text(c, "before")),
                    esc(text(c, "after")),
                    esc(text(c, "from")),
                    esc(text(c, "to")),
                    esc(text(c, "port")),
                    verdict_class(text(c, "before")),
                    esc(text(c, "before")),
                    esc(text(c, "rule_before")),
                    verdict_class(text(c, "after")),
                    esc(text(c, "after")),
                    esc(text(c, "rule")),
                    num(&c["flows"]),
                    esc(text(c, "example")),
                    c["hostname"]
                        .as_str()
                        .map(|h| format!(" ({})", esc(h)))
                        .unwrap_or_default()
                );
            }
            r.push_str("</table>");
            if let Some(d) = v["reachability"].as_object() {
                for (k, title) in [
                    ("appears", "Reachable only with the candidate"),
                    ("disappears", "No longer reachable with the candidate"),
                ] {
                    let rows = d
                        .get(k)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    if rows.is_empty() {
                        continue;
                    }
                    let _ = write!(r, "<h3>{title}</h3><ul>");
                    for row in rows.iter().take(200) {
                        let _ = write!(
                            r,
                            "<li>{} → {} {}</li>",
                            esc(text(row, "from")),
                            esc(text(row, "to")),
                            esc(text(row, "port"))
                        );
                    }
                    r.push_str("</ul>");
                }
            }
            r
        }
        Err(e) => format!("<p class=\"error\" role=\"alert\">{}</p>", esc(&e.message)),
    };
    page(
        "Policy what-if",
        &caller,
        "/policy",
        &what_if_form(&caller, &form.policy, &form.since, &form.until, &result),
    )
}
