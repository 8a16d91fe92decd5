//! TAXII 2.1 media types and content negotiation (TAXII 2.1 §1.6.8).
//!
//! Every TAXII response is `application/taxii+json;version=2.1`. A request
//! is answered when its `Accept` allows that type: the type itself, with
//! `version=2.1` or without a version (the latest), or a wildcard range
//! (`*/*`, `application/*`); a missing `Accept` allows anything (RFC 9110).
//! Anything else, including another TAXII version, is 406. A request body
//! must be `application/taxii+json` with `version=2.1` or no version, else
//! 415.

/// The TAXII 2.1 media type.
pub const TAXII_21: &str = "application/taxii+json;version=2.1";
/// The STIX 2.1 media type (of objects in a manifest).
pub const STIX_21: &str = "application/stix+json;version=2.1";

/// A media range of a header: `type/subtype` (lowercase), its `version`
/// parameter and its `q` weight.
struct Range<'a> {
    essence: String,
    version: Option<&'a str>,
    q: f32,
}

fn ranges(header: &str) -> impl Iterator<Item = Range<'_>> {
    header.split(',').filter_map(|item| {
        let mut parts = item.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        if essence.is_empty() {
            return None;
        }
        let mut version = None;
        let mut q = 1.0;
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "version" => version = Some(v),
                "q" => q = v.parse().unwrap_or(0.0),
                _ => {}
            }
        }
        Some(Range {
            essence,
            version,
            q,
        })
    })
}

/// Whether an `Accept` header allows a TAXII 2.1 answer.
pub fn accepts_taxii(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    if accept.trim().is_empty() {
        return true;
    }
    ranges(accept).any(|r| {
        r.q > 0.0
            && match r.essence.as_str() {
                "application/taxii+json" => r.version.is_none_or(|v| v == "2.1"),
                "*/*" | "application/*" => r.version.is_none(),
                _ => false,
            }
    })
}

/// Whether a request body's `Content-Type` is TAXII 2.1.
pub fn is_taxii_body(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        let mut r = ranges(c);
        r.next().is_some_and(|r| {
            r.essence == "application/taxii+json" && r.version.is_none_or(|v| v == "2.1")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_spec() {
        for ok in [
            None,
            Some(TAXII_21),
            Some("application/taxii+json; version=2.1"),
            Some("application/taxii+json"),
            Some("*/*"),
            Some("application/json, application/taxii+json;version=2.1;q=0.5"),
        ] {
            assert!(accepts_taxii(ok), "{ok:?}");
        }
        for bad in [
            "application/taxii+json;version=2.0",
            "application/vnd.oasis.taxii+json;version=2.0",
            "application/json",
            "text/html",
            "application/taxii+json;version=2.1;q=0",
        ] {
            assert!(!accepts_taxii(Some(bad)), "{bad}");
        }
        assert!(is_taxii_body(Some(TAXII_21)));
        assert!(is_taxii_body(Some("application/taxii+json")));
        assert!(!is_taxii_body(Some("application/json")));
        assert!(!is_taxii_body(Some("application/taxii+json;version=2.0")));
        assert!(!is_taxii_body(None));
    }
}
