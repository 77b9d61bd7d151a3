//! A deterministic network simulator (feature `sim`, `minima sim`).
//!
//! Every simulated node is the production node: [`crate::node::SimNode`] — the chain actor
//! with its chain, mempool and wallet on the real [`crate::store::Store`] in an in-memory
//! SQLite database, fully validating, and the protocol engine `net/proto`. Only sockets, the
//! clock, the randomness and *which node finds the next block* are simulated: the finder is
//! drawn from the seeded RNG in proportion to hash power (desktops; phones mine nothing in the
//! background), then mines that block for real at devnet's minimum work, on main's timing
//! (50 s blocks, the 2,048-block tree).
//!
//! The network: links with latency and jitter (so messages reorder), loss, partitions that
//! heal, phones that sleep and wake for a sync session on a schedule. Connections and requests
//! are carried as the QUIC driver carries them ([`world`]): a dial is a connection after one
//! round trip; a read request is served by the peer's store, off its actor; any other request
//! is a frame for the peer's engine, whose reply travels back; an answer later than the
//! request's timeout is "no answer" at the timeout. A lost packet delays its message by a
//! probe timeout (QUIC streams are reliable). What is not modelled: QUIC and TLS bytes, the
//! per-peer request budget (`Throttle`, `GroupRate`), CPU time (each event is instant).
//!
//! [`Lab`] runs scenarios: a few nodes and scripted peers ([`Script`]) that answer with what a
//! test chose — the attacks of `net_hostile`, replayed on the simulated network and clock.
//!
//! Same [`Config`] ⇒ the same [`Report`] (but `wall_s` and `peak_rss_bytes`) and the same
//! event log, byte for byte ([`Report::log_sha3`]).

mod lab;
mod queue;
mod world;

pub use lab::{Lab, Script};
pub use world::{run, Config, CostModel, Partition, Percentiles, Range, Report, SimError, COST_MODEL};
