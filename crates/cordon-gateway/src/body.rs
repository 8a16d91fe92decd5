//! The HTTP body and upstream connection types the HTTP proxy relays with
//! and a client connection keeps alive between requests.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;

/// An error inside a relayed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type the gateway answers with.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;
/// A client's kept-alive upstream HTTP connection.
pub type Upstream = hyper::client::conn::http1::SendRequest<ProxyBody>;
