//! Exfiltration: an internal source sends an external destination far more
//! in one hour than the source usually sends anywhere.
//!
//! For each source, the hourly bytes out to external destinations over the
//! last two days are the baseline: a destination's hour is reported when it
//! is at least `min_bytes`, more than `median + mad_factor × MAD` of the
//! baseline, and more than four times anything the pair carried in an
//! earlier hour, or than the source sent anywhere in an earlier hour
//! (routine transfers, such as nightly backups, are not news). Upload-heavy ratios, a first-seen destination and
//! chunking into similar-sized transfers raise the score; a destination
//! that is cloud object storage and not a declared vendor makes it a
//! `cloud-exfiltration` (T1567.002, T1537).
//!
//! Without a policy the baseline is the only judge, so the volume rule
//! waits until the network has been watched for `learn` (a day): in the
//! first hours every source's "usual hour" is nothing, and the first
//! nightly backup would be news.
//!
//! A host with no history still gets judged: tens of MB uploaded within
//! an hour to a raw address (no name known) on a port that is not a web
//! port, first seen that hour and upload-heavy, is exfiltration over an
//! alternative protocol whatever the baseline (a RAT shipping a phone's
//! data to its server).

use std::collections::VecDeque;
use std::net::IpAddr;

use cordon_core::FindingKind;
use cordon_flow::Flow;
use cordon_policy::{FqdnPattern, Hostname};

use super::{Detector, Samples, bytes, dst_key, fact, finding, vendor};
use crate::bounded::{Aged, Bounded};
use crate::config::Exfiltration as Settings;
use crate::finding::Finding;
use crate::stats::{mad, regularity};

const HOUR: i64 = 3_600_000;
const BASELINE_HOURS: usize = 48;

/// Object storage endpoints of the large clouds and file-sharing services.
const CLOUD_STORAGE: &[&str] = &[
    "s3.amazonaws.com",
    "*.s3.amazonaws.com",
    "*.amazonaws.com",
    "storage.googleapis.com",
    "*.storage.googleapis.com",
    "*.blob.core.windows.net",
    "*.dfs.core.windows.net",
    "*.r2.cloudflarestorage.com",
    "*.digitaloceanspaces.com",
    "*.backblazeb2.com",
    "*.wasabisys.com",
    "content.dropboxapi.com",
    "*.dropboxapi.com",
    "upload.box.com",
    "mega.nz",
    "*.mega.nz",
    "*.mega.co.nz",
    // OneDrive (personal and business) and Google Drive.
    "d.docs.live.net",
    "*.docs.live.net",
    "onedrive.live.com",
    "api.onedrive.com",
    "*.files.1drv.com",
    "*.sharepoint.com",
    "drive.google.com",
    // Anonymous file drops.
    "transfer.sh",
    "*.wetransfer.com",
    "file.io",
    "*.gofile.io",
];

/// [`CLOUD_STORAGE`] as patterns.
pub(crate) fn storage_patterns() -> Vec<FqdnPattern> {
    CLOUD_STORAGE
        .iter()
        .filter_map(|p| FqdnPattern::parse(p).ok())
        .collect()
}

struct Source {
    /// (hour, bytes out to external destinations), oldest first.
    hours: VecDeque<(i64, u64)>,
    last_ms: i64,
}

impl Aged for Source {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

struct Pair {
    hour: i64,
    out: u64,
    r#in: u64,
    sizes: Vec<u64>,
    evaluated: bool,
    max_prev: u64,
    first_hour: i64,
    last_ms: i64,
    largest: Option<Flow>,
    samples: Samples,
    bidirectional: bool,
}

impl Aged for Pair {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// The exfiltration detector.
pub struct Exfiltration {
    cfg: Settings,
    sources: Bounded<IpAddr, Source>,
    pairs: Bounded<(IpAddr, String), Pair>,
    storage: Vec<FqdnPattern>,
    closed: i64,
    /// When the first flow of any kind was seen.
    watched_from: Option<i64>,
}

impl Exfiltration {
    /// A detector with `cfg`.
    pub fn new(cfg: Settings) -> Self {
        Exfiltration {
            sources: Bounded::new(cfg.common.max_state),
            pairs: Bounded::new(cfg.common.max_state),
            storage: storage_patterns(),
            cfg,
            closed: i64::MIN,
            watched_from: None,
        }
    }
}

/// Judge one closed hour of one pair.
fn judge(
    cfg: &Settings,
    watched_from: i64,
    storage: &dyn Fn(Option<&str>) -> bool,
    sources: &mut Bounded<IpAddr, Source>,
    (src, dst): &(IpAddr, String),
    pair: &mut Pair,
    out: &mut Vec<Finding>,
) {
    if pair.evaluated {
        return;
    }
    pair.evaluated = true;
    if let Some(f) = raw_upload(cfg, (src, dst), pair) {
        out.push(f);
        return;
    }
    let b = pair.out;
    if b < cfg.min_bytes || pair.max_prev.saturating_mul(4) >= b {
        return;
    }
    let policy = pair
        .largest
        .as_ref()
        .is_some_and(|f| f.enrichment.is_some());
    if !policy && pair.hour * HOUR < watched_from.saturating_add(cfg.learn) {
        return;
    }
    // A source that already sent this much in an hour elsewhere (a backup
    // server whose bucket answers from many addresses) is doing its job.
    let busiest = sources.get_mut(src).map_or(0, |s| {
        s.hours
            .iter()
            .filter(|(h, _)| *h < pair.hour)
            .map(|(_, b)| *b)
            .max()
            .unwrap_or(0)
    });
    if busiest.saturating_mul(4) >= b {
        return;
    }
    let baseline: Vec<f64> = sources
        .get_mut(src)
        .map(|s| {
            s.hours
                .iter()
                .filter(|(h, _)| *h != pair.hour)
                .map(|(_, b)| *b as f64)
                .collect()
        })
        .unwrap_or_default();
    let (median, spread) = if baseline.is_empty() {
        (0.0, 0.0)
    } else {
        mad(&baseline)
    };
    let threshold = median + cfg.mad_factor * spread.max(1_048_576.0);
    if (b as f64) <= threshold {
        return;
    }
    let Some(sample) = pair.largest.as_ref() else {
        return;
    };
    let first_seen = pair.first_hour == pair.hour;
    let ratio = if pair.bidirectional {
        b as f64 / (pair.r#in.max(1)) as f64
    } else {
        f64::NAN
    };
    let upload_heavy = ratio >= cfg.upload_ratio;
    let sizes: Vec<f64> = pair.sizes.iter().map(|s| *s as f64).collect();
    let chunked = sizes.len() >= 3 && {
        let (skew, spread) = regularity(&sizes);
        (skew + spread) / 2.0 >= 0.8
    };
    let cloud = storage(sample.hostname.as_deref()) && vendor(sample).is_none();
    let excess = (b as f64 / cfg.min_bytes as f64).log10().clamp(0.0, 2.0);
    let score = 60.0
        + 10.0 * excess
        + if first_seen { 10.0 } else { 0.0 }
        + if upload_heavy { 5.0 } else { 0.0 }
        + if cloud { 10.0 } else { 0.0 };
    let kind = if cloud {
        FindingKind::CloudExfiltration
    } else {
        FindingKind::Exfiltration
    };
    let mut f = finding(
        kind,
        // One finding per source and hour: a bucket answering from several
        // addresses is one transfer, not several.
        &format!("{src}@{}", pair.hour),
        sample,
        score,
        format!(
            "{src} sent {} to {dst} in one hour; its usual hour is {} (MAD {}){}",
            bytes(b),
            bytes(median as u64),
            bytes(spread as u64),
            if first_seen {
                "; first time this destination was seen"
            } else {
                ""
            }
        ),
    );
    f.first_ms = pair.hour * HOUR;
    f.last_ms = pair.last_ms;
    f.port = Some(sample.dst_port);
    f.techniques = if cloud {
        vec!["T1567.002".into(), "T1537".into()]
    } else {
        vec!["T1048".into()]
    };
    if chunked {
        f.techniques.push("T1030".into());
    }
    fact(&mut f, "bytes_out_hour", b);
    fact(&mut f, "baseline_hourly_median", median);
    fact(&mut f, "baseline_hourly_mad", spread);
    fact(&mut f, "baseline_hours", baseline.len());
    fact(&mut f, "previous_max_hour_to_destination", pair.max_prev);
    fact(&mut f, "first_seen_destination", first_seen);
    fact(&mut f, "transfers", pair.sizes.len());
    if ratio.is_finite() {
        fact(&mut f, "out_in_ratio", ratio);
    }
    pair.samples.clone().into_evidence(&mut f);
    out.push(f);
}

/// The short-history rule: an upload-heavy hour of at least
/// `min_bytes_raw` to a raw address on a non-web port, first seen.
fn raw_upload(cfg: &Settings, (src, dst): (&IpAddr, &String), pair: &Pair) -> Option<Finding> {
    let sample = pair.largest.as_ref()?;
    let b = pair.out;
    let raw = dst.parse::<IpAddr>().is_ok();
    let web = matches!(sample.dst_port, 80 | 443 | 8080 | 8443);
    let first_seen = pair.first_hour == pair.hour;
    let upload_heavy =
        !pair.bidirectional || b as f64 >= cfg.upload_ratio * pair.r#in.max(1) as f64;
    if !raw || web || !first_seen || !upload_heavy || b < cfg.min_bytes_raw || b >= cfg.min_bytes {
        return None;
    }
    let mut f = finding(
        FindingKind::Exfiltration,
        &format!("{src}@{}", pair.hour),
        sample,
        65.0,
        format!(
            "{src} uploaded {} to {dst}:{} (an address with no name, first seen, {} back) within the hour",
            bytes(b),
            sample.dst_port,
            bytes(pair.r#in)
        ),
    );
    f.first_ms = pair.hour * HOUR;
    f.last_ms = pair.last_ms;
    f.techniques = vec!["T1048".into()];
    fact(&mut f, "bytes_out_hour", b);
    fact(&mut f, "bytes_in_hour", pair.r#in);
    fact(&mut f, "first_seen_destination", true);
    fact(
        &mut f,
        "rule",
        "short history: raw address, non-web port, upload-heavy",
    );
    pair.samples.clone().into_evidence(&mut f);
    Some(f)
}

impl Exfiltration {
    fn close_hours(&mut self, before_hour: i64, out: &mut Vec<Finding>) {
        let Exfiltration {
            cfg,
            sources,
            pairs,
            storage,
            watched_from,
            ..
        } = self;
        let watched_from = watched_from.unwrap_or(i64::MIN);
        let is_storage = |h: Option<&str>| {
            h.and_then(|h| Hostname::parse(h).ok())
                .is_some_and(|h| storage.iter().any(|p| p.matches(&h)))
        };
        for (key, pair) in pairs.iter_mut() {
            if pair.hour < before_hour {
                judge(cfg, watched_from, &is_storage, sources, key, pair, out);
            }
        }
    }
}

impl Detector for Exfiltration {
    fn name(&self) -> &'static str {
        "exfiltration"
    }

    fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        let watched = self.watched_from.get_or_insert(flow.start_ms);
        *watched = (*watched).min(flow.start_ms);
        if !super::unsanctioned_outbound(flow, &self.cfg.common.allow) {
            return;
        }
        let hour = flow.start_ms.div_euclid(HOUR);
        let source = self.sources.entry(flow.src_ip, || Source {
            hours: VecDeque::new(),
            last_ms: flow.start_ms,
        });
        source.last_ms = source.last_ms.max(flow.start_ms);
        match source.hours.back_mut() {
            Some((h, b)) if *h == hour => *b += flow.bytes_out,
            _ => {
                if source.hours.len() >= BASELINE_HOURS {
                    source.hours.pop_front();
                }
                source.hours.push_back((hour, flow.bytes_out));
            }
        }
        let key = (flow.src_ip, dst_key(flow));
        let bidirectional = super::two_way(flow);
        let pair = self.pairs.entry(key.clone(), || Pair {
            hour,
            out: 0,
            r#in: 0,
            sizes: Vec::new(),
            evaluated: false,
            max_prev: 0,
            first_hour: hour,
            last_ms: flow.start_ms,
            largest: None,
            samples: Samples::default(),
            bidirectional,
        });
        if pair.hour != hour {
            if !pair.evaluated {
                let cfg = &self.cfg;
                let storage = &self.storage;
                let is_storage = |h: Option<&str>| {
                    h.and_then(|h| Hostname::parse(h).ok())
                        .is_some_and(|h| storage.iter().any(|p| p.matches(&h)))
                };
                let watched_from = self.watched_from.unwrap_or(i64::MIN);
                judge(
                    cfg,
                    watched_from,
                    &is_storage,
                    &mut self.sources,
                    &key,
                    pair,
                    out,
                );
            }
            pair.max_prev = pair.max_prev.max(pair.out);
            pair.hour = hour;
            pair.out = 0;
            pair.r#in = 0;
            pair.sizes.clear();
            pair.evaluated = false;
            pair.largest = None;
            pair.samples = Samples::default();
        }
        pair.out += flow.bytes_out;
        pair.r#in += flow.bytes_in;
        if pair.sizes.len() < 64 {
            pair.sizes.push(flow.bytes_out);
        }
        pair.last_ms = pair.last_ms.max(flow.end_ms.max(flow.start_ms));
        if pair
            .largest
            .as_ref()
            .is_none_or(|l| l.bytes_out < flow.bytes_out)
        {
            pair.largest = Some(flow.clone());
        }
        if flow.bytes_out >= 1_048_576 {
            pair.samples.add(flow);
        }
    }

    fn tick(&mut self, now_ms: i64, out: &mut Vec<Finding>) {
        // An hour is closed once flow time is five minutes past it.
        let closed = (now_ms - 300_000).div_euclid(HOUR);
        if closed > self.closed {
            self.closed = closed;
            self.close_hours(closed, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.close_hours(i64::MAX, out);
    }

    fn state(&self) -> usize {
        self.sources.len() + self.pairs.len()
    }

    fn evicted(&self) -> u64 {
        self.sources.evicted() + self.pairs.evicted()
    }
}
