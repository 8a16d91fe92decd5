//! The lake in S3: objects put and got with Signature Version 4, the
//! credentials of the standard chain (environment, then the shared
//! credentials file), and an endpoint override for S3-compatible stores
//! (MinIO, moto) that are addressed path-style.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::{Method, Request};
use ring::{digest, hmac};
use url::Url;

use crate::LakeError;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(300);
/// Largest object read back (the manifest).
const MAX_GET: usize = 64 * 1024 * 1024;

/// Keys that sign requests.
#[derive(Clone)]
pub struct Credentials {
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        write!(f, "Credentials({}, ***)", self.access_key)
    }
}

impl Credentials {
    /// The standard chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
    /// (`AWS_SESSION_TOKEN`), else the profile (`profile`, `AWS_PROFILE`,
    /// `default`) of `AWS_SHARED_CREDENTIALS_FILE` or
    /// `~/.aws/credentials`.
    ///
    /// # Errors
    /// No credentials found, said with where they were looked for.
    pub fn from_environment(profile: Option<&str>) -> Result<Credentials, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if profile.is_none()
            && let (Some(access_key), Some(secret_key)) =
                (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok(Credentials {
                access_key,
                secret_key,
                session_token: var("AWS_SESSION_TOKEN"),
            });
        }
        let name = profile
            .map(str::to_string)
            .or_else(|| var("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_string());
        let file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(std::path::PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".aws/credentials")));
        let Some(file) = file else {
            return Err("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile in ~/.aws/credentials".to_string());
        };
        let mut text = String::new();
        std::fs::File::open(&file)
            .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
            .map_err(|e| {
                format!(
                    "no AWS credentials in the environment, and `{}`: {e}",
                    file.display()
                )
            })?;
        let mut section = String::new();
        let (mut access_key, mut secret_key, mut session_token) = (None, None, None);
        for line in text.lines() {
            let line = line.trim();
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.trim().to_string();
                continue;
            }
            if section != name {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim().to_string();
                match k.trim() {
                    "aws_access_key_id" => access_key = Some(v),
                    "aws_secret_access_key" => secret_key = Some(v),
                    "aws_session_token" => session_token = Some(v),
                    _ => {}
                }
            }
        }
        match (access_key, secret_key) {
            (Some(access_key), Some(secret_key)) => Ok(Credentials {
                access_key,
                secret_key,
                session_token,
            }),
            _ => Err(format!(
                "no keys for profile `{name}` in `{}`",
                file.display()
            )),
        }
    }
}

/// A bucket and prefix to write the lake under.
#[derive(Clone, Debug)]
pub struct S3Target {
    /// The bucket.
    pub bucket: String,
    /// The key prefix (no leading or trailing `/`).
    pub prefix: String,
    /// The signing region.
    pub region: String,
    /// An S3-compatible endpoint (path-style); `None`: AWS.
    pub endpoint: Option<Url>,
    /// The keys.
    pub credentials: Credentials,
}

/// `s3://BUCKET/PREFIX` into bucket and prefix; `None` when `text` is not
/// an `s3://` URL.
///
/// # Errors
/// An `s3://` URL without a valid bucket name.
pub fn parse_s3_url(text: &str) -> Option<Result<(String, String), String>> {
    let rest = text.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    Some(if valid {
        Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
    } else {
        Err(format!("`{text}`: `{bucket}` is not an S3 bucket name"))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// RFC 3986 encoding of a key's characters, `/` kept, as SigV4 wants.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn hmac_sign(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        .as_ref()
        .to_vec()
}

/// A file sent in 256 KiB frames.
struct FileBody {
    file: std::fs::File,
    left: u64,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(self.left.min(256 * 1024)).unwrap_or(256 * 1024);
        let mut buf = vec![0u8; want];
        Poll::Ready(Some(match self.file.read(&mut buf) {
            Ok(0) => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while it was sent",
            )),
            Ok(n) => {
                buf.truncate(n);
                self.left -= n as u64;
                Ok(Frame::data(Bytes::from(buf)))
            }
            Err(e) => Err(e),
        }))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

type Sent = Result<(u16, Bytes), LakeError>;

impl S3Target {
    /// The URL of `key` (under the prefix).
    fn url(&self, key: &str) -> Result<Url, LakeError> {
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        let text = match &self.endpoint {
            Some(e) => format!(
                "{}/{}/{}",
                e.as_str().trim_end_matches('/'),
                self.bucket,
                encode_path(&full)
            ),
            None => format!(
                "https://{}.s3.{}.amazonaws.com/{}",
                self.bucket,
                self.region,
                encode_path(&full)
            ),
        };
        Url::parse(&text).map_err(|e| LakeError::Options(format!("`{text}`: {e}")))
    }

    /// Send one signed request; the status and the body (at most 64 MiB).
    async fn send<B>(
        &self,
        method: Method,
        key: &str,
        payload_sha256: &str,
        body: B,
        range: Option<(u64, u64)>,
    ) -> Sent
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let url = self.url(key)?;
        let fail = |message: String| LakeError::Parquet {
            path: url.to_string(),
            message,
        };
        let now = cordon_flow::time::format_rfc3339(cordon_flow::time::now_ms());
        // 2026-12-07T18:01:25.123Z → 20261207T180125Z
        let stamp: String = now
            .get(..19)
            .unwrap_or_default()
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect::<String>()
            + "Z";
        let date = stamp.get(..8).unwrap_or_default().to_string();
        let host = cordon_fetch::authority(&url);
        let mut headers = vec![
            ("host", host.clone()),
            ("x-amz-content-sha256", payload_sha256.to_string()),
            ("x-amz-date", stamp.clone()),
        ];
        if let Some(t) = &self.credentials.session_token {
            headers.push(("x-amz-security-token", t.clone()));
        }
        let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
        let signed = signed.join(";");
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let canonical = format!(
            "{method}\n{}\n{}\n{canonical_headers}\n{signed}\n{payload_sha256}",
            url.path(),
            url.query().unwrap_or_default()
        );
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
            hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
        );
        let mut key_bytes = hmac_sign(
            format!("AWS4{}", self.credentials.secret_key).as_bytes(),
            &date,
        );
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            key_bytes = hmac_sign(&key_bytes, part);
        }
        let signature = hex(&hmac_sign(&key_bytes, &to_sign));
        let mut request = Request::builder()
            .method(method)
            .uri(cordon_fetch::path_and_query(&url))
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
                    self.credentials.access_key
                ),
            );
        for (k, v) in &headers {
            request = request.header(*k, v.as_str());
        }
        // Unsigned (SigV4 signs only the headers it lists).
        if let Some((start, end)) = range {
            request = request.header("range", format!("bytes={start}-{end}"));
        }
        let request = request.body(body).map_err(|e| fail(e.to_string()))?;
        let tls = if url.scheme() == "https" {
            Some(cordon_fetch::tls_connector(None).map_err(fail)?)
        } else {
            None
        };
        let exchange = async {
            let mut sender = cordon_fetch::connect::<B>(&url, tls.as_ref()).await?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                response.into_body(),
                MAX_GET,
            ))
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
            Ok::<_, String>((status, body))
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| fail(format!("no answer within {} s", TIMEOUT.as_secs())))?
            .map_err(fail)
    }

    /// Put the file at `path` as `key`.
    ///
    /// # Errors
    /// The file cannot be read, or S3 refused it (its answer is quoted).
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<(), LakeError> {
        let io = |source| LakeError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut context = digest::Context::new(&digest::SHA256);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            context.update(buf.get(..n).unwrap_or_default());
        }
        let len = std::fs::metadata(path).map_err(io)?.len();
        let body = FileBody {
            file: std::fs::File::open(path).map_err(io)?,
            left: len,
        };
        let (status, answer) = self
            .send(
                Method::PUT,
                key,
                &hex(context.finish().as_ref()),
                body,
                None,
            )
            .await?;
        self.check(key, status, &answer)
    }

    /// Put `bytes` as `key`.
    ///
    /// # Errors
    /// S3 refused it.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), LakeError> {
        let sha = hex(digest::digest(&digest::SHA256, &bytes).as_ref());
        let body = http_body_util::Full::new(Bytes::from(bytes));
        let (status, answer) = self.send(Method::PUT, key, &sha, body, None).await?;
        self.check(key, status, &answer)
    }

    /// Get `key`; `None` when it does not exist.
    ///
    /// # Errors
    /// S3 refused the request.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, LakeError> {
        let empty = hex(digest::digest(&digest::SHA256, b"").as_ref());
        let body = http_body_util::Empty::<Bytes>::new();
        let (status, answer) = self.send(Method::GET, key, &empty, body, None).await?;
        if status == 404 {
            return Ok(None);
        }
        self.check(key, status, &answer)?;
        Ok(Some(answer))
    }

    /// Get `length` bytes of `key` from `start` (a ranged GET).
    ///
    /// # Errors
    /// S3 refused the request or sent another length.
    pub async fn get_range(&self, key: &str, start: u64, length: u64) -> Result<Bytes, LakeError> {
        let empty = hex(digest::digest(&digest::SHA256, b"").as_ref());
        let body = http_body_util::Empty::<Bytes>::new();
        let last = start + length.max(1) - 1;
        let (status, answer) = self
            .send(Method::GET, key, &empty, body, Some((start, last)))
            .await?;
        self.check(key, status, &answer)?;
        if answer.len() as u64 != length {
            return Err(LakeError::Parquet {
                path: format!("s3://{}/{}/{key}", self.bucket, self.prefix),
                message: format!(
                    "asked for {length} bytes at {start}, S3 sent {}",
                    answer.len()
                ),
            });
        }
        Ok(answer)
    }

    /// Delete `key` (deleting what is not there is not an error).
    ///
    /// # Errors
    /// S3 refused the request.
    pub async fn delete(&self, key: &str) -> Result<(), LakeError> {
        let empty = hex(digest::digest(&digest::SHA256, b"").as_ref());
        let body = http_body_util::Empty::<Bytes>::new();
        let (status, answer) = self.send(Method::DELETE, key, &empty, body, None).await?;
        if status == 404 {
            return Ok(());
        }
        self.check(key, status, &answer)
    }

    fn check(&self, key: &str, status: u16, answer: &[u8]) -> Result<(), LakeError> {
        if (200..300).contains(&status) {
            return Ok(());
        }
        let text = String::from_utf8_lossy(answer.get(..answer.len().min(300)).unwrap_or_default())
            .into_owned();
        Err(LakeError::Parquet {
            path: format!("s3://{}/{}/{key}", self.bucket, self.prefix),
            message: format!("S3 answered {status}: {text}"),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn s3_urls_and_keys_are_read_and_encoded_as_sigv4_wants() {
        assert_eq!(
            super::parse_s3_url("s3://acme-lake/cordon/"),
            Some(Ok(("acme-lake".to_string(), "cordon".to_string())))
        );
        assert!(super::parse_s3_url("s3://A_B/x").is_some_and(|r| r.is_err()));
        assert!(super::parse_s3_url("/data/lake").is_none());
        assert_eq!(
            super::encode_path("ext/region=eu-west-1/a b.parquet"),
            "ext/region%3Deu-west-1/a%20b.parquet"
        );
    }

    /// The signing key derivation of the SigV4 documentation's example
    /// (secret `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, 20120215,
    /// us-east-1, iam).
    #[test]
    fn the_signing_key_matches_the_documented_derivation() {
        let mut key = super::hmac_sign(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215");
        for part in ["us-east-1", "iam", "aws4_request"] {
            key = super::hmac_sign(&key, part);
        }
        assert_eq!(
            super::hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }
}
