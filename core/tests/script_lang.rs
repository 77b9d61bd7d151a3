//! The v1 script language: a positive and a negative test for every statement, operator,
//! function and global; golden vectors pinning the semantics; 10,000 generated scripts that
//! never panic and always stop within the instruction limit.

use std::sync::OnceLock;

use minima_core::crypto::{sha3, Hash, Keypair, PublicKey};
use minima_core::script::{run_script, Context, Limits, ScriptError, SigCache};
use minima_core::types::{Coin, Output, StateVar, Transaction};
use minima_core::Params;
use proptest::prelude::*;

fn keys() -> &'static (Keypair, Keypair) {
    static K: OnceLock<(Keypair, Keypair)> = OnceLock::new();
    K.get_or_init(|| (Keypair::derive(&[1; 32], 0).unwrap(), Keypair::derive(&[1; 32], 1).unwrap()))
}

fn coin() -> Coin {
    Coin {
        coin_id: sha3(b"coin"),
        address: Hash([0xAA; 32]),
        amount: 1000,
        token_id: Hash::ZERO,
        state: vec![StateVar { port: 3, data: vec![0xAB] }],
    }
}

fn tx() -> Transaction {
    Transaction {
        version: 1,
        inputs: vec![coin(), coin()],
        outputs: vec![Output { address: Hash([0xBB; 32]), amount: 600, token_id: Hash::ZERO, state: vec![] }],
        state: vec![StateVar { port: 1, data: vec![0x01, 0x02] }],
    }
}

fn limits() -> Limits {
    Limits::from_params(&Params::devnet())
}

/// Run `src` for input 1 of `tx()` in block 15, the coin created at 10, signed by key 0.
fn run(src: &str) -> Result<u32, ScriptError> {
    run_with(src, &[keys().0.public])
}

fn run_with(src: &str, signers: &[PublicKey]) -> Result<u32, ScriptError> {
    let c = coin();
    let t = tx();
    let ctx = Context { block: 15, input_index: 1, coin: &c, created: 10, tx: &t, signers };
    run_script(src, ctx, &limits(), &mut SigCache::new()).map(|s| s.instructions)
}

fn pass(src: &str) {
    assert!(run(src).is_ok(), "{src}: {:?}", run(src));
}
fn fail(src: &str, e: ScriptError) {
    assert_eq!(run(src).map(|_| ()), Err(e), "{src}");
}

fn hexpk(k: &Keypair) -> String {
    format!("0x{}", hex::encode_upper(k.public.0))
}

#[test]
fn statements() {
    pass("RETURN TRUE");
    fail("RETURN FALSE", ScriptError::ReturnedFalse);
    pass("LET x = 5 RETURN x EQ 5");
    fail("RETURN y EQ 5", ScriptError::UndefinedVariable);
    pass("IF FALSE THEN RETURN FALSE ELSEIF TRUE THEN RETURN TRUE ELSE RETURN FALSE ENDIF");
    fail(
        "IF FALSE THEN RETURN TRUE ELSEIF FALSE THEN RETURN TRUE ELSE RETURN FALSE ENDIF",
        ScriptError::ReturnedFalse,
    );
    fail("IF TRUE THEN RETURN TRUE", ScriptError::Parse("IF without ENDIF"));
    fail("IF 1 THEN RETURN TRUE ENDIF", ScriptError::Type("expected BOOL"));
    pass("ASSERT TRUE RETURN TRUE");
    fail("ASSERT 1 EQ 2 RETURN TRUE", ScriptError::AssertFailed);
    fail("LET x = 1", ScriptError::NoReturn);
    fail("RETURN", ScriptError::Parse("expected a value"));
}

#[test]
fn boolean_and_arithmetic_operators() {
    pass("RETURN TRUE AND TRUE");
    fail("RETURN TRUE AND FALSE", ScriptError::ReturnedFalse);
    pass("RETURN FALSE OR TRUE");
    fail("RETURN FALSE OR FALSE", ScriptError::ReturnedFalse);
    pass("RETURN NOT FALSE");
    fail("RETURN NOT TRUE", ScriptError::ReturnedFalse);
    fail("RETURN NOT 1", ScriptError::Type("expected BOOL"));
    pass("RETURN 2 + 3 EQ 5");
    fail("RETURN 2 + 0x01 EQ 3", ScriptError::Type("expected NUMBER"));
    pass("RETURN 2 - 3 EQ -1");
    fail("RETURN 0 - 170141183460469231731687303715884105727 - 2 EQ 0", ScriptError::Overflow);
    pass("RETURN 6 * 7 EQ 42");
    fail("RETURN 170141183460469231731687303715884105727 * 2 EQ 0", ScriptError::Overflow);
    pass("RETURN 7 / 2 EQ 3 AND -7 / 2 EQ -3");
    fail("RETURN 1 / 0 EQ 0", ScriptError::DivisionByZero);
    pass("RETURN 7 % 3 EQ 1 AND -7 % 3 EQ -1");
    fail("RETURN 1 % 0 EQ 0", ScriptError::DivisionByZero);
    pass("RETURN 1 + 2 * 3 EQ 7 AND (1 + 2) * 3 EQ 9");
    fail("RETURN 1 + 2 * 3 EQ 9", ScriptError::ReturnedFalse);
    fail("RETURN 999999999999999999999999999999999999999999 EQ 1", ScriptError::Overflow);
}

#[test]
fn comparisons() {
    pass("RETURN 0x0102 EQ 0x0102");
    fail("RETURN 0x0102 EQ 1", ScriptError::Type("EQ/NEQ of different types"));
    pass("RETURN 1 NEQ 2");
    fail("RETURN 1 NEQ 1", ScriptError::ReturnedFalse);
    pass("RETURN 1 LT 2");
    fail("RETURN 2 LT 2", ScriptError::ReturnedFalse);
    pass("RETURN 3 GT 2");
    fail("RETURN 0x03 GT 0x02", ScriptError::Type("expected NUMBER"));
    pass("RETURN 2 LTE 2");
    fail("RETURN 3 LTE 2", ScriptError::ReturnedFalse);
    pass("RETURN 2 GTE 2");
    fail("RETURN 1 GTE 2", ScriptError::ReturnedFalse);
    pass("RETURN TRUE EQ TRUE");
}

#[test]
fn signatures_in_scripts() {
    let (k0, k1) = keys();
    pass(&format!("RETURN SIGNEDBY({})", hexpk(k0)));
    fail(&format!("RETURN SIGNEDBY({})", hexpk(k1)), ScriptError::ReturnedFalse);
    fail("RETURN SIGNEDBY(0x01)", ScriptError::BadArgument("public key must be 32 bytes"));
    pass(&format!("RETURN MULTISIG(1, {}, {})", hexpk(k0), hexpk(k1)));
    fail(&format!("RETURN MULTISIG(2, {}, {})", hexpk(k0), hexpk(k1)), ScriptError::ReturnedFalse);
    assert!(run_with(&format!("RETURN MULTISIG(2, {}, {})", hexpk(k0), hexpk(k1)), &[k0.public, k1.public])
        .is_ok());
    // The same key listed twice counts once.
    fail(&format!("RETURN MULTISIG(2, {}, {})", hexpk(k0), hexpk(k0)), ScriptError::ReturnedFalse);
    // A signature (7,856 bytes) does not fit an 8 KiB script as hex: it travels in the
    // transaction state, which the script reads with STATE.
    let data = b"oracle says 42";
    let sig = k1.sign_message(data);
    let txsig = k1.sign_tx(2, &sha3(data));
    let mut bad_sig = sig.as_bytes().to_vec();
    bad_sig[100] ^= 1;
    let mut t = tx();
    t.state = vec![
        StateVar { port: 1, data: vec![0x01, 0x02] },
        StateVar { port: 5, data: sig.as_bytes().to_vec() },
        StateVar { port: 6, data: bad_sig },
        StateVar { port: 7, data: txsig.as_bytes().to_vec() },
        StateVar { port: 8, data: sha3(data).0.to_vec() },
    ];
    let c = coin();
    let run_t = |src: &str| {
        let ctx = Context { block: 15, input_index: 1, coin: &c, created: 10, tx: &t, signers: &[] };
        run_script(src, ctx, &limits(), &mut SigCache::new())
    };
    let good = format!("CHECKSIG({}, 0x{}, STATE(5))", hexpk(k1), hex::encode(data));
    let stats = run_t(&format!("RETURN {good}")).unwrap();
    assert_eq!(stats.sigops, 1);
    assert!(stats.instructions >= 64);
    assert_eq!(
        run_t(&format!("RETURN CHECKSIG({}, 0x{}, STATE(6))", hexpk(k1), hex::encode(data))).map(|_| ()),
        Err(ScriptError::ReturnedFalse)
    );
    assert_eq!(
        run_t(&format!("RETURN CHECKSIG({}, 0x{}, STATE(5))", hexpk(k0), hex::encode(data))).map(|_| ()),
        Err(ScriptError::ReturnedFalse)
    );
    assert_eq!(
        run_t(&format!("RETURN CHECKSIG({}, 0x{}, 0x00)", hexpk(k1), hex::encode(data))).map(|_| ()),
        Err(ScriptError::ReturnedFalse)
    );
    // A transaction signature over a txid equal to the data is not a message signature.
    assert_eq!(
        run_t(&format!("RETURN CHECKSIG({}, STATE(8), STATE(7))", hexpk(k1))).map(|_| ()),
        Err(ScriptError::ReturnedFalse)
    );
    // CHECKSIG costs 64 instructions and a sig-op (cached results cost the same);
    // `ASSERT CHECKSIG(pk, data, STATE(5))` costs 69: 14 fit in 1,024 instructions, 15 do not.
    let many = |n: usize| format!("{}RETURN TRUE", format!("ASSERT {good}\n").repeat(n));
    let stats = run_t(&many(14)).unwrap();
    assert_eq!(stats.sigops, 14);
    assert_eq!(stats.instructions, 14 * 69 + 2);
    assert_eq!(run_t(&many(15)).map(|_| ()), Err(ScriptError::InstructionLimit));
}

#[test]
fn functions_and_globals() {
    pass(&format!("RETURN SHA3(0x01) EQ 0x{}", hex::encode(sha3(&[1]).0)));
    fail("RETURN SHA3(1) EQ 0x00", ScriptError::Type("expected HEX"));
    pass("RETURN STATE(1) EQ 0x0102");
    fail("RETURN STATE(2) EQ 0x00", ScriptError::StateMissing(2));
    fail("RETURN STATE(256) EQ 0x00", ScriptError::BadArgument("port must be 0..=255"));
    pass("RETURN PREVSTATE(3) EQ 0xAB");
    fail("RETURN PREVSTATE(1) EQ 0xAB", ScriptError::StateMissing(1));
    let bb = format!("0x{}", hex::encode([0xBB; 32]));
    let zero = format!("0x{}", hex::encode([0; 32]));
    pass(&format!("RETURN VERIFYOUT(0, {bb}, 600, {zero})"));
    fail(&format!("RETURN VERIFYOUT(0, {bb}, 601, {zero})"), ScriptError::ReturnedFalse);
    fail(&format!("RETURN VERIFYOUT(1, {bb}, 600, {zero})"), ScriptError::ReturnedFalse);
    pass("RETURN @BLOCK EQ 15");
    fail("RETURN @BLOCK EQ 14", ScriptError::ReturnedFalse);
    pass("RETURN @COINAGE EQ 5");
    fail("RETURN @COINAGE GT 5", ScriptError::ReturnedFalse);
    pass("RETURN @AMOUNT EQ 1000");
    fail("RETURN @AMOUNT EQ 0x03E8", ScriptError::Type("EQ/NEQ of different types"));
    pass(&format!("RETURN @ADDRESS EQ 0x{}", hex::encode([0xAA; 32])));
    fail("RETURN @ADDRESS EQ 0xAA", ScriptError::ReturnedFalse);
    pass(&format!("RETURN @TOKENID EQ {zero}"));
    fail("RETURN @TOKENID EQ 0x", ScriptError::ReturnedFalse);
    pass("RETURN @INPUT EQ 1");
    fail("RETURN @INPUT EQ 0", ScriptError::ReturnedFalse);
    fail("RETURN @NOSUCH EQ 0", ScriptError::Unknown);
    fail("RETURN NOSUCH(1)", ScriptError::Unknown);
    fail("RETURN SHA3(0x01, 0x02) EQ 0x", ScriptError::Parse("wrong number of arguments"));
}

#[test]
fn limits_are_hard() {
    // Instruction limit.
    fail(&format!("{}RETURN TRUE", "LET a = 1\n".repeat(600)), ScriptError::InstructionLimit);
    assert!(run(&format!("{}RETURN TRUE", "LET a = 1\n".repeat(100))).is_ok());
    // Nesting.
    fail(&format!("RETURN {}TRUE{}", "(".repeat(70), ")".repeat(70)), ScriptError::StackDepth);
    pass(&format!("RETURN {}TRUE{}", "(".repeat(20), ")".repeat(20)));
    fail(&format!("RETURN {}TRUE", "NOT ".repeat(100)), ScriptError::StackDepth);
    // Long operator chains nest too: bounded before evaluation recurses.
    fail(&format!("RETURN 1{} EQ 1", " + 1".repeat(100)), ScriptError::StackDepth);
    fail(&format!("RETURN TRUE{}", " AND TRUE".repeat(100)), ScriptError::StackDepth);
    pass(&format!("RETURN 1{} EQ 31", " + 1".repeat(30)));
    // Script size.
    let big = format!("RETURN TRUE {}", " ".repeat(9000));
    assert_eq!(run(&big).map(|_| ()), Err(ScriptError::TooLong(big.len())));
    // Bad tokens.
    fail("RETURN TRUE;", ScriptError::Token(11));
    fail("RETURN 0x0", ScriptError::Token(7));
    fail("RETURN 12abc EQ 1", ScriptError::Token(7));
}

/// Golden vectors: (script, result, instructions on success). A second implementation can
/// replay these with the context of `run`.
const GOLDEN: &[(&str, Result<u32, ScriptError>)] = &[
    ("RETURN TRUE", Ok(2)),
    ("LET a = 3 LET b = a * a RETURN b EQ 9", Ok(10)),
    ("RETURN @BLOCK - @COINAGE EQ 10", Ok(6)),
    ("RETURN -170141183460469231731687303715884105727 - 1 LT 0", Ok(7)),
    ("RETURN -170141183460469231731687303715884105727 - 2 LT 0", Err(ScriptError::Overflow)),
    ("RETURN 10 / 4 * 4 + 10 % 4 EQ 10", Ok(12)),
    ("RETURN FALSE AND 1 / 0 EQ 0", Err(ScriptError::ReturnedFalse)),
    ("RETURN TRUE OR 1 / 0 EQ 0", Ok(3)),
    ("IF @BLOCK GT 10 THEN RETURN TRUE ENDIF RETURN FALSE", Ok(6)),
    ("IF @BLOCK GT 20 THEN RETURN TRUE ENDIF RETURN FALSE", Err(ScriptError::ReturnedFalse)),
    ("RETURN 0x00 EQ 0x", Err(ScriptError::ReturnedFalse)),
    ("RETURN 0xab EQ 0xAB", Ok(4)),
    ("RETURN SHA3(0x) EQ 0xA7FFC6F8BF1ED76651C14756A061D662F580FF4DE43B49FA82D80A4B80F8434A", Ok(5)),
    ("LET x = TRUE RETURN x", Ok(4)),
    ("RETURN 5 EQ 5 EQ TRUE", Err(ScriptError::Parse("expected a statement"))),
];

#[test]
fn golden_vectors() {
    for (src, want) in GOLDEN {
        assert_eq!(&run(src), want, "{src}");
    }
}

const VOCAB: &[&str] = &[
    "RETURN",
    "LET",
    "IF",
    "THEN",
    "ELSEIF",
    "ELSE",
    "ENDIF",
    "ASSERT",
    "AND",
    "OR",
    "NOT",
    "EQ",
    "NEQ",
    "LT",
    "GT",
    "LTE",
    "GTE",
    "TRUE",
    "FALSE",
    "+",
    "-",
    "*",
    "/",
    "%",
    "(",
    ")",
    ",",
    "=",
    "a",
    "b",
    "1",
    "0",
    "170141183460469231731687303715884105727",
    "0x00",
    "0xFFFF",
    "@BLOCK",
    "@COINAGE",
    "@AMOUNT",
    "@ADDRESS",
    "@TOKENID",
    "@INPUT",
    "SHA3",
    "STATE",
    "PREVSTATE",
    "VERIFYOUT",
    "SIGNEDBY",
    "MULTISIG",
    "CHECKSIG",
];

fn generated_script() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(VOCAB), 0..200).prop_map(|v| v.join(" ")),
        // Mostly-valid shapes: repeated statements with nesting.
        (1usize..40, 0usize..80, prop::sample::select(VOCAB)).prop_map(|(n, d, x)| {
            format!(
                "{}{}RETURN {}1 EQ 1{} {x}",
                "LET a = a + 1 ".repeat(n),
                "IF TRUE THEN ".repeat(d % 5),
                "(".repeat(d),
                ")".repeat(d)
            )
        }),
        "[ -~]{0,300}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn generated_scripts_never_panic_and_stop_within_the_limit(src in generated_script()) {
        let lim = limits();
        let c = coin();
        let t = tx();
        let ctx = Context { block: 15, input_index: 0, coin: &c, created: 10, tx: &t, signers: &[] };
        if let Ok(stats) = run_script(&src, ctx, &lim, &mut SigCache::new()) {
            prop_assert!(stats.instructions <= lim.max_instructions);
        }
    }
}

/// Byte work is charged (SPEC-v2 §14.4's bc = max(1, ⌈bytes/64⌉)): `SHA3` over 8 KiB once cost
/// one instruction, and a valid 17.6 KB transaction re-running it per input took ≈ 200 ms to
/// check. A `CHECKSIG` past the sig-op budget aborts before it verifies.
#[test]
fn byte_work_is_charged_and_sigops_abort_at_the_budget() {
    let c = coin();
    let big = vec![0x5Au8; 8192];
    let t = Transaction { state: vec![StateVar { port: 1, data: big.clone() }], ..tx() };
    let run_l = |src: &str, l: &Limits| {
        let ctx = Context { block: 15, input_index: 1, coin: &c, created: 10, tx: &t, signers: &[] };
        run_script(src, ctx, l, &mut SigCache::new())
    };
    let l = limits();
    // SHA3 of 8,192 bytes: ⌈(8,192 + 32) / 64⌉ = 129, plus STATE(1), its literal and the
    // statement: 132.
    let s = run_l("LET h = SHA3(STATE(1))\nRETURN TRUE", &l).unwrap();
    assert_eq!(s.instructions, 1 + 129 + 1 + 1 + 2);
    // Small inputs keep their old cost (bc = 1): the golden vectors still hold.
    assert_eq!(minima_core::script::byte_cost(0), 1);
    assert_eq!(minima_core::script::byte_cost(64), 1);
    assert_eq!(minima_core::script::byte_cost(65), 2);
    // HEX EQ of two 8 KiB values: bc of 16,384 bytes = 256.
    let s = run_l("LET a = STATE(1) EQ STATE(1)\nRETURN TRUE", &l).unwrap();
    assert_eq!(s.instructions, 1 + 256 + 2 + 2 + 2);
    // Eight SHA3s of 8 KiB pass one run's 1,024 instructions no more.
    let many = format!("{}RETURN TRUE", "LET h = SHA3(STATE(1))\n".repeat(8));
    assert_eq!(run_l(&many, &l).map(|_| ()), Err(ScriptError::InstructionLimit));
    // Sig-ops count as they run: with 2 left, the third CHECKSIG aborts.
    let check = format!("ASSERT NOT CHECKSIG(0x{}, 0x00, 0x00)\n", "ab".repeat(32));
    let l2 = Limits { max_sigops: 2, ..l };
    assert!(run_l(&format!("{}RETURN TRUE", check.repeat(2)), &l2).is_ok());
    assert_eq!(
        run_l(&format!("{}RETURN TRUE", check.repeat(3)), &l2).map(|_| ()),
        Err(ScriptError::SigopLimit)
    );
}
