//! The hash loop: a dedicated low-priority thread mining header tails.
//!
//! The header prefix is hashed once per template; each nonce then costs one Keccak
//! permutation over `"minima/id/v1" ‖ prefix_hash ‖ nonce` (the absorbed tag and prefix are
//! cloned, not re-hashed). The thread checks its cancellation every 1,024 nonces (well under
//! 50 ms), sleeps on a condition variable when there is no job, and mines at a duty cycle the
//! energy policy sets.

pub mod template;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha3::{Digest, Sha3_256};

use crate::chain::pow::meets;
use crate::crypto::Hash;
use crate::types::TxHeader;
use crate::U256;

/// Nonces between cancellation checks.
pub const CHECK_EVERY: u64 = 1_024;

/// A mining job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Header to complete (its nonce is overwritten).
    pub header: TxHeader,
    /// The id must be below this.
    pub target: U256,
    /// Fraction of wall time to spend hashing, in (0, 1].
    pub duty: f64,
    /// Stop after this many hashes (None: until found or replaced).
    pub max_hashes: Option<u64>,
    /// Opaque tag handed back with the result.
    pub tag: u64,
}

/// A mined header.
#[derive(Debug, Clone)]
pub struct Found {
    /// The header with its winning nonce.
    pub header: TxHeader,
    /// Its id.
    pub id: Hash,
    /// The job's tag.
    pub tag: u64,
}

struct Shared {
    job: Mutex<(u64, Option<Job>)>,
    cv: Condvar,
    generation: AtomicU64,
    stop: AtomicBool,
    hashes: AtomicU64,
    /// CPU time the thread spent mining (ns).
    cpu_ns: AtomicU64,
}

/// Handle of the miner thread.
pub struct Miner {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// One nonce's id from a prepared state (tag and prefix hash absorbed).
#[inline]
pub fn tail_id(base: &Sha3_256, nonce: &[u8; 32]) -> Hash {
    let mut h = base.clone();
    h.update(nonce);
    Hash(h.finalize().into())
}

/// The hasher state with the id tag and a header's prefix hash absorbed.
pub fn prepared_state(prefix: &Hash) -> Sha3_256 {
    let mut h = Sha3_256::new();
    h.update(b"minima/id/v1");
    h.update(prefix.0);
    h
}

/// Hash `count` nonces of `header` on this thread; returns nonces tried per second
/// (what `minima bench mine` reports).
pub fn bench_hashes(header: &TxHeader, count: u64) -> f64 {
    let base = prepared_state(&header.prefix_hash());
    let mut nonce = [0u8; 32];
    let start = Instant::now();
    let mut acc = 0u8;
    for n in 0..count {
        nonce[..8].copy_from_slice(&n.to_be_bytes());
        acc ^= tail_id(&base, &nonce).0[0];
    }
    std::hint::black_box(acc);
    count as f64 / start.elapsed().as_secs_f64()
}

fn lower_priority() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: plain syscalls on the calling thread; failures are ignored (priority is a hint).
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

impl Miner {
    /// Start the thread; results go to `on_found`.
    pub fn start(on_found: impl Fn(Found) + Send + 'static) -> Miner {
        let shared = Arc::new(Shared {
            job: Mutex::new((0, None)),
            cv: Condvar::new(),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            hashes: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("minima-miner".into())
            .spawn(move || {
                lower_priority();
                run(&s, on_found)
            })
            .ok();
        Miner { shared, thread }
    }

    /// Replace the current job (or clear it with `None`); the thread drops its old job within
    /// [`CHECK_EVERY`] nonces.
    pub fn set_job(&self, job: Option<Job>) {
        let mut g = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
        let gen = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *g = (gen, job);
        self.shared.cv.notify_all();
    }

    /// Total nonces tried.
    pub fn hashes(&self) -> u64 {
        self.shared.hashes.load(Ordering::Relaxed)
    }

    /// CPU seconds the thread has spent mining.
    pub fn cpu_s(&self) -> f64 {
        self.shared.cpu_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// Stop and join the thread.
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.set_job(None);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(s: &Shared, on_found: impl Fn(Found)) {
    let mut salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    loop {
        let (gen, job) = {
            let mut g = s.job.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                if g.1.is_some() {
                    break;
                }
                g = s.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            (g.0, g.1.take())
        };
        let Some(mut job) = job else { continue };
        let cpu0 = crate::energy::thread_cpu_s();
        salt = salt.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let base = prepared_state(&job.header.prefix_hash());
        let mut nonce = [0u8; 32];
        nonce[8..16].copy_from_slice(&salt.to_be_bytes());
        let duty = job.duty.clamp(0.01, 1.0);
        let slice = Duration::from_millis(100);
        let mut n: u64 = 0;
        let mut slice_start = Instant::now();
        'mine: loop {
            for _ in 0..CHECK_EVERY {
                nonce[..8].copy_from_slice(&n.to_be_bytes());
                n += 1;
                let id = tail_id(&base, &nonce);
                if meets(&id, &job.target) {
                    s.hashes.fetch_add(n % CHECK_EVERY, Ordering::Relaxed);
                    job.header.nonce = nonce;
                    on_found(Found { header: job.header.clone(), id, tag: job.tag });
                    break 'mine;
                }
            }
            s.hashes.fetch_add(CHECK_EVERY, Ordering::Relaxed);
            if s.stop.load(Ordering::SeqCst) || s.generation.load(Ordering::SeqCst) != gen {
                break;
            }
            if job.max_hashes.is_some_and(|m| n >= m) {
                break;
            }
            if duty < 1.0 && slice_start.elapsed() >= slice {
                let rest = slice.mul_f64((1.0 - duty) / duty);
                let g = s.job.lock().unwrap_or_else(|e| e.into_inner());
                let _ = s.cv.wait_timeout_while(g, rest, |g| g.0 == gen && !s.stop.load(Ordering::SeqCst));
                if s.stop.load(Ordering::SeqCst) || s.generation.load(Ordering::SeqCst) != gen {
                    break;
                }
                slice_start = Instant::now();
            }
        }
        let spent = (crate::energy::thread_cpu_s() - cpu0).max(0.0);
        s.cpu_ns.fetch_add((spent * 1e9) as u64, Ordering::Relaxed);
        // Keep the job unless it was replaced, so a finished job is not re-mined.
    }
}
