//! Protocol objects: coins, transactions, witnesses, TxPoW headers and bodies (SPEC §2–§4).
//!
//! Decoding enforces structure and canonical form (sorted, unique, bounded); the *meaning* of the
//! values (amounts, versions, targets, scripts) is judged by [`crate::chain`], so each broken rule
//! gets its own validation error.

use crate::codec::{put_len, put_var_bytes, put_vec, CodecError, Decode, Encode, Reader};
use crate::crypto::{sha3, Hash, PublicKey, Signature, TaggedHasher};
use crate::U256;

/// Hard decoding limits: the most any v1 object may hold. Params limits are checked on top.
pub mod limits {
    /// Inputs of a transaction.
    pub const MAX_INPUTS: usize = 32;
    /// Outputs of a transaction.
    pub const MAX_OUTPUTS: usize = 32;
    /// State entries of a coin or a transaction.
    pub const MAX_STATE_ENTRIES: usize = 16;
    /// Bytes of one coin state value.
    pub const MAX_COIN_STATE_BYTES: usize = 256;
    /// Bytes of one transaction state value.
    pub const MAX_TX_STATE_BYTES: usize = 8 * 1024;
    /// Signatures of a witness.
    pub const MAX_SIGNATURES: usize = 16;
    /// Scripts of a witness (one per distinct input address).
    pub const MAX_SCRIPTS: usize = 32;
    /// Bytes of one script.
    pub const MAX_SCRIPT_BYTES: usize = 8 * 1024;
    /// TxPoW ids a body may list.
    pub const MAX_TXPOW_IDS: usize = 256;
    /// Slots of the parents array.
    pub const PARENTS: usize = 32;
}

/// One state variable: a port number and its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateVar {
    /// Port, unique within its list; lists are sorted by port.
    pub port: u8,
    /// Value bytes.
    pub data: Vec<u8>,
}

fn put_state(out: &mut Vec<u8>, s: &[StateVar]) {
    put_len(out, s.len());
    for v in s {
        out.push(v.port);
        put_var_bytes(out, &v.data);
    }
}

fn read_state(
    r: &mut Reader<'_>,
    max_bytes: usize,
    field: &'static str,
) -> Result<Vec<StateVar>, CodecError> {
    let v = r.vec(limits::MAX_STATE_ENTRIES, field, |r| {
        Ok(StateVar { port: r.u8(field)?, data: r.var_bytes(max_bytes, field)? })
    })?;
    if v.windows(2).any(|w| w[0].port >= w[1].port) {
        return Err(CodecError::NonCanonical { field, reason: "ports not sorted and unique" });
    }
    Ok(v)
}

/// A coin as a transaction input names it: everything but `created`, which comes from its MMR
/// leaf so that a reorg moving the creating transaction does not void signatures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Coin {
    /// `H("minima/coin/v1", first input's coin_id, u32 output index)`, or the genesis id.
    pub coin_id: Hash,
    /// Hash of the script that guards it.
    pub address: Hash,
    /// Base units (1 coin = 10^9).
    pub amount: u64,
    /// All zero for the native coin (the only token of v1).
    pub token_id: Hash,
    /// State carried by the coin.
    pub state: Vec<StateVar>,
}

impl Encode for Coin {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.coin_id.encode_to(out);
        self.address.encode_to(out);
        self.amount.encode_to(out);
        self.token_id.encode_to(out);
        put_state(out, &self.state);
    }
}

impl Decode for Coin {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Coin {
            coin_id: Hash::decode_from(r)?,
            address: Hash::decode_from(r)?,
            amount: r.u64("coin.amount")?,
            token_id: Hash::decode_from(r)?,
            state: read_state(r, limits::MAX_COIN_STATE_BYTES, "coin.state")?,
        })
    }
}

/// A coin as the MMR holds it: the coin and the number of the block that created it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CoinRecord {
    /// The coin.
    pub coin: Coin,
    /// Block number that created it.
    pub created: u64,
}

impl Encode for CoinRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.coin.encode_to(out);
        self.created.encode_to(out);
    }
}

impl Decode for CoinRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CoinRecord { coin: Coin::decode_from(r)?, created: r.u64("coin.created")? })
    }
}

/// A transaction output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Output {
    /// Script hash of the new coin.
    pub address: Hash,
    /// Base units, ≥ 1.
    pub amount: u64,
    /// All zero in v1.
    pub token_id: Hash,
    /// State of the new coin.
    pub state: Vec<StateVar>,
}

impl Encode for Output {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.address.encode_to(out);
        self.amount.encode_to(out);
        self.token_id.encode_to(out);
        put_state(out, &self.state);
    }
}

impl Decode for Output {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Output {
            address: Hash::decode_from(r)?,
            amount: r.u64("output.amount")?,
            token_id: Hash::decode_from(r)?,
            state: read_state(r, limits::MAX_COIN_STATE_BYTES, "output.state")?,
        })
    }
}

/// A transaction: coins in, coins out, and transaction state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transaction {
    /// 1 in v1.
    pub version: u8,
    /// Spent coins (1..=32; none only in the empty transaction of a pulse).
    pub inputs: Vec<Coin>,
    /// New coins (0..=32).
    pub outputs: Vec<Output>,
    /// Transaction state, sorted by port.
    pub state: Vec<StateVar>,
}

impl Default for Transaction {
    fn default() -> Self {
        Transaction::empty()
    }
}

impl Transaction {
    /// The empty transaction of a pulse: moves nothing.
    pub fn empty() -> Transaction {
        Transaction { version: 1, inputs: vec![], outputs: vec![], state: vec![] }
    }
    /// True for the pulse's "no transaction".
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.outputs.is_empty()
    }
    /// txid = SHA3(encoded transaction).
    pub fn txid(&self) -> Hash {
        sha3(&self.encode())
    }
    /// Coin id of output `i`: `H("minima/coin/v1", first input's coin_id, u32 i)`.
    pub fn output_coin_id(&self, i: u32) -> Option<Hash> {
        let first = self.inputs.first()?;
        Some(output_coin_id(&first.coin_id, i))
    }
    /// Transaction state value at `port`.
    pub fn state_at(&self, port: u8) -> Option<&[u8]> {
        self.state.iter().find(|s| s.port == port).map(|s| s.data.as_slice())
    }
}

/// `H("minima/coin/v1", first_input, u32 i)`.
pub fn output_coin_id(first_input: &Hash, i: u32) -> Hash {
    TaggedHasher::new("minima/coin/v1").bytes(&first_input.0).bytes(&i.to_be_bytes()).finish()
}

impl Encode for Transaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        put_vec(out, &self.inputs);
        put_vec(out, &self.outputs);
        put_state(out, &self.state);
    }
}

impl Decode for Transaction {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Transaction {
            version: r.u8("tx.version")?,
            inputs: r.vec(limits::MAX_INPUTS, "tx.inputs", Coin::decode_from)?,
            outputs: r.vec(limits::MAX_OUTPUTS, "tx.outputs", Output::decode_from)?,
            state: read_state(r, limits::MAX_TX_STATE_BYTES, "tx.state")?,
        })
    }
}

/// Signatures and scripts that authorise a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Witness {
    /// (public key, signature over `H("minima/tx/v1", chain_id, txid)`), sorted by key, unique.
    pub signatures: Vec<(PublicKey, Signature)>,
    /// One script per distinct input address, sorted by address (= SHA3 of the script).
    pub scripts: Vec<String>,
}

impl Witness {
    /// Build a witness, sorting its parts into canonical order and dropping duplicates.
    pub fn new(mut signatures: Vec<(PublicKey, Signature)>, scripts: Vec<String>) -> Witness {
        signatures.sort_by_key(|a| a.0);
        signatures.dedup_by(|a, b| a.0 == b.0);
        let mut s: Vec<(Hash, String)> = scripts.into_iter().map(|s| (sha3(s.as_bytes()), s)).collect();
        s.sort_by_key(|a| a.0);
        s.dedup_by(|a, b| a.0 == b.0);
        Witness { signatures, scripts: s.into_iter().map(|x| x.1).collect() }
    }
}

impl Encode for Witness {
    fn encode_to(&self, out: &mut Vec<u8>) {
        put_len(out, self.signatures.len());
        for (pk, sig) in &self.signatures {
            pk.encode_to(out);
            sig.encode_to(out);
        }
        put_len(out, self.scripts.len());
        for s in &self.scripts {
            put_var_bytes(out, s.as_bytes());
        }
    }
}

impl Decode for Witness {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let signatures = r.vec(limits::MAX_SIGNATURES, "witness.signatures", |r| {
            Ok((PublicKey::decode_from(r)?, Signature::decode_from(r)?))
        })?;
        if signatures.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(CodecError::NonCanonical {
                field: "witness.signatures",
                reason: "keys not sorted and unique",
            });
        }
        let scripts = r.vec(limits::MAX_SCRIPTS, "witness.scripts", |r| {
            let b = r.var_bytes(limits::MAX_SCRIPT_BYTES, "witness.script")?;
            if !b.iter().all(|c| c.is_ascii() && (*c >= 0x20 || *c == b'\n' || *c == b'\t')) {
                return Err(CodecError::InvalidValue {
                    field: "witness.script",
                    reason: "not printable ASCII",
                });
            }
            String::from_utf8(b)
                .map_err(|_| CodecError::InvalidValue { field: "witness.script", reason: "not ASCII" })
        })?;
        let addrs: Vec<Hash> = scripts.iter().map(|s| sha3(s.as_bytes())).collect();
        if addrs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(CodecError::NonCanonical {
                field: "witness.scripts",
                reason: "scripts not sorted by address and unique",
            });
        }
        Ok(Witness { signatures, scripts })
    }
}

/// The block limits every TxPoW carries; in v1 they must equal the Params values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Magic {
    /// Largest encoded TxPoW.
    pub max_txpow_bytes: u32,
    /// Most TxPoW ids a block may list.
    pub max_txns: u32,
    /// Largest block: its TxPoW plus every listed one.
    pub max_block_bytes: u32,
    /// Most inputs spent by one block.
    pub max_block_inputs: u32,
    /// Most signature operations in one TxPoW.
    pub max_sigops_txpow: u32,
    /// Most signature operations in one block.
    pub max_sigops_block: u32,
    /// Most script instructions of one script run.
    pub max_script_ops: u32,
    /// Minimum work of any TxPoW, in hashes.
    pub min_work: u64,
}

impl Magic {
    /// The v1 values of SPEC §4.
    pub const V1: Magic = Magic {
        max_txpow_bytes: 64 * 1024,
        max_txns: 256,
        max_block_bytes: 1024 * 1024,
        max_block_inputs: 512,
        max_sigops_txpow: 16,
        max_sigops_block: 512,
        max_script_ops: 1024,
        min_work: 10_000,
    };

    /// The easiest target allowed: `floor((2^256 − 1) / min_work)`.
    pub fn min_target(&self) -> U256 {
        crate::chain::pow::target_for_work(self.min_work.max(1) as u128)
    }
}

impl Encode for Magic {
    fn encode_to(&self, out: &mut Vec<u8>) {
        for v in [
            self.max_txpow_bytes,
            self.max_txns,
            self.max_block_bytes,
            self.max_block_inputs,
            self.max_sigops_txpow,
            self.max_sigops_block,
            self.max_script_ops,
        ] {
            v.encode_to(out);
        }
        self.min_work.encode_to(out);
    }
}

impl Decode for Magic {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Magic {
            max_txpow_bytes: r.u32("magic")?,
            max_txns: r.u32("magic")?,
            max_block_bytes: r.u32("magic")?,
            max_block_inputs: r.u32("magic")?,
            max_sigops_txpow: r.u32("magic")?,
            max_sigops_block: r.u32("magic")?,
            max_script_ops: r.u32("magic")?,
            min_work: r.u64("magic")?,
        })
    }
}

/// The 32 parent slots: `parents[i]` is the nearest ancestor of super level ≥ i.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Parents(pub [Hash; limits::PARENTS]);

impl Default for Parents {
    fn default() -> Self {
        Parents([Hash::ZERO; limits::PARENTS])
    }
}

impl Encode for Parents {
    /// Maximal runs of equal hashes: (count u8, hash), counts ≥ 1 summing to 32.
    fn encode_to(&self, out: &mut Vec<u8>) {
        let p = &self.0;
        let runs = {
            let mut n = 1;
            for i in 1..p.len() {
                if p[i] != p[i - 1] {
                    n += 1;
                }
            }
            n
        };
        out.push(runs as u8);
        let mut i = 0;
        while i < p.len() {
            let mut j = i + 1;
            while j < p.len() && p[j] == p[i] {
                j += 1;
            }
            out.push((j - i) as u8);
            p[i].encode_to(out);
            i = j;
        }
    }
}

impl Decode for Parents {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let field = "header.parents";
        let runs = r.u8(field)? as usize;
        if runs == 0 || runs > limits::PARENTS {
            return Err(CodecError::InvalidValue { field, reason: "run count outside 1..=32" });
        }
        let mut p = [Hash::ZERO; limits::PARENTS];
        let mut filled = 0usize;
        let mut prev: Option<Hash> = None;
        for _ in 0..runs {
            let count = r.u8(field)? as usize;
            let h = Hash::decode_from(r)?;
            if count == 0 {
                return Err(CodecError::NonCanonical { field, reason: "empty run" });
            }
            if prev == Some(h) {
                return Err(CodecError::NonCanonical { field, reason: "runs not maximal" });
            }
            if filled + count > limits::PARENTS {
                return Err(CodecError::InvalidValue { field, reason: "runs exceed 32 slots" });
            }
            p[filled..filled + count].fill(h);
            filled += count;
            prev = Some(h);
        }
        if filled != limits::PARENTS {
            return Err(CodecError::InvalidValue { field, reason: "runs do not fill 32 slots" });
        }
        Ok(Parents(p))
    }
}

/// TxPoW header, in encoding order; the nonce is last so a miner hashes the rest once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxHeader {
    /// main 0, test 1, devnet 2.
    pub chain_id: u8,
    /// 1 in v1.
    pub version: u8,
    /// Height this TxPoW would have as a block.
    pub block_number: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Block difficulty target.
    pub block_target: U256,
    /// Super-parent slots.
    pub parents: Parents,
    /// MMR root after this block.
    pub mmr_root: Hash,
    /// Unspent supply after this block.
    pub mmr_total: u64,
    /// Block limits.
    pub magic: Magic,
    /// SHA3 of the encoded body.
    pub body_hash: Hash,
    /// Mined value.
    pub nonce: [u8; 32],
}

impl TxHeader {
    /// Encoding of every field but the nonce.
    pub fn encode_prefix(&self, out: &mut Vec<u8>) {
        out.push(self.chain_id);
        out.push(self.version);
        self.block_number.encode_to(out);
        self.time_ms.encode_to(out);
        self.block_target.encode_to(out);
        self.parents.encode_to(out);
        self.mmr_root.encode_to(out);
        self.mmr_total.encode_to(out);
        self.magic.encode_to(out);
        self.body_hash.encode_to(out);
    }

    /// SHA3 of the header without its nonce: what a miner absorbs once per template.
    pub fn prefix_hash(&self) -> Hash {
        let mut v = Vec::with_capacity(256);
        self.encode_prefix(&mut v);
        sha3(&v)
    }

    /// TxPoW id = `H("minima/id/v1", SHA3(header without nonce), nonce)`.
    pub fn id(&self) -> Hash {
        txpow_id(&self.prefix_hash(), &self.nonce)
    }
}

/// `H("minima/id/v1", prefix_hash, nonce)`: 76 bytes, one Keccak permutation.
pub fn txpow_id(prefix_hash: &Hash, nonce: &[u8; 32]) -> Hash {
    TaggedHasher::new("minima/id/v1").bytes(&prefix_hash.0).bytes(nonce).finish()
}

impl Encode for TxHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_prefix(out);
        out.extend_from_slice(&self.nonce);
    }
}

impl Decode for TxHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(TxHeader {
            chain_id: r.u8("header.chain_id")?,
            version: r.u8("header.version")?,
            block_number: r.u64("header.block_number")?,
            time_ms: r.u64("header.time_ms")?,
            block_target: U256::decode_from(r)?,
            parents: Parents::decode_from(r)?,
            mmr_root: Hash::decode_from(r)?,
            mmr_total: r.u64("header.mmr_total")?,
            magic: Magic::decode_from(r)?,
            body_hash: Hash::decode_from(r)?,
            nonce: r.array("header.nonce")?,
        })
    }
}

/// TxPoW body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxBody {
    /// Transaction target: `id < txn_target` makes this a transaction.
    pub txn_target: U256,
    /// The transaction (empty for a pulse).
    pub transaction: Transaction,
    /// Its signatures and scripts.
    pub witness: Witness,
    /// Transaction TxPoWs this block includes, in application order.
    pub txpow_ids: Vec<Hash>,
    /// Random bytes (make pulses unique; seed genesis).
    pub prng: [u8; 32],
}

impl TxBody {
    /// `body_hash` = SHA3(encoded body).
    pub fn hash(&self) -> Hash {
        sha3(&self.encode())
    }
}

impl Encode for TxBody {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.txn_target.encode_to(out);
        self.transaction.encode_to(out);
        self.witness.encode_to(out);
        put_vec(out, &self.txpow_ids);
        out.extend_from_slice(&self.prng);
    }
}

impl Decode for TxBody {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(TxBody {
            txn_target: U256::decode_from(r)?,
            transaction: Transaction::decode_from(r)?,
            witness: Witness::decode_from(r)?,
            txpow_ids: r.vec(limits::MAX_TXPOW_IDS, "body.txpow_ids", Hash::decode_from)?,
            prng: r.array("body.prng")?,
        })
    }
}

/// The one unit that is both a transaction and (if its id is low enough) a block.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxPoW {
    /// The header (what is hashed for PoW).
    pub header: TxHeader,
    /// The body (committed by `header.body_hash`).
    pub body: TxBody,
}

impl TxPoW {
    /// The TxPoW id.
    pub fn id(&self) -> Hash {
        self.header.id()
    }
    /// The transaction's id.
    pub fn txid(&self) -> Hash {
        self.body.transaction.txid()
    }
    /// Bytes of the encoding.
    pub fn size(&self) -> usize {
        self.encode().len()
    }
}

impl Encode for TxPoW {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        self.body.encode_to(out);
    }
}

impl Decode for TxPoW {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(TxPoW { header: TxHeader::decode_from(r)?, body: TxBody::decode_from(r)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_runs_are_maximal() {
        let mut p = Parents::default();
        p.0[0] = Hash([1; 32]);
        let e = p.encode();
        assert_eq!(e[0], 2);
        assert_eq!(Parents::decode(&e), Ok(p));
        // Split the zero run into two runs: same slots, non-canonical.
        let mut bad = vec![3u8, 1];
        bad.extend_from_slice(&[1; 32]);
        bad.push(1);
        bad.extend_from_slice(&[0; 32]);
        bad.push(30);
        bad.extend_from_slice(&[0; 32]);
        assert!(matches!(Parents::decode(&bad), Err(CodecError::NonCanonical { .. })));
    }
}
