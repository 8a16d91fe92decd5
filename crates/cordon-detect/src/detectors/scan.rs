//! Service discovery: one source probing many hosts on one port
//! (horizontal) or many ports on one host (vertical) within a window,
//! rejected and unanswered probes included.

use cordon_core::FindingKind;
use std::net::IpAddr;

use cordon_flow::Flow;
use rustc_hash::{FxHashMap, FxHashSet};

use super::{Detector, Samples, dst_internal, fact, failed, finding};
use crate::bounded::{Aged, Bounded};
use crate::config::Scan as Settings;
use crate::finding::{Finding, Severity};

const MAX_TARGETS: usize = 4096;

struct Source {
    window_start: i64,
    last_ms: i64,
    targets: FxHashSet<(IpAddr, u16)>,
    probes: u32,
    failed: u32,
    internal: bool,
    reported: bool,
    first: Option<Flow>,
    samples: Samples,
}

impl Aged for Source {
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

/// The service-discovery detector.
pub struct Scans {
    cfg: Settings,
    sources: Bounded<IpAddr, Source>,
}

impl Scans {
    /// A detector with `cfg`.
    pub fn new(cfg: Settings) -> Self {
        Scans {
            sources: Bounded::new(cfg.common.max_state),
            cfg,
        }
    }
}

/// Most hosts on one port and most ports on one host among `targets`.
fn breadth(targets: &FxHashSet<(IpAddr, u16)>) -> ((usize, u16), (usize, IpAddr)) {
    let mut by_port: FxHashMap<u16, usize> = FxHashMap::default();
    let mut by_host: FxHashMap<IpAddr, usize> = FxHashMap::default();
    for (ip, port) in targets {
        *by_port.entry(*port).or_default() += 1;
        *by_host.entry(*ip).or_default() += 1;
    }
    let h = by_port
        .into_iter()
        .max_by_key(|(p, n)| (*n, *p))
        .map_or((0, 0), |(p, n)| (n, p));
    let v = by_host
        .into_iter()
        .max_by_key(|(ip, n)| (*n, *ip))
        .map_or((0, IpAddr::from([0, 0, 0, 0])), |(ip, n)| (n, ip));
    (h, v)
}

/// The share of failed probes from which a sweep of external hosts is a
/// scan rather than a busy client.
const OUTWARD_MIN_FAILED: f64 = 0.5;

impl Detector for Scans {
    fn name(&self) -> &'static str {
        "service-discovery"
    }

    fn observe(&mut self, flow: &Flow, out: &mut Vec<Finding>) {
        if !matches!(flow.protocol, 6 | 17)
            || super::allowed_by_rule(flow)
            || self.cfg.common.allow.contains(flow.src_ip, None)
        {
            return;
        }
        let window = self.cfg.window;
        let src = self.sources.entry(flow.src_ip, || Source {
            window_start: flow.start_ms,
            last_ms: flow.start_ms,
            targets: FxHashSet::default(),
            probes: 0,
            failed: 0,
            internal: true,
            reported: false,
            first: None,
            samples: Samples::default(),
        });
        if flow.start_ms >= src.window_start + window {
            src.window_start = flow.start_ms;
            src.targets.clear();
            src.probes = 0;
            src.failed = 0;
            src.internal = true;
            src.reported = false;
            src.first = None;
            src.samples = Samples::default();
        }
        src.last_ms = src.last_ms.max(flow.start_ms);
        src.probes += 1;
        if failed(flow) {
            src.failed += 1;
            src.samples.add(flow);
        }
        src.internal &= dst_internal(flow);
        if src.first.is_none() {
            src.first = Some(flow.clone());
        }
        let new =
            src.targets.len() < MAX_TARGETS && src.targets.insert((flow.dst_ip, flow.dst_port));
        let n = src.targets.len() as u64;
        let min = self.cfg.min_hosts.min(self.cfg.min_ports);
        if src.reported || !new || n < min || !n.is_multiple_of(4) {
            return;
        }
        let ((hosts, port), (ports, host)) = breadth(&src.targets);
        let horizontal = hosts as u64 >= self.cfg.min_hosts;
        let vertical = ports as u64 >= self.cfg.min_ports;
        let failed_ratio = f64::from(src.failed) / f64::from(src.probes.max(1));
        // Outward sweeps must also mostly fail: busy clients reach many
        // servers on one port (a browser: dozens of web hosts in minutes,
        // a third of them failing over IPv6 or blocked), scanners mostly
        // find nothing.
        if !(horizontal || vertical) || (!src.internal && failed_ratio < OUTWARD_MIN_FAILED) {
            return;
        }
        src.reported = true;
        let Some(first) = src.first.as_ref() else {
            return;
        };
        let shape = if horizontal && vertical {
            format!("{hosts} hosts on port {port} and {ports} ports on {host}")
        } else if horizontal {
            format!("{hosts} hosts on port {port}")
        } else {
            format!("{ports} ports on {host}")
        };
        let score = 55.0
            + 15.0 * failed_ratio
            + 10.0
                * ((hosts.max(ports) as f64) / (self.cfg.min_hosts.max(1) as f64))
                    .log2()
                    .clamp(0.0, 2.0);
        let mut f = finding(
            FindingKind::ServiceDiscovery,
            &flow.src_ip.to_string(),
            first,
            score,
            format!(
                "{} probed {shape} within {} min; {:.0}% of {} probes failed",
                flow.src_ip,
                window / 60_000,
                failed_ratio * 100.0,
                src.probes
            ),
        );
        f.last_ms = flow.start_ms;
        f.port = horizontal.then_some(port);
        f.dst = if horizontal && !vertical {
            format!("{hosts} hosts")
        } else {
            host.to_string()
        };
        if horizontal && !vertical {
            f.dst_entity = Default::default();
        }
        fact(&mut f, "distinct_targets", n);
        fact(&mut f, "hosts_on_one_port", hosts);
        fact(&mut f, "ports_on_one_host", ports);
        fact(&mut f, "probes", src.probes);
        fact(&mut f, "failed_ratio", failed_ratio);
        src.samples.clone().into_evidence(&mut f);
        if !super::src_internal(flow) {
            super::calibrate(
                &mut f,
                (
                    Severity::Low,
                    "scanning from outside (the Internet's background); low unless something else corroborates it"
                        .to_string(),
                ),
            );
        }
        out.push(f);
    }

    fn state(&self) -> usize {
        self.sources.len()
    }

    fn evicted(&self) -> u64 {
        self.sources.evicted()
    }
}
