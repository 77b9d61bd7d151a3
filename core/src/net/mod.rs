//! Networking (SPEC §9): wire messages with bounded framing, the QUIC transport (identity, TLS,
//! frames over streams), and the peer protocol that relays blocks and catches up.

pub mod budget;
pub mod deadline;
pub mod message;
pub mod peer;
pub mod score;
pub mod transport;
pub mod weight;
