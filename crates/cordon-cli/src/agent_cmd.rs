//! `cordon agent`: the host agent's arguments, and what it says as it runs.
//! The run loop itself is the agent crate's ([`cordon_agent::Agent`]).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use cordon_agent::netlink::{self, Change};
use cordon_agent::{Agent, AgentConfig, AgentEvent};

use crate::args::AgentArgs;
use crate::common::{load_options, usage};
use crate::{EXIT_CONFIG, EXIT_FAILURE, out, outln};

/// `cordon agent`
pub fn run(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    if args.cleanup {
        return match netlink::cleanup() {
            Ok(true) => {
                outln!("removed table inet {}", cordon_agent::ruleset::TABLE);
                Ok(ExitCode::SUCCESS)
            }
            Ok(false) => {
                outln!("nothing to remove");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(ExitCode::from(EXIT_FAILURE))
            }
        };
    }
    let (bundle, pull) = match crate::bundle_cmd::feed(&args.feed) {
        Ok(f) => f.unzip(),
        Err(e) => return usage(e),
    };
    let path = match (args.policy.as_deref(), &bundle) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(_)) => std::path::PathBuf::new(),
        (None, None) => return usage("--policy, --policy-url or --policy-bundle is required"),
    };
    let mut agent = Agent::new(AgentConfig {
        policy: path,
        bundle,
        pull: pull.flatten(),
        load: load_options(&args.inventory),
        workloads: args.workload.clone(),
        self_ips: args.self_ip.clone(),
        hosts: args.hosts.clone(),
        dns: args.dns,
        audit: args.audit,
        flows: args.flows.clone().filter(|_| !args.once),
        responses: args.responses.clone(),
    })?;
    if let Err(e) = agent.pull() {
        eprintln!("warning: {e}; the cached bundle (if any) is enforced until the server answers");
    }
    if let Err(e) = agent.load_responses() {
        eprintln!("error: {e}; nothing was changed");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let first = match agent.compile() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}; nothing was changed");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    if args.print {
        out!("{}", first.ruleset.script());
        return Ok(ExitCode::SUCCESS);
    }
    // What the agent says goes to standard output as it happens; a write
    // error there (a closed pipe) must not stop enforcement.
    let mut say = |event: AgentEvent<'_>| {
        let _ = tell(&event);
    };
    if let Err(e) = agent.start(first, &mut say) {
        eprintln!("error: {e}; the previous ruleset (if any) is still in force");
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    if args.once {
        return Ok(ExitCode::SUCCESS);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, agent.reload_flag())
        .context("cannot install signal handlers")?;
    if let Some(flag) = agent.responses_flag() {
        signal_hook::flag::register(signal_hook::consts::SIGHUP, flag)
            .context("cannot install signal handlers")?;
    }
    agent.run(&stop, &mut say);
    outln!("stopped; the ruleset stays in force (cordon agent --cleanup removes it)");
    Ok(ExitCode::SUCCESS)
}

/// One line for what the agent did.
fn tell(event: &AgentEvent<'_>) -> anyhow::Result<()> {
    match event {
        AgentEvent::RecordingFlows(path) => outln!("flows: recording to {}", path.display()),
        AgentEvent::Applied {
            rules,
            compile,
            apply,
            audit,
        } => outln!(
            "applied: {rules} rules for this host in table inet {} (compile {} ms, apply {} ms){}",
            cordon_agent::ruleset::TABLE,
            compile.as_millis(),
            apply.as_millis(),
            if *audit {
                " (audit: would-deny is logged, nothing dropped)"
            } else {
                ""
            }
        ),
        AgentEvent::Reloaded {
            rules,
            compile,
            apply,
            change,
        } => match change {
            Change::Updated { added, removed } => outln!(
                "reloaded: {rules} rules (compile {} ms, apply {} ms); set elements changed in place: {added} bounds added, {removed} removed",
                compile.as_millis(),
                apply.as_millis()
            ),
            _ => outln!(
                "reloaded: {rules} rules (compile {} ms, apply {} ms); table replaced",
                compile.as_millis(),
                apply.as_millis()
            ),
        },
        AgentEvent::ReloadFailed(e) => eprintln!("error: {e}; keeping the last good ruleset"),
        AgentEvent::Cut(n) => {
            outln!("cut {n} connections the policy or a response no longer allows")
        }
        AgentEvent::CutFailed(e) => {
            eprintln!("warning: {e}; established connections the policy now denies stay open")
        }
        AgentEvent::ResponseWarning(w) => eprintln!("warning: {w}"),
    }
    Ok(())
}
