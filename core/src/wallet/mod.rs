//! The wallet: the seed (the 32-byte BIP39 entropy of 24 words) from which every key
//! derives ([`crate::crypto::Keypair::derive`]); the wallet's coins, balance and history
//! ([`state`]); building, signing and mining payments ([`spend`]). The node runs it: its
//! chain actor keeps the public part current, and only payments touch the seed.
//!
//! A host either passes the seed at each start and the node stores nothing secret, or the
//! node stores it sealed: Argon2id turns the host's passphrase (or key) and a random salt into
//! a 32-byte key, and XChaCha20-Poly1305 encrypts the seed under it with a random nonce. The
//! sealed form records its Argon2 costs, so they can grow without breaking old wallets. A
//! wrong passphrase and a tampered blob look the same (the AEAD tag fails): both are
//! [`WalletError::WrongPassphrase`]. The seed never appears in `Debug` output or errors, and
//! every buffer that held it, a passphrase or a key derived from them is wiped (`zeroize`) when
//! it is dropped.

use argon2::{Algorithm, Argon2, Params as KdfParams, Version};
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::{CodecError, Decode, Encode, Reader};

pub mod spend;
pub mod state;

pub use spend::{sign_and_mine, Draft, Signed};
pub use state::{Balance, HistoryEntry, OwnCoin, WalletChanges, WalletKey, WalletState};

/// Wallet errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WalletError {
    /// The address is malformed, fails its checksum or belongs to another network.
    #[error("{0}")]
    Address(#[from] crate::crypto::CryptoError),
    /// A payment of zero.
    #[error("amount must be at least one base unit")]
    ZeroAmount,
    /// An amount that is not a number of coins with at most 9 decimals.
    #[error("invalid amount '{0}': want coins with at most 9 decimals, e.g. 10 or 0.5")]
    BadAmount(String),
    /// The amounts add up beyond u64.
    #[error("amounts add up beyond the coin supply")]
    AmountOverflow,
    /// More recipients than one transaction holds.
    #[error("{0} recipients: at most 31 fit one transaction (with change)")]
    TooManyOutputs(usize),
    /// Not enough spendable coins.
    #[error("insufficient funds: need {needed} base units, {sendable} sendable ({pending} more wait on pending payments)")]
    InsufficientFunds {
        /// Payment plus burn.
        needed: u64,
        /// Coins free to spend.
        sendable: u64,
        /// Confirmed coins locked by pending payments.
        pending: u64,
    },
    /// The payment needs more inputs or signatures than one TxPoW can hold.
    #[error("payment does not fit one TxPoW: {reason}")]
    TxTooLarge {
        /// What overflowed.
        reason: String,
    },
    /// A coin names a key the wallet lacks.
    #[error("no key with index {0}")]
    UnknownKey(u32),
    /// Key derivation or signing failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// The node runs without a wallet.
    #[error("no wallet is open (create one with `minima seed --new` or `--restore`)")]
    NoWallet,
    /// A wallet is already open or sealed in this data dir.
    #[error("a wallet already exists here")]
    Exists,
    /// Exported coins that cannot be read.
    #[error("cannot import: {0}")]
    BadImport(String),
    /// The seed given is not the one this data dir's wallet was made with.
    #[error("this data dir's wallet belongs to another seed")]
    OtherSeed,
    /// The passphrase does not open the sealed seed (or the sealed bytes were altered).
    #[error("wrong passphrase (or the sealed seed was altered)")]
    WrongPassphrase,
    /// The sealed seed's bytes are not a sealed seed.
    #[error("sealed seed is malformed: {0}")]
    Malformed(#[from] CodecError),
    /// Key derivation costs out of range.
    #[error("key derivation: {0}")]
    Kdf(String),
    /// The system's random source failed.
    #[error("no randomness: {0}")]
    Random(String),
}

/// A wallet seed (BIP39 entropy). Its `Debug` hides it; its bytes are wiped when it is
/// dropped (every clone too).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Seed(pub [u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(…)")
    }
}

impl Seed {
    /// A fresh random seed.
    pub fn generate() -> Result<Seed, WalletError> {
        let mut s = Seed([0; 32]);
        random(&mut s.0)?;
        Ok(s)
    }
}

pub(crate) fn random(buf: &mut [u8]) -> Result<(), WalletError> {
    use chacha20poly1305::aead::rand_core::RngCore;
    OsRng.try_fill_bytes(buf).map_err(|e| WalletError::Random(e.to_string()))
}

/// Random bytes that are not secret (a transaction's PRNG field, where a TxPoW's nonce search
/// starts): repeatable on a simulator's seeded thread ([`crate::entropy`]). Secrets (seeds,
/// sealing) come from [`random`], always the operating system's.
pub(crate) fn public_random(buf: &mut [u8]) -> Result<(), WalletError> {
    crate::entropy::fill(buf).map_err(|e| WalletError::Random(e.to_string()))
}

/// Base units per coin.
pub const UNITS_PER_COIN: u64 = 1_000_000_000;

/// Parse an amount of coins (`10`, `0.5`, at most 9 decimals) into base units.
pub fn parse_coins(s: &str) -> Result<u64, WalletError> {
    let bad = || WalletError::BadAmount(s.chars().take(40).collect());
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 9 {
        return Err(bad());
    }
    if !whole.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let w: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    let f: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().map_err(|_| bad())? };
    w.checked_mul(UNITS_PER_COIN).and_then(|x| x.checked_add(f)).ok_or(WalletError::AmountOverflow)
}

/// Base units as coins (`10`, `0.5`).
pub fn format_coins(units: u64) -> String {
    let (w, f) = (units / UNITS_PER_COIN, units % UNITS_PER_COIN);
    if f == 0 {
        return w.to_string();
    }
    let frac = format!("{f:09}");
    format!("{w}.{}", frac.trim_end_matches('0'))
}

/// A seed's public fingerprint (which seed a data dir's wallet belongs to; reveals nothing).
pub fn fingerprint(seed: &Seed) -> crate::crypto::Hash {
    crate::crypto::TaggedHasher::new("minima/wallet-id/v1").bytes(&seed.0).finish()
}

/// Argon2id costs: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Costs {
    /// Memory (KiB).
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Costs {
    /// Defaults for phones: 64 MiB, 3 passes, 1 lane.
    pub const DEFAULT: Costs = Costs { m_kib: 64 * 1024, t: 3, p: 1 };
    /// Largest memory cost a sealed seed may ask for (1 GiB): a crafted blob cannot make us
    /// allocate more.
    pub const MAX_M_KIB: u32 = 1024 * 1024;
}

/// A seed sealed under a passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSeed {
    costs: Costs,
    salt: [u8; 16],
    nonce: [u8; 24],
    ciphertext: Vec<u8>,
}

const AAD: &[u8] = b"minima/seed/v1";
const VERSION: u8 = 1;

/// The sealing key (wiped when dropped).
fn key(passphrase: &[u8], salt: &[u8; 16], c: Costs) -> Result<Zeroizing<[u8; 32]>, WalletError> {
    if c.m_kib > Costs::MAX_M_KIB {
        return Err(WalletError::Kdf(format!("memory cost {} KiB above the limit", c.m_kib)));
    }
    let params = KdfParams::new(c.m_kib, c.t, c.p, Some(32)).map_err(|e| WalletError::Kdf(e.to_string()))?;
    let mut k = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut *k)
        .map_err(|e| WalletError::Kdf(e.to_string()))?;
    Ok(k)
}

impl SealedSeed {
    /// Seal `seed` under `passphrase` with [`Costs::DEFAULT`].
    pub fn seal(seed: &Seed, passphrase: &[u8]) -> Result<SealedSeed, WalletError> {
        Self::seal_with(seed, passphrase, Costs::DEFAULT)
    }

    /// Seal with chosen costs.
    pub fn seal_with(seed: &Seed, passphrase: &[u8], costs: Costs) -> Result<SealedSeed, WalletError> {
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        random(&mut salt)?;
        random(&mut nonce)?;
        let k = key(passphrase, &salt, costs)?;
        let ciphertext = XChaCha20Poly1305::new(&(*k).into())
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &seed.0, aad: AAD })
            .map_err(|_| WalletError::Kdf("encryption failed".into()))?;
        Ok(SealedSeed { costs, salt, nonce, ciphertext })
    }

    /// Open with `passphrase`.
    pub fn open(&self, passphrase: &[u8]) -> Result<Seed, WalletError> {
        let k = key(passphrase, &self.salt, self.costs)?;
        let plain = Zeroizing::new(
            XChaCha20Poly1305::new(&(*k).into())
                .decrypt(XNonce::from_slice(&self.nonce), Payload { msg: &self.ciphertext, aad: AAD })
                .map_err(|_| WalletError::WrongPassphrase)?,
        );
        if plain.len() != 32 {
            return Err(WalletError::WrongPassphrase);
        }
        let mut seed = Seed([0; 32]);
        seed.0.copy_from_slice(&plain);
        Ok(seed)
    }
}

impl Encode for SealedSeed {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        for v in [self.costs.m_kib, self.costs.t, self.costs.p] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
    }
}

impl Decode for SealedSeed {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let v = r.u8("sealed.version")?;
        if v != VERSION {
            return Err(CodecError::InvalidTag { field: "sealed.version", tag: v });
        }
        let costs = Costs { m_kib: r.u32("sealed.m")?, t: r.u32("sealed.t")?, p: r.u32("sealed.p")? };
        Ok(SealedSeed {
            costs,
            salt: r.array("sealed.salt")?,
            nonce: r.array("sealed.nonce")?,
            // 32 bytes of seed + 16 of tag.
            ciphertext: r.array::<48>("sealed.ciphertext")?.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Costs = Costs { m_kib: 1024, t: 1, p: 1 };

    #[test]
    fn seals_and_opens_and_refuses_the_wrong_passphrase_or_altered_bytes() {
        let seed = Seed([7; 32]);
        let s = SealedSeed::seal_with(&seed, b"correct horse", FAST).unwrap();
        assert_eq!(s.open(b"correct horse").unwrap(), seed);
        assert_eq!(s.open(b"wrong horse"), Err(WalletError::WrongPassphrase));
        let bytes = s.encode();
        assert_eq!(bytes.len(), 1 + 12 + 16 + 24 + 48);
        assert_eq!(SealedSeed::decode(&bytes).unwrap(), s);
        for i in [0usize, 13, 30, 60, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 1;
            if let Ok(t) = SealedSeed::decode(&b) {
                assert!(t.open(b"correct horse").is_err(), "byte {i} altered, still opens");
            }
        }
        assert!(matches!(SealedSeed::decode(&bytes[..40]), Err(CodecError::UnexpectedEnd { .. })));
        // Two seals of one seed differ (fresh salt and nonce).
        let again = SealedSeed::seal_with(&seed, b"correct horse", FAST).unwrap();
        assert_ne!(again.encode(), bytes);
    }

    #[test]
    fn amounts_parse_and_print() {
        assert_eq!(parse_coins("10"), Ok(10 * UNITS_PER_COIN));
        assert_eq!(parse_coins("0.5"), Ok(UNITS_PER_COIN / 2));
        assert_eq!(parse_coins(".000000001"), Ok(1));
        assert_eq!(parse_coins("0"), Ok(0));
        for bad in ["", ".", "1.0000000001", "-1", "1e3", "abc", "1.2.3", " 1"] {
            assert!(matches!(parse_coins(bad), Err(WalletError::BadAmount(_))), "{bad}");
        }
        assert_eq!(parse_coins("18446744074"), Err(WalletError::AmountOverflow));
        assert_eq!(format_coins(10 * UNITS_PER_COIN), "10");
        assert_eq!(format_coins(1_500_000_000), "1.5");
        assert_eq!(format_coins(1), "0.000000001");
    }

    #[test]
    fn a_crafted_memory_cost_is_refused_and_the_seed_never_prints() {
        let seed = Seed([9; 32]);
        let mut s = SealedSeed::seal_with(&seed, b"pw", FAST).unwrap();
        s.costs.m_kib = u32::MAX;
        assert!(matches!(s.open(b"pw"), Err(WalletError::Kdf(_))));
        assert_eq!(format!("{seed:?}"), "Seed(…)");
        assert!(!format!("{s:?}").contains("9, 9, 9"));
        let fresh = Seed::generate().unwrap();
        assert_ne!(fresh, Seed::generate().unwrap());
    }

    #[test]
    fn seeds_are_wiped() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<Seed>();
        let mut seed = Seed([5; 32]);
        seed.zeroize();
        assert_eq!(seed.0, [0; 32]);
        // The sealing key is wiped too (its type says so).
        let k: Zeroizing<[u8; 32]> = key(b"pw", &[1; 16], FAST).unwrap();
        assert_ne!(*k, [0; 32]);
    }
}
