//! Interned group sets: every distinct membership is stored once, as a
//! sorted list of group ids, and referred to by a 32-bit id, so a lookup
//! returns an id instead of building a set.
//!
//! Sets are built as bitsets (cheap unions while compiling) and stored as
//! lists with, beside each, how many rules name its groups as source and as
//! destination: what the matcher needs to pick its cheapest index without
//! touching the groups themselves.

use rustc_hash::FxHashMap;

use crate::model::GroupId;

/// Identifier of an interned set.
pub type SetId = u32;

/// What the matcher needs to know about a set before touching its groups.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetMeta {
    /// Rules whose `from` names one of the set's groups (with repeats).
    pub from_cost: u32,
    /// Rules whose `to` names one of the set's groups (with repeats).
    pub to_cost: u32,
}

/// The interned sets, laid out in one array so that a set's costs and its
/// groups share a cache line: `[from_cost, to_cost, len, group, group, ...]`.
/// A [`SetId`] in the finished table is the offset of its set.
#[derive(Debug, Default)]
pub struct SetTable {
    blob: Vec<u32>,
    count: usize,
}

impl SetTable {
    /// The groups of set `id`, sorted (empty for an unknown id).
    #[inline]
    pub fn members(&self, id: SetId) -> &[u32] {
        let at = id as usize;
        let len = self.blob.get(at + 2).copied().unwrap_or(0) as usize;
        self.blob.get(at + 3..at + 3 + len).unwrap_or(&[])
    }

    /// The costs of set `id`.
    #[inline]
    pub fn meta(&self, id: SetId) -> SetMeta {
        let at = id as usize;
        match self.blob.get(at..at + 2) {
            Some(&[from_cost, to_cost]) => SetMeta { from_cost, to_cost },
            _ => SetMeta::default(),
        }
    }

    /// How many distinct sets exist.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no set exists.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes used.
    pub fn heap_bytes(&self) -> usize {
        self.blob.capacity() * 4
    }
}

/// Builds a [`SetTable`], deduplicating sets.
pub struct SetInterner {
    words: usize,
    sets: Vec<Box<[u64]>>,
    index: FxHashMap<Box<[u64]>, SetId>,
}

impl SetInterner {
    /// An interner for sets over `groups` groups.
    pub fn new(groups: usize) -> Self {
        SetInterner {
            words: groups.div_ceil(64).max(1),
            sets: Vec::new(),
            index: FxHashMap::default(),
        }
    }

    /// An all-zero bitset of the right width.
    pub fn empty(&self) -> Vec<u64> {
        vec![0; self.words]
    }

    /// The id of `bits`, adding it if new.
    pub fn intern(&mut self, bits: &[u64]) -> SetId {
        if let Some(id) = self.index.get(bits) {
            return *id;
        }
        let id = SetId::try_from(self.sets.len()).unwrap_or(SetId::MAX);
        self.sets.push(bits.into());
        self.index.insert(bits.into(), id);
        id
    }

    /// The id of the set holding `groups`.
    pub fn intern_groups(&mut self, groups: &[u32]) -> SetId {
        let mut bits = self.empty();
        for g in groups {
            set(&mut bits, *g);
        }
        self.intern(&bits)
    }

    /// The finished table, and for each id handed out while interning, the
    /// id of the same set in the table (ids change: they become offsets).
    /// `from_counts[g]` and `to_counts[g]` are how many rules name group `g`
    /// on each side.
    pub fn finish(self, from_counts: &[u32], to_counts: &[u32]) -> (SetTable, Vec<SetId>) {
        let mut blob = Vec::new();
        let mut remap = Vec::with_capacity(self.sets.len());
        for bits in &self.sets {
            let at = blob.len();
            remap.push(SetId::try_from(at).unwrap_or(SetId::MAX));
            blob.extend([0, 0, 0]);
            let (mut from_cost, mut to_cost, mut len) = (0u32, 0u32, 0u32);
            for g in iter(bits) {
                blob.push(g.0);
                from_cost += from_counts.get(g.index()).copied().unwrap_or(0);
                to_cost += to_counts.get(g.index()).copied().unwrap_or(0);
                len += 1;
            }
            if let Some(head) = blob.get_mut(at..at + 3) {
                head.copy_from_slice(&[from_cost, to_cost, len]);
            }
        }
        blob.shrink_to_fit();
        let count = self.sets.len();
        (SetTable { blob, count }, remap)
    }
}

/// Translate an interning-time id into a table id.
#[inline]
pub fn remap_id(remap: &[SetId], id: SetId) -> SetId {
    remap.get(id as usize).copied().unwrap_or(0)
}

/// Set bit `bit`.
#[inline]
pub fn set(bits: &mut [u64], bit: u32) {
    if let Some(word) = bits.get_mut(bit as usize / 64) {
        *word |= 1 << (bit % 64);
    }
}

/// Clear bit `bit`.
#[inline]
pub fn clear(bits: &mut [u64], bit: u32) {
    if let Some(word) = bits.get_mut(bit as usize / 64) {
        *word &= !(1 << (bit % 64));
    }
}

/// The set bits, in order.
pub fn iter(bits: &[u64]) -> impl Iterator<Item = GroupId> + '_ {
    bits.iter().enumerate().flat_map(|(i, word)| {
        let mut w = *word;
        std::iter::from_fn(move || {
            if w == 0 {
                return None;
            }
            let bit = w.trailing_zeros();
            w &= w - 1;
            Some(GroupId(i as u32 * 64 + bit))
        })
    })
}

pub use crate::decision::list_contains;
