//! Blocks from peers dated too far ahead of our clock (SPEC §5's policy, not consensus): a
//! block more than [`MAX_AHEAD_MS`] ahead of the local clock waits here and is offered to the
//! chain again once it is due; nobody is banned for it (the clocks may be the ones wrong).
//! Socket- and clock-free: the time is an input.
//!
//! Only blocks carrying their own proof of work are held, at most [`MAX_HELD`] of them; when
//! full, the one furthest ahead gives way.

use crate::crypto::Hash;
use crate::net::message::BlockData;

/// A peer's block more than this far ahead of our clock waits (2 h).
pub const MAX_AHEAD_MS: u64 = 2 * 60 * 60 * 1000;
/// Most blocks held.
pub const MAX_HELD: usize = 64;

/// Whether a block dated `time_ms` is too far ahead of `now_ms` to be taken now.
pub fn is_ahead(time_ms: u64, now_ms: u64) -> bool {
    time_ms > now_ms.saturating_add(MAX_AHEAD_MS)
}

/// The held blocks.
#[derive(Debug, Default)]
pub struct FutureBlocks {
    held: Vec<(Hash, BlockData)>,
}

impl FutureBlocks {
    /// Hold `b` (id `id`) until it is due. False if it was already held or gave way at once
    /// (the queue is full of blocks nearer to due).
    pub fn hold(&mut self, id: Hash, b: BlockData) -> bool {
        if self.held.iter().any(|(h, _)| *h == id) {
            return false;
        }
        if self.held.len() >= MAX_HELD {
            let Some((i, last)) =
                self.held.iter().enumerate().max_by_key(|(_, (_, x))| x.txpow.header.time_ms)
            else {
                return false;
            };
            if last.1.txpow.header.time_ms <= b.txpow.header.time_ms {
                return false;
            }
            self.held.swap_remove(i);
        }
        self.held.push((id, b));
        true
    }

    /// Take the blocks due at `now_ms`, lowest number first (parents before children).
    pub fn due(&mut self, now_ms: u64) -> Vec<BlockData> {
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, b)| !is_ahead(b.txpow.header.time_ms, now_ms));
        self.held = rest;
        let mut due: Vec<BlockData> = due.into_iter().map(|(_, b)| b).collect();
        due.sort_by_key(|b| b.txpow.header.block_number);
        due
    }

    /// Milliseconds from `now_ms` until the first held block is due (`None`: nothing held).
    pub fn next_due_in(&self, now_ms: u64) -> Option<u64> {
        self.held
            .iter()
            .map(|(_, b)| b.txpow.header.time_ms.saturating_sub(MAX_AHEAD_MS).saturating_sub(now_ms))
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

    #[test]
    fn blocks_wait_until_they_are_at_most_two_hours_ahead() {
        let now = 1_000_000_000;
        assert!(!is_ahead(now + MAX_AHEAD_MS, now));
        assert!(is_ahead(now + MAX_AHEAD_MS + 1, now));
        let mut f = FutureBlocks::default();
        let (a, ba) = block(2, now + MAX_AHEAD_MS + 5_000);
        let (b, bb) = block(1, now + MAX_AHEAD_MS + 1_000);
        assert!(f.hold(a, ba.clone()));
        assert!(!f.hold(a, ba), "held once");
        assert!(f.hold(b, bb));
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
        let mut f = FutureBlocks::default();
        for i in 0..MAX_HELD as u64 {
            let (id, b) = block(i + 1, now + MAX_AHEAD_MS + 1_000 + i);
            assert!(f.hold(id, b));
        }
        let (far, bf) = block(999, now + MAX_AHEAD_MS + 1_000_000);
        assert!(!f.hold(far, bf), "further ahead than every held block");
        let (near, bn) = block(1_000, now + MAX_AHEAD_MS + 1);
        assert!(f.hold(near, bn));
        assert_eq!(f.len(), MAX_HELD);
        assert_eq!(f.next_due_in(now), Some(1));
    }
}
