//! The gateway's proxy modes over real sockets: CONNECT with real TLS to an
//! upstream with its own CA, absolute-form HTTP with keep-alive, domain
//! fronting, transparent TLS and HTTP, client certificates and tokens, the
//! decision log, metrics and limits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use cordon_flow::sources::cordon::gateway::GatewayEvent;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// TLS over an open tunnel to `name`, one line sent and its answer read.
async fn tls_line(pki: &Pki, stream: TcpStream, name: &str) -> std::io::Result<String> {
    let connector = tokio_rustls::TlsConnector::from(pki.client_config(None));
    let server = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut tls = connector.connect(server, stream).await?;
    tls.write_all(b"ping\n").await?;
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    Ok(String::from_utf8_lossy(&buf[..n]).to_string())
}

async fn wait_for_records(
    gw: &Running,
    n: usize,
) -> Vec<cordon_flow::sources::cordon::gateway::GatewayRecord> {
    for _ in 0..100 {
        let r = gw.records();
        if r.len() >= n {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.records()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_tunnels_real_tls_and_logs_both_records() {
    let pki = Pki::new();
    let (upstream, seen) = tls_upstream(&pki, &["api.mailer.test"]).await;
    let dir = scratch("connect");
    let gw = start(config(&dir, "1GiB")).await;
    let target = format!("api.mailer.test:{}", upstream.port());
    let (stream, status, headers) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["x-cordon-decision"],
        "allow; rule=notifier-to-mailer; reason=rule"
    );
    let answer = tls_line(&pki, stream, "api.mailer.test").await.unwrap();
    assert_eq!(answer, "tls:ping\n");
    assert_eq!(seen.connections.load(Ordering::Relaxed), 1);
    let records = wait_for_records(&gw, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let (decision, close) = (&records[0], &records[1]);
    assert_eq!(decision.event, GatewayEvent::Decision);
    assert_eq!(close.event, GatewayEvent::Close);
    assert_eq!(decision.conn_id, close.conn_id);
    assert_eq!(close.identity.as_deref(), Some("notifier-1"));
    assert_eq!(close.identity_source, "address");
    assert_eq!(close.src_groups, ["notifier"]);
    assert!(close.dst_groups.contains(&"email-vendor".to_string()));
    assert_eq!(close.sni.as_deref(), Some("api.mailer.test"));
    assert_eq!(close.rule.as_deref(), Some("notifier-to-mailer"));
    assert_eq!(close.flow.hostname.as_deref(), Some("api.mailer.test"));
    assert_eq!(close.flow.dst_ip.to_string(), UPSTREAM);
    assert_eq!(close.flow.src_ip.to_string(), NOTIFIER);
    assert!(
        close.flow.bytes_out > 100 && close.flow.bytes_in > 100,
        "{close:?}"
    );
    assert!(close.dns_ms.is_some() && close.connect_ms.is_some() && close.duration_ms.is_some());
    assert_eq!(close.status, 200);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_name_other_than_the_connect_host_is_domain_fronting() {
    let pki = Pki::new();
    let (upstream, _) = tls_upstream(&pki, &["api.mailer.test", "evil.example.com"]).await;
    let dir = scratch("fronting");
    let gw = start(config(&dir, "1GiB")).await;
    let port = upstream.port();
    // CONNECT to the vendor, then a ClientHello for another name.
    let (stream, status, _) =
        connect_via(gw.proxy(), NOTIFIER, &format!("api.mailer.test:{port}"), "").await;
    assert_eq!(status, 200);
    assert!(tls_line(&pki, stream, "evil.example.com").await.is_err());
    // CONNECT to the vendor's address, then a ClientHello naming a host.
    let (stream, status, _) =
        connect_via(gw.proxy(), NOTIFIER, &format!("127.0.0.2:{port}"), "").await;
    assert_eq!(status, 200);
    assert!(tls_line(&pki, stream, "api.mailer.test").await.is_err());
    let records = wait_for_records(&gw, 4).await;
    let closes: Vec<_> = records
        .iter()
        .filter(|r| r.event == GatewayEvent::Close)
        .collect();
    assert_eq!(closes.len(), 2);
    for c in closes {
        assert_eq!(c.reason, "domain-fronting", "{c:?}");
        assert_eq!(c.verdict, cordon_core::Verdict::Deny);
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_http_with_keep_alive_strips_identity_and_forged_headers() {
    let (upstream, seen) = http_upstream(UPSTREAM).await;
    let dir = scratch("http");
    let gw = start(config(&dir, "1GiB")).await;
    let mut s = connect_from(NOTIFIER, gw.proxy()).await;
    let host = format!("api.mailer.test:{}", upstream.port());
    for i in 0..3 {
        let req = format!(
            "POST http://{host}/upload/{i} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 10.0.0.1\r\nX-Cordon-Identity: admin\r\nForwarded: for=1.2.3.4\r\nX-Spiffe-Id: spiffe://acme.test/admin\r\nContent-Length: 5\r\n\r\nhello"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let (status, headers, _) = read_head(&mut s).await;
        assert_eq!(status, 200);
        assert_eq!(
            headers["x-cordon-decision"],
            "allow; rule=notifier-to-mailer; reason=rule"
        );
        let len: usize = headers["content-length"].parse().unwrap();
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.unwrap();
        assert_eq!(body, b"got 5");
    }
    let sent = seen.headers.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    // Each request was decided on its own, and the upstream connection was
    // kept alive between them.
    assert_eq!(seen.connections.load(Ordering::Relaxed), 1);
    for headers in &sent {
        for (k, _) in headers {
            assert!(
                !matches!(
                    k.as_str(),
                    "x-forwarded-for" | "forwarded" | "x-spiffe-id" | "proxy-authorization"
                ) && !k.starts_with("x-cordon-"),
                "{k} reached the upstream"
            );
        }
        assert!(headers.iter().any(|(k, v)| k == "host" && *v == host));
    }
    // A denied request on the same connection.
    s.write_all(b"GET http://evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n")
        .await
        .unwrap();
    let (status, headers, _) = read_head(&mut s).await;
    assert_eq!(status, 403);
    assert_eq!(headers["x-cordon-decision"], "deny; reason=default");
    let records = wait_for_records(&gw, 8).await;
    let closes: Vec<_> = records
        .iter()
        .filter(|r| r.event == GatewayEvent::Close && r.mode == "http")
        .collect();
    assert_eq!(closes.len(), 4);
    assert!(
        closes
            .iter()
            .filter(|c| c.verdict == cordon_core::Verdict::Allow)
            .all(|c| c.flow.bytes_out == 5 && c.flow.bytes_in == 5)
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_tls_decides_on_the_server_name_and_replays_the_hello() {
    let pki = Pki::new();
    let (upstream, seen) = tls_upstream(&pki, &["api.mailer.test", "evil.test"]).await;
    let dir = scratch("transparent");
    let mut config = config(&dir, "1GiB");
    config.listen.clear();
    config.transparent_tls = Some("127.0.0.1:0".parse().unwrap());
    config.upstream_tls_port = upstream.port();
    let gw = start(config).await;
    let stream = connect_from(NOTIFIER, gw.addrs[0]).await;
    assert_eq!(
        tls_line(&pki, stream, "api.mailer.test").await.unwrap(),
        "tls:ping\n"
    );
    let stream = connect_from(NOTIFIER, gw.addrs[0]).await;
    assert!(tls_line(&pki, stream, "evil.test").await.is_err());
    assert_eq!(seen.connections.load(Ordering::Relaxed), 1);
    let records = wait_for_records(&gw, 4).await;
    let denied = records
        .iter()
        .find(|r| r.sni.as_deref() == Some("evil.test"))
        .unwrap();
    assert_eq!(
        (denied.verdict.as_str(), denied.reason.as_str()),
        ("deny", "default")
    );
    assert!(records.iter().all(|r| r.mode == "transparent-tls"));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_http_decides_on_host() {
    let (upstream, _) = http_upstream(UPSTREAM).await;
    let dir = scratch("transparent-http");
    let mut config = config(&dir, "1GiB");
    config.listen.clear();
    config.transparent_http = Some("127.0.0.1:0".parse().unwrap());
    config.upstream_http_port = upstream.port();
    let gw = start(config).await;
    let mut s = connect_from(NOTIFIER, gw.addrs[0]).await;
    s.write_all(b"GET /x HTTP/1.1\r\nHost: api.mailer.test\r\n\r\n")
        .await
        .unwrap();
    let (status, headers, _) = read_head(&mut s).await;
    assert_eq!(status, 200, "{headers:?}");
    let mut s = connect_from(NOTIFIER, gw.addrs[0]).await;
    s.write_all(b"GET /x HTTP/1.1\r\nHost: localhost.example.com\r\n\r\n")
        .await
        .unwrap();
    let (status, headers, _) = read_head(&mut s).await;
    assert_eq!(status, 403);
    assert_eq!(
        headers["x-cordon-decision"],
        "deny; rule=notifier-to-public; reason=ssrf"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_from_client_certificates_and_tokens() {
    let pki = Pki::new();
    let (upstream, _) = sink_upstream(UPSTREAM).await;
    let dir = scratch("identity");
    let (cert, key) = pki.leaf(&["gateway.test"], None, Some("gateway"));
    std::fs::write(dir.join("gw.pem"), cert).unwrap();
    std::fs::write(dir.join("gw.key"), key).unwrap();
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(
        dir.join("tokens"),
        "# token identity\nnotifier-token-0123456789 workload:notifier-1\napi-token-0123456789abc spiffe://acme.test/api\n",
    )
    .unwrap();
    let mut config = config(&dir, "1GiB");
    config.tokens = Some(dir.join("tokens"));
    config.tls = Some(cordon_gateway::TlsListen {
        addr: "127.0.0.1:0".parse().unwrap(),
        cert: dir.join("gw.pem"),
        key: dir.join("gw.key"),
        client_ca: dir.join("ca.pem"),
    });
    let gw = start(config).await;
    let target = format!("api.mailer.test:{}", upstream.port());
    // A token makes the intruder's address speak as the notifier.
    let (_s, status, _) = connect_via(
        gw.proxy(),
        INTRUDER,
        &target,
        "Proxy-Authorization: Bearer notifier-token-0123456789\r\n",
    )
    .await;
    assert_eq!(status, 200);
    let (_s, status, headers) = connect_via(
        gw.proxy(),
        INTRUDER,
        &target,
        "Proxy-Authorization: Bearer wrong-token-0123456789\r\n",
    )
    .await;
    assert_eq!(status, 407);
    assert!(headers.contains_key("proxy-authenticate"));
    let (_s, status, _) = connect_via(
        gw.proxy(),
        NOTIFIER,
        &target,
        "Proxy-Authorization: Bearer api-token-0123456789abc\r\n",
    )
    .await;
    assert_eq!(status, 403, "the token's identity replaces the address");
    // Client certificates: SPIFFE URI SAN, then CN.
    let tls_addr = gw.addrs[1];
    for (uri, cn, want) in [
        (Some("spiffe://acme.test/notifier"), None, 200),
        (None, Some("notifier-1"), 200),
        (Some("spiffe://acme.test/api"), Some("notifier-1"), 403),
    ] {
        let client = pki.leaf(&[], uri, cn);
        let connector = tokio_rustls::TlsConnector::from(pki.client_config(Some(client)));
        let tcp = connect_from(INTRUDER, tls_addr).await;
        let server = rustls_pki_types::ServerName::try_from("gateway.test").unwrap();
        let mut tls = connector.connect(server, tcp).await.unwrap();
        tls.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 512];
        let n = tls.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {want}")),
            "{uri:?} {cn:?}: {head}"
        );
    }
    // Without a client certificate the handshake fails.
    let connector = tokio_rustls::TlsConnector::from(pki.client_config(None));
    let tcp = connect_from(NOTIFIER, tls_addr).await;
    let server = rustls_pki_types::ServerName::try_from("gateway.test").unwrap();
    let refused = match connector.connect(server, tcp).await {
        Err(_) => true,
        Ok(mut tls) => {
            let _ = tls.write_all(b"CONNECT a:1 HTTP/1.1\r\n\r\n").await;
            let mut buf = [0u8; 16];
            !matches!(tls.read(&mut buf).await, Ok(n) if n > 0)
        }
    };
    assert!(refused);
    let records = wait_for_records(&gw, 12).await;
    assert!(records.iter().any(|r| r.identity_source == "certificate"
        && r.identity.as_deref() == Some("spiffe://acme.test/notifier")));
    assert!(
        records
            .iter()
            .any(|r| r.identity_source == "token" && r.identity.as_deref() == Some("notifier-1"))
    );
    assert!(
        !std::fs::read_to_string(dir.join("decisions.jsonl"))
            .unwrap()
            .contains("token-0123456789"),
        "a token reached the log"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_limits_metrics_and_health() {
    let (upstream, _) = sink_upstream(UPSTREAM).await;
    let dir = scratch("limits");
    let mut config = config(&dir, "1GiB");
    config.limits.max_per_client = 2;
    let gw = start(config).await;
    // Nothing listens on 127.0.0.2:1: refused → 502.
    let (s, status, headers) = connect_via(gw.proxy(), NOTIFIER, "api.mailer.test:1", "").await;
    assert_eq!(status, 502);
    assert!(headers["x-cordon-decision"].ends_with("reason=connect"));
    // Its connection stays open (keep-alive) and holds a place until closed.
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Two open tunnels from one client, then a third connection: 503.
    let target = format!("api.mailer.test:{}", upstream.port());
    let (_a, sa, _) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
    let (_b, sb, _) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
    assert_eq!((sa, sb), (200, 200));
    let mut c = connect_from(NOTIFIER, gw.proxy()).await;
    let (status, headers, _) = read_head(&mut c).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    // Another client is not affected.
    let (_d, sd, _) = connect_via(gw.proxy(), API, &target, "").await;
    assert_eq!(sd, 403);
    // Admin endpoints.
    let admin = gw.addrs[gw.addrs.len() - 1];
    let metrics = http_get(admin, "/metrics").await;
    assert!(metrics.contains("cordon_gateway_decisions_total{verdict=\"allow\",rule=\"notifier-to-mailer\",reason=\"rule\"} 2"), "{metrics}");
    assert!(
        metrics.contains("cordon_gateway_active_tunnels 2"),
        "{metrics}"
    );
    assert!(metrics.contains("cordon_gateway_overload_total 1"));
    assert!(metrics.contains("cordon_gateway_resolve_seconds_count"));
    assert!(
        http_get(admin, "/healthz")
            .await
            .contains("ok policy=gateway-test")
    );
    gw.shutdown().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_idle_tunnels_and_unanswered_connects() {
    let (upstream, _) = sink_upstream(UPSTREAM).await;
    // An upstream whose accept queue is full: new connections get no answer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stuck = socket.listen(1).unwrap();
    let stuck_port = stuck.local_addr().unwrap().port();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        if let Ok(Ok(c)) = tokio::time::timeout(
            Duration::from_millis(300),
            s.connect(stuck.local_addr().unwrap()),
        )
        .await
        {
            fillers.push(c);
        }
    }
    let dir = scratch("edges");
    let mut config = config(&dir, "1GiB");
    config.limits.idle_timeout = Duration::from_secs(1);
    config.limits.connect_timeout = Duration::from_secs(1);
    let gw = start(config).await;
    // A request head over the limit is refused by the parser.
    let mut s = connect_from(NOTIFIER, gw.proxy()).await;
    let big = format!(
        "CONNECT api.mailer.test:443 HTTP/1.1\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let (status, _, _) = read_head(&mut s).await;
    assert!(
        status == 431 || status == 400 || status == 0,
        "status {status}"
    );
    // A tunnel with nothing to say is closed after the idle timeout.
    let (mut t, status, _) = connect_via(
        gw.proxy(),
        NOTIFIER,
        &format!("api.mailer.test:{}", upstream.port()),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), t.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // An upstream that never answers the handshake: 504.
    let (_s, status, headers) = connect_via(
        gw.proxy(),
        NOTIFIER,
        &format!("api.mailer.test:{stuck_port}"),
        "",
    )
    .await;
    assert_eq!(status, 504, "{headers:?}");
    assert!(headers["x-cordon-decision"].ends_with("reason=connect"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        gw.records()
            .iter()
            .any(|r| r.event == GatewayEvent::Close && r.reason == "idle")
    );
    drop(fillers);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_and_a_server_that_speaks_first() {
    // An upstream that greets first, like SMTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                s.write_all(b"220 mail.mailer.test ESMTP\r\n")
                    .await
                    .unwrap();
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let _ = s.write_all(&buf[..n]).await;
            });
        }
    });
    let dir = scratch("server-first");
    let mut config = config(&dir, "1GiB");
    config.limits.hello_timeout = Duration::from_millis(300);
    let gw = start(config).await;
    let (mut s, status, _) = connect_via(
        gw.proxy(),
        NOTIFIER,
        &format!("smtp.mailer.test:{port}"),
        "",
    )
    .await;
    assert_eq!(status, 502, "smtp.mailer.test is not in the hosts file");
    drop(s);
    let (s2, status, _) =
        connect_via(gw.proxy(), NOTIFIER, &format!("api.mailer.test:{port}"), "").await;
    assert_eq!(status, 200);
    s = s2;
    let mut banner = vec![0u8; 28];
    s.read_exact(&mut banner).await.unwrap();
    assert!(banner.starts_with(b"220 "));
    // Silent for longer than the hello timeout: the tunnel stays open.
    tokio::time::sleep(Duration::from_millis(800)).await;
    s.write_all(b"EHLO notifier\r\n").await.unwrap();
    let mut echo = vec![0u8; 15];
    s.read_exact(&mut echo).await.unwrap();
    assert_eq!(echo, b"EHLO notifier\r\n");
    gw.shutdown().await;
}
