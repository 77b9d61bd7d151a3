//! The weight check of a sync, socket-free: before any block body of an offered chain is
//! fetched or validated (SPHINCS+ signatures, scripts, MMR), the chain's weight is proven
//! from what is cheap to check — its verified cascade and root, then its tree headers, each
//! linked to the one before and carrying its own proof of work. A chain that does not
//! outweigh ours is dropped there, and a peer whose `Hello` claimed far more weight than its
//! headers prove is told apart from an honest one.
//!
//! A peer's weight moves a little between its `Hello` and our sync (its tree grows, its
//! cascade prunes), so a claim is only inflated past [`CLAIM_SLACK`] times what it proves,
//! and a lie past [`CLAIM_ABSURD`] times (no honest drift comes near it).

use crate::chain::pow::{meets, work_of};
use crate::crypto::Hash;
use crate::types::TxHeader;

/// A claim more than this many times the weight the peer's chain proves is inflated.
pub const CLAIM_SLACK: u128 = 2;
/// A claim this many times the weight the peer's chain proves, or more, is a lie.
pub const CLAIM_ABSURD: u128 = 1 << 16;

/// How a peer's claimed weight compares with what its chain proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Within [`CLAIM_SLACK`] of the proven weight (or below it).
    Fair,
    /// More than [`CLAIM_SLACK`] times the proven weight.
    Inflated,
    /// [`CLAIM_ABSURD`] times the proven weight or more.
    Absurd,
}

/// Why a header batch is refused (the peer is at fault: punish it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightFault {
    /// A header does not build on the one before.
    #[error("headers do not chain")]
    NotLinked,
    /// A header's id misses its own block target.
    #[error("a header without its proof of work")]
    NoWork,
    /// More headers than any tree holds.
    #[error("more headers than a tree holds ({0})")]
    TooMany(u64),
}

/// What the proven weight says once the peer's headers end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightVerdict {
    /// Heavier than our chain: fetch and validate the bodies.
    Heavier,
    /// Not heavier: stop here, nothing validated. Not the peer's fault.
    NotHeavier,
}

/// A sync's proven weight, header by header.
#[derive(Debug, Clone)]
pub struct WeightCheck {
    ours: u128,
    claim: u128,
    proven: u128,
    last: Hash,
    headers: u64,
    max_headers: u64,
    /// The most work one header added carried.
    max_work: u128,
}

impl WeightCheck {
    /// A check against our weight `ours`, for a peer that claimed `claim`, starting from the
    /// verified cascade and root (`root` id, `proven` weight), taking at most `max_headers`.
    pub fn new(ours: u128, claim: u128, root: Hash, proven: u128, max_headers: u64) -> WeightCheck {
        WeightCheck { ours, claim, proven, last: root, headers: 0, max_headers, max_work: 0 }
    }

    /// Add the next header (its id `id`): it must build on the last one and meet its target.
    pub fn add(&mut self, h: &TxHeader, id: &Hash) -> Result<(), WeightFault> {
        if h.parents.0[0] != self.last {
            return Err(WeightFault::NotLinked);
        }
        if !meets(id, &h.block_target) {
            return Err(WeightFault::NoWork);
        }
        self.headers += 1;
        if self.headers > self.max_headers {
            return Err(WeightFault::TooMany(self.max_headers));
        }
        let work = work_of(&h.block_target);
        self.max_work = self.max_work.max(work);
        self.proven = self.proven.saturating_add(work);
        self.last = *id;
        Ok(())
    }

    /// The last header added (the root before any).
    pub fn last(&self) -> Hash {
        self.last
    }

    /// Weight proven so far.
    pub fn proven(&self) -> u128 {
        self.proven
    }

    /// Whether the chain proven so far outweighs ours.
    pub fn verdict(&self) -> WeightVerdict {
        if self.proven > self.ours {
            WeightVerdict::Heavier
        } else {
            WeightVerdict::NotHeavier
        }
    }

    /// Once the peer's headers have ended: how its claim compares with what its chain proves.
    pub fn claim(&self) -> Claim {
        judge(self.claim, self.proven)
    }

    /// When the peer cut its headers short (they stopped linking, or never came): how its
    /// claim compares with the most its chain could weigh — what it proved, plus every header
    /// the cap still allows at [`CUT_SHORT_MARGIN`] times the most work one carried. Only an
    /// absurd claim counts then (nothing is known before the first header).
    pub fn claim_cut_short(&self) -> Claim {
        if self.headers == 0 {
            return Claim::Fair;
        }
        let left = u128::from(self.max_headers.saturating_sub(self.headers));
        let most =
            self.proven.saturating_add(left.saturating_mul(self.max_work).saturating_mul(CUT_SHORT_MARGIN));
        match judge(self.claim, most) {
            Claim::Absurd => Claim::Absurd,
            _ => Claim::Fair,
        }
    }
}

/// Difficulty may rise along a tree: a cut-short chain's unseen headers are counted at this
/// many times the most work a seen one carried.
pub const CUT_SHORT_MARGIN: u128 = 16;

fn judge(claim: u128, proven: u128) -> Claim {
    if claim / proven.max(1) >= CLAIM_ABSURD {
        Claim::Absurd
    } else if claim / CLAIM_SLACK > proven {
        Claim::Inflated
    } else {
        Claim::Fair
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::pow::target_for_work;
    use crate::params::Params;

    /// A header on `parent` with an easy target, its nonce searched until it meets it.
    fn header(parent: Hash, n: u64, work: u128) -> (TxHeader, Hash) {
        let mut h = crate::chain::genesis(&Params::devnet()).expect("genesis").0.header;
        h.parents.0[0] = parent;
        h.block_number = n;
        h.block_target = target_for_work(work);
        for i in 0u64.. {
            h.nonce[..8].copy_from_slice(&i.to_be_bytes());
            let id = h.id();
            if meets(&id, &h.block_target) {
                return (h, id);
            }
        }
        unreachable!("a target of a few hashes is met")
    }

    #[test]
    fn a_chain_is_heavier_only_once_its_headers_prove_it() {
        let root = Hash([7; 32]);
        let mut c = WeightCheck::new(100, 150, root, 90, 10);
        assert_eq!(c.verdict(), WeightVerdict::NotHeavier);
        let (h1, id1) = header(root, 1, 8);
        c.add(&h1, &id1).unwrap();
        assert_eq!(c.verdict(), WeightVerdict::NotHeavier);
        let (h2, id2) = header(id1, 2, 8);
        c.add(&h2, &id2).unwrap();
        assert_eq!(c.verdict(), WeightVerdict::Heavier);
        assert_eq!(c.last(), id2);
        assert_eq!(c.claim(), Claim::Fair, "150 against a proven 106 is within the slack");
    }

    #[test]
    fn unlinked_workless_and_too_many_headers_are_faults() {
        let root = Hash([7; 32]);
        let mut c = WeightCheck::new(0, 0, root, 0, 2);
        let (h, _) = header(Hash([8; 32]), 1, 4);
        assert_eq!(c.add(&h, &h.id()), Err(WeightFault::NotLinked));
        let (mut h, id) = header(root, 1, 4);
        // The hardest target: no id meets it.
        h.block_target = crate::U256::ZERO;
        assert_eq!(c.add(&h, &h.id()), Err(WeightFault::NoWork));
        let _ = id;
        let (h1, id1) = header(root, 1, 2);
        let (h2, id2) = header(id1, 2, 2);
        let (h3, id3) = header(id2, 3, 2);
        c.add(&h1, &id1).unwrap();
        c.add(&h2, &id2).unwrap();
        assert_eq!(c.add(&h3, &id3), Err(WeightFault::TooMany(2)));
    }

    #[test]
    fn claims_above_the_proven_weight_are_inflated_then_absurd() {
        let root = Hash([7; 32]);
        let claim = |c: u128, proven: u128| WeightCheck::new(10, c, root, proven, 10).claim();
        assert_eq!(claim(u128::MAX, 1_000), Claim::Absurd);
        assert_eq!(claim(u128::MAX, 0), Claim::Absurd);
        assert_eq!(claim(2_001, 1_000), Claim::Fair, "2,001 / 2 = 1,000 is not above 1,000");
        assert_eq!(claim(2_002, 1_000), Claim::Inflated);
        assert_eq!(claim(65_535_999, 1_000), Claim::Inflated);
        assert_eq!(claim(65_536_000, 1_000), Claim::Absurd);
        assert_eq!(claim(0, 0), Claim::Fair);
    }

    #[test]
    fn a_chain_cut_short_is_judged_against_the_most_it_could_weigh() {
        let root = Hash([7; 32]);
        let mut c = WeightCheck::new(0, u128::MAX / 2, root, 100, 10);
        assert_eq!(c.claim_cut_short(), Claim::Fair, "nothing known before a header");
        let (h1, id1) = header(root, 1, 8);
        c.add(&h1, &id1).unwrap();
        // At most 100 + 8 + 9 × 8 × 16 = 1,260 could follow: u128::MAX / 2 is absurd.
        assert_eq!(c.claim_cut_short(), Claim::Absurd);
        let mut c = WeightCheck::new(0, 50_000, root, 100, 10);
        c.add(&h1, &id1).unwrap();
        assert_eq!(c.claim_cut_short(), Claim::Fair, "inflated is not punished on a cut-short chain");
    }
}
