//! The lab: a network namespace per workload of the example company, all
//! on one bridge, each with its inventory address, so policies can be
//! proved with real packets. Everything it creates carries the `cordon-`
//! prefix and is removed by [`down`], also after a failed [`up`].

use std::net::IpAddr;
use std::process::Command;

/// The bridge joining the namespaces.
pub const BRIDGE: &str = "cordon-br0";

/// The lab's hosts: namespace suffix and address.
pub const HOSTS: [(&str, &str); 7] = [
    ("web-1", "10.0.1.10"),
    ("api-1", "10.0.3.10"),
    ("user-db-1", "10.0.2.10"),
    ("notifier-1", "10.0.4.10"),
    ("bastion-1", "10.0.9.10"),
    ("email-vendor", "198.51.100.25"),
    ("attacker", "203.0.113.66"),
];

/// Each host's IPv6 address, in the order of [`HOSTS`]: the example
/// inventory's where it has one (web-1), else one in the same spirit
/// (`fd00:N::10` inside, documentation addresses outside).
pub const HOSTS_V6: [&str; 7] = [
    "fd00:1::10",
    "fd00:3::10",
    "fd00:2::10",
    "fd00:4::10",
    "fd00:9::10",
    "2001:db8:5100::25",
    "2001:db8:7100::66",
];

/// Why the lab could not be built.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed: {message}")]
pub struct LabError {
    /// The command.
    pub command: String,
    /// What it said.
    pub message: String,
}

fn ip(args: &[&str]) -> Result<(), LabError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| LabError {
            command: format!("ip {}", args.join(" ")),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(LabError {
            command: format!("ip {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The namespace of lab host `name`.
pub fn namespace(name: &str) -> String {
    format!("cordon-{name}")
}

/// The address of lab host `name`.
pub fn address(name: &str) -> Option<IpAddr> {
    HOSTS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, a)| a.parse().ok())
}

/// Build the lab (after removing any leftover of an earlier one).
///
/// # Errors
/// A command failed; what was created is removed again.
pub fn up() -> Result<(), LabError> {
    down();
    let result = build();
    if result.is_err() {
        down();
    }
    result
}

fn build() -> Result<(), LabError> {
    ip(&["link", "add", BRIDGE, "type", "bridge"])?;
    ip(&["link", "set", BRIDGE, "up"])?;
    for ((name, addr), addr6) in HOSTS.into_iter().zip(HOSTS_V6) {
        let ns = namespace(name);
        let veth = format!("cv-{name}");
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        ip(&["link", "set", &veth, "master", BRIDGE, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/32"),
            "dev",
            "eth0",
        ])?;
        // No duplicate address detection: the address is usable at once.
        ip(&[
            "-n",
            &ns,
            "-6",
            "addr",
            "add",
            &format!("{addr6}/128"),
            "dev",
            "eth0",
            "nodad",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        // Every address is on the link: neighbours answer ARP and neighbour
        // solicitations directly.
        ip(&["-n", &ns, "route", "add", "default", "dev", "eth0"])?;
        ip(&["-n", &ns, "-6", "route", "add", "default", "dev", "eth0"])?;
    }
    Ok(())
}

/// Remove everything the lab creates; missing pieces are fine.
pub fn down() {
    for (name, _) in HOSTS {
        let _ = ip(&["netns", "del", &namespace(name)]);
        let _ = ip(&["link", "del", &format!("cv-{name}")]);
    }
    let _ = ip(&["link", "del", BRIDGE]);
}

/// Which lab namespaces exist.
pub fn status() -> Vec<(String, bool)> {
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    HOSTS
        .iter()
        .map(|(name, _)| {
            let ns = namespace(name);
            let there = list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns.as_str()));
            (ns, there)
        })
        .collect()
}

/// Where the lab keeps its agents' pid files, logs and flows.
pub const LAB_RUN: &str = "/run/cordon-lab";

fn pid_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(LAB_RUN).join(format!("{name}.pid"))
}

fn running_pid(name: &str) -> Option<u32> {
    std::fs::read_to_string(pid_file(name))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
}

/// Whether the agent of lab host `name` is running.
pub fn agent_running(name: &str) -> bool {
    running_pid(name).is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Start `exe agent` (the `cordon` binary) in every lab namespace that is a
/// workload of `policy`'s inventory, each writing its flows to
/// `LAB_RUN/NAME.flows.jsonl` and its output to `LAB_RUN/NAME.log`.
/// Returns the namespaces and pids started.
///
/// # Errors
/// An invalid policy, or an agent that cannot be started.
pub fn start_agents(
    exe: &std::path::Path,
    policy: &std::path::Path,
    hosts: Option<&std::path::Path>,
) -> Result<Vec<(String, u32)>, LabError> {
    let fail = |command: &str, e: &dyn std::fmt::Display| LabError {
        command: command.to_string(),
        message: e.to_string(),
    };
    let loaded = cordon_policy::load_policy(policy, &cordon_policy::LoadOptions::default())
        .map_err(|e| fail(&format!("load {}", policy.display()), &e))?;
    std::fs::create_dir_all(LAB_RUN).map_err(|e| fail(&format!("mkdir {LAB_RUN}"), &e))?;
    let policy = std::fs::canonicalize(policy)
        .map_err(|e| fail(&format!("open {}", policy.display()), &e))?;
    let hosts = hosts
        .map(std::fs::canonicalize)
        .transpose()
        .map_err(|e| fail("open the hosts file", &e))?;
    let run = std::path::Path::new(LAB_RUN);
    let mut started = Vec::new();
    for (name, _) in HOSTS {
        if loaded.workload_id(name).is_none() {
            continue;
        }
        let what = format!("start the agent in {}", namespace(name));
        let log =
            std::fs::File::create(run.join(format!("{name}.log"))).map_err(|e| fail(&what, &e))?;
        // A new lab starts with no flows.
        let _ = std::fs::remove_file(run.join(format!("{name}.flows.jsonl")));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &namespace(name)])
            .arg(exe)
            .args(["agent", "--policy"])
            .arg(&policy)
            .args(["--workload", name, "--flows"])
            .arg(run.join(format!("{name}.flows.jsonl")));
        if let Some(h) = &hosts {
            cmd.arg("--hosts").arg(h);
        }
        let out = log.try_clone().map_err(|e| fail(&what, &e))?;
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()
            .map_err(|e| fail(&what, &e))?;
        std::fs::write(pid_file(name), child.id().to_string()).map_err(|e| fail(&what, &e))?;
        started.push((namespace(name), child.id()));
    }
    Ok(started)
}

/// Stop the lab's agents (SIGTERM, then SIGKILL after two seconds).
pub fn stop_agents() {
    for (name, _) in HOSTS {
        let Some(pid) = running_pid(name) else {
            continue;
        };
        let pid = pid.to_string();
        let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..20 {
            if !alive() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // Only one that ignored TERM is still there.
        if alive() {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        let _ = std::fs::remove_file(pid_file(name));
    }
}
