//! SQLite storage: one file in the data dir, WAL with `synchronous=FULL`, one SQL transaction per
//! accepted block, a single writer (owned by the chain actor).
//!
//! Tables: `meta` (schema version, network, genesis, tip, and the cascade as one deflated blob —
//! consecutive cascade headers share most of their bytes), `blocks` (tree blocks with their
//! witness; the MMR peaks only for the tree root — every other block is re-validated at start,
//! which recomputes its peaks and delta), `txpows` (transactions listed by tree blocks),
//! `mempool`, and `mmr_nodes` (only with `full_mmr`).
//!
//! The chain keeps only the newest tree blocks' witnesses and deltas in memory; it reads older
//! ones back through [`ColdReader`], a second (read-only) connection to the same file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use thiserror::Error;

use crate::chain::{Cascade, CascadeEntry, ColdBlocks, TreeBlock};
use crate::codec::{CodecError, Decode, Encode};
use crate::crypto::Hash;
use crate::mmr::{BlockWitness, MmrNode, MmrPeaks, MmrProof, NodeKey};
use crate::types::{CoinRecord, TxHeader, TxPoW};

pub mod serve;

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "minima.sqlite";
/// Current schema version.
pub const SCHEMA_VERSION: i64 = 1;

/// Storage failures.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The disk (or the file size limit) is full.
    #[error("the disk is full: {0}")]
    DiskFull(String),
    /// Stored bytes do not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The data dir belongs to another network or program.
    #[error("data dir holds {found}, not {expected}")]
    NotOurs {
        /// What this node runs.
        expected: String,
        /// What the data dir holds.
        found: String,
    },
    /// A schema newer than this program knows.
    #[error("database schema {0} is newer than this program ({SCHEMA_VERSION})")]
    NewerSchema(i64),
    /// `PRAGMA integrity_check` failed.
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// A file of the database could not be created or made private.
    #[error("database file: {0}")]
    Io(String),
}

impl From<CodecError> for StoreError {
    fn from(e: CodecError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

fn map_full(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, ref msg) = e {
        if f.code == rusqlite::ErrorCode::DiskFull {
            return StoreError::DiskFull(msg.clone().unwrap_or_else(|| "SQLITE_FULL".into()));
        }
    }
    StoreError::Sqlite(e)
}

/// Everything a node reloads at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Cascade entries, newest first.
    pub cascade: Vec<CascadeEntry>,
    /// Tree blocks stored (read them with [`Store::for_each_block`]).
    pub block_count: u64,
    /// MMR peaks after the root.
    pub root_peaks: Option<MmrPeaks>,
    /// Mempool entries: TxPoW and its input proofs.
    pub mempool: Vec<(TxPoW, Vec<(u64, MmrProof)>)>,
    /// The stored tip.
    pub tip: Option<Hash>,
    /// MMR nodes (full_mmr only) and the leaf count they describe.
    pub mmr_nodes: Vec<(NodeKey, MmrNode)>,
    /// Leaf count of the stored full MMR.
    pub mmr_leaf_count: u64,
}

/// What one accepted block changes, written in one SQL transaction.
#[derive(Debug, Default)]
pub struct BlockCommit<'a> {
    /// The new tree block (None when only the mempool or tip changed).
    pub block: Option<&'a TreeBlock>,
    /// TxPoWs it listed.
    pub listed: Vec<&'a TxPoW>,
    /// Ids that left the tree (moved into the cascade or pruned side branches).
    pub removed: Vec<Hash>,
    /// New cascade and the new tree root, when they changed.
    pub cascade: Option<(&'a Cascade, &'a TreeBlock)>,
    /// Tip after the block.
    pub tip: Hash,
    /// Mempool entries that left (by TxPoW id).
    pub mempool_removed: Vec<Hash>,
    /// Mempool entries that arrived.
    pub mempool_added: Vec<(&'a TxPoW, &'a [(u64, MmrProof)])>,
    /// Pending entries' proofs carried to a newer block (by TxPoW id), so the proofs served
    /// to peers from the store stay within their `proof_window`.
    pub mempool_proofs: Vec<(Hash, &'a [(u64, MmrProof)])>,
    /// Full-MMR node changes: (key, new value or None to delete), and the new leaf count.
    pub mmr_changes: Vec<(NodeKey, Option<MmrNode>)>,
    /// Leaf count after the MMR changes.
    pub mmr_leaf_count: Option<u64>,
    /// Full-MMR coin index: forget coins at leaves from this index on (blocks that left).
    pub coins_from: Option<u64>,
    /// Full-MMR coin index: coins created, with their leaf index.
    pub coins_added: Vec<(u64, CoinRecord)>,
    /// What the block changed in the wallet.
    pub wallet: Option<&'a crate::wallet::WalletChanges>,
}

/// A stored wallet: the seed fingerprint it belongs to, keys, coins and history.
#[derive(Debug, Default)]
pub struct StoredWallet {
    /// Fingerprint of the seed (None: no wallet yet).
    pub fingerprint: Option<Hash>,
    /// Keys by index.
    pub keys: Vec<crate::wallet::WalletKey>,
    /// Coins.
    pub coins: Vec<crate::wallet::OwnCoin>,
    /// History.
    pub history: Vec<crate::wallet::HistoryEntry>,
}

fn write_wallet(tx: &rusqlite::Transaction<'_>, w: &crate::wallet::WalletChanges) -> Result<(), StoreError> {
    for c in &w.coins_put {
        tx.execute(
            "INSERT OR REPLACE INTO wallet_coins VALUES (?1, ?2)",
            params![&c.rec.coin.coin_id.0[..], c.encode()],
        )
        .map_err(map_full)?;
    }
    for id in &w.coins_del {
        tx.execute("DELETE FROM wallet_coins WHERE coin_id = ?1", params![&id.0[..]]).map_err(map_full)?;
    }
    for h in &w.history_put {
        let id = Hash::from_hex(&h.txid).map_err(|_| StoreError::Corrupt("history txid".into()))?;
        let json = serde_json::to_string(h).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.execute("INSERT OR REPLACE INTO wallet_history VALUES (?1, ?2)", params![&id.0[..], json])
            .map_err(map_full)?;
    }
    for i in &w.keys_used {
        tx.execute("UPDATE wallet_keys SET used = 1 WHERE idx = ?1", params![*i as i64]).map_err(map_full)?;
    }
    Ok(())
}

/// The storage handle: the writer connection.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Store a listed TxPoW under the highest block number that lists it (a TxPoW listed on two
/// branches stays until the higher listing leaves the tree).
fn put_txpow(tx: &rusqlite::Transaction<'_>, t: &TxPoW, number: u64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO txpows VALUES (?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET number = MAX(number, excluded.number)",
        params![&t.id().0[..], number as i64, t.encode()],
    )
    .map_err(map_full)?;
    Ok(())
}

fn read_txpow(conn: &Connection, id: &Hash) -> Result<Option<TxPoW>, StoreError> {
    let b: Option<Vec<u8>> = conn
        .prepare_cached("SELECT txpow FROM txpows WHERE id = ?1")?
        .query_row(params![&id.0[..]], |r| r.get(0))
        .optional()?;
    b.map(|b| TxPoW::decode(&b).map_err(StoreError::from)).transpose()
}

/// The chain's reader of stored tree blocks ([`ColdBlocks`]): a read-only connection of its
/// own to the node's database (WAL: reads never wait on the writer's commits).
#[derive(Debug)]
pub struct ColdReader {
    conn: Mutex<Connection>,
    /// `Some(gen)`: reads a sync candidate's staged blocks (see [`Store::stage`]).
    staging: Option<i64>,
}

impl ColdReader {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<Option<T>, StoreError>) -> Option<T> {
        let conn = self.conn.lock().ok()?;
        match f(&conn) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "reading a stored tree block failed");
                None
            }
        }
    }
}

impl ColdBlocks for ColdReader {
    fn witness(&self, id: &Hash) -> Option<BlockWitness> {
        self.with(|c| {
            let b: Option<Vec<u8>> = match self.staging {
                None => c
                    .prepare_cached("SELECT witness FROM blocks WHERE id = ?1")?
                    .query_row(params![&id.0[..]], |r| r.get(0))
                    .optional()?,
                Some(g) => c
                    .prepare_cached("SELECT witness FROM sync_blocks WHERE gen = ?1 AND id = ?2")?
                    .query_row(params![g, &id.0[..]], |r| r.get(0))
                    .optional()?,
            };
            b.map(|b| BlockWitness::decode(&b).map_err(StoreError::from)).transpose()
        })
    }

    fn txpow(&self, id: &Hash) -> Option<TxPoW> {
        self.with(|c| match self.staging {
            None => read_txpow(c, id),
            Some(g) => {
                let b: Option<Vec<u8>> = c
                    .prepare_cached("SELECT txpow FROM sync_txpows WHERE gen = ?1 AND id = ?2")?
                    .query_row(params![g, &id.0[..]], |r| r.get(0))
                    .optional()?;
                b.map(|b| TxPoW::decode(&b).map_err(StoreError::from)).transpose()
            }
        })
    }
}

/// Full-MMR coin index, one page: (leaf, coin) of the coins with these ids or at these
/// addresses (each asked once), in (address, coin id) or coin id order after the coin
/// `after` (a cursor: every page is a range scan, never a skip over earlier rows), at most
/// `limit` rows.
fn read_coins(
    conn: &Connection,
    ids: &[Hash],
    by_address: bool,
    after: Option<&Hash>,
    limit: usize,
) -> Result<Vec<(u64, CoinRecord)>, StoreError> {
    let mut keys: Vec<&Hash> = ids.iter().collect();
    keys.sort();
    keys.dedup();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut out = vec![];
    if by_address {
        // Row-value order (address, coin_id) on the coins_address_id index.
        let start = match after {
            Some(c) => {
                let a: Option<Vec<u8>> = conn
                    .query_row("SELECT address FROM coins WHERE coin_id = ?1", params![&c.0[..]], |r| {
                        r.get(0)
                    })
                    .optional()?;
                // `None`: the cursor's coin left (a reorg): start over.
                a.map(|a| (a, c.0.to_vec()))
            }
            None => None,
        };
        let mut st = conn.prepare_cached(
            "SELECT leaf, record FROM coins WHERE address = ?1 AND (address, coin_id) > (?2, ?3)
             ORDER BY coin_id LIMIT ?4",
        )?;
        for a in keys {
            let (sa, sc) = match &start {
                Some((sa, _)) if sa.as_slice() > &a.0[..] => continue,
                Some((sa, sc)) if sa.as_slice() == &a.0[..] => (sa.clone(), sc.clone()),
                _ => (a.0.to_vec(), vec![]),
            };
            let left = limit - out.len() as i64;
            if left <= 0 {
                break;
            }
            let rows = st.query_map(params![&a.0[..], sa, sc, left], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            for row in rows {
                let (leaf, rec) = row?;
                out.push((leaf as u64, CoinRecord::decode(&rec)?));
            }
        }
    } else {
        let mut st = conn.prepare_cached("SELECT leaf, record FROM coins WHERE coin_id = ?1")?;
        for c in keys.into_iter().filter(|c| after.is_none_or(|a| *c > a)) {
            if out.len() as i64 >= limit {
                break;
            }
            if let Some((leaf, rec)) = st
                .query_row(params![&c.0[..]], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .optional()?
            {
                out.push((leaf as u64, CoinRecord::decode(&rec)?));
            }
        }
    }
    Ok(out)
}

/// Remembered peer addresses, most recently seen first.
fn read_peers(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut st = conn.prepare_cached("SELECT addr FROM peers ORDER BY last_seen DESC")?;
    let v = st.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(v)
}

/// A read-only connection to the database at `path`, with a small page cache (its reads are
/// rare or small, a phone's memory budget is small, and the OS caches the file too).
/// Whether `path` names an in-memory database ([`Store::open_memory`]).
fn is_memory(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with("file:") && p.contains("mode=memory"))
}

fn read_only(path: &Path) -> Result<Connection, StoreError> {
    let uri = if is_memory(path) { OpenFlags::SQLITE_OPEN_URI } else { OpenFlags::empty() };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | uri,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "cache_size", -256)?;
    Ok(conn)
}

/// A staging generation as SQLite stores it (wraps past `i64::MAX`: only equality matters).
fn gen_key(gen: u64) -> i64 {
    gen as i64
}

fn encode_proofs(p: &[(u64, MmrProof)]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::codec::put_len(&mut out, p.len());
    for (c, pr) in p {
        c.encode_to(&mut out);
        pr.encode_to(&mut out);
    }
    out
}

fn decode_proofs(b: &[u8]) -> Result<Vec<(u64, MmrProof)>, CodecError> {
    let mut r = crate::codec::Reader::new(b);
    let v = r.vec(32, "proofs", |r| Ok((r.u64("created")?, MmrProof::decode_from(r)?)))?;
    r.finish()?;
    Ok(v)
}

/// Make `path` private to its owner (mode 0600): create it empty with that mode if `create`
/// and it does not exist, and narrow an existing file whose mode lets others in.
fn private_file(path: &Path, create: bool) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", path.display()));
    if create {
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
    }
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

impl Store {
    /// Open (creating if needed) the database in `dir` for network `network` with genesis
    /// `genesis`. Refuses a database of another network or a newer schema.
    ///
    /// The database file is created with mode 0600 before SQLite opens it (an existing one
    /// readable by others is narrowed to 0600), so its `-wal` and `-shm` files, which SQLite
    /// creates with the database's mode, are 0600 too; they are narrowed again once open.
    pub fn open(dir: &Path, network: &str, genesis: &Hash) -> Result<Store, StoreError> {
        let path = dir.join(DB_FILE);
        private_file(&path, true)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Give freed pages back to the file system (takes effect on a new database), so the
        // file tracks what is stored rather than its high-water mark.
        conn.pragma_update(None, "auto_vacuum", "FULL")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "wal_autocheckpoint", 256)?;
        conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
        // A 512 KiB page cache (SQLite's default is 2 MiB): a phone node's memory budget is
        // small, and the operating system caches the file too.
        conn.pragma_update(None, "cache_size", -512)?;
        for suffix in ["-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            private_file(Path::new(&p), false)?;
        }
        let mut s = Store { conn, path };
        s.migrate(network, genesis)?;
        Ok(s)
    }

    /// Open a new database held in memory under `name` (unique in the process: a simulated
    /// node's), with the same schema and checks as [`Store::open`]. Its readers
    /// ([`Store::cold_reader`], [`Store::serve_reader`]) share it through SQLite's shared
    /// cache, so one thread must use them in turn (a simulator does); it is gone when the
    /// store is dropped.
    pub fn open_memory(name: &str, network: &str, genesis: &Hash) -> Result<Store, StoreError> {
        let path = PathBuf::from(format!("file:{name}?mode=memory&cache=shared"));
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut s = Store { conn, path };
        s.migrate(network, genesis)?;
        Ok(s)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Limit the database to `pages` pages (tests simulate a full disk with it).
    pub fn set_max_pages(&self, pages: u64) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "max_page_count", pages as i64)?;
        Ok(())
    }

    fn migrate(&mut self, network: &str, genesis: &Hash) -> Result<(), StoreError> {
        self.conn
            .execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")?;
        let version: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
            .optional()?;
        match version {
            Some(v) if v > SCHEMA_VERSION => return Err(StoreError::NewerSchema(v)),
            Some(_) => {
                // Tables added within schema 1 (idempotent).
                self.conn.execute_batch(
                    "CREATE TABLE IF NOT EXISTS peers (addr TEXT PRIMARY KEY, last_seen INTEGER NOT NULL);
                     CREATE TABLE IF NOT EXISTS coins (coin_id BLOB PRIMARY KEY, address BLOB NOT NULL,
                        leaf INTEGER NOT NULL, record BLOB NOT NULL);
                     CREATE INDEX IF NOT EXISTS coins_address ON coins(address);
                     CREATE INDEX IF NOT EXISTS coins_address_id ON coins(address, coin_id);
                     CREATE INDEX IF NOT EXISTS coins_leaf ON coins(leaf);
                     CREATE TABLE IF NOT EXISTS wallet_keys (idx INTEGER PRIMARY KEY, pk BLOB NOT NULL,
                        address BLOB NOT NULL, used INTEGER NOT NULL);
                     CREATE TABLE IF NOT EXISTS wallet_coins (coin_id BLOB PRIMARY KEY, coin BLOB NOT NULL);
                     CREATE TABLE IF NOT EXISTS wallet_history (txid BLOB PRIMARY KEY, entry TEXT NOT NULL);",
                )?;
                let net: Option<String> = self
                    .conn
                    .query_row("SELECT value FROM meta WHERE key = 'network'", [], |r| r.get(0))
                    .optional()?;
                let gen: Option<Vec<u8>> = self
                    .conn
                    .query_row("SELECT value FROM meta WHERE key = 'genesis'", [], |r| r.get(0))
                    .optional()?;
                let found = format!(
                    "network {} genesis {}",
                    net.clone().unwrap_or_default(),
                    gen.as_deref().map(hex::encode).unwrap_or_default()
                );
                if net.as_deref() != Some(network) || gen.as_deref() != Some(&genesis.0[..]) {
                    return Err(StoreError::NotOurs {
                        expected: format!("network {network} genesis {}", genesis.to_hex()),
                        found,
                    });
                }
            }
            None => {
                let tx = self.conn.transaction()?;
                tx.execute_batch(
                    "CREATE TABLE blocks (id BLOB PRIMARY KEY, number INTEGER NOT NULL, txpow BLOB NOT NULL,
                        witness BLOB NOT NULL, root_peaks BLOB);
                     CREATE INDEX blocks_number ON blocks(number);
                     CREATE TABLE txpows (id BLOB PRIMARY KEY, number INTEGER NOT NULL, txpow BLOB NOT NULL);
                     CREATE INDEX txpows_number ON txpows(number);
                     CREATE TABLE mempool (id BLOB PRIMARY KEY, txpow BLOB NOT NULL, proofs BLOB NOT NULL);
                     CREATE TABLE peers (addr TEXT PRIMARY KEY, last_seen INTEGER NOT NULL);
                     CREATE TABLE mmr_nodes (height INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
                        sum INTEGER NOT NULL, PRIMARY KEY (height, idx)) WITHOUT ROWID;
                     CREATE TABLE coins (coin_id BLOB PRIMARY KEY, address BLOB NOT NULL,
                        leaf INTEGER NOT NULL, record BLOB NOT NULL);
                     CREATE INDEX coins_address ON coins(address);
                     CREATE INDEX coins_address_id ON coins(address, coin_id);
                     CREATE INDEX coins_leaf ON coins(leaf);
                     CREATE TABLE wallet_keys (idx INTEGER PRIMARY KEY, pk BLOB NOT NULL,
                        address BLOB NOT NULL, used INTEGER NOT NULL);
                     CREATE TABLE wallet_coins (coin_id BLOB PRIMARY KEY, coin BLOB NOT NULL);
                     CREATE TABLE wallet_history (txid BLOB PRIMARY KEY, entry TEXT NOT NULL);",
                )?;
                tx.execute("INSERT INTO meta VALUES ('schema_version', ?1)", params![SCHEMA_VERSION])?;
                tx.execute("INSERT INTO meta VALUES ('network', ?1)", params![network])?;
                tx.execute("INSERT INTO meta VALUES ('genesis', ?1)", params![&genesis.0[..]])?;
                tx.commit()?;
            }
        }
        // A sync candidate's staging tables (see [`Store::stage`]): what a sync left there
        // before a restart is not resumed.
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS sync_blocks (gen INTEGER NOT NULL, id BLOB NOT NULL,
                number INTEGER NOT NULL, txpow BLOB NOT NULL, witness BLOB NOT NULL, PRIMARY KEY (gen, id));
             CREATE TABLE IF NOT EXISTS sync_txpows (gen INTEGER NOT NULL, id BLOB NOT NULL,
                number INTEGER NOT NULL, txpow BLOB NOT NULL, PRIMARY KEY (gen, id));
             CREATE INDEX IF NOT EXISTS sync_txpows_number ON sync_txpows(gen, number);
             DELETE FROM sync_blocks; DELETE FROM sync_txpows;",
        )?;
        Ok(())
    }

    /// Read everything back.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut out = Loaded::default();
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'cascade'", [], |r| r.get(0))
            .optional()?;
        if let Some(blob) = blob {
            out.cascade = decode_cascade(&blob)?;
        }
        out.block_count = self.block_count()?;
        let root: Option<Option<Vec<u8>>> = self
            .conn
            .query_row("SELECT root_peaks FROM blocks ORDER BY number, id LIMIT 1", [], |r| r.get(0))
            .optional()?;
        if let Some(p) = root {
            let p = p.ok_or_else(|| StoreError::Corrupt("tree root without its MMR peaks".into()))?;
            out.root_peaks = Some(MmrPeaks::decode(&p)?);
        }
        let mut st = self.conn.prepare("SELECT txpow, proofs FROM mempool")?;
        for row in st.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)))? {
            let (t, p) = row?;
            out.mempool.push((TxPoW::decode(&t)?, decode_proofs(&p)?));
        }
        let tip: Option<Vec<u8>> =
            self.conn.query_row("SELECT value FROM meta WHERE key = 'tip'", [], |r| r.get(0)).optional()?;
        out.tip = tip.and_then(|t| t.try_into().ok()).map(Hash);
        let mut st = self.conn.prepare("SELECT height, idx, hash, sum FROM mmr_nodes")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, u8>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, i64>(3)?))
        })?;
        for row in rows {
            let (height, idx, hash, sum) = row?;
            let hash = Hash(hash.try_into().map_err(|_| StoreError::Corrupt("mmr hash".into()))?);
            out.mmr_nodes.push((NodeKey { height, index: idx as u64 }, MmrNode { hash, sum: sum as u64 }));
        }
        let lc: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'mmr_leaf_count'", [], |r| r.get(0))
            .optional()?;
        out.mmr_leaf_count = lc.unwrap_or(0) as u64;
        Ok(out)
    }

    /// Tree blocks (TxPoW, witness), lowest number first (the first is the root), one at a
    /// time: a start never holds every stored block in memory at once.
    pub fn for_each_block<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(TxPoW, BlockWitness) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut st = self
            .conn
            .prepare("SELECT txpow, witness FROM blocks ORDER BY number, id")
            .map_err(StoreError::from)?;
        let mut rows = st.query([]).map_err(StoreError::from)?;
        while let Some(r) = rows.next().map_err(StoreError::from)? {
            let t: Vec<u8> = r.get(0).map_err(StoreError::from)?;
            let w: Vec<u8> = r.get(1).map_err(StoreError::from)?;
            let t = TxPoW::decode(&t).map_err(StoreError::from)?;
            let w = BlockWitness::decode(&w).map_err(StoreError::from)?;
            f(t, w)?;
        }
        Ok(())
    }

    /// A stored TxPoW listed by a tree block.
    pub fn txpow(&self, id: &Hash) -> Result<Option<TxPoW>, StoreError> {
        read_txpow(&self.conn, id)
    }

    /// A reader of stored tree blocks for the chain (its own read-only connection).
    pub fn cold_reader(&self) -> Result<Arc<ColdReader>, StoreError> {
        Ok(Arc::new(ColdReader { conn: Mutex::new(read_only(&self.path)?), staging: None }))
    }

    /// A reader of the blocks staged under generation `gen` (a sync candidate's).
    pub fn staging_reader(&self, gen: u64) -> Result<Arc<ColdReader>, StoreError> {
        Ok(Arc::new(ColdReader { conn: Mutex::new(read_only(&self.path)?), staging: Some(gen_key(gen)) }))
    }

    /// Stage a sync candidate's tree blocks (with their witnesses) and the TxPoWs they list
    /// under generation `gen`, in one transaction (not waited on to reach the disk: staging is
    /// dropped at the next open anyway), so a sync never holds a whole tree's
    /// witnesses and transactions in memory. `removed`: blocks of that generation that left
    /// the candidate's tree (pruned into its cascade, or dropped with a side branch); when
    /// any did, listed TxPoWs below its lowest remaining block go too.
    pub fn stage(
        &mut self,
        gen: u64,
        blocks: &[(&TreeBlock, &BlockWitness)],
        listed: &[(&TxPoW, u64)],
        removed: &[Hash],
    ) -> Result<(), StoreError> {
        // Staged blocks are not kept across a restart: their commits need not wait for the
        // disk (a crash loses at most the newest, never the database's consistency).
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let r = self.stage_in_one(gen, blocks, listed, removed);
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        r
    }

    fn stage_in_one(
        &mut self,
        gen: u64,
        blocks: &[(&TreeBlock, &BlockWitness)],
        listed: &[(&TxPoW, u64)],
        removed: &[Hash],
    ) -> Result<(), StoreError> {
        let g = gen_key(gen);
        let tx = self.conn.transaction().map_err(map_full)?;
        for (b, w) in blocks {
            tx.execute(
                "INSERT OR REPLACE INTO sync_blocks VALUES (?1, ?2, ?3, ?4, ?5)",
                params![g, &b.id.0[..], b.number() as i64, b.txpow.encode(), w.encode()],
            )
            .map_err(map_full)?;
        }
        for (t, number) in listed {
            tx.execute(
                "INSERT INTO sync_txpows VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(gen, id) DO UPDATE SET number = MAX(number, excluded.number)",
                params![g, &t.id().0[..], *number as i64, t.encode()],
            )
            .map_err(map_full)?;
        }
        for id in removed {
            tx.execute("DELETE FROM sync_blocks WHERE gen = ?1 AND id = ?2", params![g, &id.0[..]])
                .map_err(map_full)?;
        }
        if !removed.is_empty() {
            tx.execute(
                "DELETE FROM sync_txpows WHERE gen = ?1
                 AND number < (SELECT IFNULL(MIN(number), 0) FROM sync_blocks WHERE gen = ?1)",
                params![g],
            )
            .map_err(map_full)?;
        }
        tx.commit().map_err(map_full)?;
        Ok(())
    }

    /// Forget every staged generation but `keep`.
    pub fn stage_drop(&mut self, keep: Option<u64>) -> Result<(), StoreError> {
        let k = keep.map(gen_key).unwrap_or(-1);
        let tx = self.conn.transaction().map_err(map_full)?;
        tx.execute("DELETE FROM sync_blocks WHERE gen != ?1", params![k]).map_err(map_full)?;
        tx.execute("DELETE FROM sync_txpows WHERE gen != ?1", params![k]).map_err(map_full)?;
        tx.commit().map_err(map_full)?;
        Ok(())
    }

    /// Replace the stored chain by the candidate staged under `gen` (restarted from
    /// `cascade`, tree root `root` with MMR peaks `root_peaks`, best tip `tip`), in one
    /// transaction, so a crash leaves either the old chain or the new one; every staged
    /// generation is then gone. The peer table, the node key, the wallet and anything else
    /// that is not chain state are kept.
    pub fn adopt_staged(
        &mut self,
        gen: u64,
        cascade: &Cascade,
        root: &Hash,
        root_peaks: &MmrPeaks,
        tip: &Hash,
    ) -> Result<(), StoreError> {
        let g = gen_key(gen);
        let tx = self.conn.transaction().map_err(map_full)?;
        tx.execute_batch(
            "DELETE FROM blocks; DELETE FROM txpows; DELETE FROM mempool; DELETE FROM mmr_nodes; DELETE FROM coins;",
        )
        .map_err(map_full)?;
        tx.execute(
            "INSERT INTO blocks SELECT id, number, txpow, witness, NULL FROM sync_blocks WHERE gen = ?1",
            params![g],
        )
        .map_err(map_full)?;
        let set = tx
            .execute(
                "UPDATE blocks SET root_peaks = ?1 WHERE id = ?2",
                params![root_peaks.encode(), &root.0[..]],
            )
            .map_err(map_full)?;
        let has_tip: bool = tx
            .query_row("SELECT EXISTS(SELECT 1 FROM blocks WHERE id = ?1)", params![&tip.0[..]], |r| r.get(0))
            .map_err(map_full)?;
        if set != 1 || !has_tip {
            // Rolled back on drop: the old chain stays.
            return Err(StoreError::Corrupt("the staged chain lacks its root or its tip".into()));
        }
        tx.execute("INSERT INTO txpows SELECT id, number, txpow FROM sync_txpows WHERE gen = ?1", params![g])
            .map_err(map_full)?;
        tx.execute("INSERT OR REPLACE INTO meta VALUES ('cascade', ?1)", params![encode_cascade(cascade)])
            .map_err(map_full)?;
        tx.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?1)", params![&tip.0[..]])
            .map_err(map_full)?;
        tx.execute_batch("DELETE FROM sync_blocks; DELETE FROM sync_txpows;").map_err(map_full)?;
        tx.commit().map_err(map_full)?;
        Ok(())
    }

    /// Blocks staged under `gen` (tests and diagnostics).
    pub fn staged_count(&self, gen: u64) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM sync_blocks WHERE gen = ?1",
            params![gen_key(gen)],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Write one accepted block (and what it changed) in one SQL transaction.
    pub fn commit(&mut self, c: &BlockCommit<'_>) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(map_full)?;
        if let Some(b) = c.block {
            let extra = b
                .hot_extra()
                .ok_or_else(|| StoreError::Corrupt("a new block without its witness in memory".into()))?;
            // Peaks are kept for the genesis root; later roots get theirs when they become root.
            let peaks = (b.number() == 0).then(|| b.peaks.encode());
            tx.execute(
                "INSERT OR REPLACE INTO blocks VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&b.id.0[..], b.number() as i64, b.txpow.encode(), extra.witness.encode(), peaks],
            )
            .map_err(map_full)?;
            for t in &c.listed {
                put_txpow(&tx, t, b.number())?;
            }
        }
        for id in &c.removed {
            tx.execute("DELETE FROM blocks WHERE id = ?1", params![&id.0[..]]).map_err(map_full)?;
        }
        if let Some((cas, root)) = c.cascade {
            tx.execute("INSERT OR REPLACE INTO meta VALUES ('cascade', ?1)", params![encode_cascade(cas)])
                .map_err(map_full)?;
            tx.execute(
                "UPDATE blocks SET root_peaks = ?1 WHERE id = ?2",
                params![root.peaks.encode(), &root.id.0[..]],
            )
            .map_err(map_full)?;
            // Listed TxPoWs of blocks that left the tree are no longer needed.
            tx.execute("DELETE FROM txpows WHERE number < (SELECT IFNULL(MIN(number), 0) FROM blocks)", [])
                .map_err(map_full)?;
        }
        for id in &c.mempool_removed {
            tx.execute("DELETE FROM mempool WHERE id = ?1", params![&id.0[..]]).map_err(map_full)?;
        }
        for (t, p) in &c.mempool_added {
            tx.execute(
                "INSERT OR REPLACE INTO mempool VALUES (?1, ?2, ?3)",
                params![&t.id().0[..], t.encode(), encode_proofs(p)],
            )
            .map_err(map_full)?;
        }
        for (id, p) in &c.mempool_proofs {
            tx.execute("UPDATE mempool SET proofs = ?1 WHERE id = ?2", params![encode_proofs(p), &id.0[..]])
                .map_err(map_full)?;
        }
        for (k, v) in &c.mmr_changes {
            match v {
                Some(n) => tx.execute(
                    "INSERT OR REPLACE INTO mmr_nodes VALUES (?1, ?2, ?3, ?4)",
                    params![k.height, k.index as i64, &n.hash.0[..], n.sum as i64],
                ),
                None => tx.execute(
                    "DELETE FROM mmr_nodes WHERE height = ?1 AND idx = ?2",
                    params![k.height, k.index as i64],
                ),
            }
            .map_err(map_full)?;
        }
        if let Some(from) = c.coins_from {
            tx.execute("DELETE FROM coins WHERE leaf >= ?1", params![from as i64]).map_err(map_full)?;
        }
        for (leaf, rec) in &c.coins_added {
            tx.execute(
                "INSERT OR REPLACE INTO coins VALUES (?1, ?2, ?3, ?4)",
                params![&rec.coin.coin_id.0[..], &rec.coin.address.0[..], *leaf as i64, rec.encode()],
            )
            .map_err(map_full)?;
        }
        if let Some(lc) = c.mmr_leaf_count {
            tx.execute("INSERT OR REPLACE INTO meta VALUES ('mmr_leaf_count', ?1)", params![lc as i64])
                .map_err(map_full)?;
        }
        if let Some(w) = c.wallet {
            write_wallet(&tx, w)?;
        }
        tx.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?1)", params![&c.tip.0[..]])
            .map_err(map_full)?;
        tx.commit().map_err(map_full)?;
        Ok(())
    }

    /// Read the stored wallet.
    pub fn wallet(&self) -> Result<StoredWallet, StoreError> {
        let fp: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'wallet_fingerprint'", [], |r| r.get(0))
            .optional()?;
        let fingerprint = match fp {
            Some(b) => {
                Some(Hash(b.try_into().map_err(|_| StoreError::Corrupt("wallet fingerprint".into()))?))
            }
            None => None,
        };
        let mut w = StoredWallet { fingerprint, ..Default::default() };
        let mut st = self.conn.prepare("SELECT idx, pk, address, used FROM wallet_keys ORDER BY idx")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, i64>(3)?))
        })?;
        for row in rows {
            let (i, pk, addr, used) = row?;
            let bad = || StoreError::Corrupt("wallet key".into());
            w.keys.push(crate::wallet::WalletKey {
                index: u32::try_from(i).map_err(|_| bad())?,
                public: crate::crypto::PublicKey(pk.try_into().map_err(|_| bad())?),
                address: Hash(addr.try_into().map_err(|_| bad())?),
                used: used != 0,
            });
        }
        let mut st = self.conn.prepare("SELECT coin FROM wallet_coins")?;
        for row in st.query_map([], |r| r.get::<_, Vec<u8>>(0))? {
            w.coins.push(crate::wallet::OwnCoin::decode(&row?)?);
        }
        let mut st = self.conn.prepare("SELECT entry FROM wallet_history")?;
        for row in st.query_map([], |r| r.get::<_, String>(0))? {
            w.history.push(serde_json::from_str(&row?).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(w)
    }

    /// Start a wallet for a seed fingerprint (refused by the caller if another is stored).
    pub fn set_wallet_fingerprint(&mut self, fp: &Hash) -> Result<(), StoreError> {
        self.conn
            .execute("INSERT OR REPLACE INTO meta VALUES ('wallet_fingerprint', ?1)", params![&fp.0[..]])
            .map_err(map_full)?;
        Ok(())
    }

    /// Store derived keys (public parts only).
    pub fn add_wallet_keys(&mut self, keys: &[crate::wallet::WalletKey]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(map_full)?;
        for k in keys {
            tx.execute(
                "INSERT OR IGNORE INTO wallet_keys VALUES (?1, ?2, ?3, ?4)",
                params![k.index as i64, &k.public.0[..], &k.address.0[..], k.used as i64],
            )
            .map_err(map_full)?;
        }
        tx.commit().map_err(map_full)?;
        Ok(())
    }

    /// Write wallet changes outside a block commit (a pending payment, an import).
    pub fn write_wallet(&mut self, w: &crate::wallet::WalletChanges) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(map_full)?;
        write_wallet(&tx, w)?;
        tx.commit().map_err(map_full)?;
        Ok(())
    }

    /// Remember an address we connected to (the peer table).
    pub fn add_peer(&mut self, addr: &str, now_ms: u64) -> Result<(), StoreError> {
        self.conn
            .execute("INSERT OR REPLACE INTO peers VALUES (?1, ?2)", params![addr, now_ms as i64])
            .map_err(map_full)?;
        // Keep the table bounded: the 256 most recently seen.
        self.conn
            .execute(
                "DELETE FROM peers WHERE addr NOT IN (SELECT addr FROM peers ORDER BY last_seen DESC LIMIT 256)",
                [],
            )
            .map_err(map_full)?;
        Ok(())
    }

    /// Remembered peer addresses, most recently seen first.
    pub fn peers(&self) -> Result<Vec<String>, StoreError> {
        read_peers(&self.conn)
    }

    /// Replace the anchors: outbound peers to dial first after a restart.
    pub fn set_anchors(&mut self, addrs: &[String]) -> Result<(), StoreError> {
        self.conn
            .execute("INSERT OR REPLACE INTO meta VALUES ('anchors', ?1)", params![addrs.join(" ")])
            .map_err(map_full)?;
        Ok(())
    }

    /// The anchors last persisted (none yet: empty).
    pub fn anchors(&self) -> Result<Vec<String>, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'anchors'", [], |r| r.get(0))
            .optional()?;
        Ok(v.map(|v| v.split_whitespace().map(str::to_string).collect()).unwrap_or_default())
    }

    /// `PRAGMA integrity_check`.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let r: String = self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if r == "ok" {
            Ok(())
        } else {
            Err(StoreError::Integrity(r))
        }
    }

    /// Move the WAL into the main file and truncate it (on stop and suspend).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Number of tree blocks stored.
    pub fn block_count(&self) -> Result<u64, StoreError> {
        Ok(self.conn.query_row("SELECT COUNT(*) FROM blocks", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Number of cascade headers stored.
    pub fn cascade_count(&self) -> Result<u64, StoreError> {
        Ok(self.load_cascade()?.len() as u64)
    }

    fn load_cascade(&self) -> Result<Vec<CascadeEntry>, StoreError> {
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'cascade'", [], |r| r.get(0))
            .optional()?;
        match blob {
            Some(b) => decode_cascade(&b),
            None => Ok(vec![]),
        }
    }

    /// Payload bytes per table: (blocks, txpows, cascade, mempool, mmr_nodes).
    pub fn payload_bytes(&self) -> Result<[u64; 5], StoreError> {
        let q = |sql: &str| -> Result<u64, StoreError> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))?.unwrap_or(0) as u64)
        };
        Ok([
            q("SELECT SUM(LENGTH(txpow) + LENGTH(witness) + IFNULL(LENGTH(root_peaks), 0)) FROM blocks")?,
            q("SELECT SUM(LENGTH(txpow)) FROM txpows")?,
            q("SELECT LENGTH(value) FROM meta WHERE key = 'cascade'")?,
            q("SELECT SUM(LENGTH(txpow) + LENGTH(proofs)) FROM mempool")?,
            q("SELECT COUNT(*) * 56 FROM mmr_nodes")?,
        ])
    }

    /// Bytes of the database and its WAL.
    pub fn size_bytes(&self) -> u64 {
        if is_memory(&self.path) {
            let q = |p: &str| self.conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0));
            return match (q("page_count"), q("page_size")) {
                (Ok(n), Ok(size)) => (n.max(0) as u64).saturating_mul(size.max(0) as u64),
                _ => 0,
            };
        }
        dir_bytes(self.path.parent().unwrap_or(Path::new(".")))
    }
}

/// Largest inflated cascade accepted from disk (32 levels × 256 headers × 2 KiB).
const MAX_CASCADE_BYTES: usize = 32 * 256 * 2048;

fn encode_cascade(c: &Cascade) -> Vec<u8> {
    let mut raw = Vec::new();
    crate::codec::put_len(&mut raw, c.len());
    for e in c.entries() {
        raw.push(e.level as u8);
        e.header.encode_to(&mut raw);
    }
    miniz_oxide::deflate::compress_to_vec(&raw, 6)
}

fn decode_cascade(blob: &[u8]) -> Result<Vec<CascadeEntry>, StoreError> {
    let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(blob, MAX_CASCADE_BYTES)
        .map_err(|e| StoreError::Corrupt(format!("cascade blob: {e:?}")))?;
    let mut r = crate::codec::Reader::new(&raw);
    let v = r.vec(crate::chain::cascade::MAX_CASCADE_HEADERS, "cascade", |r| {
        let level = r.u8("cascade.level")? as u32;
        let header = TxHeader::decode_from(r)?;
        let id = header.id();
        Ok(CascadeEntry { header, id, level })
    })?;
    r.finish()?;
    Ok(v)
}

/// Total bytes of the files directly in `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(all(test, feature = "fixture"))]
mod tests {
    use super::*;
    use crate::fixture::ChainBuilder;
    use crate::params::Params;

    /// A tree's blocks with their witnesses, and the TxPoWs they list with their numbers.
    type Tree<'a> = (Vec<(&'a TreeBlock, BlockWitness)>, Vec<(&'a TxPoW, u64)>);

    /// Tree blocks of a fixture chain, the root first, with their witnesses and listed TxPoWs.
    fn tree_of(fx: &ChainBuilder) -> Tree<'_> {
        let c = &fx.chain;
        let mut blocks: Vec<&TreeBlock> = c.tree_blocks().collect();
        blocks.sort_by_key(|b| (b.id != c.root().id, b.number()));
        let mut listed = vec![];
        for b in &blocks {
            for l in &b.txpow.body.txpow_ids {
                listed.push((&fx.txpows()[l], b.number()));
            }
        }
        let w = blocks.into_iter().map(|b| (b, c.extra(&b.id).unwrap().witness.clone())).collect();
        (w, listed)
    }

    /// A sync candidate staged under its generation is read back from there (and only from
    /// there), its pruned blocks leave, other generations are dropped on request and on open,
    /// and adopting it replaces the chain tables in one transaction — or, lacking its root,
    /// changes nothing.
    #[test]
    fn a_staged_candidate_is_read_back_pruned_dropped_and_adopted_whole() {
        let mut fx = ChainBuilder::new(Params::devnet(), 1_800_000_000_000, 40);
        fx.mine(2);
        for _ in 0..6 {
            let listed = fx.make_tx().into_iter().collect();
            fx.mine_block(true, listed);
        }
        let genesis = fx.chain.genesis_id();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), "devnet", &genesis).unwrap();
        let (blocks, listed) = tree_of(&fx);
        assert!(!listed.is_empty(), "the fixture's blocks list transactions");
        let bw: Vec<(&TreeBlock, &BlockWitness)> = blocks.iter().map(|(b, w)| (*b, w)).collect();
        store.stage(7, &bw, &listed, &[]).unwrap();
        store.stage(8, &bw[..1], &[], &[]).unwrap();
        assert_eq!(store.staged_count(7).unwrap(), blocks.len() as u64);
        let r7 = store.staging_reader(7).unwrap();
        let r8 = store.staging_reader(8).unwrap();
        let (b, w) = &blocks[2];
        assert_eq!(r7.witness(&b.id).as_ref(), Some(w));
        assert_eq!(r8.witness(&b.id), None, "another generation's blocks are not read");
        assert_eq!(store.cold_reader().unwrap().witness(&b.id), None, "staged is not stored");
        let (t, _) = listed[0];
        assert_eq!(r7.txpow(&t.id()).as_ref(), Some(t));
        // The four lowest blocks leave (pruned): they and listings below what is left go.
        let gone: Vec<Hash> = blocks[..4].iter().map(|(b, _)| b.id).collect();
        store.stage(7, &[], &[], &gone).unwrap();
        assert_eq!(r7.witness(&gone[3]), None);
        assert_eq!(store.staged_count(7).unwrap(), blocks.len() as u64 - 4);
        let low = listed.iter().filter(|(_, n)| *n < blocks[4].0.number()).count();
        let left = listed.len() - low;
        assert!(low > 0);
        let n: i64 =
            store.conn.query_row("SELECT COUNT(*) FROM sync_txpows WHERE gen = 7", [], |r| r.get(0)).unwrap();
        assert_eq!(n as usize, left);
        store.stage(7, &bw[..4], &listed, &[]).unwrap();
        // Generation 8 goes, 7 stays.
        store.stage_drop(Some(7)).unwrap();
        assert_eq!(store.staged_count(8).unwrap(), 0);
        assert_eq!(store.staged_count(7).unwrap(), blocks.len() as u64);
        // A candidate lacking its root is not adopted: the old chain (none here) stays.
        let root = fx.chain.root();
        let err = store.adopt_staged(7, fx.chain.cascade(), &Hash([9; 32]), &root.peaks, &fx.chain.tip_id());
        assert!(matches!(err, Err(StoreError::Corrupt(_))), "{err:?}");
        assert_eq!(store.block_count().unwrap(), 0);
        assert_eq!(store.staged_count(7).unwrap(), blocks.len() as u64, "staging is kept");
        // Adopted whole: blocks, root peaks, listed TxPoWs, cascade and tip; staging empty.
        store.adopt_staged(7, fx.chain.cascade(), &root.id, &root.peaks, &fx.chain.tip_id()).unwrap();
        assert_eq!(store.staged_count(7).unwrap(), 0);
        assert_eq!(store.block_count().unwrap(), blocks.len() as u64);
        let loaded = store.load().unwrap();
        assert_eq!(loaded.tip, Some(fx.chain.tip_id()));
        assert_eq!(loaded.root_peaks.as_ref(), Some(&root.peaks));
        let cold = store.cold_reader().unwrap();
        assert_eq!(cold.witness(&b.id).as_ref(), Some(w));
        assert_eq!(cold.txpow(&t.id()).as_ref(), Some(t));
        // What a sync left staged before a restart is gone after it.
        store.stage(9, &bw, &listed, &[]).unwrap();
        drop((cold, r7, r8));
        drop(store);
        let store = Store::open(dir.path(), "devnet", &genesis).unwrap();
        assert_eq!(store.staged_count(9).unwrap(), 0);
        assert_eq!(store.block_count().unwrap(), blocks.len() as u64);
    }
}
