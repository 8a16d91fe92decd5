//! Threat intelligence: indicators of compromise (addresses, networks,
//! domains) from plain lists and from STIX 2.1 bundles.
//!
//! A plain list has one indicator per line (`#` starts a comment): an IP
//! address, a CIDR, or a domain (which also matches its subdomains). From a
//! STIX bundle, `indicator` objects with `pattern_type: stix` are read; the
//! comparisons `ipv4-addr:value`, `ipv6-addr:value` and `domain-name:value`
//! with `=` or `ISSUBSET`, joined by `OR`, are understood. Patterns that use
//! anything else are counted as skipped, never guessed at.

use std::net::IpAddr;

use cordon_policy::Hostname;
use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;

/// Where an indicator came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// File and line, or STIX indicator id.
    pub id: String,
    /// Indicator name, when the feed gives one.
    pub name: Option<String>,
    /// When the indicator stops applying (STIX `valid_until`), epoch ms.
    pub valid_until_ms: Option<i64>,
}

impl Source {
    /// Whether the indicator applies to traffic at `ms`: until its
    /// `valid_until`. (Not before its `valid_from`: a new indicator is
    /// for hunting back through stored traffic too.)
    pub fn applies_at(&self, ms: i64) -> bool {
        self.valid_until_ms.is_none_or(|until| ms < until)
    }
}

/// Loaded indicators.
#[derive(Debug, Default)]
pub struct Intel {
    ips: FxHashMap<IpAddr, Source>,
    nets: Vec<(IpNet, Source)>,
    domains: FxHashMap<String, Source>,
    /// Indicators that could not be read, with why.
    pub skipped: Vec<String>,
}

/// Why a feed could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct IntelError {
    /// The feed.
    pub file: String,
    /// What was wrong.
    pub message: String,
}

#[derive(Deserialize)]
struct Bundle {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    objects: Vec<serde_json::Value>,
}

impl Intel {
    /// Number of indicators.
    pub fn len(&self) -> usize {
        self.ips.len() + self.nets.len() + self.domains.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add the indicators in `text` (a STIX bundle if it parses as JSON
    /// with `"type": "bundle"`, else a plain list).
    ///
    /// # Errors
    /// JSON that is not a STIX bundle.
    pub fn add(&mut self, file: &str, text: &str) -> Result<(), IntelError> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            let bundle: Bundle = serde_json::from_str(text).map_err(|e| IntelError {
                file: file.to_string(),
                message: format!("not a STIX bundle: {e}"),
            })?;
            if bundle.kind != "bundle" {
                return Err(IntelError {
                    file: file.to_string(),
                    message: format!(
                        "a STIX bundle has \"type\": \"bundle\", not `{}`",
                        bundle.kind
                    ),
                });
            }
            for o in &bundle.objects {
                self.add_object(o);
            }
            return Ok(());
        }
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            let source = Source {
                id: format!("{file}:{}", i + 1),
                name: None,
                valid_until_ms: None,
            };
            if let Err(why) = self.add_value(entry, source) {
                self.skipped.push(format!("{file}:{}: {why}", i + 1));
            }
        }
        Ok(())
    }

    fn add_value(&mut self, value: &str, source: Source) -> Result<(), String> {
        if let Ok(ip) = value.parse::<IpAddr>() {
            self.ips.insert(cordon_core::canonical_ip(ip), source);
        } else if let Ok(net) = value.parse::<IpNet>() {
            self.nets.push((net.trunc(), source));
        } else {
            let host = Hostname::parse(value)
                .map_err(|e| format!("`{value}` is not an address, network or domain: {e}"))?;
            self.domains.insert(host.as_str().to_string(), source);
        }
        Ok(())
    }

    /// Add one STIX object: an `indicator` with a STIX pattern of
    /// supported comparisons (anything else is skipped; a revoked
    /// indicator is left out).
    pub fn add_object(&mut self, o: &serde_json::Value) {
        if o.get("type").and_then(|t| t.as_str()) != Some("indicator")
            || o.get("revoked").and_then(serde_json::Value::as_bool) == Some(true)
        {
            return;
        }
        let id = o
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or("indicator")
            .to_string();
        let name = o.get("name").and_then(|v| v.as_str()).map(str::to_string);
        if o.get("pattern_type").and_then(|v| v.as_str()) != Some("stix") {
            self.skipped.push(format!("{id}: pattern type is not stix"));
            return;
        }
        let Some(pattern) = o.get("pattern").and_then(|v| v.as_str()) else {
            self.skipped.push(format!("{id}: no pattern"));
            return;
        };
        let valid_until_ms = o
            .get("valid_until")
            .and_then(|v| v.as_str())
            .and_then(cordon_flow::time::parse_rfc3339);
        match parse_pattern(pattern) {
            Ok(values) => {
                for v in values {
                    let source = Source {
                        id: id.clone(),
                        name: name.clone(),
                        valid_until_ms,
                    };
                    if let Err(why) = self.add_value(&v, source) {
                        self.skipped.push(format!("{id}: {why}"));
                    }
                }
            }
            Err(why) => self.skipped.push(format!("{id}: {why}")),
        }
    }

    /// The indicator `ip` matches, if any.
    pub fn match_ip(&self, ip: IpAddr) -> Option<&Source> {
        let ip = cordon_core::canonical_ip(ip);
        self.ips.get(&ip).or_else(|| {
            self.nets
                .iter()
                .find(|(n, _)| n.contains(&ip))
                .map(|(_, s)| s)
        })
    }

    /// The indicator `host` (or a parent domain of it) matches, if any.
    pub fn match_host(&self, host: &str) -> Option<&Source> {
        let host = Hostname::parse(host).ok()?;
        let mut name = host.as_str();
        loop {
            if let Some(s) = self.domains.get(name) {
                return Some(s);
            }
            name = name.split_once('.')?.1;
        }
    }

    /// Distinct indicator ids loaded.
    pub fn sources(&self) -> usize {
        let ids: FxHashSet<&str> = self
            .ips
            .values()
            .chain(self.nets.iter().map(|(_, s)| s))
            .chain(self.domains.values())
            .map(|s| s.id.as_str())
            .collect();
        ids.len()
    }
}

/// A STIX pattern this reader does not take, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPattern(pub String);

/// The values of a STIX pattern made of `[...]` observation expressions of
/// supported comparisons joined by `OR`.
pub fn parse_pattern(pattern: &str) -> Result<Vec<String>, InvalidPattern> {
    let mut values = Vec::new();
    let text = pattern.trim();
    // Split on OR outside quotes; refuse AND, FOLLOWEDBY, qualifiers.
    let mut parts = Vec::new();
    let mut depth_quote = false;
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                depth_quote = !depth_quote;
                current.push(c);
            }
            '\\' if depth_quote => {
                current.push(c);
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            _ => current.push(c),
        }
        if !depth_quote && current.ends_with(" OR ") {
            current.truncate(current.len() - 4);
            parts.push(std::mem::take(&mut current));
        }
    }
    parts.push(current);
    for part in parts {
        let p = part
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim();
        if p.is_empty() {
            continue;
        }
        let upper = p.to_ascii_uppercase();
        if upper.contains(" AND ") || upper.contains("FOLLOWEDBY") || upper.contains(" WITHIN ") {
            return Err(InvalidPattern(format!("unsupported pattern `{pattern}`")));
        }
        let (path, op, value) = if let Some((l, r)) = p.split_once(" ISSUBSET ") {
            (l.trim(), "ISSUBSET", r.trim())
        } else if let Some((l, r)) = p.split_once('=') {
            (l.trim(), "=", r.trim())
        } else {
            return Err(InvalidPattern(format!("unsupported comparison `{p}`")));
        };
        let value = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .ok_or_else(|| InvalidPattern(format!("value not quoted in `{p}`")))?
            .replace("\\'", "'")
            .replace("\\\\", "\\");
        match (path, op) {
            ("ipv4-addr:value" | "ipv6-addr:value", _) | ("domain-name:value", "=") => {
                values.push(value);
            }
            _ => {
                return Err(InvalidPattern(format!(
                    "unsupported object path `{path}` with {op}"
                )));
            }
        }
    }
    if values.is_empty() {
        return Err(InvalidPattern("empty pattern".to_string()));
    }
    Ok(values)
}
