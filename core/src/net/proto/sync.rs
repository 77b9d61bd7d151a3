//! Who we sync with, and when (issue 14's sync manager): an explicit state instead of locks.
//!
//! One job runs at a time: a **catch-up** (headers after our locator, then the blocks we lack)
//! or a **cascade sync** (a peer's whole verified chain, as a candidate). A second job at once
//! would fetch the same headers and blocks, and each cascade candidate must be compared with
//! the chain the previous one left, so the heaviest verified chain offered wins. Jobs wait in
//! a queue, one per peer (a cascade sync replaces a queued catch-up of the same peer).
//!
//! **Initial sync** (our tip is still genesis): SPEC §5 asks for several independent peers
//! before trusting one. A wanted cascade sync waits until [`INITIAL_PEERS`] peers from
//! [`INITIAL_GROUPS`] /16 groups are connected, or the configured wait has passed, then goes
//! to the untried peer with the heaviest claimed weight, whoever asked (the asker itself when
//! every peer was tried). If that leaves us at genesis (the claim was false), the next
//! heaviest is tried, until the asker has been, at most [`MAX_INITIAL_TRIES`] in a row.
//!
//! Sans-I/O: the driver feeds [`Input`]s, runs the job [`Output::Start`] names, reports its
//! end with [`Input::Ended`], and ticks at [`SyncManager::poll_timeout`].

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::Duration;

use super::Time;
use crate::crypto::Hash;

/// Peers an initial sync waits for.
pub const INITIAL_PEERS: usize = 3;
/// /16 groups those peers must span.
pub const INITIAL_GROUPS: usize = 2;
/// Most peers an initial sync tries, heaviest claim first.
pub const MAX_INITIAL_TRIES: usize = 16;

/// A sync job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Job {
    /// Headers after our locator, then the blocks we lack.
    CatchUp,
    /// The peer's cascade and tree, validated as a candidate chain.
    Cascade,
}

/// What happened, as the driver tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A handshake completed: the peer's claimed chain weight and its /16 group.
    PeerUp {
        /// The peer.
        peer: Hash,
        /// Weight its `Hello` claims.
        claim: u128,
        /// Its /16 (/32) group.
        group: Vec<u8>,
        /// We dialled it: its jobs go before those of peers that dialled us (identities an
        /// attacker can make for nothing).
        outbound: bool,
    },
    /// The peer disconnected: its queued job goes, its running job is left to end.
    PeerGone(Hash),
    /// There is a reason to run `job` with `peer` (a heavier `Hello`, a block whose parent
    /// we lack, headers that do not connect). `at_genesis`: our tip is still genesis.
    Wanted {
        /// The peer.
        peer: Hash,
        /// The job.
        job: Job,
        /// Our tip is genesis (an initial sync).
        at_genesis: bool,
    },
    /// The running job with `peer` ended; `then` is a job the same peer should run next (a
    /// catch-up whose headers did not connect goes on as a cascade sync). `at_genesis`: our
    /// tip is still genesis.
    Ended {
        /// The peer.
        peer: Hash,
        /// A follow-up job with the same peer.
        then: Option<Job>,
        /// Our tip is still genesis.
        at_genesis: bool,
    },
    /// The moment [`SyncManager::poll_timeout`] gave has come.
    Tick,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Run `job` with `peer`, then report [`Input::Ended`].
    Start {
        /// The peer.
        peer: Hash,
        /// The job.
        job: Job,
    },
}

/// The sync manager (see the module docs).
#[derive(Debug)]
pub struct SyncManager {
    initial_wait: Duration,
    /// Connected peers: claimed weight, group, outbound.
    peers: BTreeMap<Hash, (u128, Vec<u8>, bool)>,
    running: Option<(Hash, Job)>,
    queue: VecDeque<(Hash, Job)>,
    /// Peers an initial sync has tried.
    tried: BTreeSet<Hash>,
    /// When the first initial sync was wanted (its wait runs from then).
    initial_since: Option<Time>,
    /// An initial sync is wanted (by this peer) and waits to start.
    initial_pending: Option<Hash>,
    /// The running job is an initial sync wanted by this peer; tries in a row so far.
    initial_run: Option<(Hash, usize)>,
    out: VecDeque<Output>,
}

impl SyncManager {
    /// A manager whose initial sync waits up to `initial_wait` for peers.
    pub fn new(initial_wait: Duration) -> SyncManager {
        SyncManager {
            initial_wait,
            peers: BTreeMap::new(),
            running: None,
            queue: VecDeque::new(),
            tried: BTreeSet::new(),
            initial_since: None,
            initial_pending: None,
            initial_run: None,
            out: VecDeque::new(),
        }
    }

    /// The job running, if any.
    pub fn running(&self) -> Option<(Hash, Job)> {
        self.running
    }

    /// Jobs waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Take an input at `now`.
    pub fn handle(&mut self, now: Time, input: Input) {
        match input {
            Input::PeerUp { peer, claim, group, outbound } => {
                self.peers.insert(peer, (claim, group, outbound));
            }
            Input::PeerGone(peer) => {
                self.peers.remove(&peer);
                self.queue.retain(|(p, _)| *p != peer);
            }
            Input::Wanted { peer, job, at_genesis } => {
                if job == Job::Cascade && at_genesis {
                    self.want_initial(now, peer);
                } else {
                    self.enqueue(peer, job);
                }
            }
            Input::Ended { peer, then, at_genesis } => {
                if self.running.is_some_and(|(p, _)| p == peer) {
                    self.running = None;
                    let run = self.initial_run.take();
                    if !at_genesis {
                        // Off genesis: the initial sync's memory is not needed any more.
                        self.tried.clear();
                    }
                    match then {
                        Some(Job::Cascade) if at_genesis => self.want_initial(now, peer),
                        // Straight on with the same peer, ahead of the others.
                        Some(job) => {
                            let queued = self.queue.iter().position(|(p, _)| *p == peer);
                            let job = queued.and_then(|i| self.queue.remove(i)).map_or(job, |q| q.1.max(job));
                            self.queue.push_front((peer, job));
                        }
                        None => {
                            // An initial sync that took nothing: the next heaviest claim,
                            // until the peer that asked has been tried.
                            if let Some((asker, tries)) = run.filter(|_| at_genesis) {
                                if asker != peer
                                    && tries < MAX_INITIAL_TRIES
                                    && self.peers.contains_key(&asker)
                                {
                                    self.initial_pending = Some(asker);
                                    self.initial_run = Some((asker, tries));
                                }
                            }
                        }
                    }
                }
            }
            Input::Tick => {}
        }
        self.start_next(now);
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to tick next: the end of an initial sync's wait for peers.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.initial_pending.is_some() && self.running.is_none() {
            self.initial_since.map(|t| t + self.initial_wait)
        } else {
            None
        }
    }

    fn want_initial(&mut self, now: Time, asker: Hash) {
        self.initial_pending = Some(asker);
        self.initial_since.get_or_insert(now);
    }

    /// Queue `job` with `peer` (also while a job with it runs: a block announced meanwhile
    /// may need headers the running catch-up asked for too early).
    fn enqueue(&mut self, peer: Hash, job: Job) {
        match self.queue.iter_mut().find(|(p, _)| *p == peer) {
            // A cascade sync covers a catch-up.
            Some(q) => q.1 = q.1.max(job),
            None => match self.peers.get(&peer) {
                // Outbound peers' jobs go before inbound peers' (after the outbound ones queued).
                Some((_, _, true)) => {
                    let at =
                        self.queue.iter().take_while(|(p, _)| self.peers.get(p).is_some_and(|x| x.2)).count();
                    self.queue.insert(at, (peer, job));
                }
                Some(_) => self.queue.push_back((peer, job)),
                None => {}
            },
        }
    }

    fn start_next(&mut self, now: Time) {
        if self.running.is_some() {
            return;
        }
        if let Some(asker) = self.initial_pending {
            let groups: HashSet<&Vec<u8>> = self.peers.values().map(|(_, g, _)| g).collect();
            let enough = self.peers.len() >= INITIAL_PEERS && groups.len() >= INITIAL_GROUPS;
            let waited = self.initial_since.is_some_and(|t| now >= t + self.initial_wait);
            if !(enough || waited) {
                return;
            }
            self.initial_pending = None;
            let best = self
                .peers
                .iter()
                .filter(|(p, _)| !self.tried.contains(*p))
                .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then_with(|| b.0.cmp(a.0)))
                .map(|(p, _)| *p)
                .or_else(|| self.peers.contains_key(&asker).then_some(asker));
            if let Some(p) = best {
                let tries = self.initial_run.map_or(0, |r| r.1) + 1;
                self.tried.insert(p);
                self.queue.retain(|(q, _)| *q != p);
                self.initial_run = Some((asker, tries));
                self.running = Some((p, Job::Cascade));
                self.out.push_back(Output::Start { peer: p, job: Job::Cascade });
                return;
            }
        }
        while let Some((p, job)) = self.queue.pop_front() {
            if self.peers.contains_key(&p) {
                self.running = Some((p, job));
                self.out.push_back(Output::Start { peer: p, job });
                return;
            }
        }
    }
}

super::machine!(SyncManager, Input, Output);

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> Hash {
        Hash([n; 32])
    }

    fn t(s: u64) -> Time {
        Time::from_origin(Duration::from_secs(s))
    }

    fn up(m: &mut SyncManager, now: Time, peer: u8, claim: u128, group: u8) {
        m.handle(now, Input::PeerUp { peer: h(peer), claim, group: vec![127, group], outbound: false });
    }

    fn drain(m: &mut SyncManager) -> Vec<Output> {
        std::iter::from_fn(|| m.poll()).collect()
    }

    fn start(peer: u8, job: Job) -> Output {
        Output::Start { peer: h(peer), job }
    }

    /// One job at a time; the others wait their turn, one per peer, a cascade sync covering
    /// a queued catch-up; a catch-up whose headers did not connect goes on as a cascade sync
    /// with the same peer before anyone else.
    #[test]
    fn one_job_at_a_time_one_per_peer() {
        let mut m = SyncManager::new(Duration::from_secs(5));
        for p in 1..=3 {
            up(&mut m, t(0), p, 100, p);
        }
        m.handle(t(0), Input::Wanted { peer: h(1), job: Job::CatchUp, at_genesis: false });
        m.handle(t(0), Input::Wanted { peer: h(2), job: Job::CatchUp, at_genesis: false });
        m.handle(t(0), Input::Wanted { peer: h(2), job: Job::CatchUp, at_genesis: false });
        m.handle(t(0), Input::Wanted { peer: h(3), job: Job::CatchUp, at_genesis: false });
        m.handle(t(0), Input::Wanted { peer: h(3), job: Job::Cascade, at_genesis: false });
        assert_eq!(drain(&mut m), vec![start(1, Job::CatchUp)]);
        assert_eq!(m.queued(), 2);
        // Wanted again while it runs: queued once more (a block may have come meanwhile).
        m.handle(t(1), Input::Wanted { peer: h(1), job: Job::CatchUp, at_genesis: false });
        assert_eq!(m.queued(), 3);
        m.handle(t(1), Input::Ended { peer: h(1), then: Some(Job::Cascade), at_genesis: false });
        assert_eq!(drain(&mut m), vec![start(1, Job::Cascade)]);
        assert_eq!(m.queued(), 2, "the queued catch-up is covered by the cascade sync");
        m.handle(t(2), Input::Ended { peer: h(1), then: None, at_genesis: false });
        assert_eq!(drain(&mut m), vec![start(2, Job::CatchUp)]);
        // A peer that leaves loses its turn.
        m.handle(t(3), Input::PeerGone(h(3)));
        m.handle(t(3), Input::Ended { peer: h(2), then: None, at_genesis: false });
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.running(), None);
        // An end reported by a peer not running changes nothing.
        m.handle(t(4), Input::Wanted { peer: h(2), job: Job::CatchUp, at_genesis: false });
        m.handle(t(4), Input::Ended { peer: h(1), then: None, at_genesis: false });
        assert_eq!(m.running(), Some((h(2), Job::CatchUp)));
    }

    /// An initial sync waits for three peers in two groups, then takes the heaviest claim,
    /// whoever asked; if that leaves us at genesis, the next heaviest.
    #[test]
    fn an_initial_sync_waits_for_peers_then_tries_the_heaviest_claims_in_turn() {
        let mut m = SyncManager::new(Duration::from_secs(5));
        up(&mut m, t(0), 1, 200, 1);
        m.handle(t(0), Input::Wanted { peer: h(1), job: Job::Cascade, at_genesis: true });
        assert!(drain(&mut m).is_empty(), "one peer is not enough");
        assert_eq!(m.poll_timeout(), Some(t(5)));
        up(&mut m, t(1), 2, 900, 1);
        assert!(drain(&mut m).is_empty(), "one group is not enough");
        up(&mut m, t(2), 3, 500, 2);
        assert_eq!(drain(&mut m), vec![start(2, Job::Cascade)], "the heaviest claim");
        // Its claim was false: still at genesis, the next heaviest.
        m.handle(t(3), Input::Ended { peer: h(2), then: None, at_genesis: true });
        assert_eq!(drain(&mut m), vec![start(3, Job::Cascade)]);
        m.handle(t(4), Input::Ended { peer: h(3), then: None, at_genesis: false });
        assert!(drain(&mut m).is_empty(), "synced: nothing more");
    }

    /// Jobs of peers we dialled go before those of peers that dialled us.
    #[test]
    fn outbound_peers_jobs_go_first() {
        let mut m = SyncManager::new(Duration::from_secs(5));
        for p in 1..=4 {
            m.handle(t(0), Input::PeerUp { peer: h(p), claim: 1, group: vec![127, p], outbound: p >= 3 });
        }
        for p in 1..=4 {
            m.handle(t(0), Input::Wanted { peer: h(p), job: Job::CatchUp, at_genesis: false });
        }
        let mut order = vec![];
        for _ in 0..4 {
            let Some(Output::Start { peer, .. }) = m.poll() else { panic!("a job") };
            order.push(peer);
            m.handle(t(1), Input::Ended { peer, then: None, at_genesis: false });
        }
        assert_eq!(order, vec![h(1), h(3), h(4), h(2)], "1 was running; then outbound 3, 4; then 2");
    }

    /// With too few peers, the initial sync starts when the wait is over.
    #[test]
    fn an_initial_sync_starts_after_the_wait_with_whoever_is_there() {
        let mut m = SyncManager::new(Duration::from_secs(5));
        up(&mut m, t(0), 1, 200, 1);
        m.handle(t(0), Input::Wanted { peer: h(1), job: Job::Cascade, at_genesis: true });
        m.handle(t(4), Input::Tick);
        assert!(drain(&mut m).is_empty());
        m.handle(t(5), Input::Tick);
        assert_eq!(drain(&mut m), vec![start(1, Job::Cascade)]);
        assert_eq!(m.poll_timeout(), None);
        // The asker was tried: done until someone asks again.
        m.handle(t(6), Input::Ended { peer: h(1), then: None, at_genesis: true });
        assert!(drain(&mut m).is_empty());
        // Asked again with every peer tried: the asker again (its chain may have come due).
        m.handle(t(7), Input::Wanted { peer: h(1), job: Job::Cascade, at_genesis: true });
        assert_eq!(drain(&mut m), vec![start(1, Job::Cascade)]);
        m.handle(t(8), Input::Ended { peer: h(1), then: None, at_genesis: true });
        up(&mut m, t(9), 2, 100, 2);
        m.handle(t(9), Input::Wanted { peer: h(2), job: Job::Cascade, at_genesis: true });
        assert_eq!(drain(&mut m), vec![start(2, Job::Cascade)]);
    }
}
