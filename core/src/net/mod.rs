//! Networking (SPEC §9). So far: the wire messages and their bounded framing; the QUIC
//! transport, peer tasks and sync come with the peering issue.

pub mod message;
