//! Where the randomness of `getrandom` 0.3 and 0.4 users comes from.
//!
//! This workspace builds `getrandom` with its `custom` backend (`.cargo/config.toml`); both
//! 0.3 (PQClean's SPHINCS+ `OptRand`, mixed into every signature, through pqcrypto-internals)
//! and 0.4 (quinn's keys and connection ids, tempfile) call the function below. It fills from
//! the operating system (`rand_core::OsRng`, through getrandom 0.2, which does not read the
//! flag) — or, on a thread the simulator seeded ([`seed_thread`], feature `sim`; the QUIC
//! driver never runs there), from a seeded ChaCha stream, so that a simulation signs the same
//! bytes every run. A signature is valid whatever `OptRand` is; only its bytes, and so the
//! ids of the TxPoWs and blocks that carry it, depend on it. Keys are derived from seeds;
//! seeds and sealing read `OsRng` directly: no secret comes from here.

use std::cell::RefCell;

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;
#[cfg(feature = "sim")]
use rand_core::SeedableRng;

thread_local! {
    static SEEDED: RefCell<Option<ChaCha8Rng>> = const { RefCell::new(None) };
}

/// Draw this thread's randomness from a stream seeded with `seed` until the guard is dropped
/// (then from the operating system again, even if the thread unwinds).
#[cfg(feature = "sim")]
pub fn seed_thread(seed: u64) -> SeededThread {
    SEEDED.with(|s| *s.borrow_mut() = Some(ChaCha8Rng::seed_from_u64(seed)));
    SeededThread(std::marker::PhantomData)
}

/// While alive, this thread's randomness is seeded ([`seed_thread`]). Not `Send`.
#[cfg(feature = "sim")]
pub struct SeededThread(std::marker::PhantomData<*const ()>);

#[cfg(feature = "sim")]
impl Drop for SeededThread {
    fn drop(&mut self) {
        SEEDED.with(|s| *s.borrow_mut() = None);
    }
}

/// Fill `buf`: from this thread's seeded stream if the simulator set one, else from the OS.
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

/// `getrandom`'s custom backend (0.3 and 0.4 call it by this name; see the module doc).
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

    #[cfg(feature = "sim")]
    #[test]
    fn a_seeded_thread_draws_the_same_bytes_until_the_guard_goes_even_on_a_panic() {
        let draw = || {
            let mut b = [0u8; 32];
            fill(&mut b).unwrap();
            b
        };
        let a = {
            let _g = seed_thread(9);
            draw()
        };
        {
            let _g = seed_thread(9);
            assert_eq!(draw(), a);
        }
        assert_ne!(draw(), draw());
        let r = std::panic::catch_unwind(|| {
            let _g = seed_thread(9);
            panic!("unwinds");
        });
        assert!(r.is_err());
        assert_ne!(draw(), a, "the guard reset the thread while unwinding");
    }

    /// The workspace builds `getrandom` 0.3 with the custom backend, so SPHINCS+ signing on a
    /// seeded thread is repeatable (a build with `RUSTFLAGS` set loses the flag: it fails here).
    #[cfg(feature = "sim")]
    #[test]
    fn seeded_sphincs_signatures_repeat() {
        let k = crate::crypto::Keypair::derive(&[5; 32], 0).unwrap();
        let a = {
            let _g = seed_thread(1);
            k.sign_raw(b"m")
        };
        let b = {
            let _g = seed_thread(1);
            k.sign_raw(b"m")
        };
        assert_eq!(a, b);
        assert!(crate::crypto::verify_raw(&k.public, b"m", &a));
    }
}
