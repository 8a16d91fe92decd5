//! The report as Markdown.

use std::fmt::Write as _;

use cordon_flow::time::format_rfc3339;

use super::Report;

/// Escape the characters that would break a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let i = &r.incident;
    let _ = writeln!(s, "# Incident {}: {}\n", i.id, i.title);
    let _ = writeln!(
        s,
        "**Severity** {} ({}) · **Status** {} · **Seen** {} → {} · **Report** {}\n",
        i.severity.as_str(),
        i.severity_reason,
        i.status,
        format_rfc3339(i.first_ms),
        format_rfc3339(i.last_ms),
        format_rfc3339(r.generated_ms)
    );
    let _ = writeln!(s, "## Summary\n\n{}\n", r.summary);
    if !r.data_at_risk.is_empty() {
        let _ = writeln!(
            s,
            "**Data at risk** (shared with the vendors involved): {}\n",
            r.data_at_risk.join(", ")
        );
    }

    let _ = writeln!(s, "## Timeline\n");
    let _ = writeln!(s, "| Time (UTC) | Stage | Severity | What happened |");
    let _ = writeln!(s, "|---|---|---|---|");
    for t in &r.timeline {
        let _ = writeln!(
            s,
            "| {} | {} | {} | **{}**: {} |",
            super::short_time(t.at_ms),
            cell(&t.stage_name),
            t.severity.as_str(),
            t.kind,
            cell(&t.summary)
        );
    }

    let _ = writeln!(s, "\n## Affected entities\n");
    let _ = writeln!(s, "| Role | Entity | Address | Groups | Vendor record |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for e in &r.entities {
        let vendor = e.vendor.as_ref().map_or_else(String::new, |v| {
            let mut t = format!("data: {}", v.data.join(", "));
            for (k, val) in [
                ("criticality", &v.criticality),
                ("contact", &v.contact),
                ("contract", &v.contract),
            ] {
                if let Some(val) = val {
                    let _ = write!(t, "; {k}: {val}");
                }
            }
            t
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            e.role.as_str(),
            cell(&e.label),
            e.ip.as_deref().unwrap_or(""),
            e.groups.join(", "),
            cell(&vendor)
        );
    }

    let _ = writeln!(s, "\n## Kill chain\n");
    for (n, st) in r.stages.iter().enumerate() {
        let tactic = st
            .tactic
            .as_ref()
            .map(|(id, name)| format!(" — ATT&CK {name} ({id})"))
            .unwrap_or_default();
        let _ = writeln!(s, "### {}. {}{tactic}\n", n + 1, st.name);
        if !st.techniques.is_empty() {
            let names: Vec<String> = st
                .techniques
                .iter()
                .map(|t| format!("[{} {}]({})", t.id, t.name, t.url))
                .collect();
            let _ = writeln!(s, "Techniques: {}\n", names.join(", "));
        }
        for f in &st.findings {
            let _ = writeln!(
                s,
                "- **[{}] {}** — {}  \n  {} → {}, {} … {}  \n  {}",
                f.severity.as_str(),
                f.kind,
                f.summary,
                f.src,
                f.dst,
                format_rfc3339(f.first_ms),
                format_rfc3339(f.last_ms),
                f.stopped_by.text
            );
            if let Some(p) = &f.stopped_by.proposed {
                let _ = writeln!(s, "\n  ```yaml");
                for line in p.yaml.lines() {
                    let _ = writeln!(s, "  {line}");
                }
                let _ = writeln!(s, "  ```");
            }
            if !f.evidence.is_empty() {
                let _ = writeln!(s, "\n  Evidence:\n");
                for e in &f.evidence {
                    let _ = writeln!(s, "  - {}  \n    `{}`", e.text, e.query);
                }
            }
            let _ = writeln!(s);
        }
    }

    let _ = writeln!(s, "## Compliance controls touched\n");
    for c in &r.controls {
        let _ = writeln!(s, "- **{}** ({}) — {}", c.id, c.framework, c.title);
        if !c.requires.is_empty() {
            let _ = writeln!(s, "  - Requires: {}", c.requires);
        }
        for why in &c.why {
            let _ = writeln!(s, "  - Touched by {why}");
        }
    }

    let _ = writeln!(s, "\n## Recommended actions\n");
    for (n, a) in r.actions.iter().enumerate() {
        let _ = writeln!(s, "{}. {a}", n + 1);
    }
    if !i.history.is_empty() {
        let _ = writeln!(s, "\n## History\n");
        for c in &i.history {
            let note = if c.note.is_empty() {
                String::new()
            } else {
                format!(": {}", c.note)
            };
            let _ = writeln!(
                s,
                "- {} {} by {}{note}",
                format_rfc3339(c.at_ms),
                c.status,
                c.by
            );
        }
    }
    let _ = writeln!(
        s,
        "\n---\nGenerated by Cordon {}{}. Control texts are short paraphrases; the frameworks' own texts are authoritative.",
        env!("CARGO_PKG_VERSION"),
        r.policy
            .as_ref()
            .map(|p| format!(" with policy {p}"))
            .unwrap_or_default()
    );
    s
}
