//! Responses at the egress gateway, as processes on loopback: a block of
//! an allowed name closes the open CONNECT tunnel to it and refuses the
//! next CONNECT with 403 and `reason=response`; undo lets it through
//! again; the close is recorded with its reason. Also the command line's
//! refusals and concurrent writers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Killed, cordon, stderr, stdout, temp_dir};

const POLICY: &str = r#"apiVersion: cordon/v1
kind: Policy
metadata: {name: gateway-responses}
spec:
  default: deny
  inventory:
    - {name: notifier-1, ips: [127.0.0.10], labels: {app: notifier}}
    - {name: bastion-1, ips: [127.0.0.9], labels: {app: bastion}}
  groups:
    notifier: {labels: {app: notifier}}
    bastion: {labels: {app: bastion}}
    email-vendor:
      external: true
      fqdns: ["api.mailer.test"]
      cidrs: [127.0.0.2/32]
      vendor: {name: MailCo, data: [email]}
  rules:
    - {name: notifier-to-mailer, from: [notifier], to: [email-vendor], action: allow}
"#;

/// A CONNECT from 127.0.0.10 through `proxy`: the status line and
/// headers, and the stream when it was let through.
fn connect(proxy: SocketAddr, target: &str) -> (String, Option<TcpStream>) {
    let mut s = bound_connect("127.0.0.10", proxy);
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let ok = head.starts_with("HTTP/1.1 200");
    (head, ok.then_some(s))
}

/// A blocking TCP connection to `to` from the loopback address `from`
/// (the policy knows the client by that address; std cannot bind before
/// connecting, tokio can).
fn bound_connect(from: &str, to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let std = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{from}:0").parse().unwrap()).unwrap();
        s.connect(to).await.unwrap().into_std().unwrap()
    });
    std.set_nonblocking(false).unwrap();
    std.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std
}

/// An echo server on 127.0.0.2.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.2:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn echoes(s: &mut TcpStream) -> bool {
    s.write_all(b"ping").is_ok() && {
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).is_ok() && &buf == b"ping"
    }
}

/// A gateway on loopback following `dir/responses.yaml`, with the
/// policy above, `api.mailer.test` resolving to 127.0.0.2 and its decision
/// log in `dir/decisions.jsonl`.
fn start_gateway(dir: &std::path::Path) -> (Killed, SocketAddr) {
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    std::fs::write(dir.join("hosts"), "127.0.0.2 api.mailer.test\n").unwrap();
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_cordon"))
            .arg("gateway")
            .arg("--policy")
            .arg(&policy)
            .arg("--hosts")
            .arg(dir.join("hosts"))
            .arg("--log")
            .arg(dir.join("decisions.jsonl"))
            .arg("--responses")
            .arg(dir.join("responses.yaml"))
            .args(["--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let proxy: SocketAddr = line
        .split("listening on ")
        .nth(1)
        .expect(&line)
        .trim()
        .parse()
        .unwrap();
    std::thread::spawn(move || for _ in err.lines() {});
    (child, proxy)
}

#[test]
fn a_block_closes_the_open_tunnel_refuses_the_next_and_undo_restores() {
    let dir = temp_dir("respond-gateway");
    let (_gateway, proxy) = start_gateway(&dir);
    let (policy, responses, log) = (
        dir.join("policy.yaml"),
        dir.join("responses.yaml"),
        dir.join("decisions.jsonl"),
    );
    let upstream = echo_server();
    let target = format!("api.mailer.test:{}", upstream.port());
    let (head, tunnel) = connect(proxy, &target);
    let mut tunnel = tunnel.unwrap_or_else(|| panic!("{head}"));
    assert!(echoes(&mut tunnel));

    let r = responses.to_str().unwrap();
    let p = policy.to_str().unwrap();
    let made = cordon(&[
        "respond",
        "block",
        "--to",
        "api.mailer.test",
        "--ttl",
        "10m",
        "--reason",
        "exfiltration",
        "--policy",
        p,
        "--responses",
        r,
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let returned = Instant::now();
    let id = stdout(&made).split_whitespace().next().unwrap().to_string();
    // The open tunnel is closed: reads end (after any echo still due).
    let mut buf = [0u8; 16];
    let _ = tunnel.write_all(b"x");
    let closed_after = loop {
        match tunnel.read(&mut buf) {
            Ok(0) | Err(_) => break returned.elapsed(),
            Ok(_) => assert!(
                returned.elapsed() < Duration::from_secs(3),
                "the tunnel stayed open"
            ),
        }
    };
    assert!(
        closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
    eprintln!(
        "gateway: tunnel closed {} ms after `respond block` returned",
        closed_after.as_millis()
    );
    let (head, t) = connect(proxy, &target);
    assert!(t.is_none() && head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(
        head.contains("reason=response") && head.contains(&id),
        "{head}"
    );

    // Undo: through again.
    let undo = cordon(&["respond", "undo", &id, "--responses", r]);
    assert!(undo.status.success(), "{}", stderr(&undo));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (head, t) = connect(proxy, &target);
        if let Some(mut t) = t {
            assert!(echoes(&mut t));
            break;
        }
        assert!(Instant::now() < deadline, "undo did not restore: {head}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The close record says why.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.contains("\"close\"") && l.contains("\"response\""))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no close record with reason response:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_command_line_refuses_what_it_must_and_loses_no_concurrent_update() {
    let dir = temp_dir("respond-cli");
    let policy = dir.join("policy.yaml");
    // Addresses off loopback (loopback is never-block on its own).
    std::fs::write(
        &policy,
        POLICY
            .replace("127.0.0.9", "10.0.9.10")
            .replace("127.0.0.10", "10.0.4.10")
            .replace("127.0.0.2/32", "198.51.100.2/32"),
    )
    .unwrap();
    let responses = dir.join("responses.yaml");
    std::fs::write(
        &responses,
        "apiVersion: cordon/v1\nkind: Responses\nspec:\n  maxTtl: 2h\n  neverBlock: [bastion, 10.53.0.0/16]\n",
    )
    .unwrap();
    let (p, r) = (policy.to_str().unwrap(), responses.to_str().unwrap());
    let refused = |args: &[&str], says: &str| {
        let out = cordon(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    };
    refused(
        &[
            "respond",
            "quarantine",
            "--ip",
            "203.0.113.5",
            "--ttl",
            "3h",
            "--reason",
            "x",
            "--responses",
            r,
        ],
        "longer than the 2h",
    );
    refused(
        &[
            "respond",
            "quarantine",
            "--workload",
            "bastion-1",
            "--ttl",
            "1h",
            "--reason",
            "x",
            "--policy",
            p,
            "--responses",
            r,
        ],
        "never-block list (bastion)",
    );
    refused(
        &[
            "respond",
            "block",
            "--to",
            "10.53.0.53",
            "--ttl",
            "1h",
            "--reason",
            "x",
            "--responses",
            r,
        ],
        "never-block list (10.53.0.0/16)",
    );
    refused(
        &[
            "respond",
            "quarantine",
            "--workload",
            "notifier1",
            "--ttl",
            "1h",
            "--reason",
            "x",
            "--policy",
            p,
            "--responses",
            r,
        ],
        "did you mean `notifier-1`",
    );
    refused(
        &["respond", "undo", "RSP-0000000000", "--responses", r],
        "no response `RSP-0000000000`",
    );
    // Ten at once: ten responses, none lost.
    let children: Vec<_> = (0..10)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_cordon"))
                .args([
                    "respond",
                    "quarantine",
                    "--ip",
                    &format!("203.0.113.{i}"),
                    "--ttl",
                    "1h",
                    "--reason",
                    "burst",
                    "--responses",
                    r,
                ])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let list = cordon(&["respond", "list", "--json", "--responses", r]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 10, "{v:#}");
    let text = std::fs::read_to_string(&responses).unwrap();
    assert!(text.contains("generation: 10"), "{text}");
    assert!(
        text.contains("maxTtl: \"2h\"") && text.contains("bastion"),
        "settings kept: {text}"
    );

    // A proposal waits for approval.
    let out = cordon(&[
        "respond",
        "block",
        "--to",
        "MailCo",
        "--ttl",
        "1h",
        "--reason",
        "vendor breach",
        "--propose",
        "--policy",
        p,
        "--responses",
        r,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let made: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(made["status"], "proposed");
    assert_eq!(made["to"]["vendor"], "MailCo");
    let id = made["id"].as_str().unwrap();
    let out = cordon(&[
        "respond",
        "approve",
        id,
        "--policy",
        p,
        "--responses",
        r,
        "--note",
        "confirmed",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = cordon(&["respond", "show", id, "--json", "--responses", r]);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["history"][1]["what"], "approved");
    assert_eq!(shown["history"][1]["note"], "confirmed");
}

#[test]
fn a_throttle_lowers_a_vendors_limit_at_the_gateway() {
    let dir = temp_dir("respond-throttle");
    let (_gateway, proxy) = start_gateway(&dir);
    let upstream = echo_server();
    let target = format!("api.mailer.test:{}", upstream.port());
    let made = cordon(&[
        "respond",
        "throttle",
        "--vendor",
        "MailCo",
        "--limit",
        "4KiB/h",
        "--ttl",
        "10m",
        "--reason",
        "unusual volume",
        "--policy",
        dir.join("policy.yaml").to_str().unwrap(),
        "--responses",
        dir.join("responses.yaml").to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    std::thread::sleep(Duration::from_millis(1200));
    let (head, t) = connect(proxy, &target);
    let mut t = t.unwrap_or_else(|| panic!("{head}"));
    // 16 KiB through a 4 KiB-per-hour limit: the tunnel is stopped.
    let chunk = [b'x'; 1024];
    let mut sent = 0;
    while sent < 16 * 1024 {
        if t.write_all(&chunk).is_err() {
            break;
        }
        let mut back = [0u8; 1024];
        if t.read_exact(&mut back).is_err() {
            break;
        }
        sent += 1024;
    }
    assert!(sent <= 8 * 1024, "{sent} bytes went through a 4 KiB limit");
    // And the limit holds for the next connection.
    let (head, t) = connect(proxy, &target);
    assert!(t.is_none() && head.contains("reason=response"), "{head}");
}

#[test]
fn a_dry_run_lists_what_it_would_have_cut_and_changes_nothing() {
    let dir = temp_dir("respond-dry-run");
    let sim = dir.join("sim");
    let out = cordon(&["simulate", "--out", sim.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = dir.join("store");
    let out = cordon(&[
        "ingest",
        sim.join("vpc-flow.log").to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--policy",
        "../../examples/acme-prod.yaml",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let responses = dir.join("responses.yaml");
    let out = cordon(&[
        "respond",
        "quarantine",
        "--workload",
        "notifier-1",
        "--ttl",
        "1h",
        "--reason",
        "beacon",
        "--dry-run",
        "--json",
        "--policy",
        "../../examples/acme-prod.yaml",
        "--store",
        store.to_str().unwrap(),
        "--responses",
        responses.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    let cut = v["would_cut"].as_u64().unwrap();
    assert!(
        cut > 0 && cut <= v["flows_examined"].as_u64().unwrap(),
        "{v:#}"
    );
    for f in v["flows"].as_array().unwrap() {
        assert!(
            f["src_ip"] == "10.0.4.10" || f["dst_ip"] == "10.0.4.10",
            "a flow not of notifier-1: {f}"
        );
    }
    assert!(!responses.exists(), "a dry run wrote the responses file");
}
