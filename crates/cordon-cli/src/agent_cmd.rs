//! `cordon agent` and `cordon lab`.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use cordon_agent::hosts::Hosts;
use cordon_agent::{lab as lab_mod, nft, ruleset_resolving};
use cordon_policy::CompiledPolicy;

use crate::args::{AgentArgs, LabAction, LabArgs};
use crate::policy_cmd::load;
use crate::{EXIT_CONFIG, EXIT_FAILURE};

/// Compile the ruleset for `args` from the policy file as it is now.
fn compile(args: &AgentArgs, path: &Path) -> Result<cordon_agent::Ruleset, String> {
    let policy = load(path, &args.inventory)
        .map_err(|_| format!("`{}` is not a valid policy", path.display()))?;
    let mut ips: Vec<IpAddr> = args.self_ip.clone();
    for name in &args.workload {
        let w = policy
            .workloads
            .iter()
            .find(|w| &w.name == name)
            .ok_or_else(|| format!("no workload named `{name}` in the inventory"))?;
        ips.extend(w.ips.iter().copied());
    }
    let compiled = CompiledPolicy::new(Arc::new(policy));
    let hosts = match &args.hosts {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
            Some(Hosts::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?)
        }
    };
    let resolve = |name: &str| match &hosts {
        Some(h) => h.lookup(name),
        None => cordon_agent::hosts::system(name),
    };
    ruleset_resolving(&compiled, &ips, args.audit, &resolve).map_err(|e| e.to_string())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `cordon agent`
pub fn agent(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    if args.cleanup {
        return match nft::cleanup() {
            Ok(true) => {
                println!("removed table inet {}", cordon_agent::ruleset::TABLE);
                Ok(ExitCode::SUCCESS)
            }
            Ok(false) => {
                println!("nothing to remove");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(ExitCode::from(EXIT_FAILURE))
            }
        };
    }
    let Some(path) = args.policy.as_deref() else {
        return crate::flows_cmd::usage("--policy is required");
    };
    let first = match compile(args, path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}; nothing was changed");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    for w in &first.warnings {
        eprintln!("warning: {w}");
    }
    if args.print {
        print!("{}", first.script);
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(e) = nft::apply(&first.script) {
        eprintln!("error: {e}; the previous ruleset (if any) is still in force");
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    println!(
        "applied: {} rules for this host in table inet {}{}",
        first.rules,
        cordon_agent::ruleset::TABLE,
        if args.audit {
            " (audit: would-deny is logged, nothing dropped)"
        } else {
            ""
        }
    );
    if args.once {
        return Ok(ExitCode::SUCCESS);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .context("cannot install signal handlers")?;
    let mut seen = modified(path);
    let mut applied = first.script;
    let mut resolved_at = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(500));
        let now = modified(path);
        // Names are resolved again every minute; the ruleset is replaced
        // only when that changes it.
        let refresh = resolved_at.elapsed() >= Duration::from_secs(60);
        if now == seen && !refresh && !reload.swap(false, Ordering::Relaxed) {
            continue;
        }
        seen = now;
        resolved_at = std::time::Instant::now();
        match compile(args, path) {
            Ok(r) if r.script == applied => {}
            Ok(r) => match nft::apply(&r.script) {
                Ok(_) => {
                    println!("reloaded: {} rules", r.rules);
                    applied = r.script;
                }
                Err(e) => eprintln!("error: {e}; keeping the last good ruleset"),
            },
            Err(e) => eprintln!("error: {e}; keeping the last good ruleset"),
        }
    }
    println!("stopped; the ruleset stays in force (cordon agent --cleanup removes it)");
    Ok(ExitCode::SUCCESS)
}

/// `cordon lab`
pub fn lab(args: &LabArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        LabAction::Up => match lab_mod::up() {
            Ok(()) => {
                for (name, addr) in lab_mod::HOSTS {
                    println!("{:<26} {addr}", lab_mod::namespace(name));
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {e} (everything created was removed)");
                Ok(ExitCode::from(EXIT_FAILURE))
            }
        },
        LabAction::Down => {
            lab_mod::down();
            println!("lab removed");
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Status => {
            for (ns, there) in lab_mod::status() {
                println!("{ns:<26} {}", if there { "up" } else { "absent" });
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
