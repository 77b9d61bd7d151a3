//! Transactions a reorg returned that cannot rejoin the mempool yet: an input of theirs was
//! created by another returned transaction, which must be in a block first (a block may not
//! spend a coin created in the same block). Each waits for the blocks that create its missing
//! inputs and then goes back to the mempool, so a payment chained on a reorganised-away one is
//! not lost. Bounded ([`MAX_WAITING`]); one waiting longer than [`WAIT_BLOCKS`] blocks is
//! dropped (its input may be spent for good on the new chain).

use std::collections::VecDeque;

use crate::crypto::Hash;
use crate::mmr::MmrProof;
use crate::types::TxPoW;

/// Most transactions waiting.
pub const MAX_WAITING: usize = 32;
/// Blocks a transaction may wait.
pub const WAIT_BLOCKS: u64 = 64;

#[derive(Debug)]
struct Held {
    txpow: TxPoW,
    /// Per input: its `created` and a proof, once known.
    proofs: Vec<Option<(u64, MmrProof)>>,
    since: u64,
}

/// The waiting transactions.
#[derive(Debug, Default)]
pub struct Waiting {
    held: VecDeque<Held>,
}

impl Waiting {
    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Hold `txpow` (its inputs' proofs where known) from tip height `height`. The oldest
    /// gives way when full; a transaction held already is not held twice.
    pub fn hold(&mut self, txpow: TxPoW, proofs: Vec<Option<(u64, MmrProof)>>, height: u64) {
        let id = txpow.id();
        if proofs.len() != txpow.body.transaction.inputs.len() || self.held.iter().any(|h| h.txpow.id() == id)
        {
            return;
        }
        if self.held.len() >= MAX_WAITING {
            self.held.pop_front();
        }
        self.held.push_back(Held { txpow, proofs, since: height });
    }

    /// Whether a held transaction misses input `coin`.
    pub fn wants(&self, coin: &Hash) -> bool {
        self.held.iter().any(|h| missing(h).any(|c| c == *coin))
    }

    /// A block created `coin` (at `created`, proven by `proof`): every held transaction
    /// missing it takes it.
    pub fn supply(&mut self, coin: &Hash, created: u64, proof: &MmrProof) {
        for h in &mut self.held {
            let inputs = &h.txpow.body.transaction.inputs;
            for (i, slot) in h.proofs.iter_mut().enumerate() {
                if slot.is_none() && inputs.get(i).is_some_and(|c| c.coin_id == *coin) {
                    *slot = Some((created, proof.clone()));
                }
            }
        }
    }

    /// Take the transactions with every input proven, and drop those held since before
    /// `height - WAIT_BLOCKS`.
    pub fn take_ready(&mut self, height: u64) -> Vec<(TxPoW, Vec<(u64, MmrProof)>)> {
        let mut ready = vec![];
        let mut rest = VecDeque::new();
        for h in std::mem::take(&mut self.held) {
            if h.proofs.iter().all(Option::is_some) {
                ready.push((h.txpow, h.proofs.into_iter().flatten().collect()));
            } else if height.saturating_sub(h.since) <= WAIT_BLOCKS {
                rest.push_back(h);
            }
        }
        self.held = rest;
        ready
    }
}

fn missing(h: &Held) -> impl Iterator<Item = Hash> + '_ {
    h.proofs.iter().zip(&h.txpow.body.transaction.inputs).filter(|(p, _)| p.is_none()).map(|(_, c)| c.coin_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Encode;
    use crate::types::Coin;

    /// A TxPoW spending coins `coins` (each id `[c; 32]`).
    fn tx(coins: &[u8]) -> TxPoW {
        let (mut t, _) = crate::chain::genesis(&crate::params::Params::devnet()).unwrap();
        t.body.transaction.inputs = coins
            .iter()
            .map(|c| Coin {
                coin_id: Hash([*c; 32]),
                address: Hash::ZERO,
                amount: 1,
                token_id: Hash::ZERO,
                state: vec![],
            })
            .collect();
        t.header.body_hash = crate::crypto::sha3(&t.body.encode());
        t
    }

    fn proof() -> MmrProof {
        MmrProof { block_id: Hash::ZERO, leaf_index: 0, path: vec![] }
    }

    #[test]
    fn a_transaction_waits_for_its_missing_inputs_then_is_ready_once() {
        let mut w = Waiting::default();
        let p = proof();
        w.hold(tx(&[1, 2]), vec![Some((3, p.clone())), None], 10);
        w.hold(tx(&[1, 2]), vec![Some((3, p.clone())), None], 10);
        assert!(w.wants(&Hash([2; 32])) && !w.wants(&Hash([1; 32])));
        assert!(w.take_ready(11).is_empty());
        w.supply(&Hash([2; 32]), 12, &p);
        let ready = w.take_ready(12);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].1.iter().map(|(c, _)| *c).collect::<Vec<_>>(), vec![3, 12]);
        assert!(w.is_empty() && w.take_ready(13).is_empty());
    }

    #[test]
    fn waiting_is_bounded_in_number_and_time() {
        let mut w = Waiting::default();
        for i in 0..(MAX_WAITING as u8 + 5) {
            w.hold(tx(&[i]), vec![None], 0);
        }
        assert_eq!(w.held.len(), MAX_WAITING);
        assert!(!w.wants(&Hash([0; 32])), "the oldest gave way");
        assert!(w.take_ready(WAIT_BLOCKS).is_empty() && !w.is_empty());
        w.take_ready(WAIT_BLOCKS + 1);
        assert!(w.is_empty(), "dropped after waiting too long");
    }
}
