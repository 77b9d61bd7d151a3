//! Hostile peers over real QUIC: a peer serving a forged cascade is banned and the node syncs
//! from an honest one; a peer sending an oversized frame is cut off, banned, and cannot come
//! back.

mod common;
use common::{start_net, wait_until};

fn start_net_off(dir: &std::path::Path, params: &Params, listen: bool, peers: Vec<SocketAddr>) -> Node {
    start_net(dir, params, listen, peers, Mining::Off)
}

use std::net::SocketAddr;
use std::time::Duration;

use minima_core::crypto::Hash;
use minima_core::net::message::{BlockData, Hello, Message, PROTOCOL_VERSION};

use minima_core::fixture::ChainBuilder;
use minima_core::net::transport::{self, Identity, Timing};
use minima_core::node::{Mining, Node};
use minima_core::Params;

/// A scripted peer that claims a heavy chain: its headers do not connect to the victim's, and
/// it answers `GetCascade` with `forged`.
fn evil_server(rt: &tokio::runtime::Runtime, genesis: Hash, headers: Message, forged: Message) -> SocketAddr {
    let _g = rt.enter();
    let id = Identity::ephemeral().unwrap();
    let ep = quinn::Endpoint::server(
        transport::server_config(&id, Timing::default()).unwrap(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .unwrap();
    let addr = ep.local_addr().unwrap();
    rt.spawn(async move {
        while let Some(inc) = ep.accept().await {
            let (headers, forged) = (headers.clone(), forged.clone());
            tokio::spawn(async move {
                let Ok(conn) = inc.await else { return };
                while let Ok((mut s, mut r)) = conn.accept_bi().await {
                    let (headers, forged) = (headers.clone(), forged.clone());
                    tokio::spawn(async move {
                        let Ok(m) = transport::read_msg(&mut r).await else { return };
                        let answer = match m {
                            Message::Hello(_) => Message::Hello(Hello {
                                version: PROTOCOL_VERSION,
                                chain_id: 2,
                                genesis,
                                tip: Hash([9; 32]),
                                tip_weight: u128::MAX / 2,
                                time_ms: 0,
                                listen: None,
                                is_client: false,
                                want_txs: false,
                                serves_blocks: true,
                                full_mmr: false,
                            }),
                            Message::GetHeaders { .. } => headers,
                            Message::GetCascade => forged,
                            _ => return,
                        };
                        let _ = transport::write_msg(&mut s, &answer).await;
                        let _ = s.finish();
                    });
                }
            });
        }
    });
    addr
}

#[test]
fn forged_cascade_is_refused_and_the_honest_chain_wins() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut b = ChainBuilder::new(Params::devnet(), 1_800_000_000_000, 1_000);
    let params = b.params.clone();
    b.tx_per_block = false;
    b.mine(400);
    let honest = start_net_off(&dir.path().join("honest"), &params, true, vec![]);
    for (t, w) in b.take_blocks() {
        honest.submit_block(t, w, vec![]).unwrap();
    }
    let chain = &b.chain;
    let root = chain.root();
    let mut headers = chain.cascade().headers();
    headers.remove(5); // a missing header: the links break
    let forged = Message::Cascade {
        headers,
        root: Box::new(BlockData {
            txpow: root.txpow.clone(),
            witness: root.witness.clone(),
            listed: vec![],
        }),
        root_peaks: root.peaks.clone(),
    };
    let evil =
        evil_server(&rt, chain.genesis_id(), Message::Headers(vec![root.txpow.header.clone()]), forged);
    // A victim that knows only the evil peer refuses its cascade and bans it.
    let vdir = dir.path().join("victim");
    let victim = start_net_off(&vdir, &params, false, vec![evil]);
    assert!(wait_until(Duration::from_secs(30), || victim.status().unwrap().bans >= 1), "evil peer banned");
    std::thread::sleep(Duration::from_millis(600));
    let s = victim.status().unwrap();
    assert_eq!(s.height, 0, "nothing of the forged chain was taken");
    assert_eq!(s.peers, 0, "the banned peer is not let back in");
    victim.stop(Duration::from_secs(5)).unwrap();
    drop(victim);
    // With an honest peer as well, it syncs the honest chain.
    let victim = start_net_off(&vdir, &params, false, vec![evil, honest.net_addr().unwrap()]);
    let tip = honest.status().unwrap().tip;
    assert!(
        wait_until(Duration::from_secs(60), || victim.status().unwrap().tip == tip),
        "victim at {}",
        victim.status().unwrap().height
    );
    victim.stop(Duration::from_secs(5)).unwrap();
    honest.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn an_oversized_frame_gets_the_sender_banned() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut b = ChainBuilder::new(Params::devnet(), 1_800_000_000_000, 100);
    b.mine(10);
    let node = start_net_off(&dir.path().join("n"), &b.params, true, vec![]);
    for (t, w) in b.take_blocks() {
        node.submit_block(t, w, vec![]).unwrap();
    }
    let addr = node.net_addr().unwrap();
    let id = Identity::ephemeral().unwrap();
    let closed_code = rt.block_on(async {
        let mut ep = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        ep.set_default_client_config(transport::client_config(&id, Timing::default()).unwrap());
        let conn = ep.connect(addr, "minima").unwrap().await.unwrap();
        let (mut s, _r) = conn.open_bi().await.unwrap();
        // Claims 4 GiB of Inv: refused from the header, before any allocation.
        s.write_all(&[0xff, 0xff, 0xff, 0xff, 2]).await.unwrap();
        let _ = s.finish();
        let e = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.unwrap();
        // Reconnecting with the same identity is refused at once.
        let again = ep.connect(addr, "minima").unwrap().await.unwrap();
        let e2 = tokio::time::timeout(Duration::from_secs(10), again.closed()).await.unwrap();
        (format!("{e}"), format!("{e2}"))
    });
    assert!(closed_code.0.contains("bad frame"), "{}", closed_code.0);
    assert!(closed_code.1.contains("banned"), "{}", closed_code.1);
    // The node is fine.
    assert_eq!(node.status().unwrap().height, 10);
    node.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn inbound_connections_are_capped_and_rate_limited_per_group() {
    use minima_core::net::peer::NetConfig;
    use minima_core::node::Config;
    let dir = tempfile::tempdir().unwrap();
    let mut b = ChainBuilder::new(Params::devnet(), 1_800_000_000_000, 100);
    b.mine(3);
    let mut cfg = Config::new(dir.path().join("a"), b.params.clone());
    cfg.mining = Mining::Off;
    cfg.net = Some(NetConfig {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        max_inbound: 1,
        group_rate_per_min: 3,
        ..Default::default()
    });
    let a = Node::start(cfg).unwrap();
    let addr = a.net_addr().unwrap();
    let p = b.params.clone();
    let c1 = start_net_off(&dir.path().join("c1"), &p, false, vec![addr]);
    assert!(wait_until(Duration::from_secs(20), || a.status().unwrap().peers == 1));
    let c2 = start_net_off(&dir.path().join("c2"), &p, false, vec![addr]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(a.status().unwrap().peers, 1, "the cap holds");
    assert_eq!(c2.status().unwrap().peers, 0, "the second client was refused");
    // The group's rate: c2's retries (200 ms, doubling) used up 127.0.0/24's allowance of 3 a
    // minute, so after c1 leaves, c2's next retries (within 8 s) are still refused. Without the
    // limit, the free slot would let it in on its next retry.
    c1.stop(Duration::from_secs(5)).unwrap();
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(c2.status().unwrap().peers, 0, "rate-limited group");
    c2.stop(Duration::from_secs(5)).unwrap();
    a.stop(Duration::from_secs(5)).unwrap();
}
