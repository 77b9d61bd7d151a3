//! A node for the network simulator (feature `sim`): the production chain actor — chain,
//! mempool, wallet, the real [`Store`] on an in-memory SQLite database — and its protocol
//! engine, driven by calls instead of channels, sockets and timers. The simulator owns the
//! clock ([`Clock::Set`]), carries the engine's outputs between nodes, serves reads with
//! [`SimNode::serve`] (as the QUIC driver does, off the actor) and decides which node finds the
//! next block ([`SimNode::mine`] then mines it for real).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{broadcast, oneshot};

use super::wallet::{key_of, WalletCmd};
use super::{jobs_config, serve, Actor, Clock, Config, Event, Mining, NodeError, Template};
use crate::crypto::{Hash, Keypair};
use crate::miner::{prepared_state, tail_id, Found};
use crate::net::message::Message;
use crate::net::peer::NetConfig;
use crate::net::proto::engine::{Input, Output};
use crate::net::proto::time::Time;
use crate::params::Params;
use crate::store::Store;
use crate::wallet::spend::sign_and_mine_with;
use crate::wallet::{Balance, Draft, HistoryEntry, Seed, WalletError, WalletKey};

/// How a simulated node is set up.
#[derive(Debug, Clone)]
pub struct SimSetup {
    /// Network parameters.
    pub params: Params,
    /// Name of its in-memory database (unique in the process).
    pub store_name: String,
    /// The simulator's clock.
    pub clock: Clock,
    /// Its node id (what its TLS key would prove).
    pub node_id: Hash,
    /// Peering: `listen` (`None`: a phone, dial-only), configured `peers`, outbound target,
    /// transaction announcements wanted, online at start.
    pub net: NetConfig,
    /// Keep the whole coin set.
    pub full_mmr: bool,
    /// Randomness of its mesh (address choices).
    pub mesh_seed: [u8; 32],
    /// Mixed into its block templates.
    pub salt: u64,
}

/// A simulated node.
pub struct SimNode {
    actor: Actor,
    reads: serve::Served,
    events: broadcast::Receiver<Event>,
    node_id: Hash,
    seed: Option<Seed>,
    keypairs: HashMap<u32, Arc<Keypair>>,
    txn_work: u128,
}

impl SimNode {
    /// A fresh node at genesis.
    pub fn new(s: SimSetup) -> Result<SimNode, NodeError> {
        s.params.check()?;
        let mut cfg = Config::new(PathBuf::new(), s.params.clone());
        cfg.mining = Mining::Off;
        cfg.full_mmr = s.full_mmr;
        cfg.mempool_bytes = 8 << 20;
        cfg.net = Some(s.net.clone());
        let (genesis, _) = crate::chain::genesis(&s.params)?;
        let store = Store::open_memory(&s.store_name, s.params.name, &genesis.id())?;
        let (tx, events) = broadcast::channel(4096);
        let mut actor = Actor::load(&cfg, s.clock.clone(), store, tx)?;
        actor.salt = s.salt;
        if !s.net.peers.is_empty() || !s.net.reached.is_empty() {
            // As a real node with peers to reach: nothing mined before a first sync.
            actor.synced = false;
            actor.synced_at = None;
        }
        let reads = serve::Served::new(actor.store.serve_reader()?, s.full_mmr);
        let local = crate::net::peer::Local {
            chain_id: s.params.chain_id,
            full_mmr: s.full_mmr,
            reads: std::sync::Arc::new(serve::Served::new(actor.store.serve_reader()?, s.full_mmr)),
        };
        let engine = crate::net::peer::engine_for(
            &s.net,
            s.net.listen,
            s.node_id,
            &local,
            jobs_config(&s.params),
            s.mesh_seed,
            s.clock.moment(),
        );
        actor.engine = Some(engine);
        actor.outbox = Some(vec![]);
        actor.announces = Some(vec![]);
        actor.listen = s.net.listen.map(|a| a.to_string());
        Ok(SimNode {
            actor,
            reads,
            events,
            node_id: s.node_id,
            seed: None,
            keypairs: HashMap::new(),
            txn_work: cfg.txn_work,
        })
    }

    /// Its node id.
    pub fn node_id(&self) -> Hash {
        self.node_id
    }

    /// Give the engine an input; returns what it asks of the network. A storage failure is an
    /// error (the node would stop).
    pub fn handle(&mut self, input: Input) -> Result<Vec<Output>, NodeError> {
        self.actor.run_engine(input);
        self.outputs()
    }

    /// Run what is due at the clock's time: the engine's timers and held blocks now due.
    pub fn tick(&mut self) -> Result<Vec<Output>, NodeError> {
        self.actor.run_engine(Input::Tick);
        self.actor.retry_future()?;
        self.outputs()
    }

    fn outputs(&mut self) -> Result<Vec<Output>, NodeError> {
        self.actor.flush_announces();
        if let Some(e) = self.actor.fatal.take() {
            return Err(e);
        }
        Ok(self.actor.outbox.as_mut().map(std::mem::take).unwrap_or_default())
    }

    /// When [`SimNode::tick`] is next due (`None`: nothing waits on time), as the engine's
    /// moment ([`Clock::moment`]).
    pub fn poll_timeout(&self) -> Option<Time> {
        let held = self
            .actor
            .future
            .next_due_in(self.actor.clock.now_ms())
            .map(|ms| self.actor.clock.moment() + std::time::Duration::from_millis(ms));
        let engine = self.actor.engine.as_ref().and_then(|e| e.poll_timeout());
        [held, engine].into_iter().flatten().min()
    }

    /// The answer to a read request, served from the store as the QUIC driver serves it
    /// (`None`: nothing to send).
    pub fn serve(&self, msg: Message) -> Option<Message> {
        crate::net::peer::serve_read(&self.reads, msg)
    }

    /// Whether the request is a read the driver serves itself ([`SimNode::serve`]).
    pub fn is_read(msg: &Message) -> bool {
        crate::net::peer::is_read(msg)
    }

    /// Find the next block on our tip and take it, as our miner would: the template mined for
    /// real at its target. Its id (`None`: this node may not mine yet, not synced with a peer)
    /// and what the engine then asks of the network.
    pub fn mine(&mut self) -> Result<(Option<Hash>, Vec<Output>), NodeError> {
        if !self.actor.sync_gate() {
            return Ok((None, vec![]));
        }
        let (mut header, t) = self.actor.build_template()?;
        let base = prepared_state(&header.prefix_hash());
        let target = header.block_target;
        let mut nonce = [0u8; 32];
        let id = (0u64..)
            .find_map(|n| {
                nonce[..8].copy_from_slice(&n.to_be_bytes());
                let id = tail_id(&base, &nonce);
                crate::chain::pow::meets(&id, &target).then_some(id)
            })
            .unwrap_or_default();
        header.nonce = nonce;
        self.actor.tag += 1;
        let tag = self.actor.tag;
        self.actor.template = Some(Template { tag, ..t });
        self.actor.on_mined(Found { header, id, tag })?;
        let taken = (self.actor.chain.tip_id() == id).then_some(id);
        Ok((taken, self.outputs()?))
    }

    /// Take a block as `Node::submit_block` does (a host's own block, not a peer's): what it
    /// did and what the engine then asks of the network.
    pub fn submit_block(
        &mut self,
        txpow: crate::types::TxPoW,
        witness: crate::mmr::BlockWitness,
        listed: Vec<crate::types::TxPoW>,
    ) -> Result<(crate::chain::AddOutcome, Vec<Output>), NodeError> {
        let r = self.actor.on_block(txpow, witness, listed)?;
        Ok((r, self.outputs()?))
    }

    /// Test hook: the next block taken fails as if our own state were corrupt (see
    /// `Node::corrupt_next_block`).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn corrupt_next_block(&mut self) {
        self.actor.corrupt_next = true;
    }

    /// Ids of the blocks on our best chain's tree path (tip down to the tree root).
    pub fn best_path(&self) -> std::collections::HashSet<Hash> {
        let c = &self.actor.chain;
        let mut out = std::collections::HashSet::new();
        let mut at = c.block(&c.tip_id());
        while let Some(b) = at {
            out.insert(b.id);
            at = c.block(&b.parent());
        }
        out
    }

    /// Our tip: (id, height, chain weight).
    pub fn tip(&self) -> (Hash, u64, u128) {
        let t = self.actor.chain.tip();
        (t.id, t.number(), self.actor.chain.weight())
    }

    /// Transactions in our mempool.
    pub fn mempool_len(&self) -> usize {
        self.actor.mempool.len()
    }

    /// Whether our tree holds block `id`.
    pub fn has_block(&self, id: &Hash) -> bool {
        self.actor.chain.block(id).is_some()
    }

    /// Whether we have synced with a peer (or had none to reach) and so may mine.
    pub fn is_synced(&self) -> bool {
        self.actor.synced
    }

    /// Peers with a completed handshake.
    pub fn peer_count(&self) -> usize {
        self.actor.engine.as_ref().map_or(0, |e| e.peer_count())
    }

    /// Bans issued since start.
    pub fn bans(&self) -> u64 {
        self.actor.engine.as_ref().map_or(0, |e| e.bans())
    }

    /// The listen address, if any.
    pub fn listen(&self) -> Option<SocketAddr> {
        self.actor.listen.as_deref().and_then(|l| l.parse().ok())
    }

    /// Open a wallet with `seed`, which this node keeps (as a host that holds its seed);
    /// `key0`, if given, is its key 0 already derived (derivation costs a SPHINCS+ key
    /// generation: a simulator reuses keys between runs).
    pub fn open_wallet(&mut self, seed: Seed, key0: Option<Arc<Keypair>>) -> Result<(), NodeError> {
        let first = match key0 {
            Some(k) => {
                let first = WalletKey {
                    index: 0,
                    public: k.public,
                    address: k.public.default_address(),
                    used: false,
                };
                self.keypairs.insert(0, k);
                first
            }
            None => key_of(&seed, 0)?,
        };
        let fingerprint = crate::wallet::fingerprint(&seed);
        self.call(|reply| WalletCmd::Open { fingerprint, first, reply })??;
        self.seed = Some(seed);
        Ok(())
    }

    /// The wallet's first address (every payment to this node goes there).
    pub fn address(&mut self) -> Result<Hash, NodeError> {
        let keys = self.call(WalletCmd::Keys)??;
        keys.first().map(|k| k.address).ok_or_else(|| WalletError::NoWallet.into())
    }

    /// The wallet's balances.
    pub fn balance(&mut self) -> Result<Balance, NodeError> {
        self.call(WalletCmd::Balance)?
    }

    /// The wallet's history, newest first.
    pub fn history(&mut self) -> Result<Vec<HistoryEntry>, NodeError> {
        self.call(WalletCmd::History)?
    }

    /// Claim the genesis coin (`RETURN TRUE`'s) into the wallet: the claim's txid (`None`:
    /// nothing to claim) and what the engine asks of the network.
    pub fn claim_genesis(&mut self) -> Result<(Option<Hash>, Vec<Output>), NodeError> {
        let Some(draft) = self.call(WalletCmd::GenesisClaim)?? else { return Ok((None, vec![])) };
        let txid = self.sign_and_submit(draft)?;
        Ok((Some(txid), self.outputs()?))
    }

    /// Pay `amount` base units to `to` as the wallet API does (draft, sign with real SPHINCS+
    /// keys, mine the TxPoW's work, submit): the txid and what the engine asks of the network.
    pub fn pay(&mut self, to: Hash, amount: u64) -> Result<(Hash, Vec<Output>), NodeError> {
        let draft = self.call(|reply| WalletCmd::Draft { outputs: vec![(to, amount)], burn: 0, reply })??;
        let chosen: Vec<Hash> = draft.tx.inputs.iter().map(|c| c.coin_id).collect();
        let r = self.sign_and_submit(draft);
        self.actor.on_wallet(WalletCmd::Release(chosen));
        let txid = r?;
        Ok((txid, self.outputs()?))
    }

    fn sign_and_submit(&mut self, draft: Draft) -> Result<Hash, NodeError> {
        let seed = self.seed.clone().ok_or(WalletError::NoWallet)?;
        let keys = &mut self.keypairs;
        let mut keypair = |i: u32| -> Result<Arc<Keypair>, WalletError> {
            if let Some(k) = keys.get(&i) {
                return Ok(k.clone());
            }
            let k = Arc::new(Keypair::derive(&seed.0, i).map_err(|e| WalletError::Crypto(e.to_string()))?);
            keys.insert(i, k.clone());
            Ok(k)
        };
        let s = sign_and_mine_with(&mut keypair, &self.actor.params, draft, self.txn_work)?;
        let txid = s.txpow.txid();
        let (txpow, proofs) = (Box::new(s.txpow), s.proofs);
        self.call(|r| WalletCmd::Submit(txpow, proofs, r))??;
        Ok(txid)
    }

    /// Run a wallet command on the actor and take its answer.
    fn call<T>(&mut self, f: impl FnOnce(oneshot::Sender<T>) -> WalletCmd) -> Result<T, NodeError> {
        let (tx, mut rx) = oneshot::channel();
        self.actor.on_wallet(f(tx));
        rx.try_recv().map_err(|_| NodeError::Stopped)
    }

    /// The events raised since the last call.
    pub fn events(&mut self) -> Vec<Event> {
        let mut out = vec![];
        loop {
            match self.events.try_recv() {
                Ok(e) => out.push(e),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return out,
            }
        }
    }
}
