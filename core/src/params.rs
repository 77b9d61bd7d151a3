//! Parameter sets (SPEC §5, §6, §10): every protocol constant is a named field here; `main`,
//! `test` and `devnet` are values of [`Params`], never hidden branches.

use thiserror::Error;

use crate::crypto::{script_address, Hash};
use crate::types::Magic;

/// The genesis of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisSpec {
    /// `time_ms` of block 0.
    pub time_ms: u64,
    /// `prng` of block 0 (seeds the genesis coin id).
    pub prng: [u8; 32],
    /// Address of the genesis coin; `None` while undecided (main before launch).
    pub address: Option<Hash>,
    /// Amount of the genesis coin (10^9 coins = 10^18 base units).
    pub amount: u64,
}

/// A full parameter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// `main`, `test` or `devnet`.
    pub name: &'static str,
    /// Chain id in every header (main 0, test 1, devnet 2).
    pub chain_id: u8,
    /// Target block interval.
    pub block_time_ms: u64,
    /// Blocks kept whole in the tree.
    pub tree_depth: u64,
    /// Blocks moved to the cascade at a time.
    pub cascade_step: u64,
    /// Headers kept per cascade level.
    pub cascade_per_level: usize,
    /// Number of cascade levels (levels 0..cascade_levels).
    pub cascade_levels: u32,
    /// Blocks in the difficulty window.
    pub diff_window: u64,
    /// Median width at each end of the difficulty window.
    pub diff_median: u64,
    /// Ancestors whose median time a block must exceed.
    pub mtp_window: u64,
    /// How far below the tip a coin proof's block may be.
    pub proof_window: u64,
    /// Consensus limit: a block's time may exceed its median-time-past by at most this.
    pub max_time_ahead_of_median_ms: u64,
    /// Policy: blocks further than this ahead of the local clock wait in a queue.
    pub max_local_future_ms: u64,
    /// Depth at which a block counts as confirmed.
    pub confirm_depth: u64,
    /// The block limits every header must carry.
    pub magic: Magic,
    /// Block 0.
    pub genesis: GenesisSpec,
    /// Initial sync refuses chains lighter than this.
    pub min_chain_weight: u128,
    /// Initial sync refuses chains that do not contain this (block number, id).
    pub checkpoint: Option<(u64, Hash)>,
    /// Hashes a pulse mines, at most.
    pub pulse_work: u64,
    /// Time between pulses, at least.
    pub pulse_interval_ms: u64,
    /// Mine continuously (devnet).
    pub continuous_mining: bool,
    /// Default UDP port.
    pub default_port: u16,
    /// Seed peers.
    pub seeds: Vec<String>,
    /// Longest script in bytes.
    pub max_script_bytes: usize,
    /// Deepest expression nesting of a script.
    pub max_script_stack: usize,
    /// Largest value a script may build, bytes.
    pub max_script_value_bytes: usize,
    /// Instructions a `CHECKSIG` costs.
    pub checksig_cost: u32,
    /// Script instructions all of one TxPoW's script runs may execute together (SPEC-v2
    /// §14.5, applied from genesis).
    pub max_txpow_script_ops: u32,
    /// Script instructions all of one block's TxPoWs may execute together.
    pub max_block_script_ops: u32,
}

/// One coin in base units.
pub const COIN: u64 = 1_000_000_000;
/// The whole supply: 10^9 coins.
pub const TOTAL_SUPPLY: u64 = 1_000_000_000 * COIN;

/// Seed of the published test-network faucet key (its key 0 holds the test genesis coin).
pub const TEST_FAUCET_SEED: [u8; 32] = *b"minima/test/faucet/v1...........";

/// Address of the test-network faucet: default script of key 0 of [`TEST_FAUCET_SEED`]
/// (pinned by a test that derives it).
pub const TEST_FAUCET_ADDRESS: &str = "5bfbba49426fb563fd09a22fafbc19350f2326b26b4d44147e3f27d3b0cbac61";

/// Why a parameter set cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamsError {
    /// `cascade_per_level ≥ diff_window ≥ mtp_window` does not hold.
    #[error("need cascade_per_level ≥ diff_window ≥ mtp_window")]
    WindowOrder,
    /// `proof_window + cascade_step ≤ tree_depth` does not hold.
    #[error("need proof_window + cascade_step ≤ tree_depth")]
    ProofWindow,
    /// `diff_median` must be ≥ 1 and ≤ diff_window / 2.
    #[error("need 1 ≤ diff_median ≤ diff_window / 2")]
    DiffMedian,
    /// A window or step of zero.
    #[error("windows, steps and block time must be non-zero")]
    Zero,
    /// Cascade levels must be 1..=32.
    #[error("cascade_levels must be 1..=32")]
    Levels,
    /// The genesis distribution is not decided.
    #[error("the {0} genesis distribution is not set; this network cannot start yet")]
    GenesisUnset(&'static str),
    /// The magic is unusable.
    #[error("magic limits must be non-zero")]
    Magic,
}

impl Params {
    /// The main network. Its genesis distribution is decided before launch; until then
    /// [`Params::check`] refuses it.
    pub fn main() -> Params {
        Params {
            name: "main",
            chain_id: 0,
            block_time_ms: 50_000,
            tree_depth: 2_048,
            cascade_step: 100,
            cascade_per_level: 256,
            cascade_levels: 32,
            diff_window: 256,
            diff_median: 64,
            mtp_window: 128,
            proof_window: 256,
            max_time_ahead_of_median_ms: 24 * 3_600_000,
            max_local_future_ms: 2 * 3_600_000,
            confirm_depth: 3,
            magic: Magic::V1,
            genesis: GenesisSpec {
                time_ms: 1_798_761_600_000,
                prng: [0; 32],
                address: None,
                amount: TOTAL_SUPPLY,
            },
            min_chain_weight: 0,
            checkpoint: None,
            pulse_work: 10_000_000,
            pulse_interval_ms: 50_000,
            continuous_mining: false,
            default_port: 9001,
            seeds: vec![],
            max_script_bytes: 8 * 1024,
            max_script_stack: 64,
            max_script_value_bytes: 64 * 1024,
            checksig_cost: 64,
            max_txpow_script_ops: 16_384,
            max_block_script_ops: 262_144,
        }
    }

    /// The test network: main's rules, its own chain id, the genesis coin locked to the
    /// published faucet key.
    pub fn test() -> Params {
        let mut p = Params::main();
        p.name = "test";
        p.chain_id = 1;
        p.genesis.prng = *b"minima/test/genesis/v1..........";
        p.genesis.address = Some(
            Hash::from_hex(TEST_FAUCET_ADDRESS).unwrap_or_else(|_| unreachable!("constant is valid hex")),
        );
        p
    }

    /// The local development network: 2 s blocks, a 64-block tree, continuous mining. Its
    /// genesis is made by the `--genesis` node (set `genesis.time_ms`/`prng`); the coin sits at
    /// the address of `RETURN TRUE`.
    pub fn devnet() -> Params {
        let mut p = Params::main();
        p.name = "devnet";
        p.chain_id = 2;
        p.block_time_ms = 2_000;
        p.tree_depth = 64;
        p.cascade_step = 8;
        p.cascade_per_level = 32;
        p.diff_window = 32;
        p.diff_median = 8;
        p.mtp_window = 16;
        p.proof_window = 32;
        p.magic.min_work = 256;
        p.genesis.time_ms = 0;
        p.genesis.address = Some(script_address("RETURN TRUE"));
        p.pulse_interval_ms = 2_000;
        p.pulse_work = 1_000_000;
        p.continuous_mining = true;
        p
    }

    /// Parameters by name.
    pub fn by_name(name: &str) -> Option<Params> {
        match name {
            "main" => Some(Params::main()),
            "test" => Some(Params::test()),
            "devnet" => Some(Params::devnet()),
            _ => None,
        }
    }

    /// Check the invariants of SPEC §5 (run at start).
    pub fn check(&self) -> Result<(), ParamsError> {
        if self.block_time_ms == 0
            || self.tree_depth == 0
            || self.cascade_step == 0
            || self.cascade_per_level == 0
            || self.diff_window == 0
            || self.mtp_window == 0
            || self.proof_window == 0
        {
            return Err(ParamsError::Zero);
        }
        if !(self.cascade_per_level as u64 >= self.diff_window && self.diff_window >= self.mtp_window) {
            return Err(ParamsError::WindowOrder);
        }
        if self.proof_window + self.cascade_step > self.tree_depth {
            return Err(ParamsError::ProofWindow);
        }
        if self.diff_median == 0 || self.diff_median > self.diff_window / 2 {
            return Err(ParamsError::DiffMedian);
        }
        if self.cascade_levels == 0 || self.cascade_levels > 32 {
            return Err(ParamsError::Levels);
        }
        let m = &self.magic;
        if m.min_work == 0
            || m.max_txpow_bytes == 0
            || m.max_block_bytes == 0
            || m.max_script_ops == 0
            || m.max_txns == 0
            || self.max_txpow_script_ops == 0
            || self.max_block_script_ops == 0
        {
            return Err(ParamsError::Magic);
        }
        if self.genesis.address.is_none() {
            return Err(ParamsError::GenesisUnset(self.name));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sets_and_invariants() {
        assert_eq!(Params::main().check(), Err(ParamsError::GenesisUnset("main")));
        assert_eq!(Params::test().check(), Ok(()));
        assert_eq!(Params::devnet().check(), Ok(()));
        let mut p = Params::devnet();
        p.diff_window = 64; // > cascade_per_level 32
        assert_eq!(p.check(), Err(ParamsError::WindowOrder));
        let mut p = Params::devnet();
        p.mtp_window = 40; // > diff_window 32
        assert_eq!(p.check(), Err(ParamsError::WindowOrder));
        let mut p = Params::devnet();
        p.proof_window = 60; // 60 + 8 > 64
        assert_eq!(p.check(), Err(ParamsError::ProofWindow));
        let mut p = Params::devnet();
        p.diff_median = 17;
        assert_eq!(p.check(), Err(ParamsError::DiffMedian));
        let mut p = Params::devnet();
        p.block_time_ms = 0;
        assert_eq!(p.check(), Err(ParamsError::Zero));
    }

    #[test]
    fn faucet_address_is_key_zero_of_faucet_seed() {
        let kp = crate::crypto::Keypair::derive(&TEST_FAUCET_SEED, 0).unwrap();
        assert_eq!(kp.public.default_address().to_hex(), TEST_FAUCET_ADDRESS);
    }
}
