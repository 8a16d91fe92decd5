//! Beaconing: connections from one source to one destination at regular
//! intervals with regular sizes, the shape of command-and-control check-ins.
//!
//! Scoring follows RITA's approach. For the intervals between connections:
//! the Bowley skew (1 - |skew|: symmetric intervals score high), the MAD
//! relative to the median (1 - MAD/median: tight intervals score high), and
//! coverage (the share of hours between first and last connection that
//! have one: a beacon keeps beating). The same skew and MAD scores are taken
//! over the bytes sent per connection. The score is the mean of the interval
//! score (weight 2) and the size score (weight 1). Quartiles and the MAD
//! ignore outliers, so jitter and missed beats cost little.
//!
//! Pairs are keyed by (source, destination hostname or address, port), so a
//! beacon to a name behind rotating addresses is still one pair. A pair is
//! any source and destination but an inbound one (an external source to an
//! internal destination): C2 servers also sit inside private ranges (a
//! compromised host, a proxy), and a sensor on an Internet-facing host sees
//! no private addresses at all. Infrastructure services (the knowledge
//! base's `services.json`: DNS, NTP, DHCP, Kerberos...) are never pairs.
//!
//! Besides the regular beat, the detector reports two shapes real C2 shows:
//! a **strobe** (a hundred or more connections to one pair within five
//! minutes: an interactive session over short-lived requests) and a
//! **reconnect storm** (many refused or unanswered attempts to one pair:
//! an implant calling a C2 server that is down). Scoring works from a few
//! minutes of traffic (`min_span`) to days.
//!
//! A beat also shows **inside one session**: an implant that holds one
//! connection open (C2 over QUIC, a websocket) checks in on it at a regular
//! cadence. Sources that see packets (captures) report those check-ins as
//! the record's `beats`; [`MIN_SESSION_BEATS`] or more at regular
//! intervals over at least a minute are a beacon of one session. Protocol
//! keepalives (QUIC and HTTP/2 pings, websocket pings) look the same, so
//! such a beacon alone is `low`.
//!
//! Severity means something: a lone periodic pattern is at most `medium`
//! (and `low` between internal hosts on a well-known port, or to a known
//! periodic service such as a connectivity check); `high` and `critical`
//! need the policy to say the destination is not sanctioned. Each finding
//! says why in its `severity_reason` fact.

use cordon_core::FindingKind;
use cordon_flow::Flow;

use super::{Detector, Samples, c2_technique, calibrate, dst_key, fact, finding, two_way};
use crate::bounded::{Aged, Bounded};
use crate::config::Beaconing;
use crate::finding::{Finding, Severity};
use crate::services::Services;
use crate::stats::regularity;

/// Connections within [`STROBE_WINDOW_S`] that make a strobe.
const STROBE_CONNECTIONS: usize = 100;
/// The window of a strobe, seconds.
const STROBE_WINDOW_S: u32 = 300;
/// Unanswered attempts that make a reconnect storm.
const STORM_ATTEMPTS: usize = 20;
/// The window of a reconnect storm, seconds.
const STORM_WINDOW_S: u32 = 900;
/// Least span of a beacon between hosts neither known to be internal.
const UNKNOWN_MIN_SPAN_MS: i64 = 6 * 3_600_000;
/// Check-ins inside one session that make a beacon.
const MIN_SESSION_BEATS: usize = 6;
/// Least span of a beacon inside one session.
const MIN_SESSION_SPAN_MS: u32 = 60_000;
/// Least median interval of a beacon inside one session (faster is
/// interactive use or streaming).
const MIN_SESSION_INTERVAL_MS: f64 = 2_000.0;

/// Where a pair's destination is, seen from its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Internal to external.
    Outbound,
    /// Between internal hosts.
    Internal,
    /// Neither side known to be internal (a sensor on a public host).
    Unknown,
}

impl Reach {
    fn of(f: &Flow) -> Option<Reach> {
        match (super::src_internal(f), super::dst_internal(f)) {
            (true, false) => Some(Reach::Outbound),
            (true, true) => Some(Reach::Internal),
            (false, false) => Some(Reach::Unknown),
            (false, true) => None,
        }
    }
}

struct Pair {
    /// Answered connection starts, seconds since `base_s`.
    times: Vec<u32>,
    /// Bytes out per answered connection.
    sizes: Vec<u32>,
    /// Unanswered attempts, seconds since `base_s`.
    fails: Vec<u32>,
    base_s: i64,
    last_ms: i64,
    reported: f64,
    strobe_reported: bool,
    storm_reported: bool,
    session_reported: bool,
    reach: Reach,
    /// The policy says the destination is not sanctioned (enriched, not
    /// allowed by a rule) or denied it.
    unsanctioned: bool,
    sample: Option<Flow>,
    samples: Samples,
}

/// Whether `f` is an attempt the far end never answered: refused by it,
/// reset before any answer, or (for sources that record both directions)
/// no bytes back. A connection an enforcement point refused (the gateway,
/// the agent, a cloud firewall) is not: the implant still called on time,
/// so it is a beat.
fn unanswered(f: &Flow) -> bool {
    match f.get_attr("conn_state") {
        Some(state) => matches!(state, "REJ" | "S0" | "RSTOS0" | "SH" | "SHR" | "OTH"),
        None => {
            f.observed != Some(cordon_flow::Observed::Rejected)
                && f.protocol == 6
                && two_way(f)
                && f.bytes_in == 0
                && f.packets_in == 0
        }
    }
}

/// Ports whose periodic use between internal hosts is ordinary (web,
/// mail, web proxies, remote administration, databases, file services).
fn common_port(port: u16) -> bool {
    matches!(
        port,
        21 | 22
            | 25
            | 80
            | 110
            | 143
            | 443
            | 445
            | 465
            | 587
            | 993
            | 995
            | 1433
            | 1521
            | 3128
            | 3306
            | 3389
            | 5432
            | 5985
            | 5986
            | 6379
            | 8080
            | 9200
            | 27017
    )
}

impl Aged for Pair {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// The beaconing detector.
pub struct Beacons {
    cfg: Beaconing,
    services: std::sync::Arc<Services>,
    pairs: Bounded<(std::net::IpAddr, String, u16), Pair>,
    hour: Option<i64>,
}

impl Beacons {
    /// A detector with `cfg`, leaving out `services`' infrastructure.
    pub fn new(cfg: Beaconing, services: std::sync::Arc<Services>) -> Self {
        let pairs = Bounded::new(cfg.common.max_state);
        Beacons {
            cfg,
            services,
            pairs,
            hour: None,
        }
    }
}

/// The highest severity a pattern of `pair` may have on its own, and why.
fn ceiling(pair: &Pair, port: u16, host: Option<&str>, services: &Services) -> (Severity, String) {
    if let Some(service) = services.periodic(host) {
        return (
            Severity::Low,
            format!(
                "a known periodic service ({service}); low unless something else corroborates it"
            ),
        );
    }
    match pair.reach {
        Reach::Outbound if pair.unsanctioned => (
            Severity::Critical,
            "the policy sanctions no traffic to this destination".to_string(),
        ),
        Reach::Outbound => (
            Severity::Medium,
            "a periodic pattern alone (no policy says the destination is unsanctioned)".to_string(),
        ),
        Reach::Internal | Reach::Unknown if !common_port(port) => (
            Severity::Medium,
            format!(
                "{} on an uncommon port ({port})",
                if pair.reach == Reach::Internal {
                    "between internal hosts"
                } else {
                    "between hosts not known to be internal"
                }
            ),
        ),
        Reach::Internal | Reach::Unknown => (
            Severity::Low,
            format!(
                "{} on a common service port ({port}); low unless something else corroborates it",
                if pair.reach == Reach::Internal {
                    "between internal hosts"
                } else {
                    "between hosts not known to be internal"
                }
            ),
        ),
    }
}

/// `s` seconds for people (`40 s`, `12 min`, `3.5 h`).
fn human_span(s: u32) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{:.1} h", f64::from(s) / 3600.0),
    }
}

/// Whether some `n` of the sorted `times` fall within `window` seconds.
fn dense(times: &[u32], n: usize, window: u32) -> bool {
    n >= 2 && times.windows(n).any(|w| w[n - 1] - w[0] <= window)
}

/// The score (0..1) and its parts for connection times and sizes.
pub(crate) fn score(times: &[u32], sizes: &[u32]) -> Option<(f64, [f64; 5])> {
    if times.len() < 3 {
        return None;
    }
    let mut t: Vec<u32> = times.to_vec();
    t.sort_unstable();
    let intervals: Vec<f64> = t
        .windows(2)
        .map(|w| f64::from(w[1] - w[0]))
        .filter(|d| *d > 0.0)
        .collect();
    if intervals.len() < 2 {
        return None;
    }
    let (ts_skew, ts_mad) = regularity(&intervals);
    let first = f64::from(*t.first()?);
    let last = f64::from(*t.last()?);
    let hours = ((last - first) / 3600.0).ceil().max(1.0) as usize;
    let mut seen = vec![false; hours + 1];
    for x in &t {
        let h = ((f64::from(*x) - first) / 3600.0) as usize;
        if let Some(s) = seen.get_mut(h.min(hours)) {
            *s = true;
        }
    }
    let coverage = if hours <= 1 {
        1.0
    } else {
        seen.iter().filter(|s| **s).count() as f64 / seen.len() as f64
    };
    let s: Vec<f64> = sizes.iter().map(|b| f64::from(*b)).collect();
    let (ds_skew, ds_mad) = regularity(&s);
    let ts = (ts_skew + ts_mad + coverage) / 3.0;
    let ds = (ds_skew + ds_mad) / 2.0;
    Some((
        (2.0 * ts + ds) / 3.0,
        [ts_skew, ts_mad, coverage, ds_skew, ds_mad],
    ))
}

impl Beacons {
    fn evaluate(&mut self, out: &mut Vec<Finding>) {
        let cfg = &self.cfg;
        let services = &self.services;
        for ((src, dst, port), pair) in self.pairs.iter_mut() {
            // The ceiling is worked out only for a pair that reports.
            let ceiling_of = |pair: &Pair| {
                let host = pair.sample.as_ref().and_then(|s| s.hostname.as_deref());
                ceiling(pair, *port, host, services)
            };
            for shape in [storm, strobe] {
                if let Some(mut f) = shape(src, dst, *port, pair) {
                    calibrate(&mut f, ceiling_of(pair));
                    out.push(f);
                }
            }
            // Without a known inside, scanners and password guessers
            // repeat too: only a pattern that lasts for hours counts.
            let (min_connections, min_span) = if pair.reach == Reach::Unknown {
                (
                    cfg.min_connections.max(20),
                    cfg.min_span.max(UNKNOWN_MIN_SPAN_MS),
                )
            } else {
                (cfg.min_connections, cfg.min_span)
            };
            if (pair.times.len() as u64) < min_connections {
                continue;
            }
            let span_ms = (i64::from(*pair.times.iter().max().unwrap_or(&0))
                - i64::from(*pair.times.iter().min().unwrap_or(&0)))
                * 1000;
            if span_ms < min_span {
                continue;
            }
            // A burst (most connections in the same second) is a strobe's
            // business, not a beat.
            let mut sorted = pair.times.clone();
            sorted.sort_unstable();
            let same_second = sorted.windows(2).filter(|w| w[1] == w[0]).count();
            if same_second * 2 >= sorted.len() {
                continue;
            }
            let Some((s, parts)) = score(&pair.times, &pair.sizes) else {
                continue;
            };
            if s < cfg.threshold || s <= pair.reported + 0.02 {
                continue;
            }
            pair.reported = s;
            let Some(sample) = pair.sample.as_ref() else {
                continue;
            };
            let mut t: Vec<u32> = pair.times.clone();
            t.sort_unstable();
            let mut intervals: Vec<f64> = t.windows(2).map(|w| f64::from(w[1] - w[0])).collect();
            let median = crate::stats::median(&mut intervals);
            let (technique, encrypted) = c2_technique(sample.protocol, *port);
            let mut f = finding(
                FindingKind::Beaconing,
                &format!("{src}>{dst}:{port}"),
                sample,
                60.0 + 40.0 * s.min(1.0).powi(2),
                format!(
                    "{} connections from {src} to {dst}:{port} about every {:.0} s (score {s:.2})",
                    pair.times.len(),
                    median
                ),
            );
            f.first_ms = (pair.base_s + i64::from(*t.first().unwrap_or(&0))) * 1000;
            f.last_ms = pair.last_ms;
            f.techniques.push(technique.to_string());
            if encrypted {
                f.techniques.push("T1573".to_string());
            }
            fact(&mut f, "connections", pair.times.len());
            fact(&mut f, "median_interval_s", median);
            fact(&mut f, "score", s);
            fact(&mut f, "interval_skew_score", parts[0]);
            fact(&mut f, "interval_mad_score", parts[1]);
            fact(&mut f, "hourly_coverage", parts[2]);
            fact(&mut f, "size_skew_score", parts[3]);
            fact(&mut f, "size_mad_score", parts[4]);
            pair.samples.clone().into_evidence(&mut f);
            calibrate(&mut f, ceiling_of(pair));
            out.push(f);
        }
    }
}

/// A beacon inside the one session `flow` records (see the module docs):
/// its `beats` at a cadence that scores `threshold` or more.
fn session_beacon(flow: &Flow, threshold: f64) -> Option<Finding> {
    // Announcements nobody answers (discovery broadcasts to a subnet's
    // broadcast address) are not a session.
    if flow.packets_in == 0 && flow.bytes_in == 0 {
        return None;
    }
    let beats = flow.get_attr("beats")?;
    let mut times: Vec<u32> = Vec::new();
    for b in beats.split(',') {
        times.push(b.parse().ok()?);
    }
    if times.len() < MIN_SESSION_BEATS || times.last()? - times.first()? < MIN_SESSION_SPAN_MS {
        return None;
    }
    times.sort_unstable();
    let mut intervals: Vec<f64> = times.windows(2).map(|w| f64::from(w[1] - w[0])).collect();
    let (skew, spread) = regularity(&intervals);
    let score = (skew + spread) / 2.0;
    let median = crate::stats::median(&mut intervals);
    if score < threshold || median < MIN_SESSION_INTERVAL_MS {
        return None;
    }
    let port = flow.dst_port;
    let (technique, encrypted) = c2_technique(flow.protocol, port);
    let mut f = finding(
        FindingKind::Beaconing,
        &format!("session:{}>{}:{port}", flow.src_ip, dst_key(flow)),
        flow,
        60.0 + 40.0 * score.min(1.0).powi(2),
        format!(
            "{} check-ins from {} to {}:{port} inside one session about every {:.0} s (score {score:.2})",
            times.len(),
            flow.src_ip,
            dst_key(flow),
            median / 1000.0
        ),
    );
    f.techniques.push(technique.to_string());
    if encrypted {
        f.techniques.push("T1573".to_string());
    }
    fact(&mut f, "shape", "check-ins inside one session");
    fact(&mut f, "check_ins", times.len());
    fact(&mut f, "median_interval_s", median / 1000.0);
    fact(&mut f, "score", score);
    fact(&mut f, "interval_skew_score", skew);
    fact(&mut f, "interval_mad_score", spread);
    fact(&mut f, "session_s", (flow.end_ms - flow.start_ms) / 1000);
    Some(f)
}

/// A reconnect storm of `pair`, the first time it has one.
fn storm(src: &std::net::IpAddr, dst: &str, port: u16, pair: &mut Pair) -> Option<Finding> {
    // Without a known inside, attempts cannot be told from inbound scans.
    if pair.storm_reported || pair.fails.len() < STORM_ATTEMPTS || pair.reach == Reach::Unknown {
        return None;
    }
    let mut t = pair.fails.clone();
    t.sort_unstable();
    if !dense(&t, STORM_ATTEMPTS, STORM_WINDOW_S) {
        return None;
    }
    let sample = pair.sample.as_ref()?;
    pair.storm_reported = true;
    let span = t.last()? - t.first()?;
    let (technique, _) = c2_technique(sample.protocol, port);
    let mut f = finding(
        FindingKind::Beaconing,
        &format!("storm:{src}>{dst}:{port}"),
        sample,
        65.0,
        format!(
            "{} refused or unanswered attempts from {src} to {dst}:{port} over {} (a callback to a server that is down)",
            t.len(),
            human_span(span)
        ),
    );
    f.first_ms = (pair.base_s + i64::from(*t.first()?)) * 1000;
    f.last_ms = pair.last_ms;
    f.techniques.push(technique.to_string());
    fact(&mut f, "shape", "reconnect storm");
    fact(&mut f, "unanswered_attempts", t.len());
    fact(&mut f, "answered_connections", pair.times.len());
    pair.samples.clone().into_evidence(&mut f);
    Some(f)
}

/// A strobe of `pair`, the first time it has one.
fn strobe(src: &std::net::IpAddr, dst: &str, port: u16, pair: &mut Pair) -> Option<Finding> {
    // Services between internal hosts on their usual ports (an API
    // tier, a proxy) are called this way all day.
    let ordinary = pair.reach == Reach::Internal && common_port(port);
    if pair.strobe_reported
        || pair.times.len() < STROBE_CONNECTIONS
        || pair.reach == Reach::Unknown
        || ordinary
    {
        return None;
    }
    let mut t = pair.times.clone();
    t.sort_unstable();
    if !dense(&t, STROBE_CONNECTIONS, STROBE_WINDOW_S) {
        return None;
    }
    let sample = pair.sample.as_ref()?;
    pair.strobe_reported = true;
    let (technique, encrypted) = c2_technique(sample.protocol, port);
    let mut f = finding(
        FindingKind::Beaconing,
        &format!("strobe:{src}>{dst}:{port}"),
        sample,
        70.0,
        format!(
            "{STROBE_CONNECTIONS} or more connections from {src} to {dst}:{port} within {} min (an interactive session over short requests)",
            STROBE_WINDOW_S / 60
        ),
    );
    f.first_ms = (pair.base_s + i64::from(*t.first()?)) * 1000;
    f.last_ms = pair.last_ms;
    f.techniques.push(technique.to_string());
    if encrypted {
        f.techniques.push("T1573".to_string());
    }
    fact(&mut f, "shape", "strobe");
    fact(&mut f, "connections", t.len());
    pair.samples.clone().into_evidence(&mut f);
    Some(f)
}

impl Detector for Beacons {
    fn name(&self) -> &'static str {
        "beaconing"
    }

    fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        // Sanctioned traffic (a rule allows it), the allowlist, inbound
        // connections and infrastructure services are not command and
        // control.
        let Some(reach) = Reach::of(flow) else {
            return;
        };
        if super::allowed_by_rule(flow)
            || self
                .cfg
                .common
                .allow
                .contains(flow.dst_ip, flow.hostname.as_deref())
            || self
                .services
                .infrastructure(flow.protocol, flow.dst_port)
                .is_some()
        {
            return;
        }
        let enriched = flow.enrichment.as_ref();
        let unsanctioned = enriched.is_some_and(|e| {
            matches!(
                e.verdict,
                cordon_core::Verdict::Deny | cordon_core::Verdict::WouldDeny
            ) || (reach == Reach::Outbound && e.rule.is_none())
        });
        let max = self.cfg.max_samples.max(8) as usize;
        let start_s = flow.start_ms.div_euclid(1000);
        let pair = self
            .pairs
            .entry((flow.src_ip, dst_key(flow), flow.dst_port), || Pair {
                times: Vec::new(),
                sizes: Vec::new(),
                fails: Vec::new(),
                base_s: start_s,
                last_ms: flow.start_ms,
                reported: 0.0,
                strobe_reported: false,
                storm_reported: false,
                session_reported: false,
                reach,
                unsanctioned: false,
                sample: None,
                samples: Samples::default(),
            });
        pair.unsanctioned |= unsanctioned;
        // Only captures record beats: other flows skip the attribute
        // lookup, which would run for every flow.
        if flow.source == cordon_flow::FlowSource::Pcap
            && !pair.session_reported
            && let Some(mut f) = session_beacon(flow, self.cfg.threshold)
        {
            pair.session_reported = true;
            let (max, why) = ceiling(
                pair,
                flow.dst_port,
                flow.hostname.as_deref(),
                &self.services,
            );
            let ceiling = if max >= Severity::High {
                (max, why)
            } else {
                (
                    Severity::Low,
                    "check-ins inside one session alone (protocol keepalives look the same); low unless something else corroborates it"
                        .to_string(),
                )
            };
            calibrate(&mut f, ceiling);
            out.push(f);
        }
        let offset = u32::try_from((start_s - pair.base_s).max(0)).unwrap_or(u32::MAX);
        if unanswered(flow) {
            if pair.fails.len() >= max {
                pair.fails.remove(0);
            }
            pair.fails.push(offset);
            pair.last_ms = pair.last_ms.max(flow.start_ms);
            if pair.sample.is_none() {
                pair.sample = Some(flow.clone());
            }
            pair.samples.add(flow);
            return;
        }
        if pair.times.len() >= max {
            // Keep the most recent beats.
            pair.times.remove(0);
            pair.sizes.remove(0);
        }
        pair.times.push(offset);
        pair.sizes
            .push(u32::try_from(flow.bytes_out).unwrap_or(u32::MAX));
        pair.last_ms = pair.last_ms.max(flow.start_ms);
        if pair.sample.is_none() {
            pair.sample = Some(flow.clone());
        }
        pair.samples.add(flow);
    }

    fn tick(&mut self, now_ms: i64, out: &mut Vec<Finding>) {
        // Score once an hour of flow time.
        let hour = now_ms.div_euclid(3_600_000);
        if self.hour != Some(hour) {
            if self.hour.is_some() {
                self.evaluate(out);
            }
            self.hour = Some(hour);
        }
    }

    fn interim(&mut self, out: &mut Vec<Finding>) {
        self.evaluate(out);
    }

    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.evaluate(out);
    }

    fn state(&self) -> usize {
        self.pairs.len()
    }

    fn evicted(&self) -> u64 {
        self.pairs.evicted()
    }
}
