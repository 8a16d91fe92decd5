//! The gateway's per-connection work before any byte is relayed: parsing
//! the target, reading the ClientHello's server name, and the SSRF guard.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use cordon_gateway::{guard, sni, target};
use criterion::{Criterion, criterion_group, criterion_main};

fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("api.mailer.example.com").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

fn bench(c: &mut Criterion) {
    c.bench_function("parse CONNECT target", |b| {
        b.iter(|| target::parse_authority(black_box("API.Mailer.Example.COM.:443"), None))
    });
    c.bench_function("parse IPv6 literal target", |b| {
        b.iter(|| target::parse_authority(black_box("[2606:2800:220:1::1]:443"), None))
    });
    let hello = client_hello();
    c.bench_function("read ClientHello server name", |b| {
        b.iter(|| sni::parse(black_box(&hello)))
    });
    let addrs: Vec<std::net::IpAddr> = [
        "93.184.216.34",
        "10.0.0.5",
        "169.254.169.254",
        "2606:2800:220:1::1",
        "64:ff9b::a00:1",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    c.bench_function("SSRF guard, 5 addresses", |b| {
        b.iter(|| {
            addrs
                .iter()
                .filter(|a| guard::forbidden(black_box(**a)).is_some())
                .count()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
