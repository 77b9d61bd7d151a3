//! `net_hostile`'s attacks replayed in the simulator ([`minima_core::sim::Lab`]): the victims
//! are production nodes (chain actor, mempool, protocol engine, the real store on an in-memory
//! SQLite database); the attackers are scripted peers that answer with forged cascades,
//! tampered blocks, absurd claims or silence. Simulated time: a 20 s stall costs nothing, and
//! every run is the same; each scenario runs for 32 seeds (`SIM_SEEDS`). What needs real sockets (bad frames, slow streams, memory bounds,
//! the pre-TLS accept rate, reads served off a held actor) stays in `net_hostile`.

mod common;
use common::{hello_for, spend_free_coin};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use minima_core::crypto::Hash;
use minima_core::fixture::ChainBuilder;
use minima_core::net::message::{BlockBody, BlockData, Hello, Message};
use minima_core::sim::Lab;
use minima_core::types::TxPoW;
use minima_core::Params;

/// The fixtures' start (blocks are dated from it).
const T0: u64 = 1_700_000_000_000;

/// Simulated time a scenario may take at most.
const MINUTE: u64 = 60_000;

/// A server's `Hello` claiming a heavy chain with tip `tip`.
fn heavy_hello(genesis: Hash, tip: Hash, weight: u128) -> Message {
    Message::Hello(Hello {
        tip,
        tip_weight: weight,
        is_client: false,
        serves_blocks: true,
        ..hello_for(genesis)
    })
}

/// Blocks as a peer sends them, without their listed TxPoWs.
fn block_data(blocks: &[(minima_core::types::TxPoW, minima_core::mmr::BlockWitness)]) -> Vec<BlockData> {
    blocks.iter().map(|(t, w)| BlockData { txpow: t.clone(), witness: w.clone(), listed: vec![] }).collect()
}

/// `Blocks` with those of `data` that `ids` asks for.
fn blocks_asked(data: &[BlockData], ids: &[Hash]) -> Message {
    Message::Blocks(data.iter().filter(|d| ids.contains(&d.txpow.id())).cloned().collect())
}

thread_local! {
    /// The seed of the scenario running on this thread.
    static SEED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Run a scenario once per seed (`SIM_SEEDS`, 32 by default): each seed draws the links'
/// delays differently, so messages race in another order.
fn each_seed(mut scenario: impl FnMut()) {
    let seeds = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(32u64);
    for seed in 0..seeds {
        SEED.with(|s| s.set(seed));
        eprintln!("seed {seed}");
        // Signatures made in the scenario (fixtures' too) draw from the seed: a failing seed
        // fails again.
        let _seeded = minima_core::entropy::seed_thread(seed);
        scenario();
    }
}

/// A lab on `params`' network, its clock at the fixtures' start plus `after_ms`, with the
/// current seed.
fn lab(params: &Params, after_ms: u64) -> Lab {
    Lab::new(params.clone(), T0 + after_ms, SEED.with(|s| s.get())).expect("lab")
}

/// Give node `i` the fixture's `blocks`, each with the TxPoWs it lists.
fn submit(lab: &mut Lab, i: usize, b: &ChainBuilder, blocks: &[(TxPoW, minima_core::mmr::BlockWitness)]) {
    for (t, w) in blocks {
        let listed: Vec<TxPoW> =
            t.body.txpow_ids.iter().filter_map(|id| b.txpows().get(id).cloned()).collect();
        let (_, out) = lab.node(i).submit_block(t.clone(), w.clone(), listed).expect("block");
        lab.carry(i, out).expect("carry");
    }
}

/// A listening node holding the fixture's blocks.
fn honest_node(lab: &mut Lab, b: &ChainBuilder) -> usize {
    let i = lab.add_node(true, &[]).expect("node");
    submit(lab, i, b, b.blocks());
    assert_eq!(lab.node(i).tip().0, b.head(), "the honest node holds the fixture's chain");
    i
}

/// A node of its own with the fixture's blocks (not listening, no peer yet).
fn node_with(lab: &mut Lab, b: &ChainBuilder) -> usize {
    let i = lab.add_node(false, &[]).expect("node");
    submit(lab, i, b, b.blocks());
    assert_eq!(lab.node(i).tip().0, b.head());
    i
}

/// Run until node `i` has banned someone (at most `ms`); it must be `who` alone, banned once
/// for a reason containing `why` (a configured peer's later redials are refused as banned).
fn banned_for(lab: &mut Lab, i: usize, who: usize, why: &str, ms: u64) {
    assert!(lab.run_until(ms, |l| l.node(i).bans() >= 1).expect("run"), "nobody banned (expected {why:?})");
    lab.run_for(5_000).expect("run");
    let count = lab.node(i).bans();
    let bans = lab.bans(i);
    assert_eq!(count, 1, "{bans:?}");
    assert!(
        bans.iter().all(|(p, _)| *p == Some(who))
            && bans[0].1.contains(why)
            && bans[1..].iter().all(|(_, r)| r == "banned"),
        "expected a ban of {who} for {why:?}: {bans:?}"
    );
}

/// Run until node `i`'s tip is `tip` (at most `ms`).
fn until_tip(lab: &mut Lab, i: usize, tip: Hash, ms: u64) -> bool {
    lab.run_until(ms, |l| l.node(i).tip().0 == tip).expect("run")
}

/// A `Cascade` answer: `headers` over the fixture chain's real root (its witness and peaks).
fn cascade_of(chain: &minima_core::chain::Chain, headers: Vec<minima_core::types::TxHeader>) -> Message {
    let root = chain.root();
    Message::Cascade {
        headers,
        root: Box::new(BlockData {
            txpow: root.txpow.clone(),
            witness: chain.extra(&root.id).expect("root witness").witness.clone(),
            listed: vec![],
        }),
        root_peaks: root.peaks.clone(),
    }
}

/// A `Cascade` answer claiming the whole chain is tree: no header, genesis `g` as the root.
fn genesis_cascade(g: TxPoW) -> Message {
    Message::Cascade {
        headers: vec![],
        root: Box::new(BlockData { txpow: g, witness: Default::default(), listed: vec![] }),
        root_peaks: Default::default(),
    }
}

/// A scripted peer that claims a heavy chain: its headers do not connect to the victim's, and
/// it answers `GetCascade` with `forged`.
fn evil_server(genesis: Hash, headers: Message, forged: Message) -> impl FnMut(Message) -> Option<Message> {
    move |m| match m {
        Message::Hello(_) => Some(heavy_hello(genesis, Hash([9; 32]), u128::MAX / 2)),
        Message::GetHeaders { .. } => Some(headers.clone()),
        Message::GetCascade => Some(forged.clone()),
        _ => None,
    }
}

/// net_hostile's `forged_cascade_is_refused_and_the_honest_chain_wins`.
#[test]
fn forged_cascade_is_refused_and_the_honest_chain_wins() {
    each_seed(|| {
        let mut b = ChainBuilder::new(Params::devnet(), T0, 1_000);
        b.tx_per_block = false;
        b.mine(400);
        let chain = &b.chain;
        let root = chain.root();
        let mut headers = chain.cascade().headers();
        headers.remove(5); // a missing header: the links break
        let forged = cascade_of(chain, headers);
        let mut lab = lab(&b.params, 400_000);
        let honest = honest_node(&mut lab, &b);
        let tip = lab.node(honest).tip().0;
        let evil = lab.add_script(evil_server(
            chain.genesis_id(),
            Message::Headers(vec![root.txpow.header.clone()]),
            forged,
        ));
        // A victim that knows only the evil peer refuses its cascade and bans it.
        let victim = lab.add_node(false, &[evil]).unwrap();
        banned_for(&mut lab, victim, evil, "cascade: broken link", MINUTE);
        lab.run_for(5_000).unwrap();
        let v = lab.node(victim);
        assert_eq!(v.tip().1, 0, "nothing of the forged chain was taken");
        assert_eq!(v.peer_count(), 0, "the banned peer is not let back in");
        // With an honest peer as well, a victim syncs the honest chain.
        let victim = lab.add_node(false, &[evil, honest]).unwrap();
        assert!(until_tip(&mut lab, victim, tip, MINUTE), "victim at {}", lab.node(victim).tip().1);
    });
}

/// A peer serving `blocks` (some tampered) as its chain, claiming it is heavy, and the
/// transaction TxPoWs `txs` on `GetTxPow`.
fn chain_server(
    genesis: Hash,
    blocks: Vec<BlockData>,
    txs: Vec<minima_core::types::TxPoW>,
) -> impl FnMut(Message) -> Option<Message> {
    move |m| {
        let find = |id: &Hash| blocks.iter().find(|b| b.txpow.id() == *id).cloned();
        Some(match m {
            Message::Hello(_) => heavy_hello(genesis, blocks.last()?.txpow.id(), u128::MAX / 2),
            Message::GetHeaders { .. } => {
                Message::Headers(blocks.iter().map(|b| b.txpow.header.clone()).collect())
            }
            Message::GetBodies(ids) => Message::Bodies(
                ids.iter()
                    .map_while(find)
                    .map(|b| BlockBody { body: b.txpow.body, witness: b.witness, listed: b.listed })
                    .collect(),
            ),
            Message::GetBlocks(ids) => Message::Blocks(ids.iter().filter_map(find).collect()),
            Message::GetTxPow(ids) => Message::TxPow(
                txs.iter().filter(|t| ids.contains(&t.id())).map(|t| (t.clone(), vec![])).collect(),
            ),
            _ => return None,
        })
    }
}

/// net_hostile's `a_bad_pow_header_or_a_wrong_mmr_witness_gets_the_server_banned`.
#[test]
fn a_bad_pow_header_or_a_wrong_mmr_witness_gets_the_server_banned() {
    each_seed(|| {
        let mut b = ChainBuilder::new(Params::devnet(), T0, 100);
        b.mine(40);
        let data = block_data(b.blocks());
        let genesis = b.chain.genesis_id();
        // A nonce changed changes the block's id: the next header no longer links to it.
        let tampered: Vec<(&str, &str, Vec<BlockData>)> = vec![
            ("bad proof of work", "headers that do not form a chain", {
                let mut v = data.clone();
                v[20].txpow.header.nonce = [0x11; 32];
                v
            }),
            ("wrong MMR witness", "block MMR witness is invalid", {
                let mut v = data.clone();
                let w = &mut v[20].witness;
                assert!(!w.inputs.is_empty(), "block 21 spends a coin");
                w.inputs[0].leaf_index += 1;
                v
            }),
        ];
        for (name, why, blocks) in tampered {
            let mut lab = lab(&b.params, 4_000);
            let honest = honest_node(&mut lab, &b);
            let tip = lab.node(honest).tip().0;
            let evil = lab.add_script(chain_server(genesis, blocks, vec![]));
            let victim = lab.add_node(false, &[evil]).unwrap();
            banned_for(&mut lab, victim, evil, why, MINUTE);
            let h = lab.node(victim).tip().1;
            assert!(h < 21, "{name}: nothing from the bad block on was taken (at {h})");
            // With the honest peer too, a victim reaches the honest tip.
            let victim = lab.add_node(false, &[evil, honest]).unwrap();
            assert!(until_tip(&mut lab, victim, tip, MINUTE), "{name}: honest tip");
        }
    });
}

/// net_hostile's `an_inflated_cascade_is_refused_and_its_sender_banned`.
#[test]
fn an_inflated_cascade_is_refused_and_its_sender_banned() {
    each_seed(|| {
        let mut b = ChainBuilder::new(Params::devnet(), T0, 1_000);
        b.tx_per_block = false;
        b.mine(400);
        let chain = &b.chain;
        let root = chain.root();
        let honest = chain.cascade().headers();
        // Far more headers than any cascade can hold (levels × per level), from real blocks.
        let cap = b.params.cascade_per_level * b.params.cascade_levels as usize;
        let headers: Vec<_> = honest.iter().cycle().take(cap + 100).cloned().collect();
        let inflated = cascade_of(chain, headers);
        let mut lab = lab(&b.params, 400_000);
        let evil = lab.add_script(evil_server(
            chain.genesis_id(),
            Message::Headers(vec![root.txpow.header.clone()]),
            inflated,
        ));
        let victim = lab.add_node(false, &[evil]).unwrap();
        banned_for(&mut lab, victim, evil, "more headers than levels × per level", MINUTE);
        assert_eq!(lab.node(victim).tip().1, 0, "nothing taken");
    });
}

/// net_hostile's `block_numbers_near_the_integer_limit_are_refused_and_their_sender_banned`:
/// a sync peer claiming the heaviest possible chain and serving block numbers near
/// `u64::MAX` once crashed the chain actor through an overflow in pruning.
#[test]
fn block_numbers_near_the_integer_limit_are_refused_and_their_sender_banned() {
    each_seed(|| {
        let b = ChainBuilder::new(Params::devnet(), T0, 100);
        let params = b.params.clone();
        let genesis = b.chain.genesis_id();
        let (headers, root, child) = minima_core::fixture::overflow_chain(&params);
        let cascade = Message::Cascade {
            headers,
            root: Box::new(BlockData { txpow: root.clone(), witness: Default::default(), listed: vec![] }),
            root_peaks: Default::default(),
        };
        let mut lab = lab(&params, 0);
        let evil = lab.add_script(move |m| match m {
            Message::Hello(_) => Some(heavy_hello(genesis, child.id(), u128::MAX)),
            Message::GetHeaders { .. } => Some(Message::Headers(vec![child.header.clone()])),
            Message::GetCascade => Some(cascade.clone()),
            Message::GetBodies(_) => Some(Message::Bodies(vec![BlockBody {
                body: child.body.clone(),
                witness: Default::default(),
                listed: vec![],
            }])),
            _ => None,
        });
        let victim = lab.add_node(false, &[evil]).unwrap();
        banned_for(&mut lab, victim, evil, "is above 2^48", MINUTE);
        assert_eq!(lab.node(victim).tip().1, 0, "nothing taken, and the node goes on");
    });
}

/// net_hostile's `a_stalling_peer_gives_up_the_catch_up_to_an_honest_one`: a peer that serves
/// the headers of a real, heavier chain and never answers for the bodies loses its turn once
/// it stalls (`net::proto::deadline::STALL`), and catch-up goes on from an honest peer.
#[test]
fn a_stalling_peer_gives_up_the_catch_up_to_an_honest_one() {
    each_seed(|| {
        let mut b = ChainBuilder::new(Params::devnet(), T0, 100);
        b.tx_per_block = false;
        b.mine(30);
        let mut lab = lab(&b.params, 3_000);
        let honest = honest_node(&mut lab, &b);
        let tip = lab.node(honest).tip().0;
        let headers: Vec<_> = b.blocks().iter().map(|(t, _)| t.header.clone()).collect();
        let genesis = b.chain.genesis_id();
        let asked = Arc::new(AtomicBool::new(false));
        // The staller: headers at once, bodies never (it holds the request open for 300 s,
        // past its timeout).
        let staller = lab.add_script(Staller {
            asked: asked.clone(),
            answer: move |m| match m {
                Message::Hello(_) => Some(heavy_hello(genesis, tip, u128::MAX / 2)),
                Message::GetHeaders { .. } => Some(Message::Headers(headers.clone())),
                _ => None,
            },
        });
        let victim = lab.add_node(false, &[staller]).unwrap();
        assert!(
            lab.run_until(MINUTE, |_| asked.load(Ordering::SeqCst)).unwrap(),
            "the staller holds a catch-up"
        );
        let at = lab.now_ms();
        lab.add_peer(victim, honest).unwrap();
        assert!(until_tip(&mut lab, victim, tip, MINUTE), "caught up: at {}", lab.node(victim).tip().1);
        // Once the stall limit (20 s) ran out, and well before a request's own 60 s timeout.
        let took = lab.now_ms() - at;
        let stall = minima_core::net::proto::deadline::STALL.as_millis() as u64;
        assert!(
            (stall - 2_000..=stall + 5_000).contains(&took),
            "caught up {took} ms after the honest peer came (stall limit {stall} ms)"
        );
    });
}

/// Answers with `answer`, but holds every `GetBodies` 300 s (past any request's timeout).
struct Staller<F> {
    asked: Arc<AtomicBool>,
    answer: F,
}

impl<F: FnMut(Message) -> Option<Message>> minima_core::sim::Script for Staller<F> {
    fn answer(&mut self, _now_ms: u64, msg: Message) -> Option<Message> {
        if matches!(msg, Message::GetBodies(_)) {
            self.asked.store(true, Ordering::SeqCst);
        }
        (self.answer)(msg)
    }
    fn delay_ms(&mut self, msg: &Message) -> u64 {
        if matches!(msg, Message::GetBodies(_)) {
            300_000
        } else {
            0
        }
    }
}

/// net_hostile's `a_sync_candidate_past_the_cap_is_aborted_and_its_sender_banned`: a peer
/// claiming its whole 2,300-block chain is tree (an empty cascade, genesis as its root) feeds
/// blocks past what any tree holds; the sync is aborted and the peer banned.
#[test]
fn a_sync_candidate_past_the_cap_is_aborted_and_its_sender_banned() {
    each_seed(|| {
        let mut b = ChainBuilder::new(Params::devnet(), T0, 3_000);
        b.tx_per_block = false;
        b.mine(2_300);
        let genesis = b.chain.genesis_id();
        let (g, _) = minima_core::chain::genesis(&b.params).unwrap();
        let data = block_data(b.blocks());
        let cascade = genesis_cascade(g);
        let evil = move |m| {
            let find = |id: &Hash| data.iter().find(|d| d.txpow.id() == *id).cloned();
            match m {
                Message::Hello(_) => Some(heavy_hello(genesis, data.last()?.txpow.id(), u128::MAX / 2)),
                Message::GetCascade => Some(cascade.clone()),
                Message::GetHeaders { locator, .. } => {
                    // From genesis or a block of its own: the next headers. From the victim's own
                    // tip: headers that do not connect, so the victim syncs from its cascade.
                    let first = *locator.first()?;
                    let start = if first == genesis {
                        0
                    } else {
                        data.iter().position(|d| d.txpow.id() == first).map(|i| i + 1).unwrap_or(100)
                    };
                    Some(Message::Headers(
                        data[start..].iter().take(2_000).map(|d| d.txpow.header.clone()).collect(),
                    ))
                }
                Message::GetBodies(ids) => Some(Message::Bodies(
                    ids.iter()
                        .map_while(find)
                        .map(|d| BlockBody { body: d.txpow.body, witness: d.witness, listed: d.listed })
                        .collect(),
                )),
                _ => None,
            }
        };
        // The victim has a short chain of its own.
        let mut own = ChainBuilder::new(Params::devnet(), T0, 3_000).with_salt(9);
        own.mine(5);
        let mut lab = lab(&b.params, 2_300 * 3_000);
        let victim = node_with(&mut lab, &own);
        let tip = lab.node(victim).tip().0;
        let evil = lab.add_script(evil);
        lab.add_peer(victim, evil).unwrap();
        banned_for(&mut lab, victim, evil, "more headers than a tree holds", 5 * MINUTE);
        assert_eq!(lab.node(victim).tip().0, tip, "nothing of its chain taken");
    });
}

/// net_hostile's `a_lighter_chain_is_dropped_on_its_headers_and_an_absurd_claim_banned`:
/// before any body of an offered chain is fetched, its headers must prove it heavier than
/// ours.
#[test]
fn a_lighter_chain_is_dropped_on_its_headers_and_an_absurd_claim_banned() {
    each_seed(|| {
        let mut b = ChainBuilder::new(Params::devnet(), T0, 3_000);
        b.tx_per_block = false;
        b.mine(5);
        let genesis = b.chain.genesis_id();
        let (g, _) = minima_core::chain::genesis(&b.params).unwrap();
        let headers: Vec<_> = b.blocks().iter().map(|(t, _)| t.header.clone()).collect();
        let cascade = genesis_cascade(g);
        let tip = b.blocks().last().unwrap().0.id();
        let bodies_asked = Arc::new(AtomicBool::new(false));
        let asked = bodies_asked.clone();
        let evil = move |m| match m {
            Message::Hello(_) => Some(heavy_hello(genesis, tip, u128::MAX / 2)),
            Message::GetCascade => Some(cascade.clone()),
            // From its root (genesis), its five headers; from the victim's locator, headers that
            // do not connect, so the victim syncs from the cascade.
            Message::GetHeaders { locator, .. } if locator.first() == Some(&genesis) => {
                Some(Message::Headers(headers.clone()))
            }
            Message::GetHeaders { .. } => Some(Message::Headers(headers[2..].to_vec())),
            Message::GetBodies(_) | Message::GetBlocks(_) => {
                asked.store(true, Ordering::SeqCst);
                Some(Message::Bodies(vec![]))
            }
            _ => None,
        };
        // The victim's own chain: fifty blocks, heavier than the peer's five.
        let mut own = ChainBuilder::new(Params::devnet(), T0, 3_000).with_salt(9);
        own.tx_per_block = false;
        own.mine(50);
        let mut lab = lab(&b.params, 50 * 3_000);
        let victim = node_with(&mut lab, &own);
        let ours = lab.node(victim).tip().0;
        let evil = lab.add_script(evil);
        lab.add_peer(victim, evil).unwrap();
        banned_for(&mut lab, victim, evil, "claimed a weight its chain does not come near", MINUTE);
        assert!(!bodies_asked.load(Ordering::SeqCst), "no body of the lighter chain was asked for");
        assert_eq!(lab.node(victim).tip().0, ours, "nothing of its chain taken");
    });
}

/// A scripted peer that dials in with `Hello(genesis)` and answers `answer`.
struct Caller<F> {
    hello: Hello,
    answer: F,
}

impl<F: FnMut(Message) -> Option<Message>> minima_core::sim::Script for Caller<F> {
    fn answer(&mut self, _now_ms: u64, msg: Message) -> Option<Message> {
        (self.answer)(msg)
    }
    fn opened(&mut self, _now_ms: u64) -> Vec<Message> {
        vec![Message::Hello(self.hello.clone())]
    }
}

/// A peer that dials `node` and answers its requests with `answer`: its index, once it is
/// connected.
fn peer_answering(
    lab: &mut Lab,
    node: usize,
    genesis: Hash,
    answer: impl FnMut(Message) -> Option<Message> + 'static,
) -> usize {
    let p = lab.add_script(Caller { hello: hello_for(genesis), answer });
    lab.connect(p, node, None);
    assert!(lab.run_until(MINUTE, |l| l.node(node).peer_count() >= 1).unwrap(), "the peer is connected");
    p
}

/// net_hostile's `a_block_over_two_hours_ahead_waits_until_due_and_nobody_is_banned` (SPEC
/// §5's clock policy): a peer's block dated more than 2 h ahead of our clock is not taken
/// while it is, nor does it cost the peer anything; it waits and is taken once due. Over
/// real sockets this waited on the wall clock; here the simulated clock runs.
#[test]
fn a_block_over_two_hours_ahead_waits_until_due_and_nobody_is_banned() {
    each_seed(|| {
        const AHEAD: u64 = 2 * 60 * 60 * 1000;
        // Block 1 is dated 2 h and 3 s ahead of the lab's clock.
        let mut fx = ChainBuilder::new(Params::devnet(), T0 + AHEAD + 3_000, 1);
        fx.tx_per_block = false;
        fx.mine(1);
        let (block, witness) = fx.blocks()[0].clone();
        let (id, due) = (block.id(), block.header.time_ms - AHEAD);
        let mut lab = lab(&fx.params, 0);
        let node = lab.add_node(true, &[]).unwrap();
        let data = [BlockData { txpow: block, witness, listed: vec![] }];
        let peer = peer_answering(&mut lab, node, fx.chain.genesis_id(), move |m| match m {
            Message::GetBlocks(ids) => Some(blocks_asked(&data, &ids)),
            _ => None,
        });
        assert!(lab.send(peer, node, Message::Inv(vec![id])));
        assert!(lab.run_until(MINUTE, |l| l.node(node).tip().1 == 1).unwrap(), "taken once due");
        assert!(lab.now_ms() >= due, "taken {} ms before it was due", due.saturating_sub(lab.now_ms()));
        assert!(lab.now_ms() <= due + 5_000, "taken {} ms after it was due", lab.now_ms() - due);
        let n = lab.node(node);
        assert_eq!((n.tip().0, n.bans()), (id, 0));
    });
}

/// A devnet fixture dated from `start`, blocks 10 ms apart, no transaction per block.
fn empty_fixture(start: u64) -> ChainBuilder {
    let mut fx = ChainBuilder::new(Params::devnet(), start, 10);
    fx.tx_per_block = false;
    fx
}

/// net_hostile's `an_orphan_block_joins_the_chain_when_its_parent_arrives`: a relayed block
/// whose parent we lack is kept (bounded, keyed by the missing parent) and joins the chain as
/// soon as the parent arrives, without being fetched again.
#[test]
fn an_orphan_block_joins_the_chain_when_its_parent_arrives() {
    each_seed(|| {
        let mut fx = empty_fixture(T0);
        fx.mine(2);
        let data = block_data(fx.blocks());
        let (parent, child) = (data[0].txpow.id(), data[1].txpow.id());
        let mut lab = lab(&fx.params, 1_000);
        let node = lab.add_node(true, &[]).unwrap();
        let (child_asked, headers_asked) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (ca, ha) = (child_asked.clone(), headers_asked.clone());
        let peer = peer_answering(&mut lab, node, fx.chain.genesis_id(), move |m| match m {
            Message::GetBlocks(ids) => {
                if ids.contains(&child) {
                    ca.fetch_add(1, Ordering::SeqCst);
                }
                Some(blocks_asked(&data, &ids))
            }
            // The catch-up the orphan starts finds nothing here.
            Message::GetHeaders { .. } => {
                ha.fetch_add(1, Ordering::SeqCst);
                Some(Message::Headers(vec![]))
            }
            _ => None,
        });
        assert!(lab.send(peer, node, Message::Inv(vec![child])));
        // The orphan was looked at (refused for its parent, which starts a catch-up) ...
        assert!(lab.run_until(MINUTE, |_| headers_asked.load(Ordering::SeqCst) >= 1).unwrap());
        assert_eq!(lab.node(node).tip().1, 0);
        // ... and joins once the parent is announced.
        assert!(lab.send(peer, node, Message::Inv(vec![parent])));
        assert!(lab.run_until(MINUTE, |l| l.node(node).tip().1 == 2).unwrap(), "the orphan joined");
        assert_eq!(child_asked.load(Ordering::SeqCst), 1, "fetched once");
        assert_eq!(lab.node(node).bans(), 0);
    });
}

/// net_hostile's `junk_orphans_and_future_blocks_are_refused_before_they_are_held`: an
/// "orphan" and a block dated days ahead, both with the easiest possible target (their proof
/// of work costs one hash), are refused and their sender banned, not kept in memory.
#[test]
fn junk_orphans_and_future_blocks_are_refused_before_they_are_held() {
    each_seed(|| {
        let mut fx = empty_fixture(T0);
        fx.mine(1);
        let mut orphan = fx.blocks()[0].0.clone();
        orphan.header.parents.0[0] = Hash([0x5a; 32]);
        orphan.header.block_number = 5;
        orphan.header.block_target = minima_core::U256::MAX;
        let mut ahead = fx.blocks()[0].0.clone();
        ahead.header.time_ms = T0 + 3 * 24 * 3_600_000;
        ahead.header.block_target = minima_core::U256::MAX;
        let genesis = fx.chain.genesis_id();
        for junk in [orphan, ahead] {
            let mut lab = lab(&fx.params, 1_000);
            let node = lab.add_node(true, &[]).unwrap();
            let id = junk.id();
            let data = [BlockData { txpow: junk, witness: Default::default(), listed: vec![] }];
            let peer = peer_answering(&mut lab, node, genesis, move |m| match m {
                Message::GetBlocks(ids) => Some(blocks_asked(&data, &ids)),
                _ => None,
            });
            assert!(lab.send(peer, node, Message::Inv(vec![id])));
            banned_for(&mut lab, node, peer, "block target differs from the difficulty rule", MINUTE);
            assert_eq!(lab.node(node).tip().1, 0);
        }
    });
}

/// net_hostile's `a_fault_in_our_own_state_never_blames_the_sender`: a peer's block that hits
/// a fault in our own state (`NodeError::Corrupt`, injected by a test hook) costs its sender
/// nothing: it stays connected, and its next block is taken.
#[test]
fn a_fault_in_our_own_state_never_blames_the_sender() {
    each_seed(|| {
        let mut fx = empty_fixture(T0);
        fx.mine(2);
        let data = block_data(fx.blocks());
        let ids: Vec<Hash> = data.iter().map(|d| d.txpow.id()).collect();
        let mut lab = lab(&fx.params, 1_000);
        let node = lab.add_node(true, &[]).unwrap();
        lab.node(node).corrupt_next_block();
        let peer = peer_answering(&mut lab, node, fx.chain.genesis_id(), move |m| match m {
            Message::GetBlocks(asked) => Some(blocks_asked(&data, &asked)),
            _ => None,
        });
        assert!(lab.send(peer, node, Message::Inv(vec![ids[0]])));
        assert!(lab.run_until(MINUTE, |l| l.node(node).tip().1 == 1).unwrap(), "block 1 added");
        // Still connected: its next block arrives and is taken.
        assert!(lab.send(peer, node, Message::Inv(vec![ids[1]])));
        assert!(
            lab.run_until(MINUTE, |l| l.node(node).tip().1 == 2).unwrap(),
            "the sender was cut off: bans {}",
            lab.node(node).bans()
        );
        assert_eq!(lab.node(node).bans(), 0);
    });
}

/// net_hostile's `pending_blocks_complete_when_their_transactions_arrive`: blocks that arrive
/// without the transaction TxPoWs they list stay pending until those are fetched from the
/// sender, then complete.
#[test]
fn pending_blocks_complete_when_their_transactions_arrive() {
    each_seed(|| {
        let mut b = ChainBuilder::new(Params::devnet(), T0, 100);
        b.tx_per_block = false;
        let mut txs = vec![];
        for _ in 0..10 {
            let t = b.make_tx().unwrap();
            txs.push(t.clone());
            b.mine_block(false, vec![t]);
        }
        // Served without their listed TxPoWs.
        let data = block_data(b.blocks());
        let mut lab = lab(&b.params, 1_000);
        let server = lab.add_script(chain_server(b.chain.genesis_id(), data, txs));
        let n = lab.add_node(false, &[server]).unwrap();
        assert!(until_tip(&mut lab, n, b.head(), MINUTE), "completed: at {}", lab.node(n).tip().1);
        assert_eq!(lab.node(n).bans(), 0);
    });
}

/// net_hostile's `a_transaction_whose_proof_names_a_block_still_on_its_way_is_taken_when_it_arrives`:
/// refused for now (a race, not misbehaviour: no ban), taken as soon as the block arrives.
#[test]
fn a_transaction_whose_proof_names_a_block_still_on_its_way_is_taken_when_it_arrives() {
    each_seed(|| {
        use minima_core::node::Event;
        // Three empty blocks; the node gets the first two, the third is "still on its way".
        let mut fx = empty_fixture(T0);
        fx.mine(3);
        let blocks = fx.take_blocks();
        let mut lab = lab(&fx.params, 1_000);
        let node = lab.add_node(true, &[]).unwrap();
        submit(&mut lab, node, &fx, &blocks[..2]);
        assert_eq!(lab.node(node).tip().1, 2);
        // A peer relays a transaction whose proof is against block 3.
        let (g, tx) = spend_free_coin(&mut fx);
        let proof = fx.coin_proof(&g.coin.coin_id).unwrap();
        assert_eq!(proof.1.block_id, blocks[2].0.id());
        let id = tx.id();
        let relay = (tx, vec![proof]);
        let peer = peer_answering(&mut lab, node, fx.chain.genesis_id(), move |m| match m {
            Message::GetBlocks(_) => Some(Message::Blocks(vec![])),
            Message::GetTxPow(ids) if ids == vec![id] => Some(Message::TxPow(vec![relay.clone()])),
            _ => None,
        });
        lab.events(node);
        assert!(lab.send(peer, node, Message::Inv(vec![id])));
        let hex = id.to_hex();
        let mut refused = false;
        lab.run_until(MINUTE, |l| {
            refused |=
                l.events(node).iter().any(|e| matches!(e, Event::TxPowRejected { id, .. } if *id == hex));
            refused
        })
        .unwrap();
        assert!(refused, "the proof names a block the node lacks");
        assert_eq!((lab.node(node).mempool_len(), lab.node(node).bans()), (0, 0));
        // ... and taken as soon as the block arrives.
        submit(&mut lab, node, &fx, &blocks[2..]);
        assert!(lab.run_until(MINUTE, |l| l.node(node).mempool_len() == 1).unwrap(), "taken");
    });
}

/// net_hostile's `fifty_fresh_identities_replaying_an_invalid_block_cost_a_handful_of_verifications`:
/// a node id is a free certificate: 50 fresh identities from one address each relay the same
/// invalid block (a signed spend whose script fails, so judging it takes a SPHINCS+
/// verification). The first judgement is remembered; replays cost a lookup, each sender is
/// banned, and the engine rations its group's new connections (the QUIC driver's pre-TLS
/// rate, not modelled here, would refuse them earlier still): a handful of verifications in
/// all.
#[test]
fn fifty_fresh_identities_replaying_an_invalid_block_cost_a_handful_of_verifications() {
    each_seed(|| {
        use minima_core::crypto::{script_address, Keypair};
        use minima_core::types::{Output, Transaction, Witness};
        let mut b = ChainBuilder::new(Params::devnet(), T0, 100);
        b.mine(5);
        let kp = Keypair::derive(&[9; 32], 0).unwrap();
        let script = format!("ASSERT SIGNEDBY(0x{})\nRETURN FALSE", hex::encode(kp.public.0));
        let pay = b.pay_to_address(script_address(&script), 1_000).unwrap();
        b.mine_block(false, vec![pay]);
        let coin = b.coins_at(&script_address(&script))[0];
        let (rec, _) = b.coin(&coin).unwrap();
        let tx = Transaction {
            version: 1,
            inputs: vec![rec.coin.clone()],
            outputs: vec![Output {
                address: script_address("RETURN TRUE"),
                amount: rec.coin.amount,
                token_id: Hash::ZERO,
                state: vec![],
            }],
            state: vec![],
        };
        let sig = kp.sign_tx(b.params.chain_id, &tx.txid());
        let t = b.make_custom_tx(tx, Witness::new(vec![(kp.public, sig)], vec![script]));
        let (block, witness) = b.candidate(false, vec![t.clone()]);
        let mut lab = lab(&b.params, 1_000);
        let node = node_with_listening(&mut lab, &b);
        let height = lab.node(node).tip().1;
        let data = BlockData { txpow: block.clone(), witness, listed: vec![t.clone()] };
        let attacker = lab.add_script(Caller {
            hello: hello_for(b.chain.genesis_id()),
            answer: move |m| match m {
                Message::GetBlocks(_) => Some(Message::Blocks(vec![data.clone()])),
                Message::GetTxPow(_) => Some(Message::TxPow(vec![(t.clone(), vec![])])),
                _ => None,
            },
        });
        let v0 = minima_core::crypto::thread_verifications();
        let mut connected = 0;
        for k in 0..50u8 {
            let before = lab.node(node).peer_count();
            lab.connect(attacker, node, Some(Hash([k; 32])));
            if lab.run_until(5_000, |l| l.node(node).peer_count() > before).unwrap() {
                connected += 1;
                assert!(lab.send(attacker, node, Message::Inv(vec![block.id()])));
                assert!(
                    lab.run_until(15_000, |l| l.node(node).peer_count() == before).unwrap(),
                    "identity {k} is cut off"
                );
            }
        }
        let spent = minima_core::crypto::thread_verifications() - v0;
        eprintln!("50 identities: {connected} connected and banned, {spent} SPHINCS+ verifications");
        assert!(connected >= 2, "the attack ran");
        assert!(connected < 50, "the group's connections are rationed: {connected} of 50 got in");
        assert!((1..=3).contains(&spent), "{spent} verifications");
        let bans = lab.bans(node);
        assert!(bans.len() >= connected && bans.iter().all(|(p, _)| *p == Some(attacker)), "{bans:?}");
        // The first for the failing script (judged with a verification), the rest for a block
        // already refused (a lookup).
        assert!(bans[0].1.contains("script of input 0 failed"), "{bans:?}");
        let replays = bans[1..].iter().filter(|(_, why)| why.contains("was already refused")).count();
        assert_eq!(replays, connected - 1, "{bans:?}");
        assert!(lab.node(node).bans() >= connected as u64);
        assert_eq!(lab.node(node).tip().1, height, "nothing taken");
    });
}

/// A listening node holding the fixture's blocks (for peers that dial in).
fn node_with_listening(lab: &mut Lab, b: &ChainBuilder) -> usize {
    honest_node(lab, b)
}

/// What a scripted peer was asked, and when (ms).
type Asked = Arc<std::sync::Mutex<Vec<(u64, String)>>>;

/// A peer that dials in and answers `GetBlocks`/`GetTxPow` with `answer`, taking `delay_ms`,
/// recording when it was asked for what.
struct Announcer<F> {
    hello: Hello,
    delay_ms: u64,
    asked: Asked,
    answer: F,
}

impl<F: FnMut(Message) -> Option<Message>> minima_core::sim::Script for Announcer<F> {
    fn answer(&mut self, now_ms: u64, msg: Message) -> Option<Message> {
        if matches!(msg, Message::GetBlocks(_) | Message::GetTxPow(_)) {
            let what = format!("{msg:?}").chars().take(12).collect();
            self.asked.lock().unwrap().push((now_ms, what));
        }
        (self.answer)(msg)
    }
    fn delay_ms(&mut self, _msg: &Message) -> u64 {
        self.delay_ms
    }
    fn opened(&mut self, _now_ms: u64) -> Vec<Message> {
        vec![Message::Hello(self.hello.clone())]
    }
}

/// net_hostile's `what_one_announcer_fails_to_deliver_is_fetched_from_the_next`: an announced
/// block is fetched once, from its first announcer; when that peer fails to deliver it, from
/// the next announcer, which was not asked before. The same for a pending transaction.
/// Nobody is punished for not delivering (it may have pruned or reorged).
#[test]
fn what_one_announcer_fails_to_deliver_is_fetched_from_the_next() {
    each_seed(|| {
        let mut fx = empty_fixture(T0);
        fx.mine(1);
        let (spent, tx) = spend_free_coin(&mut fx);
        let proof = fx.coin_proof(&spent.coin.coin_id).unwrap();
        let data = block_data(fx.blocks());
        let block = data[0].txpow.id();
        let mut lab = lab(&fx.params, 1_000);
        let node = lab.add_node(true, &[]).unwrap();
        let genesis = fx.chain.genesis_id();
        // The first announcer takes a second to answer, with nothing.
        let (first_asked, second_asked): (Asked, Asked) = Default::default();
        let first = lab.add_script(Announcer {
            hello: hello_for(genesis),
            delay_ms: 1_000,
            asked: first_asked.clone(),
            answer: |m| match m {
                Message::GetBlocks(_) => Some(Message::Blocks(vec![])),
                Message::GetTxPow(_) => Some(Message::TxPow(vec![])),
                _ => None,
            },
        });
        // The second holds both.
        let relay_tx = (tx.clone(), vec![proof]);
        let second = lab.add_script(Announcer {
            hello: hello_for(genesis),
            delay_ms: 0,
            asked: second_asked.clone(),
            answer: move |m| match m {
                Message::GetBlocks(ids) => Some(blocks_asked(&data, &ids)),
                Message::GetTxPow(ids) if ids == vec![relay_tx.0.id()] => {
                    Some(Message::TxPow(vec![relay_tx.clone()]))
                }
                Message::GetTxPow(_) => Some(Message::TxPow(vec![])),
                _ => None,
            },
        });
        for p in [first, second] {
            lab.connect(p, node, None);
        }
        assert!(lab.run_until(MINUTE, |l| l.node(node).peer_count() == 2).unwrap());
        for id in [block, tx.id()] {
            first_asked.lock().unwrap().clear();
            second_asked.lock().unwrap().clear();
            assert!(lab.send(first, node, Message::Inv(vec![id])));
            lab.run_for(100).unwrap();
            assert!(lab.send(second, node, Message::Inv(vec![id])));
            let taken = |l: &mut Lab| {
                if id == block {
                    l.node(node).tip().1 == 1
                } else {
                    l.node(node).mempool_len() == 1
                }
            };
            assert!(lab.run_until(MINUTE, taken).unwrap(), "taken from the second announcer");
            let first = first_asked.lock().unwrap().clone();
            let asked = second_asked.lock().unwrap().clone();
            // An unknown id is asked for as a block, then as a transaction; each answer (nothing)
            // comes 1 s later.
            let failed = first
                .iter()
                .find(|(_, m)| m.starts_with("GetTxPow"))
                .expect("the first announcer was asked")
                .0;
            assert!(!asked.is_empty());
            assert!(
                asked.iter().all(|(t, _)| *t >= failed),
                "the second was asked only once the first failed: {asked:?}, first {first:?}"
            );
            assert_eq!(asked.iter().filter(|(_, m)| m.starts_with("GetBlocks")).count(), 1, "{asked:?}");
        }
        assert_eq!((lab.node(node).bans(), lab.node(node).peer_count()), (0, 2), "nobody punished");
    });
}

/// net_hostile's `a_transaction_returned_by_a_reorg_is_announced_again` (issue 14's relay that
/// loses nothing): the payment was in a block of the losing branch only.
#[test]
fn a_transaction_returned_by_a_reorg_is_announced_again() {
    each_seed(|| {
        let mut base = empty_fixture(T0);
        base.mine(2);
        let mut x = base.clone().with_salt(1);
        let tx = x.make_tx().expect("a free coin");
        x.mine_block(false, vec![tx.clone()]);
        let mut y = base.clone().with_salt(2);
        y.mine(3);
        let mut lab = lab(&base.params, 1_000);
        let node = lab.add_node(true, &[]).unwrap();
        submit(&mut lab, node, &x, x.blocks());
        assert_eq!(lab.node(node).tip().0, x.head());
        assert_eq!(lab.node(node).mempool_len(), 0, "the payment is mined");
        let heard = Arc::new(std::sync::Mutex::new(Vec::<Hash>::new()));
        let h = heard.clone();
        peer_answering(&mut lab, node, base.chain.genesis_id(), move |m| {
            if let Message::Inv(ids) = m {
                h.lock().unwrap().extend(ids);
            }
            None
        });
        submit(&mut lab, node, &y, &y.blocks()[2..]);
        assert_eq!(lab.node(node).tip().0, y.head(), "reorganised onto the heavier branch");
        assert_eq!(lab.node(node).mempool_len(), 1, "the payment is pending again");
        let id = tx.id();
        assert!(
            lab.run_until(MINUTE, |_| heard.lock().unwrap().contains(&id)).unwrap(),
            "announced again: heard {:?}",
            heard.lock().unwrap()
        );
    });
}

/// Records the answers to its requests.
struct Asker {
    hello: Hello,
    answers: Arc<std::sync::Mutex<Vec<Option<Message>>>>,
}

impl minima_core::sim::Script for Asker {
    fn answer(&mut self, _now_ms: u64, _msg: Message) -> Option<Message> {
        None
    }
    fn opened(&mut self, _now_ms: u64) -> Vec<Message> {
        vec![Message::Hello(self.hello.clone())]
    }
    fn answered(&mut self, _now_ms: u64, answer: Option<Message>) {
        self.answers.lock().unwrap().push(answer);
    }
}

/// net_hostile's `an_advertised_address_is_passed_on_only_once_dialled_back`: an inbound
/// peer's advertised address is dialled back at the IP it came from and must answer with the
/// peer's own key. A liar advertising another node's address (or one where nothing listens) is
/// never passed on; an honest node's address is, once verified.
#[test]
fn an_advertised_address_is_passed_on_only_once_dialled_back() {
    each_seed(|| {
        let fx = empty_fixture(T0);
        let genesis = fx.chain.genesis_id();
        let mut lab = lab(&fx.params, 1_000);
        let a = lab.add_node(true, &[]).unwrap();
        // Another node listening (it dials nobody).
        let other = lab.add_node(true, &[]).unwrap();
        let taken = lab.node(other).listen().expect("listens");
        // A liar from the other node's IP claiming its port, and one from 10.77.0.1 claiming a
        // port where nothing answers (one dial-back per IP: each liar has its own). Each really
        // listens elsewhere on its host.
        let nothing: std::net::SocketAddr = "10.77.0.1:9001".parse().unwrap();
        for claim in [taken, nothing] {
            let mut h = hello_for(genesis);
            h.is_client = false;
            h.listen = Some(claim.to_string());
            let at = std::net::SocketAddr::new(claim.ip(), claim.port() + 1);
            let liar = lab.add_script_at(at, Caller { hello: h, answer: |_| None }).expect("a free address");
            lab.connect(liar, a, None);
        }
        // An honest node dials a: its address is verified and passed on.
        let honest = lab.add_node(true, &[a]).unwrap();
        let h_addr = lab.node(honest).listen().expect("listens").to_string();
        let answers = Arc::new(std::sync::Mutex::new(vec![]));
        let asker = lab.add_script(Asker { hello: hello_for(genesis), answers: answers.clone() });
        lab.connect(asker, a, None);
        assert!(lab.run_until(MINUTE, |l| l.node(a).peer_count() == 4).unwrap(), "all connected");
        let shared = |lab: &mut Lab| -> Vec<String> {
            answers.lock().unwrap().clear();
            assert!(lab.request(asker, a, Message::GetPeers));
            assert!(lab.run_until(MINUTE, |_| !answers.lock().unwrap().is_empty()).unwrap());
            match answers.lock().unwrap().pop() {
                Some(Some(Message::Peers(p))) => p,
                other => panic!("{other:?}"),
            }
        };
        let mut verified = false;
        for _ in 0..30 {
            if shared(&mut lab).contains(&h_addr) {
                verified = true;
                break;
            }
            lab.run_for(1_000).unwrap();
        }
        assert!(verified, "honest shared");
        // The liars' probes ended long before (a refused key, or no answer in 10 s).
        lab.run_for(11_000).unwrap();
        assert_eq!(shared(&mut lab), vec![h_addr], "only the verified address");
        assert_eq!(lab.node(a).peer_count(), 4, "nobody was cut off for it");
        assert_eq!(lab.node(a).bans(), 0);
    });
}

/// `rounds` times: 10 s pass, the honest node mines a block, and within 5 s the victim holds
/// the honest tip.
fn mine_and_follow(lab: &mut Lab, honest: usize, victim: usize, rounds: usize) {
    for _ in 0..rounds {
        lab.run_for(10_000).unwrap();
        lab.mine(honest).unwrap().expect("the honest node mines");
        let tip = lab.node(honest).tip().0;
        assert!(until_tip(lab, victim, tip, 5_000), "the victim follows the honest tip");
    }
}

/// Serves `GetTxPow` from `txs` (and no block), dialling in with `Hello(genesis)`.
fn tx_server(
    genesis: Hash,
    txs: std::collections::HashMap<Hash, minima_core::net::message::RelayTxPow>,
) -> Caller<impl FnMut(Message) -> Option<Message>> {
    Caller {
        hello: hello_for(genesis),
        answer: move |m| match m {
            Message::GetBlocks(_) => Some(Message::Blocks(vec![])),
            Message::GetTxPow(ids) => {
                Some(Message::TxPow(ids.iter().filter_map(|i| txs.get(i).cloned()).collect()))
            }
            _ => None,
        },
    }
}

/// net_hostile's `transaction_floods_are_scored_and_cut_off_while_the_honest_chain_is_followed`:
/// a flood below minimum work is scored and cut off; one transaction re-wrapped in 1,000
/// TxPoWs enters once and costs the relayer nothing (an honest relayer may hold another's
/// wrapping); the victim follows the honest miner throughout.
#[test]
fn transaction_floods_are_scored_and_cut_off_while_the_honest_chain_is_followed() {
    each_seed(|| {
        let mut p = Params::devnet();
        p.genesis.time_ms = T0;
        let mut lab = lab(&p, 1_000);
        let honest = lab.add_node(true, &[]).unwrap();
        let victim = lab.add_node(true, &[honest]).unwrap();
        assert!(lab.run_until(MINUTE, |l| l.node(victim).peer_count() == 1).unwrap());
        for _ in 0..3 {
            lab.mine(honest).unwrap().expect("the honest node mines");
            lab.run_for(5_000).unwrap();
        }
        assert_eq!(lab.node(victim).tip().1, 3, "victim follows");
        let genesis = minima_core::chain::genesis(&p).unwrap().0.id();
        // One transaction spending the genesis coin (`RETURN TRUE` on devnet).
        let mut fx = ChainBuilder::new(p.clone(), T0, 0);
        let (_, base) = spend_free_coin(&mut fx);
        let (_, gmmr) = minima_core::chain::genesis(&p).unwrap();
        let proof = |lab: &mut Lab| vec![(0u64, gmmr.proof(0, lab.node(victim).tip().0).unwrap())];

        // 1. A flood below minimum work: each costs the sender 20 points; banned by the fifth.
        let mut weak = std::collections::HashMap::new();
        for i in 0..20u8 {
            let mut t = base.clone();
            t.body.prng = [i; 32];
            t.header.body_hash = t.body.hash();
            // Not mined: a nonce whose id misses the transaction target.
            for n in 0u8..=255 {
                t.header.nonce = [n; 32];
                if minima_core::chain::validate::check_txpow(&p, &t).is_err() {
                    break;
                }
            }
            weak.insert(t.id(), (t, proof(&mut lab)));
        }
        let mut ids: Vec<Hash> = weak.keys().copied().collect();
        ids.sort();
        let flooder = lab.add_script(tx_server(genesis, weak));
        lab.connect(flooder, victim, None);
        assert!(lab.run_until(MINUTE, |l| l.node(victim).peer_count() == 2).unwrap());
        assert!(lab.send(flooder, victim, Message::Inv(ids)));
        // The honest node goes on mining through the flood, and the victim follows it.
        mine_and_follow(&mut lab, honest, victim, 3);
        banned_for(&mut lab, victim, flooder, "proof of work meets neither target", MINUTE);
        assert_eq!(lab.node(victim).peer_count(), 1, "the weak-work flooder is cut off");
        assert_eq!(lab.node(victim).mempool_len(), 0, "nothing below minimum work entered the mempool");

        // 2. One transaction re-wrapped in 1,000 TxPoWs: one enters; the rest are duplicates,
        // refused before any proof or script is checked. No ban.
        let mut wraps = std::collections::HashMap::new();
        let pr = proof(&mut lab);
        for i in 0..1_000u32 {
            let mut t = base.clone();
            t.body.prng[..4].copy_from_slice(&i.to_be_bytes());
            t.body.prng[4] = 0xaa;
            ChainBuilder::reseal(&mut t, true);
            wraps.insert(t.id(), (t, pr.clone()));
        }
        let mut ids: Vec<Hash> = wraps.keys().copied().collect();
        ids.sort();
        let wrapper = lab.add_script(tx_server(genesis, wraps));
        lab.connect(wrapper, victim, None);
        assert!(lab.run_until(MINUTE, |l| l.node(victim).peer_count() == 2).unwrap());
        lab.events(victim);
        for chunk in ids.chunks(64) {
            assert!(lab.send(wrapper, victim, Message::Inv(chunk.to_vec())));
        }
        // Mined or not (the victim relays it; the honest node may mine it), one wrapping was
        // taken, once.
        let mut taken: Vec<String> = vec![];
        let mut keep = |lab: &mut Lab| {
            taken.extend(lab.events(victim).into_iter().filter_map(|e| match e {
                minima_core::node::Event::TxPowAccepted { id } => Some(id),
                _ => None,
            }))
        };
        for _ in 0..6 {
            mine_and_follow(&mut lab, honest, victim, 1);
            keep(&mut lab);
        }
        let wrappings: Vec<&String> =
            taken.iter().filter(|id| ids.iter().any(|w| w.to_hex() == **id)).collect();
        assert_eq!(wrappings.len(), 1, "one wrapping taken, once: {wrappings:?}");
        assert!(lab.node(victim).mempool_len() <= 1);
        assert_eq!(lab.node(victim).bans(), 1, "duplicates cost the relayer nothing");
        assert_eq!(lab.node(victim).peer_count(), 2, "the re-wrapper stays connected");
    });
}
