//! The cascade (SPEC §6): the pruned chain of headers older than the tree root.

use crate::chain::pow::{super_level, work_of};
use crate::chain::ChainError;
use crate::codec::{put_len, CodecError, Decode, Encode, Reader};
use crate::crypto::Hash;
use crate::params::Params;
use crate::types::TxHeader;

/// A kept header and the level the walk kept it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadeEntry {
    /// The header.
    pub header: TxHeader,
    /// Its id (cached).
    pub id: Hash,
    /// The level it is kept at.
    pub level: u32,
}

impl CascadeEntry {
    /// Super level of the header itself (genesis: 31).
    pub fn super_level(&self) -> u32 {
        header_super_level(&self.header, &self.id)
    }
    /// Weight: work × 2^level.
    pub fn weight(&self) -> u128 {
        work_of(&self.header.block_target).saturating_mul(1u128.checked_shl(self.level).unwrap_or(u128::MAX))
    }
}

/// Super level of a header (block 0 is genesis at 31; a non-block gets 0 and fails PoW checks
/// elsewhere).
pub fn header_super_level(h: &TxHeader, id: &Hash) -> u32 {
    if h.block_number == 0 {
        31
    } else {
        super_level(id, &h.block_target).unwrap_or(0)
    }
}

/// Headers older than the tree root, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cascade {
    entries: Vec<CascadeEntry>,
}

/// The walk of SPEC §6 over `levels` (super levels, newest first): which to keep and at what
/// level. Returns (index, level) of each kept header.
pub fn walk(super_levels: &[u32], per_level: usize, max_levels: u32) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    let mut level = 0u32;
    let mut kept_here = 0usize;
    for (i, &sl) in super_levels.iter().enumerate() {
        if kept_here >= per_level {
            if level + 1 >= max_levels {
                break;
            }
            level += 1;
            kept_here = 0;
        }
        if sl >= level {
            out.push((i, level));
            kept_here += 1;
        }
    }
    out
}

impl Cascade {
    /// An empty cascade.
    pub fn new() -> Cascade {
        Cascade::default()
    }

    /// Entries, newest first.
    pub fn entries(&self) -> &[CascadeEntry] {
        &self.entries
    }

    /// Number of headers kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Σ work × 2^level.
    pub fn weight(&self) -> u128 {
        self.entries.iter().fold(0u128, |a, e| a.saturating_add(e.weight()))
    }

    /// The newest entry.
    pub fn newest(&self) -> Option<&CascadeEntry> {
        self.entries.first()
    }

    /// True if `id` is kept here.
    pub fn contains(&self, id: &Hash) -> bool {
        self.entries.iter().any(|e| e.id == *id)
    }

    /// Add headers that left the tree (newest first, each the parent of the one before), then
    /// prune.
    pub fn push_newest(&mut self, headers: Vec<(TxHeader, Hash)>, params: &Params) {
        let mut all: Vec<CascadeEntry> =
            headers.into_iter().map(|(header, id)| CascadeEntry { header, id, level: 0 }).collect();
        all.append(&mut self.entries);
        self.entries = all;
        self.prune(params);
    }

    /// Re-run the walk over the kept headers.
    pub fn prune(&mut self, params: &Params) {
        let sls: Vec<u32> = self.entries.iter().map(|e| e.super_level()).collect();
        let keep = walk(&sls, params.cascade_per_level, params.cascade_levels);
        let old = std::mem::take(&mut self.entries);
        let mut it = keep.into_iter().peekable();
        for (i, mut e) in old.into_iter().enumerate() {
            if let Some(&(k, level)) = it.peek() {
                if k == i {
                    e.level = level;
                    self.entries.push(e);
                    it.next();
                }
            }
        }
    }

    /// Check a cascade received from a peer, recomputing every level from the headers' own ids
    /// and targets: PoW of every header, the walk keeps every one of them (no inflated level,
    /// nothing beyond the quota), links, decreasing block numbers, and genesis at the end.
    pub fn verify(headers: Vec<TxHeader>, params: &Params, genesis_id: &Hash) -> Result<Cascade, ChainError> {
        if headers.is_empty() {
            return Err(ChainError::Cascade("empty"));
        }
        if headers.len() > params.cascade_per_level * params.cascade_levels as usize {
            return Err(ChainError::Cascade("more headers than levels × per level"));
        }
        let mut entries = Vec::with_capacity(headers.len());
        for h in headers {
            crate::chain::check_header_bounds(&h)?;
            let id = h.id();
            if h.chain_id != params.chain_id || h.magic != params.magic {
                return Err(ChainError::Cascade("header of another network"));
            }
            if h.block_number != 0 && super_level(&id, &h.block_target).is_none() {
                return Err(ChainError::Cascade("header without proof of work"));
            }
            if h.block_number != 0 && h.block_target > params.magic.min_target() {
                return Err(ChainError::Cascade("target easier than the minimum"));
            }
            entries.push(CascadeEntry { header: h, id, level: 0 });
        }
        let sls: Vec<u32> = entries.iter().map(|e| e.super_level()).collect();
        let keep = walk(&sls, params.cascade_per_level, params.cascade_levels);
        if keep.len() != entries.len() {
            return Err(ChainError::Cascade("a header is not earned at its level"));
        }
        for (i, level) in keep {
            entries[i].level = level;
        }
        for w in entries.windows(2) {
            let (n, o) = (&w[0], &w[1]);
            if n.header.block_number <= o.header.block_number {
                return Err(ChainError::Cascade("block numbers not decreasing"));
            }
            if n.header.parents.0.get(o.level as usize) != Some(&o.id) {
                return Err(ChainError::Cascade("broken link"));
            }
        }
        let oldest = entries.last().ok_or(ChainError::Cascade("empty"))?;
        if oldest.header.block_number != 0 || oldest.id != *genesis_id {
            return Err(ChainError::Cascade("does not end at this network's genesis"));
        }
        Ok(Cascade { entries })
    }

    /// Check the links between consecutive kept headers (used on our own cascade too).
    pub fn links_ok(&self) -> bool {
        self.entries.windows(2).all(|w| w[0].header.parents.0.get(w[1].level as usize) == Some(&w[1].id))
    }

    /// The headers, newest first (what `GetCascade` serves).
    pub fn headers(&self) -> Vec<TxHeader> {
        self.entries.iter().map(|e| e.header.clone()).collect()
    }

    /// Rebuild from stored entries (trusted: our own store).
    pub fn from_entries(entries: Vec<CascadeEntry>) -> Cascade {
        Cascade { entries }
    }
}

/// Most headers a cascade message may carry (32 levels × 256).
pub const MAX_CASCADE_HEADERS: usize = 32 * 256;

/// Wire form of a cascade: its headers, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadeHeaders(pub Vec<TxHeader>);

impl Encode for CascadeHeaders {
    fn encode_to(&self, out: &mut Vec<u8>) {
        put_len(out, self.0.len());
        for h in &self.0 {
            h.encode_to(out);
        }
    }
}

impl Decode for CascadeHeaders {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CascadeHeaders(r.vec(MAX_CASCADE_HEADERS, "cascade", TxHeader::decode_from)?))
    }
}
