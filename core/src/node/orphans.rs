//! Blocks from peers whose parent we lack yet (orphans), kept by the missing parent's id so
//! they join the chain as soon as it arrives, instead of being fetched again after the
//! catch-up they start. Socket-free.
//!
//! Only blocks carrying their own proof of work are kept, at most [`MAX_ORPHANS`]; when full,
//! the oldest gives way. A block whose parent never comes simply ages out.

use std::collections::{HashMap, VecDeque};

use crate::crypto::Hash;
use crate::net::message::BlockData;

/// Most orphans held.
pub const MAX_ORPHANS: usize = 64;

/// The pool, keyed by missing parent.
#[derive(Debug, Default)]
pub struct Orphans {
    by_parent: HashMap<Hash, Vec<(Hash, BlockData)>>,
    /// (id, parent), oldest first.
    order: VecDeque<(Hash, Hash)>,
}

impl Orphans {
    /// Keep block `b` (id `id`) until its parent arrives. False if already held.
    pub fn add(&mut self, id: Hash, b: BlockData) -> bool {
        if self.order.iter().any(|(h, _)| *h == id) {
            return false;
        }
        if self.order.len() >= MAX_ORPHANS {
            if let Some((old, parent)) = self.order.pop_front() {
                self.remove(&old, &parent);
            }
        }
        let parent = b.txpow.header.parents.0[0];
        self.order.push_back((id, parent));
        self.by_parent.entry(parent).or_default().push((id, b));
        true
    }

    /// Take the orphans whose parent is `parent` (it just joined the chain).
    pub fn children_of(&mut self, parent: &Hash) -> Vec<BlockData> {
        let Some(kids) = self.by_parent.remove(parent) else { return vec![] };
        self.order.retain(|(_, p)| p != parent);
        kids.into_iter().map(|(_, b)| b).collect()
    }

    /// Orphans held.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.order.len()
    }

    fn remove(&mut self, id: &Hash, parent: &Hash) {
        if let Some(v) = self.by_parent.get_mut(parent) {
            v.retain(|(h, _)| h != id);
            if v.is_empty() {
                self.by_parent.remove(parent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    fn block(parent: Hash, number: u64) -> (Hash, BlockData) {
        let mut txpow = crate::chain::genesis(&Params::devnet()).expect("genesis").0;
        txpow.header.parents.0[0] = parent;
        txpow.header.block_number = number;
        let id = txpow.id();
        (id, BlockData { txpow, witness: Default::default(), listed: vec![] })
    }

    #[test]
    fn orphans_come_back_when_their_parent_arrives() {
        let mut o = Orphans::default();
        let p = Hash([1; 32]);
        let (a, ba) = block(p, 2);
        let (b, bb) = block(p, 3);
        let (c, bc) = block(Hash([2; 32]), 2);
        assert!(o.add(a, ba.clone()));
        assert!(!o.add(a, ba), "held once");
        assert!(o.add(b, bb));
        assert!(o.add(c, bc));
        let kids: Vec<Hash> = o.children_of(&p).iter().map(|b| b.txpow.id()).collect();
        assert_eq!(kids, vec![a, b]);
        assert!(o.children_of(&p).is_empty());
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn the_pool_is_bounded_and_the_oldest_gives_way() {
        let mut o = Orphans::default();
        let first = block(Hash([9; 32]), 1);
        o.add(first.0, first.1);
        for i in 0..MAX_ORPHANS as u64 {
            let (id, b) = block(Hash([3; 32]), i + 2);
            o.add(id, b);
        }
        assert_eq!(o.len(), MAX_ORPHANS);
        assert!(o.children_of(&Hash([9; 32])).is_empty(), "the oldest gave way");
        assert_eq!(o.children_of(&Hash([3; 32])).len(), MAX_ORPHANS);
        assert_eq!(o.len(), 0);
    }
}
