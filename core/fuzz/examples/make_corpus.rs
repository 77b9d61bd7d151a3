//! Writes the committed seed corpus (`core/fuzz/corpus/<target>/`) from fixture chains:
//! real encoded TxPoWs, witnesses, cascades and frames, scripts, and a few mutation programs.
//! Re-run after a codec change (signatures are randomised, so the bytes differ run to run):
//! `cargo +nightly run --manifest-path core/fuzz/Cargo.toml --example make_corpus`.

use std::path::{Path, PathBuf};

use minima_core::chain::cascade::{Cascade, CascadeHeaders};
use minima_core::codec::Encode;
use minima_core::crypto::{Hash, Keypair};
use minima_core::net::message::{BlockBody, BlockData, CoinQuery, Hello, Message, PROTOCOL_VERSION};
use minima_core_fuzz::{base_builder, base_params, template_scripts, PLANNED};

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("mkdir");
    std::fs::write(d.join(name), bytes).expect("write");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn main() {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));

    // A chain long enough to have a cascade (devnet keeps 64 blocks in the tree), with one
    // signed spend and a block listing TxPoWs.
    let mut b = base_builder();
    let key = b.add_key(Keypair::derive(&[9; 32], 0).expect("derive"));
    b.mine(4);
    let pay = b.pay_to_key(key, 1_000).expect("free coin");
    b.mine_block(false, vec![pay]);
    let signed = b.make_signed_tx(key).expect("key coin");
    let plain = b.make_tx().expect("free coin");
    b.mine_block(true, vec![signed.clone(), plain.clone()]);
    let listing = b.blocks().len() - 1;
    b.tx_per_block = false;
    b.mine(PLANNED - 60);
    let blocks = b.blocks().to_vec();
    let chain = &b.chain;

    // TxPoW: an empty block, a block with its own transaction, a listing block, a signed
    // transaction, an unsigned transaction.
    write(&dir, "decode_txpow", "block_empty", &blocks[blocks.len() - 1].0.encode());
    write(&dir, "decode_txpow", "block_own_tx", &blocks[1].0.encode());
    write(&dir, "decode_txpow", "block_listing", &blocks[listing].0.encode());
    write(&dir, "decode_txpow", "tx_signed", &signed.encode());
    write(&dir, "decode_txpow", "tx_plain", &plain.encode());

    // Witnesses: none spent, one input, three inputs.
    write(&dir, "decode_witness", "empty", &blocks[blocks.len() - 1].1.encode());
    write(&dir, "decode_witness", "one_input", &blocks[1].1.encode());
    write(&dir, "decode_witness", "listing", &blocks[listing].1.encode());

    // Cascades: the chain's own (verifies), and genesis alone.
    let (params, genesis) = base_params();
    let cascade = chain.cascade().headers();
    assert!(cascade.len() > 1, "the fixture chain has a cascade");
    Cascade::verify(cascade.clone(), params, genesis).expect("the fixture cascade verifies");
    write(&dir, "decode_cascade", "fixture", &CascadeHeaders(cascade.clone()).encode());
    let g = cascade.last().expect("genesis").clone();
    write(&dir, "decode_cascade", "genesis", &CascadeHeaders(vec![g]).encode());

    // Frames of every kind.
    let tip = chain.tip_id();
    let headers: Vec<_> = blocks[blocks.len() - 12..].iter().map(|(t, _)| t.header.clone()).collect();
    let data =
        |i: usize| BlockData { txpow: blocks[i].0.clone(), witness: blocks[i].1.clone(), listed: vec![] };
    let proof = b.mmr().proof(0, tip).ok();
    let msgs: Vec<(&str, Message)> = vec![
        (
            "hello",
            Message::Hello(Hello {
                version: PROTOCOL_VERSION,
                chain_id: params.chain_id,
                genesis: *genesis,
                tip,
                tip_weight: chain.weight(),
                time_ms: minima_core_fuzz::NOW,
                listen: Some("127.0.0.1:9001".into()),
                is_client: false,
                want_txs: true,
                serves_blocks: true,
                full_mmr: false,
            }),
        ),
        ("inv", Message::Inv(vec![tip, *genesis])),
        ("get_txpow", Message::GetTxPow(vec![plain.id()])),
        ("txpow", Message::TxPow(vec![(plain.clone(), vec![])])),
        ("get_headers", Message::GetHeaders { locator: vec![tip, *genesis], max: 2_000 }),
        ("headers", Message::Headers(headers)),
        ("get_blocks", Message::GetBlocks(vec![tip])),
        (
            "blocks",
            Message::Blocks(vec![BlockData {
                txpow: blocks[listing].0.clone(),
                witness: blocks[listing].1.clone(),
                listed: vec![plain.clone()],
            }]),
        ),
        ("get_cascade", Message::GetCascade),
        (
            "cascade",
            Message::Cascade {
                headers: cascade[..cascade.len().min(6)].to_vec(),
                root: Box::new(data(blocks.len() - 2)),
                root_peaks: blocks[blocks.len() - 1].1.parent_peaks.clone(),
            },
        ),
        (
            "get_coin_proofs",
            Message::GetCoinProofs {
                query: CoinQuery::Addresses(vec![Hash([7; 32])]),
                after: Some(Hash([3; 32])),
            },
        ),
        (
            "coin_proofs",
            Message::CoinProofs {
                block: tip,
                proofs: proof
                    .into_iter()
                    .map(|p| (minima_core::chain::genesis_coin(params).expect("genesis coin"), p))
                    .collect(),
                next: Some(Hash([4; 32])),
            },
        ),
        ("get_peers", Message::GetPeers),
        ("peers", Message::Peers(vec!["127.0.0.1:9002".into(), "[::1]:9001".into()])),
        ("ping", Message::Ping(7)),
        ("pong", Message::Pong(7)),
        ("get_bodies", Message::GetBodies(vec![tip])),
        (
            "bodies",
            Message::Bodies(vec![BlockBody {
                body: blocks[1].0.body.clone(),
                witness: blocks[1].1.clone(),
                listed: vec![],
            }]),
        ),
    ];
    for (name, m) in msgs {
        let f = m.to_frame();
        assert_eq!(Message::from_frame(&f).as_ref(), Ok(&m), "{name} round trip");
        write(&dir, "decode_message", name, &f);
    }

    // Scripts: the template kinds and one of each statement, function and global.
    let mut scripts = template_scripts();
    scripts.extend(
        [
            "LET x = 5 RETURN x EQ 5",
            "IF FALSE THEN RETURN FALSE ELSEIF TRUE THEN RETURN TRUE ELSE RETURN FALSE ENDIF",
            "ASSERT STATE(1) EQ 0x0102 ASSERT PREVSTATE(3) EQ 0xAB RETURN TRUE",
            "RETURN VERIFYOUT(0, 0xBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB, 600, 0x00)",
            "RETURN @AMOUNT GT 999 AND @INPUT EQ 1 OR NOT @BLOCK LT 3",
            "LET h = SHA3(@ADDRESS) RETURN h NEQ @TOKENID",
            "RETURN (1 + 2 * 3 - 4 / 2 % 3) GTE -5",
            "RETURN MULTISIG(1, 0x00, 0x01)",
            "RETURN SIGNEDBY(0x00)",
        ]
        .map(String::from),
    );
    // The script target's signer, so that SIGNEDBY can pass.
    let signer = minima_core_fuzz::script_world().signers[0];
    scripts.push(format!("RETURN SIGNEDBY(0x{}) AND @COINAGE EQ 5", hex(&signer.0)));
    for (i, s) in scripts.iter().enumerate() {
        write(&dir, "script", &format!("s{i:02}"), s.as_bytes());
    }

    // add_block: the valid candidate untouched, resealed, with a body byte flipped and
    // resealed, and with the listed TxPoW mutated and relinked.
    write(&dir, "add_block", "valid", &[0]);
    write(&dir, "add_block", "reseal", &[1]);
    write(&dir, "add_block", "body_flip", &[3, 0x01, 0x80, 0x01]);
    write(&dir, "add_block", "witness_flip", &[3, 0x07, 0x00, 0x10]);
    write(&dir, "add_block", "listed_relink", &[0x0f, 0x08, 0x40, 0x01]);
    write(&dir, "add_block", "withheld", &[0x10]);

    // template: nothing, a few entries, conflicting spends, many entries.
    write(&dir, "template", "empty", &[0, 0, 0]);
    write(&dir, "template", "few", &[1, 0, 0, 0, 0, 0, 7, 0, 40, 0, 90]);
    write(&dir, "template", "conflicts", &[2, 0, 5, 0, 0, 0, 1, 0, 2, 0, 3]);
    let many: Vec<u8> =
        [3u8, 0xff, 0xf0].into_iter().chain((0..24u16).flat_map(|i| (i * 9).to_be_bytes())).collect();
    write(&dir, "template", "many", &many);
    eprintln!("corpus written to {}", dir.display());
}
