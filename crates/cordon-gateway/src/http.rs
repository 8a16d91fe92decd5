//! The HTTP side: explicit proxy (CONNECT and absolute-form requests) and
//! transparent HTTP (origin-form requests judged by `Host`), on hyper.
//!
//! Every request is its own decision point: a client keeping its
//! connection open gets each request judged under the policy in force.
//! Headers that claim an identity are removed before forwarding, and a
//! decision header from upstream is replaced by the gateway's own.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use cordon_flow::sources::cordon::gateway::GatewayEvent;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::conn::{ClientConn, dial, log_close, log_decision, log_refusal, run_tunnel};
use crate::decide::decide;
use crate::quota::Meter;
use crate::record::ConnRecord;
use crate::target::{Host, Target, parse_authority};
use crate::tunnel::{Inspect, TcpSource, split};

pub use crate::body::{BoxError, ProxyBody, Upstream};

/// The header that carries the gateway's decision.
pub const DECISION_HEADER: &str = "x-cordon-decision";

/// How the listener was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMode {
    /// The client knows it talks to a proxy.
    Explicit,
    /// Traffic redirected to the gateway; the target is `Host`.
    Transparent,
}

/// Serve one client connection until it closes (or shutdown asks it to).
pub async fn serve<IO>(io: IO, conn: Arc<ClientConn>, mode: HttpMode)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &conn.shared.config.limits;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(100)
        .keep_alive(true);
    let service_conn = conn.clone();
    let service = hyper::service::service_fn(move |req| {
        let conn = service_conn.clone();
        async move { Ok::<_, Infallible>(handle(conn, mode, req).await) }
    });
    let served = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(served);
    let mut shutdown = conn.shared.shutdown.subscribe();
    tokio::select! {
        _ = served.as_mut() => {}
        Ok(()) = shutdown.changed() => {
            served.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(conn.shared.config.limits.drain, served).await;
        }
    }
}

fn text_body(text: String) -> ProxyBody {
    http_body_util::Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// `deny; rule=NAME; reason=WHY` (or `allow; ...`).
fn decision_value(verdict: cordon_core::Verdict, rule: Option<&str>, reason: &str) -> HeaderValue {
    let mut v = verdict.to_string();
    if let Some(rule) = rule {
        v.push_str("; rule=");
        v.push_str(rule);
    }
    v.push_str("; reason=");
    v.push_str(reason);
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("deny"))
}

/// A refusal: a short body that names the verdict and the connection id
/// (details stay in the log: they can name internal addresses).
fn refusal(rec: &ConnRecord) -> Response<ProxyBody> {
    let r = rec.record(GatewayEvent::Decision);
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
    let text = format!(
        "{} {}: cordon gateway: {} ({}{}), connection {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        r.verdict,
        r.reason,
        r.rule
            .as_deref()
            .map(|x| format!(", rule {x}"))
            .unwrap_or_default(),
        r.conn_id
    );
    let mut resp = Response::new(text_body(text));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static(DECISION_HEADER),
        decision_value(r.verdict, r.rule.as_deref(), &r.reason),
    );
    h.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
        h.insert(
            hyper::header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"cordon\""),
        );
    }
    resp
}

async fn refuse(conn: &ClientConn, rec: &ConnRecord) -> Response<ProxyBody> {
    log_refusal(&conn.shared, rec).await;
    refusal(rec)
}

/// The target of a request, as requested and parsed.
fn request_target(
    req: &Request<Incoming>,
    mode: HttpMode,
    http_port: u16,
) -> (String, Result<Target, String>) {
    if req.method() == Method::CONNECT {
        let requested = req
            .uri()
            .authority()
            .map_or_else(|| req.uri().to_string(), |a| a.as_str().to_string());
        let parsed = parse_authority(&requested, None).map_err(|e| e.to_string());
        return (requested, parsed);
    }
    if let Some(authority) = req.uri().authority() {
        let requested = authority.as_str().to_string();
        if req.uri().scheme_str() != Some("http") {
            return (
                requested,
                Err("only http:// in absolute form; use CONNECT for TLS".into()),
            );
        }
        if authority.as_str().contains('@') {
            return (requested, Err("credentials in the URL are refused".into()));
        }
        let parsed = parse_authority(authority.as_str(), Some(80)).map_err(|e| e.to_string());
        return (requested, parsed);
    }
    if mode == HttpMode::Explicit {
        return (
            req.uri().to_string(),
            Err("this is a proxy: send CONNECT or an absolute-form request".into()),
        );
    }
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let parsed = if host.is_empty() {
        Err("no Host header".to_string())
    } else {
        parse_authority(&host, Some(http_port)).map_err(|e| e.to_string())
    };
    (host, parsed)
}

async fn handle(
    conn: Arc<ClientConn>,
    mode: HttpMode,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let shared = conn.shared.clone();
    let is_connect = req.method() == Method::CONNECT;
    let mode_name = match (mode, is_connect) {
        (_, true) => "connect",
        (HttpMode::Explicit, false) => "http",
        (HttpMode::Transparent, false) => "transparent-http",
    };
    let mut identity = conn.identity.clone();
    if let Some(value) = req.headers().get(hyper::header::PROXY_AUTHORIZATION)
        && !shared.tokens.is_empty()
    {
        match value
            .to_str()
            .ok()
            .and_then(|v| shared.tokens.identify(conn.client.ip(), v))
        {
            Some(id) => identity = id,
            None => {
                let mut rec = ConnRecord::new(mode_name, conn.client, identity);
                rec.refusal = Some(("auth", "unknown or malformed proxy token".into(), 407));
                return refuse(&conn, &rec).await;
            }
        }
    }
    let mut rec = ConnRecord::new(mode_name, conn.client, identity.clone());
    rec.identity_name = identity.name(&shared.policy());
    let (requested, parsed) = request_target(&req, mode, shared.config.upstream_http_port);
    rec.requested = requested;
    let target = match parsed {
        Ok(t) => t,
        Err(e) => {
            rec.refusal = Some(("bad-target", e, 400));
            return refuse(&conn, &rec).await;
        }
    };
    rec.port = target.port;
    if let Host::Name(h) = &target.host {
        rec.hostname = Some(h.as_str().to_string());
    }
    let outcome = decide(&shared, &identity, &target).await;
    let proceeds = outcome.proceeds();
    rec.outcome = Some(outcome);
    if !proceeds {
        return refuse(&conn, &rec).await;
    }
    if !is_connect && let Some((addr, sender)) = reuse(&conn, &rec, &target).await {
        rec.upstream = Some(addr);
        rec.connect_ms = Some(0.0);
        log_decision(&shared, &rec).await;
        return forward(conn, rec, target, req, sender).await;
    }
    let Some(upstream) = dial(&shared, &mut rec, &target).await else {
        return refuse(&conn, &rec).await;
    };
    log_decision(&shared, &rec).await;
    if is_connect {
        let upgrade = hyper::upgrade::on(&mut req);
        let value = rec
            .outcome
            .as_ref()
            .map(|o| decision_value(o.verdict, o.rule.as_deref(), o.reason));
        let inspect = Inspect {
            host: match &target.host {
                Host::Name(h) => Some(h.clone()),
                Host::Ip(_) => None,
            },
            timeout: shared.config.limits.hello_timeout,
        };
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => tunnel(conn, rec, target, upgraded, upstream, inspect).await,
                Err(_) => log_close(&conn.shared, &rec).await,
            }
        });
        let mut resp = Response::new(text_body(String::new()));
        if let Some(v) = value {
            resp.headers_mut()
                .insert(HeaderName::from_static(DECISION_HEADER), v);
        }
        return resp;
    }
    let Ok((sender, connection)) =
        hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await
    else {
        log_close(&shared, &rec).await;
        return bad_gateway(&rec);
    };
    tokio::spawn(connection);
    forward(conn, rec, target, req, sender).await
}

/// The upstream connection the client's previous request used, when this
/// request was decided to the same address and host and it is idle.
async fn reuse(
    conn: &ClientConn,
    rec: &ConnRecord,
    target: &Target,
) -> Option<(std::net::SocketAddr, Upstream)> {
    let cached = conn.http_upstream.lock().ok()?.take()?;
    let (addr, host, mut sender) = cached;
    let addrs = &rec.outcome.as_ref()?.addrs;
    if addr.port() != target.port || !addrs.contains(&addr.ip()) || host != target.host.to_string()
    {
        return None;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(1), sender.ready()).await {
        Ok(Ok(())) => Some((addr, sender)),
        _ => None,
    }
}

async fn tunnel(
    conn: Arc<ClientConn>,
    rec: ConnRecord,
    target: Target,
    upgraded: hyper::upgrade::Upgraded,
    upstream: TcpStream,
    inspect: Inspect,
) {
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            let prefix = BytesMut::from(&parts.read_buf[..]);
            let (r, w) = parts.io.into_inner().into_split();
            run_tunnel(
                conn,
                rec,
                target,
                TcpSource(r),
                w,
                upstream,
                prefix,
                Some(inspect),
            )
            .await;
        }
        Err(upgraded) => {
            let (r, w) = split(TokioIo::new(upgraded));
            run_tunnel(
                conn,
                rec,
                target,
                r,
                w,
                upstream,
                BytesMut::new(),
                Some(inspect),
            )
            .await;
        }
    }
}

/// Headers never forwarded: hop-by-hop (RFC 9110 §7.6.1), proxy
/// credentials, and headers that claim who the client is.
const STRIPPED: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-client-ip",
    "x-forwarded-client-cert",
    "x-client-cert",
    "x-ssl-client-cert",
    "x-spiffe-id",
    "x-remote-user",
    "x-authenticated-user",
];

fn strip(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in STRIPPED {
        headers.remove(*n);
    }
    let cordon: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-cordon-"))
        .cloned()
        .collect();
    for n in cordon {
        headers.remove(n);
    }
}

async fn forward(
    conn: Arc<ClientConn>,
    rec: ConnRecord,
    target: Target,
    req: Request<Incoming>,
    mut sender: Upstream,
) -> Response<ProxyBody> {
    let shared = conn.shared.clone();
    let rec = Arc::new(rec);
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let host_header = parts.headers.get(hyper::header::HOST).cloned();
    strip(&mut parts.headers);
    if host_header.is_none()
        && let Ok(v) = HeaderValue::from_str(&target.to_string())
    {
        parts.headers.insert(hyper::header::HOST, v);
    }
    let mut builder = Request::builder().method(parts.method).uri(path);
    if let Some(h) = builder.headers_mut() {
        *h = parts.headers;
    }
    let outcome = rec.outcome.clone();
    let meter = outcome
        .as_ref()
        .and_then(|o| o.meter.clone().map(|m| (m, o.meter_audit)));
    let out_counter = Arc::new(AtomicU64::new(0));
    let upload = Counted::new(body, out_counter.clone(), meter, None).boxed_unsync();
    let Ok(upstream_req) = builder.body(upload) else {
        log_close(&shared, &rec).await;
        return bad_gateway(&rec);
    };
    shared.metrics.active.fetch_add(1, Ordering::Relaxed);
    let response = sender.send_request(upstream_req).await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            shared.metrics.active.fetch_sub(1, Ordering::Relaxed);
            rec.bytes_out
                .store(out_counter.load(Ordering::Relaxed), Ordering::Relaxed);
            rec.ended("upstream", format!("upstream failed: {e}"));
            log_close(&shared, &rec).await;
            return bad_gateway(&rec);
        }
    };
    let (mut rparts, rbody) = response.into_parts();
    strip(&mut rparts.headers);
    if let Some(o) = &outcome {
        rparts.headers.insert(
            HeaderName::from_static(DECISION_HEADER),
            decision_value(o.verdict, o.rule.as_deref(), o.reason),
        );
    }
    let in_counter = Arc::new(AtomicU64::new(0));
    let done = {
        let (shared, rec, in_counter) = (shared.clone(), rec.clone(), in_counter.clone());
        let keep = rec
            .upstream
            .map(|addr| (addr, target.host.to_string(), sender));
        let conn = conn.clone();
        Box::new(move || {
            if let (Some(keep), Ok(mut slot)) = (keep, conn.http_upstream.lock()) {
                *slot = Some(keep);
                crate::conn::watch_kept_upstream(&conn);
            }
            rec.bytes_out
                .store(out_counter.load(Ordering::Relaxed), Ordering::Relaxed);
            rec.bytes_in
                .store(in_counter.load(Ordering::Relaxed), Ordering::Relaxed);
            shared.metrics.active.fetch_sub(1, Ordering::Relaxed);
            tokio::spawn(async move { log_close(&shared, &rec).await });
        }) as Box<dyn FnOnce() + Send>
    };
    let download = Counted::new(rbody, in_counter, None, Some(done)).boxed_unsync();
    Response::from_parts(rparts, download)
}

fn bad_gateway(rec: &ConnRecord) -> Response<ProxyBody> {
    let mut resp = Response::new(text_body(format!(
        "502 Bad Gateway: cordon gateway: upstream failed, connection {}\n",
        rec.conn_id
    )));
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp
}

/// A body that counts its data bytes, meters them, and runs `done` once
/// when it ends or is dropped.
struct Counted<B> {
    inner: B,
    counter: Arc<AtomicU64>,
    meter: Option<(Arc<Meter>, bool)>,
    done: Option<Box<dyn FnOnce() + Send>>,
}

impl<B> Counted<B> {
    fn new(
        inner: B,
        counter: Arc<AtomicU64>,
        meter: Option<(Arc<Meter>, bool)>,
        done: Option<Box<dyn FnOnce() + Send>>,
    ) -> Self {
        Counted {
            inner,
            counter,
            meter,
            done,
        }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    this.counter.fetch_add(n, Ordering::Relaxed);
                    if let Some((meter, audit)) = &this.meter
                        && !meter.add(n)
                        && !audit
                    {
                        return Poll::Ready(Some(Err("egress limit spent".into())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                if let Some(done) = this.done.take() {
                    done();
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Counted<B> {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done();
        }
    }
}
