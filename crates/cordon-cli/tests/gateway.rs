//! `cordon gateway` as a process: 10,000 concurrent idle tunnels with the
//! gateway's memory reported, SIGHUP with a bad policy, a draining SIGTERM,
//! and its decision log ingested as flows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cordon, temp_dir, wait_exit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const POLICY: &str = r#"apiVersion: cordon/v1
kind: Policy
metadata: {name: gateway-process}
spec:
  default: deny
  inventory:
    - {name: notifier-1, ips: [127.0.0.10], labels: {app: notifier}}
  groups:
    notifier: {labels: {app: notifier}}
    email-vendor:
      external: true
      fqdns: ["*.mailer.test"]
      cidrs: [127.0.0.2/32]
      vendor: {name: MailCo, data: [email]}
  rules:
    - {name: notifier-to-mailer, from: [notifier], to: [email-vendor], action: allow}
"#;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

async fn tunnel(proxy: std::net::SocketAddr, target: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.10:0".parse().unwrap()).unwrap();
    let mut s = socket.connect(proxy).await.unwrap();
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).await.unwrap(), 1, "closed after {head:?}");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Kills a process by id when dropped, unless it was waited for (set to
/// `None`: its id may belong to another process by then).
struct Reap(Option<u32>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn ten_thousand_idle_tunnels_reload_drain_and_ingest() {
    // Each tunnel is two sockets in the gateway (and two here). Where the
    // hard open-file limit is below 20,000 plus headroom and cannot be
    // raised, as many tunnels as it allows are opened and the count says so.
    let hard = open_file_limit();
    let me = std::process::id().to_string();
    let _ = Command::new("prlimit")
        .args(["--pid", &me, &format!("--nofile={hard}:{hard}")])
        .status();
    let n = 10_000.min((hard.saturating_sub(128) / 2) as usize);
    let dir = temp_dir("gateway-process");
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    std::fs::write(dir.join("hosts"), "127.0.0.2 api.mailer.test\n").unwrap();
    let log = dir.join("decisions.jsonl");
    let mut child = Command::new("prlimit")
        .args([
            &format!("--nofile={hard}:{hard}"),
            env!("CARGO_BIN_EXE_cordon"),
            "gateway",
        ])
        .arg("--policy")
        .arg(&policy)
        .arg("--hosts")
        .arg(dir.join("hosts"))
        .arg("--log")
        .arg(&log)
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args([
            "--max-per-client",
            "20000",
            "--max-connections",
            "30000",
            "--drain",
            "5",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // A failing assertion must not leave the gateway running (it holds
    // the test runner's output open).
    let mut reap = Reap(Some(pid));
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let listening = line
        .split("listening on ")
        .nth(1)
        .expect(&line)
        .trim()
        .to_string();
    let addrs: Vec<std::net::SocketAddr> =
        listening.split(", ").map(|a| a.parse().unwrap()).collect();
    let (proxy, admin) = (addrs[0], addrs[1]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // The upstream: accepts and holds connections.
        let upstream = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let target = format!("api.mailer.test:{}", upstream.local_addr().unwrap().port());
        let held = Arc::new(std::sync::Mutex::new(Vec::new()));
        let h = held.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = upstream.accept().await {
                h.lock().unwrap().push(s);
            }
        });
        let before = rss_kib(pid);
        let started = Instant::now();
        let gate = Arc::new(tokio::sync::Semaphore::new(256));
        let mut opening = Vec::new();
        for _ in 0..n {
            let (gate, target) = (gate.clone(), target.clone());
            opening.push(tokio::spawn(async move {
                let _p = gate.acquire().await.unwrap();
                tunnel(proxy, &target).await
            }));
        }
        let mut tunnels = Vec::new();
        for t in opening {
            tunnels.push(t.await.unwrap());
        }
        let opened_in = started.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib(pid);
        let per = (after.saturating_sub(before)) as f64 / n as f64;
        println!(
            "{n} idle tunnels (open-file limit {hard}) opened in {:.1}s; gateway RSS {} MiB -> {} MiB, {per:.1} KiB per tunnel",
            opened_in.as_secs_f64(),
            before / 1024,
            after / 1024
        );
        assert!(per < 64.0, "{per} KiB per idle tunnel");
        let metrics = admin_get(admin, "/metrics").await;
        assert!(metrics.contains(&format!("cordon_gateway_active_tunnels {n}\n")), "{metrics}");
        // A bad policy on SIGHUP: refused, tunnels and service unaffected.
        std::fs::write(&policy, POLICY.replace("to: [email-vendor]", "to: [nowhere]")).unwrap();
        Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let metrics = admin_get(admin, "/metrics").await;
        // Refused once or twice: the file watcher and the signal may each
        // try it. Nothing took effect.
        let count = |name: &str| -> u64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        assert!(
            (1..=2).contains(&count("cordon_gateway_reload_failures_total")),
            "{metrics}"
        );
        assert_eq!(count("cordon_gateway_reloads_total"), 0, "{metrics}");
        let extra = tunnel(proxy, &target).await;
        drop(extra);
        // Close half; SIGTERM drains: the process exits once the rest close
        // or the drain time ends.
        tunnels.truncate(n / 2);
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(tunnels);
    });
    let exited = wait_exit(&mut child, Duration::from_secs(20));
    reap.0 = None;
    assert_eq!(
        exited,
        Some(true),
        "the gateway did not exit cleanly after SIGTERM"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(
        rest.contains("policy is invalid") && rest.contains("stopped"),
        "{rest}"
    );
    // The decision log is flows: one per connection.
    let store = dir.join("store");
    let out = cordon(&[
        "ingest",
        "--store",
        store.to_str().unwrap(),
        "--json",
        log.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["flows"], n as u64 + 1, "{summary}");
    let out = cordon(&[
        "flows",
        "query",
        "--store",
        store.to_str().unwrap(),
        "--output",
        "ocsf",
        "--limit",
        "1",
        "--since",
        "2020-01-01T00:00:00Z",
    ]);
    let event: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(event["class_uid"], 4001);
    assert_eq!(event["dst_endpoint"]["hostname"], "api.mailer.test");
}

/// The hard limit on open files, from /proc/self/limits.
fn open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

async fn admin_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[test]
fn an_invalid_policy_stops_the_gateway_before_it_listens() {
    let dir = temp_dir("gateway-bad-policy");
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        POLICY.replace("to: [email-vendor]", "to: [email-vendr]"),
    )
    .unwrap();
    let out = cordon(&[
        "gateway",
        "--policy",
        policy.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("email-vendr") && err.contains("did not start"),
        "{err}"
    );
}
