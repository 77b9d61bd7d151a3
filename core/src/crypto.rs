//! Hashes, SPHINCS+ keys and signatures, seed derivation, addresses and seed phrases
//! (SPEC §1–§2).

use std::fmt;

use pqcrypto_sphincsplus::sphincsshake128ssimple as sphincs;
use pqcrypto_traits::sign::{DetachedSignature as _, PublicKey as _, SecretKey as _};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Shake256};
use thiserror::Error;

use crate::codec::{CodecError, Decode, Encode, Reader};

/// Bytes of a SPHINCS+-SHAKE-128s public key.
pub const PUBLIC_KEY_BYTES: usize = 32;
/// Bytes of a SPHINCS+-SHAKE-128s secret key.
pub const SECRET_KEY_BYTES: usize = 64;
/// Bytes of a SPHINCS+-SHAKE-128s signature.
pub const SIGNATURE_BYTES: usize = 7_856;
/// Bytes of the seed `crypto_sign_seed_keypair` takes (SK.seed ‖ SK.prf ‖ PK.seed).
pub const KEYPAIR_SEED_BYTES: usize = 48;

/// A SHA3-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// All zero bytes (genesis parents, the empty MMR).
    pub const ZERO: Hash = Hash([0; 32]);

    /// The bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Hash, CryptoError> {
        let v = hex::decode(s).map_err(|_| CryptoError::BadHex)?;
        let a: [u8; 32] = v.try_into().map_err(|_| CryptoError::BadHex)?;
        Ok(Hash(a))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Encode for Hash {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn encoded_len(&self) -> usize {
        32
    }
}

impl Decode for Hash {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Hash(r.array("hash")?))
    }
}

/// SHA3-256 of `data`.
pub fn sha3(data: &[u8]) -> Hash {
    Hash(Sha3_256::digest(data).into())
}

/// An incremental SHA3-256 over a domain tag and encoded values: `H(tag, x…)` of SPEC §1.
#[derive(Clone)]
pub struct TaggedHasher(Sha3_256);

impl TaggedHasher {
    /// Start a hash with the ASCII `tag`.
    pub fn new(tag: &str) -> Self {
        let mut h = Sha3_256::new();
        Digest::update(&mut h, tag.as_bytes());
        TaggedHasher(h)
    }
    /// Absorb raw bytes.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        Digest::update(&mut self.0, b);
        self
    }
    /// Absorb the encoding of a value.
    pub fn value<T: Encode + ?Sized>(self, v: &T) -> Self {
        let e = v.encode();
        self.bytes(&e)
    }
    /// The digest.
    pub fn finish(self) -> Hash {
        Hash(self.0.finalize().into())
    }
}

/// Errors of keys, signatures, addresses and seed phrases.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// Not valid hex of the right length.
    #[error("invalid hex")]
    BadHex,
    /// The C library refused to derive a key pair.
    #[error("key derivation failed")]
    KeyDerivation,
    /// The address is not valid bech32m (bad characters or checksum).
    #[error("invalid address: {0}")]
    AddressEncoding(String),
    /// The address is for another network.
    #[error("address prefix '{found}' is not this network's '{expected}'")]
    WrongNetwork {
        /// This network's prefix.
        expected: &'static str,
        /// The prefix found.
        found: String,
    },
    /// The address does not carry 32 bytes.
    #[error("address payload is {0} bytes, expected 32")]
    AddressLength(usize),
    /// Not a valid 24-word BIP39 phrase.
    #[error("invalid seed phrase: {0}")]
    SeedPhrase(String),
}

/// A SPHINCS+-SHAKE-128s public key (PK.seed ‖ root).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_BYTES]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(&self.0[..8]))
    }
}

impl PublicKey {
    /// The default wallet script for this key: `RETURN SIGNEDBY(0x<64 uppercase hex>)`.
    pub fn default_script(&self) -> String {
        format!("RETURN SIGNEDBY(0x{})", hex::encode_upper(self.0))
    }
    /// The address of [`PublicKey::default_script`].
    pub fn default_address(&self) -> Hash {
        script_address(&self.default_script())
    }
}

impl Encode for PublicKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}
impl Decode for PublicKey {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(PublicKey(r.array("public_key")?))
    }
}

/// A SPHINCS+-SHAKE-128s detached signature, exactly [`SIGNATURE_BYTES`] long.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(Vec<u8>);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..8.min(self.0.len())]))
    }
}

impl Signature {
    /// Wrap signature bytes; `None` unless exactly [`SIGNATURE_BYTES`] long.
    pub fn from_bytes(b: &[u8]) -> Option<Signature> {
        (b.len() == SIGNATURE_BYTES).then(|| Signature(b.to_vec()))
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Encode for Signature {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn encoded_len(&self) -> usize {
        SIGNATURE_BYTES
    }
}
impl Decode for Signature {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Signature(r.take(SIGNATURE_BYTES, "signature")?.to_vec()))
    }
}

/// A secret key. Never printed; zeroed on drop.
#[derive(Clone)]
pub struct SecretKey([u8; SECRET_KEY_BYTES]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: `b` is a valid, aligned, exclusive reference; a volatile write keeps the
            // compiler from eliding the wipe.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// A key pair.
#[derive(Clone, Debug)]
pub struct Keypair {
    /// The public half.
    pub public: PublicKey,
    secret: SecretKey,
}

extern "C" {
    // The `clean` PQClean build inside pqcrypto-sphincsplus is compiled on every target and
    // carries the deterministic key generation its Rust API does not expose (SPEC §1).
    fn PQCLEAN_SPHINCSSHAKE128SSIMPLE_CLEAN_crypto_sign_seed_keypair(
        pk: *mut u8,
        sk: *mut u8,
        seed: *const u8,
    ) -> i32;
}

// The AVX2 build of the same function (same keys, about three times faster), compiled on
// x86-64 with the crate's `avx2` feature; used when the CPU has AVX2.
#[cfg(target_arch = "x86_64")]
extern "C" {
    fn PQCLEAN_SPHINCSSHAKE128SSIMPLE_AVX2_crypto_sign_seed_keypair(
        pk: *mut u8,
        sk: *mut u8,
        seed: *const u8,
    ) -> i32;
}

impl Keypair {
    /// Deterministic key pair from 48 seed bytes (SK.seed ‖ SK.prf ‖ PK.seed).
    pub fn from_seed(seed: &[u8; KEYPAIR_SEED_BYTES]) -> Result<Keypair, CryptoError> {
        let mut pk = [0u8; PUBLIC_KEY_BYTES];
        let mut sk = [0u8; SECRET_KEY_BYTES];
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        // SAFETY: the buffers have exactly the sizes the C functions write (32, 64) and read (48);
        // the AVX2 one runs only on a CPU that has AVX2.
        let rc = unsafe {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                PQCLEAN_SPHINCSSHAKE128SSIMPLE_AVX2_crypto_sign_seed_keypair(
                    pk.as_mut_ptr(),
                    sk.as_mut_ptr(),
                    seed.as_ptr(),
                )
            } else {
                PQCLEAN_SPHINCSSHAKE128SSIMPLE_CLEAN_crypto_sign_seed_keypair(
                    pk.as_mut_ptr(),
                    sk.as_mut_ptr(),
                    seed.as_ptr(),
                )
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = avx2;
                PQCLEAN_SPHINCSSHAKE128SSIMPLE_CLEAN_crypto_sign_seed_keypair(
                    pk.as_mut_ptr(),
                    sk.as_mut_ptr(),
                    seed.as_ptr(),
                )
            }
        };
        if rc != 0 {
            return Err(CryptoError::KeyDerivation);
        }
        Ok(Keypair { public: PublicKey(pk), secret: SecretKey(sk) })
    }

    /// Key `index` of a 32-byte wallet seed:
    /// `crypto_sign_seed_keypair(SHAKE256("minima/key/v1" ‖ seed ‖ u32 index) → 48 bytes)`.
    pub fn derive(wallet_seed: &[u8; 32], index: u32) -> Result<Keypair, CryptoError> {
        let mut shake = Shake256::default();
        shake.update(b"minima/key/v1");
        shake.update(wallet_seed);
        shake.update(&index.to_be_bytes());
        let mut seed = [0u8; KEYPAIR_SEED_BYTES];
        shake.finalize_xof().read(&mut seed);
        let kp = Keypair::from_seed(&seed);
        seed.iter_mut().for_each(|b| *b = 0);
        kp
    }

    /// Sign arbitrary bytes (callers sign domain-separated digests only).
    pub fn sign_raw(&self, msg: &[u8]) -> Signature {
        // The secret key bytes came from the C library itself: the length is right.
        let sk = sphincs::SecretKey::from_bytes(&self.secret.0)
            .unwrap_or_else(|_| unreachable!("secret key has the library's length"));
        Signature(sphincs::detached_sign(msg, &sk).as_bytes().to_vec())
    }

    /// Sign a transaction: the message is `H("minima/tx/v1", chain_id, txid)`.
    pub fn sign_tx(&self, chain_id: u8, txid: &Hash) -> Signature {
        self.sign_raw(tx_sign_digest(chain_id, txid).as_bytes())
    }

    /// Sign data for a script's `CHECKSIG`: the message is `H("minima/msg/v1", data)`.
    pub fn sign_message(&self, data: &[u8]) -> Signature {
        self.sign_raw(message_digest(data).as_bytes())
    }
}

/// The digest a transaction signature signs.
pub fn tx_sign_digest(chain_id: u8, txid: &Hash) -> Hash {
    TaggedHasher::new("minima/tx/v1").bytes(&[chain_id]).bytes(&txid.0).finish()
}

/// The digest `CHECKSIG` verifies over.
pub fn message_digest(data: &[u8]) -> Hash {
    TaggedHasher::new("minima/msg/v1").bytes(data).finish()
}

static VERIFICATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
thread_local! {
    static THREAD_VERIFICATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// SPHINCS+ verifications this process has run (what an attacker makes us spend; tests of
/// check order and of replayed invalid data read it).
pub fn verifications() -> u64 {
    VERIFICATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// SPHINCS+ verifications the calling thread has run.
pub fn thread_verifications() -> u64 {
    THREAD_VERIFICATIONS.with(|c| c.get())
}

/// Verify a detached signature over raw bytes.
pub fn verify_raw(pk: &PublicKey, msg: &[u8], sig: &Signature) -> bool {
    VERIFICATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    THREAD_VERIFICATIONS.with(|c| c.set(c.get() + 1));
    let (Ok(pk), Ok(sig)) =
        (sphincs::PublicKey::from_bytes(&pk.0), sphincs::DetachedSignature::from_bytes(&sig.0))
    else {
        return false;
    };
    sphincs::verify_detached_signature(&sig, msg, &pk).is_ok()
}

/// Verify a transaction signature. A signature verified before (the same key, network,
/// transaction and signature, among the last [`VERIFIED_CACHE`]) is not verified again: the
/// mempool's verdict stands when the transaction arrives in a block, and nodes sharing a
/// process (the simulator) verify each signature once, as Bitcoin Core's signature cache.
/// Only successes are remembered.
pub fn verify_tx(pk: &PublicKey, chain_id: u8, txid: &Hash, sig: &Signature) -> bool {
    let key = TaggedHasher::new("minima/verified-sig/v1")
        .bytes(&pk.0)
        .bytes(&[chain_id])
        .bytes(&txid.0)
        .bytes(&sig.0)
        .finish();
    if verified().lock().unwrap_or_else(|e| e.into_inner()).0.contains(&key) {
        return true;
    }
    let ok = verify_raw(pk, tx_sign_digest(chain_id, txid).as_bytes(), sig);
    if ok {
        let mut v = verified().lock().unwrap_or_else(|e| e.into_inner());
        if v.0.insert(key) {
            v.1.push_back(key);
            if v.1.len() > VERIFIED_CACHE {
                if let Some(old) = v.1.pop_front() {
                    v.0.remove(&old);
                }
            }
        }
    }
    ok
}

/// Transaction signatures remembered as verified (≈ 100 bytes each).
pub const VERIFIED_CACHE: usize = 4096;

type Verified = (std::collections::HashSet<Hash>, std::collections::VecDeque<Hash>);

fn verified() -> &'static std::sync::Mutex<Verified> {
    static V: std::sync::OnceLock<std::sync::Mutex<Verified>> = std::sync::OnceLock::new();
    V.get_or_init(Default::default)
}

/// Forget every signature remembered as verified: `minima bench` measures the verification
/// itself, not a look-up in this cache.
pub fn forget_verified() {
    let mut v = verified().lock().unwrap_or_else(|e| e.into_inner());
    v.0.clear();
    v.1.clear();
}

/// Verify a `CHECKSIG` message signature.
pub fn verify_message(pk: &PublicKey, data: &[u8], sig: &Signature) -> bool {
    verify_raw(pk, message_digest(data).as_bytes(), sig)
}

/// Address of a script: SHA3 of its ASCII bytes.
pub fn script_address(script: &str) -> Hash {
    sha3(script.as_bytes())
}

/// The bech32m prefix of a chain id: `mx` main, `mxt` test, `mxd` devnet.
pub fn address_prefix(chain_id: u8) -> &'static str {
    match chain_id {
        0 => "mx",
        1 => "mxt",
        _ => "mxd",
    }
}

/// The human form of an address on a network.
pub fn encode_address(address: &Hash, chain_id: u8) -> String {
    let hrp = bech32::Hrp::parse_unchecked(address_prefix(chain_id));
    bech32::encode::<bech32::Bech32m>(hrp, &address.0)
        .unwrap_or_else(|_| unreachable!("32 bytes always fit a bech32m string"))
}

/// Parse a human address, checking its checksum and that it belongs to `chain_id`'s network.
pub fn decode_address(s: &str, chain_id: u8) -> Result<Hash, CryptoError> {
    if s.len() > 200 {
        return Err(CryptoError::AddressEncoding("too long".into()));
    }
    let checked = bech32::primitives::decode::CheckedHrpstring::new::<bech32::Bech32m>(s)
        .map_err(|e| CryptoError::AddressEncoding(e.to_string()))?;
    let expected = address_prefix(chain_id);
    let found = checked.hrp().to_lowercase();
    if found != expected {
        return Err(CryptoError::WrongNetwork { expected, found });
    }
    let data: Vec<u8> = checked.byte_iter().collect();
    let a: [u8; 32] = data.try_into().map_err(|v: Vec<u8>| CryptoError::AddressLength(v.len()))?;
    Ok(Hash(a))
}

/// The 24 BIP39 words of a 32-byte wallet seed.
pub fn seed_to_phrase(seed: &[u8; 32]) -> String {
    bip39::Mnemonic::from_entropy(seed)
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid BIP39 entropy length"))
        .to_string()
}

/// The 32-byte wallet seed of a 24-word BIP39 phrase (checksum checked).
pub fn phrase_to_seed(phrase: &str) -> Result<[u8; 32], CryptoError> {
    if phrase.len() > 1_000 {
        return Err(CryptoError::SeedPhrase("too long".into()));
    }
    // The mnemonic wipes itself on drop (bip39's `zeroize`); so does the entropy copy here.
    let m = bip39::Mnemonic::parse(phrase).map_err(|e| CryptoError::SeedPhrase(e.to_string()))?;
    let (mut e, n) = m.to_entropy_array();
    let seed = (n == 32).then(|| {
        let mut s = [0u8; 32];
        s.copy_from_slice(&e[..32]);
        s
    });
    zeroize::Zeroize::zeroize(&mut e);
    seed.ok_or_else(|| CryptoError::SeedPhrase("need 24 words (32 bytes of entropy)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_hash_is_domain_separated() {
        let a = TaggedHasher::new("a").bytes(b"x").finish();
        let b = TaggedHasher::new("b").bytes(b"x").finish();
        assert_ne!(a, b);
        assert_eq!(a, sha3(b"ax"));
    }

    #[test]
    fn address_round_trip_and_errors() {
        let h = sha3(b"RETURN TRUE");
        for chain in 0..3u8 {
            let s = encode_address(&h, chain);
            assert!(s.starts_with(address_prefix(chain)));
            assert_eq!(decode_address(&s, chain), Ok(h));
        }
        let s = encode_address(&h, 2);
        assert!(matches!(decode_address(&s, 0), Err(CryptoError::WrongNetwork { .. })));
        let mut bad = s.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'q' { b'p' } else { b'q' };
        let bad = String::from_utf8(bad).unwrap();
        assert!(matches!(decode_address(&bad, 2), Err(CryptoError::AddressEncoding(_))));
    }

    #[test]
    fn phrase_round_trip() {
        let seed = [7u8; 32];
        let p = seed_to_phrase(&seed);
        assert_eq!(p.split(' ').count(), 24);
        assert_eq!(phrase_to_seed(&p), Ok(seed));
        assert!(phrase_to_seed("abandon abandon").is_err());
    }
}
