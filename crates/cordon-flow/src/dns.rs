//! Hostnames from DNS answers seen: a Zeek `dns.log` tells which name a
//! client resolved to which address, so a later flow from that client to
//! that address can carry the name (and FQDN groups can match it).
//!
//! An answer names flows that start within its TTL after it was seen (at
//! least a minute, since clients and caches keep answers a little longer);
//! the most recent matching answer wins. Memory is bounded by
//! [`DnsAnswers::MAX_PAIRS`].

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;

use crate::read::{Line, LineReader, Location, Report, Skip, SkipReason, maybe_gunzip};
use crate::sources::{clip, parse_ip};
use crate::time::parse_rfc3339;

/// How much later than a flow's recorded start its DNS answer may be.
const START_SLACK_MS: i64 = 60_000;

/// How long after an answer's TTL a flow may still be named by it: some
/// logs stamp a connection with its end (Azure's flow-end tuples), and a
/// connection opened within the TTL may end minutes later.
const END_SLACK_MS: i64 = 600_000;

/// Shortest time an answer is trusted, in milliseconds.
const MIN_TTL_MS: i64 = 60_000;

/// One answer: valid from, valid until, name.
type Answer = (i64, i64, Arc<str>);

/// DNS answers by (client, answered address).
#[derive(Debug, Default)]
pub struct DnsAnswers {
    pairs: HashMap<(IpAddr, IpAddr), Vec<Answer>>,
    answers: u64,
}

impl DnsAnswers {
    /// Client/address pairs kept at most; more answers are counted as
    /// skipped.
    pub const MAX_PAIRS: usize = 2_000_000;

    /// How many answers are held.
    pub fn len(&self) -> u64 {
        self.answers
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.answers == 0
    }

    /// Record that `client` resolved `name` to `address` at `at_ms`.
    fn add(
        &mut self,
        client: IpAddr,
        address: IpAddr,
        name: Arc<str>,
        at_ms: i64,
        ttl_ms: i64,
    ) -> bool {
        if self.pairs.len() >= Self::MAX_PAIRS && !self.pairs.contains_key(&(client, address)) {
            return false;
        }
        let list = self.pairs.entry((client, address)).or_default();
        list.push((at_ms, at_ms + ttl_ms.max(MIN_TTL_MS), name));
        self.answers += 1;
        true
    }

    /// The name `client` most recently resolved to `address` that was still
    /// valid at `at_ms`. An answer up to a minute after `at_ms` counts too:
    /// flow logs such as AWS's give the start of their aggregation window,
    /// not of the connection, so the lookup before it can come "later";
    /// and up to ten minutes past its TTL, for logs stamped at the end.
    pub fn lookup(&self, client: IpAddr, address: IpAddr, at_ms: i64) -> Option<&str> {
        self.pairs
            .get(&(client, address))?
            .iter()
            .filter(|(from, until, _)| {
                *from <= at_ms + START_SLACK_MS && at_ms <= *until + END_SLACK_MS
            })
            .max_by_key(|(from, _, _)| *from)
            .map(|(_, _, name)| &**name)
    }

    /// Read a Zeek `dns.log` (TSV with headers, or JSON lines).
    ///
    /// # Errors
    /// I/O errors; malformed records are counted in the report.
    pub fn read_zeek(&mut self, name: &str, input: Box<dyn Read>) -> std::io::Result<Report> {
        let mut lines = LineReader::new(maybe_gunzip(input)?, 1024 * 1024);
        let mut report = Report::default();
        let file: Arc<str> = name.into();
        let mut columns: HashMap<String, usize> = HashMap::new();
        let mut separator = "\t".to_string();
        let mut set_separator = ",".to_string();
        while let Some((line_no, offset, line)) = lines.next_line()? {
            let at = Location {
                file: Arc::clone(&file),
                line: Some(line_no),
                offset,
                within: None,
            };
            let text = match line {
                Line::TooLong(n) => {
                    report.records += 1;
                    report.skip(
                        &at,
                        Skip::new(SkipReason::TooLong, format!("line of {n} bytes")),
                    );
                    continue;
                }
                Line::Text(bytes) => match std::str::from_utf8(bytes) {
                    Ok(t) => t.to_string(),
                    Err(_) => {
                        report.records += 1;
                        report.skip(&at, Skip::new(SkipReason::InvalidUtf8, "invalid UTF-8"));
                        continue;
                    }
                },
            };
            if text.trim().is_empty() {
                continue;
            }
            if let Some(header) = text.strip_prefix('#') {
                if let Some(sep) = header.strip_prefix("separator ") {
                    separator = sep.trim().replace("\\x09", "\t");
                } else {
                    let mut parts = header.split(separator.as_str());
                    match parts.next() {
                        Some("fields") => {
                            columns = parts.enumerate().map(|(i, n)| (n.to_string(), i)).collect()
                        }
                        Some("set_separator") => {
                            set_separator = parts.next().unwrap_or(",").to_string()
                        }
                        _ => {}
                    }
                }
                continue;
            }
            report.records += 1;
            let parsed = if text.trim_start().starts_with('{') {
                json_record(&text)
            } else {
                let values: Vec<&str> = text.split(separator.as_str()).collect();
                tsv_record(&columns, &values, &set_separator)
            };
            match parsed {
                Ok(Some((ts, client, query, answers))) => {
                    let name: Arc<str> = query.trim_end_matches('.').to_ascii_lowercase().into();
                    let mut kept = false;
                    for (address, ttl) in answers {
                        if !self.add(client, address, Arc::clone(&name), ts, ttl) {
                            report.skip(
                                &at,
                                Skip::new(
                                    SkipReason::Malformed,
                                    "too many client/address pairs; answer not kept",
                                ),
                            );
                        }
                        kept = true;
                    }
                    if kept {
                        report.flows += 1;
                    } else {
                        report.skip(
                            &at,
                            Skip::new(SkipReason::NotAFlow, "no address in the answers"),
                        );
                    }
                }
                Ok(None) => {
                    report.skip(&at, Skip::new(SkipReason::NotAFlow, "no query or answers"))
                }
                Err(skip) => report.skip(&at, skip),
            }
        }
        Ok(report)
    }
}

/// Whether the start of a file, `head` (decompressed), is a Zeek DNS log:
/// a TSV header saying `#path dns`, or a first JSON record a shipper
/// tagged as the `dns` stream (`_path` or `@stream`). Such a file names
/// flows; it holds none.
pub fn is_zeek_dns(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    for line in text.lines().take(16) {
        let line = line.trim();
        if let Some(path) = line.strip_prefix("#path") {
            return path.trim() == "dns";
        }
        // A header without `#path`: the DNS log's own columns say it.
        if let Some(fields) = line.strip_prefix("#fields") {
            let mut names = fields.split_whitespace();
            return names.clone().any(|n| n == "query") && names.any(|n| n == "answers");
        }
        if line.starts_with('{') {
            // The first record decides; a line cut at the end of `head`
            // is read up to the cut.
            let stream = |key: &str| {
                line.find(&format!("\"{key}\""))
                    .map(|at| &line[at + key.len() + 2..])
                    .and_then(|rest| rest.trim_start().strip_prefix(':'))
                    .map(|rest| rest.trim_start().starts_with("\"dns\""))
                    .unwrap_or(false)
            };
            return stream("_path") || stream("@stream");
        }
        if !line.is_empty() && !line.starts_with('#') {
            return false;
        }
    }
    false
}

type Parsed = Option<(i64, IpAddr, String, Vec<(IpAddr, i64)>)>;

fn ts_ms(ts: &str) -> Result<i64, Skip> {
    if let Some(ms) = parse_rfc3339(ts) {
        return Ok(ms);
    }
    ts.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e13)
        .map(|s| (s * 1000.0).round() as i64)
        .ok_or_else(|| Skip::malformed(format!("`ts` is not a time: `{}`", clip(ts))))
}

fn pair(answers: Vec<&str>, ttls: Vec<&str>) -> Vec<(IpAddr, i64)> {
    answers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let ip = a.trim().parse::<IpAddr>().ok()?;
            let ttl = ttls
                .get(i)
                .and_then(|t| t.trim().parse::<f64>().ok())
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map_or(0, |t| (t * 1000.0) as i64);
            Some((cordon_core::canonical_ip(ip), ttl))
        })
        .collect()
}

fn tsv_record(
    columns: &HashMap<String, usize>,
    values: &[&str],
    set_separator: &str,
) -> Result<Parsed, Skip> {
    let get = |k: &str| {
        columns
            .get(k)
            .and_then(|i| values.get(*i))
            .copied()
            .filter(|v| *v != "-" && *v != "(empty)" && !v.is_empty())
    };
    let (Some(ts), Some(client), Some(query), Some(answers)) =
        (get("ts"), get("id.orig_h"), get("query"), get("answers"))
    else {
        return Ok(None);
    };
    let client = parse_ip("id.orig_h", client)?;
    let answers = answers.split(set_separator).collect();
    let ttls = get("TTLs")
        .map(|t| t.split(set_separator).collect())
        .unwrap_or_default();
    Ok(Some((
        ts_ms(ts)?,
        client,
        query.to_string(),
        pair(answers, ttls),
    )))
}

fn json_record(text: &str) -> Result<Parsed, Skip> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| Skip::malformed(format!("invalid JSON: {e}")))?;
    let ts = match v.get("ts") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Ok(None),
    };
    // Shippers flatten Zeek's dotted keys (`id_orig_h`).
    let (Some(client), Some(query)) = (
        v.get("id.orig_h")
            .or_else(|| v.get("id_orig_h"))
            .and_then(Value::as_str),
        v.get("query").and_then(Value::as_str),
    ) else {
        return Ok(None);
    };
    let strings = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let answers = strings("answers");
    let ttls = strings("TTLs");
    Ok(Some((
        ts_ms(&ts)?,
        parse_ip("id.orig_h", client)?,
        query.to_string(),
        pair(
            answers.iter().map(String::as_str).collect(),
            ttls.iter().map(String::as_str).collect(),
        ),
    )))
}

#[cfg(test)]
mod tests {
    use super::DnsAnswers;

    const DNS_LOG: &str = "#separator \\x09
#set_separator\t,
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected
1700000000.000000\tC1\t10.0.3.10\t53000\t10.0.0.2\t53\tudp\t1\t0.01\texfil-7f3a.s3.amazonaws.com\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\ts3-w.amazonaws.com,52.95.1.2,52.95.1.3\t30.0,5.0,5.0\tF
1700000100.000000\tC2\t10.0.3.10\t53001\t10.0.0.2\t53\tudp\t2\t0.01\tapi.metrics.example\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t52.95.1.2\t3600.0\tF
1700000200.000000\tC3\t10.0.3.11\t53002\t10.0.0.2\t53\tudp\t3\t0.01\tnxdomain.example\t1\tC_INTERNET\t1\tA\t3\tNXDOMAIN\tF\tF\tT\tT\t0\t-\t-\tF
";

    #[test]
    fn dns_logs_are_told_apart_from_connection_logs() {
        use super::is_zeek_dns;
        assert!(is_zeek_dns(b"#separator \\x09\n#path\tdns\n#fields\tts\n"));
        assert!(!is_zeek_dns(
            b"#separator \\x09\n#path\tconn\n#fields\tts\n"
        ));
        assert!(is_zeek_dns(
            b"#fields\tts\tid.orig_h\tquery\tanswers\tTTLs\n"
        ));
        assert!(!is_zeek_dns(b"#fields\tts\tid.orig_h\tquery\n"));
        assert!(is_zeek_dns(
            br#"{"@stream":"dns","ts":1588317581.45,"id_orig_h":"10.0.1.5"}"#
        ));
        assert!(is_zeek_dns(br#"{"_path": "dns", "ts": 1}"#));
        assert!(!is_zeek_dns(br#"{"@stream":"conn","ts":1}"#));
        assert!(!is_zeek_dns(br#"{"ts":1,"query":"dns"}"#));
        assert!(!is_zeek_dns(b"version account-id interface-id\n"));
        assert!(!is_zeek_dns(b""));
    }

    #[test]
    fn flattened_json_keys_are_read() {
        let mut d = DnsAnswers::default();
        let line = r#"{"@stream":"dns","ts":1588317581.454246,"id_orig_h":"10.0.1.5","id_orig_p":62012,"id_resp_h":"10.0.0.4","id_resp_p":53,"query":"d.docs.live.net","answers":["odc-common-us-meta.onedrive.akadns.net","13.107.42.12"],"TTLs":[300.0,240.0]}"#;
        let report = d.read_zeek("dns.log", Box::new(line.as_bytes())).unwrap();
        assert_eq!((report.records, report.flows), (1, 1));
        assert_eq!(
            d.lookup(
                "10.0.1.5".parse().unwrap(),
                "13.107.42.12".parse().unwrap(),
                1_588_317_581_625
            ),
            Some("d.docs.live.net")
        );
    }

    #[test]
    fn answers_name_later_flows_within_their_ttl() {
        let mut d = DnsAnswers::default();
        let report = d
            .read_zeek("dns.log", Box::new(DNS_LOG.as_bytes()))
            .unwrap();
        assert_eq!((report.records, report.flows), (3, 2));
        let c = "10.0.3.10".parse().unwrap();
        let a = "52.95.1.3".parse().unwrap();
        assert_eq!(
            d.lookup(c, a, 1_700_000_030_000),
            Some("exfil-7f3a.s3.amazonaws.com")
        );
        // Valid for the minimum TTL (60 s), plus ten minutes for records
        // stamped at a connection's end.
        assert_eq!(
            d.lookup(c, a, 1_700_000_090_000),
            Some("exfil-7f3a.s3.amazonaws.com"),
            "an end-stamped record of a connection opened in time"
        );
        assert_eq!(
            d.lookup(c, a, 1_700_000_661_000),
            None,
            "past the TTL and the end slack"
        );
        // Up to a minute early (flow-log windows start before the
        // connection), not more.
        assert_eq!(
            d.lookup(c, a, 1_699_999_970_000),
            Some("exfil-7f3a.s3.amazonaws.com"),
            "in the aggregation window before the answer"
        );
        assert_eq!(
            d.lookup(c, a, 1_699_999_939_000),
            None,
            "well before the answer"
        );
        let b = "52.95.1.2".parse().unwrap();
        assert_eq!(
            d.lookup(c, b, 1_700_000_150_000),
            Some("api.metrics.example"),
            "the latest answer wins"
        );
        assert_eq!(
            d.lookup("10.0.3.11".parse().unwrap(), b, 1_700_000_150_000),
            None,
            "another client"
        );
        let json = r#"{"ts":1700000000.5,"id.orig_h":"10.0.1.10","query":"Deb.Debian.org.","answers":["151.101.2.132"],"TTLs":[300.0]}"#;
        let mut d = DnsAnswers::default();
        d.read_zeek("dns.json", Box::new(json.as_bytes())).unwrap();
        assert_eq!(
            d.lookup(
                "10.0.1.10".parse().unwrap(),
                "151.101.2.132".parse().unwrap(),
                1_700_000_100_000
            ),
            Some("deb.debian.org")
        );
    }
}
