//! The headers a cascade sync holds while it fetches their bodies, compactly: a header that
//! follows the one before it (the next number, the same chain id, version and magic, and
//! `parents` exactly as SPEC §5 derives them) keeps only its own fields — 144 bytes instead of
//! ≈ 1.3 KB with its 32 parent slots — as `Headers` travel on the wire. Every
//! [`CHECKPOINT`]th is held whole, so rebuilding a chunk replays at most that many.

use std::ops::Range;

use crate::crypto::Hash;
use crate::net::message::{follows, OwnFields};
use crate::types::TxHeader;

/// One header in [`CHECKPOINT`] is held whole.
pub const CHECKPOINT: usize = 64;

#[derive(Debug, Clone)]
enum Held {
    Whole(Box<TxHeader>),
    Follows(OwnFields),
}

/// Headers in chain order with their ids.
#[derive(Debug, Default)]
pub struct HeaderList {
    held: Vec<(Hash, Held)>,
    /// The newest header, whole.
    last: Option<TxHeader>,
}

impl HeaderList {
    /// Append header `h` whose id is `id`.
    pub fn push(&mut self, id: Hash, h: TxHeader) {
        let compact = self.held.len() % CHECKPOINT != 0
            && self.last.as_ref().zip(self.held.last()).is_some_and(|(p, (pid, _))| follows(&h, p, pid));
        let held = if compact { Held::Follows(OwnFields::of(&h)) } else { Held::Whole(Box::new(h.clone())) };
        if self.held.len() == self.held.capacity() {
            // Grown by a `Headers` batch at a time, not doubled: a main-params tree's headers
            // would otherwise take up to twice their room.
            self.held.reserve_exact(crate::net::message::MAX_HEADERS);
        }
        self.held.push((id, held));
        self.last = Some(h);
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The newest header.
    pub fn last(&self) -> Option<&TxHeader> {
        self.last.as_ref()
    }

    /// The ids of headers `r`.
    pub fn ids(&self, r: Range<usize>) -> Vec<Hash> {
        self.held.get(r).unwrap_or_default().iter().map(|(id, _)| *id).collect()
    }

    /// Headers `r`, rebuilt (empty if `r` is out of range).
    pub fn headers(&self, r: Range<usize>) -> Vec<TxHeader> {
        if r.start >= r.end || r.end > self.held.len() {
            return vec![];
        }
        // The nearest whole header at or before the start (index 0 is always whole).
        let from = (0..=r.start).rev().find(|i| matches!(self.held[*i].1, Held::Whole(_))).unwrap_or(0);
        let mut out = Vec::with_capacity(r.len());
        let mut prev: Option<(TxHeader, Hash)> = None;
        for i in from..r.end {
            let (id, held) = &self.held[i];
            let h = match (held, &prev) {
                (Held::Whole(h), _) => (**h).clone(),
                (Held::Follows(o), Some((p, pid))) => o.after(p, pid),
                // Unreachable: a compact header always follows one rebuilt before it.
                (Held::Follows(_), None) => return vec![],
            };
            if i >= r.start {
                out.push(h.clone());
            }
            prev = Some((h, *id));
        }
        out
    }
}

#[cfg(all(test, feature = "fixture"))]
mod tests {
    use super::*;
    use crate::fixture::ChainBuilder;
    use crate::params::Params;

    /// Every header comes back exactly as pushed, in any range, from a list where most are
    /// held compactly, and one that does not follow its predecessor is held whole.
    #[test]
    fn headers_come_back_exactly_from_their_compact_form() {
        let mut fx = ChainBuilder::new(Params::devnet(), 1_800_000_000_000, 200);
        fx.tx_per_block = false;
        fx.keep_blocks = true;
        fx.mine(150);
        let headers: Vec<TxHeader> = fx.take_blocks().into_iter().map(|(t, _)| t.header).collect();
        assert!(headers.len() > 2 * CHECKPOINT, "{}", headers.len());
        let mut list = HeaderList::default();
        // One odd header in the middle: a copy of its predecessor's, so it does not follow.
        let odd = 100;
        let mut input = headers.clone();
        input[odd] = input[odd - 1].clone();
        for h in &input {
            list.push(h.id(), h.clone());
        }
        let whole = list.held.iter().filter(|(_, h)| matches!(h, Held::Whole(_))).count();
        let expected = input.len().div_ceil(CHECKPOINT) + 2;
        assert!(whole <= expected, "{whole} held whole, at most {expected} expected");
        assert!(matches!(list.held[odd].1, Held::Whole(_)));
        assert_eq!(list.len(), input.len());
        assert_eq!(list.last(), input.last());
        for (a, b) in [(0, input.len()), (1, 2), (63, 65), (64, 64), (99, 103), (140, input.len())] {
            assert_eq!(list.headers(a..b), input[a..b].to_vec(), "{a}..{b}");
            assert_eq!(list.ids(a..b), input[a..b].iter().map(TxHeader::id).collect::<Vec<_>>());
        }
        assert!(list.headers(5..input.len() + 1).is_empty());
    }
}
