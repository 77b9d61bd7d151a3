//! Hostile peers over real QUIC: a peer sending an oversized frame is cut off and banned, and
//! cannot come back. (A forged cascade is refused by `Cascade::verify`, tested in
//! `chain_rules.rs`; its network-level test with a scripted evil peer is still to come.)

use std::net::SocketAddr;
use std::time::Duration;

use minima_core::fixture::ChainBuilder;
use minima_core::net::peer::NetConfig;
use minima_core::net::transport::{self, Identity, Timing};
use minima_core::node::{Config, Mining, Node};
use minima_core::Params;

fn start(dir: &std::path::Path, params: &Params, listen: bool, peers: Vec<SocketAddr>) -> Node {
    let mut cfg = Config::new(dir, params.clone());
    cfg.mining = Mining::Off;
    cfg.net = Some(NetConfig {
        listen: listen.then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        peers,
        backoff: Duration::from_millis(200),
        ..Default::default()
    });
    Node::start(cfg).unwrap()
}

#[test]
fn an_oversized_frame_gets_the_sender_banned() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut b = ChainBuilder::new(Params::devnet(), 1_800_000_000_000, 100);
    b.mine(10);
    let node = start(&dir.path().join("n"), &b.params, true, vec![]);
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
