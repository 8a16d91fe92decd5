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
//! Without a policy nothing is declared, but third parties still show:
//! an external network (a /24, a /48) an internal host trades answered
//! traffic with in `relation_hours` distinct hours is a party the host
//! trusts in practice. An address of that network later opening an admin
//! session (SSH, RDP, WinRM, SMB...) to the host, which the relation never
//! used, is the same drift: someone riding a third party's access
//! (T1199). At most `medium`: no policy says what the party may do.
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

use super::{
    Detector, admin_protocol, bytes, calibrate, dst_internal, dst_key, fact, failed, finding,
    src_internal, vendor,
};
use crate::bounded::{Aged, Bounded};
use crate::config::Vendors as Settings;
use crate::finding::Finding;
use crate::finding::Severity;
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

/// An external network an internal host trades with, learned without a
/// policy.
struct Relation {
    /// Distinct hours with answered traffic, and the latest.
    hours: u64,
    last_hour: i64,
    last_ms: i64,
    /// (port, inbound) the relation has used.
    used: Vec<(u16, bool)>,
}

impl Aged for Relation {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// Most (port, direction) pairs kept per relation.
const MAX_USED: usize = 64;

/// The vendor detector.
pub struct Vendors {
    cfg: Settings,
    vendors: Bounded<String, Vendor>,
    shadows: Bounded<String, Shadow>,
    relations: Bounded<(IpAddr, String), Relation>,
}

/// The network an external address is judged by: its /24 or /48.
fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

impl Vendors {
    /// A detector with `cfg`.
    pub fn new(cfg: Settings) -> Self {
        Vendors {
            vendors: Bounded::new(cfg.common.max_state),
            shadows: Bounded::new(cfg.common.max_state),
            relations: Bounded::new(cfg.common.max_state),
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

    /// Without a policy: learn the external networks each internal host
    /// trades with, and report an admin session one of them opens that
    /// the relation never used.
    fn relation(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        let inbound = match (src_internal(flow), dst_internal(flow)) {
            (false, true) => true,
            (true, false) => false,
            _ => return,
        };
        if failed(flow) {
            return;
        }
        let (inside, outside) = if inbound {
            (flow.dst_ip, flow.src_ip)
        } else {
            (flow.src_ip, flow.dst_ip)
        };
        let net = network(outside);
        let hour = flow.start_ms.div_euclid(HOUR);
        let r = self.relations.entry((inside, net.clone()), || Relation {
            hours: 0,
            last_hour: i64::MIN,
            last_ms: flow.start_ms,
            used: Vec::new(),
        });
        r.last_ms = r.last_ms.max(flow.start_ms);
        // The relation must have formed in the hours before this one.
        let before = if r.last_hour < hour {
            r.hours
        } else {
            r.hours.saturating_sub(1)
        };
        let formed = before >= self.cfg.relation_hours;
        if r.last_hour < hour {
            r.last_hour = hour;
            r.hours += 1;
        }
        let combo = (flow.dst_port, inbound);
        if r.used.contains(&combo) {
            return;
        }
        if r.used.len() < MAX_USED {
            r.used.push(combo);
        }
        let Some((protocol, _)) = admin_protocol(flow.dst_port).filter(|_| inbound) else {
            return;
        };
        // A session, not a knock: some bytes in the direction recorded.
        if !formed || flow.bytes_out < 1000 {
            return;
        }
        let mut f = finding(
            FindingKind::VendorDrift,
            &format!("{net}|{inside}|{}|inbound", flow.dst_port),
            flow,
            65.0,
            format!(
                "{protocol} from {outside} to {inside}: {net} is a network {inside} trades with routinely ({before} hours of answered traffic), yet it never used {protocol} to it (no policy declares the party)"
            ),
        );
        fact(&mut f, "network", net.as_str());
        fact(&mut f, "relation_hours", before);
        fact(&mut f, "protocol", protocol);
        fact(&mut f, "direction", "inbound");
        calibrate(
            &mut f,
            (
                Severity::Medium,
                format!(
                    "an undeclared third party's network opened {protocol}, which it never used; no policy says what the party may do (at most medium)"
                ),
            ),
        );
        out.push(f);
    }

    fn shadow(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        let key = match &flow.hostname {
            Some(h) => h.clone(),
            None => match flow.dst_ip {
                IpAddr::V4(_) => network(flow.dst_ip),
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
        if flow.enrichment.is_none() {
            self.relation(flow, out);
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
        self.vendors.len() + self.shadows.len() + self.relations.len()
    }

    fn evicted(&self) -> u64 {
        self.vendors.evicted() + self.shadows.evicted() + self.relations.evicted()
    }
}
