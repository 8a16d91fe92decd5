//! `cordon policy ...`

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cordon_policy::diff::diff;
use cordon_policy::fmt::format_policy;
use cordon_policy::lint::{LintLevel, lint};
use cordon_policy::{CompiledPolicy, Endpoint, Request, explain, load_policy};
use serde_json::json;

use crate::args::{
    CheckArgs, DiffArgs, ExplainArgs, FailOn, FmtArgs, LintArgs, PolicyCommand, RecommendArgs,
};
use crate::common::{load, load_options, open_store, print_policy_errors, range, usage};
use crate::{EXIT_CONFIG, EXIT_FINDINGS, EXIT_USAGE, out, outln};
use cordon_pipeline::{Pipeline, Recommender};
use cordon_store::FlowQuery;

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check(args) => check(&args),
        PolicyCommand::Explain(args) => explain_cmd(&args),
        PolicyCommand::Lint(args) => lint_cmd(&args),
        PolicyCommand::Diff(args) => diff_cmd(&args),
        PolicyCommand::Fmt(args) => fmt_cmd(&args),
        PolicyCommand::Export(args) => export_cmd(&args),
        PolicyCommand::Recommend(args) => recommend(&args),
        PolicyCommand::Keygen(args) => crate::bundle_cmd::keygen(&args),
        PolicyCommand::Bundle(args) => crate::bundle_cmd::bundle_cmd(&args),
        PolicyCommand::VerifyBundle(args) => crate::bundle_cmd::verify(&args),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for file in &args.files {
        match load_policy(file, &load_options(&args.inventory)) {
            Ok(policy) => {
                let user_groups = policy.groups.iter().filter(|g| !g.builtin).count();
                if args.json {
                    outln!(
                        "{}",
                        json!({
                            "file": file.display().to_string(),
                            "valid": true,
                            "errors": [],
                            "groups": user_groups,
                            "rules": policy.rules.len(),
                            "workloads": policy.workloads.len(),
                        })
                    );
                } else {
                    outln!(
                        "{}: ok ({} groups, {} rules, {} workloads, mode {}, default {})",
                        file.display(),
                        user_groups,
                        policy.rules.len(),
                        policy.workloads.len(),
                        policy.mode,
                        policy.default
                    );
                }
            }
            Err(e) => {
                failed = true;
                if args.json {
                    let errors: Vec<_> = e
                        .diagnostics
                        .iter()
                        .map(|d| {
                            json!({
                                "file": d.file.to_string(),
                                "line": d.pos.map(|p| p.line),
                                "column": d.pos.map(|p| p.col),
                                "message": d.message,
                                "hint": d.hint,
                            })
                        })
                        .collect();
                    outln!(
                        "{}",
                        json!({"file": file.display().to_string(), "valid": false, "errors": errors})
                    );
                } else {
                    print_policy_errors(&e);
                }
            }
        }
    }
    Ok(ExitCode::from(if failed { EXIT_CONFIG } else { 0 }))
}

fn explain_cmd(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let policy = match load(&args.file, &args.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let compiled = CompiledPolicy::new(Arc::new(policy));
    let policy = compiled.policy();
    let parsed = (|| -> Result<Request, String> {
        let src = Endpoint::parse(policy, &args.from).map_err(|e| format!("--from: {e}"))?;
        let dst = Endpoint::parse(policy, &args.to).map_err(|e| format!("--to: {e}"))?;
        let (protocol, port) =
            Request::parse_port(&args.port).map_err(|e| format!("--port: {e}"))?;
        Ok(Request {
            src,
            dst,
            protocol,
            port,
        })
    })();
    let request = match parsed {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let decision = compiled.evaluate(&request);
    let explanation = explain(&compiled, &request, &decision);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&explanation)?);
        return Ok(ExitCode::SUCCESS);
    }
    let side = |e: &cordon_policy::explain::ExplainedEndpoint| {
        let mut who: Vec<String> = Vec::new();
        who.extend(e.workload.clone());
        who.extend(e.ip.clone());
        who.extend(e.host.clone());
        who.extend(e.spiffe.clone());
        let mut text = format!("{}  groups: {}", who.join(" "), e.groups.join(", "));
        if !e.vendors.is_empty() {
            text.push_str(&format!("  vendor: {}", e.vendors.join(", ")));
        }
        text
    };
    outln!("verdict: {}", explanation.verdict);
    outln!("reason:  {}", explanation.reason);
    outln!("from:    {}", side(&explanation.src));
    outln!(
        "to:      {}  port: {}",
        side(&explanation.dst),
        explanation.port
    );
    if explanation.matched.is_empty() {
        outln!("rules:   (none match)");
    }
    for (i, m) in explanation.matched.iter().enumerate() {
        outln!(
            "{}{} ({}, {}{})",
            if i == 0 { "rules:   " } else { "         " },
            m.name,
            m.action,
            m.mode,
            m.at.as_ref()
                .map(|a| format!(", at {}:{a}", policy.file))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn lint_cmd(args: &LintArgs) -> anyhow::Result<ExitCode> {
    let policy = match load(&args.file, &args.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let findings = lint(&policy);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        for f in &findings {
            let level = match f.level {
                LintLevel::Warning => "warning",
                LintLevel::Info => "info",
            };
            outln!(
                "{}: {level}[{}]: {}\n  hint: {}",
                f.at.as_deref().unwrap_or(&policy.file),
                f.code,
                f.message,
                f.hint
            );
        }
        let warnings = findings
            .iter()
            .filter(|f| f.level == LintLevel::Warning)
            .count();
        outln!(
            "{}: {} warning{}, {} info",
            args.file.display(),
            warnings,
            if warnings == 1 { "" } else { "s" },
            findings.len() - warnings
        );
    }
    let fail = match args.fail_on {
        None => false,
        Some(FailOn::Info) => !findings.is_empty(),
        Some(FailOn::Warning) => findings.iter().any(|f| f.level == LintLevel::Warning),
    };
    Ok(ExitCode::from(if fail { EXIT_FINDINGS } else { 0 }))
}

fn diff_cmd(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let old = match load(&args.old, &args.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let new = match load(&args.new, &args.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let d = diff(&old, &new);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&d)?);
    } else if d.is_empty() {
        outln!("no reachability changes");
    } else {
        for s in &d.settings {
            outln!("! {s}");
        }
        for r in &d.appears {
            outln!("+ {} → {} {} (rule {})", r.from, r.to, r.port, r.rule);
        }
        for r in &d.disappears {
            outln!("- {} → {} {} (rule {})", r.from, r.to, r.port, r.rule);
        }
        for g in &d.added_groups {
            outln!("+ group {g}");
        }
        for g in &d.removed_groups {
            outln!("- group {g}");
        }
        for g in &d.changed_groups {
            outln!("~ group {g}: selectors changed (its members' reachability changes with it)");
        }
    }
    Ok(ExitCode::from(if args.exit_code && !d.is_empty() {
        EXIT_FINDINGS
    } else {
        0
    }))
}

fn fmt_cmd(args: &FmtArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read `{}`", args.file.display()))?;
    let policy = match load(
        &args.file,
        &crate::args::InventoryArgs {
            inventory: Vec::new(),
        },
    ) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let formatted = format_policy(&policy.raw);
    if args.check {
        return Ok(ExitCode::from(if formatted == text {
            0
        } else {
            EXIT_FINDINGS
        }));
    }
    let has_comments = text
        .lines()
        .any(|l| l.trim_start().starts_with('#') || l.contains(" #"));
    if has_comments {
        eprintln!(
            "note: `{}` has comments, which the canonical form does not keep",
            args.file.display()
        );
    }
    if args.write {
        let tmp = args.file.with_extension("yaml.cordon-fmt");
        std::fs::write(&tmp, &formatted)
            .with_context(|| format!("cannot write `{}`", tmp.display()))?;
        std::fs::rename(&tmp, &args.file)
            .with_context(|| format!("cannot replace `{}`", args.file.display()))?;
    } else {
        out!("{formatted}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `cordon policy export`
fn export_cmd(args: &crate::args::ExportArgs) -> anyhow::Result<ExitCode> {
    let policy = match load(&args.file, &args.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let export = match args.format {
        crate::args::ExportFormat::K8s => {
            cordon_policy::export::k8s::export(&policy, &args.namespace)
        }
        crate::args::ExportFormat::Cilium => {
            cordon_policy::export::cilium::export(&policy, &args.namespace)
        }
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "objects": export.objects,
                "unexpressible": export.unexpressible,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let yaml = export.to_yaml();
    match &args.out {
        Some(path) => std::fs::write(path, yaml)
            .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?,
        None => out!("{yaml}"),
    }
    eprintln!(
        "{} objects; {} things the target cannot express:",
        export.objects.len(),
        export.unexpressible.len()
    );
    for u in &export.unexpressible {
        eprintln!(
            "  {}{}: {}",
            u.rule
                .as_deref()
                .map(|r| format!("rule `{r}`: "))
                .unwrap_or_default(),
            u.what,
            u.why
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `cordon policy recommend`
fn recommend(args: &RecommendArgs) -> anyhow::Result<ExitCode> {
    let (since_ms, until_ms) = match range(&args.range) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let policy = match load(&args.policy, &args.inventory) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let compiled = Arc::new(CompiledPolicy::new(Arc::new(policy.clone())));
    let store = open_store(&args.store)?;
    let mut recommender = Recommender::default();
    let mut pipeline = Pipeline::builder()
        .policy(Some(compiled))
        .observe(|f| recommender.observe(f))
        .build();
    let query = FlowQuery {
        since_ms,
        until_ms,
        ..FlowQuery::default()
    };
    pipeline.replay(&store, &query, &mut |_| {})?;
    drop(pipeline);
    let source = args.policy.display().to_string();
    match recommender.finish(&policy, &args.name, &source, &load_options(&args.inventory)) {
        Ok(r) => {
            out!("{}", r.text);
            eprintln!("{} rules from {} flows", r.rules, r.flows);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("internal error: the recommended policy does not validate:\n{e}");
            Ok(ExitCode::from(crate::EXIT_FAILURE))
        }
    }
}
