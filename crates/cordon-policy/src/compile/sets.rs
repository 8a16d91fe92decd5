//! Interned group sets: every distinct membership bitset is stored once and
//! referred to by a 32-bit id, so lookups return an id instead of building
//! a set.

use rustc_hash::FxHashMap;

use crate::model::GroupId;

/// Identifier of an interned set.
pub type SetId = u32;

/// The interned bitsets, all of one width.
#[derive(Debug)]
pub struct SetTable {
    words: usize,
    data: Vec<u64>,
}

impl SetTable {
    /// The bitset with id `id` (empty for an unknown id).
    #[inline]
    pub fn get(&self, id: SetId) -> &[u64] {
        let start = id as usize * self.words;
        self.data.get(start..start + self.words).unwrap_or(&[])
    }

    /// Words per set.
    pub fn words(&self) -> usize {
        self.words
    }

    /// How many distinct sets exist.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.words).unwrap_or(0)
    }

    /// Whether no set exists.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes used.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() * 8
    }
}

/// Builds a [`SetTable`], deduplicating sets.
pub struct SetInterner {
    words: usize,
    data: Vec<u64>,
    index: FxHashMap<Box<[u64]>, SetId>,
}

impl SetInterner {
    /// An interner for sets over `groups` groups.
    pub fn new(groups: usize) -> Self {
        SetInterner {
            words: groups.div_ceil(64).max(1),
            data: Vec::new(),
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
        let id = SetId::try_from(self.index.len()).unwrap_or(SetId::MAX);
        self.data.extend_from_slice(bits);
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

    /// A set previously interned.
    pub fn get(&self, id: SetId) -> &[u64] {
        let start = id as usize * self.words;
        self.data.get(start..start + self.words).unwrap_or(&[])
    }

    /// The finished table.
    pub fn finish(self) -> SetTable {
        SetTable {
            words: self.words,
            data: self.data,
        }
    }
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

/// Whether bit `bit` is set.
#[inline]
pub fn contains(bits: &[u64], bit: u32) -> bool {
    bits.get(bit as usize / 64)
        .is_some_and(|w| w & (1 << (bit % 64)) != 0)
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
