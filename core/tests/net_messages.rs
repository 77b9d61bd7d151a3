//! Wire messages: every message round-trips through its frame; frame headers over their type's
//! limit, unknown types and garbage are refused without allocating the claimed length.

use std::sync::OnceLock;

use minima_core::crypto::Hash;
use minima_core::fixture::ChainBuilder;
use minima_core::net::message::*;
use minima_core::Params;
use proptest::prelude::*;

struct Sample {
    blocks: Vec<BlockData>,
    relay: Vec<RelayTxPow>,
}

fn sample() -> &'static Sample {
    static S: OnceLock<Sample> = OnceLock::new();
    S.get_or_init(|| {
        let mut b = ChainBuilder::new(Params::devnet(), 1_700_000_000_000, 40);
        b.mine(12);
        let t = b.make_tx().unwrap();
        let p = b.coin_proof(&t.body.transaction.inputs[0].coin_id).unwrap();
        b.mine_block(true, vec![t.clone()]);
        let blocks = b
            .blocks()
            .iter()
            .map(|(t2, w)| BlockData { txpow: t2.clone(), witness: w.clone(), listed: vec![] })
            .collect();
        Sample { blocks, relay: vec![(t, vec![p])] }
    })
}

fn hashes(max: usize) -> impl Strategy<Value = Vec<Hash>> {
    prop::collection::vec(any::<[u8; 32]>().prop_map(Hash), 0..max)
}

fn message() -> impl Strategy<Value = Message> {
    let s = sample();
    let nb = s.blocks.len();
    prop_oneof![
        (
            any::<u32>(),
            any::<u8>(),
            any::<[u8; 32]>(),
            any::<u128>(),
            any::<u64>(),
            prop::option::of("[a-z0-9.:]{0,40}"),
            any::<[bool; 4]>()
        )
            .prop_map(|(version, chain_id, g, w, t, listen, f)| Message::Hello(Hello {
                version,
                chain_id,
                genesis: Hash(g),
                tip: Hash([g[0]; 32]),
                tip_weight: w,
                time_ms: t,
                listen,
                is_client: f[0],
                want_txs: f[1],
                serves_blocks: f[2],
                full_mmr: f[3],
            })),
        hashes(20).prop_map(Message::Inv),
        hashes(20).prop_map(Message::GetTxPow),
        hashes(20).prop_map(Message::GetBlocks),
        Just(Message::TxPow(s.relay.clone())),
        (hashes(10), 0u32..=2000).prop_map(|(locator, max)| Message::GetHeaders { locator, max }),
        (0..nb, 0..nb).prop_map(move |(a, b)| Message::Headers(
            s.blocks[a.min(b)..a.max(b)].iter().map(|x| x.txpow.header.clone()).collect()
        )),
        (0..nb, 0..nb).prop_map(move |(a, b)| Message::Blocks(s.blocks[a.min(b)..a.max(b)].to_vec())),
        Just(Message::GetCascade),
        (0..nb).prop_map(move |i| Message::Cascade {
            headers: s.blocks[..i].iter().rev().map(|x| x.txpow.header.clone()).collect(),
            root: Box::new(s.blocks[i].clone()),
            root_peaks: s.blocks[(i + 1).min(nb - 1)].witness.parent_peaks.clone(),
        }),
        (hashes(5), any::<bool>(), prop::option::of(any::<[u8; 32]>())).prop_map(|(h, a, after)| {
            Message::GetCoinProofs {
                query: if a { CoinQuery::Addresses(h) } else { CoinQuery::Coins(h) },
                after: after.map(Hash),
            }
        }),
        prop::collection::vec("[a-z0-9.:]{1,40}", 0..50).prop_map(Message::Peers),
        Just(Message::GetPeers),
        any::<u64>().prop_map(Message::Ping),
        any::<u64>().prop_map(Message::Pong),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn messages_round_trip_and_truncations_fail(m in message(), cut in any::<prop::sample::Index>()) {
        let f = m.to_frame();
        prop_assert_eq!(Message::from_frame(&f), Ok(m));
        let n = cut.index(f.len());
        prop_assert!(Message::from_frame(&f[..n]).is_err());
        let mut longer = f.clone();
        longer.push(0);
        prop_assert!(Message::from_frame(&longer).is_err());
    }

    #[test]
    fn garbage_never_panics_and_accepted_frames_are_canonical(junk in prop::collection::vec(any::<u8>(), 0..400), kind in 0u8..20) {
        let mut f = ((junk.len() + 1) as u32).to_be_bytes().to_vec();
        f.push(kind);
        f.extend_from_slice(&junk);
        if let Ok(m) = Message::from_frame(&f) {
            prop_assert_eq!(m.to_frame(), f);
        }
        let _ = Message::from_frame(&junk);
    }
}

#[test]
fn frame_headers_are_checked_before_allocation() {
    // 4 GiB claimed: refused from the 5-byte header alone.
    let h = [0xff, 0xff, 0xff, 0xff, Kind::Inv as u8];
    assert!(matches!(Message::check_header(&h), Err(FrameError::TooLarge { kind: Kind::Inv, .. })));
    // Just over the limits.
    let over = |k: Kind, len: usize| {
        let mut h = (len as u32).to_be_bytes().to_vec();
        h.push(k as u8);
        Message::check_header(&h)
    };
    assert!(over(Kind::Ping, MAX_FRAME).is_ok());
    assert!(over(Kind::Ping, MAX_FRAME + 1).is_err());
    assert!(over(Kind::Blocks, MAX_LARGE_FRAME).is_ok());
    assert!(over(Kind::Blocks, MAX_LARGE_FRAME + 1).is_err());
    assert!(over(Kind::Headers, MAX_LARGE_FRAME + 1).is_err());
    assert!(over(Kind::Cascade, MAX_LARGE_FRAME).is_ok());
    assert!(over(Kind::TxPow, MAX_FRAME + 1).is_err());
    assert_eq!(Message::check_header(&[0, 0, 0, 1, 99]), Err(FrameError::UnknownType(99)));
    assert_eq!(Message::check_header(&[0, 0, 0, 0, 1]), Err(FrameError::Empty));
    assert_eq!(Message::check_header(&[0, 0, 1]), Err(FrameError::ShortHeader));
    // A GetHeaders asking for more than 2,000 is refused.
    let mut f = Message::GetHeaders { locator: vec![], max: 2000 }.to_frame();
    let n = f.len();
    f[n - 4..].copy_from_slice(&2001u32.to_be_bytes());
    assert!(matches!(Message::from_frame(&f), Err(FrameError::Payload { kind: Kind::GetHeaders, .. })));
}

#[test]
fn consecutive_headers_travel_compactly_and_only_canonically() {
    use minima_core::codec::Encode;
    let s = sample();
    let headers: Vec<_> = s.blocks.iter().map(|b| b.txpow.header.clone()).collect();
    let full: usize = headers.iter().map(|h| h.encode().len()).sum();
    let m = Message::Headers(headers.clone());
    let frame = m.to_frame();
    assert_eq!(Message::from_frame(&frame).unwrap(), m);
    assert!(frame.len() * 3 < full * 2, "compact {} B vs full {full} B", frame.len());
    // The same headers each sent whole (tag 0): refused as not canonical.
    let mut payload = vec![];
    minima_core::codec::put_len(&mut payload, headers.len());
    for h in &headers {
        payload.push(0);
        h.encode_to(&mut payload);
    }
    let mut f = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    f.push(Kind::Headers as u8);
    f.extend_from_slice(&payload);
    let e = Message::from_frame(&f).unwrap_err();
    assert!(format!("{e:?}").contains("not canonical"), "{e:?}");
    // The first header alone is fine whole.
    let one = Message::Headers(headers[..1].to_vec());
    assert_eq!(Message::from_frame(&one.to_frame()).unwrap(), one);
}
