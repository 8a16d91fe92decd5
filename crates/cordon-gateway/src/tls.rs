//! The TLS listener for clients that prove who they are with a
//! certificate: the server certificate and key, and the CAs that sign
//! client certificates (a client without a valid certificate is refused in
//! the handshake).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsListen;

/// Build the rustls server configuration.
///
/// # Errors
/// Which file is unreadable or invalid.
pub(crate) fn server_config(tls: &TlsListen) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: cannot read certificates: {e}", tls.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", tls.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| format!("{}: cannot read the private key: {e}", tls.key.display()))?;
    let mut roots = RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(&tls.client_ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{}: cannot read CA certificates: {e}",
                tls.client_ca.display()
            )
        })?;
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| format!("{}: invalid CA certificate: {e}", tls.client_ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no CA certificate", tls.client_ca.display()));
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("client certificate verifier: {e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?;
    Ok(Arc::new(config))
}
