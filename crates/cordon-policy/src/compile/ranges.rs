//! Address → group-set lookup.
//!
//! Every CIDR (and every workload address) contributes its groups to a range
//! of the address space. At compile time the ranges are swept into disjoint
//! intervals, each carrying the union of every prefix that covers it: the
//! same answer a longest-prefix trie gives when each node stores the groups of
//! all its ancestors, laid out as sorted arrays. A two-level index on the top
//! 16 and next 8 bits of the address narrows the binary search to the few
//! intervals that start in one block, so a lookup touches three or four cache
//! lines however many prefixes there are, and never allocates.

use super::sets::{SetId, SetInterner, clear, remap_id, set};

/// A block with more intervals than this gets a second-level index.
const DENSE_BLOCK: u32 = 8;
const NO_SUB: u32 = u32::MAX;
/// Tables up to this many intervals get no index.
const SMALL_TABLE: usize = 64;

/// Disjoint intervals of one address family.
#[derive(Debug, Default)]
pub struct AddressTable {
    /// IPv4: `start << 32 | set` in one word, so the search and the answer
    /// share cache lines.
    packed: Vec<u64>,
    /// IPv6: interval starts and their sets.
    starts: Vec<u128>,
    sets: Vec<SetId>,
    /// Bits to shift a key right to get its 16-bit block.
    shift: u32,
    /// `block[b]`: index of the first interval starting in block `b` or
    /// later (65,537 entries).
    block: Vec<u32>,
    /// `dense[b]`: offset in `sub` of block `b`'s 257-entry second level,
    /// or `NO_SUB`.
    dense: Vec<u32>,
    sub: Vec<u32>,
}

impl AddressTable {
    fn len_intervals(&self) -> usize {
        if self.shift == 16 {
            self.packed.len()
        } else {
            self.starts.len()
        }
    }

    fn start(&self, i: usize) -> Option<u128> {
        if self.shift == 16 {
            self.packed.get(i).map(|p| u128::from(p >> 32))
        } else {
            self.starts.get(i).copied()
        }
    }

    /// The interval indexes that can hold `key`: intervals starting in its
    /// block (and sub-block), the answer being the last start ≤ `key`, or the
    /// interval before the range.
    #[inline]
    fn window(&self, key: u128) -> (usize, usize) {
        let b = (key >> self.shift) as usize;
        let (Some(&lo), Some(&hi)) = (self.block.get(b), self.block.get(b + 1)) else {
            return (0, self.len_intervals());
        };
        match self.dense.get(b) {
            Some(&off) if off != NO_SUB => {
                let s = ((key >> self.shift.saturating_sub(8)) & 0xff) as usize;
                let at = off as usize + s;
                match (self.sub.get(at), self.sub.get(at + 1)) {
                    (Some(&l), Some(&h)) => (l as usize, h as usize),
                    _ => (lo as usize, hi as usize),
                }
            }
            _ => (lo as usize, hi as usize),
        }
    }

    /// The set of groups containing address `key`.
    #[inline]
    pub fn lookup(&self, key: u128) -> Option<SetId> {
        let (lo, hi) = self.window(key);
        if self.shift == 16 {
            let within = self.packed.get(lo..hi).unwrap_or(&[]);
            let k = key as u64;
            let i = lo + within.partition_point(|p| p >> 32 <= k);
            i.checked_sub(1)
                .and_then(|i| self.packed.get(i))
                .map(|p| *p as u32)
        } else {
            let within = self.starts.get(lo..hi).unwrap_or(&[]);
            let i = lo + within.partition_point(|s| *s <= key);
            i.checked_sub(1).and_then(|i| self.sets.get(i)).copied()
        }
    }

    /// Replace every set id by its id in the finished set table.
    pub fn remap(&mut self, remap: &[SetId]) {
        for p in &mut self.packed {
            *p = (*p >> 32) << 32 | u64::from(remap_id(remap, *p as u32));
        }
        for s in &mut self.sets {
            *s = remap_id(remap, *s);
        }
    }

    /// How many disjoint intervals the table holds.
    pub fn len(&self) -> usize {
        self.len_intervals()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len_intervals() == 0
    }

    /// Bytes used.
    pub fn heap_bytes(&self) -> usize {
        self.packed.capacity() * 8
            + self.starts.capacity() * 16
            + self.sets.capacity() * 4
            + (self.block.capacity() + self.dense.capacity() + self.sub.capacity()) * 4
    }

    fn index(&mut self, key_bits: u32) {
        self.shift = key_bits.saturating_sub(16);
        let n = self.len_intervals();
        if n <= SMALL_TABLE {
            // A few cache lines: one binary search beats an index.
            return;
        }
        let first_at_or_after = |t: &Self, key: u128| -> u32 {
            // Binary search over interval starts.
            let (mut lo, mut hi) = (0usize, n);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if t.start(mid).is_some_and(|s| s < key) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            u32::try_from(lo).unwrap_or(u32::MAX)
        };
        let block: Vec<u32> = (0..=65_536u128)
            .map(|b| {
                if b == 65_536 {
                    u32::try_from(n).unwrap_or(u32::MAX)
                } else {
                    first_at_or_after(self, b << self.shift)
                }
            })
            .collect();
        let mut dense = vec![NO_SUB; 65_536];
        let mut sub = Vec::new();
        let sub_shift = self.shift.saturating_sub(8);
        for b in 0..65_536usize {
            let (Some(&lo), Some(&hi)) = (block.get(b), block.get(b + 1)) else {
                continue;
            };
            if hi - lo <= DENSE_BLOCK {
                continue;
            }
            if let Some(slot) = dense.get_mut(b) {
                *slot = u32::try_from(sub.len()).unwrap_or(NO_SUB);
            }
            for s in 0..=256u128 {
                let key = ((b as u128) << self.shift) + (s << sub_shift);
                sub.push(if s == 256 {
                    hi
                } else {
                    first_at_or_after(self, key)
                });
            }
        }
        self.block = block;
        self.dense = dense;
        self.sub = sub;
    }
}

/// Collects `(first, last, groups)` ranges and sweeps them into a table.
#[derive(Default)]
pub struct AddressTableBuilder {
    /// Group lists, shared by the ranges that contribute them.
    contributions: Vec<Vec<u32>>,
    /// (first, last, contribution index)
    ranges: Vec<(u128, u128, u32)>,
}

impl AddressTableBuilder {
    /// Register a list of groups that ranges can contribute.
    pub fn contribution(&mut self, groups: Vec<u32>) -> u32 {
        self.contributions.push(groups);
        u32::try_from(self.contributions.len() - 1).unwrap_or(u32::MAX)
    }

    /// Add the inclusive range `first..=last` with contribution `c`.
    pub fn add(&mut self, first: u128, last: u128, c: u32) {
        if first <= last {
            self.ranges.push((first, last, c));
        }
    }

    /// Sweep the ranges into disjoint intervals over a key space of
    /// `key_bits` bits (32 for IPv4, 128 for IPv6).
    pub fn build(self, interner: &mut SetInterner, key_bits: u32) -> AddressTable {
        // Events: at `first` a contribution starts, after `last` it ends.
        // Ends past the key space need no event: nothing follows them.
        let max = if key_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << key_bits) - 1
        };
        let mut events: Vec<(u128, bool, u32)> = Vec::with_capacity(self.ranges.len() * 2);
        for (first, last, c) in &self.ranges {
            events.push((*first, true, *c));
            if let Some(after) = last.checked_add(1).filter(|a| *a <= max) {
                events.push((after, false, *c));
            }
        }
        events.sort_unstable_by_key(|e| e.0);
        let mut counts: Vec<u32> = Vec::new();
        let mut bits = interner.empty();
        let empty = interner.intern(&bits);
        let mut starts: Vec<u128> = Vec::new();
        let mut sets: Vec<SetId> = Vec::new();
        let mut i = 0;
        while let Some(&(point, _, _)) = events.get(i) {
            while let Some(&(p, start, c)) = events.get(i) {
                if p != point {
                    break;
                }
                for group in self.contributions.get(c as usize).into_iter().flatten() {
                    let g = *group as usize;
                    if counts.len() <= g {
                        counts.resize(g + 1, 0);
                    }
                    if let Some(count) = counts.get_mut(g) {
                        if start {
                            *count += 1;
                            if *count == 1 {
                                set(&mut bits, *group);
                            }
                        } else {
                            *count = count.saturating_sub(1);
                            if *count == 0 {
                                clear(&mut bits, *group);
                            }
                        }
                    }
                }
                i += 1;
            }
            let id = interner.intern(&bits);
            if starts.is_empty() && point != 0 {
                starts.push(0);
                sets.push(empty);
            }
            if sets.last() != Some(&id) {
                starts.push(point);
                sets.push(id);
            }
        }
        let mut table = AddressTable::default();
        if key_bits == 32 {
            table.packed = starts
                .iter()
                .zip(&sets)
                .map(|(s, id)| (*s as u64) << 32 | u64::from(*id))
                .collect();
        } else {
            starts.shrink_to_fit();
            sets.shrink_to_fit();
            table.starts = starts;
            table.sets = sets;
        }
        table.index(key_bits);
        table
    }
}
