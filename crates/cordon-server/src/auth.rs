//! Who is calling: tokens with roles (held only as SHA-256 digests),
//! console sessions in HttpOnly, SameSite=Strict cookies, and the CSRF
//! token every state-changing console request must carry.
//!
//! There is no default secret: without a token file, the first start
//! makes one admin token, keeps its digest in the store folder and writes
//! the token itself once to a 0600 file there.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A partner exchanging threat intelligence: over TAXII only, reads the
    /// collections and adds to `intel`; no API, no console.
    Partner,
    /// Reads everything.
    Viewer,
    /// Also acknowledges and resolves incidents, approves and undoes responses.
    Responder,
    /// Also changes settings.
    Admin,
}

impl Role {
    /// Parse `partner`, `viewer`, `responder` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "partner" => Some(Role::Partner),
            "viewer" => Some(Role::Viewer),
            "responder" => Some(Role::Responder),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Partner => "partner",
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Admin => "admin",
        }
    }
}

/// Why the tokens could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A line is not `TOKEN ROLE NAME`.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A known caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: Role,
}

type Digest = [u8; 32];

fn digest(bytes: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Digest> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// A random secret, URL-safe base64 of `bytes` random bytes.
pub fn random_secret(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// `n` random bytes from the system generator; none if it failed (it
/// does not on Linux; if it ever did, an all-zero secret must not be
/// handed out).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    if SystemRandom::new().fill(&mut buf).is_err() {
        buf.clear();
    }
    buf
}

/// The token digests and who each one is.
#[derive(Debug, Default)]
pub struct Tokens(HashMap<Digest, Principal>);

/// The file beside the store that keeps the first admin token's digest.
pub const DIGESTS_FILE: &str = "server-tokens.sha256";
/// The file the first admin token is written to, once.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

impl Tokens {
    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Tokens from a file of `TOKEN ROLE NAME` lines (`#` comments).
    ///
    /// # Errors
    /// The file cannot be read, or a line says what is wrong with it.
    pub fn from_file(path: &Path) -> Result<Tokens, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Tokens::parse(&path.display().to_string(), &text, false)
    }

    /// Tokens from the text of a token file (`path` names it in errors).
    ///
    /// # Errors
    /// A line says what is wrong with it.
    pub fn parse_text(path: &str, text: &str) -> Result<Tokens, AuthError> {
        Tokens::parse(path, text, false)
    }

    fn parse(path: &str, text: &str, digests: bool) -> Result<Tokens, AuthError> {
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| AuthError::Line {
                path: path.to_string(),
                line: n + 1,
                message,
            };
            let mut words = line.splitn(3, char::is_whitespace);
            let (Some(token), Some(role), Some(name)) = (words.next(), words.next(), words.next())
            else {
                return Err(bad("expected `TOKEN ROLE NAME`".to_string()));
            };
            let role = Role::parse(role).ok_or_else(|| {
                bad(format!(
                    "unknown role `{role}` (viewer, responder, admin, partner)"
                ))
            })?;
            let key = if digests {
                unhex(token).ok_or_else(|| bad("expected a SHA-256 digest in hex".to_string()))?
            } else {
                if token.len() < 16 {
                    return Err(bad(
                        "a token must be at least 16 characters (use `openssl rand -hex 24`)"
                            .to_string(),
                    ));
                }
                digest(token.as_bytes())
            };
            let principal = Principal {
                name: name.trim().to_string(),
                role,
            };
            if map.insert(key, principal).is_some() {
                return Err(bad("this token is listed twice".to_string()));
            }
        }
        Ok(Tokens(map))
    }

    /// The tokens kept in `store` (digests), making the first admin token
    /// when there are none. Returns the file the new token was written to.
    ///
    /// # Errors
    /// The store folder cannot be read or written.
    pub fn in_store(store: &Path) -> Result<(Tokens, Option<PathBuf>), AuthError> {
        let digests = store.join(DIGESTS_FILE);
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| AuthError::Io { path, source }
        };
        if digests.exists() {
            let text = std::fs::read_to_string(&digests).map_err(io(&digests))?;
            let tokens = Tokens::parse(&digests.display().to_string(), &text, true)?;
            if !tokens.is_empty() {
                return Ok((tokens, None));
            }
        }
        std::fs::create_dir_all(store).map_err(io(store))?;
        let token = random_secret(32);
        let token_file = store.join(ADMIN_TOKEN_FILE);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&token_file).map_err(io(&token_file))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))
                .map_err(io(&token_file))?;
        }
        writeln!(file, "{token}").map_err(io(&token_file))?;
        let line = format!(
            "# Digests of the console and API tokens (SHA-256): DIGEST ROLE NAME\n{} admin admin\n",
            hex(&digest(token.as_bytes()))
        );
        std::fs::write(&digests, line).map_err(io(&digests))?;
        let mut map = HashMap::new();
        map.insert(
            digest(token.as_bytes()),
            Principal {
                name: "admin".to_string(),
                role: Role::Admin,
            },
        );
        Ok((Tokens(map), Some(token_file)))
    }

    /// Who `token` is.
    pub fn check(&self, token: &str) -> Option<&Principal> {
        self.0.get(&digest(token.as_bytes()))
    }
}

/// A console session.
#[derive(Clone, Debug)]
pub struct Session {
    /// Who.
    pub principal: Principal,
    /// The CSRF token its forms carry.
    pub csrf: String,
    expires: Instant,
}

/// Console sessions by the digest of their cookie value.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<Digest, Session>>);

/// How long a console session lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions held at most (the oldest are dropped first).
const MAX_SESSIONS: usize = 10_000;

impl Sessions {
    /// A new session for `principal`: the cookie value and the session.
    pub fn open(&self, principal: Principal) -> (String, Session) {
        let id = random_secret(32);
        let session = Session {
            principal,
            csrf: random_secret(24),
            expires: Instant::now() + SESSION_LIFETIME,
        };
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(digest(id.as_bytes()), session.clone());
        (id, session)
    }

    /// The live session of cookie value `id`.
    pub fn get(&self, id: &str) -> Option<Session> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&digest(id.as_bytes()))
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    /// End the session of cookie value `id`.
    pub fn close(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&digest(id.as_bytes()));
    }
}

/// Compare two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    digest(a.as_bytes()) == digest(b.as_bytes())
}
