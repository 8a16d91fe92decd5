//! Hostname → group-set lookup over a trie of labels read from the top level
//! down (`com` → `example` → `www`).
//!
//! Each node stores, precomputed, the set for a name ending exactly there and
//! the set for any name below it that the trie knows nothing more about, so a
//! lookup walks the labels once and returns an interned set id.

use rustc_hash::FxHashMap;

use super::sets::{SetId, SetInterner, remap_id};
use cordon_core::hostname::Hostname;

#[derive(Debug, Default)]
struct Node {
    children: FxHashMap<Box<str>, u32>,
    exact: Vec<u32>,
    wildcard: Vec<u32>,
    /// Sets: [exact name, strictly below] × [with an address, hostname only].
    at: [SetId; 2],
    below: [SetId; 2],
}

/// The compiled FQDN trie.
#[derive(Debug, Default)]
pub struct FqdnTrie {
    nodes: Vec<Node>,
}

impl FqdnTrie {
    /// A trie with just its root.
    pub fn new() -> Self {
        FqdnTrie {
            nodes: vec![Node::default()],
        }
    }

    /// Add `groups` for the exact name, or for every name strictly below it.
    pub fn insert(&mut self, name: &Hostname, wildcard: bool, groups: &[u32]) {
        let mut node = 0usize;
        for label in name.labels_from_top() {
            let next = self.nodes.len();
            let child = match self.nodes.get_mut(node) {
                Some(n) => *n
                    .children
                    .entry(label.into())
                    .or_insert(u32::try_from(next).unwrap_or(u32::MAX)),
                None => return,
            };
            if child as usize == next {
                self.nodes.push(Node::default());
            }
            node = child as usize;
        }
        if let Some(n) = self.nodes.get_mut(node) {
            let list = if wildcard {
                &mut n.wildcard
            } else {
                &mut n.exact
            };
            list.extend_from_slice(groups);
        }
    }

    /// Compute every node's sets. `base` is added to hostname-only lookups
    /// (the groups `any` and `internet`).
    pub fn finish(&mut self, interner: &mut SetInterner, base: &[u32]) {
        // Children always come after their parent, so one forward pass sees
        // every parent finished first.
        let mut inherited: Vec<Vec<u32>> = vec![Vec::new(); self.nodes.len()];
        for i in 0..self.nodes.len() {
            let Some(node) = self.nodes.get(i) else { break };
            let above = inherited.get(i).cloned().unwrap_or_default();
            let mut at: Vec<u32> = above.iter().chain(&node.exact).copied().collect();
            let mut below: Vec<u32> = above.iter().chain(&node.wildcard).copied().collect();
            let children: Vec<u32> = node.children.values().copied().collect();
            for c in children {
                if let Some(slot) = inherited.get_mut(c as usize) {
                    slot.clone_from(&below);
                }
            }
            let at_plain = interner.intern_groups(&at);
            let below_plain = interner.intern_groups(&below);
            at.extend_from_slice(base);
            below.extend_from_slice(base);
            let at_base = interner.intern_groups(&at);
            let below_base = interner.intern_groups(&below);
            if let Some(node) = self.nodes.get_mut(i) {
                node.at = [at_plain, at_base];
                node.below = [below_plain, below_base];
                node.exact = Vec::new();
                node.wildcard = Vec::new();
            }
        }
    }

    /// The set for `host`; `hostname_only` when the endpoint has no address.
    #[inline]
    pub fn lookup(&self, host: &Hostname, hostname_only: bool) -> SetId {
        let variant = usize::from(hostname_only);
        let mut node = match self.nodes.first() {
            Some(n) => n,
            None => return 0,
        };
        for label in host.labels_from_top() {
            match node
                .children
                .get(label)
                .and_then(|c| self.nodes.get(*c as usize))
            {
                Some(child) => node = child,
                None => return node.below.get(variant).copied().unwrap_or(0),
            }
        }
        node.at.get(variant).copied().unwrap_or(0)
    }

    /// Replace every set id by its id in the finished set table.
    pub fn remap(&mut self, remap: &[SetId]) {
        for node in &mut self.nodes {
            for id in node.at.iter_mut().chain(node.below.iter_mut()) {
                *id = remap_id(remap, *id);
            }
        }
    }

    /// How many nodes the trie holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether only the root exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }
}
