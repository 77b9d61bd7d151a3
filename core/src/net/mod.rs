//! Networking (SPEC §9): wire messages with bounded framing, the QUIC transport (identity, TLS,
//! frames over streams), the peer protocol that relays blocks and catches up, and its
//! socket-free parts in [`proto`].

pub mod message;
pub mod peer;
pub mod proto;
pub mod transport;
