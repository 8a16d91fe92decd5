//! `cordon demo`: the example policy, checked, linted and walked along the
//! path of a third-party breach (the email-provider incident Cordon is built
//! to stop), one decision per attack step.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cordon_policy::lint::{LintLevel, lint};
use cordon_policy::{CompiledPolicy, Endpoint, LoadOptions, Request, explain, load_policy};

use crate::EXIT_CONFIG;
use crate::args::DemoArgs;

const POLICY: &str = include_str!("../../../examples/acme-prod.yaml");
const INVENTORY: &str = include_str!("../../../examples/acme-inventory.yaml");

/// One step of the attack: what the attacker tries, as a request.
struct Step {
    stage: &'static str,
    technique: &'static str,
    what: &'static str,
    from: &'static str,
    to: &'static str,
    port: &'static str,
}

const STEPS: &[Step] = &[
    Step {
        stage: "initial access",
        technique: "T1199 Trusted Relationship",
        what: "the compromised email provider calls Acme's webhook endpoint",
        from: "198.51.100.9",
        to: "notifier-1",
        port: "tcp/443",
    },
    Step {
        stage: "initial access",
        technique: "T1199 Trusted Relationship",
        what: "the provider's network reaches for the user database directly",
        from: "198.51.100.9",
        to: "user-db-1",
        port: "tcp/5432",
    },
    Step {
        stage: "lateral movement",
        technique: "T1021.004 SSH",
        what: "from the notifier, SSH to the user database host",
        from: "notifier-1",
        to: "user-db-1",
        port: "tcp/22",
    },
    Step {
        stage: "lateral movement",
        technique: "T1021.002 SMB/Windows Admin Shares",
        what: "from the notifier, SMB to an API server",
        from: "notifier-1",
        to: "api-1",
        port: "tcp/445",
    },
    Step {
        stage: "collection",
        technique: "T1213 Data from Information Repositories",
        what: "the notifier reads user records, as its job requires",
        from: "notifier-1",
        to: "user-db-1",
        port: "tcp/5432",
    },
    Step {
        stage: "command and control",
        technique: "T1071.001 Web Protocols",
        what: "the notifier beacons to the attacker's server",
        from: "notifier-1",
        to: "c2.attacker.example",
        port: "tcp/443",
    },
    Step {
        stage: "exfiltration",
        technique: "T1537 Transfer Data to Cloud Account",
        what: "user data is uploaded to an attacker's storage bucket",
        from: "notifier-1",
        to: "exfil-7f3a.s3.amazonaws.com",
        port: "tcp/443",
    },
    Step {
        stage: "exfiltration",
        technique: "T1567 Exfiltration Over Web Service",
        what: "user data leaves through the email provider's own API",
        from: "notifier-1",
        to: "api.mailer.example",
        port: "tcp/443",
    },
];

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
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
    println!("Cordon demo: the email-provider breach against Acme's zero-trust policy\n");
    println!(
        "policy `{}`: {} groups, {} rules, {} workloads, mode {}, default {} (valid)",
        policy.name,
        policy.groups.iter().filter(|g| !g.builtin).count(),
        policy.rules.len(),
        policy.workloads.len(),
        policy.mode,
        policy.default
    );
    let findings = lint(&policy);
    let warnings = findings
        .iter()
        .filter(|f| f.level == LintLevel::Warning)
        .count();
    println!(
        "lint: {warnings} warnings, {} info",
        findings.len() - warnings
    );
    for f in findings.iter().filter(|f| f.level == LintLevel::Warning) {
        println!("  [{}] {}", f.code, f.message);
    }
    println!();

    let compiled = CompiledPolicy::new(Arc::new(policy));
    let mut stopped = 0;
    for (i, step) in STEPS.iter().enumerate() {
        let policy = compiled.policy();
        let request = Request {
            src: Endpoint::parse(policy, step.from).map_err(anyhow::Error::msg)?,
            dst: Endpoint::parse(policy, step.to).map_err(anyhow::Error::msg)?,
            protocol: Request::parse_port(step.port)
                .map_err(anyhow::Error::msg)?
                .0,
            port: Request::parse_port(step.port)
                .map_err(anyhow::Error::msg)?
                .1,
        };
        let decision = compiled.evaluate(&request);
        let e = explain(&compiled, &request, &decision);
        if !decision.verdict.passes() {
            stopped += 1;
        }
        println!(
            "{}. {} — {} ({})",
            i + 1,
            step.stage,
            step.what,
            step.technique
        );
        println!(
            "   {} → {} {}: {}",
            step.from,
            step.to,
            step.port,
            e.verdict.to_uppercase()
        );
        println!("   {}", e.reason);
        if let Some(rule) = e
            .decided_by
            .as_deref()
            .and_then(|n| policy.rules.iter().find(|r| r.name == n))
            && let Some(limit) = &rule.limit
        {
            println!(
                "   metered: at most {} per {} from `{}` to this vendor; more is refused",
                limit.bytes_out,
                limit.per,
                rule.from
                    .iter()
                    .map(|g| policy.group_name(*g))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !e.dst.vendors.is_empty() {
            println!("   third party: {}", e.dst.vendors.join(", "));
        }
        println!();
    }
    println!(
        "{stopped} of {} attack steps are stopped by the policy; the rest ride allowed, trusted paths,\n\
         which is why Cordon also meters vendor egress and watches flows for what the policy cannot forbid.",
        STEPS.len()
    );
    println!(
        "\nexample policy and inventory written to {}",
        dir.display()
    );
    println!(
        "try: cordon policy explain {} --from web-1 --to user-db-1 --port tcp/5432",
        policy_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
