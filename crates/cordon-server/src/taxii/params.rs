//! The query parameters of TAXII's paged endpoints, and `next` tokens.
//!
//! A `next` token is stateless: the place the page ended (`date_added`
//! and the row's number) and an HMAC-SHA256 over that place and the
//! query's filters, under a key kept in the store. So a token works after
//! a restart, cannot be forged to start elsewhere, and a token from
//! another query (other filters, collection or object) is refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cordon_store::exchange::{Cursor, Versions};
use cordon_taxii::object::timestamp;

use super::TaxiiError;

/// Objects per page when the client does not say.
pub const DEFAULT_LIMIT: usize = 1_000;
/// Most objects per page.
pub const MAX_LIMIT: usize = 10_000;
/// Most values in one `match[...]` filter.
const MAX_VALUES: usize = 1_000;

/// The filters and paging of one request.
#[derive(Debug, Default)]
pub struct Params {
    /// `added_after`, microseconds.
    pub added_after_us: Option<i64>,
    /// `limit` (the server's default when absent or 0).
    pub limit: usize,
    /// `next`, as sent.
    pub next: Option<String>,
    /// `match[id]`.
    pub ids: Vec<String>,
    /// `match[type]`.
    pub kinds: Vec<String>,
    /// `match[version]`.
    pub versions: Versions,
    /// `match[spec_version]`.
    pub spec_versions: Vec<String>,
    /// The filters in a canonical form (what a `next` token is bound to).
    canonical: Vec<(String, String)>,
}

/// Which endpoint a request is for, and so which parameters it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Get Objects and Get Object Manifests: every filter.
    Objects,
    /// Get An Object: `match[version]`, `match[spec_version]`, paging.
    Object,
    /// Delete An Object: `match[version]`, `match[spec_version]`.
    Delete,
    /// Get Object Versions: `match[spec_version]`, paging.
    Versions,
}

fn list(value: &str, name: &str) -> Result<Vec<String>, TaxiiError> {
    let values: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    if values.is_empty() {
        return Err(TaxiiError::bad_request(format!("`{name}` is empty")));
    }
    if values.len() > MAX_VALUES {
        return Err(TaxiiError::bad_request(format!(
            "`{name}` has more than {MAX_VALUES} values"
        )));
    }
    Ok(values)
}

impl Params {
    /// Parse the raw query string of a request to `endpoint`.
    ///
    /// # Errors
    /// 400 naming the parameter that is unknown, repeated or invalid.
    pub fn parse(query: Option<&str>, endpoint: Endpoint) -> Result<Params, TaxiiError> {
        let mut p = Params {
            limit: DEFAULT_LIMIT,
            ..Params::default()
        };
        let mut seen = Vec::new();
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes());
        for (key, value) in pairs {
            let key = key.into_owned();
            if seen.contains(&key) {
                return Err(TaxiiError::bad_request(format!(
                    "`{key}` is given twice; give one value list separated by commas"
                )));
            }
            seen.push(key.clone());
            let paged = matches!(
                endpoint,
                Endpoint::Objects | Endpoint::Object | Endpoint::Versions
            );
            match key.as_str() {
                "limit" if paged => {
                    let n: usize = value.trim().parse().map_err(|_| {
                        TaxiiError::bad_request(format!(
                            "`limit` must be a positive integer, not `{value}`"
                        ))
                    })?;
                    p.limit = if n == 0 {
                        DEFAULT_LIMIT
                    } else {
                        n.min(MAX_LIMIT)
                    };
                }
                "next" if paged => p.next = Some(value.into_owned()),
                "added_after" if paged => {
                    let us = timestamp(value.trim())
                        .map_err(|e| TaxiiError::bad_request(format!("`added_after`: {e}")))?;
                    p.added_after_us = Some(us);
                    p.canonical.push((key, us.to_string()));
                }
                "match[id]" if endpoint == Endpoint::Objects => {
                    p.ids = list(&value, &key)?;
                    p.canonical.push((key, sorted(&p.ids)));
                }
                "match[type]" if endpoint == Endpoint::Objects => {
                    p.kinds = list(&value, &key)?;
                    p.canonical.push((key, sorted(&p.kinds)));
                }
                "match[version]" if endpoint != Endpoint::Versions => {
                    for v in list(&value, &key)? {
                        match v.as_str() {
                            "all" => p.versions.all = true,
                            "first" => p.versions.first = true,
                            "last" => p.versions.last = true,
                            t => p.versions.exact.push(timestamp(t).map_err(|e| {
                                TaxiiError::bad_request(format!(
                                    "`match[version]` takes first, last, all or timestamps: {e}"
                                ))
                            })?),
                        }
                    }
                    p.versions.exact.sort_unstable();
                    p.canonical.push((key, format!("{:?}", p.versions)));
                }
                "match[spec_version]" => {
                    p.spec_versions = list(&value, &key)?;
                    p.canonical.push((key, sorted(&p.spec_versions)));
                }
                _ => {
                    return Err(TaxiiError::bad_request(format!(
                        "`{key}` is not a parameter of this endpoint"
                    )));
                }
            }
        }
        if endpoint == Endpoint::Versions {
            p.versions = Versions {
                all: true,
                ..Versions::default()
            };
        }
        p.canonical.sort();
        Ok(p)
    }

    /// What a `next` token of this query is bound to: the endpoint's
    /// resource (`scope`) and the filters.
    fn binding(&self, scope: &str) -> String {
        let mut text = String::from(scope);
        for (k, v) in &self.canonical {
            text.push('\n');
            text.push_str(k);
            text.push('=');
            text.push_str(v);
        }
        text
    }

    /// The token for the page after `cursor`.
    pub fn token(&self, key: &[u8], scope: &str, cursor: Cursor) -> String {
        let mut raw = Vec::with_capacity(32);
        raw.extend_from_slice(&cursor.date_added_us.to_be_bytes());
        raw.extend_from_slice(&cursor.seq.to_be_bytes());
        let tag = mac(key, &self.binding(scope), &raw);
        raw.extend_from_slice(&tag[..16]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Where this request's page starts (from its `next` token).
    ///
    /// # Errors
    /// 400 when the token is malformed or from another query.
    pub fn cursor(&self, key: &[u8], scope: &str) -> Result<Option<Cursor>, TaxiiError> {
        let Some(token) = &self.next else {
            return Ok(None);
        };
        let bad = || {
            TaxiiError::bad_request(
                "`next` is not a token this server gave for this query (the filters, \
                 collection and object must be the same as on the first page)",
            )
        };
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
        if raw.len() != 32 {
            return Err(bad());
        }
        let (place, tag) = raw.split_at(16);
        let expected = mac(key, &self.binding(scope), place);
        // Every byte is compared, whatever the first difference.
        let differ = expected[..16]
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differ != 0 {
            return Err(bad());
        }
        let mut date = [0u8; 8];
        let mut seq = [0u8; 8];
        date.copy_from_slice(&place[..8]);
        seq.copy_from_slice(&place[8..]);
        Ok(Some(Cursor {
            date_added_us: i64::from_be_bytes(date),
            seq: i64::from_be_bytes(seq),
        }))
    }
}

fn sorted(values: &[String]) -> String {
    let mut v = values.to_vec();
    v.sort();
    v.dedup();
    v.join(",")
}

fn mac(key: &[u8], binding: &str, place: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(binding.as_bytes());
    ctx.update(&[0]);
    ctx.update(place);
    ctx.sign().as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_to_their_query() {
        let key = b"0123456789abcdef0123456789abcdef";
        let p = Params::parse(Some("match[type]=indicator&limit=1"), Endpoint::Objects).unwrap();
        let c = Cursor {
            date_added_us: 1_765_000_000_000_000,
            seq: 42,
        };
        let t = p.token(key, "objects intel", c);
        // The same filters in another order, another limit: same query.
        let q = format!("limit=5&next={t}&match[type]=indicator");
        let same = Params::parse(Some(&q), Endpoint::Objects).unwrap();
        assert_eq!(same.cursor(key, "objects intel").unwrap(), Some(c));
        // Other filters, another collection, a changed token: refused.
        let other = Params::parse(Some(&format!("next={t}")), Endpoint::Objects).unwrap();
        assert!(other.cursor(key, "objects intel").is_err());
        assert!(same.cursor(key, "objects findings").is_err());
        let mut forged = t.clone().into_bytes();
        forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        let q = format!("next={forged}&match[type]=indicator");
        let p = Params::parse(Some(&q), Endpoint::Objects).unwrap();
        assert!(p.cursor(key, "objects intel").is_err());
    }

    #[test]
    fn bad_parameters_are_named() {
        for (q, expected) in [
            ("limit=-1", "limit"),
            ("limit=ten", "limit"),
            ("added_after=yesterday", "added_after"),
            ("match[version]=newest", "match[version]"),
            ("match[colour]=red", "match[colour]"),
            ("match[type]=a&match[type]=b", "twice"),
            ("match[id]=", "empty"),
        ] {
            let e = Params::parse(Some(q), Endpoint::Objects).unwrap_err();
            assert!(e.description.contains(expected), "{q}: {}", e.description);
        }
        assert!(Params::parse(Some("match[type]=indicator"), Endpoint::Versions).is_err());
        let p = Params::parse(Some("limit=0"), Endpoint::Objects).unwrap();
        assert_eq!(p.limit, DEFAULT_LIMIT);
        let p = Params::parse(Some("limit=999999"), Endpoint::Objects).unwrap();
        assert_eq!(p.limit, MAX_LIMIT);
    }
}
