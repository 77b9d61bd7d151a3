//! Blocks from peers whose parent we lack yet (orphans), kept by the missing parent's id so
//! they join the chain as soon as it arrives, instead of being fetched again after the
//! catch-up they start. Socket-free.
//!
//! The node keeps only blocks that passed every check of their own form (proof of work at
//! least the minimum, size, magic), at most [`MAX_ORPHANS`] and [`MAX_ORPHAN_BYTES`] in all;
//! when full, the oldest gives way (so a block whose parent never comes is pushed out by
//! newer ones).

use std::collections::{HashMap, VecDeque};

use crate::crypto::Hash;
use crate::net::message::BlockData;

/// Most orphans held.
pub const MAX_ORPHANS: usize = 64;
/// Most bytes held (encoded blocks with their listed TxPoWs).
pub const MAX_ORPHAN_BYTES: usize = 4 << 20;

/// The pool, keyed by missing parent.
#[derive(Debug, Default)]
pub struct Orphans {
    by_parent: HashMap<Hash, Vec<(Hash, BlockData)>>,
    /// (id, parent, bytes), oldest first.
    order: VecDeque<(Hash, Hash, usize)>,
    bytes: usize,
}

impl Orphans {
    /// Keep block `b` (id `id`, `size` encoded bytes) until its parent arrives. False if
    /// already held or larger than the whole pool.
    pub fn add(&mut self, id: Hash, size: usize, b: BlockData) -> bool {
        if self.contains(&id) || size > MAX_ORPHAN_BYTES {
            return false;
        }
        while self.order.len() >= MAX_ORPHANS || self.bytes.saturating_add(size) > MAX_ORPHAN_BYTES {
            let Some((old, parent, gone)) = self.order.pop_front() else { break };
            self.bytes -= gone;
            self.remove(&old, &parent);
        }
        let parent = b.txpow.header.parents.0[0];
        self.order.push_back((id, parent, size));
        self.bytes += size;
        self.by_parent.entry(parent).or_default().push((id, b));
        true
    }

    /// Whether block `id` is held.
    pub fn contains(&self, id: &Hash) -> bool {
        self.order.iter().any(|(h, _, _)| h == id)
    }

    /// Take every held block whose TxPoW `joins` (its parent is now known: after a sync
    /// replaced our chain).
    pub fn release(&mut self, joins: impl Fn(&crate::types::TxPoW) -> bool) -> Vec<BlockData> {
        let parents: Vec<Hash> = self
            .by_parent
            .iter()
            .filter(|(_, v)| v.iter().any(|(_, b)| joins(&b.txpow)))
            .map(|(p, _)| *p)
            .collect();
        parents.iter().flat_map(|p| self.children_of(p)).collect()
    }

    /// Take the orphans whose parent is `parent` (it just joined the chain).
    pub fn children_of(&mut self, parent: &Hash) -> Vec<BlockData> {
        let Some(kids) = self.by_parent.remove(parent) else { return vec![] };
        self.order.retain(|(_, p, _)| p != parent);
        self.bytes = self.order.iter().map(|(_, _, s)| s).sum();
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
        assert!(o.add(a, 10, ba.clone()));
        assert!(!o.add(a, 10, ba), "held once");
        assert!(o.contains(&a));
        assert!(o.add(b, 10, bb));
        assert!(o.add(c, 10, bc));
        let kids: Vec<Hash> = o.children_of(&p).iter().map(|b| b.txpow.id()).collect();
        assert_eq!(kids, vec![a, b]);
        let released: Vec<Hash> =
            o.release(|t| t.header.parents.0[0] == Hash([2; 32])).iter().map(|b| b.txpow.id()).collect();
        assert_eq!(released, vec![c]);
        assert!(o.add(c, 10, block(Hash([2; 32]), 2).1));
        assert!(o.children_of(&p).is_empty());
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn the_pool_is_bounded_and_the_oldest_gives_way() {
        let mut o = Orphans::default();
        let first = block(Hash([9; 32]), 1);
        o.add(first.0, 10, first.1);
        for i in 0..MAX_ORPHANS as u64 {
            let (id, b) = block(Hash([3; 32]), i + 2);
            o.add(id, 10, b);
        }
        assert_eq!(o.len(), MAX_ORPHANS);
        assert!(o.children_of(&Hash([9; 32])).is_empty(), "the oldest gave way");
        assert_eq!(o.children_of(&Hash([3; 32])).len(), MAX_ORPHANS);
        assert_eq!(o.len(), 0);
        // By bytes too: two halves fit, a third pushes the oldest out.
        let (x, bx) = block(Hash([4; 32]), 2);
        let (y, by) = block(Hash([4; 32]), 3);
        let (z, bz) = block(Hash([4; 32]), 4);
        assert!(!o.add(x, MAX_ORPHAN_BYTES + 1, bx.clone()));
        assert!(o.add(x, MAX_ORPHAN_BYTES / 2, bx));
        assert!(o.add(y, MAX_ORPHAN_BYTES / 2, by));
        assert!(o.add(z, MAX_ORPHAN_BYTES / 2, bz));
        assert!(!o.contains(&x) && o.contains(&y) && o.contains(&z));
    }
}
