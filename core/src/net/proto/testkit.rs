//! Test support for the engine's units: our side as a real [`Chain`] that fully validates
//! what it is offered, and a peer as a fixture chain of real blocks answering requests as a
//! node serves them.

use std::collections::HashMap;

use std::time::Duration;

use super::chain::{ChainSink, Submitted};
use super::Time;
use crate::chain::{AddOutcome, Chain};
use crate::crypto::Hash;
use crate::fixture::ChainBuilder;
use crate::mmr::MmrProof;
use crate::net::message::RelayTxPow;
use crate::net::message::{BlockBody, BlockData, Message};
use crate::net::proto::chain::{SyncFault, SyncOutcome, SyncStart, TxRefusal};
use crate::params::Params;
use crate::types::TxHeader;
use crate::types::{CoinRecord, TxPoW};

pub const NOW_MS: u64 = 1_800_000_000_000;

/// Our node's chain side: a real chain; blocks are offered as the engine offers them.
pub struct Ours {
    pub chain: Chain,
    pub txpows: HashMap<Hash, TxPoW>,
    pub offered: usize,
}

impl Ours {
    pub fn new(params: Params) -> Ours {
        Ours { chain: Chain::new(params).expect("chain"), txpows: HashMap::new(), offered: 0 }
    }
}

impl ChainSink for Ours {
    fn hello(&mut self) -> (Hash, Hash, u128) {
        (self.chain.genesis_id(), self.chain.tip_id(), self.chain.weight())
    }
    fn has(&mut self, id: &Hash) -> bool {
        self.chain.knows(id)
    }
    fn headers(&mut self, locator: &[Hash], max: u32) -> Vec<TxHeader> {
        self.chain.headers_after(locator, max as usize)
    }
    fn locator(&mut self) -> Vec<Hash> {
        self.chain.locator(crate::net::message::MAX_LOCATOR)
    }
    fn submit(&mut self, b: BlockData) -> Submitted {
        self.offered += 1;
        if !self.chain.knows(&b.txpow.header.parents.0[0]) {
            return Submitted::UnknownParent;
        }
        for t in b.listed {
            self.txpows.insert(t.id(), t);
        }
        match self.chain.add_block(b.txpow, b.witness, &self.txpows) {
            Ok(AddOutcome::Pending { missing }) => Submitted::Pending(missing),
            Ok(_) => Submitted::Accepted,
            Err(e) => Submitted::Invalid(e.to_string()),
        }
    }
    fn submit_tx(&mut self, _: RelayTxPow) -> Result<(), TxRefusal> {
        unreachable!("a sync job offers no transaction")
    }
    fn check_coin_proofs(&mut self, _: &[(CoinRecord, MmrProof)]) -> Result<(), TxRefusal> {
        unreachable!("a sync job checks no coin proof")
    }
    fn sync_begin(&mut self, _: Message) -> Result<SyncStart, SyncFault> {
        Err(SyncFault::Invalid("these tests run catch-ups only".into()))
    }
    fn sync_blocks(&mut self, _: Vec<BlockData>, _: u64) -> Result<(), SyncFault> {
        Err(SyncFault::Invalid("these tests run catch-ups only".into()))
    }
    fn sync_end(&mut self, _: Vec<u8>) -> SyncOutcome {
        SyncOutcome::NotHeavier
    }
    fn peer_up(&mut self, _: Vec<u8>, _: Hash, _: u128) {}
    fn record_peer(&mut self, _: std::net::SocketAddr) {}
    fn anchors(&mut self, _: Vec<std::net::SocketAddr>) {}
    fn clock_ms(&mut self) -> u64 {
        NOW_MS
    }
}

/// The peer: a fixture chain of `n` blocks, serving headers, bodies and TxPoWs.
pub fn peer_chain(n: u64) -> ChainBuilder {
    let mut b = ChainBuilder::new(Params::devnet(), NOW_MS, n);
    b.mine(n);
    b
}

pub fn serve(peer: &ChainBuilder, msg: &Message) -> Message {
    match msg {
        Message::GetHeaders { locator, max } => {
            Message::Headers(peer.chain.headers_after(locator, *max as usize))
        }
        Message::GetBodies(ids) => {
            let by_id: HashMap<Hash, _> = peer.blocks().iter().map(|(t, w)| (t.id(), (t, w))).collect();
            let bodies = ids
                .iter()
                .map_while(|id| by_id.get(id))
                .map(|(t, w)| BlockBody {
                    body: t.body.clone(),
                    witness: (*w).clone(),
                    listed: t.body.txpow_ids.iter().filter_map(|i| peer.txpows().get(i).cloned()).collect(),
                })
                .collect();
            Message::Bodies(bodies)
        }
        Message::GetBlocks(ids) => {
            let listed =
                |t: &TxPoW| t.body.txpow_ids.iter().filter_map(|i| peer.txpows().get(i).cloned()).collect();
            let blocks = peer
                .blocks()
                .iter()
                .filter(|(t, _)| ids.contains(&t.id()))
                .map(|(t, w)| BlockData { txpow: t.clone(), witness: w.clone(), listed: listed(t) })
                .collect();
            Message::Blocks(blocks)
        }
        Message::GetTxPow(ids) => Message::TxPow(
            ids.iter()
                .filter_map(|i| peer.txpows().get(i).map(|t| (t.clone(), Default::default())))
                .collect(),
        ),
        other => panic!("the test peer does not answer {other:?}"),
    }
}

/// The moment `s` seconds after the origin.
pub fn t(s: u64) -> Time {
    Time::from_origin(Duration::from_secs(s))
}
