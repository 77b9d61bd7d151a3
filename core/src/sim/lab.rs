//! Scenarios with scripted peers: a few production nodes ([`crate::node::SimNode`]) on the
//! simulated network and clock, and peers that are not nodes but scripts — they answer what
//! they are asked with what a test chose (a forged cascade, a tampered block, silence) and
//! send what it chose. The attacks of a hostile network, replayed deterministically and in
//! simulated time.

use crate::crypto::Hash;
use crate::net::message::Message;
use crate::net::peer::NetConfig;
use crate::net::proto::engine::{Input, Output};
use crate::node::SimNode;
use crate::params::Params;

use super::world::{Config, SimError, World};

/// A scripted peer: it listens at an address of its own, answers requests, and sends frames
/// when a test asks it to ([`Lab::send`]) or when a connection it opened is up.
pub trait Script {
    /// The answer to a request from the node at the other end at `now_ms` (`None`: the
    /// stream ends without one, which the node hears a link delay later — to hold a request
    /// until its timeout, also take longer than that in [`Script::delay_ms`]).
    fn answer(&mut self, now_ms: u64, msg: Message) -> Option<Message>;

    /// How long we take to answer `msg` (ms, on top of the link's delay; past the request's
    /// timeout, the node hears "no answer" at the timeout).
    fn delay_ms(&mut self, _msg: &Message) -> u64 {
        0
    }

    /// What we send first on a connection we opened ([`Lab::connect`]), once it is up: a
    /// node expects a `Hello`.
    fn opened(&mut self, _now_ms: u64) -> Vec<Message> {
        vec![]
    }

    /// An announcement from the node (by default given to [`Script::answer`], whose answer
    /// goes nowhere: as a peer that treats every stream alike).
    fn heard(&mut self, now_ms: u64, msg: Message) {
        let _ = self.answer(now_ms, msg);
    }

    /// The answer to our request [`Lab::request`] (`None`: none came in time).
    fn answered(&mut self, _now_ms: u64, _answer: Option<Message>) {}
}

/// Any `FnMut(Message) -> Option<Message>` is a script that only answers (and hears).
impl<F: FnMut(Message) -> Option<Message>> Script for F {
    fn answer(&mut self, _now_ms: u64, msg: Message) -> Option<Message> {
        self(msg)
    }
}

/// A laboratory: production nodes and scripted peers on a simulated network (50 ms + 0–40 ms
/// one way, by default) and clock. Nothing happens but what the nodes do on their own and what
/// the test asks; no block is found unless a test mines one ([`Lab::mine`]).
pub struct Lab {
    w: World,
}

impl Lab {
    /// A lab for `params`' network, its clock at `now_ms`, its random choices from `seed`.
    pub fn new(params: Params, now_ms: u64, seed: u64) -> Result<Lab, SimError> {
        params.check().map_err(|e| SimError::Config(e.to_string()))?;
        let cfg =
            Config { nodes: 0, phones: 0.0, hours: 0.0, payments_per_hour: 0.0, seed, ..Config::default() };
        let mut w = World::bare(cfg, params, now_ms)?;
        w.keep_events = true;
        Ok(Lab { w })
    }

    /// Add a desktop node (listening if `listen`) whose configured peers are the nodes or
    /// scripted peers `peers`: its index. It starts at once.
    pub fn add_node(&mut self, listen: bool, peers: &[usize]) -> Result<usize, SimError> {
        let i = self.w.members_len();
        if self.w.taken(super::world::addr(i)) {
            return Err(SimError::Config(format!("node {i}'s address is taken")));
        }
        let net = NetConfig {
            listen: listen.then(|| super::world::addr(i)),
            peers: peers.iter().map(|p| self.w.addr_of(*p)).collect(),
            ..NetConfig::default()
        };
        let i = self.w.push_node(net, false, false)?;
        self.w.start_node(i);
        Ok(i)
    }

    /// Node `node` is given node or scripted peer `peer` as a configured peer (as
    /// `Node::add_peer`): it dials it and keeps it.
    pub fn add_peer(&mut self, node: usize, peer: usize) -> Result<(), SimError> {
        let addr = self.w.addr_of(peer);
        let out = self.w.node_mut(node).handle(Input::AddPeer(addr)).map_err(|e| SimError::Node(node, e))?;
        self.w.carry_out(node, out)
    }

    /// Add a scripted peer: its index (distinct from every node's).
    pub fn add_script(&mut self, script: impl Script + 'static) -> usize {
        self.w.push_script(Box::new(script), None)
    }

    /// Add a scripted peer at `addr` (it connects from there, and listens there): its index.
    /// At a node's IP, it is another process on that host. An address already taken is an
    /// error.
    pub fn add_script_at(
        &mut self,
        addr: std::net::SocketAddr,
        script: impl Script + 'static,
    ) -> Result<usize, SimError> {
        if self.w.taken(addr) {
            return Err(SimError::Config(format!("{addr} is taken")));
        }
        Ok(self.w.push_script(Box::new(script), Some(addr)))
    }

    /// The events node `i` raised since the last call.
    pub fn events(&mut self, i: usize) -> Vec<crate::node::Event> {
        self.w.take_events(i)
    }

    /// Scripted peer `script` dials node `node`, presenting identity `as_id` (`None`: its
    /// own); once connected it sends [`Script::opened`].
    pub fn connect(&mut self, script: usize, node: usize, as_id: Option<Hash>) {
        self.w.script_dial(script, node, as_id);
    }

    /// Scripted peer `script` sends `msg` to node `node` on their newest connection (`false`:
    /// they have none).
    pub fn send(&mut self, script: usize, node: usize, msg: Message) -> bool {
        self.w.script_send(script, node, msg)
    }

    /// Scripted peer `script` sends request `msg` to node `node` on their newest connection;
    /// the node's answer (`None`: it had none) goes to [`Script::answered`], unless the
    /// connection closes first (`false`: no connection).
    pub fn request(&mut self, script: usize, node: usize, msg: Message) -> bool {
        self.w.script_request(script, node, msg, 10_000)
    }

    /// Run the world for `ms` of simulated time.
    pub fn run_for(&mut self, ms: u64) -> Result<(), SimError> {
        let until = self.w.now_ms().saturating_add(ms);
        self.w.run_until(until)
    }

    /// Run until `done` holds (checked after each event) or `ms` of simulated time pass:
    /// whether it held.
    pub fn run_until(&mut self, ms: u64, mut done: impl FnMut(&mut Lab) -> bool) -> Result<bool, SimError> {
        let until = self.w.now_ms().saturating_add(ms);
        loop {
            if done(self) {
                return Ok(true);
            }
            if !self.w.step_next(until)? {
                return Ok(done(self));
            }
        }
    }

    /// The simulated clock (ms since the epoch).
    pub fn now_ms(&self) -> u64 {
        self.w.now_ms()
    }

    /// The peers node `i` banned and cut off, and why: the peer's index (`None`: its
    /// connection had already closed) and the reason.
    pub fn bans(&self, i: usize) -> &[(Option<usize>, String)] {
        self.w.bans_of(i)
    }

    /// Node `i`.
    pub fn node(&mut self, i: usize) -> &mut SimNode {
        self.w.node_mut(i)
    }

    /// Node `i` finds a block on its tip now (mined for real at its target) and announces it:
    /// its id (`None`: it may not mine yet, not synced with a peer).
    pub fn mine(&mut self, i: usize) -> Result<Option<crate::crypto::Hash>, SimError> {
        let (id, out) = self.w.node_mut(i).mine().map_err(|e| SimError::Node(i, e))?;
        self.w.carry_out(i, out)?;
        Ok(id)
    }

    /// Give node `i` what it asked of the network after a direct call (a block submitted, a
    /// block mined).
    pub fn carry(&mut self, i: usize, out: Vec<Output>) -> Result<(), SimError> {
        self.w.carry_out(i, out)
    }
}
