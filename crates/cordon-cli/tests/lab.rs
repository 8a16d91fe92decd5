//! The agent on real packets: `cordon lab up` builds network namespaces on
//! a bridge, the agent enforces the example policy inside the database's
//! namespace with nftables, and real TCP connections from the other
//! namespaces are let through or dropped as the policy says. Needs root
//! and `nft` (`.ci/run` installs nftables; CI runs as root).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{cordon, temp_dir};

fn root_with_nft() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the lab test needs root (network namespaces and nftables)"
    );
    assert!(
        Command::new("nft")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "the lab test needs nft: apt-get install nftables"
    );
}

/// Whether a TCP connection from lab host `from` to `addr:port` completes.
fn connects(from: &str, addr: &str, port: u16) -> bool {
    let script = format!(
        "import socket,sys\ns=socket.socket(); s.settimeout(1.5)\ntry:\n    s.connect(('{addr}',{port})); s.recv(2)\nexcept Exception:\n    sys.exit(1)\n"
    );
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("cordon-{from}"),
            "python3",
            "-c",
            &script,
        ])
        .status()
        .unwrap()
        .success()
}

/// A server in lab host `host` answering on `ports`.
fn serve(host: &str, ports: &[u16]) -> Child {
    let script = format!(
        "import socket,threading,time\n\
         def serve(p):\n    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0',p)); s.listen(64)\n    while True:\n        c,_=s.accept(); c.sendall(b'hi'); c.close()\n\
         for p in {ports:?}: threading.Thread(target=serve,args=(p,),daemon=True).start()\n\
         time.sleep(600)\n"
    );
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("cordon-{host}"),
            "python3",
            "-c",
            &script,
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    child
}

fn in_ns(host: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("cordon-{host}"),
            env!("CARGO_BIN_EXE_cordon"),
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn table(host: &str) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("cordon-{host}"),
            "nft",
            "list",
            "table",
            "inet",
            "cordon",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Lab;

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = cordon(&["lab", "down"]);
    }
}

#[test]
fn the_agent_enforces_the_policy_on_real_connections() {
    root_with_nft();
    let up = cordon(&["lab", "up"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let _lab = Lab;
    let _server = Killed(serve("user-db-1", &[22, 5432]));
    let dir = temp_dir("lab");
    let policy = dir.join("policy.yaml");
    std::fs::copy("../../examples/acme-prod.yaml", &policy).unwrap();
    std::fs::copy(
        "../../examples/acme-inventory.yaml",
        dir.join("acme-inventory.yaml"),
    )
    .unwrap();
    let policy_arg = policy.to_str().unwrap();
    // Names resolve from a file: the lab has no DNS (and tests no network).
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "192.0.2.80 storage.googleapis.com\n").unwrap();
    let hosts_arg = hosts.to_str().unwrap();

    // Before the agent, everything connects.
    assert!(connects("attacker", "10.0.2.10", 5432));

    let out = in_ns(
        "user-db-1",
        &[
            "agent",
            "--policy",
            policy_arg,
            "--workload",
            "user-db-1",
            "--hosts",
            hosts_arg,
            "--once",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(connects("api-1", "10.0.2.10", 5432), "api-to-db allows");
    assert!(connects("bastion-1", "10.0.2.10", 22), "bastion-ssh allows");
    assert!(
        !connects("notifier-1", "10.0.2.10", 22),
        "no-admin-from-app-tier denies"
    );
    assert!(!connects("web-1", "10.0.2.10", 5432), "default deny");
    assert!(!connects("attacker", "10.0.2.10", 5432), "default deny");
    let t = table("user-db-1");
    assert!(t.contains("cordon deny no-admin-from-app-tier"), "{t}");
    assert!(
        t.contains("192.0.2.80"),
        "the cloud-storage name resolved into its set: {t}"
    );

    // A running agent reloads when the policy file changes.
    let mut agent = Killed(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                "cordon-user-db-1",
                env!("CARGO_BIN_EXE_cordon"),
            ])
            .args([
                "agent",
                "--policy",
                policy_arg,
                "--workload",
                "user-db-1",
                "--hosts",
                hosts_arg,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(800));
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace(
            "  mode: enforce\n  default: deny",
            "  mode: audit\n  default: deny",
        ),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        connects("attacker", "10.0.2.10", 5432),
        "audit mode lets it pass"
    );
    assert!(table("user-db-1").contains("cordon would-deny default"));

    // A broken policy leaves the last good ruleset in force.
    std::fs::write(&policy, "apiVersion: cordon/v1\nkind: Policy\nspec: {rules: [{name: x, from: [nowhere], to: [any], action: allow}]}\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        table("user-db-1").contains("cordon would-deny default"),
        "still the audit ruleset"
    );
    // Stopping the agent leaves the ruleset (fail closed).
    agent.0.kill().unwrap();
    agent.0.wait().unwrap();
    assert!(table("user-db-1").contains("managed by cordon agent"));

    // --once with an invalid policy changes nothing and says so.
    let out = in_ns(
        "user-db-1",
        &[
            "agent",
            "--policy",
            policy_arg,
            "--self-ip",
            "10.0.2.10",
            "--hosts",
            hosts_arg,
            "--once",
        ],
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was changed"));

    // Cleanup removes only what the agent installed.
    let out = in_ns("user-db-1", &["agent", "--cleanup"]);
    assert!(out.status.success());
    assert!(table("user-db-1").is_empty());
    assert!(connects("attacker", "10.0.2.10", 5432));

    std::fs::remove_dir_all(&dir).unwrap();
    drop(_lab);
    let status = String::from_utf8_lossy(&cordon(&["lab", "status"]).stdout).into_owned();
    assert!(!status.contains(" up"), "{status}");
}
