//! The SSRF guard and target normalisation, as a table: each input is a
//! CONNECT target from a client address, decided by a gateway with the
//! real policy engine, the real hosts file and a real DNS server. A subset
//! also goes through real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::net::IpAddr;

use cordon_gateway::decide::decide;
use cordon_gateway::identity::Identity;
use cordon_gateway::target::parse_authority;
use support::*;

/// What a target must get.
#[derive(Debug)]
enum Expect {
    /// Allowed, dialling exactly these addresses.
    Allow(&'static [&'static str]),
    /// Refused for this reason with this status.
    Refuse(&'static str, u16),
}
use Expect::{Allow, Refuse};

const P: &str = "{port}";

fn table() -> Vec<(&'static str, &'static str, Expect)> {
    vec![
        // Names and their spellings.
        (NOTIFIER, "api.mailer.test:{port}", Allow(&["127.0.0.2"])),
        (NOTIFIER, "API.MAILER.TEST:{port}", Allow(&["127.0.0.2"])),
        (NOTIFIER, "api.mailer.test.:{port}", Allow(&["127.0.0.2"])),
        (NOTIFIER, "Api.Mailer.Test.:{port}", Allow(&["127.0.0.2"])),
        (
            NOTIFIER,
            "upstream.mailer.test:{port}",
            Allow(&["127.0.0.2"]),
        ),
        (
            NOTIFIER,
            "public.example.com:443",
            Allow(&["93.184.216.34"]),
        ),
        (
            NOTIFIER,
            "PUBLIC.example.COM.:443",
            Allow(&["93.184.216.34"]),
        ),
        (
            NOTIFIER,
            "public6.example.com:443",
            Allow(&["2606:2800:220:1::1"]),
        ),
        (
            NOTIFIER,
            "nat64pub.example.com:443",
            Allow(&["64:ff9b::5db8:d822"]),
        ),
        (NOTIFIER, "bücher.example:443", Allow(&["93.184.216.34"])),
        (NOTIFIER, "BÜCHER.example:443", Allow(&["93.184.216.34"])),
        (
            NOTIFIER,
            "xn--bcher-kva.example:443",
            Allow(&["93.184.216.34"]),
        ),
        // IP literals: judged by CIDR groups only.
        (NOTIFIER, "127.0.0.2:{port}", Allow(&["127.0.0.2"])),
        (NOTIFIER, "[::ffff:127.0.0.2]:{port}", Allow(&["127.0.0.2"])),
        (NOTIFIER, "[::ffff:7f00:2]:{port}", Allow(&["127.0.0.2"])),
        (NOTIFIER, "127.0.0.3:{port}", Refuse("default", 403)),
        (NOTIFIER, "127.0.0.1:{port}", Refuse("default", 403)),
        (NOTIFIER, "[::1]:443", Refuse("default", 403)),
        (NOTIFIER, "169.254.169.254:80", Refuse("default", 403)),
        (NOTIFIER, "[fd00:ec2::254]:80", Refuse("default", 403)),
        (NOTIFIER, "[64:ff9b::7f00:2]:{port}", Refuse("default", 403)),
        (NOTIFIER, "93.184.216.34:443", Refuse("default", 403)),
        // Allowed names that resolve where the guard refuses to go.
        (NOTIFIER, "localhost.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "mixed.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "internal.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "meta.example.com:80", Refuse("ssrf", 403)),
        (NOTIFIER, "v6loop.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "mapped.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "nat64.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "sixtofour.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "teredo.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "meta6.example.com:80", Refuse("ssrf", 403)),
        (NOTIFIER, "cgnat.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "zero.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "mcast.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "bcast.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "doc.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "bench.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "reserved.example.com:443", Refuse("ssrf", 403)),
        (NOTIFIER, "ll6.example.com:443", Refuse("ssrf", 403)),
        // Odd IPv4 spellings are neither names nor addresses.
        (NOTIFIER, "2130706433:80", Refuse("bad-target", 400)),
        (NOTIFIER, "0177.0.0.1:80", Refuse("bad-target", 400)),
        (NOTIFIER, "0x7f.1:80", Refuse("bad-target", 400)),
        (NOTIFIER, "0x7f000001:80", Refuse("bad-target", 400)),
        (NOTIFIER, "127.1:80", Refuse("bad-target", 400)),
        (NOTIFIER, "127.0.0.1.:80", Refuse("bad-target", 400)),
        (NOTIFIER, "017700000001:80", Refuse("bad-target", 400)),
        (NOTIFIER, "1.2.3.0x4:80", Refuse("bad-target", 400)),
        // Ports.
        (NOTIFIER, "api.mailer.test", Refuse("bad-target", 400)),
        (NOTIFIER, "api.mailer.test:", Refuse("bad-target", 400)),
        (NOTIFIER, "api.mailer.test:0", Refuse("bad-target", 400)),
        (NOTIFIER, "api.mailer.test:65536", Refuse("bad-target", 400)),
        (NOTIFIER, "api.mailer.test:-1", Refuse("bad-target", 400)),
        (NOTIFIER, "api.mailer.test:+443", Refuse("bad-target", 400)),
        (NOTIFIER, "api.mailer.test:44a", Refuse("bad-target", 400)),
        (
            NOTIFIER,
            "api.mailer.test:443:443",
            Refuse("bad-target", 400),
        ),
        // Brackets and IPv6 forms.
        (NOTIFIER, "::1", Refuse("bad-target", 400)),
        (NOTIFIER, "[::1]", Refuse("bad-target", 400)),
        (NOTIFIER, "::1:443", Refuse("bad-target", 400)),
        (NOTIFIER, "[127.0.0.1]:80", Refuse("bad-target", 400)),
        (NOTIFIER, "[fe80::1%eth0]:80", Refuse("bad-target", 400)),
        (NOTIFIER, "[::1:443", Refuse("bad-target", 400)),
        // Names that are not names.
        (NOTIFIER, "", Refuse("bad-target", 400)),
        (NOTIFIER, "a..b.mailer.test:443", Refuse("bad-target", 400)),
        (
            NOTIFIER,
            "api.mailer.test@evil.test:443",
            Refuse("bad-target", 400),
        ),
        (
            NOTIFIER,
            "api.mailer.test%2eevil.test:443",
            Refuse("bad-target", 400),
        ),
        (
            NOTIFIER,
            "api.mailer.test\\.evil.test:443",
            Refuse("bad-target", 400),
        ),
        // Denied names are never looked up; unknown names fail in DNS.
        (NOTIFIER, "evil.test:443", Refuse("default", 403)),
        (
            NOTIFIER,
            "api.mailer.test.evil.test:443",
            Refuse("default", 403),
        ),
        (
            NOTIFIER,
            "mailer.test.evil.test:443",
            Refuse("default", 403),
        ),
        (NOTIFIER, "nxdomain.mailer.test:{port}", Refuse("dns", 502)),
        (NOTIFIER, "silent.mailer.test:{port}", Refuse("dns", 504)),
        (
            NOTIFIER,
            "dns-only.mailer.test:{port}",
            Allow(&["127.0.0.2"]),
        ),
        (
            NOTIFIER,
            "private-dns.mailer.test:{port}",
            Refuse("ssrf", 403),
        ),
        // Who asks matters.
        (API, "api.mailer.test:{port}", Refuse("default", 403)),
        (INTRUDER, "api.mailer.test:{port}", Refuse("default", 403)),
        (INTRUDER, "public.example.com:443", Refuse("default", 403)),
    ]
}

async fn world() -> (
    Running,
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<HashMap<String, usize>>>,
) {
    let (upstream, _) = sink_upstream(UPSTREAM).await;
    let names = HashMap::from([
        (
            "dns-only.mailer.test".to_string(),
            Answer::Rotate(vec!["127.0.0.2".parse().unwrap()]),
        ),
        (
            "private-dns.mailer.test".to_string(),
            Answer::Rotate(vec!["10.9.9.9".parse().unwrap()]),
        ),
        ("silent.mailer.test".to_string(), Answer::Silent),
        (
            "rebind.mailer.test".to_string(),
            Answer::Rotate(vec![
                "127.0.0.2".parse().unwrap(),
                "127.0.0.3".parse().unwrap(),
            ]),
        ),
    ]);
    let (dns, queries) = dns_server(names).await;
    let dir = scratch("ssrf");
    let mut config = config(&dir, "1GiB");
    config.dns = Some(dns);
    config.limits.dns_timeout = std::time::Duration::from_millis(500);
    (start(config).await, upstream, queries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_and_normalisation_table() {
    let (gw, upstream, queries) = world().await;
    let port = upstream.port().to_string();
    let cases = table();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (who, raw, expect) in &cases {
        let target = raw.replace(P, &port);
        let identity = Identity::by_address(who.parse().unwrap());
        let got = match parse_authority(&target, None) {
            Err(e) => (Vec::new(), "bad-target", 400, e.to_string()),
            Ok(t) => {
                let o = decide(&gw.shared, &identity, &t).await;
                let reason = if o.proceeds() { "allow" } else { o.reason };
                (o.addrs.clone(), reason, o.status, o.detail.clone())
            }
        };
        let ok = match expect {
            Allow(ips) => {
                let want: Vec<IpAddr> = ips.iter().map(|i| i.parse().unwrap()).collect();
                got.1 == "allow" && got.0 == want
            }
            Refuse(reason, status) => got.1 == *reason && got.2 == *status && got.0.is_empty(),
        };
        if !ok {
            failures.push(format!(
                "{who} CONNECT {target:?}: expected {expect:?}, got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Denied names were never sent to DNS (no leak of what was refused).
    let q = queries.lock().unwrap().clone();
    for name in [
        "evil.test",
        "api.mailer.test.evil.test",
        "mailer.test.evil.test",
    ] {
        assert!(!q.contains_key(name), "{name} was looked up: {q:?}");
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_through_real_sockets() {
    let (gw, upstream, _) = world().await;
    let port = upstream.port().to_string();
    let mut checked = 0;
    for (who, raw, expect) in table() {
        let target = raw.replace(P, &port);
        // Only targets hyper accepts as an authority reach the decision;
        // allowed ones must dial the local upstream, never the internet.
        let dial_ok = matches!(expect, Allow(ips) if ips == ["127.0.0.2"]);
        let refused = matches!(expect, Refuse(..));
        if target.is_empty() || target.contains(['%', '\\', '@', ' ']) || !(dial_ok || refused) {
            continue;
        }
        let (_stream, status, headers) = connect_via(gw.proxy(), who, &target, "").await;
        match expect {
            Allow(_) => {
                assert_eq!(status, 200, "{who} CONNECT {target}");
                assert!(headers["x-cordon-decision"].starts_with("allow; rule=notifier-to-mailer"));
            }
            Refuse(reason, code) => {
                // hyper itself answers 400 to request targets it cannot parse.
                if status == 400 && !headers.contains_key("x-cordon-decision") {
                    continue;
                }
                assert_eq!(status, code, "{who} CONNECT {target}: {headers:?}");
                // A DNS failure is not a policy verdict: the header keeps the
                // policy's word and names the reason.
                let d = &headers["x-cordon-decision"];
                let verdict = if matches!(code, 502 | 504) {
                    "allow"
                } else {
                    "deny"
                };
                assert!(
                    d.starts_with(verdict) && d.ends_with(&format!("reason={reason}")),
                    "{target}: {d}"
                );
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 50,
        "only {checked} cases reached the gateway's decision"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_changes_between_lookups_never_reaches_the_refused_address() {
    let (gw, upstream, _) = world().await;
    // A listener on the address the second answer points to: nothing may
    // ever connect to it.
    let trap = tokio::net::TcpListener::bind(("127.0.0.3", upstream.port()))
        .await
        .unwrap();
    let mut allowed = 0;
    let mut refused = 0;
    for _ in 0..10 {
        let target = format!("rebind.mailer.test:{}", upstream.port());
        let (_s, status, headers) = connect_via(gw.proxy(), NOTIFIER, &target, "").await;
        match status {
            200 => allowed += 1,
            403 => {
                assert!(headers["x-cordon-decision"].ends_with("reason=ssrf"));
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        allowed > 0 && refused > 0,
        "allowed {allowed}, refused {refused}"
    );
    let probe = tokio::time::timeout(std::time::Duration::from_millis(200), trap.accept()).await;
    assert!(
        probe.is_err(),
        "the gateway connected to the rebound address"
    );
    gw.shutdown().await;
}
