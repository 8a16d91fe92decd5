use std::sync::Arc;

use super::{Hello, parse};

/// A real ClientHello from rustls for `name`.
fn client_hello(name: &str) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let server = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

#[test]
fn reads_the_server_name_of_a_real_hello() {
    let hello = client_hello("api.vendor.test");
    assert_eq!(
        parse(&hello),
        Hello::Parsed {
            server_name: Some("api.vendor.test".into()),
            encrypted_hello: false
        }
    );
    // Every strict prefix is incomplete, never an error or a wrong answer.
    for n in 0..hello.len() {
        assert_eq!(parse(&hello[..n]), Hello::Incomplete, "prefix {n}");
    }
}

#[test]
fn an_ip_target_sends_no_server_name() {
    let hello = client_hello("127.0.0.2");
    assert_eq!(
        parse(&hello),
        Hello::Parsed {
            server_name: None,
            encrypted_hello: false
        }
    );
}

#[test]
fn hello_split_across_records_is_joined() {
    let hello = client_hello("split.example.com");
    let body = &hello[5..];
    let (a, b) = body.split_at(40);
    let mut split = Vec::new();
    for part in [a, b] {
        split.extend_from_slice(&[22, 3, 1]);
        split.extend_from_slice(&(part.len() as u16).to_be_bytes());
        split.extend_from_slice(part);
    }
    assert_eq!(
        parse(&split),
        Hello::Parsed {
            server_name: Some("split.example.com".into()),
            encrypted_hello: false
        }
    );
}

#[test]
fn other_protocols_and_lies() {
    assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Hello::NotTls);
    assert_eq!(parse(b"SSH-2.0-OpenSSH"), Hello::NotTls);
    assert!(matches!(parse(&[22, 3, 1, 0, 0]), Hello::Malformed(_)));
    assert!(matches!(
        parse(&[22, 3, 1, 0xff, 0xff]),
        Hello::Malformed(_)
    ));
    // A handshake that is not a ClientHello.
    assert!(matches!(
        parse(&[22, 3, 3, 0, 4, 2, 0, 0, 0]),
        Hello::Malformed(_)
    ));
    // A ClientHello whose inner lengths run past its end.
    let mut hello = client_hello("x.example");
    hello[5 + 4 + 34] = 0xff; // session id length
    assert!(matches!(parse(&hello), Hello::Malformed(_)));
}
