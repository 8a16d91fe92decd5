//! STIX 2.1 objects checked before they are kept: the common properties
//! every object has (type, id, spec_version, timestamps), the properties
//! each type requires, and the version TAXII files it under.
//!
//! The checks are the specification's MUSTs for the properties that
//! identify, date and tie objects together; a check failing names the
//! object and the property. Custom types (`x-` prefix) get the common
//! checks only.

use cordon_flow::time::parse_rfc3339_us;
use cordon_store::exchange::NewObject;
use serde_json::{Map, Value};

/// Domain objects: their required properties past the common ones.
const SDOS: &[(&str, &[&str])] = &[
    ("attack-pattern", &["name"]),
    ("campaign", &["name"]),
    ("course-of-action", &["name"]),
    ("grouping", &["context", "object_refs"]),
    ("identity", &["name"]),
    ("incident", &["name"]),
    ("indicator", &["pattern", "pattern_type", "valid_from"]),
    ("infrastructure", &["name"]),
    ("intrusion-set", &["name"]),
    ("location", &[]),
    ("malware", &["is_family"]),
    ("malware-analysis", &["product"]),
    ("note", &["content", "object_refs"]),
    (
        "observed-data",
        &["first_observed", "last_observed", "number_observed"],
    ),
    ("opinion", &["opinion", "object_refs"]),
    ("report", &["name", "published", "object_refs"]),
    ("threat-actor", &["name"]),
    ("tool", &["name"]),
    ("vulnerability", &["name"]),
    // Relationship objects.
    (
        "relationship",
        &["relationship_type", "source_ref", "target_ref"],
    ),
    ("sighting", &["sighting_of_ref"]),
    // Meta objects with versions.
    (
        "language-content",
        &["object_ref", "object_modified", "contents"],
    ),
];

/// Cyber-observable objects: their required properties.
const SCOS: &[(&str, &[&str])] = &[
    ("artifact", &[]),
    ("autonomous-system", &["number"]),
    ("directory", &["path"]),
    ("domain-name", &["value"]),
    ("email-addr", &["value"]),
    ("email-message", &["is_multipart"]),
    ("file", &[]),
    ("ipv4-addr", &["value"]),
    ("ipv6-addr", &["value"]),
    ("mac-addr", &["value"]),
    ("mutex", &["name"]),
    ("network-traffic", &["protocols"]),
    ("process", &[]),
    ("software", &["name"]),
    ("url", &["value"]),
    ("user-account", &[]),
    ("windows-registry-key", &[]),
    ("x509-certificate", &[]),
];

/// Timestamp properties checked wherever they appear.
const TIMESTAMPS: &[&str] = &[
    "created",
    "modified",
    "valid_from",
    "valid_until",
    "first_seen",
    "last_seen",
    "first_observed",
    "last_observed",
    "published",
    "object_modified",
];

/// A STIX timestamp: RFC 3339 in UTC with `Z` (§3.2), in microseconds.
///
/// # Errors
/// Why it is not one.
pub fn timestamp(value: &str) -> Result<i64, String> {
    let ok_shape = value.len() >= 20
        && value.ends_with('Z')
        && value.as_bytes().get(10) == Some(&b'T')
        && !value.contains(['+', ' ']);
    if !ok_shape {
        return Err(format!(
            "`{value}` is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z, in UTC)"
        ));
    }
    parse_rfc3339_us(value).ok_or_else(|| format!("`{value}` is not a valid date and time"))
}

/// Whether `s` is an RFC 4122 UUID in its textual form.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
        && matches!(b[19], b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

/// Whether `s` is a valid STIX type name (§3.1).
fn is_type_name(s: &str) -> bool {
    (3..=250).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// Check a STIX identifier, of type `kind` when given.
fn identifier(value: &Value, kind: Option<&str>, property: &str) -> Result<(), String> {
    let Some(text) = value.as_str() else {
        return Err(format!("`{property}` must be a string identifier"));
    };
    let valid = text
        .split_once("--")
        .is_some_and(|(t, u)| is_type_name(t) && is_uuid(u) && kind.is_none_or(|k| k == t));
    if valid {
        Ok(())
    } else {
        Err(match kind {
            Some(k) => format!("`{property}` must be `{k}--` and a UUID, not `{text}`"),
            None => format!("`{property}` must be TYPE--UUID, not `{text}`"),
        })
    }
}

/// Check the timestamps and references found in `map`.
fn properties(map: &Map<String, Value>) -> Result<(), String> {
    for key in TIMESTAMPS {
        if let Some(v) = map.get(*key) {
            let text = v
                .as_str()
                .ok_or_else(|| format!("`{key}` must be a timestamp string"))?;
            timestamp(text).map_err(|e| format!("`{key}`: {e}"))?;
        }
    }
    for (key, v) in map {
        if key.ends_with("_ref") {
            identifier(v, None, key)?;
        } else if key.ends_with("_refs") {
            let list = v
                .as_array()
                .ok_or_else(|| format!("`{key}` must be a list of identifiers"))?;
            for item in list {
                identifier(item, None, key)?;
            }
        }
    }
    if let Some(c) = map.get("confidence")
        && c.as_u64().is_none_or(|c| c > 100)
    {
        return Err("`confidence` must be an integer from 0 to 100".to_string());
    }
    if let Some(r) = map.get("revoked")
        && !r.is_boolean()
    {
        return Err("`revoked` must be true or false".to_string());
    }
    Ok(())
}

/// Check one object and say how it is kept.
///
/// # Errors
/// What is wrong with it, naming the property.
pub fn check(object: &Value) -> Result<NewObject, String> {
    let map = object
        .as_object()
        .ok_or_else(|| "an object must be a JSON object".to_string())?;
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| "missing required property `type`".to_string())?;
    if !is_type_name(kind) {
        return Err(format!("`{kind}` is not a valid STIX type name"));
    }
    let id_value = map
        .get("id")
        .ok_or_else(|| "missing required property `id`".to_string())?;
    identifier(id_value, Some(kind), "id")?;
    let spec_version = map.get("spec_version").and_then(Value::as_str);
    let sdo = SDOS.iter().find(|(t, _)| *t == kind);
    let sco = SCOS.iter().find(|(t, _)| *t == kind);
    let custom = kind.starts_with("x-");
    let marking = kind == "marking-definition";
    if sdo.is_none() && sco.is_none() && !custom && !marking && kind != "extension-definition" {
        return Err(format!(
            "`{kind}` is not a STIX 2.1 type (custom types start with `x-`)"
        ));
    }
    let domain = sdo.is_some() || marking || kind == "extension-definition";
    match spec_version {
        Some("2.1") => {}
        Some(other) => return Err(format!("`spec_version` must be \"2.1\", not \"{other}\"")),
        None if domain || (custom && map.contains_key("created")) => {
            return Err("missing required property `spec_version`".to_string());
        }
        None => {}
    }
    let required = sdo.or(sco).map_or(&[][..], |(_, r)| *r);
    let mut needed: Vec<&str> = required.to_vec();
    if domain {
        needed.push("created");
        if !marking {
            needed.push("modified");
        }
    }
    if let Some(missing) = needed.iter().find(|p| !map.contains_key(**p)) {
        return Err(format!("missing required property `{missing}`"));
    }
    properties(map)?;
    let created = map
        .get("created")
        .and_then(Value::as_str)
        .map(timestamp)
        .transpose()?;
    let modified = map
        .get("modified")
        .and_then(Value::as_str)
        .map(timestamp)
        .transpose()?;
    if let (Some(c), Some(m)) = (created, modified)
        && m < c
    {
        return Err("`modified` is earlier than `created`".to_string());
    }
    match kind {
        "indicator" => {
            let pattern = map.get("pattern").and_then(Value::as_str).unwrap_or("");
            if pattern.trim().is_empty() {
                return Err("`pattern` must be a non-empty string".to_string());
            }
            if map.get("pattern_type").and_then(Value::as_str) == Some("stix")
                && !(pattern.trim_start().starts_with('[') || pattern.trim_start().starts_with('('))
            {
                return Err(format!(
                    "`pattern` is not a STIX pattern (it starts with an observation `[...]`): `{pattern}`"
                ));
            }
            let from = map.get("valid_from").and_then(Value::as_str).map(timestamp);
            let until = map
                .get("valid_until")
                .and_then(Value::as_str)
                .map(timestamp);
            if let (Some(Ok(f)), Some(Ok(u))) = (from, until)
                && u <= f
            {
                return Err("`valid_until` must be later than `valid_from`".to_string());
            }
        }
        "malware" => {
            let family = map.get("is_family").and_then(Value::as_bool);
            if family.is_none() {
                return Err("`is_family` must be true or false".to_string());
            }
            if family == Some(true) && !map.contains_key("name") {
                return Err("a malware family needs a `name`".to_string());
            }
        }
        "observed-data" => {
            let n = map.get("number_observed").and_then(Value::as_u64);
            if !n.is_some_and(|n| (1..=999_999_999).contains(&n)) {
                return Err("`number_observed` must be an integer from 1 to 999999999".to_string());
            }
        }
        _ => {}
    }
    Ok(NewObject {
        id: id_value.as_str().unwrap_or_default().to_string(),
        kind: kind.to_string(),
        spec_version: spec_version.unwrap_or("2.1").to_string(),
        version_us: modified.or(created),
        body: object.to_string(),
    })
}

/// The id of `object`, for messages about an object that failed its
/// checks (empty when it has none).
pub fn id_of(object: &Value) -> String {
    object
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn indicator() -> Value {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2026-12-01T10:00:00.000Z", "modified": "2026-12-02T10:00:00.000Z",
            "pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix",
            "valid_from": "2026-12-01T10:00:00Z",
        })
    }

    #[test]
    fn a_valid_indicator_is_versioned_by_modified() {
        let o = check(&indicator()).unwrap();
        assert_eq!(o.kind, "indicator");
        assert_eq!(
            o.version_us,
            parse_rfc3339_us("2026-12-02T10:00:00Z"),
            "version is `modified`"
        );
        let sco = json!({"type": "ipv4-addr", "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "198.51.100.7"});
        assert_eq!(check(&sco).unwrap().version_us, None);
    }

    #[test]
    fn each_broken_property_is_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("type", json!("Indicator"), "not a valid STIX type"),
            ("id", json!("indicator--not-a-uuid"), "`id` must be"),
            (
                "id",
                json!("malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"),
                "`id` must be `indicator--`",
            ),
            ("spec_version", json!("2.0"), "must be \"2.1\""),
            ("created", json!("2026-12-01 10:00:00"), "`created`"),
            ("modified", json!("2026-11-01T10:00:00Z"), "earlier than"),
            ("valid_until", json!("2026-11-01T10:00:00Z"), "later than"),
            (
                "pattern",
                json!("ipv4-addr:value = '1.2.3.4'"),
                "not a STIX pattern",
            ),
            ("created_by_ref", json!("nobody"), "created_by_ref"),
            ("confidence", json!(101), "confidence"),
        ];
        for (key, value, expected) in cases {
            let mut o = indicator();
            o[key] = value;
            let e = check(&o).unwrap_err();
            assert!(e.contains(expected), "{key}: {e}");
        }
        for key in ["pattern", "valid_from", "spec_version", "modified", "type"] {
            let mut o = indicator();
            o.as_object_mut().unwrap().remove(key);
            let e = check(&o).unwrap_err();
            assert!(e.contains(key), "{key}: {e}");
        }
        let unknown =
            json!({"type": "widget", "id": "widget--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"});
        assert!(check(&unknown).unwrap_err().contains("x-"));
        assert!(check(&json!([1])).is_err());
    }
}
