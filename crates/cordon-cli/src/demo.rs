//! `cordon demo`: the email-provider breach replayed through the whole
//! pipeline. A simulated week-end of Acme's traffic with the attack in it
//! is written as flow logs, ingested with the example policy (parse →
//! enrich → verdict → store → detect), and the kill chain the detectors
//! found is told stage by stage: techniques, evidence, the controls it
//! touches, and the rule that would have stopped each step if enforced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use cordon_detect::Finding;
use cordon_detect::kb::Kb;
use cordon_flow::time::format_rfc3339;
use cordon_incident::{Incident, report};
use cordon_pipeline::Pipeline;
use cordon_policy::{CompiledPolicy, LoadOptions, load_policy};
use cordon_sim::Scenario;
use cordon_sim::truth::Truth;
use cordon_sim::write::OutFormat;
use cordon_sim::write::write_simulation;
use cordon_store::{FindingStore, SqliteStore, Store};

use crate::args::{DemoArgs, DetectionArgs, FindingsOutput};
use crate::common::{engine, print_findings, usage};
use crate::{EXIT_CONFIG, outln};

const POLICY: &str = include_str!("../../../examples/acme-prod.yaml");
const INVENTORY: &str = include_str!("../../../examples/acme-inventory.yaml");

/// Whether finding `f` is about step `s` of the ground truth: same source,
/// and the same destination unless the step sweeps many.
pub(crate) fn matches_step(f: &Finding, s: &cordon_sim::truth::Step) -> bool {
    let src = f.src_entity.ip.is_some_and(|ip| s.src.contains(&ip));
    let dst = s.dst.is_empty()
        || f.dst_entity.ip.is_some_and(|ip| s.dst.contains(&ip))
        || f.dst_entity
            .hostname
            .as_ref()
            .is_some_and(|h| s.dst_names.contains(h))
        || (f.dst_entity.ip.is_none() && f.dst_entity.hostname.is_none());
    src && dst && f.first_ms <= s.end_ms + 3_600_000 && f.last_ms >= s.start_ms - 3_600_000
}

fn tell(f: &Finding, kb: &Kb) -> anyhow::Result<()> {
    outln!(
        "  [{}] {} — {}",
        f.severity.as_str(),
        f.kind,
        f.evidence.summary
    );
    outln!(
        "      {} → {}, {} … {}",
        f.src,
        f.dst,
        format_rfc3339(f.first_ms),
        format_rfc3339(f.last_ms)
    );
    outln!("      ATT&CK: {}", kb.named(&f.techniques).join("; "));
    for r in f.evidence.flows.iter().take(2) {
        outln!("      evidence: {}", report::flow_text(r));
    }
    // A cloud audit finding's evidence is the calls it saw.
    let calls = f
        .evidence
        .facts
        .get("events")
        .and_then(serde_json::Value::as_array);
    for call in calls.into_iter().flatten().take(2) {
        outln!("      evidence: {}", call_text(call));
    }
    let controls: Vec<&str> = f.controls.iter().map(|c| c.id.as_str()).collect();
    outln!("      controls: {}", controls.join(", "));
    match &f.stopped_by {
        Some(rule) => outln!("      enforced, the policy would have stopped it: {rule}"),
        None if f.kind.is_cloud_plane() => outln!(
            "      a call in the cloud's control or data plane: no network rule sees it, detection does"
        ),
        None => outln!(
            "      the policy allows this path (a trusted or unlisted route): only detection sees it"
        ),
    }
    Ok(())
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let Some(format) = OutFormat::from_name(&args.format) else {
        return usage(format!(
            "--format: unknown format `{}` (aws, gcp, azure, zeek, ipfix)",
            args.format
        ));
    };
    let dir: PathBuf = match &args.out {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("cordon-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let policy_path = dir.join("acme-prod.yaml");
    std::fs::write(&policy_path, POLICY)
        .with_context(|| format!("cannot write `{}`", policy_path.display()))?;
    std::fs::write(dir.join("acme-inventory.yaml"), INVENTORY)
        .with_context(|| format!("cannot write into `{}`", dir.display()))?;
    let policy = match load_policy(&policy_path, &LoadOptions::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let quiet = args.json;
    let say = |s: String| -> std::io::Result<()> {
        if !quiet {
            crate::output::write(format_args!("{s}"), true)?;
        }
        Ok(())
    };
    say(
        "Cordon demo: the email-provider breach, replayed through the whole pipeline\n".to_string(),
    )?;

    // 1. Simulate.
    let started = Instant::now();
    let flows_dir = dir.join("flows");
    let (truth, files, records) = write_simulation(
        Scenario::ThirdPartyCompromise,
        format,
        args.hours,
        args.seed,
        &flows_dir,
    )
    .with_context(|| format!("cannot write into `{}`", flows_dir.display()))?;
    say(format!(
        "1. simulate   {} h of Acme's traffic with the attack in it (seed {}): {records} {} records ({:.1}s)",
        truth.hours,
        truth.seed,
        args.format,
        started.elapsed().as_secs_f64()
    ))?;

    // 2. Ingest with the policy and detect on the stream.
    let started = Instant::now();
    let store_dir = dir.join("store");
    let _ = std::fs::remove_dir_all(&store_dir);
    let mut store = SqliteStore::open(&store_dir)
        .with_context(|| format!("cannot open the store at `{}`", store_dir.display()))?;
    let groups = policy.groups.iter().filter(|g| !g.builtin).count();
    let rules = policy.rules.len();
    let compiled = Arc::new(CompiledPolicy::new(Arc::new(policy)));
    let mut dns = cordon_flow::dns::DnsAnswers::default();
    let dns_path = flows_dir.join("dns.log");
    let input = std::fs::File::open(&dns_path)
        .with_context(|| format!("cannot read `{}`", dns_path.display()))?;
    dns.read_zeek(&dns_path.display().to_string(), Box::new(input))?;
    let mut engine = match engine(
        &DetectionArgs {
            config: None,
            intel: Vec::new(),
        },
        None,
    ) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let mut stored = 0;
    let mut pipeline = Pipeline::builder()
        .policy(Some(Arc::clone(&compiled)))
        .dns(Some(Arc::new(dns)))
        .store(&mut store)
        .detect(Some(&mut engine))
        .build();
    for file in files.iter().filter(|f| !is_side_file(f)) {
        stored += pipeline.ingest_path(file, None, &mut |_| {})?.stored;
    }
    drop(pipeline);
    // The AWS account's CloudTrail, enriched with the same policy, through
    // the same engine.
    let trail = flows_dir.join("cloudtrail.json");
    let audit = cordon_pipeline::source::cloud_audit::ingest_audit(
        &trail,
        Some(&compiled),
        Some(&mut store),
        Some(&mut engine),
    )?;
    if let Some(e) = &audit.error {
        anyhow::bail!("{e}");
    }
    let examined = engine.flows();
    let findings = store.save_findings(engine.finish())?;
    let kb = Kb::embedded()?;
    let incidents = store.relink(&kb)?;
    say(format!(
        "2. ingest     parse → enrich (policy acme-prod: {groups} groups, {rules} rules) → verdict → store: {stored} flows ({:.1}s)",
        started.elapsed().as_secs_f64()
    ))?;
    say(format!(
        "   + cloud    CloudTrail of Acme's AWS account → enrich (vendor identities) → store: {} events",
        audit.stored
    ))?;
    say(format!(
        "3. detect     {} detectors over {examined} flows and {} cloud audit events as they streamed in: {} findings\n",
        engine.state().len(),
        audit.report.events,
        findings.len()
    ))?;
    write_findings(&dir, &findings, &incidents, &kb)?;
    let reports = write_reports(&dir, &store_dir, &incidents, &findings, &kb, &policy_path)?;
    if args.json {
        print_findings(&findings, &incidents, FindingsOutput::Json, &kb)?;
        return Ok(ExitCode::SUCCESS);
    }

    // The kill chain, stage by stage.
    let mut stages: BTreeMap<usize, Vec<&Finding>> = BTreeMap::new();
    for f in &findings {
        stages.entry(kb.stage_order(&f.stage)).or_default().push(f);
    }
    outln!("The kill chain found");
    for (order, list) in &stages {
        let Some(stage) = kb.stages.get(*order) else {
            continue;
        };
        let tactic = stage.tactic.as_deref().unwrap_or("");
        outln!("\n■ {} {tactic}", stage.name);
        let (violations, detections): (Vec<&&Finding>, Vec<&&Finding>) = list
            .iter()
            .partition(|f| f.kind == cordon_core::FindingKind::PolicyViolation);
        for f in &detections {
            tell(f, &kb)?;
        }
        for f in &violations {
            outln!(
                "  [{}] policy-violation — {}",
                f.severity.as_str(),
                f.evidence.summary
            );
        }
    }
    report_truth(&truth, &findings)?;
    outln!("\nIncidents: the findings linked into attack paths");
    for i in &incidents {
        outln!(
            "  {} [{}] {} — {} findings in {} stages",
            i.id,
            i.severity.as_str(),
            i.title,
            i.findings.len(),
            i.stages.len()
        );
    }
    for path in &reports {
        outln!("  report: {}", path.display());
    }
    outln!("\nEverything is in {}:", dir.display());
    outln!(
        "  flows/      the simulated {} logs, dns.log, cloudtrail.json and truth.json (the ground truth)",
        args.format
    );
    outln!("  store/      the flow store with flows, rollups and findings");
    outln!("  findings.jsonl, findings.ocsf.jsonl, findings.stix.json (with the incidents)");
    outln!("  incidents.ocsf.jsonl, report.md, report.html");
    outln!("\nNext:");
    outln!(
        "  cordon detect --store {} --min-severity high",
        store_dir.display()
    );
    outln!("  cordon incidents --store {}", store_dir.display());
    outln!(
        "  cordon vendors --store {} --policy {}",
        store_dir.display(),
        policy_path.display()
    );
    outln!(
        "  cordon flows topology --store {} --output dot",
        store_dir.display()
    );
    outln!(
        "  cordon flows audit --store {} --policy {}",
        store_dir.display(),
        policy_path.display()
    );
    outln!(
        "  cordon serve --store {} --policy {}",
        store_dir.display(),
        policy_path.display()
    );
    if args.serve {
        drop(store);
        outln!("\nServing the demo's store (Ctrl-C to stop):");
        let policy = load_policy(&policy_path, &LoadOptions::default()).ok();
        return crate::serve_cmd::run_on(&store_dir, policy, args.listen, None, None, None, None);
    }
    Ok(ExitCode::SUCCESS)
}

/// One call an audit finding cites, as a line: when, what, by whom, from
/// where, its result.
fn call_text(call: &serde_json::Value) -> String {
    let text = |k: &str| {
        call.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    };
    let time = call
        .get("time_ms")
        .and_then(serde_json::Value::as_i64)
        .map(format_rfc3339)
        .unwrap_or_default();
    let result = match call.get("success").and_then(serde_json::Value::as_bool) {
        Some(false) => "refused",
        _ => "ok",
    };
    let mut parts = vec![time, text("action").to_string(), result.to_string()];
    for (label, key) in [("by", "principal"), ("from", "source"), ("id", "event_id")] {
        if !text(key).is_empty() {
            parts.push(format!("{label} {}", text(key)));
        }
    }
    parts.retain(|p| !p.is_empty());
    if parts.is_empty() {
        call.to_string()
    } else {
        parts.join(" ")
    }
}

/// Files the simulation writes beside the flows.
fn is_side_file(p: &Path) -> bool {
    matches!(
        p.file_name().and_then(|n| n.to_str()),
        Some("dns.log" | "truth.json" | "cloudtrail.json")
    )
}

/// The report of the gravest incident, as report.md and report.html.
fn write_reports(
    dir: &Path,
    store: &Path,
    incidents: &[Incident],
    findings: &[Finding],
    kb: &Kb,
    policy_path: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let Some(incident) = incidents
        .iter()
        .max_by_key(|i| (i.severity, i.findings.len()))
    else {
        return Ok(Vec::new());
    };
    let policy = load_policy(policy_path, &LoadOptions::default()).ok();
    let own: Vec<Finding> = findings
        .iter()
        .filter(|f| incident.holds(&f.id))
        .cloned()
        .collect();
    let store = store.display().to_string();
    let built = report::build(
        incident,
        &own,
        kb,
        policy.as_ref(),
        Some(&store),
        cordon_flow::time::now_ms(),
    );
    let md = dir.join("report.md");
    let html = dir.join("report.html");
    std::fs::write(&md, report::markdown(&built))?;
    std::fs::write(&html, report::html(&built))?;
    Ok(vec![md, html])
}

fn write_findings(
    dir: &Path,
    findings: &[Finding],
    incidents: &[Incident],
    kb: &Kb,
) -> anyhow::Result<()> {
    let mut jsonl = String::new();
    let mut ocsf = String::new();
    for f in findings {
        jsonl.push_str(&serde_json::to_string(f)?);
        jsonl.push('\n');
        ocsf.push_str(&cordon_detect::ocsf::detection_finding(f, kb).to_string());
        ocsf.push('\n');
    }
    std::fs::write(dir.join("findings.jsonl"), jsonl)?;
    std::fs::write(dir.join("findings.ocsf.jsonl"), ocsf)?;
    let now = cordon_flow::time::now_ms();
    let mut bundle = cordon_detect::stix::bundle(findings, kb, now);
    cordon_incident::export::add_to_bundle(&mut bundle, incidents, kb, now);
    let mut incidents_ocsf = String::new();
    for i in incidents {
        let own: Vec<Finding> = findings
            .iter()
            .filter(|f| i.holds(&f.id))
            .cloned()
            .collect();
        incidents_ocsf
            .push_str(&cordon_incident::export::incident_finding(i, &own, kb).to_string());
        incidents_ocsf.push('\n');
    }
    std::fs::write(dir.join("incidents.ocsf.jsonl"), incidents_ocsf)?;
    std::fs::write(
        dir.join("findings.stix.json"),
        serde_json::to_string_pretty(&bundle)?,
    )?;
    Ok(())
}

fn report_truth(truth: &Truth, findings: &[Finding]) -> anyhow::Result<()> {
    outln!("\nAgainst the simulation's ground truth");
    let mut found = 0;
    for s in &truth.steps {
        let hits: Vec<&str> = findings
            .iter()
            .filter(|f| {
                s.kinds.contains(&f.kind)
                    && f.kind != cordon_core::FindingKind::PolicyViolation
                    && matches_step(f, s)
            })
            .map(|f| f.kind.as_str())
            .collect();
        let mut kinds = hits.clone();
        kinds.sort_unstable();
        kinds.dedup();
        if !hits.is_empty() {
            found += 1;
        }
        outln!(
            "  {:<18} {:<4} {}",
            s.id,
            if hits.is_empty() { "MISS" } else { "ok" },
            if kinds.is_empty() {
                s.description.clone()
            } else {
                kinds.join(", ")
            }
        );
    }
    outln!("  {found} of {} attack steps detected", truth.steps.len());
    Ok(())
}
