//! `uniffi-bindgen`: generate the Kotlin and Swift bindings from the built library
//! (`uniffi-bindgen generate --library target/debug/libminima_ffi.so --language kotlin --out-dir …`).

// The workspace builds `getrandom` with its custom backend (`.cargo/config.toml`), which
// minima-core defines (`core/src/entropy.rs`); uniffi's `tempfile` draws through it, so the
// crate that defines it is linked in.
use minima_core as _;

fn main() {
    uniffi::uniffi_bindgen_main()
}
