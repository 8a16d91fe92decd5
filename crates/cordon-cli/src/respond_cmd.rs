//! `cordon respond`: make, list, approve and undo responses in the
//! responses file. The checks and the file's locking are the response
//! crate's; this module reads arguments and prints.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use cordon_core::units::Window;
use cordon_policy::{CompiledPolicy, Endpoint};
use cordon_response::file;
use cordon_response::{
    Action, NewResponse, Overlay, Peer, Refused, Response, Responses, Status, Subject, UpdateError,
    response_json, response_json_at,
};
use cordon_store::FlowQuery;
use cordon_store::FlowReader;

use crate::args::{NewResponseArgs, RespondCommand};
use crate::common::{compile, existing_store, usage};
use crate::{EXIT_CONFIG, EXIT_FAILURE, outln};

fn fail(f: UpdateError) -> anyhow::Result<ExitCode> {
    eprintln!("error: {f}");
    Ok(ExitCode::from(match f {
        UpdateError::Refused(_) => EXIT_CONFIG,
        UpdateError::File(_) => EXIT_FAILURE,
    }))
}

/// Who is asking, for the audit trail.
fn who() -> String {
    let user = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".to_string());
    format!("cli:{user}")
}

fn policy_for(
    path: Option<&Path>,
    inventory: &crate::args::InventoryArgs,
) -> Result<Arc<CompiledPolicy>, ExitCode> {
    match path {
        Some(p) => compile(p, inventory),
        None => cordon_response::empty_policy().map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }),
    }
}

/// `cordon respond ...`
pub fn run(cmd: RespondCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RespondCommand::Quarantine(a) => {
            let subject = match (&a.workload, &a.ip) {
                (Some(w), None) => Subject::Workload(w.clone()),
                (None, Some(ip)) => match cordon_response::model::parse_net(ip) {
                    Some(n) => Subject::Address(n),
                    None => return usage(format!("--ip: `{ip}` is not an address or CIDR")),
                },
                _ => return usage("give one of --workload or --ip"),
            };
            let allow = a.allow.iter().map(|p| Peer::parse(p)).collect();
            create(Action::Quarantine { subject, allow }, &a.new)
        }
        RespondCommand::Block(a) => {
            let policy = match policy_for(a.new.policy.as_deref(), &a.new.inventory) {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let to = match cordon_response::destination(&a.to, &policy) {
                Ok(d) => d,
                Err(e) => return usage(format!("--to: {e}")),
            };
            create(
                Action::Block {
                    to,
                    from: a.from.clone(),
                },
                &a.new,
            )
        }
        RespondCommand::Throttle(a) => {
            let (bytes, per) = match cordon_response::document::parse_limit(&a.limit) {
                Ok(l) => l,
                Err(e) => return usage(format!("--limit: {e}")),
            };
            create(
                Action::Throttle {
                    vendor: a.vendor.clone(),
                    bytes,
                    per,
                },
                &a.new,
            )
        }
        RespondCommand::List(a) => list(&a.file.responses, a.status.as_deref(), a.json),
        RespondCommand::Show(a) => show(&a.file.responses, &a.id, a.json),
        RespondCommand::Approve(a) => {
            let policy = match policy_for(a.policy.as_deref(), &a.inventory) {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let never = cordon_response::system_never_block();
            let by = who();
            let now = cordon_flow::time::now_ms();
            let r = file::update(&a.file.responses, |doc| -> Result<Response, UpdateError> {
                cordon_response::approve(doc, &a.id, &by, a.note.clone(), &policy, now, &never)?;
                Ok(doc
                    .get(&a.id)
                    .cloned()
                    .ok_or_else(|| Refused(a.id.clone()))?)
            });
            match r {
                Ok(r) => say(&r, "approved", a.json),
                Err(f) => fail(f),
            }
        }
        RespondCommand::Undo(a) => {
            let by = who();
            let now = cordon_flow::time::now_ms();
            let r = file::update(&a.file.responses, |doc| -> Result<Response, UpdateError> {
                cordon_response::undo(doc, &a.id, &by, a.note.clone(), now)?;
                Ok(doc
                    .get(&a.id)
                    .cloned()
                    .ok_or_else(|| Refused(a.id.clone()))?)
            });
            match r {
                Ok(r) => say(&r, "undone", a.json),
                Err(f) => fail(f),
            }
        }
    }
}

fn create(action: Action, a: &NewResponseArgs) -> anyhow::Result<ExitCode> {
    let ttl = match Window::parse(&a.ttl) {
        Ok(t) => t,
        Err(e) => return usage(format!("--ttl: {e}")),
    };
    if a.finding.is_some() && a.incident.is_some() {
        return usage("give --finding or --incident, not both");
    }
    let policy = match policy_for(a.policy.as_deref(), &a.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let never = cordon_response::system_never_block();
    let now = cordon_flow::time::now_ms();
    let new = NewResponse {
        action,
        reason: a.reason.clone(),
        finding: a.finding.clone(),
        incident: a.incident.clone(),
        by: who(),
        ttl,
        propose: a.propose,
    };
    if a.dry_run {
        // Every check, on a copy; nothing is written.
        let mut doc = match file::read(&a.file.responses) {
            Ok(d) => d,
            Err(e) => return fail(UpdateError::File(e)),
        };
        let id = match cordon_response::add(&mut doc, new, &policy, now, &never) {
            Ok(id) => id,
            Err(r) => return fail(UpdateError::Refused(r)),
        };
        let Some(r) = doc.get(&id.0).cloned() else {
            return Ok(ExitCode::from(EXIT_FAILURE));
        };
        return dry_run(&r, &doc, &policy, &never, a);
    }
    let r = file::update(&a.file.responses, |doc| -> Result<Response, UpdateError> {
        let id = cordon_response::add(doc, new, &policy, now, &never)?;
        Ok(doc
            .get(&id.0)
            .cloned()
            .ok_or_else(|| Refused(id.0.clone()))?)
    });
    match r {
        Ok(r) => say(&r, if a.propose { "proposed" } else { "active" }, a.json),
        Err(f) => fail(f),
    }
}

/// One line for a response that changed: its id first.
fn say(r: &Response, what: &str, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        outln!("{}", response_json(r));
        return Ok(ExitCode::SUCCESS);
    }
    let until = r
        .expires
        .map(|e| format!(" until {}", cordon_flow::time::format_rfc3339(e)))
        .unwrap_or_default();
    outln!(
        "{}\t{} {}\t{what}{until}",
        r.id,
        r.action.name(),
        r.action.target()
    );
    Ok(ExitCode::SUCCESS)
}

/// What the response would have cut in the store's last hour.
fn dry_run(
    r: &Response,
    doc: &Responses,
    policy: &CompiledPolicy,
    never: &[(ipnet::IpNet, String)],
    a: &NewResponseArgs,
) -> anyhow::Result<ExitCode> {
    let mut only = Responses {
        responses: vec![r.clone()],
        ..doc.clone()
    };
    if let Some(x) = only.responses.first_mut() {
        // Judge it as if in force now, proposal or not.
        x.status = Status::Active;
        x.expires = Some(i64::MAX);
    }
    let overlay = Overlay::build(&only, policy, cordon_flow::time::now_ms(), never);
    let store_path = a.store.path();
    let mut cut = Vec::new();
    let mut seen = 0u64;
    let mut window = None;
    if store_path.join("flows.sqlite").is_file() {
        let store = existing_store(&a.store)?;
        // The last hour of the store's flows (the last hour there is, when
        // the store is older than an hour).
        let now = cordon_flow::time::now_ms();
        let end = store.time_span()?.map_or(now, |(_, last)| last.min(now));
        let q = FlowQuery {
            since_ms: Some(end - 3_600_000),
            until_ms: Some(end + 1),
            ..FlowQuery::default()
        };
        window = Some((end - 3_600_000, end));
        store.scan(&q, &mut |f| {
            seen += 1;
            let dst = Endpoint {
                host: f
                    .hostname
                    .as_deref()
                    .and_then(|h| cordon_core::Hostname::parse(h).ok()),
                ..Endpoint::ip(f.dst_ip)
            };
            if overlay
                .denies(policy, &Endpoint::ip(f.src_ip), &dst)
                .is_some()
            {
                cut.push(f);
            }
            true
        })?;
    }
    if a.json {
        let out = serde_json::json!({
            "dry_run": true,
            "response": response_json(r),
            "flows_examined": seen,
            "window": window.map(|(s, e)| [cordon_flow::time::format_rfc3339(s), cordon_flow::time::format_rfc3339(e)]),
            "would_cut": cut.len(),
            "flows": cut.iter().take(100).collect::<Vec<_>>(),
        });
        outln!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "dry run: {} {} would be {} (nothing was changed)",
        r.action.name(),
        r.action.target(),
        if a.propose { "proposed" } else { "in force" }
    );
    match window {
        None => outln!(
            "no store at `{}`: no flows to check (give --store DIR)",
            store_path.display()
        ),
        Some((s, e)) => {
            outln!(
                "of {seen} flows from {} to {}, it would have cut {}:",
                cordon_flow::time::format_rfc3339(s),
                cordon_flow::time::format_rfc3339(e),
                cut.len()
            );
            for f in cut.iter().take(20) {
                outln!(
                    "  {}  {}:{} -> {}:{}{} {} B out",
                    cordon_flow::time::format_rfc3339(f.start_ms),
                    f.src_ip,
                    f.src_port,
                    f.dst_ip,
                    f.dst_port,
                    f.hostname
                        .as_deref()
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default(),
                    f.bytes_out
                );
            }
            if cut.len() > 20 {
                outln!("  ... and {} more", cut.len() - 20);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(path: &Path, status: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let want = match status {
        None => None,
        Some(s) => match Status::parse(s) {
            Some(s) => Some(s),
            None => {
                return usage(format!(
                    "--status: `{s}` is not one of proposed, active, expired, undone"
                ));
            }
        },
    };
    let doc = match file::read(path) {
        Ok(d) => d,
        Err(e) => return fail(UpdateError::File(e)),
    };
    let now = cordon_flow::time::now_ms();
    let rows: Vec<&Response> = doc
        .responses
        .iter()
        .filter(|r| want.is_none_or(|w| r.status_at(now) == w))
        .collect();
    if json {
        let v: Vec<serde_json::Value> = rows.iter().map(|r| response_json_at(r, now)).collect();
        outln!("{}", serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!("no responses (generation {})", doc.generation);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("ID\tSTATUS\tACTION\tTARGET\tEXPIRES\tREASON");
    for r in rows {
        outln!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            r.id,
            r.status_at(now).as_str(),
            r.action.name(),
            r.action.target(),
            r.expires
                .map_or_else(|| "-".to_string(), cordon_flow::time::format_rfc3339),
            r.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn show(path: &Path, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let doc = match file::read(path) {
        Ok(d) => d,
        Err(e) => return fail(UpdateError::File(e)),
    };
    let Some(r) = doc.get(id) else {
        eprintln!("error: no response `{id}` in `{}`", path.display());
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    let now = cordon_flow::time::now_ms();
    if json {
        outln!("{}", response_json_at(r, now));
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{}  {} {}", r.id, r.action.name(), r.action.target());
    outln!("status:   {}", r.status_at(now).as_str());
    outln!("reason:   {}", r.reason);
    if let Some(f) = &r.finding {
        outln!("finding:  {f}");
    }
    if let Some(i) = &r.incident {
        outln!("incident: {i}");
    }
    if let Action::Quarantine { allow, .. } = &r.action
        && !allow.is_empty()
    {
        let list: Vec<String> = allow.iter().map(ToString::to_string).collect();
        outln!("allow:    {}", list.join(", "));
    }
    outln!("by:       {}", r.created_by);
    outln!("created:  {}", cordon_flow::time::format_rfc3339(r.created));
    outln!("ttl:      {}", r.ttl);
    if let Some(e) = r.expires {
        outln!("expires:  {}", cordon_flow::time::format_rfc3339(e));
    }
    outln!("history:");
    for e in &r.history {
        outln!(
            "  {}  {:<9} {}{}",
            cordon_flow::time::format_rfc3339(e.at),
            e.what,
            e.by,
            e.note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
