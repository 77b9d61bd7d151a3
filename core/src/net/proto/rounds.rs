//! A catch-up's rounds of `GetHeaders`, socket-free: which locator to send, whether a
//! `Headers` answer has the form an honest peer's best chain gives, and what to do next.
//!
//! - After a full batch the next round asks on from its last header: our tip may not have
//!   moved to the peer's branch yet (it forks more than a batch below our tip), and our own
//!   locator would bring the same batch back.
//! - A batch must be a chain: each header names the one before as its parent, and after a
//!   full batch the first names that batch's last. A peer answering otherwise is done with.
//! - A full batch we already hold entirely moves on, but only so many in a row: our tree
//!   holds at most `tree_blocks` blocks of one branch, so an honest peer's branch cannot
//!   repeat more known full batches than fit in it. A peer that keeps sending known headers
//!   costs us at most that many batches (and one `Has` each: in a linked batch whose last
//!   header we hold, we hold them all).

use super::super::message::{MAX_HEADERS, MAX_LOCATOR};
use crate::crypto::Hash;
use crate::types::TxHeader;

/// What a catch-up does after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Fetch the bodies of the unknown headers; then, if `ask_on` (the batch was full), ask
    /// on from its last header.
    Fetch {
        /// The batch was full: more may follow.
        ask_on: bool,
    },
    /// All known: ask on from the batch's last header.
    AskOn,
    /// Nothing more from this peer.
    Done,
}

/// Why a batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoundFault {
    /// A header does not name the one before it as its parent.
    #[error("headers that do not form a chain")]
    Unlinked,
    /// The batch does not follow the last header of the previous full batch.
    #[error("headers that do not follow the previous batch")]
    NotFollowing,
    /// More full batches of headers we hold than our tree could explain.
    #[error("too many batches of headers we already hold")]
    KnownBatches,
}

/// The state of one catch-up's header rounds.
#[derive(Debug, Clone)]
pub struct HeaderRounds {
    from: Option<Hash>,
    known_in_a_row: u64,
    max_known: u64,
}

impl HeaderRounds {
    /// Rounds of a catch-up for a node whose tree holds at most `tree_blocks` blocks of one
    /// branch (Params `tree_depth + cascade_step`).
    pub fn new(tree_blocks: u64) -> HeaderRounds {
        HeaderRounds { from: None, known_in_a_row: 0, max_known: tree_blocks / MAX_HEADERS as u64 + 1 }
    }

    /// The locator to send: `ours`, led by the last header of the previous full batch (one
    /// of ours before the last, the root, gives way if needed: at most [`MAX_LOCATOR`]).
    pub fn locator(&self, mut ours: Vec<Hash>) -> Vec<Hash> {
        if let Some(last) = self.from {
            ours.insert(0, last);
            if ours.len() > MAX_LOCATOR {
                ours.remove(ours.len() - 2);
            }
        }
        ours
    }

    /// Check a batch's form and return its ids: each header follows the one before, and the
    /// first follows the previous full batch's last.
    pub fn check(&self, headers: &[TxHeader]) -> Result<Vec<Hash>, RoundFault> {
        let ids: Vec<Hash> = headers.iter().map(|h| h.id()).collect();
        if let (Some(from), Some(first)) = (self.from, headers.first()) {
            if first.parents.0[0] != from {
                return Err(RoundFault::NotFollowing);
            }
        }
        for (h, prev) in headers.iter().skip(1).zip(&ids) {
            if h.parents.0[0] != *prev {
                return Err(RoundFault::Unlinked);
            }
        }
        Ok(ids)
    }

    /// After a checked batch (`ids`, `unknown` of them we lack): what to do next.
    pub fn next(&mut self, ids: &[Hash], unknown: usize) -> Result<Next, RoundFault> {
        let full = ids.len() == MAX_HEADERS;
        self.from = ids.last().copied().filter(|_| full);
        if unknown > 0 {
            self.known_in_a_row = 0;
            return Ok(Next::Fetch { ask_on: full });
        }
        if !full {
            return Ok(Next::Done);
        }
        self.known_in_a_row += 1;
        if self.known_in_a_row > self.max_known {
            return Err(RoundFault::KnownBatches);
        }
        Ok(Next::AskOn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Parents;

    /// A batch of `n` linked headers after `parent` (genesis's form, renumbered: only the
    /// links matter here).
    fn batch(parent: Hash, n: usize) -> Vec<TxHeader> {
        let g = crate::chain::genesis(&crate::Params::devnet()).expect("genesis").0.header;
        let mut v = Vec::with_capacity(n);
        let mut prev = parent;
        for i in 0..n {
            let h = TxHeader { block_number: i as u64 + 1, parents: Parents([prev; 32]), ..g.clone() };
            prev = h.id();
            v.push(h);
        }
        v
    }

    #[test]
    fn a_full_batch_leads_the_next_locator_and_the_next_batch_must_follow_it() {
        let mut r = HeaderRounds::new(2_148);
        let ours: Vec<Hash> = (0..MAX_LOCATOR as u8).map(|i| Hash([i; 32])).collect();
        assert_eq!(r.locator(ours.clone()), ours, "nothing to lead with yet");
        let b1 = batch(Hash([9; 32]), MAX_HEADERS);
        let ids = r.check(&b1).unwrap();
        assert_eq!(r.next(&ids, 10), Ok(Next::Fetch { ask_on: true }));
        let loc = r.locator(ours.clone());
        assert_eq!(loc.len(), MAX_LOCATOR);
        assert_eq!((loc[0], *loc.last().unwrap()), (*ids.last().unwrap(), *ours.last().unwrap()));
        // The next batch must start after it.
        assert_eq!(r.check(&batch(Hash([9; 32]), 5)), Err(RoundFault::NotFollowing));
        let b2 = batch(*ids.last().unwrap(), 5);
        let ids2 = r.check(&b2).unwrap();
        assert_eq!(r.next(&ids2, 5), Ok(Next::Fetch { ask_on: false }));
        assert_eq!(r.locator(vec![Hash([1; 32])]), vec![Hash([1; 32])], "a short batch leads nothing");
    }

    #[test]
    fn unlinked_headers_are_refused() {
        let r = HeaderRounds::new(2_148);
        let mut b = batch(Hash([3; 32]), 10);
        b.swap(4, 5);
        assert_eq!(r.check(&b), Err(RoundFault::Unlinked));
        let mut same = batch(Hash([3; 32]), 1);
        same.push(same[0].clone());
        assert_eq!(r.check(&same), Err(RoundFault::Unlinked), "one header repeated");
        assert!(r.check(&[]).unwrap().is_empty());
    }

    #[test]
    fn known_full_batches_move_on_only_as_far_as_a_tree_could_explain() {
        // Main's tree: 2,148 blocks of a branch, so two known full batches at most.
        let mut r = HeaderRounds::new(2_148);
        let mut parent = Hash([1; 32]);
        for _ in 0..2 {
            let b = batch(parent, MAX_HEADERS);
            let ids = r.check(&b).unwrap();
            assert_eq!(r.next(&ids, 0), Ok(Next::AskOn));
            parent = *ids.last().unwrap();
        }
        let ids = r.check(&batch(parent, MAX_HEADERS)).unwrap();
        assert_eq!(r.next(&ids, 0), Err(RoundFault::KnownBatches));
        // Something new resets the count; a short known batch ends the catch-up.
        let mut r = HeaderRounds::new(2_148);
        let ids = r.check(&batch(parent, MAX_HEADERS)).unwrap();
        assert_eq!(r.next(&ids, 0), Ok(Next::AskOn));
        let ids = r.check(&batch(*ids.last().unwrap(), MAX_HEADERS)).unwrap();
        assert_eq!(r.next(&ids, 1), Ok(Next::Fetch { ask_on: true }));
        let ids = r.check(&batch(*ids.last().unwrap(), 7)).unwrap();
        assert_eq!(r.next(&ids, 0), Ok(Next::Done));
    }
}
