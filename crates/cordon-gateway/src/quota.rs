//! Vendor egress limits: bytes from clients to a destination, metered per
//! (rule, source group, destination group) across every connection, in
//! fixed windows aligned to the epoch. When a meter passes its limit, new
//! connections under it are refused and open tunnels under it are told to
//! close (they watch [`Meter::tripped`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// What a meter counts under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MeterKey {
    /// The rule carrying the limit.
    pub rule: String,
    /// The client's group the rule matched.
    pub from: String,
    /// The destination's group the rule matched.
    pub to: String,
}

/// One limit's counter.
#[derive(Debug)]
pub struct Meter {
    limit: AtomicU64,
    window_ms: AtomicU64,
    /// (window number, bytes in that window)
    used: Mutex<(u64, u64)>,
    tripped: watch::Sender<u64>,
}

impl Meter {
    fn new(limit: u64, window_ms: u64) -> Self {
        Meter {
            limit: AtomicU64::new(limit),
            window_ms: AtomicU64::new(window_ms.max(1)),
            used: Mutex::new((0, 0)),
            tripped: watch::Sender::new(0),
        }
    }

    fn window(&self, now_ms: u64) -> u64 {
        now_ms / self.window_ms.load(Ordering::Relaxed).max(1)
    }

    /// Count `bytes` sent now; returns whether the meter is still within
    /// its limit. Passing the limit wakes every tunnel watching it.
    pub fn add(&self, bytes: u64) -> bool {
        let now = now_ms();
        let window = self.window(now);
        let limit = self.limit.load(Ordering::Relaxed);
        let total = {
            let Ok(mut used) = self.used.lock() else {
                return false;
            };
            if used.0 != window {
                *used = (window, 0);
            }
            used.1 = used.1.saturating_add(bytes);
            used.1
        };
        if total > limit {
            self.tripped.send_replace(window + 1);
            return false;
        }
        true
    }

    /// Whether the current window is already past the limit.
    pub fn exceeded(&self) -> bool {
        let window = self.window(now_ms());
        self.used
            .lock()
            .map(|u| u.0 == window && u.1 > self.limit.load(Ordering::Relaxed))
            .unwrap_or(true)
    }

    /// Bytes counted in the current window.
    pub fn used(&self) -> u64 {
        let window = self.window(now_ms());
        self.used
            .lock()
            .map(|u| if u.0 == window { u.1 } else { 0 })
            .unwrap_or(0)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// A receiver that changes when the meter passes its limit.
    pub fn tripped(&self) -> watch::Receiver<u64> {
        self.tripped.subscribe()
    }
}

/// Every meter, by key. Meters survive policy reloads (the limit is
/// updated from the new rule), so a reload does not reset a vendor's count.
#[derive(Debug, Default)]
pub struct Meters(Mutex<HashMap<MeterKey, Arc<Meter>>>);

impl Meters {
    /// The meter for `key`, created or updated with `limit` per `window_ms`.
    pub fn meter(&self, key: &MeterKey, limit: u64, window_ms: u64) -> Option<Arc<Meter>> {
        let mut map = self.0.lock().ok()?;
        let meter = map
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Meter::new(limit, window_ms)));
        meter.limit.store(limit, Ordering::Relaxed);
        meter.window_ms.store(window_ms.max(1), Ordering::Relaxed);
        Some(meter.clone())
    }

    /// (key, used, limit) for every meter, for metrics.
    pub fn snapshot(&self) -> Vec<(MeterKey, u64, u64)> {
        let Ok(map) = self.0.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = map
            .iter()
            .map(|(k, m)| (k.clone(), m.used(), m.limit()))
            .collect();
        out.sort_by(|a, b| (&a.0.rule, &a.0.from, &a.0.to).cmp(&(&b.0.rule, &b.0.from, &b.0.to)));
        out
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
