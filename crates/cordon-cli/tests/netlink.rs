//! The agent loads its table over netlink. These tests load the same
//! policy once through the agent and once as the script `nft -f` reads, in
//! two fresh network namespaces, and compare what `nft list` shows; then
//! check updates in place, a table that is not the agent's, and a caller
//! without CAP_NET_ADMIN. Needs root and `nft` (CI runs as root).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{lines, temp_dir, wait_for};

/// A network namespace of this test process, removed when dropped.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let uid = Command::new("id").arg("-u").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "the netlink tests need root (network namespaces and nftables)"
        );
        let name = format!("cordon-nl{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        c
    }

    fn cordon(&self, args: &[&str]) -> Output {
        self.cmd(env!("CARGO_BIN_EXE_cordon"))
            .args(args)
            .output()
            .unwrap()
    }

    fn nft(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .cmd("nft")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nft: apt-get install nftables");
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    fn listing(&self) -> String {
        let out = self.nft(&["list", "table", "inet", "cordon"], None);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Load `policy` for `self_ip` through the agent in `a` and through
/// `nft -f` in `b`; both listings must be the same.
fn same_both_ways(a: &Netns, b: &Netns, policy: &Path, hosts: &Path, self_ip: &str) -> String {
    let args = [
        "agent",
        "--policy",
        policy.to_str().unwrap(),
        "--hosts",
        hosts.to_str().unwrap(),
        "--self-ip",
        self_ip,
    ];
    let script = common::cordon(&[&args[..], &["--print"]].concat());
    assert!(script.status.success(), "{}", text(&script));
    let loaded = b.nft(&["-f", "-"], Some(&String::from_utf8_lossy(&script.stdout)));
    assert!(loaded.status.success(), "nft: {}", text(&loaded));
    let agent = a.cordon(&[&args[..], &["--once"]].concat());
    assert!(agent.status.success(), "{}", text(&agent));
    let (ours, theirs) = (a.listing(), b.listing());
    assert!(!ours.is_empty());
    if ours != theirs {
        let diff: Vec<String> = ours
            .lines()
            .zip(theirs.lines())
            .filter(|(x, y)| x != y)
            .take(5)
            .map(|(x, y)| format!("agent: {x}\n  nft: {y}"))
            .collect();
        panic!(
            "the tables differ for {self_ip} ({} vs {} lines):\n{}",
            ours.lines().count(),
            theirs.lines().count(),
            diff.join("\n")
        );
    }
    ours
}

/// A policy with every kind of match the agent emits, and `scattered`
/// CIDRs that cannot merge.
fn wide_policy(scattered: usize, shift: usize) -> String {
    let mut nets = Vec::new();
    for i in 0..scattered {
        let n = (i + shift) * 2;
        nets.push(format!("11.{}.{}.0/24", n / 256 % 256, n % 256));
    }
    for i in 0..50 {
        nets.push(format!("\"2001:db8:{:x}::/48\"", i * 2));
    }
    let mut p = String::from(
        "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: wide}\nspec:\n  default: deny\n  inventory:\n    - {name: host, ips: [10.9.0.1, \"fd09::1\"], labels: {app: host}}\n  groups:\n    host: {labels: {app: host}}\n",
    );
    let _ = writeln!(p, "    many: {{cidrs: [{}]}}", nets.join(", "));
    p.push_str(
        "    dual: {cidrs: [192.0.2.0/25, \"2001:db8:ffff::/48\"]}\n    names: {fqdns: [svc.example, \"*.wild.example\"]}\n  rules:\n",
    );
    p.push_str("    - {name: in-many, from: [many], to: [host], ports: [tcp/1000-2000, tcp/1500, udp/53], action: allow}\n");
    p.push_str("    - {name: mixed, from: [dual], to: [host], ports: [tcp/80, tcp/81, icmp, icmpv6], action: allow}\n");
    p.push_str("    - {name: all-tcp, from: [names], to: [host], ports: [tcp], action: allow}\n");
    p.push_str(
        "    - {name: web-out, from: [host], to: [internet], ports: [tcp/443], action: allow}\n",
    );
    p.push_str("    - {name: no-private, from: [host], to: [private], action: deny}\n");
    p.push_str("    - {name: watch-ssh, from: [dual], to: [host], ports: [tcp/22], action: deny, mode: audit}\n");
    p.push_str(
        "    - {name: anyone-dns, from: [any], to: [host], ports: [udp/5353], action: allow}\n",
    );
    p
}

#[test]
#[ignore = "needs root and nftables (network namespaces); CI runs it"]
fn the_agent_loads_over_netlink_what_nft_loads_from_the_script() {
    let dir = temp_dir("netlink-same");
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        "203.0.113.80 deb.debian.org\n2001:db8::80 security.debian.org\n203.0.113.7 svc.example\n2001:db8::7 svc.example\n",
    )
    .unwrap();
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme-prod.yaml");
    for ip in [
        "10.0.1.10",
        "10.0.2.10",
        "10.0.3.10",
        "10.0.4.10",
        "10.0.9.10",
    ] {
        same_both_ways(&a, &b, &example, &hosts, ip);
    }
    let wide = dir.join("wide.yaml");
    std::fs::write(&wide, wide_policy(3000, 0)).unwrap();
    let listing = same_both_ways(&a, &b, &wide, &hosts, "10.9.0.1");
    for part in [
        "tcp dport vmap @input_audit_tcp",
        "tcp dport vmap @input_allow_tcp",
        "tcp dport @input_ports0",
        "meta l4proto ipv6-icmp",
        "2001:db8::7",
        "ip6 daddr 2000::/3",
        "would-deny watch-ssh",
        "11.0.0.0/24, 11.0.2.0/24",
    ] {
        assert!(listing.contains(part), "`{part}` missing:\n{listing}");
    }
}

struct Killed(Child);

/// A watching agent in `ns` with `args` after `agent`, once it has
/// applied its first table, and the lines it prints.
fn watching_agent(ns: &Netns, args: &[&str]) -> (Killed, mpsc::Receiver<String>) {
    let mut agent = Killed(
        ns.cmd(env!("CARGO_BIN_EXE_cordon"))
            .arg("agent")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let rx = lines(&mut agent.0);
    wait_for(&rx, "applied:");
    (agent, rx)
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs root and nftables (network namespaces); CI runs it"]
fn element_changes_apply_in_place_and_a_foreign_change_makes_a_replacement() {
    let dir = temp_dir("netlink-update");
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "203.0.113.7 svc.example\n").unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, wide_policy(2000, 0)).unwrap();
    let (a, b) = (Netns::new("ua"), Netns::new("ub"));
    let (agent, rx) = watching_agent(
        &a,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--hosts",
            hosts.to_str().unwrap(),
            "--self-ip",
            "10.9.0.1",
        ],
    );
    // 300 CIDRs move: 300 ranges out, 300 in.
    std::fs::write(&policy, wide_policy(2000, 300)).unwrap();
    let line = wait_for(&rx, "reloaded:");
    assert!(
        line.contains("changed in place: 600 bounds added, 600 removed"),
        "{line}"
    );
    // A new address for a name is an element change too.
    std::fs::write(
        &hosts,
        "203.0.113.7 svc.example\n203.0.113.20 svc.example\n",
    )
    .unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &agent.0.id().to_string()])
        .status();
    let line = wait_for(&rx, "reloaded:");
    assert!(
        line.contains("changed in place: 2 bounds added, 0 removed"),
        "{line}"
    );
    let script = common::cordon(&[
        "agent",
        "--policy",
        policy.to_str().unwrap(),
        "--hosts",
        hosts.to_str().unwrap(),
        "--self-ip",
        "10.9.0.1",
        "--print",
    ]);
    let loaded = b.nft(&["-f", "-"], Some(&String::from_utf8_lossy(&script.stdout)));
    assert!(loaded.status.success(), "{}", text(&loaded));
    assert_eq!(
        a.listing(),
        b.listing(),
        "the updated table is the new policy's"
    );
    // Someone else changes the ruleset: the agent's next change cannot
    // assume its table is as it left it, and replaces it whole.
    let other = a.nft(&["add", "table", "inet", "someone-else"], None);
    assert!(other.status.success());
    std::fs::write(&policy, wide_policy(2000, 7)).unwrap();
    let line = wait_for(&rx, "reloaded:");
    assert!(line.contains("table replaced"), "{line}");
    assert!(
        a.nft(&["list", "table", "inet", "someone-else"], None)
            .status
            .success(),
        "the other table is untouched"
    );
}

#[test]
#[ignore = "needs root and nftables (network namespaces); CI runs it"]
fn a_table_that_is_not_the_agents_is_left_alone() {
    let ns = Netns::new("foreign");
    let made = ns.nft(
        &["-f", "-"],
        Some("table inet cordon {\n  chain mine {\n    type filter hook input priority 0; policy accept;\n  }\n}\n"),
    );
    assert!(made.status.success(), "{}", text(&made));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme-prod.yaml");
    let once = [
        "agent",
        "--policy",
        example.to_str().unwrap(),
        "--self-ip",
        "10.0.2.10",
        "--once",
    ];
    let out = ns.cordon(&once);
    assert!(!out.status.success());
    assert!(text(&out).contains("is not Cordon's"), "{}", text(&out));
    let cleanup = ns.cordon(&["agent", "--cleanup"]);
    assert!(!cleanup.status.success());
    let listing = ns.listing();
    assert!(listing.contains("chain mine"), "{listing}");
    assert!(!listing.contains("input_p"), "{listing}");
    // After its owner removes it, the agent loads and cleans up its own.
    assert!(
        ns.nft(&["delete", "table", "inet", "cordon"], None)
            .status
            .success()
    );
    let out = ns.cordon(&once);
    assert!(out.status.success(), "{}", text(&out));
    let cleanup = ns.cordon(&["agent", "--cleanup"]);
    assert!(cleanup.status.success(), "{}", text(&cleanup));
    assert!(ns.listing().is_empty());
}

#[test]
#[ignore = "needs root and nftables (network namespaces); CI runs it"]
fn without_cap_net_admin_the_agent_says_so_and_changes_nothing() {
    let ns = Netns::new("noperm");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme-prod.yaml");
    let out = ns
        .cmd("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_cordon"),
            "agent",
            "--policy",
            example.to_str().unwrap(),
            "--self-ip",
            "10.0.2.10",
            "--once",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("needs CAP_NET_ADMIN"), "{}", text(&out));
    assert!(ns.listing().is_empty());
}

/// A DNS server on 127.0.0.1:5300 in `ns`: A queries get the address in
/// `answer_file` with a TTL of 2 s; other types an empty answer.
fn dns_server(ns: &Netns, answer_file: &Path) -> Killed {
    let up = ns
        .cmd("ip")
        .args(["link", "set", "lo", "up"])
        .output()
        .unwrap();
    assert!(up.status.success());
    let script = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 5300))
while True:
    q, peer = s.recvfrom(512)
    if len(q) < 12:
        continue
    i = 12
    while i < len(q) and q[i] != 0:
        i += 1 + q[i]
    if i + 5 > len(q):
        continue
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    r = bytearray(q[:i + 5])
    r[2] = 0x84 | (q[2] & 1); r[3] = 0x80; r[6:12] = bytes(6)
    if qtype == 1:
        ip = open(sys.argv[1]).read().split()[0]
        r[7] = 1
        r += bytes([0xc0, 0x0c, 0, 1, 0, 1]) + struct.pack(">I", 2) + bytes([0, 4]) + socket.inet_aton(ip)
    s.sendto(bytes(r), peer)
"#;
    let child = ns
        .cmd("python3")
        .args(["-c", script, answer_file.to_str().unwrap()])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    Killed(child)
}

#[test]
#[ignore = "needs root and nftables (network namespaces); CI runs it"]
fn names_are_refreshed_when_their_dns_ttl_runs_out() {
    let dir = temp_dir("netlink-dns");
    let answer = dir.join("answer");
    std::fs::write(&answer, "203.0.113.7\n").unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: names}\nspec:\n  default: deny\n  groups:\n    svc: {fqdns: [svc.example]}\n  rules:\n    - {name: to-svc, from: [any], to: [svc], ports: [tcp/443], action: allow}\n",
    )
    .unwrap();
    let ns = Netns::new("dns");
    let _dns = dns_server(&ns, &answer);
    let (_agent, rx) = watching_agent(
        &ns,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--dns",
            "127.0.0.1:5300",
            "--self-ip",
            "10.9.0.1",
        ],
    );
    assert!(ns.listing().contains("203.0.113.7"), "{}", ns.listing());
    // The answer changes; its 2 s TTL makes the agent ask again soon, not
    // in a minute.
    std::fs::write(&answer, "203.0.113.20\n").unwrap();
    let started = Instant::now();
    let line = wait_for(&rx, "reloaded:");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        line.contains("changed in place: 2 bounds added, 2 removed"),
        "{line}"
    );
    let listing = ns.listing();
    let addresses: Vec<&str> = listing
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|t| t.starts_with("203.0.113."))
        .collect();
    assert_eq!(addresses, ["203.0.113.20"], "{listing}");
}
