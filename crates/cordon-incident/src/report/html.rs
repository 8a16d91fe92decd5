//! The report as one self-contained HTML file: inline styles, an inline SVG
//! kill-chain timeline, no scripts and nothing fetched from anywhere.
//! Readable on a screen and printable.

use std::fmt::Write as _;

use cordon_detect::Severity;
use cordon_flow::time::format_rfc3339;

use super::Report;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Low => "#6b7f99",
        Severity::Medium => "#c98a00",
        Severity::High => "#d9480f",
        Severity::Critical => "#b00020",
    }
}

const STYLE: &str = "
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;max-width:1060px;margin:2em auto;padding:0 1.2em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #dde3ec;padding-bottom:.2em;margin-top:1.8em}
h3{margin-bottom:.3em}.meta{color:#4a5568}.badge{display:inline-block;padding:.05em .55em;border-radius:.8em;color:#fff;font-size:.85em;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border:1px solid #dde3ec;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f3f6fa}code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;background:#f3f6fa;border-radius:4px}
code{padding:.1em .3em;word-break:break-all}pre{padding:.6em;overflow-x:auto}.finding{border-left:4px solid #dde3ec;padding:.2em .8em;margin:.8em 0}
.stop{color:#2f6f3e}.allow{color:#9c4221}.small{font-size:.9em;color:#4a5568}svg{max-width:100%;height:auto}
@media print{body{margin:0;max-width:none}a{color:inherit;text-decoration:none}.finding,table,svg{page-break-inside:avoid}}
";

/// The kill-chain timeline: one lane per stage, one bar per finding over
/// its evidence's time span, coloured by severity.
fn timeline_svg(r: &Report) -> String {
    let lanes: Vec<&str> = r.stages.iter().map(|s| s.name.as_str()).collect();
    let (start, end) = (
        r.incident.first_ms,
        r.incident.last_ms.max(r.incident.first_ms + 1),
    );
    let (left, width, lane_h, top) = (190.0, 700.0, 34.0, 28.0);
    let height = top + lane_h * lanes.len() as f64 + 30.0;
    let x = |ms: i64| left + (ms - start) as f64 / (end - start) as f64 * width;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {:.0} {height:.0}\" role=\"img\" aria-label=\"Kill-chain timeline\" font-family=\"system-ui,sans-serif\" font-size=\"12\">",
        left + width + 20.0
    );
    let _ = write!(
        s,
        "<title>Kill-chain timeline of {}</title>",
        esc(&r.incident.id)
    );
    for tick in 0..=4 {
        let ms = start + (end - start) * tick / 4;
        let tx = x(ms);
        let label = format_rfc3339(ms);
        let label = label.get(5..16).unwrap_or(&label).replace('T', " ");
        let anchor = match tick {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"{:.0}\" x2=\"{tx:.1}\" y2=\"{:.0}\" stroke=\"#dde3ec\"/><text x=\"{tx:.1}\" y=\"{:.0}\" text-anchor=\"{anchor}\" fill=\"#4a5568\">{}</text>",
            top - 8.0,
            height - 24.0,
            height - 8.0,
            esc(&label)
        );
    }
    for (n, stage) in r.stages.iter().enumerate() {
        let y = top + lane_h * n as f64;
        let _ = write!(
            s,
            "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#1d2330\">{}. {}</text><line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.0}\" y2=\"{:.1}\" stroke=\"#eef1f6\"/>",
            left - 10.0,
            y + lane_h / 2.0 + 4.0,
            n + 1,
            esc(&stage.name),
            y + lane_h / 2.0,
            left + width,
            y + lane_h / 2.0
        );
        for f in &stage.findings {
            let (x0, x1) = (x(f.first_ms), x(f.last_ms));
            let w = (x1 - x0).max(6.0);
            let _ = write!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"16\" rx=\"3\" fill=\"{}\" fill-opacity=\"0.85\"><title>{} [{}] {}</title></rect>",
                y + lane_h / 2.0 - 8.0,
                colour(f.severity),
                esc(&f.kind),
                f.severity.as_str(),
                esc(&f.summary)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// An incident's status changes as an HTML list.
pub fn history(changes: &[crate::StatusChange]) -> String {
    let mut s = String::from("<ul>");
    for c in changes {
        let _ = write!(
            s,
            "<li>{} <b>{}</b> by {}{}</li>",
            format_rfc3339(c.at_ms),
            c.status,
            esc(&c.by),
            if c.note.is_empty() {
                String::new()
            } else {
                format!(": {}", esc(&c.note))
            }
        );
    }
    s.push_str("</ul>");
    s
}

/// The report as one HTML document.
pub fn html(r: &Report) -> String {
    let i = &r.incident;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"><title>Incident {}: {}</title><style>{STYLE}</style></head><body>",
        esc(&i.id),
        esc(&i.title)
    );
    let _ = write!(
        s,
        "<h1>Incident {}: {}</h1><p class=\"meta\"><span class=\"badge\" style=\"background:{}\">{}</span> {} · status <b>{}</b> · seen {} → {} · report made {}</p>",
        esc(&i.id),
        esc(&i.title),
        colour(i.severity),
        i.severity.as_str(),
        esc(&i.severity_reason),
        i.status,
        format_rfc3339(i.first_ms),
        format_rfc3339(i.last_ms),
        format_rfc3339(r.generated_ms)
    );
    let _ = write!(s, "<h2>Summary</h2><p>{}</p>", esc(&r.summary));
    if !r.data_at_risk.is_empty() {
        let _ = write!(
            s,
            "<p><b>Data at risk</b> (shared with the vendors involved): {}</p>",
            esc(&r.data_at_risk.join(", "))
        );
    }
    let _ = write!(s, "<h2>Kill chain over time</h2>{}", timeline_svg(r));

    s.push_str("<h2>Timeline</h2><table><tr><th>Time (UTC)</th><th>Stage</th><th>Severity</th><th>What happened</th></tr>");
    for t in &r.timeline {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td><span class=\"badge\" style=\"background:{}\">{}</span></td><td><b>{}</b>: {}</td></tr>",
            super::short_time(t.at_ms),
            esc(&t.stage_name),
            colour(t.severity),
            t.severity.as_str(),
            esc(&t.kind),
            esc(&t.summary)
        );
    }
    s.push_str("</table>");

    s.push_str("<h2>Affected entities</h2><table><tr><th>Role</th><th>Entity</th><th>Address</th><th>Groups</th><th>Vendor record</th></tr>");
    for e in &r.entities {
        let vendor = e
            .vendor
            .as_ref()
            .map_or_else(String::new, super::VendorInfo::describe);
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.role.as_str(),
            esc(&e.label),
            esc(e.ip.as_deref().unwrap_or("")),
            esc(&e.groups.join(", ")),
            esc(&vendor)
        );
    }
    s.push_str("</table>");

    s.push_str("<h2>Kill chain, stage by stage</h2>");
    for (n, st) in r.stages.iter().enumerate() {
        let tactic = st
            .tactic
            .as_ref()
            .map(|(id, name)| format!(" — ATT&amp;CK {} ({})", esc(name), esc(id)))
            .unwrap_or_default();
        let _ = write!(s, "<h3>{}. {}{tactic}</h3>", n + 1, esc(&st.name));
        if !st.techniques.is_empty() {
            let names: Vec<String> = st
                .techniques
                .iter()
                .map(|t| {
                    format!(
                        "<a href=\"{}\">{} {}</a>",
                        esc(&t.url),
                        esc(&t.id),
                        esc(&t.name)
                    )
                })
                .collect();
            let _ = write!(s, "<p>Techniques: {}</p>", names.join(", "));
        }
        for f in &st.findings {
            let stop_class = if f.stopped_by.rule.is_some() {
                "stop"
            } else {
                "allow"
            };
            let _ = write!(
                s,
                "<div class=\"finding\" style=\"border-color:{}\"><p><span class=\"badge\" style=\"background:{}\">{}</span> <b>{}</b> — {}<br><span class=\"small\">{} → {}, {} … {}</span></p><p class=\"{stop_class}\">{}</p>",
                colour(f.severity),
                colour(f.severity),
                f.severity.as_str(),
                esc(&f.kind),
                esc(&f.summary),
                esc(&f.src),
                esc(&f.dst),
                format_rfc3339(f.first_ms),
                format_rfc3339(f.last_ms),
                esc(&f.stopped_by.text)
            );
            if let Some(p) = &f.stopped_by.proposed {
                let _ = write!(s, "<pre>{}</pre>", esc(&p.yaml));
            }
            if !f.evidence.is_empty() {
                s.push_str("<details open><summary>Evidence flows</summary><ul>");
                for e in &f.evidence {
                    let _ = write!(
                        s,
                        "<li>{}<br><code>{}</code></li>",
                        esc(&e.text),
                        esc(&e.query)
                    );
                }
                s.push_str("</ul></details>");
            }
            s.push_str("</div>");
        }
    }

    s.push_str("<h2>Compliance controls touched</h2><table><tr><th>Control</th><th>What it requires</th><th>Why this incident touches it</th></tr>");
    for c in &r.controls {
        let why: Vec<String> = c.why.iter().map(|w| esc(w)).collect();
        let _ = write!(
            s,
            "<tr><td><b>{}</b><br><span class=\"small\">{} — {}</span></td><td>{}</td><td>{}</td></tr>",
            esc(&c.id),
            esc(&c.framework),
            esc(&c.title),
            esc(&c.requires),
            why.join("<br>")
        );
    }
    s.push_str("</table><h2>Recommended actions</h2><ol>");
    for a in &r.actions {
        let _ = write!(s, "<li>{}</li>", esc(a));
    }
    s.push_str("</ol>");
    if !i.history.is_empty() {
        s.push_str("<h2>History</h2>");
        s.push_str(&history(&i.history));
    }
    let _ = writeln!(
        s,
        "<p class=\"small\">Generated by Cordon {}{}. Control texts are short paraphrases; the frameworks' own texts are authoritative.</p></body></html>",
        env!("CARGO_PKG_VERSION"),
        r.policy
            .as_ref()
            .map(|p| format!(" with policy {}", esc(p)))
            .unwrap_or_default()
    );
    s
}
