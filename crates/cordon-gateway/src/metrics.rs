//! Counters for the admin listener's `/metrics`, in the Prometheus text
//! format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::quota::Meters;

/// Upper bounds of the resolver timing histogram, seconds.
const RESOLVE_BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    decisions: Mutex<BTreeMap<(cordon_core::Verdict, String, String), u64>>,
    bytes: Mutex<BTreeMap<(String, &'static str), u64>>,
    resolve: Mutex<([u64; RESOLVE_BUCKETS.len()], u64, f64)>,
    /// Tunnels and requests being relayed now.
    pub active: AtomicI64,
    /// Client connections accepted.
    pub accepted: AtomicU64,
    /// Client connections refused for a connection limit.
    pub overloaded: AtomicU64,
    /// Successful policy reloads.
    pub reloads: AtomicU64,
    /// Failed policy reloads (the old policy stayed).
    pub reload_failures: AtomicU64,
    /// The version of the signed policy bundle in force (0 with a policy
    /// file).
    pub bundle_version: AtomicU64,
}

impl Metrics {
    /// Count a decision.
    pub fn decision(&self, verdict: cordon_core::Verdict, rule: Option<&str>, reason: &str) {
        if let Ok(mut m) = self.decisions.lock() {
            *m.entry((verdict, rule.unwrap_or("").to_string(), reason.to_string()))
                .or_default() += 1;
        }
    }

    /// Count bytes relayed for `vendor` (`out`: client to destination).
    pub fn bytes(&self, vendor: &str, direction: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        if let Ok(mut m) = self.bytes.lock() {
            *m.entry((vendor.to_string(), direction)).or_default() += n;
        }
    }

    /// Record one lookup's duration.
    pub fn resolved(&self, seconds: f64) {
        if let Ok(mut h) = self.resolve.lock() {
            for (i, bound) in RESOLVE_BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.0[i] += 1;
                }
            }
            h.1 += 1;
            h.2 += seconds;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, meters: &Meters) -> String {
        let mut out = String::new();
        out.push_str("# HELP cordon_gateway_decisions_total Connections and requests decided, by verdict, rule and reason.\n# TYPE cordon_gateway_decisions_total counter\n");
        if let Ok(m) = self.decisions.lock() {
            for ((verdict, rule, reason), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "cordon_gateway_decisions_total{{verdict=\"{}\",rule=\"{}\",reason=\"{}\"}} {n}",
                    verdict.as_str(),
                    escape(rule),
                    escape(reason)
                );
            }
        }
        out.push_str("# HELP cordon_gateway_bytes_total Bytes relayed, by destination vendor (or group) and direction.\n# TYPE cordon_gateway_bytes_total counter\n");
        if let Ok(m) = self.bytes.lock() {
            for ((vendor, dir), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "cordon_gateway_bytes_total{{vendor=\"{}\",direction=\"{dir}\"}} {n}",
                    escape(vendor)
                );
            }
        }
        let gauges = [
            (
                "cordon_gateway_active_tunnels",
                "gauge",
                "Tunnels and requests being relayed now.",
                self.active.load(Ordering::Relaxed).to_string(),
            ),
            (
                "cordon_gateway_connections_total",
                "counter",
                "Client connections accepted.",
                self.accepted.load(Ordering::Relaxed).to_string(),
            ),
            (
                "cordon_gateway_overload_total",
                "counter",
                "Client connections refused with 503 for a connection limit.",
                self.overloaded.load(Ordering::Relaxed).to_string(),
            ),
            (
                "cordon_gateway_reloads_total",
                "counter",
                "Policy reloads that took effect.",
                self.reloads.load(Ordering::Relaxed).to_string(),
            ),
            (
                "cordon_gateway_reload_failures_total",
                "counter",
                "Policy reloads refused (the previous policy stayed in force).",
                self.reload_failures.load(Ordering::Relaxed).to_string(),
            ),
            (
                "cordon_gateway_policy_bundle_version",
                "gauge",
                "Version of the signed policy bundle in force (0: a policy file).",
                self.bundle_version.load(Ordering::Relaxed).to_string(),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out.push_str("# HELP cordon_gateway_resolve_seconds Time to resolve a destination name.\n# TYPE cordon_gateway_resolve_seconds histogram\n");
        if let Ok(h) = self.resolve.lock() {
            for (i, bound) in RESOLVE_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "cordon_gateway_resolve_seconds_bucket{{le=\"{bound}\"}} {}",
                    h.0[i]
                );
            }
            let _ = writeln!(
                out,
                "cordon_gateway_resolve_seconds_bucket{{le=\"+Inf\"}} {}\ncordon_gateway_resolve_seconds_sum {}\ncordon_gateway_resolve_seconds_count {}",
                h.1, h.2, h.1
            );
        }
        if let Some(pool) = meters.pool() {
            let _ = writeln!(
                out,
                "# HELP cordon_gateway_quota_store_up Whether the shared egress-limit store (Redis) answered last.\n# TYPE cordon_gateway_quota_store_up gauge\ncordon_gateway_quota_store_up {}\n# HELP cordon_gateway_quota_store_errors_total Calls to the shared egress-limit store that failed.\n# TYPE cordon_gateway_quota_store_errors_total counter\ncordon_gateway_quota_store_errors_total {}\n# HELP cordon_gateway_quota_unshared_bytes_total Bytes let through by limits failing open while the store was down (metered by this replica only).\n# TYPE cordon_gateway_quota_unshared_bytes_total counter\ncordon_gateway_quota_unshared_bytes_total {}",
                u8::from(pool.is_up()),
                pool.errors.load(Ordering::Relaxed),
                pool.unshared_bytes.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP cordon_gateway_limit_bytes Bytes counted this window against a rule's egress limit.\n# TYPE cordon_gateway_limit_bytes gauge\n");
        for (key, used, limit) in meters.snapshot() {
            let labels = format!(
                "rule=\"{}\",from=\"{}\",to=\"{}\"",
                escape(&key.rule),
                escape(&key.from),
                escape(&key.to)
            );
            let _ = writeln!(
                out,
                "cordon_gateway_limit_bytes{{{labels}}} {used}\ncordon_gateway_limit_max_bytes{{{labels}}} {limit}"
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
