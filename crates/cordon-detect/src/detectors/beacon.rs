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
//! beacon to a name behind rotating addresses is still one pair.

use cordon_core::FindingKind;
use cordon_flow::Flow;

use super::{Detector, Samples, c2_technique, dst_key, fact, finding};
use crate::bounded::{Aged, Bounded};
use crate::config::Beaconing;
use crate::finding::Finding;
use crate::stats::regularity;

struct Pair {
    /// Connection starts, seconds since `base_s`.
    times: Vec<u32>,
    /// Bytes out per connection.
    sizes: Vec<u32>,
    base_s: i64,
    last_ms: i64,
    reported: f64,
    sample: Option<Flow>,
    samples: Samples,
}

impl Aged for Pair {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// The beaconing detector.
pub struct Beacons {
    cfg: Beaconing,
    pairs: Bounded<(std::net::IpAddr, String, u16), Pair>,
    hour: Option<i64>,
}

impl Beacons {
    /// A detector with `cfg`.
    pub fn new(cfg: Beaconing) -> Self {
        let pairs = Bounded::new(cfg.common.max_state);
        Beacons {
            cfg,
            pairs,
            hour: None,
        }
    }
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
        for ((src, dst, port), pair) in self.pairs.iter_mut() {
            if (pair.times.len() as u64) < cfg.min_connections {
                continue;
            }
            let span_ms = (i64::from(*pair.times.iter().max().unwrap_or(&0))
                - i64::from(*pair.times.iter().min().unwrap_or(&0)))
                * 1000;
            if span_ms < cfg.min_span {
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
            out.push(f);
        }
    }
}

impl Detector for Beacons {
    fn name(&self) -> &'static str {
        "beaconing"
    }

    fn observe(&mut self, flow: &Flow, _out: &mut Vec<Finding>) {
        // Command and control calls out: internal sources, external
        // destinations (internal periodic traffic, pools and resolvers,
        // is how services work).
        if !super::unsanctioned_outbound(flow, &self.cfg.common.allow) {
            return;
        }
        let max = self.cfg.max_samples.max(8) as usize;
        let start_s = flow.start_ms.div_euclid(1000);
        let pair = self
            .pairs
            .entry((flow.src_ip, dst_key(flow), flow.dst_port), || Pair {
                times: Vec::new(),
                sizes: Vec::new(),
                base_s: start_s,
                last_ms: flow.start_ms,
                reported: 0.0,
                sample: None,
                samples: Samples::default(),
            });
        let offset = u32::try_from((start_s - pair.base_s).max(0)).unwrap_or(u32::MAX);
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
