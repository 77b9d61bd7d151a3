//! The script parser and VM: any text (UTF-8, lossily) parses or fails cleanly, and a parsed
//! script runs to a result without a panic and within its instruction and sig-op limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minima_core::script::{Context, Limits, Script, SigCache};
use minima_core::Params;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let limits = Limits::from_params(&Params::devnet());
    let Ok(script) = Script::parse(&src, &limits) else { return };
    let w = minima_core_fuzz::script_world();
    let ctx =
        Context { block: 15, input_index: 1, coin: &w.coin, created: 10, tx: &w.tx, signers: &w.signers };
    if let Ok(stats) = script.run(ctx, &limits, &mut SigCache::new()) {
        assert!(stats.instructions <= limits.max_instructions, "{stats:?} over {limits:?}");
        assert!(stats.sigops <= limits.max_sigops, "{stats:?} over {limits:?}");
    }
});
