//! Property tests of the codec (10,000 cases each): every type round-trips; arbitrary and
//! mutated bytes never panic a decoder and, when accepted, re-encode to the same bytes;
//! truncated and extended encodings are rejected.

use minima_core::chain::cascade::CascadeHeaders;
use minima_core::codec::{CodecError, Decode, Encode};
use minima_core::crypto::{Hash, PublicKey, Signature, SIGNATURE_BYTES};
use minima_core::mmr::{BlockWitness, MmrDelta, MmrNode, MmrPeaks, MmrProof, NodeKey, WitnessInput};
use minima_core::types::*;
use minima_core::U256;
use proptest::prelude::*;

const CASES: u32 = 10_000;

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn state(max_bytes: usize) -> impl Strategy<Value = Vec<StateVar>> {
    prop::collection::btree_map(any::<u8>(), prop::collection::vec(any::<u8>(), 0..max_bytes), 0..4)
        .prop_map(|m| m.into_iter().map(|(port, data)| StateVar { port, data }).collect())
}

fn coin() -> impl Strategy<Value = Coin> {
    (hash(), hash(), any::<u64>(), hash(), state(40)).prop_map(
        |(coin_id, address, amount, token_id, state)| Coin { coin_id, address, amount, token_id, state },
    )
}

fn coin_record() -> impl Strategy<Value = CoinRecord> {
    (coin(), any::<u64>()).prop_map(|(coin, created)| CoinRecord { coin, created })
}

fn output() -> impl Strategy<Value = Output> {
    (hash(), any::<u64>(), hash(), state(40)).prop_map(|(address, amount, token_id, state)| Output {
        address,
        amount,
        token_id,
        state,
    })
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (any::<u8>(), prop::collection::vec(coin(), 0..4), prop::collection::vec(output(), 0..4), state(100))
        .prop_map(|(version, inputs, outputs, state)| Transaction { version, inputs, outputs, state })
}

fn signature() -> impl Strategy<Value = Signature> {
    any::<[u8; 32]>().prop_map(|s| {
        let b: Vec<u8> = (0..SIGNATURE_BYTES).map(|i| s[i % 32] ^ (i as u8)).collect();
        Signature::from_bytes(&b).unwrap()
    })
}

fn witness() -> impl Strategy<Value = Witness> {
    (
        prop::collection::vec((any::<[u8; 32]>().prop_map(PublicKey), signature()), 0..3),
        prop::collection::vec("[ -~]{0,40}", 0..4),
    )
        .prop_map(|(sigs, scripts)| Witness::new(sigs, scripts))
}

fn magic() -> impl Strategy<Value = Magic> {
    (any::<[u32; 7]>(), any::<u64>()).prop_map(|(a, w)| Magic {
        max_txpow_bytes: a[0],
        max_txns: a[1],
        max_block_bytes: a[2],
        max_block_inputs: a[3],
        max_sigops_txpow: a[4],
        max_sigops_block: a[5],
        max_script_ops: a[6],
        min_work: w,
    })
}

fn parents() -> impl Strategy<Value = Parents> {
    // Few distinct hashes so that runs are common.
    (prop::collection::vec(0u8..3, 32), hash(), hash()).prop_map(|(sel, a, b)| {
        let mut p = Parents::default();
        for (i, s) in sel.into_iter().enumerate() {
            p.0[i] = match s {
                0 => Hash::ZERO,
                1 => a,
                _ => b,
            };
        }
        p
    })
}

fn u256() -> impl Strategy<Value = U256> {
    any::<[u8; 32]>().prop_map(U256::from_be_bytes)
}

fn header() -> impl Strategy<Value = TxHeader> {
    (
        (any::<u8>(), any::<u8>(), any::<u64>(), any::<u64>(), u256(), parents()),
        (hash(), any::<u64>(), magic(), hash(), any::<[u8; 32]>()),
    )
        .prop_map(
            |(
                (chain_id, version, block_number, time_ms, block_target, parents),
                (mmr_root, mmr_total, magic, body_hash, nonce),
            )| {
                TxHeader {
                    chain_id,
                    version,
                    block_number,
                    time_ms,
                    block_target,
                    parents,
                    mmr_root,
                    mmr_total,
                    magic,
                    body_hash,
                    nonce,
                }
            },
        )
}

fn body() -> impl Strategy<Value = TxBody> {
    (u256(), transaction(), witness(), prop::collection::vec(hash(), 0..5), any::<[u8; 32]>()).prop_map(
        |(txn_target, transaction, witness, txpow_ids, prng)| TxBody {
            txn_target,
            transaction,
            witness,
            txpow_ids,
            prng,
        },
    )
}

fn txpow() -> impl Strategy<Value = TxPoW> {
    (header(), body()).prop_map(|(header, body)| TxPoW { header, body })
}

fn node() -> impl Strategy<Value = MmrNode> {
    (hash(), any::<u64>()).prop_map(|(hash, sum)| MmrNode { hash, sum })
}

fn peaks() -> impl Strategy<Value = MmrPeaks> {
    any::<u64>().prop_flat_map(|leaf_count| {
        prop::collection::vec(node(), leaf_count.count_ones() as usize)
            .prop_map(move |peaks| MmrPeaks { leaf_count, peaks })
    })
}

fn proof() -> impl Strategy<Value = MmrProof> {
    (hash(), any::<u64>(), prop::collection::vec(node(), 0..20))
        .prop_map(|(block_id, leaf_index, path)| MmrProof { block_id, leaf_index, path })
}

fn block_witness() -> impl Strategy<Value = BlockWitness> {
    (
        peaks(),
        prop::collection::vec(
            (any::<u64>(), any::<u64>(), prop::collection::vec(node(), 0..6))
                .prop_map(|(leaf_index, created, siblings)| WitnessInput { leaf_index, created, siblings }),
            0..4,
        ),
    )
        .prop_map(|(parent_peaks, inputs)| BlockWitness { parent_peaks, inputs })
}

fn delta() -> impl Strategy<Value = MmrDelta> {
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::btree_map((any::<u8>(), any::<u64>()), (prop::option::of(node()), node()), 0..6),
    )
        .prop_map(|(o, n, m)| MmrDelta {
            old_leaf_count: o,
            new_leaf_count: n,
            changes: m
                .into_iter()
                .map(|((height, index), (old, new))| (NodeKey { height, index }, old, new))
                .collect(),
        })
}

fn cascade() -> impl Strategy<Value = CascadeHeaders> {
    prop::collection::vec(header(), 0..3).prop_map(CascadeHeaders)
}

/// Decoding may fail but must never panic; when it succeeds the bytes were canonical.
fn decodes_canonically<T: Decode + Encode>(b: &[u8]) {
    if let Ok(v) = T::decode(b) {
        assert_eq!(v.encode(), b, "accepted input re-encodes differently");
    }
}

macro_rules! codec_props {
    ($modname:ident, $ty:ty, $strat:expr) => {
        mod $modname {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

                #[test]
                fn round_trip(v in $strat) {
                    let b = v.encode();
                    prop_assert_eq!(<$ty>::decode(&b), Ok(v));
                }

                #[test]
                fn truncated_and_extended_rejected(v in $strat, cut in any::<prop::sample::Index>(), extra in prop::collection::vec(any::<u8>(), 1..4)) {
                    let b = v.encode();
                    let n = cut.index(b.len());
                    prop_assert!(<$ty>::decode(&b[..n]).is_err(), "prefix of {} of {} bytes accepted", n, b.len());
                    let mut longer = b.clone();
                    longer.extend_from_slice(&extra);
                    prop_assert_eq!(<$ty>::decode(&longer), Err(CodecError::TrailingBytes(extra.len())));
                }

                #[test]
                fn arbitrary_and_mutated_bytes_never_panic(
                    junk in prop::collection::vec(any::<u8>(), 0..600),
                    v in $strat,
                    at in any::<prop::sample::Index>(),
                    x in 1u8..=255,
                ) {
                    decodes_canonically::<$ty>(&junk);
                    let mut b = v.encode();
                    if !b.is_empty() {
                        let i = at.index(b.len());
                        b[i] ^= x;
                        decodes_canonically::<$ty>(&b);
                    }
                }
            }
        }
    };
}

codec_props!(coin_props, Coin, coin());
codec_props!(coin_record_props, CoinRecord, coin_record());
codec_props!(output_props, Output, output());
codec_props!(transaction_props, Transaction, transaction());
codec_props!(witness_props, Witness, witness());
codec_props!(magic_props, Magic, magic());
codec_props!(parents_props, Parents, parents());
codec_props!(header_props, TxHeader, header());
codec_props!(body_props, TxBody, body());
codec_props!(txpow_props, TxPoW, txpow());
codec_props!(mmr_node_props, MmrNode, node());
codec_props!(peaks_props, MmrPeaks, peaks());
codec_props!(proof_props, MmrProof, proof());
codec_props!(block_witness_props, BlockWitness, block_witness());
codec_props!(delta_props, MmrDelta, delta());
codec_props!(cascade_props, CascadeHeaders, cascade());

#[test]
fn oversized_length_prefixes_are_refused_before_allocation() {
    // A transaction claiming 2^32-1 inputs: refused on the prefix alone.
    let mut b = vec![1u8];
    b.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(Transaction::decode(&b), Err(CodecError::TooLong { field: "tx.inputs", .. })));
    let mut b = vec![0u8; 32 + 1];
    b.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(TxBody::decode(&b).is_err());
}
