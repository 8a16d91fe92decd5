//! Vendor drift and shadow third parties.
//!
//! Drift: for each declared vendor (a policy group with vendor metadata),
//! the first `learn` of its traffic is the baseline — which internal
//! endpoints it talks to, on which ports, in which direction, how many
//! bytes an hour, and (when `learn` is a day or more) at which hours of the
//! day. Afterwards, a new (endpoint, port, direction), an hour above
//! `median + mad_factor × MAD` (and at least `min_bytes`), or activity at a
//! new hour of the day is reported. This is how a compromised provider riding its trusted path
//! (T1199) shows up: same vendor, new places.
//!
//! Shadow third parties: an external destination that is not a declared
//! vendor and is not allowed by any rule, yet receives traffic in at least
//! `shadow_hours` distinct hours. Needs a policy (without one, nothing is
//! declared and everything would be a shadow).

use cordon_core::FindingKind;
use std::collections::VecDeque;
use std::net::IpAddr;

use cordon_flow::Flow;
use rustc_hash::FxHashSet;

use super::{Detector, bytes, dst_internal, dst_key, fact, finding, src_internal, vendor};
use crate::bounded::{Aged, Bounded};
use crate::config::Vendors as Settings;
use crate::finding::Finding;
use crate::stats::mad;

const HOUR: i64 = 3_600_000;
const MAX_LEARNED: usize = 4096;

struct Vendor {
    first_ms: i64,
    last_ms: i64,
    /// Hours of the day (UTC) with traffic while learning.
    hours_of_day: [bool; 24],
    learned: FxHashSet<(String, u16, bool)>,
    hours: VecDeque<(i64, u64)>,
    reported_volume_hour: i64,
}

impl Aged for Vendor {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

struct Shadow {
    hours: u32,
    last_hour: i64,
    bytes_out: u64,
    last_ms: i64,
    reported: bool,
}

impl Aged for Shadow {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// The vendor detector.
pub struct Vendors {
    cfg: Settings,
    vendors: Bounded<String, Vendor>,
    shadows: Bounded<String, Shadow>,
}

impl Vendors {
    /// A detector with `cfg`.
    pub fn new(cfg: Settings) -> Self {
        Vendors {
            vendors: Bounded::new(cfg.common.max_state),
            shadows: Bounded::new(cfg.common.max_state),
            cfg,
        }
    }

    fn drift(&mut self, name: &str, flow: &Flow, out: &mut Vec<Finding>) {
        let inbound = !src_internal(flow);
        let (inside, inside_ip): (String, IpAddr) = {
            let e = flow.enrichment.as_ref();
            if inbound {
                let w = e.and_then(|e| e.dst_workload.as_deref());
                (
                    w.map_or_else(|| flow.dst_ip.to_string(), str::to_string),
                    flow.dst_ip,
                )
            } else {
                let w = e.and_then(|e| e.src_workload.as_deref());
                (
                    w.map_or_else(|| flow.src_ip.to_string(), str::to_string),
                    flow.src_ip,
                )
            }
        };
        let _ = inside_ip;
        let port = flow.dst_port;
        let hour = flow.start_ms.div_euclid(HOUR);
        let learn = self.cfg.learn;
        let v = self.vendors.entry(name.to_string(), || Vendor {
            first_ms: flow.start_ms,
            last_ms: flow.start_ms,
            hours_of_day: [false; 24],
            learned: FxHashSet::default(),
            hours: VecDeque::new(),
            reported_volume_hour: i64::MIN,
        });
        v.last_ms = v.last_ms.max(flow.start_ms);
        let volume = flow.bytes_out + flow.bytes_in;
        match v.hours.back_mut() {
            Some((h, b)) if *h == hour => *b += volume,
            _ => {
                if v.hours.len() >= 168 {
                    v.hours.pop_front();
                }
                v.hours.push_back((hour, volume));
            }
        }
        let combo = (inside.clone(), port, inbound);
        let hour_of_day = flow.start_ms.rem_euclid(86_400_000) / HOUR;
        if flow.start_ms < v.first_ms + learn {
            if v.learned.len() < MAX_LEARNED {
                v.learned.insert(combo);
            }
            if let Some(h) = v.hours_of_day.get_mut(hour_of_day as usize) {
                *h = true;
            }
            return;
        }
        // Hours are only judged after a whole day of learning.
        if learn >= 24 * HOUR && v.hours_of_day.get(hour_of_day as usize) == Some(&false) {
            if let Some(h) = v.hours_of_day.get_mut(hour_of_day as usize) {
                *h = true;
            }
            let mut f = finding(
                FindingKind::VendorDrift,
                &format!("{name}|hour|{hour_of_day}"),
                flow,
                60.0,
                format!(
                    "{name} active at {hour_of_day:02}:00 UTC, an hour it was never active in its {} h baseline",
                    learn / HOUR
                ),
            );
            fact(&mut f, "vendor", name);
            fact(&mut f, "hour_of_day_utc", hour_of_day);
            out.push(f);
        }
        if !v.learned.contains(&combo) {
            let direction = if inbound { "from" } else { "to" };
            let mut f = finding(
                FindingKind::VendorDrift,
                &format!("{name}|{inside}|{port}|{inbound}"),
                flow,
                if flow
                    .enrichment
                    .as_ref()
                    .is_some_and(|e| e.verdict.is_denial())
                {
                    85.0
                } else {
                    72.0
                },
                format!(
                    "{name} traffic {direction} {inside} on port {port}: not seen in its {} h baseline",
                    learn / HOUR
                ),
            );
            fact(&mut f, "vendor", name);
            fact(&mut f, "baseline_combinations", v.learned.len());
            fact(
                &mut f,
                "direction",
                if inbound { "inbound" } else { "outbound" },
            );
            out.push(f);
        }
        // Volume against the vendor's earlier hours.
        let (current, earlier): (Vec<_>, Vec<_>) = v.hours.iter().partition(|(h, _)| *h == hour);
        let now_bytes = current.first().map_or(0, |(_, b)| *b);
        if earlier.len() >= 3 && now_bytes >= self.cfg.min_bytes && v.reported_volume_hour != hour {
            let series: Vec<f64> = earlier.iter().map(|(_, b)| *b as f64).collect();
            let (m, d) = mad(&series);
            // Busy hours differ from quiet ones by a daily factor: a drift
            // is also well above the busiest hour seen so far.
            let busiest = series.iter().copied().fold(0.0, f64::max);
            if now_bytes as f64 > m + self.cfg.mad_factor * d.max(65_536.0)
                && now_bytes as f64 > 3.0 * busiest
            {
                v.reported_volume_hour = hour;
                let mut f = finding(
                    FindingKind::VendorDrift,
                    &format!("{name}|volume"),
                    flow,
                    75.0,
                    format!(
                        "{name} moved {} in one hour; its usual hour is {} (MAD {})",
                        bytes(now_bytes),
                        bytes(m as u64),
                        bytes(d as u64)
                    ),
                );
                fact(&mut f, "vendor", name);
                fact(&mut f, "bytes_hour", now_bytes);
                fact(&mut f, "baseline_hourly_median", m);
                fact(&mut f, "baseline_hourly_mad", d);
                out.push(f);
            }
        }
    }

    fn shadow(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        let key = match &flow.hostname {
            Some(h) => h.clone(),
            None => match flow.dst_ip {
                IpAddr::V4(v4) => {
                    let o = v4.octets();
                    format!("{}.{}.{}.0/24", o[0], o[1], o[2])
                }
                IpAddr::V6(_) => dst_key(flow),
            },
        };
        let hour = flow.start_ms.div_euclid(HOUR);
        let s = self.shadows.entry(key.clone(), || Shadow {
            hours: 0,
            last_hour: i64::MIN,
            bytes_out: 0,
            last_ms: flow.start_ms,
            reported: false,
        });
        s.last_ms = s.last_ms.max(flow.start_ms);
        if s.last_hour != hour {
            s.last_hour = hour;
            s.hours += 1;
        }
        s.bytes_out += flow.bytes_out;
        if !s.reported
            && u64::from(s.hours) >= self.cfg.shadow_hours
            && s.bytes_out >= self.cfg.shadow_bytes
        {
            s.reported = true;
            let mut f = finding(
                FindingKind::ShadowVendor,
                &key,
                flow,
                45.0,
                format!(
                    "{key} received {} in {} distinct hours and is neither a declared vendor nor allowed by a rule",
                    bytes(s.bytes_out),
                    s.hours
                ),
            );
            fact(&mut f, "destination", key.as_str());
            fact(&mut f, "hours", s.hours);
            fact(&mut f, "bytes_out", s.bytes_out);
            out.push(f);
        }
    }
}

impl Detector for Vendors {
    fn name(&self) -> &'static str {
        "vendors"
    }

    fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        if self
            .cfg
            .common
            .allow
            .contains(flow.dst_ip, flow.hostname.as_deref())
            || self.cfg.common.allow.contains(flow.src_ip, None)
        {
            return;
        }
        if let Some(name) = vendor(flow) {
            let name = name.to_string();
            self.drift(&name, flow, out);
            return;
        }
        if flow.enrichment.is_some()
            && src_internal(flow)
            && !dst_internal(flow)
            && !super::allowed_by_rule(flow)
        {
            self.shadow(flow, out);
        }
    }

    fn state(&self) -> usize {
        self.vendors.len() + self.shadows.len()
    }

    fn evicted(&self) -> u64 {
        self.vendors.evicted() + self.shadows.evicted()
    }
}
