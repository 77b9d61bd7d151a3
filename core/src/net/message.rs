//! Wire messages and framing (SPEC §9).
//!
//! Frame = `u32` length (of type byte + payload), `u8` type, payload. Every type has a size
//! limit — 1 MiB, or 4 MiB for `Headers`, `Blocks` and `Cascade` — checked on the 5-byte frame
//! header *before* the payload is read or allocated. An unknown type, an oversized frame or an
//! undecodable payload is a [`FrameError`] that costs the peer ban score.

use thiserror::Error;

use crate::chain::cascade::MAX_CASCADE_HEADERS;
use crate::codec::{put_len, put_option, put_var_bytes, put_vec, CodecError, Decode, Encode, Reader};
use crate::crypto::Hash;
use crate::mmr::{BlockWitness, MmrPeaks, MmrProof};
use crate::types::{TxHeader, TxPoW};

/// Protocol version in `Hello`.
pub const PROTOCOL_VERSION: u32 = 2;
/// Default frame limit.
pub const MAX_FRAME: usize = 1024 * 1024;
/// Limit of `Headers`, `Blocks` and `Cascade` frames.
pub const MAX_LARGE_FRAME: usize = 4 * 1024 * 1024;
/// Most ids in an `Inv`.
pub const MAX_INV: usize = 1_000;
/// Most ids in `GetTxPow` / `GetBlocks` / `GetBodies` (and items in their answers).
pub const MAX_GET: usize = 64;
/// Largest frame a request kind may use (the largest, an `Inv` of [`MAX_INV`] ids, is
/// ≈ 32 KB): a peer cannot make us read megabytes by calling them a request.
pub const MAX_REQUEST_FRAME: usize = 64 * 1024;
/// Most headers in one `Headers` answer.
pub const MAX_HEADERS: usize = 2_000;
/// Most locator entries.
pub const MAX_LOCATOR: usize = 64;
/// Most addresses in `Peers`.
pub const MAX_PEERS: usize = 50;
/// Longest address string.
pub const MAX_ADDR: usize = 64;
/// Most coin proofs in one page.
pub const MAX_COIN_PROOFS: usize = 256;

/// Message type bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// `Hello`.
    Hello = 1,
    /// `Inv`.
    Inv = 2,
    /// `GetTxPow`.
    GetTxPow = 3,
    /// `TxPow`.
    TxPow = 4,
    /// `GetHeaders`.
    GetHeaders = 5,
    /// `Headers`.
    Headers = 6,
    /// `GetBlocks`.
    GetBlocks = 7,
    /// `Blocks`.
    Blocks = 8,
    /// `GetCascade`.
    GetCascade = 9,
    /// `Cascade`.
    Cascade = 10,
    /// `GetCoinProofs`.
    GetCoinProofs = 11,
    /// `CoinProofs`.
    CoinProofs = 12,
    /// `GetPeers`.
    GetPeers = 13,
    /// `Peers`.
    Peers = 14,
    /// `Ping`.
    Ping = 15,
    /// `Pong`.
    Pong = 16,
    /// `GetBodies`.
    GetBodies = 17,
    /// `Bodies`.
    Bodies = 18,
}

impl Kind {
    /// The kind of a type byte.
    pub fn from_byte(b: u8) -> Option<Kind> {
        use Kind::*;
        Some(match b {
            1 => Hello,
            2 => Inv,
            3 => GetTxPow,
            4 => TxPow,
            5 => GetHeaders,
            6 => Headers,
            7 => GetBlocks,
            8 => Blocks,
            9 => GetCascade,
            10 => Cascade,
            11 => GetCoinProofs,
            12 => CoinProofs,
            13 => GetPeers,
            14 => Peers,
            15 => Ping,
            16 => Pong,
            17 => GetBodies,
            18 => Bodies,
            _ => return None,
        })
    }

    /// Kinds a peer may open a stream with (requests and announcements); the others are
    /// only ever answers.
    pub fn is_request(self) -> bool {
        use Kind::*;
        matches!(
            self,
            Inv | GetTxPow
                | GetHeaders
                | GetBlocks
                | GetCascade
                | GetCoinProofs
                | GetPeers
                | Ping
                | GetBodies
        )
    }

    /// Largest frame (type byte + payload) this kind may use.
    pub fn max_frame(self) -> usize {
        match self {
            Kind::Headers | Kind::Blocks | Kind::Bodies | Kind::Cascade => MAX_LARGE_FRAME,
            _ => MAX_FRAME,
        }
    }
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Fewer than 5 bytes of frame header.
    #[error("truncated frame header")]
    ShortHeader,
    /// A type byte no message has.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// A length over the type's limit (refused before reading the payload).
    #[error("{kind:?} frame of {len} bytes exceeds its limit {max}")]
    TooLarge {
        /// Message kind.
        kind: Kind,
        /// Claimed length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A zero length (no type byte).
    #[error("empty frame")]
    Empty,
    /// The payload did not decode.
    #[error("undecodable {kind:?} payload: {error}")]
    Payload {
        /// Message kind.
        kind: Kind,
        /// Codec error.
        error: CodecError,
    },
}

/// The first message on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`].
    pub version: u32,
    /// Network.
    pub chain_id: u8,
    /// Genesis id.
    pub genesis: Hash,
    /// Best tip id.
    pub tip: Hash,
    /// Chain weight of that tip.
    pub tip_weight: u128,
    /// The sender's clock (ms since the epoch), to report skew.
    pub time_ms: u64,
    /// Where the sender accepts connections, if anywhere.
    pub listen: Option<String>,
    /// A phone: accepts no inbound connections.
    pub is_client: bool,
    /// Wants transaction `Inv`s (blocks always).
    pub want_txs: bool,
    /// Serves blocks for sync.
    pub serves_blocks: bool,
    /// Answers `GetCoinProofs`.
    pub full_mmr: bool,
}

/// What `GetCoinProofs` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoinQuery {
    /// These coins.
    Coins(Vec<Hash>),
    /// Unspent coins at these addresses.
    Addresses(Vec<Hash>),
}

/// A TxPoW with the relay proofs of its inputs (created, proof).
pub type RelayTxPow = (TxPoW, crate::mmr::Proofs);

/// A block as it travels: the TxPoW, its MMR witness, and listed TxPoWs the receiver may lack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockData {
    /// The block.
    pub txpow: TxPoW,
    /// Its MMR witness.
    pub witness: BlockWitness,
    /// Listed transaction TxPoWs included for convenience.
    pub listed: Vec<TxPoW>,
}

/// A block without its header, for a receiver that already holds the header (catch-up and
/// sync fetch headers first, so no header is sent twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockBody {
    /// The block's body.
    pub body: crate::types::TxBody,
    /// Its MMR witness.
    pub witness: BlockWitness,
    /// Listed transaction TxPoWs included for convenience.
    pub listed: Vec<TxPoW>,
}

impl BlockBody {
    /// Join with its header into a [`BlockData`] (validation checks `body_hash`).
    pub fn with_header(self, header: TxHeader) -> BlockData {
        BlockData { txpow: TxPoW { header, body: self.body }, witness: self.witness, listed: self.listed }
    }
}

impl Encode for BlockBody {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.body.encode_to(out);
        self.witness.encode_to(out);
        put_vec(out, &self.listed);
    }
}

impl Decode for BlockBody {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(BlockBody {
            body: crate::types::TxBody::decode_from(r)?,
            witness: BlockWitness::decode_from(r)?,
            listed: r.vec(crate::types::limits::MAX_TXPOW_IDS, "body.listed", TxPoW::decode_from)?,
        })
    }
}

/// Every message of SPEC §9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Handshake.
    Hello(Hello),
    /// Announce ids.
    Inv(Vec<Hash>),
    /// Ask for transaction TxPoWs.
    GetTxPow(Vec<Hash>),
    /// Transaction TxPoWs with their proofs.
    TxPow(Vec<RelayTxPow>),
    /// Ask for headers after the first locator id we share, at most `max`.
    GetHeaders {
        /// Ids, newest first, thinning out.
        locator: Vec<Hash>,
        /// At most this many (≤ 2,000).
        max: u32,
    },
    /// Headers, oldest first.
    Headers(Vec<TxHeader>),
    /// Ask for blocks.
    GetBlocks(Vec<Hash>),
    /// Blocks with witnesses.
    Blocks(Vec<BlockData>),
    /// Ask for the cascade.
    GetCascade,
    /// The cascade (newest first), the tree root block, its witness and its MMR peaks.
    Cascade {
        /// Kept headers, newest first.
        headers: Vec<TxHeader>,
        /// The tree root.
        root: Box<BlockData>,
        /// MMR peaks after the root.
        root_peaks: MmrPeaks,
    },
    /// Ask for coin proofs, from the start or after a cursor (a coin id an earlier answer
    /// gave as `next`).
    GetCoinProofs {
        /// What.
        query: CoinQuery,
        /// Continue after this coin (`None`: from the start).
        after: Option<Hash>,
    },
    /// Coin proofs against `block` (unspent coins only), and the cursor of the next page.
    CoinProofs {
        /// The block the proofs are against.
        block: Hash,
        /// (coin with created, proof) pairs.
        proofs: Vec<(crate::types::CoinRecord, MmrProof)>,
        /// The last coin this page looked at, when more may follow (`None`: the last page).
        next: Option<Hash>,
    },
    /// Ask for addresses.
    GetPeers,
    /// Addresses we have connected to.
    Peers(Vec<String>),
    /// Ask for blocks whose headers the asker holds: answered with `Bodies`, in the order
    /// asked, stopping at the first id the answerer does not hold.
    GetBodies(Vec<Hash>),
    /// Block bodies with witnesses and listed TxPoWs.
    Bodies(Vec<BlockBody>),
    /// Keep-alive.
    Ping(u64),
    /// Its answer.
    Pong(u64),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_var_bytes(out, s.as_bytes());
}

fn read_str(r: &mut Reader<'_>, field: &'static str) -> Result<String, CodecError> {
    let b = r.var_bytes(MAX_ADDR, field)?;
    String::from_utf8(b).map_err(|_| CodecError::InvalidValue { field, reason: "not UTF-8" })
}

fn read_bool(r: &mut Reader<'_>, field: &'static str) -> Result<bool, CodecError> {
    r.option_tag(field)
}

struct Str(String);
impl Encode for Str {
    fn encode_to(&self, out: &mut Vec<u8>) {
        put_str(out, &self.0);
    }
}

impl Encode for BlockData {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.txpow.encode_to(out);
        self.witness.encode_to(out);
        put_vec(out, &self.listed);
    }
}

impl Decode for BlockData {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(BlockData {
            txpow: TxPoW::decode_from(r)?,
            witness: BlockWitness::decode_from(r)?,
            listed: r.vec(crate::types::limits::MAX_TXPOW_IDS, "block.listed", TxPoW::decode_from)?,
        })
    }
}

/// `Headers` travel compactly: a header that follows the previous one in the list (the next
/// number, same chain id, version and magic, and `parents` exactly as SPEC §5 derives them from
/// the previous header) is sent as tag 1 and only its other fields (145 bytes instead of
/// ≈ 300–400); the receiver rebuilds it. Anything else is tag 0 and the whole header.
fn put_headers(out: &mut Vec<u8>, v: &[TxHeader]) {
    put_len(out, v.len());
    let mut prev: Option<(&TxHeader, Hash)> = None;
    for h in v {
        if prev.is_some_and(|(p, pid)| follows(h, p, &pid)) {
            out.push(1);
            h.time_ms.encode_to(out);
            h.block_target.encode_to(out);
            h.mmr_root.encode_to(out);
            h.mmr_total.encode_to(out);
            h.body_hash.encode_to(out);
            out.extend_from_slice(&h.nonce);
        } else {
            out.push(0);
            h.encode_to(out);
        }
        prev = Some((h, h.id()));
    }
}

/// A header's own fields: what a header that [`follows`] the one before it does not derive
/// from it (tag 1 on the wire; a cascade sync holds headers this way too).
#[derive(Debug, Clone)]
pub(crate) struct OwnFields {
    time_ms: u64,
    block_target: crate::U256,
    mmr_root: Hash,
    mmr_total: u64,
    body_hash: Hash,
    nonce: [u8; 32],
}

impl OwnFields {
    /// The own fields of `h`.
    pub(crate) fn of(h: &TxHeader) -> OwnFields {
        OwnFields {
            time_ms: h.time_ms,
            block_target: h.block_target,
            mmr_root: h.mmr_root,
            mmr_total: h.mmr_total,
            body_hash: h.body_hash,
            nonce: h.nonce,
        }
    }

    /// The header with these fields that follows `p` (whose id is `pid`).
    pub(crate) fn after(&self, p: &TxHeader, pid: &Hash) -> TxHeader {
        TxHeader {
            chain_id: p.chain_id,
            version: p.version,
            block_number: p.block_number.wrapping_add(1),
            time_ms: self.time_ms,
            block_target: self.block_target,
            parents: crate::chain::parents_after(p, pid),
            mmr_root: self.mmr_root,
            mmr_total: self.mmr_total,
            magic: p.magic,
            body_hash: self.body_hash,
            nonce: self.nonce,
        }
    }
}

/// Whether `h` can travel as tag 1 after `p` (whose id is `pid`).
pub(crate) fn follows(h: &TxHeader, p: &TxHeader, pid: &Hash) -> bool {
    h.block_number == p.block_number.wrapping_add(1)
        && h.chain_id == p.chain_id
        && h.version == p.version
        && h.magic == p.magic
        && h.parents == crate::chain::parents_after(p, pid)
}

fn read_headers(r: &mut Reader<'_>) -> Result<Vec<TxHeader>, CodecError> {
    let mut prev: Option<(TxHeader, Hash)> = None;
    r.vec(MAX_HEADERS, "headers", |r| {
        let h = match (r.u8("headers.tag")?, &prev) {
            (0, _) => {
                let h = TxHeader::decode_from(r)?;
                if prev.as_ref().is_some_and(|(p, pid)| follows(&h, p, pid)) {
                    // Canonical: a header that follows the previous one is sent as tag 1.
                    return Err(CodecError::InvalidValue { field: "headers.tag", reason: "not canonical" });
                }
                h
            }
            // Fields in their order on the wire.
            (1, Some((p, pid))) => OwnFields {
                time_ms: r.u64("header.time_ms")?,
                block_target: crate::U256::decode_from(r)?,
                mmr_root: Hash::decode_from(r)?,
                mmr_total: r.u64("header.mmr_total")?,
                body_hash: Hash::decode_from(r)?,
                nonce: r.array("header.nonce")?,
            }
            .after(p, pid),
            (tag, _) => return Err(CodecError::InvalidTag { field: "headers.tag", tag }),
        };
        let id = h.id();
        prev = Some((h.clone(), id));
        Ok(h)
    })
}

fn put_relay(out: &mut Vec<u8>, t: &RelayTxPow) {
    t.0.encode_to(out);
    put_len(out, t.1.len());
    for (c, p) in &t.1 {
        c.encode_to(out);
        p.encode_to(out);
    }
}

fn read_relay(r: &mut Reader<'_>) -> Result<RelayTxPow, CodecError> {
    let t = TxPoW::decode_from(r)?;
    let p = r.vec(crate::types::limits::MAX_INPUTS, "relay.proofs", |r| {
        Ok((r.u64("relay.created")?, MmrProof::decode_from(r)?))
    })?;
    Ok((t, p))
}

impl Message {
    /// Its type byte.
    pub fn kind(&self) -> Kind {
        match self {
            Message::Hello(_) => Kind::Hello,
            Message::Inv(_) => Kind::Inv,
            Message::GetTxPow(_) => Kind::GetTxPow,
            Message::TxPow(_) => Kind::TxPow,
            Message::GetHeaders { .. } => Kind::GetHeaders,
            Message::Headers(_) => Kind::Headers,
            Message::GetBlocks(_) => Kind::GetBlocks,
            Message::Blocks(_) => Kind::Blocks,
            Message::GetCascade => Kind::GetCascade,
            Message::Cascade { .. } => Kind::Cascade,
            Message::GetCoinProofs { .. } => Kind::GetCoinProofs,
            Message::CoinProofs { .. } => Kind::CoinProofs,
            Message::GetPeers => Kind::GetPeers,
            Message::Peers(_) => Kind::Peers,
            Message::Ping(_) => Kind::Ping,
            Message::Pong(_) => Kind::Pong,
            Message::GetBodies(_) => Kind::GetBodies,
            Message::Bodies(_) => Kind::Bodies,
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(h) => {
                h.version.encode_to(out);
                out.push(h.chain_id);
                h.genesis.encode_to(out);
                h.tip.encode_to(out);
                out.extend_from_slice(&h.tip_weight.to_be_bytes());
                h.time_ms.encode_to(out);
                put_option(out, &h.listen.clone().map(Str));
                for b in [h.is_client, h.want_txs, h.serves_blocks, h.full_mmr] {
                    out.push(b as u8);
                }
            }
            Message::Inv(v) | Message::GetTxPow(v) | Message::GetBlocks(v) | Message::GetBodies(v) => {
                put_vec(out, v)
            }
            Message::Bodies(v) => put_vec(out, v),
            Message::TxPow(v) => {
                put_len(out, v.len());
                for t in v {
                    put_relay(out, t);
                }
            }
            Message::GetHeaders { locator, max } => {
                put_vec(out, locator);
                max.encode_to(out);
            }
            Message::Headers(v) => put_headers(out, v),
            Message::Blocks(v) => put_vec(out, v),
            Message::GetCascade | Message::GetPeers => {}
            Message::Cascade { headers, root, root_peaks } => {
                put_vec(out, headers);
                root.encode_to(out);
                root_peaks.encode_to(out);
            }
            Message::GetCoinProofs { query, after } => {
                match query {
                    CoinQuery::Coins(v) => {
                        out.push(0);
                        put_vec(out, v);
                    }
                    CoinQuery::Addresses(v) => {
                        out.push(1);
                        put_vec(out, v);
                    }
                }
                put_option(out, after);
            }
            Message::CoinProofs { block, proofs, next } => {
                block.encode_to(out);
                put_len(out, proofs.len());
                for (c, p) in proofs {
                    c.encode_to(out);
                    p.encode_to(out);
                }
                put_option(out, next);
            }
            Message::Peers(v) => {
                put_len(out, v.len());
                for a in v {
                    put_str(out, a);
                }
            }
            Message::Ping(n) | Message::Pong(n) => n.encode_to(out),
        }
    }

    fn decode_payload(kind: Kind, r: &mut Reader<'_>) -> Result<Message, CodecError> {
        Ok(match kind {
            Kind::Hello => Message::Hello(Hello {
                version: r.u32("hello.version")?,
                chain_id: r.u8("hello.chain_id")?,
                genesis: Hash::decode_from(r)?,
                tip: Hash::decode_from(r)?,
                tip_weight: u128::from_be_bytes(r.array("hello.tip_weight")?),
                time_ms: r.u64("hello.time")?,
                listen: if r.option_tag("hello.listen")? { Some(read_str(r, "hello.listen")?) } else { None },
                is_client: read_bool(r, "hello.is_client")?,
                want_txs: read_bool(r, "hello.want_txs")?,
                serves_blocks: read_bool(r, "hello.serves_blocks")?,
                full_mmr: read_bool(r, "hello.full_mmr")?,
            }),
            Kind::Inv => Message::Inv(r.vec(MAX_INV, "inv", Hash::decode_from)?),
            Kind::GetTxPow => Message::GetTxPow(r.vec(MAX_GET, "get_txpow", Hash::decode_from)?),
            Kind::GetBlocks => Message::GetBlocks(r.vec(MAX_GET, "get_blocks", Hash::decode_from)?),
            Kind::TxPow => Message::TxPow(r.vec(MAX_GET, "txpow", read_relay)?),
            Kind::GetHeaders => {
                let locator = r.vec(MAX_LOCATOR, "locator", Hash::decode_from)?;
                let max = r.u32("get_headers.max")?;
                if max as usize > MAX_HEADERS {
                    return Err(CodecError::InvalidValue { field: "get_headers.max", reason: "above 2,000" });
                }
                Message::GetHeaders { locator, max }
            }
            Kind::Headers => Message::Headers(read_headers(r)?),
            Kind::Blocks => Message::Blocks(r.vec(MAX_GET, "blocks", BlockData::decode_from)?),
            Kind::GetBodies => Message::GetBodies(r.vec(MAX_GET, "get_bodies", Hash::decode_from)?),
            Kind::Bodies => Message::Bodies(r.vec(MAX_GET, "bodies", BlockBody::decode_from)?),
            Kind::GetCascade => Message::GetCascade,
            Kind::Cascade => Message::Cascade {
                headers: r.vec(MAX_CASCADE_HEADERS, "cascade", TxHeader::decode_from)?,
                root: Box::new(BlockData::decode_from(r)?),
                root_peaks: MmrPeaks::decode_from(r)?,
            },
            Kind::GetCoinProofs => {
                let query = match r.u8("coin_query")? {
                    0 => CoinQuery::Coins(r.vec(MAX_COIN_PROOFS, "coin_query", Hash::decode_from)?),
                    1 => CoinQuery::Addresses(r.vec(MAX_COIN_PROOFS, "coin_query", Hash::decode_from)?),
                    tag => return Err(CodecError::InvalidTag { field: "coin_query", tag }),
                };
                let after =
                    if r.option_tag("coin_query.after")? { Some(Hash::decode_from(r)?) } else { None };
                Message::GetCoinProofs { query, after }
            }
            Kind::CoinProofs => Message::CoinProofs {
                block: Hash::decode_from(r)?,
                proofs: r.vec(MAX_COIN_PROOFS, "coin_proofs", |r| {
                    Ok((crate::types::CoinRecord::decode_from(r)?, MmrProof::decode_from(r)?))
                })?,
                next: if r.option_tag("coin_proofs.next")? { Some(Hash::decode_from(r)?) } else { None },
            },
            Kind::GetPeers => Message::GetPeers,
            Kind::Peers => Message::Peers(r.vec(MAX_PEERS, "peers", |r| read_str(r, "peer"))?),
            Kind::Ping => Message::Ping(r.u64("ping")?),
            Kind::Pong => Message::Pong(r.u64("pong")?),
        })
    }

    /// The whole frame: length, type, payload.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        self.encode_payload(&mut payload);
        let mut out = Vec::with_capacity(5 + payload.len());
        out.extend_from_slice(&((payload.len() + 1) as u32).to_be_bytes());
        out.push(self.kind() as u8);
        out.extend_from_slice(&payload);
        out
    }

    /// Check a 5-byte frame header: the kind and the payload length to read next. Nothing is
    /// allocated for a frame this refuses.
    pub fn check_header(h: &[u8]) -> Result<(Kind, usize), FrameError> {
        if h.len() < 5 {
            return Err(FrameError::ShortHeader);
        }
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let kind = Kind::from_byte(h[4]).ok_or(FrameError::UnknownType(h[4]))?;
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len > kind.max_frame() {
            return Err(FrameError::TooLarge { kind, len, max: kind.max_frame() });
        }
        Ok((kind, len - 1))
    }

    /// Decode a payload of a checked kind.
    pub fn from_payload(kind: Kind, payload: &[u8]) -> Result<Message, FrameError> {
        let mut r = Reader::new(payload);
        let m = Message::decode_payload(kind, &mut r).map_err(|error| FrameError::Payload { kind, error })?;
        r.finish().map_err(|error| FrameError::Payload { kind, error })?;
        Ok(m)
    }

    /// Decode one whole frame held in memory.
    pub fn from_frame(frame: &[u8]) -> Result<Message, FrameError> {
        let (kind, n) = Message::check_header(frame)?;
        let payload = &frame[5..];
        if payload.len() != n {
            return Err(FrameError::Payload { kind, error: CodecError::UnexpectedEnd { field: "frame" } });
        }
        Message::from_payload(kind, payload)
    }
}
