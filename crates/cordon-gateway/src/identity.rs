//! Who the client is: by source address through the inventory, by the
//! client certificate on the TLS listener (SPIFFE URI SAN, else subject
//! CN), or by a proxy token. A certificate or token replaces the address:
//! the groups then come from that identity alone.

use std::collections::HashMap;
use std::net::IpAddr;

use base64::Engine as _;
use cordon_policy::{CompiledPolicy, Endpoint};

/// How the identity was established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentitySource {
    /// The client's source address, through the inventory.
    Address,
    /// A verified client certificate.
    Certificate,
    /// A `Proxy-Authorization` token.
    Token,
}

impl IdentitySource {
    /// `address`, `certificate` or `token`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySource::Address => "address",
            IdentitySource::Certificate => "certificate",
            IdentitySource::Token => "token",
        }
    }
}

/// A client's claimed and verified identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The client's address (always known; used for groups only when the
    /// source is [`IdentitySource::Address`]).
    pub addr: IpAddr,
    /// How the identity was established.
    pub source: IdentitySource,
    /// A workload name (inventory, certificate CN, or token).
    pub workload: Option<String>,
    /// A SPIFFE ID (certificate or token).
    pub spiffe: Option<String>,
}

impl Identity {
    /// A client known by its address.
    pub fn by_address(addr: IpAddr) -> Identity {
        Identity {
            addr,
            source: IdentitySource::Address,
            workload: None,
            spiffe: None,
        }
    }

    /// The policy endpoint for this identity under `policy`.
    pub fn endpoint(&self, policy: &CompiledPolicy) -> Endpoint {
        match self.source {
            IdentitySource::Address => {
                let mut e = Endpoint::ip(self.addr);
                e.workload = policy.workload_at(self.addr);
                e
            }
            IdentitySource::Certificate | IdentitySource::Token => Endpoint {
                workload: self
                    .workload
                    .as_deref()
                    .and_then(|w| policy.policy().workload_id(w)),
                spiffe: self.spiffe.clone(),
                ..Endpoint::default()
            },
        }
    }

    /// The name to log: SPIFFE ID, else workload, else the inventory's name
    /// for the address.
    pub fn name(&self, policy: &CompiledPolicy) -> Option<String> {
        if let Some(s) = &self.spiffe {
            return Some(s.clone());
        }
        if let Some(w) = &self.workload {
            return Some(w.clone());
        }
        let id = policy.workload_at(self.addr)?;
        policy.policy().workload(id).map(|w| w.name.clone())
    }
}

/// What a token stands for: `workload:NAME` or a SPIFFE ID.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TokenIdentity {
    Workload(String),
    Spiffe(String),
}

/// Proxy tokens, kept only as SHA-256 digests so the gateway's memory and
/// logs never hold a usable token.
#[derive(Clone, Debug, Default)]
pub struct Tokens(HashMap<[u8; 32], TokenIdentity>);

/// Why a token file was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct TokenFileError {
    /// The file.
    pub file: String,
    /// The line (1-based).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl Tokens {
    /// Read a token file: one `TOKEN IDENTITY` per line, where IDENTITY is
    /// `workload:NAME` or `spiffe://...`; `#` starts a comment. Tokens
    /// shorter than 16 characters are refused.
    ///
    /// # Errors
    /// The first bad line.
    pub fn parse(file: &str, text: &str) -> Result<Tokens, TokenFileError> {
        let mut map = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let err = |reason: &str| TokenFileError {
                file: file.to_string(),
                line: i + 1,
                reason: reason.to_string(),
            };
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(token), Some(who), None) = (words.next(), words.next(), words.next()) else {
                return Err(err("expected `TOKEN IDENTITY`"));
            };
            if token.len() < 16 {
                return Err(err("token shorter than 16 characters"));
            }
            let identity = if let Some(w) = who.strip_prefix("workload:") {
                TokenIdentity::Workload(w.to_string())
            } else if who.starts_with("spiffe://") {
                TokenIdentity::Spiffe(who.to_string())
            } else {
                return Err(err("identity must be `workload:NAME` or `spiffe://...`"));
            };
            if map.insert(digest(token.as_bytes()), identity).is_some() {
                return Err(err("the same token twice"));
            }
        }
        Ok(Tokens(map))
    }

    /// Whether no tokens are configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The identity for a `Proxy-Authorization` value (`Bearer TOKEN`, or
    /// `Basic` with the token as the password), or `None` when the value is
    /// malformed or the token unknown.
    pub fn identify(&self, addr: IpAddr, header: &str) -> Option<Identity> {
        let (scheme, value) = header.trim().split_once(' ')?;
        let token = if scheme.eq_ignore_ascii_case("bearer") {
            value.trim().as_bytes().to_vec()
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()?;
            let colon = decoded.iter().position(|b| *b == b':')?;
            decoded.get(colon + 1..)?.to_vec()
        } else {
            return None;
        };
        let identity = self.0.get(&digest(&token))?;
        let (workload, spiffe) = match identity {
            TokenIdentity::Workload(w) => (Some(w.clone()), None),
            TokenIdentity::Spiffe(s) => (None, Some(s.clone())),
        };
        Some(Identity {
            addr,
            source: IdentitySource::Token,
            workload,
            spiffe,
        })
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The identity in a verified client certificate (DER): the first SPIFFE
/// URI SAN, else the subject CN as a workload name.
pub fn from_certificate(addr: IpAddr, der: &[u8]) -> Option<Identity> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let spiffe = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                GeneralName::URI(u) if u.starts_with("spiffe://") => Some(u.to_string()),
                _ => None,
            })
        });
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .map(str::to_string);
    if spiffe.is_none() && cn.is_none() {
        return None;
    }
    Some(Identity {
        addr,
        source: IdentitySource::Certificate,
        workload: if spiffe.is_none() { cn } else { None },
        spiffe,
    })
}
