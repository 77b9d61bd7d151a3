//! Work, targets, super levels, difficulty and median time (SPEC §1, §4, §5).

use crate::crypto::Hash;
use crate::params::Params;
use crate::{U256, U512};

/// `floor(2^256 / (target + 1))`, saturated to `u128::MAX`.
pub fn work_of(target: &U256) -> u128 {
    let num = U512::from(1u8) << 256;
    let den = U512::from_be_slice(&target.to_be_bytes::<32>()) + U512::from(1u8);
    let w: U512 = num / den;
    if w.bit_len() > 128 {
        u128::MAX
    } else {
        w.to::<u128>()
    }
}

/// The target for `w` hashes of work: `floor((2^256 − 1) / w)` (w ≥ 1).
pub fn target_for_work(w: u128) -> U256 {
    U256::MAX / U256::from(w.max(1))
}

/// The id as a 256-bit big-endian integer.
pub fn id_value(id: &Hash) -> U256 {
    U256::from_be_bytes(id.0)
}

/// True when `id < target`.
pub fn meets(id: &Hash, target: &U256) -> bool {
    id_value(id) < *target
}

/// Super level of a block: `floor(log2(target / id))` capped at 31 (id 0 → 31); `None` when the
/// id does not meet the target.
pub fn super_level(id: &Hash, target: &U256) -> Option<u32> {
    let v = id_value(id);
    if v >= *target {
        return None;
    }
    if v.is_zero() {
        return Some(31);
    }
    let q = *target / v;
    Some((q.bit_len() as u32).saturating_sub(1).min(31))
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[(v.len() - 1) / 2]
}

/// Median of the given times (element `(m−1)/2` of the sorted list); 0 for none.
pub fn median_time(times: &[u64]) -> u64 {
    if times.is_empty() {
        0
    } else {
        median(times.to_vec())
    }
}

/// The target block `h` must carry, given the (target, time) of its ancestors, oldest first
/// (at least the last `min(diff_window, h)` of them).
pub fn next_target(params: &Params, h: u64, ancestors: &[(U256, u64)]) -> U256 {
    let min_target = params.magic.min_target();
    if h < 8 {
        return min_target;
    }
    let n = params.diff_window.min(h) as usize;
    if ancestors.len() < n {
        // Callers always pass enough; be safe rather than panic.
        return min_target;
    }
    let w = &ancestors[ancestors.len() - n..];
    let k = (params.diff_median as usize).min(n / 2).max(1);
    let t_old = median(w[..k].iter().map(|x| x.1).collect()) as i128;
    let t_new = median(w[n - k..].iter().map(|x| x.1).collect()) as i128;
    let dt = (t_new - t_old).max(1) as u128;
    let dh = (n - k) as u128;
    let mut sum = U512::ZERO;
    for (t, _) in w {
        sum += U512::from_be_slice(&t.to_be_bytes::<32>());
    }
    let num = sum * U512::from(dt);
    let den = U512::from(n as u128) * U512::from(dh) * U512::from(params.block_time_ms as u128);
    let mut next = num / den;
    let mean = sum / U512::from(n as u128);
    let lo = mean / U512::from(2u8);
    let hi = mean * U512::from(2u8);
    if next < lo {
        next = lo;
    }
    if next > hi {
        next = hi;
    }
    let min512 = U512::from_be_slice(&min_target.to_be_bytes::<32>());
    if next > min512 {
        next = min512;
    }
    U256::from_be_slice(&next.to_be_bytes::<64>()[32..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_and_target() {
        assert_eq!(work_of(&U256::MAX), 1);
        // floor((2^256−1)/w) rounds the target down, floor(2^256/(t+1)) rounds work down:
        // exact for powers of two, one less otherwise.
        assert_eq!(work_of(&target_for_work(256)), 256);
        assert_eq!(work_of(&target_for_work(10_000)), 9_999);
        assert_eq!(work_of(&U256::ZERO), u128::MAX);
        assert_eq!(target_for_work(1), U256::MAX);
    }

    #[test]
    fn super_levels() {
        let t = U256::from(1u64 << 40);
        let id = |v: u64| Hash(U256::from(v).to_be_bytes::<32>());
        assert_eq!(super_level(&id(1u64 << 40), &t), None);
        assert_eq!(super_level(&id((1u64 << 40) - 1), &t), Some(0));
        assert_eq!(super_level(&id(1u64 << 39), &t), Some(1));
        assert_eq!(super_level(&id(1), &t), Some(31));
        assert_eq!(super_level(&Hash::ZERO, &t), Some(31));
        assert_eq!(super_level(&id(1 << 20), &t), Some(20));
    }
}
