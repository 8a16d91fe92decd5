//! Relaying a tunnel: bytes both ways, counted and metered, closed on idle
//! timeout, on a spent egress limit, when a policy reload revokes it, or
//! when the ClientHello inside a CONNECT tunnel names another host than the
//! CONNECT did (domain fronting).
//!
//! An idle tunnel between two plain TCP sockets holds no buffer: the
//! relay waits for readiness and takes a buffer only while data moves, so
//! ten thousand idle tunnels cost sockets and small task state, not
//! ten thousand buffers.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use cordon_policy::Hostname;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::quota::{Meter, now_ms};
use crate::sni::{self, Hello};

const CHUNK: usize = 16 * 1024;

/// Something to read chunks from.
pub trait ChunkSource {
    /// The next chunk appended to `buf`; 0 at end of stream.
    fn next_chunk(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send;
}

/// A plain TCP read half: waits for readiness before taking a buffer.
pub struct TcpSource(pub OwnedReadHalf);

impl ChunkSource for TcpSource {
    async fn next_chunk(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            self.0.readable().await?;
            buf.reserve(CHUNK);
            match self.0.try_read_buf(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Any other stream (TLS from the client): reads into its buffer directly.
pub struct StreamSource<R>(pub R);

impl<R: AsyncRead + Unpin + Send> ChunkSource for StreamSource<R> {
    async fn next_chunk(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        buf.reserve(CHUNK);
        self.0.read_buf(buf).await
    }
}

/// Why a tunnel ended on its own (rather than by either side closing).
#[derive(Debug)]
pub enum Stop {
    /// No bytes either way for the idle timeout.
    Idle,
    /// The egress limit was spent.
    Quota,
    /// A policy reload revoked the tunnel.
    Revoked(String),
    /// A response cut the tunnel.
    Response(String),
    /// The ClientHello named another host.
    Fronting(String),
    /// Shutdown deadline.
    Shutdown,
}

/// The shared counters of one tunnel.
pub struct Counters {
    /// Client → destination.
    pub out: Arc<AtomicU64>,
    /// Destination → client.
    pub inbound: Arc<AtomicU64>,
    /// Last activity, epoch ms.
    pub last: AtomicU64,
    /// The egress limit, with whether it only records.
    pub meter: Option<(Arc<Meter>, bool)>,
}

/// What the first client bytes must satisfy inside a CONNECT tunnel.
pub struct Inspect {
    /// The host the CONNECT named (`None`: an IP literal).
    pub host: Option<Hostname>,
    /// How long to wait for a complete ClientHello.
    pub timeout: Duration,
}

/// The SNI the client sent, if any, once inspected.
pub type SeenSni = Arc<std::sync::Mutex<Option<String>>>;

/// Copy from `src` to `dst`, counting, until end of stream.
pub async fn pump<S: ChunkSource, W: AsyncWrite + Unpin>(
    mut src: S,
    mut dst: W,
    counters: &Counters,
    outbound: bool,
    mut prefix: BytesMut,
    inspect: Option<(Inspect, SeenSni)>,
) -> Result<(), PumpEnd> {
    if let Some((inspect, seen)) = inspect {
        inspect_hello(&mut src, &mut prefix, inspect, &seen).await?;
    }
    let mut buf = prefix;
    loop {
        if buf.is_empty() {
            // Nothing held while waiting: the buffer is released when idle.
            buf = BytesMut::new();
            let n = src.next_chunk(&mut buf).await.map_err(PumpEnd::Io)?;
            if n == 0 {
                let _ = dst.shutdown().await;
                return Ok(());
            }
        }
        let n = buf.len() as u64;
        // A pooled limit is asked before the bytes go (it may wait for
        // Redis once per batch); a local one counts them as they went.
        let pooled = counters
            .meter
            .as_ref()
            .filter(|(meter, _)| outbound && meter.is_pooled());
        if let Some((meter, audit)) = pooled
            && !meter.admit(n).await
            && !audit
        {
            return Err(PumpEnd::Quota);
        }
        dst.write_all(&buf).await.map_err(PumpEnd::Io)?;
        buf.clear();
        counters.last.store(now_ms(), Ordering::Relaxed);
        if outbound {
            counters.out.fetch_add(n, Ordering::Relaxed);
            if pooled.is_none()
                && let Some((meter, audit)) = &counters.meter
                && !meter.add(n)
                && !audit
            {
                return Err(PumpEnd::Quota);
            }
        } else {
            counters.inbound.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// How a pump ended other than by end of stream.
#[derive(Debug)]
pub enum PumpEnd {
    /// A socket error.
    Io(io::Error),
    /// The egress limit was spent.
    Quota,
    /// Domain fronting: the SNI seen.
    Fronting(String),
}

/// Read until the first bytes are known not to be TLS, or hold a complete
/// ClientHello whose server name matches the CONNECT host.
async fn inspect_hello<S: ChunkSource>(
    src: &mut S,
    buf: &mut BytesMut,
    inspect: Inspect,
    seen: &SeenSni,
) -> Result<(), PumpEnd> {
    // A client may stay silent (server-first protocols, idle tunnels): the
    // hello timeout runs from its first byte; silence is the idle timer's.
    if buf.is_empty() {
        let n = src.next_chunk(buf).await.map_err(PumpEnd::Io)?;
        if n == 0 {
            return Ok(());
        }
    }
    let deadline = tokio::time::Instant::now() + inspect.timeout;
    loop {
        match sni::parse(buf) {
            Hello::NotTls => return Ok(()),
            Hello::Malformed(why) => {
                return Err(PumpEnd::Fronting(format!("malformed ClientHello: {why}")));
            }
            // With an encrypted ClientHello only the outer (public) name is
            // visible: it is held to the same match, and the policy decided
            // on the CONNECT host.
            Hello::Parsed { server_name, .. } => {
                if let Ok(mut s) = seen.lock() {
                    s.clone_from(&server_name);
                }
                let Some(name) = server_name else {
                    return Ok(());
                };
                let matches = match (&inspect.host, Hostname::parse(&name)) {
                    (Some(host), Ok(sni)) => *host == sni,
                    _ => false,
                };
                if !matches {
                    let wanted = inspect
                        .host
                        .as_ref()
                        .map_or("an IP address".to_string(), |h| format!("`{}`", h.as_str()));
                    return Err(PumpEnd::Fronting(format!(
                        "TLS server name `{name}` inside a CONNECT to {wanted}"
                    )));
                }
                return Ok(());
            }
            Hello::Incomplete => {
                if buf.len() >= sni::MAX_HELLO {
                    return Err(PumpEnd::Fronting("ClientHello too large".into()));
                }
                let read = tokio::time::timeout_at(deadline, src.next_chunk(buf)).await;
                match read {
                    Err(_) => {
                        return Err(PumpEnd::Fronting("no complete ClientHello in time".into()));
                    }
                    Ok(Err(e)) => return Err(PumpEnd::Io(e)),
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(_)) => {}
                }
            }
        }
    }
}

/// Relay between a client and an upstream until both sides finish or the
/// tunnel is stopped. `stop` resolves when something outside asks the
/// tunnel to end (reload revocation, shutdown, quota tripped elsewhere).
#[expect(clippy::too_many_arguments, reason = "the parts of one tunnel")]
pub async fn relay<CS, CW>(
    client_read: CS,
    client_write: CW,
    upstream_read: OwnedReadHalf,
    upstream_write: OwnedWriteHalf,
    prefix: BytesMut,
    counters: &Counters,
    inspect: Option<(Inspect, SeenSni)>,
    idle: Duration,
    stop: impl Future<Output = Stop>,
) -> Option<Stop>
where
    CS: ChunkSource,
    CW: AsyncWrite + Unpin,
{
    let up = pump(client_read, upstream_write, counters, true, prefix, inspect);
    let down = pump(
        TcpSource(upstream_read),
        client_write,
        counters,
        false,
        BytesMut::new(),
        None,
    );
    let both = async { tokio::try_join!(up, down) };
    tokio::pin!(both);
    tokio::pin!(stop);
    counters.last.store(now_ms(), Ordering::Relaxed);
    let idle_ms = idle.as_millis() as u64;
    loop {
        let since = now_ms().saturating_sub(counters.last.load(Ordering::Relaxed));
        let wait = Duration::from_millis(idle_ms.saturating_sub(since).max(1));
        tokio::select! {
            r = &mut both => {
                return match r {
                    Ok(_) | Err(PumpEnd::Io(_)) => None,
                    Err(PumpEnd::Quota) => Some(Stop::Quota),
                    Err(PumpEnd::Fronting(s)) => Some(Stop::Fronting(s)),
                };
            }
            s = &mut stop => return Some(s),
            _ = tokio::time::sleep(wait) => {
                let since = now_ms().saturating_sub(counters.last.load(Ordering::Relaxed));
                if since >= idle_ms {
                    return Some(Stop::Idle);
                }
            }
        }
    }
}

/// Stream halves of any bidirectional stream.
pub fn split<T: AsyncRead + AsyncWrite>(
    io: T,
) -> (
    StreamSource<tokio::io::ReadHalf<T>>,
    tokio::io::WriteHalf<T>,
) {
    let (r, w) = tokio::io::split(io);
    (StreamSource(r), w)
}
