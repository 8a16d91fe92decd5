//! Transparent TLS: traffic redirected to the gateway (by nftables or a
//! route) is judged on the ClientHello's server name, read without
//! decrypting; the gateway then dials the checked address for that name
//! on the configured TLS port and replays the ClientHello.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::TcpStream;

use crate::conn::{ClientConn, dial, log_decision, log_refusal, run_tunnel};
use crate::decide::decide;
use crate::record::ConnRecord;
use crate::sni::{self, Hello};
use crate::target::{Host, Target, parse_host};
use crate::tunnel::{ChunkSource, TcpSource};

/// Serve one redirected TLS connection.
pub async fn serve(stream: TcpStream, conn: Arc<ClientConn>) {
    let shared = conn.shared.clone();
    let mut rec = ConnRecord::new("transparent-tls", conn.client, conn.identity.clone());
    rec.identity_name = conn.identity.name(&shared.policy());
    let port = shared.config.upstream_tls_port;
    rec.port = port;
    let (read, write) = stream.into_split();
    let mut source = TcpSource(read);
    let mut hello = BytesMut::new();
    let deadline = tokio::time::Instant::now() + shared.config.limits.hello_timeout;
    let name = loop {
        match sni::parse(&hello) {
            Hello::Parsed { server_name, .. } => break server_name,
            Hello::NotTls => break None,
            Hello::Malformed(why) => {
                rec.refusal = Some(("bad-target", format!("malformed ClientHello: {why}"), 400));
                return log_refusal(&shared, &rec).await;
            }
            Hello::Incomplete => {
                if hello.len() >= sni::MAX_HELLO {
                    rec.refusal = Some(("bad-target", "ClientHello too large".into(), 400));
                    return log_refusal(&shared, &rec).await;
                }
                match tokio::time::timeout_at(deadline, source.next_chunk(&mut hello)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => {
                        rec.refusal = Some(("bad-target", "no complete ClientHello".into(), 400));
                        return log_refusal(&shared, &rec).await;
                    }
                }
            }
        }
    };
    let Some(name) = name else {
        rec.refusal = Some(("no-sni", "a TLS client without a server name".into(), 403));
        return log_refusal(&shared, &rec).await;
    };
    rec.sni = Some(name.clone());
    rec.requested = format!("{name}:{port}");
    let host = match parse_host(&name, &name) {
        Ok(Host::Name(h)) => h,
        Ok(Host::Ip(_)) | Err(_) => {
            rec.refusal = Some(("bad-target", format!("`{name}` is not a hostname"), 400));
            return log_refusal(&shared, &rec).await;
        }
    };
    rec.hostname = Some(host.as_str().to_string());
    let target = Target {
        host: Host::Name(host),
        port,
    };
    let outcome = decide(&shared, &conn.identity, &target).await;
    let proceeds = outcome.proceeds();
    rec.outcome = Some(outcome);
    if !proceeds {
        return log_refusal(&shared, &rec).await;
    }
    let Some(upstream) = dial(&shared, &mut rec, &target).await else {
        return log_refusal(&shared, &rec).await;
    };
    log_decision(&shared, &rec).await;
    run_tunnel(
        conn.clone(),
        rec,
        target,
        source,
        write,
        upstream,
        hello,
        None,
    )
    .await;
}
