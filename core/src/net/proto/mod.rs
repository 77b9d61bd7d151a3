//! The peer protocol's socket-free parts (issue 14's `net/proto`): each decides from its
//! inputs alone — time is passed in, nothing here opens a socket, sleeps or reads a clock —
//! so unit tests drive them directly and a simulator can too.
//!
//! | module | concern |
//! |---|---|
//! | [`score`] | misbehaviour scores that decay, bounded bans, per-group throttles |
//! | [`budget`] | per-peer request and answer-byte token buckets |
//! | [`deadline`] | a catch-up's total deadline and minimum progress |
//! | [`weight`] | proving an offered chain heavier from its headers before any body |

pub mod budget;
pub mod deadline;
pub mod score;
pub mod weight;
