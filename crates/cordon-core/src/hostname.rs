//! Hostnames and FQDN patterns, normalised the one way every component uses:
//! IDNA to punycode, lowercase, trailing dot removed.

use std::fmt;
use std::net::IpAddr;

/// Why a name is not an acceptable hostname.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    /// Nothing left after normalisation.
    #[error("empty hostname")]
    Empty,
    /// An IP address, which is never a hostname.
    #[error("`{0}` is an IP address, not a hostname")]
    IpLiteral(String),
    /// The name ends in a numeric label, which URL parsers read as an IPv4
    /// address in some spelling (`127.1`, `0x7f.1`, `2130706433`).
    #[error("`{0}` looks like an IP address in an unusual spelling")]
    NumericLike(String),
    /// IDNA processing failed.
    #[error("`{0}` is not a valid internationalized name (IDNA/punycode)")]
    Idna(String),
    /// A character DNS names may not hold.
    #[error("`{name}` contains `{ch}`, which hostnames may not contain")]
    BadCharacter {
        /// The name as given.
        name: String,
        /// The offending character.
        ch: char,
    },
    /// An empty label (`a..b`) or one longer than 63 characters.
    #[error("`{0}` has an empty label or one longer than 63 characters")]
    BadLabel(String),
    /// Longer than 253 characters.
    #[error("`{0}` is longer than 253 characters")]
    TooLong(String),
}

/// A normalised hostname: ASCII (punycode), lowercase, no trailing dot,
/// never an IP literal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hostname(String);

impl Hostname {
    /// Normalise and validate `name`.
    ///
    /// # Errors
    /// [`HostnameError`] saying why `name` is not a hostname.
    pub fn parse(name: &str) -> Result<Hostname, HostnameError> {
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        if trimmed.is_empty() {
            return Err(HostnameError::Empty);
        }
        let bare = trimmed
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(trimmed);
        if bare.parse::<IpAddr>().is_ok() {
            return Err(HostnameError::IpLiteral(name.to_string()));
        }
        // Punycode labels are decoded and checked too: `xn--` must hold a
        // valid encoding, or two spellings could name one host.
        let needs_idna = !trimmed.is_ascii()
            || trimmed.split('.').any(|l| {
                l.len() >= 4 && l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
            });
        let ascii = if !needs_idna {
            trimmed.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(trimmed).map_err(|_| HostnameError::Idna(name.to_string()))?
        };
        // IDNA mapping may produce dots (full-width dots) or an IP-looking
        // result, so every check runs on the converted form.
        let ascii = ascii.strip_suffix('.').unwrap_or(&ascii).to_string();
        if ascii.is_empty() {
            return Err(HostnameError::Empty);
        }
        if ascii.parse::<IpAddr>().is_ok() {
            return Err(HostnameError::IpLiteral(name.to_string()));
        }
        if ascii.len() > 253 {
            return Err(HostnameError::TooLong(name.to_string()));
        }
        if let Some(ch) = ascii
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(HostnameError::BadCharacter {
                name: name.to_string(),
                ch,
            });
        }
        if ascii.split('.').any(|l| l.is_empty() || l.len() > 63) {
            return Err(HostnameError::BadLabel(name.to_string()));
        }
        if ascii.rsplit('.').next().is_some_and(is_numeric_label) {
            return Err(HostnameError::NumericLike(name.to_string()));
        }
        Ok(Hostname(ascii))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Labels from the top level down: `www.example.com` gives `com`,
    /// `example`, `www`.
    pub fn labels_from_top(&self) -> impl Iterator<Item = &str> {
        self.0.rsplit('.')
    }
}

/// Whether a label is a number in the spellings IPv4 parsers accept
/// (decimal, octal with leading 0, hex with 0x), per the WHATWG URL rule
/// that such names are parsed as addresses.
fn is_numeric_label(label: &str) -> bool {
    if let Some(hex) = label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"))
    {
        return hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    !label.is_empty() && label.chars().all(|c| c.is_ascii_digit())
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// An FQDN pattern: an exact name, or `*.suffix` for any name strictly below
/// `suffix` at any depth (not the apex itself).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FqdnPattern {
    /// The normalised name or suffix.
    pub name: Hostname,
    /// Whether this is `*.name`.
    pub wildcard: bool,
}

impl FqdnPattern {
    /// Parse and normalise a pattern.
    ///
    /// # Errors
    /// A message and a hint.
    pub fn parse(text: &str) -> Result<FqdnPattern, crate::InvalidValue> {
        let (wildcard, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if rest.contains('*') || rest.is_empty() || rest == "." {
            let hint = if text.starts_with("**") {
                "`**` is not allowed: `*.example.com` already matches any depth"
            } else if text == "*" || text == "*." {
                "a pattern must name a domain: `*.example.com`; use group `internet` for everything"
            } else {
                "`*` may only stand alone as the first label: `*.example.com`"
            };
            return Err(crate::InvalidValue::new(
                format!("invalid FQDN pattern `{text}`"),
                hint.to_string(),
            ));
        }
        let name = Hostname::parse(rest).map_err(|e| {
            crate::InvalidValue::new(
                format!("invalid FQDN pattern `{text}`: {e}"),
                "write a DNS name such as `api.example.com` or `*.example.com`",
            )
        })?;
        Ok(FqdnPattern { name, wildcard })
    }

    /// Whether the pattern matches `host`.
    pub fn matches(&self, host: &Hostname) -> bool {
        if self.wildcard {
            host.as_str().len() > self.name.as_str().len()
                && host.as_str().ends_with(self.name.as_str())
                && host
                    .as_str()
                    .as_bytes()
                    .get(host.as_str().len() - self.name.as_str().len() - 1)
                    == Some(&b'.')
        } else {
            host == &self.name
        }
    }
}

impl fmt::Display for FqdnPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            write!(f, "*.{}", self.name)
        } else {
            write!(f, "{}", self.name)
        }
    }
}
