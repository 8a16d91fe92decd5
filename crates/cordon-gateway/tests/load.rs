//! The gateway under pressure: egress limits across parallel tunnels,
//! slowloris clients, and policy reloads while tunnels carry traffic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cordon_flow::sources::cordon::gateway::GatewayEvent;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Send `chunk` repeatedly until `total` bytes went or the tunnel closed;
/// returns the bytes written.
async fn upload(stream: &mut TcpStream, total: usize, chunk: usize) -> usize {
    let data = vec![b'x'; chunk];
    let mut sent = 0;
    let mut acks = vec![0u8; 4096];
    while sent < total {
        if stream.write_all(&data).await.is_err() {
            break;
        }
        sent += chunk;
        // Each chunk is acknowledged by the sink; a closed tunnel reads 0.
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut acks)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_limit_is_shared_by_parallel_tunnels_and_closes_them() {
    let (upstream, seen) = sink_upstream(UPSTREAM).await;
    let dir = scratch("quota");
    let gw = start(config(&dir, "1MiB")).await;
    let target = format!("api.mailer.test:{}", upstream.port());
    // All four tunnels open before any sends.
    let mut open = Vec::new();
    for _ in 0..4 {
        let (s, status, _) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
        assert_eq!(status, 200);
        open.push(s);
    }
    let mut tasks = Vec::new();
    for mut s in open {
        tasks.push(tokio::spawn(async move {
            upload(&mut s, 2 << 20, 16 * 1024).await
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap();
    }
    let received = seen.bytes.load(Ordering::Relaxed);
    // Four tunnels could have sent 8 MiB; the shared 1 MiB limit stopped
    // them all once it was reached (exactly at it, or shortly after).
    assert!(received >= 1 << 20, "received {received}");
    assert!(received < (1 << 20) + 4 * 64 * 1024, "received {received}");
    assert!(sent < 4 * (2 << 20));
    // New tunnels under the spent limit are refused.
    let (_s, status, headers) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
    assert_eq!(status, 403);
    assert_eq!(
        headers["x-cordon-decision"],
        "deny; rule=notifier-to-mailer; reason=quota"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let records = gw.records();
    let quota_closes = records
        .iter()
        .filter(|r| r.event == GatewayEvent::Close && r.reason == "quota")
        .count();
    assert_eq!(quota_closes, 5, "4 tunnels closed and 1 refused");
    let metrics = gw.shared.metrics.render(&gw.shared.meters);
    assert!(metrics.contains("cordon_gateway_limit_max_bytes{rule=\"notifier-to-mailer\",from=\"notifier\",to=\"email-vendor\"} 1048576"), "{metrics}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_lets_a_spent_limit_pass_and_records_would_deny() {
    let (upstream, seen) = sink_upstream(UPSTREAM).await;
    let dir = scratch("quota-audit");
    let mut config = config(&dir, "64KiB");
    let text = std::fs::read_to_string(&config.policy)
        .unwrap()
        .replace("  default: deny\n", "  default: deny\n  mode: audit\n");
    std::fs::write(&config.policy, text).unwrap();
    config.limits.drain = Duration::from_millis(200);
    let gw = start(config).await;
    let target = format!("api.mailer.test:{}", upstream.port());
    let (mut s, _, _) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
    assert_eq!(upload(&mut s, 256 * 1024, 16 * 1024).await, 256 * 1024);
    assert_eq!(seen.bytes.load(Ordering::Relaxed), 256 * 1024);
    let (_s, status, headers) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["x-cordon-decision"],
        "would-deny; rule=notifier-to-mailer; reason=quota"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_cannot_starve_others() {
    let (upstream, _) = sink_upstream(UPSTREAM).await;
    let dir = scratch("slowloris");
    let mut config = config(&dir, "1GiB");
    config.limits.header_timeout = Duration::from_secs(3);
    let gw = start(config).await;
    let proxy = gw.proxy();
    // 200 clients each sending one header byte per second.
    let mut slow = Vec::new();
    for i in 0..200 {
        let src = format!("127.0.1.{}", i % 250 + 1);
        slow.push(tokio::spawn(async move {
            let mut s = connect_from(&src, proxy).await;
            let started = Instant::now();
            for b in b"CONNECT api.mailer.test:443 HTTP/1.1\r\nHost: x\r\n"
                .iter()
                .cycle()
            {
                if s.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                let mut probe = [0u8; 1];
                if let Ok(Ok(0)) =
                    tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await
                {
                    break;
                }
                if started.elapsed() > Duration::from_secs(20) {
                    break;
                }
            }
            started.elapsed()
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile, a normal client is served at once, again and again.
    let target = format!("api.mailer.test:{}", upstream.port());
    for _ in 0..20 {
        let t = Instant::now();
        let (_s, status, _) = connect_via(proxy, NOTIFIER, &target, "").await;
        assert_eq!(status, 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "served in {:?}",
            t.elapsed()
        );
    }
    // And the slow clients are cut off at the header timeout.
    for s in slow {
        let lasted = s.await.unwrap();
        assert!(
            lasted < Duration::from_secs(8),
            "a slow client lasted {lasted:?}"
        );
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_keeps_allowed_tunnels_and_cuts_revoked_ones() {
    let (upstream, _) = sink_upstream(UPSTREAM).await;
    let dir = scratch("reload");
    let gw = start(config(&dir, "1GiB")).await;
    let target = format!("api.mailer.test:{}", upstream.port());
    // 20 tunnels that keep sending while the policy changes under them.
    let mut tunnels = Vec::new();
    for _ in 0..20 {
        let (s, status, _) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
        assert_eq!(status, 200);
        tunnels.push(s);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for mut s in tunnels {
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let mut rounds = 0u32;
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(b"data").await.is_err() {
                    return (rounds, false);
                }
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => rounds += 1,
                    _ => return (rounds, false),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (rounds, true)
        }));
    }
    let policy = dir.join("policy.yaml");
    let original = std::fs::read_to_string(&policy).unwrap();
    // 1. An unrelated change: every tunnel survives.
    std::fs::write(&policy, original.replace("  rules:\n", "  rules:\n    - {name: api-to-public, from: [api], to: [public-sites], action: allow}\n")).unwrap();
    gw.shared.reload().unwrap();
    // 2. An invalid policy: refused, the previous one stays.
    std::fs::write(
        &policy,
        original.replace("to: [email-vendor]", "to: [no-such-group]"),
    )
    .unwrap();
    assert!(gw.shared.reload().is_err());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_s, status, _) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
    assert_eq!(status, 200, "the last good policy is still in force");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let (rounds, alive) = w.await.unwrap();
        assert!(
            alive && rounds > 5,
            "a tunnel was dropped by a reload ({rounds} rounds)"
        );
    }
    assert_eq!(gw.shared.metrics.reload_failures.load(Ordering::Relaxed), 1);
    // 3. Revoking the rule cuts open tunnels at once.
    let (mut open, status, _) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
    assert_eq!(status, 200);
    std::fs::write(
        &policy,
        original.replace(
            "    - name: notifier-to-mailer\n      from: [notifier]\n",
            "    - name: notifier-to-mailer\n      from: [api]\n",
        ),
    )
    .unwrap();
    gw.shared.reload().unwrap();
    let mut buf = [0u8; 8];
    let cut = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buf)).await;
    assert!(matches!(cut, Ok(Ok(0)) | Ok(Err(_))), "{cut:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        gw.records()
            .iter()
            .any(|r| r.reason == "policy-reload" && r.verdict == cordon_core::Verdict::Deny)
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_file_changing_is_picked_up_without_a_signal() {
    let (upstream, _) = sink_upstream(UPSTREAM).await;
    let dir = scratch("watch");
    let gw = start(config(&dir, "1GiB")).await;
    let target = format!("api.mailer.test:{}", upstream.port());
    let (_s, status, _) = connect_via(gw.proxy(), API, &target, "").await;
    assert_eq!(status, 403);
    let policy = dir.join("policy.yaml");
    let text = std::fs::read_to_string(&policy).unwrap().replace(
        "from: [notifier]\n      to: [email-vendor]",
        "from: [notifier, api]\n      to: [email-vendor]",
    );
    std::fs::write(&policy, text).unwrap();
    let mut status = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        status = connect_via(gw.proxy(), API, &target, "").await.1;
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200);
    gw.shutdown().await;
}
