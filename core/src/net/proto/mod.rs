//! The peer protocol's socket-free parts (issue 14's `net/proto`): each decides from its
//! inputs alone — time is passed in, nothing here opens a socket, sleeps or reads a clock —
//! so unit tests drive them directly and a simulator can too.
//!
//! | module | concern |
//! |---|---|
//! | [`chain`] | the chain side the units ask ([`chain::ChainSink`]), answered at once |
//! | [`addrbook`] | where peers may be found: new and tried tables no one source can fill |
//! | [`inventory`] | announced blocks and transactions still wanted: one fetch at a time, the next announcer when one fails |
//! | [`mesh`] | peers and the address book: the outbound target over /16 groups, dial-back, anchors |
//! | [`score`] | misbehaviour scores that decay, bounded bans, per-group throttles |
//! | [`budget`] | per-peer request and answer-byte token buckets |
//! | [`rounds`] | a catch-up's `GetHeaders` rounds: locator, batch form, what next |
//! | [`deadline`] | a catch-up's total deadline and minimum progress |
//! | [`weight`] | proving an offered chain heavier from its headers before any body |
//! | [`engine`] | the chain-facing units behind one entry: sync manager and jobs, inventory and fetches |
//! | [`fetch`] | one announced id fetched from one announcer and offered to the chain |
//! | [`headers`] | the headers a cascade sync holds, compactly, until their bodies come |
//! | [`jobs`] | the sync jobs themselves: a catch-up's rounds and bodies, a cascade sync's cascade, headers and bodies |
//! | [`requests`] | requests in flight: rising ids, deadlines |
//! | [`sync`] | who we catch up or sync with: one job at a time, a queue of one per peer, the initial sync's choice of peer |
//! | [`time`] | [`Time`], the moments the others are given |
//!
//! `scripts/sans-io-check.sh` (a stage of `scripts/test.sh`) fails if a file here names the
//! async runtime, the QUIC library, a clock, a sleep, a socket or OS randomness.

pub mod addrbook;
pub mod budget;
pub mod chain;
pub mod deadline;
pub mod engine;
pub mod fetch;
pub mod headers;
pub mod inventory;
pub mod jobs;
pub mod mesh;
pub mod requests;
pub mod rounds;
pub mod score;
pub mod sync;
#[cfg(all(test, feature = "fixture"))]
mod testkit;
pub mod time;
pub mod weight;

pub use time::Time;

/// A socket-free unit of the protocol, driven the same way whatever its concern: inputs come
/// with the time ([`Machine::handle`]), outputs are polled ([`Machine::poll`]), and the
/// engine ticks it at [`Machine::poll_timeout`].
pub trait Machine {
    /// What happened.
    type Input;
    /// What to do.
    type Output;
    /// Take an input at `now`.
    fn handle(&mut self, now: Time, input: Self::Input);
    /// The next thing to do, if any.
    fn poll(&mut self) -> Option<Self::Output>;
    /// When to tick next (`None`: only on other inputs).
    fn poll_timeout(&self) -> Option<Time>;
}

/// Implements [`Machine`] by the unit's own `handle`, `poll` and `poll_timeout`.
macro_rules! machine {
    ($unit:ty, $input:ty, $output:ty) => {
        impl $crate::net::proto::Machine for $unit {
            type Input = $input;
            type Output = $output;
            fn handle(&mut self, now: $crate::net::proto::Time, input: $input) {
                <$unit>::handle(self, now, input)
            }
            fn poll(&mut self) -> Option<$output> {
                <$unit>::poll(self)
            }
            fn poll_timeout(&self) -> Option<$crate::net::proto::Time> {
                <$unit>::poll_timeout(self)
            }
        }
    };
}
pub(crate) use machine;
