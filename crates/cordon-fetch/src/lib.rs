//! Cordon's HTTP(S) client floor: the TLS roots a client trusts (the
//! system's, or a given CA file), one HTTP/1.1 connection over TCP or TLS,
//! and the [`Puller`] that agents and gateways use to fetch a published
//! document (the signed policy bundle) from a Cordon server.
//!
//! The puller's design choice is to be cheap when nothing changed and
//! careful when something did: every poll sends the last `ETag` as
//! `If-None-Match`, so an unchanged bundle costs a 304 and no body, and a
//! body is read only up to a limit and within a timeout. What the bytes
//! mean (signature, version) is for the caller to verify.
//!
//! ```no_run
//! # async fn f() -> Result<(), cordon_fetch::FetchError> {
//! use cordon_fetch::{PullOptions, Pulled, Puller};
//! let url = "https://cordon.example:8080/api/v1/policy/bundle".parse().unwrap();
//! let mut puller = Puller::new(PullOptions::new(url))?;
//! match puller.poll().await? {
//!     Pulled::NotModified => {}
//!     Pulled::New(bytes) => println!("{} bytes to verify", bytes.len()),
//! }
//! # Ok(()) }
//! ```

mod pull;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
pub use pull::{FetchError, PullOptions, Pulled, Puller};
pub use url::Url;

/// A request sender on one connection.
pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// The CA certificates to trust: those in `ca_file`, else the system's.
///
/// # Errors
/// The file cannot be read or holds no usable certificate; no system roots.
pub fn roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let files: Vec<PathBuf> = match ca_file {
        Some(f) => vec![f.to_path_buf()],
        None => [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ]
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .take(1)
        .collect(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for f in &files {
        let certs = CertificateDer::pem_file_iter(f)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", f.display()))?;
        let (_, ignored) = roots.add_parsable_certificates(certs);
        if ignored > 0 {
            tracing::warn!(file = %f.display(), ignored, "CA certificates that could not be used");
        }
    }
    if roots.is_empty() {
        return Err(match ca_file {
            Some(f) => format!("{}: no CA certificate in it", f.display()),
            None => "no system CA certificates found (give --ca-file)".to_string(),
        });
    }
    Ok(roots)
}

/// A TLS connector trusting `ca_file` (else the system's roots), with
/// the safe default protocol versions and no client certificate.
///
/// # Errors
/// See [`roots`].
pub fn tls_connector(ca_file: Option<&Path>) -> Result<tokio_rustls::TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(ca_file)?)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// `host[:port]` of `url` as a `Host` header says it.
pub fn authority(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

/// The path and query of `url` as a request line says it.
pub fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Open one HTTP/1.1 connection to `url`'s host, through `tls` when given;
/// the connection is driven by a spawned task. Requests carry bodies of
/// type `B` ([`Sender`] for whole ones).
///
/// # Errors
/// The connection, the TLS handshake or the HTTP handshake failed.
pub async fn connect<B>(
    url: &Url,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<hyper::client::conn::http1::SendRequest<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_matches(['[', ']']);
    let port = url.port_or_known_default().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((bare, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if let Some(tls) = tls {
        let name = rustls_pki_types::ServerName::try_from(bare.to_string())
            .map_err(|e| format!("`{host}`: {e}"))?;
        let stream = tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        let (send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(send)
    } else {
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(send)
    }
}
