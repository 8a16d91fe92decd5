//! Egress limits shared through a real `redis-server`: three gateway
//! processes, clients pushing through all three to a vendor limited to
//! 10 MiB an hour, let through at most the limit plus one batch per
//! replica; then Redis stopped: a limit failing closed refuses, one
//! failing open lets through and says so in its log and metrics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::gateway::{Gateway, metric};
use common::{Killed, temp_dir};

const LIMIT: u64 = 10 * 1024 * 1024;
const BATCH: u64 = 64 * 1024;

const POLICY: &str = r#"apiVersion: cordon/v1
kind: Policy
metadata: {name: shared-quota}
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
    - name: notifier-to-mailer
      from: [notifier]
      to: [email-vendor]
      action: allow
      limit: {bytes_out: 10MiB, per: 1h}
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` on a free loopback port, with nothing saved to disk.
fn start_redis() -> (Killed, u16) {
    let port = free_port();
    let child = Killed(
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"PING\r\n").unwrap();
            let mut buf = [0u8; 16];
            if s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
            {
                return (child, port);
            }
        }
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn gateway(dir: &std::path::Path, redis_port: u16, extra: &[&str]) -> Gateway {
    let redis = format!("redis://127.0.0.1:{redis_port}");
    let batch = BATCH.to_string();
    let (policy, hosts) = (dir.join("policy.yaml"), dir.join("hosts"));
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--policy".as_ref(),
        policy.as_os_str(),
        "--hosts".as_ref(),
        hosts.as_os_str(),
        "--quota-redis".as_ref(),
        redis.as_ref(),
        "--quota-batch".as_ref(),
        batch.as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    common::gateway::spawn(&args)
}

fn tunnel(proxy: &str, target: &str) -> (String, Option<std::net::TcpStream>) {
    common::gateway::tunnel(proxy, "127.0.0.10", target)
}

/// Wait until the gateway's metrics say Redis is up (1) or down (0).
fn store_up(g: &Gateway, up: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&g.admin, "cordon_gateway_quota_store_up") != up {
        assert!(Instant::now() < deadline, "redis not seen as {up}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Push 64 KiB chunks through a tunnel until the gateway closes it or
/// `most` bytes went; bytes written.
fn push(mut s: std::net::TcpStream, most: u64) -> u64 {
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < most {
        match s.write(&chunk) {
            Ok(n) if n > 0 => sent += n as u64,
            _ => break,
        }
    }
    sent
}

/// The vendor: counts every byte it receives.
fn upstream() -> (u16, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let r = r.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    r.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (port, received)
}

#[test]
fn three_replicas_share_one_limit_and_fail_as_configured_when_redis_stops() {
    let dir = temp_dir("quota-redis");
    std::fs::write(dir.join("policy.yaml"), POLICY).unwrap();
    std::fs::write(dir.join("hosts"), "127.0.0.2 api.mailer.test\n").unwrap();
    let (redis, redis_port) = start_redis();
    let gateways: Vec<Gateway> = (0..3).map(|_| gateway(&dir, redis_port, &[])).collect();
    for g in &gateways {
        store_up(g, 1);
    }
    let (port, received) = upstream();
    let target = format!("api.mailer.test:{port}");

    // Two pushers per replica, each opening tunnels and pushing until the
    // gateway refuses a new tunnel (the limit is spent fleet-wide).
    let started = Instant::now();
    let mut pushers = Vec::new();
    for g in &gateways {
        for _ in 0..2 {
            let (proxy, target) = (g.proxy.clone(), target.clone());
            pushers.push(std::thread::spawn(move || {
                let mut sent = 0;
                let mut refused = String::new();
                for _ in 0..50 {
                    match tunnel(&proxy, &target) {
                        (_, Some(s)) => sent += push(s, 4 * 1024 * 1024),
                        (status, None) => {
                            refused = status;
                            break;
                        }
                    }
                }
                (sent, refused)
            }));
        }
    }
    let mut offered = 0;
    for p in pushers {
        let (sent, refused) = p.join().unwrap();
        offered += sent;
        assert!(
            refused.contains("403"),
            "a pusher was never refused: {refused:?}"
        );
    }
    // Let the last bytes in flight arrive.
    std::thread::sleep(Duration::from_millis(500));
    let through = received.load(Ordering::Relaxed);
    println!(
        "3 replicas, 6 pushers: {offered} bytes offered, {through} let through in {:.1} s; limit {LIMIT}, bound {}",
        started.elapsed().as_secs_f64(),
        LIMIT + 3 * BATCH
    );
    assert!(
        through <= LIMIT + 3 * BATCH,
        "{through} > limit + one batch per replica"
    );
    assert!(
        through >= LIMIT - 3 * BATCH,
        "{through}: the limit was not reached"
    );

    // Fresh gateways against a fresh Redis: one with the default (closed:
    // the vendor receives personal data), one failing open.
    drop(gateways);
    drop(redis);
    let (redis, redis_port) = start_redis();
    let closed = gateway(&dir, redis_port, &[]);
    let open = gateway(&dir, redis_port, &["--quota-fail", "open"]);
    for g in [&closed, &open] {
        store_up(g, 1);
        let (status, s) = tunnel(&g.proxy, &target);
        assert!(status.contains(" 200"), "{status}");
        assert!(push(s.unwrap(), 256 * 1024) >= 256 * 1024);
    }
    drop(redis);
    for g in [&closed, &open] {
        store_up(g, 0);
    }
    let (status, _) = tunnel(&closed.proxy, &target);
    assert!(status.contains("403"), "closed: {status}");
    let (status, s) = tunnel(&open.proxy, &target);
    assert!(status.contains(" 200"), "open: {status}");
    assert!(push(s.unwrap(), 256 * 1024) >= 256 * 1024);
    std::thread::sleep(Duration::from_millis(300));
    assert!(metric(&open.admin, "cordon_gateway_quota_unshared_bytes_total") > 0);
    for g in [&closed, &open] {
        let log = g.log.lock().unwrap().clone();
        assert!(
            log.contains("unreachable"),
            "the log says Redis is down:\n{log}"
        );
    }
}

/// Push through `proxy` until a tunnel is refused; bytes written.
fn push_until_refused(proxy: &str, target: &str) -> u64 {
    let mut sent = 0;
    for _ in 0..20 {
        match tunnel(proxy, target) {
            (_, Some(s)) => sent += push(s, 4 * 1024 * 1024),
            (status, None) => {
                assert!(status.contains("403"), "{status}");
                return sent;
            }
        }
    }
    panic!("never refused");
}

#[test]
fn the_edge_of_a_window_is_no_second_helping() {
    // 1 MiB per 4 s windows aligned to the epoch: spent just before a
    // window ends, then asked again just after it began. Fixed windows
    // would hand out another MiB at once; the two-window estimate still
    // counts nearly all of the previous window.
    let dir = temp_dir("quota-redis-edge");
    std::fs::write(
        dir.join("policy.yaml"),
        POLICY.replace(
            "limit: {bytes_out: 10MiB, per: 1h}",
            "limit: {bytes_out: 1MiB, per: 4s}",
        ),
    )
    .unwrap();
    std::fs::write(dir.join("hosts"), "127.0.0.2 api.mailer.test\n").unwrap();
    let (_redis, redis_port) = start_redis();
    let g = gateway(&dir, redis_port, &[]);
    store_up(&g, 1);
    let (port, received) = upstream();
    let target = format!("api.mailer.test:{port}");
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    // Into the last second of a window.
    while now_ms() % 4000 < 2800 || now_ms() % 4000 > 3000 {
        std::thread::sleep(Duration::from_millis(10));
    }
    push_until_refused(&g.proxy, &target);
    std::thread::sleep(Duration::from_millis(300));
    let first = received.load(Ordering::Relaxed);
    // Just after the next window began.
    while now_ms() % 4000 > 150 {
        std::thread::sleep(Duration::from_millis(10));
    }
    push_until_refused(&g.proxy, &target);
    std::thread::sleep(Duration::from_millis(300));
    let second = received.load(Ordering::Relaxed) - first;
    println!("window edge: {first} bytes before it, {second} just after it (limit 1 MiB)");
    assert!(first >= 1024 * 1024 - BATCH, "{first}");
    assert!(second <= 256 * 1024, "{second}: the edge doubled the limit");
}
