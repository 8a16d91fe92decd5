//! `cordon agent` and `cordon lab`.

use std::cell::Cell;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use cordon_agent::hosts::Hosts;
use cordon_agent::netlink::{self, Change};
use cordon_agent::{flows, lab as lab_mod, ruleset_resolving};
use cordon_policy::CompiledPolicy;

use crate::args::{AgentArgs, LabAction, LabArgs};
use crate::policy_cmd::load;
use crate::{EXIT_CONFIG, EXIT_FAILURE};

/// A compiled ruleset with the policy and addresses it was made for.
struct Compiled {
    ruleset: cordon_agent::Ruleset,
    policy: Arc<CompiledPolicy>,
    ips: Vec<IpAddr>,
    /// When the first DNS answer used runs out (`--dns`).
    expires: Option<Instant>,
}

/// A DNS client for `--dns`: answers come with their TTL.
struct Dns {
    runtime: tokio::runtime::Runtime,
    resolver: cordon_gateway::resolve::Resolver,
}

impl Dns {
    fn new(server: std::net::SocketAddr) -> anyhow::Result<Dns> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the DNS client")?;
        let resolver = {
            let _inside = runtime.enter();
            cordon_gateway::resolve::Resolver::new(
                Hosts::default(),
                Some(server),
                Duration::from_secs(5),
            )
            .map_err(|e| anyhow::anyhow!(e))?
        };
        Ok(Dns { runtime, resolver })
    }

    /// The addresses of `name` and until when they hold.
    fn lookup(&self, name: &str) -> (Vec<IpAddr>, Option<Instant>) {
        let Ok(host) = cordon_policy::Hostname::parse(name) else {
            return (Vec::new(), None);
        };
        match self.runtime.block_on(self.resolver.lookup_until(&host)) {
            Ok(answer) => answer,
            // No answer: ask again soon rather than at the next minute.
            Err(_) => (Vec::new(), Some(Instant::now() + DNS_RETRY)),
        }
    }
}

/// How soon a name that did not resolve is asked again.
const DNS_RETRY: Duration = Duration::from_secs(10);

/// Compile the ruleset for `args` from the policy file as it is now.
fn compile(args: &AgentArgs, path: &Path, dns: Option<&Dns>) -> Result<Compiled, String> {
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
    // The hosts file first; then the DNS server, whose answers say how
    // long they hold; the system resolver only when neither is given.
    let expires: Cell<Option<Instant>> = Cell::new(None);
    let resolve = |name: &str| {
        if let Some(h) = &hosts {
            let found = h.lookup(name);
            if !found.is_empty() || dns.is_none() {
                return found;
            }
        }
        match dns {
            Some(d) => {
                let (found, until) = d.lookup(name);
                if let Some(u) = until {
                    expires.set(Some(expires.get().map_or(u, |e| e.min(u))));
                }
                found
            }
            None => cordon_agent::hosts::system(name),
        }
    };
    let ruleset =
        ruleset_resolving(&compiled, &ips, args.audit, &resolve).map_err(|e| e.to_string())?;
    Ok(Compiled {
        ruleset,
        policy: Arc::new(compiled),
        ips,
        expires: expires.get(),
    })
}

/// After a ruleset is in force: cut this host's connections that the policy
/// now denies (established connections would otherwise outlive it).
fn cut(args: &AgentArgs, c: &Compiled) {
    if args.audit {
        return;
    }
    match flows::cut_denied(&c.policy, &c.ips) {
        Ok(0) => {}
        Ok(n) => println!("cut {n} connections the policy no longer allows"),
        Err(e) => {
            eprintln!("warning: {e}; established connections the policy now denies stay open")
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `cordon agent`
pub fn agent(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    if args.cleanup {
        return match netlink::cleanup() {
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
    // Taken before the policy is read: a change made while the first
    // ruleset is loading is then seen by the first check.
    let mut seen = modified(path);
    let dns = match args.dns {
        Some(server) => Some(Dns::new(server)?),
        None => None,
    };
    let compile_started = std::time::Instant::now();
    let first = match compile(args, path, dns.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}; nothing was changed");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    for w in &first.ruleset.warnings {
        eprintln!("warning: {w}");
    }
    if args.print {
        print!("{}", first.ruleset.script());
        return Ok(ExitCode::SUCCESS);
    }
    // Flows are collected from before the first ruleset is in force.
    let current: flows::Current = Arc::new(std::sync::RwLock::new(first.policy.clone()));
    let _collector = match (&args.flows, args.once) {
        (Some(file), false) => {
            let log = flows::FlowLog::open(file)
                .with_context(|| format!("cannot open `{}`", file.display()))?;
            match flows::Collector::start(log, current.clone(), first.ips.clone(), args.audit) {
                Ok(c) => {
                    println!("flows: recording to {}", file.display());
                    Some(c)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(EXIT_FAILURE));
                }
            }
        }
        _ => None,
    };
    let compiled_in = compile_started.elapsed();
    let started = std::time::Instant::now();
    let mut applied = match netlink::apply(&first.ruleset.table, None) {
        Ok((applied, _)) => applied,
        Err(e) => {
            eprintln!("error: {e}; the previous ruleset (if any) is still in force");
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    };
    println!(
        "applied: {} rules for this host in table inet {} (compile {} ms, apply {} ms){}",
        first.ruleset.rules,
        cordon_agent::ruleset::TABLE,
        compiled_in.as_millis(),
        started.elapsed().as_millis(),
        if args.audit {
            " (audit: would-deny is logged, nothing dropped)"
        } else {
            ""
        }
    );
    cut(args, &first);
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
    let mut resolved_at = std::time::Instant::now();
    let mut expires = first.expires;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(500));
        let now = modified(path);
        // Names are resolved again when their DNS answers run out (at most
        // once a second), else every minute; the ruleset changes only when
        // the addresses do.
        let refresh = resolved_at.elapsed() >= Duration::from_secs(60)
            || (expires.is_some_and(|e| Instant::now() >= e)
                && resolved_at.elapsed() >= Duration::from_secs(1));
        if now == seen && !refresh && !reload.swap(false, Ordering::Relaxed) {
            continue;
        }
        seen = now;
        resolved_at = std::time::Instant::now();
        let compile_started = std::time::Instant::now();
        let compiled = compile(args, path, dns.as_ref());
        if let Ok(c) = &compiled {
            expires = c.expires;
        }
        let compiled_in = compile_started.elapsed().as_millis();
        let started = std::time::Instant::now();
        match compiled {
            Ok(c) if c.ruleset.table == applied.table => {}
            Ok(c) => match netlink::apply(&c.ruleset.table, Some(&applied)) {
                Ok((now, change)) => {
                    let took = started.elapsed().as_millis();
                    match change {
                        Change::Updated { added, removed } => println!(
                            "reloaded: {} rules (compile {compiled_in} ms, apply {took} ms); set elements changed in place: {added} bounds added, {removed} removed",
                            c.ruleset.rules,
                        ),
                        _ => println!(
                            "reloaded: {} rules (compile {compiled_in} ms, apply {took} ms); table replaced",
                            c.ruleset.rules,
                        ),
                    }
                    cut(args, &c);
                    if let Ok(mut p) = current.write() {
                        *p = c.policy.clone();
                    }
                    applied = now;
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
                for ((name, addr), addr6) in lab_mod::HOSTS.into_iter().zip(lab_mod::HOSTS_V6) {
                    println!("{:<26} {addr:<15} {addr6}", lab_mod::namespace(name));
                }
                if let Some(policy) = &args.policy
                    && let Err(e) = start_agents(policy, args.hosts.as_deref())
                {
                    stop_agents();
                    lab_mod::down();
                    eprintln!("error: {e} (everything created was removed)");
                    return Ok(ExitCode::from(EXIT_FAILURE));
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {e} (everything created was removed)");
                Ok(ExitCode::from(EXIT_FAILURE))
            }
        },
        LabAction::Down => {
            stop_agents();
            lab_mod::down();
            println!("lab removed");
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Status => {
            for (ns, there) in lab_mod::status() {
                let name = ns.trim_start_matches("cordon-");
                let agent = if agent_running(name) {
                    "  agent running"
                } else {
                    ""
                };
                println!("{ns:<26} {}{agent}", if there { "up" } else { "absent" });
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Where the lab keeps its agents' pid files, logs and flows.
const LAB_RUN: &str = "/run/cordon-lab";

fn pid_file(name: &str) -> std::path::PathBuf {
    Path::new(LAB_RUN).join(format!("{name}.pid"))
}

fn agent_running(name: &str) -> bool {
    std::fs::read_to_string(pid_file(name))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Start `cordon agent` in every lab namespace that is a workload of the
/// policy's inventory.
fn start_agents(policy: &Path, hosts: Option<&Path>) -> anyhow::Result<()> {
    let loaded = load(
        policy,
        &crate::args::InventoryArgs {
            inventory: Vec::new(),
        },
    )
    .map_err(|_| anyhow::anyhow!("`{}` is not a valid policy", policy.display()))?;
    std::fs::create_dir_all(LAB_RUN).with_context(|| format!("cannot create {LAB_RUN}"))?;
    let exe = std::env::current_exe().context("cannot find the cordon executable")?;
    let policy = std::fs::canonicalize(policy)?;
    let hosts = hosts.map(std::fs::canonicalize).transpose()?;
    for (name, _) in lab_mod::HOSTS {
        if loaded.workload_id(name).is_none() {
            continue;
        }
        let run = Path::new(LAB_RUN);
        let log = std::fs::File::create(run.join(format!("{name}.log")))?;
        // A new lab starts with no flows.
        let _ = std::fs::remove_file(run.join(format!("{name}.flows.jsonl")));
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &lab_mod::namespace(name)])
            .arg(&exe)
            .args(["agent", "--policy"])
            .arg(&policy)
            .args(["--workload", name, "--flows"])
            .arg(run.join(format!("{name}.flows.jsonl")));
        if let Some(h) = &hosts {
            cmd.arg("--hosts").arg(h);
        }
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start the agent in {name}"))?;
        std::fs::write(pid_file(name), child.id().to_string())?;
        println!(
            "agent started in {} (pid {})",
            lab_mod::namespace(name),
            child.id()
        );
    }
    Ok(())
}

/// Stop the lab's agents (SIGTERM, then SIGKILL after two seconds).
fn stop_agents() {
    for (name, _) in lab_mod::HOSTS {
        let Some(pid) = std::fs::read_to_string(pid_file(name))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let pid = pid.to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        for _ in 0..20 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Only one that ignored TERM is still there.
        if Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status();
        }
        let _ = std::fs::remove_file(pid_file(name));
    }
}
