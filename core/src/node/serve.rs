//! Answers to peers' read requests (`GetBlocks`, `GetBodies`, `GetTxPow`, `GetCascade`,
//! `GetCoinProofs`; `GetPeers` is the mesh's, in memory), served off the chain actor from a read-only store connection
//! ([`crate::store::serve`]): a flood of them costs the network task's blocking threads and
//! SQLite reads, never the actor's latency for blocks, transactions and the miner.
//!
//! Each answer reads one committed state. Pending transactions are served with the proofs the
//! actor last wrote: carried to its tip at admission, and rewritten (carried to its tip again)
//! after a reorg that disconnects blocks and every `proof_window / PROOF_REWRITE` blocks — so
//! they are at most a quarter of a window old, and a peer up to three quarters of a window
//! ahead of us still takes them.

use crate::codec::Encode;
use crate::crypto::Hash;
use crate::mmr::{BlockWitness, NodeKey};
use crate::net::message::{BlockData, CoinQuery, Message, RelayTxPow, MAX_COIN_PROOFS, MAX_GET};
use crate::net::peer::Reads;
use crate::store::serve::{ServeReader, Snapshot};
use crate::store::StoreError;
use crate::types::TxPoW;

/// Most bytes of blocks in one `Blocks` answer (a frame holds 4 MiB).
pub const MAX_BLOCKS_ANSWER: usize = 3 * 1024 * 1024;
/// Stored proofs of pending transactions are rewritten once they are this fraction of
/// `proof_window` old (a quarter).
pub const PROOF_REWRITE: u64 = 4;

/// The node's [`Reads`]: a read-only store connection.
#[derive(Debug)]
pub struct Served {
    reader: ServeReader,
    full_mmr: bool,
}

impl Served {
    /// Serve from `reader`; coin proofs only if this node keeps the full coin set.
    pub fn new(reader: ServeReader, full_mmr: bool) -> Served {
        Served { reader, full_mmr }
    }

    /// Run `f` on a snapshot; a failed read is logged and answered as "nothing" (the writer,
    /// which owns the file, is the one that stops the node on a storage failure).
    fn read<T: Default>(&self, what: &str, f: impl FnOnce(&Snapshot<'_>) -> Result<T, StoreError>) -> T {
        self.reader.read(f).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "serving {what} from the store failed");
            T::default()
        })
    }
}

/// A stored block with the TxPoWs it lists (those the store holds).
fn block_data(s: &Snapshot<'_>, txpow: TxPoW, witness: BlockWitness) -> Result<BlockData, StoreError> {
    let mut listed = vec![];
    for l in &txpow.body.txpow_ids {
        if let Some(t) = s.listed(l)? {
            listed.push(t);
        }
    }
    Ok(BlockData { txpow, witness, listed })
}

impl Reads for Served {
    fn blocks(&self, ids: &[Hash]) -> Vec<BlockData> {
        self.read("blocks", |s| {
            let mut out = vec![];
            let mut bytes = 0usize;
            for id in ids.iter().take(MAX_GET) {
                let Some((txpow, witness)) = s.block(id)? else {
                    tracing::debug!(id = %id.to_hex(), "a block asked for is not in the store");
                    continue;
                };
                let d = block_data(s, txpow, witness)?;
                bytes = bytes.saturating_add(d.encode().len());
                if bytes > MAX_BLOCKS_ANSWER {
                    break;
                }
                out.push(d);
            }
            Ok(out)
        })
    }

    fn txpows(&self, ids: &[Hash]) -> Vec<RelayTxPow> {
        self.read("transactions", |s| {
            let mut out = vec![];
            for id in ids.iter().take(MAX_GET) {
                // Pending ones with their proofs; ones listed by tree blocks without (a peer
                // completing a pending block asks for those).
                if let Some(p) = s.pending(id)? {
                    out.push(p);
                } else if let Some(t) = s.listed(id)? {
                    out.push((t, vec![]));
                }
            }
            Ok(out)
        })
    }

    fn cascade(&self) -> Option<Message> {
        self.read("the cascade", |s| {
            let Some((txpow, witness, root_peaks)) = s.root()? else { return Ok(None) };
            Ok(Some(Message::Cascade {
                headers: s.cascade()?,
                root: Box::new(block_data(s, txpow, witness)?),
                root_peaks,
            }))
        })
    }

    /// Unspent coins by id or address (each asked once), proofs against our tip, a page of
    /// at most [`MAX_COIN_PROOFS`] rows after the cursor `after` (spent coins are looked at and
    /// skipped; the answer's `next` is the last coin looked at).
    fn coin_proofs(&self, query: CoinQuery, after: Option<Hash>) -> Option<Message> {
        if !self.full_mmr {
            return None;
        }
        self.read("coin proofs", |s| {
            let Some(tip) = s.tip()? else { return Ok(None) };
            let (ids, by_address) = match &query {
                CoinQuery::Coins(v) => (v, false),
                CoinQuery::Addresses(v) => (v, true),
            };
            let rows = s.coins(ids, by_address, after.as_ref(), MAX_COIN_PROOFS)?;
            let next =
                (rows.len() >= MAX_COIN_PROOFS).then(|| rows.last().map(|(_, r)| r.coin.coin_id)).flatten();
            let leaf_count = s.mmr_leaf_count()?;
            let mut proofs = vec![];
            for (leaf, rec) in rows {
                let unspent = s.mmr_node(NodeKey::leaf(leaf))?.is_some_and(|n| n.sum > 0);
                if !unspent {
                    continue;
                }
                // A read error inside the path look-up ends the answer with that error.
                let mut failed = None;
                let p = crate::mmr::proof_in(leaf_count, leaf, tip, |k| {
                    s.mmr_node(k).unwrap_or_else(|e| {
                        failed.get_or_insert(e);
                        None
                    })
                });
                if let Some(e) = failed {
                    return Err(e);
                }
                if let Ok(p) = p {
                    proofs.push((rec, p));
                }
            }
            Ok(Some(Message::CoinProofs { block: tip, proofs, next }))
        })
    }
}
