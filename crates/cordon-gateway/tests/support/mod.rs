//! A real world around the gateway for tests: a CA and certificates, an
//! HTTP upstream, a TLS upstream, a TCP sink, a DNS server, and the gateway
//! itself on loopback.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cordon_gateway::{Config, Gateway, Shared};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

pub const NOTIFIER: &str = "127.0.0.10";
pub const API: &str = "127.0.0.11";
pub const INTRUDER: &str = "127.0.0.12";
pub const UPSTREAM: &str = "127.0.0.2";

/// A fresh directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cordon-gw-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The test policy: the notifier may reach the email vendor (by name or its
/// one address, 127.0.0.2) with an egress limit, and public sites.
pub fn policy(limit: &str) -> String {
    format!(
        r#"apiVersion: cordon/v1
kind: Policy
metadata: {{name: gateway-test}}
spec:
  default: deny
  inventory:
    - {{name: notifier-1, ips: [{NOTIFIER}], labels: {{app: notifier}}}}
    - {{name: api-1, ips: [{API}], labels: {{app: api}}}}
    - {{name: intruder-1, ips: [{INTRUDER}], labels: {{app: intruder}}}}
  groups:
    notifier:
      labels: {{app: notifier}}
      spiffe: [spiffe://acme.test/notifier]
    api: {{labels: {{app: api}}}}
    email-vendor:
      external: true
      fqdns: ["*.mailer.test", mailer.test]
      cidrs: [{UPSTREAM}/32]
      vendor: {{name: MailCo, data: [email, name]}}
    public-sites:
      fqdns: ["*.example.com", xn--bcher-kva.example]
  rules:
    - name: notifier-to-mailer
      from: [notifier]
      to: [email-vendor]
      action: allow
      limit: {{bytes_out: {limit}, per: 1h}}
    - {{name: notifier-to-public, from: [notifier], to: [public-sites], action: allow}}
"#
    )
}

pub const HOSTS: &str = "\
127.0.0.2 api.mailer.test upstream.mailer.test
93.184.216.34 public.example.com
93.184.216.34 mixed.example.com
10.0.0.5 mixed.example.com
10.1.2.3 internal.example.com
169.254.169.254 meta.example.com
127.0.0.1 localhost.example.com
::1 v6loop.example.com
::ffff:127.0.0.1 mapped.example.com
64:ff9b::a00:1 nat64.example.com
64:ff9b::5db8:d822 nat64pub.example.com
2002:7f00:1:: sixtofour.example.com
2001:0:4136:e378::1 teredo.example.com
fd00:ec2::254 meta6.example.com
100.64.0.1 cgnat.example.com
0.0.0.0 zero.example.com
224.0.0.1 mcast.example.com
255.255.255.255 bcast.example.com
192.0.2.1 doc.example.com
198.18.0.1 bench.example.com
240.0.0.1 reserved.example.com
fe80::1 ll6.example.com
2606:2800:220:1::1 public6.example.com
93.184.216.34 xn--bcher-kva.example
";

/// A CA and certificates it signs.
pub struct Pki {
    pub ca_pem: String,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "cordon test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            ca_params: params,
            ca_key: key,
        }
    }

    /// (certificate PEM, key PEM) for DNS names, a URI SAN and a CN.
    pub fn leaf(&self, dns: &[&str], uri: Option<&str>, cn: Option<&str>) -> (String, String) {
        let mut params =
            CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A client config trusting this CA, optionally with a client certificate.
    pub fn client_config(&self, client: Option<(String, String)>) -> Arc<rustls::ClientConfig> {
        use rustls_pki_types::pem::PemObject;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![
                        rustls_pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap(),
                    ],
                    rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        Arc::new(config)
    }
}

/// What an upstream saw.
#[derive(Default)]
pub struct Seen {
    pub connections: AtomicUsize,
    pub bytes: AtomicU64,
    pub headers: Mutex<Vec<Vec<(String, String)>>>,
}

/// An HTTP/1.1 upstream that answers every request with `hello` (or the
/// number of body bytes for a POST) and tries to forge the decision header.
pub async fn http_upstream(ip: &str) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            s.connections.fetch_add(1, Ordering::Relaxed);
            let s = s.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let s = s.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            s.headers.lock().unwrap().push(headers);
                            let post = req.method() == hyper::Method::POST;
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            s.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                            let text = if post {
                                format!("got {}", body.len())
                            } else {
                                "hello".to_string()
                            };
                            let resp = hyper::Response::builder()
                                .header("x-cordon-decision", "allow; forged")
                                .body(http_body_util::Full::new(bytes::Bytes::from(text)))
                                .unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// A TCP upstream that counts what it receives and answers `ok\n` to every
/// chunk (a tunnel's other end).
pub async fn sink_upstream(ip: &str) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            s.connections.fetch_add(1, Ordering::Relaxed);
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            s.bytes.fetch_add(n as u64, Ordering::Relaxed);
                            if stream.write_all(b"ok\n").await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A TLS upstream with a certificate for `names`, answering each line
/// with `tls:` and the line.
pub async fn tls_upstream(pki: &Pki, names: &[&str]) -> (SocketAddr, Arc<Seen>) {
    use rustls_pki_types::pem::PemObject;
    let (cert, key) = pki.leaf(names, None, None);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls_pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
            rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((UPSTREAM.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            s.connections.fetch_add(1, Ordering::Relaxed);
            let (acceptor, s) = (acceptor.clone(), s.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            s.bytes.fetch_add(n as u64, Ordering::Relaxed);
                            let mut reply = b"tls:".to_vec();
                            reply.extend_from_slice(&buf[..n]);
                            if tls.write_all(&reply).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// How the test DNS server answers a name.
#[derive(Clone, Debug)]
pub enum Answer {
    /// These A records, in turn (one per query), TTL 0.
    Rotate(Vec<std::net::Ipv4Addr>),
    /// Never answer.
    Silent,
}

/// A UDP DNS server answering A queries from `names` (NXDOMAIN otherwise,
/// empty answers to other types) and counting queries by name.
pub async fn dns_server(
    names: HashMap<String, Answer>,
) -> (SocketAddr, Arc<Mutex<HashMap<String, usize>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let queries: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let q = queries.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let packet = &buf[..n];
            if n < 12 {
                continue;
            }
            // Question: labels, then type and class.
            let mut at = 12;
            let mut labels = Vec::new();
            while at < n && packet[at] != 0 {
                let len = packet[at] as usize;
                labels.push(String::from_utf8_lossy(&packet[at + 1..at + 1 + len]).to_lowercase());
                at += 1 + len;
            }
            let qend = at + 5;
            if qend > n {
                continue;
            }
            let qtype = u16::from_be_bytes([packet[at + 1], packet[at + 2]]);
            let name = labels.join(".");
            let (count, answer) = {
                let mut q = q.lock().unwrap();
                let c = q.entry(name.clone()).or_insert(0);
                *c += 1;
                let a = q.entry(format!("A {name}")).or_insert(0);
                if qtype == 1 {
                    *a += 1;
                }
                (*a, names.get(&name).cloned())
            };
            let mut resp = packet[..qend].to_vec();
            resp[2] = 0x84 | (packet[2] & 0x01); // response, authoritative, RD copied
            resp[3] = 0x80; // RA, NOERROR
            resp[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
            match answer {
                None => resp[3] = 0x83, // NXDOMAIN
                Some(Answer::Silent) => continue,
                Some(Answer::Rotate(ips)) if qtype == 1 => {
                    let ip = ips[(count.max(1) - 1) % ips.len()];
                    resp[7] = 1;
                    resp.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
                    resp.extend_from_slice(&ip.octets());
                }
                Some(Answer::Rotate(_)) => {}
            }
            let _ = socket.send_to(&resp, from).await;
        }
    });
    (addr, queries)
}

/// A running gateway.
pub struct Running {
    pub addrs: Vec<SocketAddr>,
    pub shared: Arc<Shared>,
    pub dir: PathBuf,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub done: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn proxy(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), self.done).await;
    }

    /// The decision log's records.
    pub fn records(&self) -> Vec<cordon_flow::sources::cordon::gateway::GatewayRecord> {
        let text = std::fs::read_to_string(self.dir.join("decisions.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A config for a gateway in `dir` with the test policy and hosts file.
pub fn config(dir: &std::path::Path, limit: &str) -> Config {
    std::fs::write(dir.join("policy.yaml"), policy(limit)).unwrap();
    std::fs::write(dir.join("hosts"), HOSTS).unwrap();
    let mut config = Config::new(dir.join("policy.yaml"), "127.0.0.1:0".parse().unwrap());
    config.hosts = Some(dir.join("hosts"));
    config.log = Some(cordon_gateway::record::LogTarget::File(
        dir.join("decisions.jsonl"),
    ));
    config.admin = Some("127.0.0.1:0".parse().unwrap());
    config.limits.drain = Duration::from_secs(1);
    config
}

pub async fn start(config: Config) -> Running {
    let dir = config.policy.parent().unwrap().to_path_buf();
    let gateway = Gateway::bind(config).await.unwrap();
    let addrs = gateway.addrs();
    let shared = gateway.shared().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(gateway.serve(async {
        let _ = rx.await;
    }));
    Running {
        addrs,
        shared,
        dir,
        stop: Some(tx),
        done,
    }
}

/// A TCP connection from `src` (a loopback address) to `to`.
pub async fn connect_from(src: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind((src.parse::<IpAddr>().unwrap(), 0).into())
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// The status and headers of a response head read from `stream`.
pub async fn read_head(stream: &mut TcpStream) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await {
            Ok(Ok(1)) => buf.push(byte[0]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, buf)
}

/// Send `CONNECT target` from `src` and read the answer's head.
pub async fn connect_via(
    gateway: SocketAddr,
    src: &str,
    target: &str,
    extra: &str,
) -> (TcpStream, u16, HashMap<String, String>) {
    let mut stream = connect_from(src, gateway).await;
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let (status, headers, _) = read_head(&mut stream).await;
    (stream, status, headers)
}
