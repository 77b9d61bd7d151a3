//! Reads that serve peers, off the chain actor: a read-only connection of its own to the
//! node's database. Each answer is read inside one SQL read transaction, so it sees one
//! committed state (WAL: a snapshot; the writer's commits never wait on it, nor it on them).
//!
//! The actor commits a block, and what it changed, before announcing it, so everything a peer
//! can ask about after an announcement is already here.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::{decode_cascade, decode_proofs, read_coins, read_txpow, StoreError};
use crate::codec::Decode;
use crate::crypto::Hash;
use crate::mmr::{BlockWitness, MmrNode, MmrPeaks, NodeKey, Proofs};
use crate::types::{CoinRecord, TxHeader, TxPoW};

/// Two blobs of one row.
type Blobs = (Vec<u8>, Vec<u8>);

/// A read-only connection for serving peers (see the module docs).
#[derive(Debug)]
pub struct ServeReader {
    conn: Mutex<Connection>,
}

/// One committed state of the database, read in one SQL transaction.
pub struct Snapshot<'c> {
    tx: rusqlite::Transaction<'c>,
}

impl ServeReader {
    /// Open a read-only connection to the database at `path`.
    pub(super) fn open(path: &Path) -> Result<ServeReader, StoreError> {
        Ok(ServeReader { conn: Mutex::new(super::read_only(path)?) })
    }

    /// Run `f` on one snapshot of the database.
    pub fn read<T>(&self, f: impl FnOnce(&Snapshot<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let snap = Snapshot { tx: conn.transaction()? };
        let out = f(&snap)?;
        // Nothing was written: ending the read transaction only releases its snapshot.
        snap.tx.finish()?;
        Ok(out)
    }
}

impl Snapshot<'_> {
    /// The best tip.
    pub fn tip(&self) -> Result<Option<Hash>, StoreError> {
        let tip: Option<Vec<u8>> =
            self.tx.query_row("SELECT value FROM meta WHERE key = 'tip'", [], |r| r.get(0)).optional()?;
        Ok(tip.and_then(|t| t.try_into().ok()).map(Hash))
    }

    /// A tree block: its TxPoW and witness.
    pub fn block(&self, id: &Hash) -> Result<Option<(TxPoW, BlockWitness)>, StoreError> {
        let row = self.two_blobs("SELECT txpow, witness FROM blocks WHERE id = ?1", id)?;
        row.map(|(t, w)| Ok((TxPoW::decode(&t)?, BlockWitness::decode(&w)?))).transpose()
    }

    /// The two blobs `sql` selects for the row of `id`.
    fn two_blobs(&self, sql: &str, id: &Hash) -> Result<Option<Blobs>, StoreError> {
        Ok(self
            .tx
            .prepare_cached(sql)?
            .query_row(params![&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// A TxPoW listed by a tree block.
    pub fn listed(&self, id: &Hash) -> Result<Option<TxPoW>, StoreError> {
        read_txpow(&self.tx, id)
    }

    /// A pending transaction TxPoW and its input proofs (as last written by the actor).
    pub fn pending(&self, id: &Hash) -> Result<Option<(TxPoW, Proofs)>, StoreError> {
        let row = self.two_blobs("SELECT txpow, proofs FROM mempool WHERE id = ?1", id)?;
        row.map(|(t, p)| Ok((TxPoW::decode(&t)?, decode_proofs(&p)?))).transpose()
    }

    /// The tree root (the lowest stored block): TxPoW, witness and the MMR peaks after it.
    pub fn root(&self) -> Result<Option<(TxPoW, BlockWitness, MmrPeaks)>, StoreError> {
        type Row = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);
        let row: Option<Row> = self
            .tx
            .prepare_cached("SELECT txpow, witness, root_peaks FROM blocks ORDER BY number, id LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((t, w, p)) = row else { return Ok(None) };
        let p = p.ok_or_else(|| StoreError::Corrupt("tree root without its MMR peaks".into()))?;
        Ok(Some((TxPoW::decode(&t)?, BlockWitness::decode(&w)?, MmrPeaks::decode(&p)?)))
    }

    /// The cascade's headers, newest first (empty while the chain fits in the tree).
    pub fn cascade(&self) -> Result<Vec<TxHeader>, StoreError> {
        let blob: Option<Vec<u8>> =
            self.tx.query_row("SELECT value FROM meta WHERE key = 'cascade'", [], |r| r.get(0)).optional()?;
        Ok(match blob {
            Some(b) => decode_cascade(&b)?.into_iter().map(|e| e.header).collect(),
            None => vec![],
        })
    }

    /// Leaves in the full MMR (0 without `full_mmr`).
    pub fn mmr_leaf_count(&self) -> Result<u64, StoreError> {
        let lc: Option<i64> = self
            .tx
            .query_row("SELECT value FROM meta WHERE key = 'mmr_leaf_count'", [], |r| r.get(0))
            .optional()?;
        u64::try_from(lc.unwrap_or(0)).map_err(|_| StoreError::Corrupt("mmr leaf count".into()))
    }

    /// A node of the full MMR.
    pub fn mmr_node(&self, key: NodeKey) -> Result<Option<MmrNode>, StoreError> {
        let row: Option<(Vec<u8>, i64)> = self
            .tx
            .prepare_cached("SELECT hash, sum FROM mmr_nodes WHERE height = ?1 AND idx = ?2")?
            .query_row(params![key.height, key.index as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(h, sum)| {
            let hash = Hash(h.try_into().map_err(|_| StoreError::Corrupt("mmr hash".into()))?);
            let sum = u64::try_from(sum).map_err(|_| StoreError::Corrupt("mmr sum".into()))?;
            Ok(MmrNode { hash, sum })
        })
        .transpose()
    }

    /// Full-MMR coin index, one page: (leaf, coin) of the coins with these ids or at these
    /// addresses (each asked once), after the cursor `after`, at most `limit` rows.
    pub fn coins(
        &self,
        ids: &[Hash],
        by_address: bool,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<(u64, CoinRecord)>, StoreError> {
        read_coins(&self.tx, ids, by_address, after, limit)
    }
}

impl super::Store {
    /// A reader for serving peers, off the chain actor (its own read-only connection).
    pub fn serve_reader(&self) -> Result<ServeReader, StoreError> {
        ServeReader::open(self.path())
    }
}
