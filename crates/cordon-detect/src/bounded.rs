//! A map with a hard cap on its entries: when full, the entries seen least
//! recently are evicted in one sweep. Detector state lives in these, so
//! memory stays bounded however many distinct pairs the input holds.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// An entry that knows when it was last touched (ms since the epoch).
pub trait Aged {
    /// Last time the entry saw a flow.
    fn last_ms(&self) -> i64;
}

/// A map of at most `cap` entries.
pub struct Bounded<K, V> {
    map: FxHashMap<K, V>,
    cap: usize,
    evicted: u64,
}

impl<K: Hash + Eq, V: Aged> Bounded<K, V> {
    /// An empty map holding at most `cap` entries (at least 16).
    pub fn new(cap: usize) -> Self {
        Bounded {
            map: FxHashMap::default(),
            cap: cap.max(16),
            evicted: 0,
        }
    }

    /// The entry for `key`, created with `make` (evicting first when full).
    pub fn entry(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            self.evict();
        }
        self.map.entry(key).or_insert_with(make)
    }

    /// The entry for `key`, if present.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    /// Remove the oldest quarter of the entries.
    fn evict(&mut self) {
        let mut ages: Vec<i64> = self.map.values().map(Aged::last_ms).collect();
        let cut = ages.len() / 4;
        let (_, threshold, _) = ages.select_nth_unstable(cut);
        let threshold = *threshold;
        let before = self.map.len();
        self.map.retain(|_, v| v.last_ms() > threshold);
        // Ties at the threshold may leave the map full: then drop more.
        if self.map.len() >= self.cap {
            let mut n = self.map.len() - self.cap / 2;
            self.map.retain(|_, _| {
                if n > 0 {
                    n -= 1;
                    false
                } else {
                    true
                }
            });
        }
        self.evicted += (before - self.map.len()) as u64;
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// All entries.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.map.iter_mut()
    }

    /// Keep only the entries `keep` says to.
    pub fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
        self.map.retain(keep);
    }
}
