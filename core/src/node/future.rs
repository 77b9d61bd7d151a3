//! Blocks from peers dated too far ahead of our clock (SPEC §5's policy, not consensus): a
//! block more than `Params::max_local_future_ms` (2 h) ahead of the local clock waits here and
//! is offered to the chain again once it is due; nobody is banned for it (the clocks may be
//! the ones wrong). Socket- and clock-free: the time is an input.
//!
//! The node holds only blocks that passed every check of their own form (proof of work at
//! least the minimum, size, magic), at most [`MAX_HELD`] of them and [`MAX_HELD_BYTES`] in
//! all; when full, the one furthest ahead gives way.

use crate::crypto::Hash;
use crate::net::message::BlockData;

/// Most blocks held.
pub const MAX_HELD: usize = 64;
/// Most bytes held (encoded blocks with their listed TxPoWs).
pub const MAX_HELD_BYTES: usize = 4 << 20;

/// Whether a block dated `time_ms` is more than `limit_ms` ahead of `now_ms`.
pub fn is_ahead(time_ms: u64, now_ms: u64, limit_ms: u64) -> bool {
    time_ms > now_ms.saturating_add(limit_ms)
}

/// The held blocks.
#[derive(Debug)]
pub struct FutureBlocks {
    limit_ms: u64,
    held: Vec<(Hash, usize, BlockData)>,
    bytes: usize,
}

impl FutureBlocks {
    /// Hold blocks more than `limit_ms` ahead of the clock.
    pub fn new(limit_ms: u64) -> FutureBlocks {
        FutureBlocks { limit_ms, held: vec![], bytes: 0 }
    }

    /// Whether a block dated `time_ms` is too far ahead of `now_ms` to be taken now.
    pub fn is_ahead(&self, time_ms: u64, now_ms: u64) -> bool {
        is_ahead(time_ms, now_ms, self.limit_ms)
    }

    /// Whether block `id` is held.
    pub fn contains(&self, id: &Hash) -> bool {
        self.held.iter().any(|(h, _, _)| h == id)
    }

    /// Hold `b` (id `id`, `size` encoded bytes) until it is due. False if it was already held
    /// or gave way at once (too large, or the queue is full of blocks nearer to due).
    pub fn hold(&mut self, id: Hash, size: usize, b: BlockData) -> bool {
        if self.contains(&id) || size > MAX_HELD_BYTES {
            return false;
        }
        // Plan first: the blocks further ahead than this one give way, furthest first, until
        // it fits; if it cannot fit that way, nothing is dropped.
        let time = b.txpow.header.time_ms;
        let mut order: Vec<usize> = (0..self.held.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.held[i].2.txpow.header.time_ms));
        let (mut n, mut bytes) = (self.held.len(), self.bytes);
        let mut gone = vec![];
        for i in order {
            if n < MAX_HELD && bytes.saturating_add(size) <= MAX_HELD_BYTES {
                break;
            }
            if self.held[i].2.txpow.header.time_ms <= time {
                return false;
            }
            gone.push(i);
            n -= 1;
            bytes -= self.held[i].1;
        }
        if n >= MAX_HELD || bytes.saturating_add(size) > MAX_HELD_BYTES {
            return false;
        }
        gone.sort_unstable_by(|a, b| b.cmp(a));
        for i in gone {
            self.held.swap_remove(i);
        }
        self.bytes = bytes;
        self.bytes += size;
        self.held.push((id, size, b));
        true
    }

    /// Take the blocks due at `now_ms`, lowest number first (parents before children).
    pub fn due(&mut self, now_ms: u64) -> Vec<BlockData> {
        let limit = self.limit_ms;
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, _, b)| !is_ahead(b.txpow.header.time_ms, now_ms, limit));
        self.held = rest;
        self.bytes = self.held.iter().map(|(_, s, _)| s).sum();
        let mut due: Vec<BlockData> = due.into_iter().map(|(_, _, b)| b).collect();
        due.sort_by_key(|b| b.txpow.header.block_number);
        due
    }

    /// Milliseconds from `now_ms` until the first held block is due (`None`: nothing held).
    pub fn next_due_in(&self, now_ms: u64) -> Option<u64> {
        self.held
            .iter()
            .map(|(_, _, b)| b.txpow.header.time_ms.saturating_sub(self.limit_ms).saturating_sub(now_ms))
            .min()
    }

    /// Blocks held.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    fn block(number: u64, time_ms: u64) -> (Hash, BlockData) {
        let mut txpow = crate::chain::genesis(&Params::devnet()).expect("genesis").0;
        txpow.header.block_number = number;
        txpow.header.time_ms = time_ms;
        let id = txpow.id();
        (id, BlockData { txpow, witness: Default::default(), listed: vec![] })
    }

    const MAX_AHEAD_MS: u64 = 2 * 60 * 60 * 1000;

    #[test]
    fn blocks_wait_until_they_are_at_most_two_hours_ahead() {
        let now = 1_000_000_000;
        let mut f = FutureBlocks::new(MAX_AHEAD_MS);
        assert!(!f.is_ahead(now + MAX_AHEAD_MS, now));
        assert!(f.is_ahead(now + MAX_AHEAD_MS + 1, now));
        let (a, ba) = block(2, now + MAX_AHEAD_MS + 5_000);
        let (b, bb) = block(1, now + MAX_AHEAD_MS + 1_000);
        assert!(f.hold(a, 100, ba.clone()));
        assert!(!f.hold(a, 100, ba), "held once");
        assert!(f.contains(&a));
        assert!(f.hold(b, 100, bb));
        assert_eq!(f.next_due_in(now), Some(1_000));
        assert!(f.due(now).is_empty());
        let due = f.due(now + 5_000);
        assert_eq!(due.iter().map(|b| b.txpow.header.block_number).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(f.len(), 0);
        assert_eq!(f.next_due_in(now), None);
    }

    #[test]
    fn a_full_queue_keeps_the_blocks_nearest_to_due() {
        let now = 1_000_000_000;
        let mut f = FutureBlocks::new(MAX_AHEAD_MS);
        for i in 0..MAX_HELD as u64 {
            let (id, b) = block(i + 1, now + MAX_AHEAD_MS + 1_000 + i);
            assert!(f.hold(id, 100, b));
        }
        let (far, bf) = block(999, now + MAX_AHEAD_MS + 1_000_000);
        assert!(!f.hold(far, 100, bf), "further ahead than every held block");
        let (near, bn) = block(1_000, now + MAX_AHEAD_MS + 1);
        assert!(f.hold(near, 100, bn));
        assert_eq!(f.len(), MAX_HELD);
        assert_eq!(f.next_due_in(now), Some(1));
    }

    #[test]
    fn held_bytes_are_bounded() {
        let now = 1_000_000_000;
        let mut f = FutureBlocks::new(MAX_AHEAD_MS);
        let (big, bb) = block(1, now + MAX_AHEAD_MS + 10);
        assert!(!f.hold(big, MAX_HELD_BYTES + 1, bb.clone()), "larger than the whole budget");
        assert!(f.hold(big, MAX_HELD_BYTES / 2, bb));
        let (a, ba) = block(2, now + MAX_AHEAD_MS + 20);
        assert!(f.hold(a, MAX_HELD_BYTES / 2, ba));
        // A third, nearer to due: the furthest ahead gives way.
        let (c, bc) = block(3, now + MAX_AHEAD_MS + 5);
        assert!(f.hold(c, MAX_HELD_BYTES / 2, bc));
        assert!(!f.contains(&a) && f.contains(&big) && f.contains(&c));
        // One that would need a block nearer to due to give way evicts nothing.
        let (d, bd) = block(4, now + MAX_AHEAD_MS + 30);
        assert!(!f.hold(d, MAX_HELD_BYTES / 2, bd));
        assert!(f.contains(&big) && f.contains(&c));
        let (e, be) = block(5, now + MAX_AHEAD_MS + 7);
        assert!(!f.hold(e, MAX_HELD_BYTES, be), "would need the nearer block at +5 to give way");
        assert!(f.contains(&big) && f.contains(&c), "nothing dropped for a block that did not fit");
    }
}
