//! Committed vectors: fixed seeds → SPHINCS+ public keys → default scripts → addresses.
//! Signing is randomised, so signatures are checked by verification, not by bytes.

use minima_core::crypto::*;

/// (name, wallet seed, key index, public key, address, devnet bech32m address)
type Vector = (&'static str, [u8; 32], u32, &'static str, &'static str, &'static str);

const VECTORS: &[Vector] = &[
    (
        "zero",
        [0u8; 32],
        0,
        "2b14814b7881f1691e4183a54be829a168b4f0ff478dad22ae4f041e8c40e423",
        "a93ee6752edd004235211e1d96d5a7d54389e25fe57dd73c8db58588d59390ac",
        "mxd14ylwvafwm5qyydfprcwed4d864pcncjlu47aw0ydkkzc34vnjzkq0k8w7r",
    ),
    (
        "zero",
        [0u8; 32],
        1,
        "c40504fc452a6422d539d7764832cd1c1299cfb06d965026b92e584a3de47f7d",
        "fad3df682e8b950d2f58826ba6350f771ea1f9eb38b0073e654206e88eacea30",
        "mxd1ltfa76pw3w2s6t6csf46vdg0wu02r70t8zcqw0n9ggrw3r4vagcqq45k3c",
    ),
    (
        "ff",
        [0xffu8; 32],
        0,
        "162be69f1b3b3d755582cff9015b7c5f71cc13e92834ec31e02dee578588be75",
        "bf9b6db86709175276eaacab70c32347cbac7ac7c03d11e39bc8072a07aede6a",
        "mxd1h7dkmwr8pyt4yah24j4hpsergl96c7k8cq73rcumeqrj5pawme4qgwdesw",
    ),
    (
        "ff",
        [0xffu8; 32],
        1,
        "d693dba1d76f3fb79c9d5be58a669198e4fc7e88ec31841e0a6e47bd35e54e2d",
        "533616f7991436609334749ed7ec883fda444194b1b6883ad66932f2fa4e1b80",
        "mxd12vmpdauezsmxpye5wj0d0myg8ldygsv5kxmgswkkdye097jwrwqq52w6qe",
    ),
];

#[test]
fn seeds_give_fixed_keys_scripts_and_addresses() {
    for (name, seed, idx, pk_hex, addr_hex, bech) in VECTORS {
        let kp = Keypair::derive(seed, *idx).unwrap();
        assert_eq!(hex::encode(kp.public.0), *pk_hex, "{name}/{idx} public key");
        let script = kp.public.default_script();
        assert_eq!(script, format!("RETURN SIGNEDBY(0x{})", pk_hex.to_uppercase()));
        assert_eq!(script_address(&script).to_hex(), *addr_hex, "{name}/{idx} address");
        assert_eq!(encode_address(&kp.public.default_address(), 2), *bech);
        assert_eq!(decode_address(bech, 2).unwrap().to_hex(), *addr_hex);
    }
}

#[test]
fn raw_seed_keypair_layout() {
    // pk = PK.seed ‖ root, and PK.seed is the last 16 bytes of the 48-byte seed.
    let seed: [u8; 48] = core::array::from_fn(|i| i as u8);
    let kp = Keypair::from_seed(&seed).unwrap();
    assert_eq!(hex::encode(kp.public.0), "202122232425262728292a2b2c2d2e2f89fd81fdbb5b94129b14761bdc6bf682");
}

#[test]
fn bip39_vector() {
    let p = seed_to_phrase(&[0u8; 32]);
    assert_eq!(p, "abandon ".repeat(23) + "art");
    assert_eq!(phrase_to_seed(&p).unwrap(), [0u8; 32]);
    // A wrong checksum word is refused.
    assert!(phrase_to_seed(&("abandon ".repeat(23) + "abandon")).is_err());
    // 12 words are not a wallet seed here.
    let twelve =
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    assert!(phrase_to_seed(twelve).is_err());
}

#[test]
fn signatures_verify_and_any_flipped_bit_fails() {
    let kp = Keypair::derive(&[0u8; 32], 0).unwrap();
    let other = Keypair::derive(&[0u8; 32], 1).unwrap();
    let txid = sha3(b"a transaction");
    let sig = kp.sign_tx(2, &txid);
    assert_eq!(sig.as_bytes().len(), SIGNATURE_BYTES);
    assert!(verify_tx(&kp.public, 2, &txid, &sig));
    // Message: another txid, another chain id.
    let mut t2 = txid;
    t2.0[0] ^= 1;
    assert!(!verify_tx(&kp.public, 2, &t2, &sig));
    assert!(!verify_tx(&kp.public, 1, &txid, &sig));
    // Key: a flipped bit, another key.
    let mut pk = kp.public;
    pk.0[31] ^= 0x80;
    assert!(!verify_tx(&pk, 2, &txid, &sig));
    assert!(!verify_tx(&other.public, 2, &txid, &sig));
    // Signature: flipped bits at the start, middle and end.
    for pos in [0, SIGNATURE_BYTES / 2, SIGNATURE_BYTES - 1] {
        let mut b = sig.as_bytes().to_vec();
        b[pos] ^= 1;
        let s = Signature::from_bytes(&b).unwrap();
        assert!(!verify_tx(&kp.public, 2, &txid, &s), "flip at {pos}");
    }
    assert!(Signature::from_bytes(&sig.as_bytes()[1..]).is_none());
}

#[test]
fn message_signatures_never_authorise_transactions() {
    // A CHECKSIG signature over data equal to a txid signs H("minima/msg/v1", data), which is
    // not the H("minima/tx/v1", chain, txid) a spend needs — and the other way round.
    let kp = Keypair::derive(&[0xffu8; 32], 0).unwrap();
    let txid = sha3(b"spend me");
    let msg_sig = kp.sign_message(&txid.0);
    assert!(verify_message(&kp.public, &txid.0, &msg_sig));
    for chain in 0..3 {
        assert!(!verify_tx(&kp.public, chain, &txid, &msg_sig));
    }
    let tx_sig = kp.sign_tx(2, &txid);
    assert!(!verify_message(&kp.public, &txid.0, &tx_sig));
    assert_ne!(message_digest(&txid.0), tx_sign_digest(2, &txid));
}
