//! Responses on real packets: an agent in the database's namespace follows
//! a responses file; `cordon respond quarantine` cuts an attacker's open
//! connection and refuses new ones while an allowed peer's connection
//! lives on, `undo` restores the table exactly, and a short TTL ends the
//! quarantine by itself, also across a restart of the agent. Needs root,
//! nftables and conntrack (CI runs it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use common::{Killed, cordon, lines, stderr, stdout, temp_dir};

/// One lab at a time in this file.
static LAB_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Lab;

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = cordon(&["lab", "down"]);
    }
}

fn root_with_tools() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "needs root"
    );
    for tool in ["nft", "conntrack"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "needs {tool}: apt-get install {}",
            if tool == "nft" { "nftables" } else { tool }
        );
    }
}

fn in_ns(host: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &format!("cordon-{host}"), program]);
    c
}

fn python(host: &str, script: &str) -> Command {
    let mut c = in_ns(host, "python3");
    c.args(["-c", script]);
    c
}

/// TCP echo servers in `host` on `ports`.
fn serve_echo(host: &str, ports: &[u16]) -> Killed {
    let script = format!(
        "import socket,threading,time\n\
         def echo(c):\n    while True:\n        d=c.recv(65536)\n        if not d: break\n        c.sendall(d)\n    c.close()\n\
         def tcp(p):\n    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0',p)); s.listen(64)\n    while True:\n        c,_=s.accept(); threading.Thread(target=echo,args=(c,),daemon=True).start()\n\
         for p in {ports:?}: threading.Thread(target=tcp,args=(p,),daemon=True).start()\n\
         time.sleep(900)\n"
    );
    // Resets are what cut connections look like from here: not news.
    let child = python(host, &script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    Killed(child)
}

/// A connection from `from` that echoes a byte every 20 ms and prints
/// the time of each echo (`ok SECONDS`); it says `ready` once connected.
fn pinger(from: &str, addr: &str, port: u16) -> (Killed, mpsc::Receiver<String>) {
    let script = format!(
        "import socket,sys,time\n\
         s=socket.create_connection(('{addr}',{port}),timeout=2)\n\
         s.settimeout(0.2)\n\
         print('ready',flush=True)\n\
         end=time.time()+600\n\
         while time.time()<end:\n    try:\n        s.sendall(b'x')\n        if s.recv(16): print('ok',time.time(),flush=True)\n        else: break\n    except socket.timeout:\n        continue\n    except Exception:\n        break\n    time.sleep(0.02)\n\
         print('closed',flush=True)\n"
    );
    let mut child = python(from, &script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut child);
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    assert_eq!(first, "ready", "the connection from {from} did not open");
    (Killed(child), rx)
}

/// The time of the last echo `rx` reported, draining what is there.
fn last_echo(rx: &mpsc::Receiver<String>, last: &mut f64) {
    while let Ok(line) = rx.try_recv() {
        if let Some(t) = line.strip_prefix("ok ").and_then(|t| t.parse::<f64>().ok()) {
            *last = last.max(t);
        }
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Whether a new TCP connection from `from` to `addr:port` echoes.
fn connects(from: &str, addr: &str, port: u16) -> bool {
    let script = format!(
        "import socket,sys\ntry:\n    s=socket.create_connection(('{addr}',{port}), timeout=1); s.sendall(b'hi'); sys.exit(0 if s.recv(2)==b'hi' else 1)\nexcept Exception:\n    sys.exit(1)\n"
    );
    python(from, &script).status().unwrap().success()
}

fn stateless_table(host: &str) -> String {
    let out = in_ns(host, "nft")
        .args(["-s", "list", "table", "inet", "cordon"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The policy: the example company, with the attacker's address let in
/// to the database (so it can hold a connection a response must cut).
fn lab_policy(dir: &Path) -> std::path::PathBuf {
    let acme = std::fs::read_to_string("../../examples/acme-prod.yaml").unwrap();
    let text = acme
        .replace(
            "  groups:\n",
            "  groups:\n    partner:\n      cidrs: [203.0.113.66/32]\n",
        )
        .replace(
            "  rules:\n",
            "  rules:\n    - {name: partner-db, from: [partner], to: [user-db], ports: [tcp/5432], action: allow}\n",
        );
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, text).unwrap();
    std::fs::copy(
        "../../examples/acme-inventory.yaml",
        dir.join("acme-inventory.yaml"),
    )
    .unwrap();
    policy
}

/// The agent in user-db-1's namespace, following `responses`; waits for
/// its table.
fn start_agent(policy: &Path, responses: &Path, log: &Path) -> Killed {
    let log_file = std::fs::File::create(log).unwrap();
    let child = in_ns("user-db-1", env!("CARGO_BIN_EXE_cordon"))
        .args(["agent", "--policy"])
        .arg(policy)
        .args(["--workload", "user-db-1", "--responses"])
        .arg(responses)
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("applied:")
    {
        assert!(
            Instant::now() < deadline,
            "the agent did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Killed(child)
}

fn respond(args: &[&str]) -> String {
    let out = cordon(args);
    assert!(out.status.success(), "cordon {args:?}: {}", stderr(&out));
    stdout(&out)
}

fn stop(mut agent: Killed) {
    let _ = Command::new("kill")
        .args(["-TERM", &agent.0.id().to_string()])
        .status();
    let _ = agent.0.wait();
}

#[test]
#[ignore = "needs root, nftables and conntrack (network namespaces); CI runs it"]
fn a_quarantine_cuts_the_attackers_connection_and_undo_restores_the_table() {
    let _one = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    root_with_tools();
    let dir = temp_dir("respond-lab");
    let policy = lab_policy(&dir);
    let responses = dir.join("responses.yaml");
    let up = cordon(&["lab", "up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let _lab = Lab;
    let _servers = serve_echo("user-db-1", &[22, 5432]);
    let agent = start_agent(&policy, &responses, &dir.join("agent.log"));
    let before = stateless_table("user-db-1");
    assert!(before.contains("resp_peer_v4"), "{before}");
    assert!(
        connects("attacker", "10.0.2.10", 5432),
        "the policy lets the partner in"
    );

    let r = responses.to_str().unwrap();
    let mut delays = Vec::new();
    for round in 0..10 {
        let (_attacker, attacker_rx) = pinger("attacker", "10.0.2.10", 5432);
        let (_bastion, bastion_rx) = pinger("bastion-1", "10.0.2.10", 22);
        std::thread::sleep(Duration::from_millis(200));
        let made = respond(&[
            "respond",
            "quarantine",
            "--ip",
            "203.0.113.66",
            "--ttl",
            "1h",
            "--reason",
            "C2 beacon",
            "--responses",
            r,
        ]);
        let returned = now();
        let id = made.split_whitespace().next().unwrap().to_string();
        assert!(id.starts_with("RSP-"), "{made}");
        std::thread::sleep(Duration::from_millis(2500));
        let (mut a_last, mut b_last) = (0.0, 0.0);
        last_echo(&attacker_rx, &mut a_last);
        last_echo(&bastion_rx, &mut b_last);
        assert!(
            a_last > 0.0,
            "round {round}: the attacker's connection never echoed"
        );
        let delay = (a_last - returned).max(0.0);
        assert!(
            delay < 2.0,
            "round {round}: the attacker's connection still echoed {delay:.2} s after the command returned"
        );
        assert!(
            b_last > returned + 2.0,
            "round {round}: the bastion's allowed connection was cut (last echo {:.2} s after)",
            b_last - returned
        );
        assert!(
            !connects("attacker", "10.0.2.10", 5432),
            "round {round}: a new connection got through"
        );
        delays.push(delay);
        respond(&["respond", "undo", &id, "--responses", r]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !connects("attacker", "10.0.2.10", 5432) {
            assert!(
                Instant::now() < deadline,
                "round {round}: undo did not let the attacker back in"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            stateless_table("user-db-1"),
            before,
            "round {round}: undo left the table changed"
        );
    }
    delays.sort_by(f64::total_cmp);
    eprintln!(
        "quarantine: connection cut after the command returned, median {:.0} ms, worst {:.0} ms (10 rounds)",
        delays[5] * 1000.0,
        delays[9] * 1000.0
    );
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap();
    assert!(log.contains("set elements changed in place"), "{log}");
    assert!(
        !log.contains("table replaced"),
        "a response replaced the table:\n{log}"
    );
    assert!(log.contains("cut 1 connections"), "{log}");

    // A hand edit that breaks the file: the quarantine in force stays, and
    // the agent says why.
    let made = respond(&[
        "respond",
        "quarantine",
        "--ip",
        "203.0.113.66",
        "--ttl",
        "1h",
        "--reason",
        "again",
        "--responses",
        r,
    ]);
    assert!(made.starts_with("RSP-"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!connects("attacker", "10.0.2.10", 5432));
    let text = std::fs::read_to_string(&responses).unwrap();
    std::fs::write(
        &responses,
        text.replace("\"quarantine\"", "\"quarantine-all\""),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !connects("attacker", "10.0.2.10", 5432),
        "an invalid file lifted the quarantine"
    );
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap();
    assert!(
        log.contains("unknown action `quarantine-all`") && log.contains("last good responses"),
        "{log}"
    );
    stop(agent);
}

#[test]
#[ignore = "needs root, nftables and conntrack (network namespaces); CI runs it"]
fn a_quarantine_expires_by_itself_also_across_an_agent_restart() {
    let _one = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    root_with_tools();
    let dir = temp_dir("respond-ttl");
    let policy = lab_policy(&dir);
    let responses = dir.join("responses.json");
    let up = cordon(&["lab", "up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let _lab = Lab;
    let _servers = serve_echo("user-db-1", &[5432]);
    let r = responses.to_str().unwrap();

    // Expiry while the agent runs.
    let agent = start_agent(&policy, &responses, &dir.join("agent1.log"));
    respond(&[
        "respond",
        "quarantine",
        "--ip",
        "203.0.113.66",
        "--ttl",
        "3s",
        "--reason",
        "ttl",
        "--responses",
        r,
    ]);
    let made = Instant::now();
    std::thread::sleep(Duration::from_millis(1200));
    assert!(!connects("attacker", "10.0.2.10", 5432), "not in force");
    while made.elapsed() < Duration::from_millis(4000) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        connects("attacker", "10.0.2.10", 5432),
        "did not expire by itself"
    );

    // Expiry while the agent is down: the table it left holds the
    // quarantine; the agent that starts after the expiry drops it.
    respond(&[
        "respond",
        "quarantine",
        "--ip",
        "203.0.113.66",
        "--ttl",
        "3s",
        "--reason",
        "ttl",
        "--responses",
        r,
    ]);
    let made = Instant::now();
    std::thread::sleep(Duration::from_millis(1200));
    assert!(!connects("attacker", "10.0.2.10", 5432), "not in force");
    stop(agent);
    assert!(
        !connects("attacker", "10.0.2.10", 5432),
        "the table stays when the agent stops"
    );
    while made.elapsed() < Duration::from_millis(3500) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let agent = start_agent(&policy, &responses, &dir.join("agent2.log"));
    assert!(
        connects("attacker", "10.0.2.10", 5432),
        "an expired quarantine came back"
    );
    let list = respond(&["respond", "list", "--responses", r, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "expired"),
        "{v:#}"
    );
    stop(agent);
}

/// The loop closed: a workload beacons through the gateway, the gateway's
/// own decision log is followed by `ingest --follow --detect`, the
/// playbook quarantines the source in `auto` mode, and the gateway refuses
/// the next beacon with `reason=response`. The time from the first beacon
/// record to the first refusal is reported.
#[test]
#[ignore = "needs root (network namespaces); CI runs it"]
fn a_beacon_through_the_gateway_is_detected_and_quarantined_by_the_playbook() {
    let _one = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    root_with_tools();
    let dir = temp_dir("respond-loop");
    let acme = std::fs::read_to_string("../../examples/acme-prod.yaml").unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        acme.replace(
            "  groups:\n",
            "  groups:\n    c2-lookalike:\n      external: true\n      fqdns: [c2.attacker.test]\n      cidrs: [203.0.113.66/32]\n",
        )
        ,
    )
    .unwrap();
    std::fs::copy(
        "../../examples/acme-inventory.yaml",
        dir.join("acme-inventory.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("hosts"),
        "203.0.113.66 c2.attacker.test\n198.51.100.25 api.mailer.example\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("detect.yaml"),
        "apiVersion: cordon/v1\nkind: DetectionConfig\ndetectors:\n  beaconing: {min_connections: 5, min_span: 4s}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("playbook.yaml"),
        "apiVersion: cordon/v1\nkind: ResponsePlaybook\nmetadata: {name: contain-c2}\nspec:\n  rules:\n    - name: quarantine-beaconing-hosts\n      match: {kinds: [beaconing]}\n      action: quarantine-source\n      allow: [bastion]\n      ttl: 10m\n      mode: auto\n",
    )
    .unwrap();
    let up = cordon(&["lab", "up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let _lab = Lab;
    let _c2 = serve_echo("attacker", &[8443]);
    let _mailer = serve_echo("email-vendor", &[587]);
    let log = dir.join("decisions.jsonl");
    let responses = dir.join("responses.yaml");
    let gateway_log = std::fs::File::create(dir.join("gateway.log")).unwrap();
    let _gateway = Killed(
        in_ns("api-1", env!("CARGO_BIN_EXE_cordon"))
            .arg("gateway")
            .arg("--policy")
            .arg(&policy)
            .arg("--hosts")
            .arg(dir.join("hosts"))
            .arg("--log")
            .arg(&log)
            .arg("--responses")
            .arg(&responses)
            .args(["--listen", "10.0.3.10:3128"])
            .stdout(gateway_log.try_clone().unwrap())
            .stderr(gateway_log)
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let store = dir.join("store");
    let follow_log = std::fs::File::create(dir.join("follow.log")).unwrap();
    // The log is followed from its first line on; it appears with the
    // first decision.
    // Each second: the beacon (refused by the default deny, which is how
    // the gateway sees it) and the workload's sanctioned mail call, which
    // only a response can stop.
    let beacon = "import socket,sys,time\n\
         def connect(target):\n    s=socket.create_connection(('10.0.3.10',3128),timeout=2)\n    s.sendall(('CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n' % (target,target)).encode())\n    head=b''\n    while not head.endswith(b'\\r\\n\\r\\n'):\n        c=s.recv(1)\n        if not c: break\n        head+=c\n    return s, head.decode()\n\
         end=time.time()+40\n\
         while time.time()<end:\n    t=time.time()\n    try:\n        s,head=connect('c2.attacker.test:8443'); s.close()\n        s,head=connect('api.mailer.example:587')\n        if ' 200' in head.split('\\r\\n')[0]:\n            s.sendall(b'mail'); s.recv(16)\n            print('ok',t,flush=True)\n        else:\n            print('refused',t,head.replace('\\r\\n',' | '),flush=True)\n            if 'reason=response' in head: break\n        s.close()\n    except Exception as e:\n        print('error',t,e,flush=True)\n    time.sleep(max(0,1-(time.time()-t)))\n";
    let mut client = python("notifier-1", beacon)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut client);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.exists() {
        assert!(Instant::now() < deadline, "the gateway wrote no decision");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _follow = Killed(
        Command::new(env!("CARGO_BIN_EXE_cordon"))
            .arg("ingest")
            .arg(&log)
            .args(["--follow", "--detect", "--detect-config"])
            .arg(dir.join("detect.yaml"))
            .arg("--playbook")
            .arg(dir.join("playbook.yaml"))
            .arg("--responses")
            .arg(&responses)
            .arg("--policy")
            .arg(&policy)
            .arg("--store")
            .arg(&store)
            .stdout(follow_log.try_clone().unwrap())
            .stderr(follow_log)
            .spawn()
            .unwrap(),
    );
    let mut said = Vec::new();
    let refused_at = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(45))
            .unwrap_or_else(|_| {
                panic!(
                    "no refusal; the client said:\n{}\nfollow:\n{}\ngateway:\n{}",
                    said.join("\n"),
                    std::fs::read_to_string(dir.join("follow.log")).unwrap_or_default(),
                    std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default()
                )
            });
        said.push(line.clone());
        if line.starts_with("refused") && line.contains("reason=response") {
            break line
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<f64>()
                .unwrap();
        }
        assert!(
            !line.starts_with("refused"),
            "the mail call was refused for another reason: {line}"
        );
    };
    let first = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["start_ms"].as_i64())
        .min()
        .unwrap();
    let took = refused_at - first as f64 / 1000.0;
    eprintln!(
        "closed loop: first beacon record to enforcement {took:.1} s ({} beacons before it)",
        said.iter().filter(|l| l.starts_with("ok")).count()
    );
    assert!(took < 10.0, "took {took:.1} s:\n{}", said.join("\n"));
    let list = respond(&[
        "respond",
        "list",
        "--json",
        "--responses",
        responses.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    let made = &v[0];
    assert_eq!(made["action"], "quarantine");
    assert_eq!(made["target"]["workload"], "notifier-1");
    assert!(
        made["createdBy"]
            .as_str()
            .unwrap()
            .starts_with("playbook:contain-c2"),
        "{made}"
    );
    assert!(
        made["finding"].as_str().unwrap().starts_with("beaconing-"),
        "{made}"
    );
    let _ = client.kill();
    let _ = client.wait();
}
