//! Where the SPHINCS+ code's randomness comes from.
//!
//! PQClean draws SPHINCS+'s `OptRand` (mixed into every signature) through `getrandom` 0.3,
//! which this workspace builds with its `custom` backend (`.cargo/config.toml`): the function
//! below fills it from the operating system (`rand_core::OsRng`), or — on a thread that asked
//! with [`seed_thread`], which only the simulator does — from a seeded ChaCha stream, so that a
//! simulation signs the same bytes every run. A signature is valid whatever `OptRand` is;
//! only its bytes, and so the ids of the TxPoWs and blocks that carry it, depend on it.
//! Keys are derived from seeds and never use this.

use std::cell::RefCell;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

thread_local! {
    static SEEDED: RefCell<Option<ChaCha8Rng>> = const { RefCell::new(None) };
}

/// Draw this thread's signing randomness from a stream seeded with `seed` (`None`: from the
/// operating system again).
pub fn seed_thread(seed: Option<u64>) {
    SEEDED.with(|s| *s.borrow_mut() = seed.map(ChaCha8Rng::seed_from_u64));
}

/// Fill `buf`: from this thread's seeded stream if [`seed_thread`] set one, else from the OS.
pub fn fill(buf: &mut [u8]) -> Result<(), rand_core::Error> {
    let seeded = SEEDED.with(|s| {
        s.borrow_mut().as_mut().map(|r| {
            r.fill_bytes(buf);
        })
    });
    match seeded {
        Some(()) => Ok(()),
        None => rand_core::OsRng.try_fill_bytes(buf),
    }
}

/// `getrandom` 0.3's custom backend (see the module doc).
#[cfg(getrandom_backend = "custom")]
#[no_mangle]
unsafe extern "Rust" fn __getrandom_v03_custom(dest: *mut u8, len: usize) -> Result<(), getrandom03::Error> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: getrandom passes a valid buffer of `len` bytes it owns for this call.
    let buf = unsafe { std::slice::from_raw_parts_mut(dest, len) };
    fill(buf).map_err(|_| getrandom03::Error::UNSUPPORTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_thread_draws_the_same_bytes_and_others_draw_fresh_ones() {
        let draw = || {
            let mut b = [0u8; 32];
            fill(&mut b).unwrap();
            b
        };
        seed_thread(Some(9));
        let a = draw();
        seed_thread(Some(9));
        assert_eq!(draw(), a);
        seed_thread(None);
        assert_ne!(draw(), draw());
    }

    /// The workspace builds `getrandom` 0.3 with the custom backend, so SPHINCS+ signing on a
    /// seeded thread is repeatable (a build with `RUSTFLAGS` set loses the flag: it fails here).
    #[test]
    fn seeded_sphincs_signatures_repeat() {
        let k = crate::crypto::Keypair::derive(&[5; 32], 0).unwrap();
        seed_thread(Some(1));
        let a = k.sign_raw(b"m");
        seed_thread(Some(1));
        let b = k.sign_raw(b"m");
        seed_thread(None);
        assert_eq!(a, b);
        assert!(crate::crypto::verify_raw(&k.public, b"m", &a));
    }
}
