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
