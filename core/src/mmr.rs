//! The MMR sum tree of coins (SPEC §7).
//!
//! Nodes are addressed by [`NodeKey`] `(height, index)`: leaf `i` is `(0, i)` and the parent of
//! `(h, i)` is `(h + 1, i / 2)`. One structure, [`Mmr`], serves both a server's full coin set
//! (every node present) and a partial view built from proofs — a block MMR witness or a relay
//! coin proof — holding only the nodes those proofs show. Every change made between
//! [`Mmr::begin`] and [`Mmr::finish`] is recorded in an [`MmrDelta`] that can roll the tree back
//! or carry an old proof forward to the tip.

use std::collections::HashMap;

use thiserror::Error;

use crate::codec::{put_len, CodecError, Decode, Encode, Reader};
use crate::crypto::{Hash, TaggedHasher};
use crate::types::CoinRecord;

/// Most siblings a path can have (a tree of 2^64 leaves).
pub const MAX_PATH: usize = 64;

/// A node: its hash and the sum of unspent values below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MmrNode {
    /// Node hash.
    pub hash: Hash,
    /// Sum of leaf values under the node.
    pub sum: u64,
}

/// Position of a node: height above the leaves and index at that height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKey {
    /// 0 for leaves.
    pub height: u8,
    /// Index among the nodes of this height.
    pub index: u64,
}

impl NodeKey {
    /// Leaf `i`.
    pub fn leaf(i: u64) -> NodeKey {
        NodeKey { height: 0, index: i }
    }
    fn sibling(self) -> NodeKey {
        NodeKey { height: self.height, index: self.index ^ 1 }
    }
    fn parent(self) -> NodeKey {
        NodeKey { height: self.height + 1, index: self.index >> 1 }
    }
}

/// Errors of MMR operations and proofs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MmrError {
    /// A leaf index at or past the leaf count.
    #[error("leaf {index} outside an MMR of {count} leaves")]
    LeafOutOfRange {
        /// Requested leaf.
        index: u64,
        /// Leaves in the tree.
        count: u64,
    },
    /// A node needed for the operation is not known (incomplete witness or proof).
    #[error("MMR node {0:?} is not known")]
    MissingNode(NodeKey),
    /// The proof has the wrong number of path entries.
    #[error("proof path has {found} entries, expected {expected}")]
    PathLength {
        /// Entries the shape needs.
        expected: usize,
        /// Entries given.
        found: usize,
    },
    /// The proof does not lead to the expected peak or root.
    #[error("proof does not lead to the MMR root")]
    BadProof,
    /// Two proofs disagree about one node.
    #[error("conflicting values for MMR node {0:?}")]
    Conflict(NodeKey),
    /// The leaf does not hold this coin unspent.
    #[error("leaf {0} does not hold this coin unspent")]
    NotUnspent(u64),
    /// Peaks do not match the leaf count.
    #[error("peaks do not match the leaf count")]
    PeakCount,
    /// A sum above `u64::MAX`.
    #[error("MMR sum overflow")]
    SumOverflow,
    /// The peaks' sums do not add up to the header's total.
    #[error("MMR peak sums do not match the total")]
    TotalMismatch,
    /// Changing a leaf that a later block changed (stale proof).
    #[error("leaf {0} changed after the proof's block")]
    Stale(u64),
}

/// Leaf node of a coin: `H(0x00, coin, u8 spent, u64 value)`, value = amount unless spent.
pub fn leaf_node(rec: &CoinRecord, spent: bool) -> MmrNode {
    let value = if spent { 0 } else { rec.coin.amount };
    let hash = TaggedHasher::new("")
        .bytes(&[0x00])
        .value(rec)
        .bytes(&[spent as u8])
        .bytes(&value.to_be_bytes())
        .finish();
    MmrNode { hash, sum: value }
}

/// Parent node: `H(0x01, left, right, u64 left_sum + right_sum)`.
pub fn parent_node(l: &MmrNode, r: &MmrNode) -> Result<MmrNode, MmrError> {
    let sum = l.sum.checked_add(r.sum).ok_or(MmrError::SumOverflow)?;
    let hash = TaggedHasher::new("")
        .bytes(&[0x01])
        .bytes(&l.hash.0)
        .bytes(&r.hash.0)
        .bytes(&sum.to_be_bytes())
        .finish();
    Ok(MmrNode { hash, sum })
}

/// Root: `H(0x02, u64 leaf_count, P)`, P folding the peaks from the rightmost with
/// `acc = H(0x03, peak_i, acc)`; one peak: P = it; no peaks: 32 zero bytes.
pub fn root_of(leaf_count: u64, peaks: &[MmrNode]) -> Hash {
    let mut acc = match peaks.last() {
        None => Hash::ZERO,
        Some(p) => p.hash,
    };
    for p in peaks.iter().rev().skip(1) {
        acc = TaggedHasher::new("").bytes(&[0x03]).bytes(&p.hash.0).bytes(&acc.0).finish();
    }
    TaggedHasher::new("").bytes(&[0x02]).bytes(&leaf_count.to_be_bytes()).bytes(&acc.0).finish()
}

/// Keys of the peaks of an MMR with `leaf_count` leaves, left to right.
pub fn peak_keys(leaf_count: u64) -> Vec<NodeKey> {
    let mut keys = Vec::with_capacity(leaf_count.count_ones() as usize);
    let mut start = 0u64;
    for h in (0..64u8).rev() {
        if leaf_count >> h & 1 == 1 {
            keys.push(NodeKey { height: h, index: start >> h });
            start += 1u64 << h;
        }
    }
    keys
}

/// The peak that covers leaf `index` (position among peaks, key).
fn peak_of(leaf_count: u64, index: u64) -> Option<(usize, NodeKey)> {
    peak_keys(leaf_count).into_iter().enumerate().find(|(_, k)| {
        let start = k.index << k.height;
        index >= start && index - start < (1u64 << k.height)
    })
}

/// Siblings from leaf `index` to its peak in an MMR of `leaf_count` leaves whose nodes `get`
/// looks up (in memory, or in the store's `mmr_nodes` table).
pub fn siblings_in(
    leaf_count: u64,
    index: u64,
    mut get: impl FnMut(NodeKey) -> Option<MmrNode>,
) -> Result<Vec<MmrNode>, MmrError> {
    let (_, pk) = peak_of(leaf_count, index).ok_or(MmrError::LeafOutOfRange { index, count: leaf_count })?;
    let mut key = NodeKey::leaf(index);
    let mut v = Vec::with_capacity(pk.height as usize);
    for _ in 0..pk.height {
        let s = key.sibling();
        v.push(get(s).ok_or(MmrError::MissingNode(s))?);
        key = key.parent();
    }
    Ok(v)
}

/// A relay proof of leaf `index` in an MMR of `leaf_count` leaves whose nodes `get` looks up,
/// labelled with `block_id`: the siblings to its peak, then the other peaks left to right.
pub fn proof_in(
    leaf_count: u64,
    index: u64,
    block_id: Hash,
    mut get: impl FnMut(NodeKey) -> Option<MmrNode>,
) -> Result<MmrProof, MmrError> {
    let mut path = siblings_in(leaf_count, index, &mut get)?;
    let (pos, _) = peak_of(leaf_count, index).ok_or(MmrError::LeafOutOfRange { index, count: leaf_count })?;
    for (i, k) in peak_keys(leaf_count).into_iter().enumerate() {
        if i != pos {
            path.push(get(k).ok_or(MmrError::MissingNode(k))?);
        }
    }
    Ok(MmrProof { block_id, leaf_index: index, path })
}

/// The peaks of an MMR: enough to append, to check a witness, and to compute the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MmrPeaks {
    /// Number of leaves.
    pub leaf_count: u64,
    /// Peaks left to right (one per set bit of `leaf_count`).
    pub peaks: Vec<MmrNode>,
}

impl MmrPeaks {
    /// The root these peaks give.
    pub fn root(&self) -> Hash {
        root_of(self.leaf_count, &self.peaks)
    }
    /// Σ peak sums (the unspent total).
    pub fn total(&self) -> Result<u64, MmrError> {
        self.peaks.iter().try_fold(0u64, |a, p| a.checked_add(p.sum)).ok_or(MmrError::SumOverflow)
    }
}

impl Encode for MmrNode {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.hash.encode_to(out);
        self.sum.encode_to(out);
    }
}
impl Decode for MmrNode {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(MmrNode { hash: Hash::decode_from(r)?, sum: r.u64("mmr.sum")? })
    }
}

impl Encode for MmrPeaks {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.leaf_count.encode_to(out);
        crate::codec::put_vec(out, &self.peaks);
    }
}
impl Decode for MmrPeaks {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let leaf_count = r.u64("peaks.leaf_count")?;
        let peaks = r.vec(64, "peaks", MmrNode::decode_from)?;
        if peaks.len() != leaf_count.count_ones() as usize {
            return Err(CodecError::InvalidValue {
                field: "peaks",
                reason: "peak count does not match leaf count",
            });
        }
        Ok(MmrPeaks { leaf_count, peaks })
    }
}

/// A transaction's input proofs: (creation block number, proof) per input.
pub type Proofs = Vec<(u64, MmrProof)>;

/// A relay coin proof (SPEC §7): leaf `leaf_index` in the MMR after block `block_id`. The path
/// holds the siblings from the leaf to its peak, then the other peaks left to right.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MmrProof {
    /// Block whose MMR the proof is against.
    pub block_id: Hash,
    /// Leaf position.
    pub leaf_index: u64,
    /// Siblings to the peak, then the other peaks.
    pub path: Vec<MmrNode>,
}

impl Encode for MmrProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.block_id.encode_to(out);
        self.leaf_index.encode_to(out);
        crate::codec::put_vec(out, &self.path);
    }
}
impl Decode for MmrProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(MmrProof {
            block_id: Hash::decode_from(r)?,
            leaf_index: r.u64("proof.leaf_index")?,
            path: r.vec(2 * MAX_PATH, "proof.path", MmrNode::decode_from)?,
        })
    }
}

impl MmrProof {
    /// The root the proof gives for `leaf` in an MMR of `leaf_count` leaves.
    pub fn root_for(&self, leaf: &MmrNode, leaf_count: u64) -> Result<Hash, MmrError> {
        let (pos, pk) = peak_of(leaf_count, self.leaf_index)
            .ok_or(MmrError::LeafOutOfRange { index: self.leaf_index, count: leaf_count })?;
        let h = pk.height as usize;
        let n_peaks = leaf_count.count_ones() as usize;
        let expected = h + n_peaks - 1;
        if self.path.len() != expected {
            return Err(MmrError::PathLength { expected, found: self.path.len() });
        }
        let peak = climb(self.leaf_index, leaf, &self.path[..h])?;
        let mut peaks: Vec<MmrNode> = self.path[h..].to_vec();
        peaks.insert(pos, peak);
        Ok(root_of(leaf_count, &peaks))
    }

    /// True when the proof shows `rec` (unspent) under `root` of an MMR of `leaf_count` leaves.
    pub fn verify(&self, rec: &CoinRecord, leaf_count: u64, root: &Hash) -> bool {
        matches!(self.root_for(&leaf_node(rec, false), leaf_count), Ok(r) if r == *root)
    }
}

/// Hash from a leaf up through `siblings`.
fn climb(leaf_index: u64, leaf: &MmrNode, siblings: &[MmrNode]) -> Result<MmrNode, MmrError> {
    let mut node = *leaf;
    let mut idx = leaf_index;
    for s in siblings {
        node = if idx & 1 == 0 { parent_node(&node, s)? } else { parent_node(s, &node)? };
        idx >>= 1;
    }
    Ok(node)
}

/// One input's proof inside a block MMR witness: siblings up to its peak in the parent's MMR.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WitnessInput {
    /// Leaf position of the spent coin.
    pub leaf_index: u64,
    /// Block number that created the coin (part of the leaf).
    pub created: u64,
    /// Siblings from the leaf to its peak.
    pub siblings: Vec<MmrNode>,
}

/// Block MMR witness (SPEC §7): the parent's peaks and a proof for each input the block spends,
/// in application order. Self-verifying against the parent header's `mmr_root`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct BlockWitness {
    /// Peaks of the parent's MMR.
    pub parent_peaks: MmrPeaks,
    /// One entry per spent input, in the order the block spends them.
    pub inputs: Vec<WitnessInput>,
}

/// Most inputs a witness may carry (the `max_block_inputs` of v1).
pub const MAX_WITNESS_INPUTS: usize = 512;

impl Encode for BlockWitness {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.parent_peaks.encode_to(out);
        put_len(out, self.inputs.len());
        for i in &self.inputs {
            i.leaf_index.encode_to(out);
            i.created.encode_to(out);
            crate::codec::put_vec(out, &i.siblings);
        }
    }
}
impl Decode for BlockWitness {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(BlockWitness {
            parent_peaks: MmrPeaks::decode_from(r)?,
            inputs: r.vec(MAX_WITNESS_INPUTS, "witness.inputs", |r| {
                Ok(WitnessInput {
                    leaf_index: r.u64("witness.leaf_index")?,
                    created: r.u64("witness.created")?,
                    siblings: r.vec(MAX_PATH, "witness.siblings", MmrNode::decode_from)?,
                })
            })?,
        })
    }
}

/// Every node a block created or changed, with the value before (None = created) and after.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MmrDelta {
    /// Leaves before the block.
    pub old_leaf_count: u64,
    /// Leaves after the block.
    pub new_leaf_count: u64,
    /// (node, old value, new value), sorted by key.
    pub changes: Vec<(NodeKey, Option<MmrNode>, MmrNode)>,
}

impl MmrDelta {
    /// True when the block changed leaf `index`.
    pub fn touches_leaf(&self, index: u64) -> bool {
        self.changes.binary_search_by(|c| c.0.cmp(&NodeKey::leaf(index))).is_ok()
    }
}

impl Encode for MmrDelta {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.old_leaf_count.encode_to(out);
        self.new_leaf_count.encode_to(out);
        put_len(out, self.changes.len());
        for (k, old, new) in &self.changes {
            out.push(k.height);
            k.index.encode_to(out);
            crate::codec::put_option(out, old);
            new.encode_to(out);
        }
    }
}
impl Decode for MmrDelta {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let old_leaf_count = r.u64("delta.old")?;
        let new_leaf_count = r.u64("delta.new")?;
        // A block changes at most (inputs + outputs) × 64 nodes.
        let changes = r.vec(1 << 20, "delta.changes", |r| {
            let height = r.u8("delta.key")?;
            let index = r.u64("delta.key")?;
            let old = if r.option_tag("delta.old")? { Some(MmrNode::decode_from(r)?) } else { None };
            Ok((NodeKey { height, index }, old, MmrNode::decode_from(r)?))
        })?;
        if changes.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(CodecError::NonCanonical { field: "delta.changes", reason: "unsorted" });
        }
        Ok(MmrDelta { old_leaf_count, new_leaf_count, changes })
    }
}

/// An MMR: all of it (a server's `full_mmr`) or the part some proofs show.
#[derive(Debug, Clone, Default)]
pub struct Mmr {
    leaf_count: u64,
    nodes: HashMap<NodeKey, MmrNode>,
    recording: Option<(u64, HashMap<NodeKey, Option<MmrNode>>)>,
}

impl Mmr {
    /// An empty MMR.
    pub fn new() -> Mmr {
        Mmr::default()
    }

    /// A partial MMR holding just `peaks`.
    pub fn from_peaks(peaks: &MmrPeaks) -> Result<Mmr, MmrError> {
        let keys = peak_keys(peaks.leaf_count);
        if keys.len() != peaks.peaks.len() {
            return Err(MmrError::PeakCount);
        }
        let nodes = keys.into_iter().zip(peaks.peaks.iter().copied()).collect();
        Ok(Mmr { leaf_count: peaks.leaf_count, nodes, recording: None })
    }

    /// A partial MMR at a block from its peaks and a block witness, every proof checked against
    /// those peaks. Returns the MMR and the coin record each witness entry proves, given the
    /// inputs' coins.
    pub fn from_witness(witness: &BlockWitness, coins: &[&crate::types::Coin]) -> Result<Mmr, MmrError> {
        let mut m = Mmr::from_peaks(&witness.parent_peaks)?;
        if coins.len() != witness.inputs.len() {
            return Err(MmrError::PathLength { expected: coins.len(), found: witness.inputs.len() });
        }
        for (w, coin) in witness.inputs.iter().zip(coins) {
            let rec = CoinRecord { coin: (*coin).clone(), created: w.created };
            m.add_path(w.leaf_index, &leaf_node(&rec, false), &w.siblings)?;
        }
        Ok(m)
    }

    /// Put a node as stored (reloading a full MMR).
    pub fn insert_node(&mut self, key: NodeKey, node: MmrNode) {
        self.nodes.insert(key, node);
    }

    /// Set the leaf count (reloading a full MMR).
    pub fn set_leaf_count(&mut self, n: u64) {
        self.leaf_count = n;
    }

    /// Number of leaves.
    pub fn leaf_count(&self) -> u64 {
        self.leaf_count
    }

    /// Number of nodes held.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A node, if held.
    pub fn node(&self, key: NodeKey) -> Option<MmrNode> {
        self.nodes.get(&key).copied()
    }

    /// The current peaks.
    pub fn peaks(&self) -> Result<MmrPeaks, MmrError> {
        let peaks = peak_keys(self.leaf_count)
            .into_iter()
            .map(|k| self.nodes.get(&k).copied().ok_or(MmrError::MissingNode(k)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MmrPeaks { leaf_count: self.leaf_count, peaks })
    }

    /// The current root.
    pub fn root(&self) -> Result<Hash, MmrError> {
        Ok(self.peaks()?.root())
    }

    /// Σ unspent values.
    pub fn total(&self) -> Result<u64, MmrError> {
        self.peaks()?.total()
    }

    /// Record a proof's nodes after checking that it leads to a held peak.
    pub fn add_path(
        &mut self,
        leaf_index: u64,
        leaf: &MmrNode,
        siblings: &[MmrNode],
    ) -> Result<(), MmrError> {
        let (_, pk) = peak_of(self.leaf_count, leaf_index)
            .ok_or(MmrError::LeafOutOfRange { index: leaf_index, count: self.leaf_count })?;
        if siblings.len() != pk.height as usize {
            return Err(MmrError::PathLength { expected: pk.height as usize, found: siblings.len() });
        }
        let peak = self.nodes.get(&pk).copied().ok_or(MmrError::MissingNode(pk))?;
        if climb(leaf_index, leaf, siblings)? != peak {
            return Err(MmrError::BadProof);
        }
        let mut key = NodeKey::leaf(leaf_index);
        let mut node = *leaf;
        for s in siblings {
            self.insert_checked(key, node)?;
            self.insert_checked(key.sibling(), *s)?;
            node = if key.index & 1 == 0 { parent_node(&node, s)? } else { parent_node(s, &node)? };
            key = key.parent();
        }
        Ok(())
    }

    fn insert_checked(&mut self, key: NodeKey, node: MmrNode) -> Result<(), MmrError> {
        match self.nodes.get(&key) {
            Some(n) if *n != node => Err(MmrError::Conflict(key)),
            _ => {
                self.nodes.insert(key, node);
                Ok(())
            }
        }
    }

    /// Start recording a block's changes.
    pub fn begin(&mut self) {
        self.recording = Some((self.leaf_count, HashMap::new()));
    }

    /// Stop recording and return the block's delta.
    pub fn finish(&mut self) -> MmrDelta {
        let (old_leaf_count, olds) = self.recording.take().unwrap_or_default();
        let mut changes: Vec<(NodeKey, Option<MmrNode>, MmrNode)> = olds
            .into_iter()
            .filter_map(|(k, old)| self.nodes.get(&k).map(|n| (k, old, *n)))
            .filter(|(_, old, new)| *old != Some(*new))
            .collect();
        changes.sort_by_key(|a| a.0);
        MmrDelta { old_leaf_count, new_leaf_count: self.leaf_count, changes }
    }

    fn set(&mut self, key: NodeKey, node: MmrNode) {
        let old = self.nodes.insert(key, node);
        if let Some((_, rec)) = self.recording.as_mut() {
            rec.entry(key).or_insert(old);
        }
    }

    /// Append a leaf (a new coin). Needs only the peaks.
    pub fn append(&mut self, leaf: MmrNode) -> Result<u64, MmrError> {
        let index = self.leaf_count;
        let mut key = NodeKey::leaf(index);
        let mut node = leaf;
        self.set(key, node);
        while key.index & 1 == 1 {
            let sib = key.sibling();
            let left = self.nodes.get(&sib).copied().ok_or(MmrError::MissingNode(sib))?;
            node = parent_node(&left, &node)?;
            key = key.parent();
            self.set(key, node);
        }
        self.leaf_count += 1;
        Ok(index)
    }

    /// Append a coin.
    pub fn append_coin(&mut self, rec: &CoinRecord) -> Result<u64, MmrError> {
        self.append(leaf_node(rec, false))
    }

    /// Replace leaf `index` by `leaf`, recomputing its ancestors up to its peak.
    pub fn update_leaf(&mut self, index: u64, leaf: MmrNode) -> Result<(), MmrError> {
        let (_, pk) = peak_of(self.leaf_count, index)
            .ok_or(MmrError::LeafOutOfRange { index, count: self.leaf_count })?;
        // Gather every sibling first so a missing one changes nothing.
        let mut key = NodeKey::leaf(index);
        let mut sibs = Vec::with_capacity(pk.height as usize);
        for _ in 0..pk.height {
            let s = key.sibling();
            sibs.push(self.nodes.get(&s).copied().ok_or(MmrError::MissingNode(s))?);
            key = key.parent();
        }
        let mut key = NodeKey::leaf(index);
        let mut node = leaf;
        let mut updates = vec![(key, node)];
        for s in &sibs {
            node = if key.index & 1 == 0 { parent_node(&node, s)? } else { parent_node(s, &node)? };
            key = key.parent();
            updates.push((key, node));
        }
        for (k, n) in updates {
            self.set(k, n);
        }
        Ok(())
    }

    /// Spend the coin at leaf `index`: it must hold `rec` unspent.
    pub fn spend(&mut self, index: u64, rec: &CoinRecord) -> Result<(), MmrError> {
        let cur = self.nodes.get(&NodeKey::leaf(index)).copied();
        if cur != Some(leaf_node(rec, false)) {
            if index >= self.leaf_count {
                return Err(MmrError::LeafOutOfRange { index, count: self.leaf_count });
            }
            return Err(MmrError::NotUnspent(index));
        }
        self.update_leaf(index, leaf_node(rec, true))
    }

    /// Siblings from leaf `index` to its peak.
    pub fn siblings(&self, index: u64) -> Result<Vec<MmrNode>, MmrError> {
        siblings_in(self.leaf_count, index, |k| self.nodes.get(&k).copied())
    }

    /// A relay proof of leaf `index` against this MMR, labelled with `block_id`.
    pub fn proof(&self, index: u64, block_id: Hash) -> Result<MmrProof, MmrError> {
        proof_in(self.leaf_count, index, block_id, |k| self.nodes.get(&k).copied())
    }

    /// A partial MMR holding what a relay proof shows (the leaf's path and every peak).
    pub fn from_proof(proof: &MmrProof, leaf: &MmrNode, leaf_count: u64) -> Result<Mmr, MmrError> {
        let (pos, pk) = peak_of(leaf_count, proof.leaf_index)
            .ok_or(MmrError::LeafOutOfRange { index: proof.leaf_index, count: leaf_count })?;
        let h = pk.height as usize;
        let expected = h + leaf_count.count_ones() as usize - 1;
        if proof.path.len() != expected {
            return Err(MmrError::PathLength { expected, found: proof.path.len() });
        }
        let peak = climb(proof.leaf_index, leaf, &proof.path[..h])?;
        let mut peaks: Vec<MmrNode> = proof.path[h..].to_vec();
        peaks.insert(pos, peak);
        let mut m = Mmr::from_peaks(&MmrPeaks { leaf_count, peaks })?;
        m.add_path(proof.leaf_index, leaf, &proof.path[..h])?;
        Ok(m)
    }

    /// Undo a delta (the newest applied one).
    pub fn rollback(&mut self, delta: &MmrDelta) {
        for (k, old, _) in &delta.changes {
            match old {
                Some(n) => {
                    self.nodes.insert(*k, *n);
                }
                None => {
                    self.nodes.remove(k);
                }
            }
        }
        self.leaf_count = delta.old_leaf_count;
    }

    /// Apply a delta's new values (replaying a block onto a view at its parent).
    pub fn apply_forward(&mut self, delta: &MmrDelta) {
        for (k, _, new) in &delta.changes {
            self.nodes.insert(*k, *new);
        }
        self.leaf_count = delta.new_leaf_count;
    }
}

/// Carry a relay proof made at some block forward to the tip through the deltas of every later
/// block on the branch (oldest first). Fails with [`MmrError::Stale`] if a later block changed
/// the leaf itself (the coin was spent).
pub fn refresh_proof(
    proof: &MmrProof,
    rec: &CoinRecord,
    leaf_count: u64,
    later: &[&MmrDelta],
    tip_id: Hash,
) -> Result<MmrProof, MmrError> {
    let leaf = leaf_node(rec, false);
    let mut m = Mmr::from_proof(proof, &leaf, leaf_count)?;
    for d in later {
        if d.touches_leaf(proof.leaf_index) {
            return Err(MmrError::Stale(proof.leaf_index));
        }
        if d.old_leaf_count != m.leaf_count {
            return Err(MmrError::PeakCount);
        }
        m.apply_forward(d);
    }
    m.proof(proof.leaf_index, tip_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sha3;
    use crate::types::Coin;

    fn rec(i: u64) -> CoinRecord {
        CoinRecord {
            coin: Coin {
                coin_id: sha3(&i.to_be_bytes()),
                address: Hash::ZERO,
                amount: i + 1,
                token_id: Hash::ZERO,
                state: vec![],
            },
            created: i,
        }
    }

    #[test]
    fn small_tree_shapes() {
        let mut m = Mmr::new();
        assert_eq!(m.root().unwrap(), root_of(0, &[]));
        for i in 0..37u64 {
            m.append_coin(&rec(i)).unwrap();
            assert_eq!(m.peaks().unwrap().peaks.len() as u32, (i + 1).count_ones());
            assert_eq!(m.total().unwrap(), (1..=i + 1).sum::<u64>());
            for j in 0..=i {
                let p = m.proof(j, Hash::ZERO).unwrap();
                assert!(p.verify(&rec(j), m.leaf_count(), &m.root().unwrap()), "leaf {j} of {}", i + 1);
            }
        }
    }

    #[test]
    fn spend_delta_and_rollback() {
        let mut m = Mmr::new();
        for i in 0..20 {
            m.append_coin(&rec(i)).unwrap();
        }
        let root0 = m.root().unwrap();
        m.begin();
        m.spend(3, &rec(3)).unwrap();
        assert_eq!(m.spend(3, &rec(3)), Err(MmrError::NotUnspent(3)));
        m.append_coin(&rec(100)).unwrap();
        let d = m.finish();
        assert!(d.touches_leaf(3) && d.touches_leaf(20) && !d.touches_leaf(4));
        assert_eq!(m.total().unwrap(), (1..=20u64).sum::<u64>() - 4 + 101);
        m.rollback(&d);
        assert_eq!(m.root().unwrap(), root0);
        assert_eq!(MmrDelta::decode(&d.encode()), Ok(d));
    }
}
