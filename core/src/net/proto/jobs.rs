//! Sync jobs as state machines (issue 14): a **catch-up** (headers after our locator, then the
//! bodies of the blocks we lack, in order) and a **cascade sync** (a peer's verified cascade,
//! every header of its tree proven heavier than our chain, then every body, into a candidate
//! chain that replaces ours only if SPEC §5's rules allow). Which peer runs which job, and
//! when, is [`super::sync::SyncManager`]'s choice; this unit runs what it starts.
//!
//! Sans-I/O: the chain side is answered at once through [`ChainSink`]; each question to the
//! peer is a [`ToPeer::Request`] with an id and a timeout, answered by [`Input::Answer`] (or
//! by the unit itself, "no answer", when its deadline passes). Misbehaviour comes out as
//! [`ToPeer::Penalize`] and [`ToPeer::Ban`]; the end of a job as [`Output::Ended`].

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::chain::{ChainSink, Submitted, SyncFault};
use super::deadline::CatchUpDeadline;
use super::headers::HeaderList;
use super::requests::{ReqId, Requests, ToPeer};
use super::rounds::{HeaderRounds, Next, RoundFault};
use super::sync::Job;
use super::weight::{Claim, WeightCheck, WeightVerdict};
use super::Time;
use crate::crypto::Hash;
use crate::net::message::{BlockBody, BlockData, Message, MAX_GET, MAX_HEADERS};
use crate::types::TxHeader;

/// Most time one job holds the turn (a catch-up's own deadline is
/// [`super::deadline::TOTAL`]; a cascade sync of main's tree from a slow but honest peer
/// takes minutes).
pub const JOB_LIMIT: Duration = Duration::from_secs(900);
/// Score for a `Hello` that claimed more than twice the weight the peer's chain proves
/// (twice bans: a claim is what picks the first peer of an initial sync, and triggers syncs).
pub const INFLATED_CLAIM_PENALTY: u32 = 50;
/// Most header rounds of one catch-up.
const MAX_ROUNDS: u32 = 1_000;
/// Bodies asked for at once.
const CHUNK: usize = 50;
/// How long a cascade sync waits for each answer.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Tag of this unit's request ids.
pub const REQ_TAG: u8 = 1;
/// How long a block's missing transactions are waited for.
const TXPOW_TIMEOUT: Duration = Duration::from_secs(30);

/// What the jobs need to know of the node.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Params `min_chain_weight`: below it, a catch-up hands on to a cascade sync.
    pub min_chain_weight: u128,
    /// Params `tree_depth + cascade_step`: most blocks of one branch our tree holds.
    pub tree_blocks: u64,
    /// Params `max_local_future_ms`: a chain whose tip is further ahead of our clock is not
    /// synced now (SPEC §5's policy).
    pub max_local_future_ms: u64,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Input {
    /// Run `job` with `peer` (the sync manager's [`super::sync::Output::Start`]). `claim` is
    /// the weight its `Hello` claimed, `group` its /16 (/32) group.
    Start {
        /// The peer.
        peer: Hash,
        /// The job.
        job: Job,
        /// Weight its `Hello` claimed.
        claim: u128,
        /// Its /16 (/32) group.
        group: Vec<u8>,
    },
    /// The answer to a request (`None`: none came — error, closed connection, timeout).
    Answer {
        /// The request.
        req: ReqId,
        /// What the peer answered.
        answer: Option<Message>,
    },
    /// The moment [`Jobs::poll_timeout`] gave has come.
    Tick,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Ask the peer, or score it.
    Peer(ToPeer),
    /// The job with `peer` ended (report [`super::sync::Input::Ended`]); `then` is the job
    /// to run next with it, `at_genesis` whether our tip is still genesis.
    Ended {
        /// The peer.
        peer: Hash,
        /// A follow-up job with the same peer.
        then: Option<Job>,
        /// Our tip is still genesis.
        at_genesis: bool,
    },
}

/// What a job does next.
enum Step {
    /// Ask the peer this, within this long.
    Ask(Message, Duration),
    /// The job is over; run this next with the same peer.
    End(Option<Job>),
}

/// What a job step may touch: the chain, the outputs, the moment.
struct Cx<'a, C: ChainSink> {
    chain: &'a mut C,
    out: &'a mut VecDeque<Output>,
    peer: Hash,
    now: Time,
    cfg: Config,
}

impl<C: ChainSink> Cx<'_, C> {
    fn ban(&mut self, why: String) -> Step {
        tracing::warn!("sync job: banning {}: {why}", &self.peer.to_hex()[..16]);
        self.out.push_back(Output::Peer(ToPeer::Ban { peer: self.peer, why }));
        Step::End(None)
    }
}

/// The sync jobs running (one at a time under the sync manager; keyed by peer).
#[derive(Debug)]
pub struct Jobs {
    cfg: Config,
    requests: Requests<()>,
    running: BTreeMap<Hash, Running>,
    out: VecDeque<Output>,
}

#[derive(Debug)]
struct Running {
    /// When it must end at the latest.
    limit: Time,
    /// The request it waits for.
    waiting: Option<ReqId>,
    state: State,
}

#[derive(Debug)]
enum State {
    CatchUp(Box<CatchUp>),
    Cascade(Box<Cascade>),
}

impl Jobs {
    /// No job running.
    pub fn new(cfg: Config) -> Jobs {
        Jobs { cfg, requests: Requests::tagged(REQ_TAG), running: BTreeMap::new(), out: VecDeque::new() }
    }

    /// The peers whose job is running.
    pub fn running(&self) -> impl Iterator<Item = &Hash> {
        self.running.keys()
    }

    /// Take an input at `now`, asking `chain` what the job needs.
    pub fn handle(&mut self, now: Time, input: Input, chain: &mut impl ChainSink) {
        match input {
            Input::Start { peer, job, claim, group } => {
                if self.running.contains_key(&peer) {
                    // Already running a job with this peer: the manager never asks that; the
                    // second is over at once (the first ends on its own).
                    tracing::debug!("sync job with a peer already running one: not started");
                    return;
                }
                let (state, step) = {
                    let mut cx = Cx { chain: &mut *chain, out: &mut self.out, peer, now, cfg: self.cfg };
                    match job {
                        Job::CatchUp => {
                            let mut c = Box::new(CatchUp::new(now, self.cfg.tree_blocks));
                            let step = c.start(&mut cx);
                            (State::CatchUp(c), step)
                        }
                        Job::Cascade => {
                            let c = Box::new(Cascade::new(claim, group));
                            (State::Cascade(c), Step::Ask(Message::GetCascade, SYNC_TIMEOUT))
                        }
                    }
                };
                self.running.insert(peer, Running { limit: now + JOB_LIMIT, waiting: None, state });
                self.apply(now, peer, step, chain);
            }
            Input::Answer { req, answer } => {
                if let Some((peer, ())) = self.requests.close(req) {
                    self.answered(now, peer, req, answer, chain);
                }
            }
            Input::Tick => {
                for (req, peer, ()) in self.requests.expired(now) {
                    self.answered(now, peer, req, None, chain);
                }
                let over: Vec<Hash> =
                    self.running.iter().filter(|(_, r)| r.limit <= now).map(|(p, _)| *p).collect();
                for peer in over {
                    tracing::info!("sync job with {} out of time", &peer.to_hex()[..16]);
                    self.apply(now, peer, Step::End(None), chain);
                }
            }
        }
    }

    /// A closed request (answered, or out of time) goes to the job that waits for it.
    fn answered(
        &mut self,
        now: Time,
        peer: Hash,
        req: ReqId,
        answer: Option<Message>,
        chain: &mut impl ChainSink,
    ) {
        let Some(run) = self.running.get_mut(&peer) else { return };
        if run.waiting != Some(req) {
            return;
        }
        run.waiting = None;
        let mut cx = Cx { chain: &mut *chain, out: &mut self.out, peer, now, cfg: self.cfg };
        let step = match &mut run.state {
            State::CatchUp(c) => c.answer(&mut cx, answer),
            State::Cascade(c) => c.answer(&mut cx, answer),
        };
        self.apply(now, peer, step, chain);
    }

    fn apply(&mut self, now: Time, peer: Hash, step: Step, chain: &mut impl ChainSink) {
        match step {
            Step::Ask(msg, timeout) => {
                let req = self.requests.open(now, peer, timeout, ());
                if let Some(run) = self.running.get_mut(&peer) {
                    run.waiting = Some(req);
                }
                self.out.push_back(Output::Peer(ToPeer::Request { peer, req, msg, timeout }));
            }
            Step::End(then) => {
                if let Some(run) = self.running.remove(&peer) {
                    if let Some(req) = run.waiting {
                        self.requests.close(req);
                    }
                }
                let (genesis, tip, _) = chain.hello();
                self.out.push_back(Output::Ended { peer, then, at_genesis: genesis == tip });
            }
        }
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to tick next: the earliest request deadline or job limit.
    pub fn poll_timeout(&self) -> Option<Time> {
        let limit = self.running.values().map(|r| r.limit).min();
        self.requests.next_deadline().into_iter().chain(limit).min()
    }
}

/// What a catch-up waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Headers,
    Bodies,
    TxPow,
}

/// A catch-up from one peer: header rounds ([`HeaderRounds`]) under a total deadline and a
/// minimum of progress ([`CatchUpDeadline`]), then the bodies of the headers we lack, each
/// block offered to the chain in order.
#[derive(Debug)]
struct CatchUp {
    dl: CatchUpDeadline,
    rounds: HeaderRounds,
    round: u32,
    /// The batch was full: ask on from its last header once its bodies are in.
    ask_on: bool,
    /// Headers whose bodies are still to fetch, in order.
    rest: VecDeque<(Hash, TxHeader)>,
    /// How many of `rest` the outstanding `GetBodies` asked for.
    asked: usize,
    /// Blocks fetched, to offer in order.
    ready: VecDeque<BlockData>,
    /// A block that lists transactions we lack, until they come.
    pending: Option<BlockData>,
    expect: Expect,
}

impl CatchUp {
    fn new(now: Time, tree_blocks: u64) -> CatchUp {
        CatchUp {
            dl: CatchUpDeadline::new(now),
            rounds: HeaderRounds::new(tree_blocks),
            round: 0,
            ask_on: false,
            rest: VecDeque::new(),
            asked: 0,
            ready: VecDeque::new(),
            pending: None,
            expect: Expect::Headers,
        }
    }

    fn start<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>) -> Step {
        // Below `min_chain_weight` (initial sync) every sync goes through a verified cascade.
        if cx.cfg.min_chain_weight > 0 && cx.chain.hello().2 < cx.cfg.min_chain_weight {
            return Step::End(Some(Job::Cascade));
        }
        self.next_round(cx)
    }

    fn next_round<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>) -> Step {
        // A slow or stalling peer must not hold the turn: another peer's job then goes on.
        if self.round >= MAX_ROUNDS || self.dl.expired(cx.now) {
            tracing::info!("catch-up from {} out of time", &cx.peer.to_hex()[..16]);
            return Step::End(None);
        }
        self.round += 1;
        self.expect = Expect::Headers;
        let locator = self.rounds.locator(cx.chain.locator());
        Step::Ask(Message::GetHeaders { locator, max: MAX_HEADERS as u32 }, self.dl.remaining(cx.now))
    }

    fn answer<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>, answer: Option<Message>) -> Step {
        match (self.expect, answer) {
            (Expect::Headers, Some(Message::Headers(h))) => self.on_headers(cx, h),
            (Expect::Bodies, Some(Message::Bodies(b))) => self.on_bodies(cx, b),
            (Expect::TxPow, Some(Message::TxPow(ts))) => {
                let Some(mut again) = self.pending.take() else { return Step::End(None) };
                again.listed.extend(ts.into_iter().map(|(t, _)| t));
                match cx.chain.submit(again) {
                    Submitted::Pending(m) => {
                        cx.ban(format!("lists {} TxPoWs its sender cannot supply", m.len()))
                    }
                    Submitted::Accepted => {
                        self.dl.progress(cx.now);
                        self.advance(cx)
                    }
                    Submitted::Invalid(e) => cx.ban(format!("invalid block: {e}")),
                    other => {
                        tracing::debug!("catch-up block not connected: {other:?}");
                        Step::End(None)
                    }
                }
            }
            (_, other) => {
                // No answer (an error, a timeout, a closed connection: not misbehaviour), or
                // an answer of the wrong kind.
                tracing::debug!(
                    "catch-up from {}: no {:?} ({other:?})",
                    &cx.peer.to_hex()[..16],
                    self.expect
                );
                Step::End(None)
            }
        }
    }

    fn on_headers<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>, headers: Vec<TxHeader>) -> Step {
        let ids = match self.rounds.check(&headers) {
            Ok(ids) => ids,
            // A `Headers` answer is a run of the sender's best chain: always linked, whatever
            // our state. (A tampered header breaks the link to the next one.)
            Err(RoundFault::Unlinked) => return cx.ban("headers that do not form a chain".into()),
            Err(e) => {
                // The peer may have reorged since its last batch: not its fault.
                tracing::debug!("catch-up from {}: {e}", &cx.peer.to_hex()[..16]);
                return Step::End(None);
            }
        };
        if let Some(first) = headers.first() {
            if first.block_number > 0 && !cx.chain.has(&first.parents.0[0]) {
                // Headers that do not connect to anything we hold: sync from its cascade.
                return Step::End(Some(Job::Cascade));
            }
        }
        // A linked batch whose last header we hold is held whole: one question, not 2,000.
        let last_known = ids.last().is_none_or(|l| cx.chain.has(l));
        let mut want = VecDeque::new();
        if !last_known {
            for (h, id) in headers.into_iter().zip(ids.iter().copied()) {
                if !cx.chain.has(&id) {
                    want.push_back((id, h));
                }
            }
        }
        match self.rounds.next(&ids, want.len()) {
            Ok(Next::Fetch { ask_on }) => {
                self.dl.progress(cx.now);
                self.ask_on = ask_on;
                self.rest = want;
                self.advance(cx)
            }
            Ok(Next::AskOn) => self.next_round(cx),
            Ok(Next::Done) => Step::End(None),
            Err(e) => {
                tracing::debug!("catch-up from {}: {e}", &cx.peer.to_hex()[..16]);
                Step::End(None)
            }
        }
    }

    fn on_bodies<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>, bodies: Vec<BlockBody>) -> Step {
        if bodies.is_empty() {
            tracing::debug!("catch-up from {}: bodies not delivered", &cx.peer.to_hex()[..16]);
            return Step::End(None);
        }
        // Joined with the headers asked for, in order; more than asked is dropped unread.
        for body in bodies.into_iter().take(self.asked) {
            let Some((_, h)) = self.rest.pop_front() else { break };
            self.ready.push_back(body.with_header(h));
        }
        self.advance(cx)
    }

    /// Offer the fetched blocks in order, then fetch more, or ask on, or end.
    fn advance<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>) -> Step {
        while let Some(b) = self.ready.pop_front() {
            match cx.chain.submit(b.clone()) {
                Submitted::Accepted => self.dl.progress(cx.now),
                Submitted::Pending(missing) => {
                    // It lists transactions we lack: fetch them from the peer, offer it again.
                    self.pending = Some(b);
                    self.expect = Expect::TxPow;
                    let ids = missing.into_iter().take(MAX_GET).collect();
                    return Step::Ask(Message::GetTxPow(ids), TXPOW_TIMEOUT);
                }
                Submitted::Invalid(e) => return cx.ban(format!("invalid block: {e}")),
                other => {
                    tracing::debug!("catch-up block not connected: {other:?}");
                    return Step::End(None);
                }
            }
        }
        if self.rest.is_empty() {
            return if self.ask_on { self.next_round(cx) } else { Step::End(None) };
        }
        if self.dl.expired(cx.now) {
            tracing::info!("catch-up from {} out of time", &cx.peer.to_hex()[..16]);
            return Step::End(None);
        }
        self.asked = self.rest.len().min(CHUNK);
        self.expect = Expect::Bodies;
        let ids = self.rest.iter().take(self.asked).map(|(id, _)| *id).collect();
        Step::Ask(Message::GetBodies(ids), self.dl.remaining(cx.now))
    }
}

/// What a cascade sync waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Cascade,
    Headers,
    Bodies,
}

/// An initial sync (or a resync after a long sleep) from one peer: its cascade and tree root,
/// then every header of its tree (linked, each with its proof of work, their weight added to
/// the cascade's: only a chain proven heavier than ours gets its bodies fetched), then every
/// body, all validated into a candidate chain. Anything invalid bans the peer.
#[derive(Debug)]
struct Cascade {
    claim: u128,
    group: Vec<u8>,
    phase: Phase,
    check: Option<WeightCheck>,
    ids: HeaderList,
    /// Headers whose bodies are validated.
    pos: usize,
    /// Blocks of the current chunk fetched so far.
    got: Vec<BlockData>,
    target: u64,
}

impl Cascade {
    fn new(claim: u128, group: Vec<u8>) -> Cascade {
        Cascade {
            claim,
            group,
            phase: Phase::Cascade,
            check: None,
            ids: HeaderList::default(),
            pos: 0,
            got: vec![],
            target: 0,
        }
    }

    fn answer<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>, answer: Option<Message>) -> Step {
        match (self.phase, answer) {
            (Phase::Cascade, Some(m @ Message::Cascade { .. })) => match cx.chain.sync_begin(m) {
                Ok(start) => {
                    self.check = Some(WeightCheck::new(
                        start.ours,
                        self.claim,
                        start.root,
                        start.proven,
                        start.max_blocks,
                    ));
                    self.ask_headers()
                }
                Err(SyncFault::Invalid(e)) => cx.ban(format!("bad cascade: {e}")),
                Err(SyncFault::Ours(e)) => {
                    tracing::warn!("sync from {} stopped: {e}", &cx.peer.to_hex()[..16]);
                    Step::End(None)
                }
            },
            (Phase::Headers, Some(Message::Headers(h))) => self.on_headers(cx, h),
            (Phase::Headers, _) => self.cut_short(cx),
            (Phase::Bodies, Some(Message::Bodies(b))) => self.on_bodies(cx, b),
            (_, other) => {
                tracing::debug!("sync from {}: no {:?} ({other:?})", &cx.peer.to_hex()[..16], self.phase);
                Step::End(None)
            }
        }
    }

    fn ask_headers(&mut self) -> Step {
        self.phase = Phase::Headers;
        let last = self.check.as_ref().map(|c| c.last()).unwrap_or(Hash::ZERO);
        Step::Ask(Message::GetHeaders { locator: vec![last], max: MAX_HEADERS as u32 }, SYNC_TIMEOUT)
    }

    /// A peer that stops its headers short is judged against the most its chain could weigh.
    fn cut_short<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>) -> Step {
        match &self.check {
            Some(c) if c.claim_cut_short() == Claim::Absurd => {
                cx.ban("claimed a weight its chain does not come near".into())
            }
            _ => Step::End(None),
        }
    }

    fn on_headers<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>, headers: Vec<TxHeader>) -> Step {
        let Some(check) = self.check.as_mut() else { return Step::End(None) };
        let Some(first) = headers.first() else { return self.headers_done(cx) };
        if first.parents.0[0] != check.last() {
            // The peer's tree moved on since it sent its cascade: not misbehaviour.
            return self.cut_short(cx);
        }
        let n = headers.len();
        for h in headers {
            let id = h.id();
            if let Err(e) = check.add(&h, &id) {
                return cx.ban(format!("sync headers: {e}"));
            }
            self.ids.push(id, h);
        }
        if n < MAX_HEADERS {
            self.headers_done(cx)
        } else {
            self.ask_headers()
        }
    }

    fn headers_done<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>) -> Step {
        let Some(check) = &self.check else { return Step::End(None) };
        match check.claim() {
            Claim::Fair => {}
            Claim::Inflated => cx.out.push_back(Output::Peer(ToPeer::Penalize {
                peer: cx.peer,
                points: INFLATED_CLAIM_PENALTY,
                why: "claimed more weight than its chain proves".into(),
            })),
            Claim::Absurd => return cx.ban("claimed a weight its chain does not come near".into()),
        }
        if check.verdict() == WeightVerdict::NotHeavier {
            tracing::info!("sync from {} not taken: no more weight than ours", &cx.peer.to_hex()[..16]);
            return Step::End(None);
        }
        if let Some(tip) = self.ids.last() {
            if tip.time_ms > cx.chain.clock_ms().saturating_add(cx.cfg.max_local_future_ms) {
                // SPEC §5's clock policy: not now, and not the peer's fault; a later sync retries.
                tracing::info!(
                    "sync from {} not now: its tip is dated too far ahead",
                    &cx.peer.to_hex()[..16]
                );
                return Step::End(None);
            }
        }
        self.target = self.ids.last().map(|h| h.block_number).unwrap_or(0);
        self.next_chunk(cx)
    }

    fn chunk_len(&self) -> usize {
        self.ids.len().saturating_sub(self.pos).min(CHUNK)
    }

    fn next_chunk<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>) -> Step {
        if self.pos >= self.ids.len() {
            let outcome = cx.chain.sync_end(std::mem::take(&mut self.group));
            tracing::info!("sync from {}: {outcome:?}", &cx.peer.to_hex()[..16]);
            return Step::End(None);
        }
        self.phase = Phase::Bodies;
        let from = self.pos + self.got.len();
        let to = self.pos + self.chunk_len();
        let ids = self.ids.ids(from..to);
        Step::Ask(Message::GetBodies(ids), SYNC_TIMEOUT)
    }

    fn on_bodies<C: ChainSink>(&mut self, cx: &mut Cx<'_, C>, bodies: Vec<BlockBody>) -> Step {
        let len = self.chunk_len();
        if bodies.is_empty() {
            // The peer dropped blocks it just announced (its tree moved): give up quietly.
            return Step::End(None);
        }
        let from = self.pos + self.got.len();
        let to = self.pos + len;
        for (body, h) in bodies.into_iter().zip(self.ids.headers(from..to)) {
            self.got.push(body.with_header(h));
        }
        if self.got.len() < len {
            return self.next_chunk(cx);
        }
        let blocks = std::mem::take(&mut self.got);
        match cx.chain.sync_blocks(blocks, self.target) {
            Ok(()) => {}
            Err(SyncFault::Invalid(e)) => return cx.ban(format!("invalid block in sync: {e}")),
            Err(SyncFault::Ours(e)) => {
                tracing::warn!("sync from {} stopped: {e}", &cx.peer.to_hex()[..16]);
                return Step::End(None);
            }
        }
        self.pos += len;
        self.next_chunk(cx)
    }
}

#[cfg(all(test, feature = "fixture"))]
mod tests {
    //! A catch-up driven with no socket and no sleep: our side is a real [`Chain`] that fully
    //! validates what it is offered; the peer is a fixture chain of real blocks, answering the
    //! job's requests as a node serves them.

    use super::super::testkit::{peer_chain, serve, Ours};
    use super::*;
    use crate::fixture::ChainBuilder;
    use crate::params::Params;

    fn t(s: u64) -> Time {
        Time::from_origin(Duration::from_secs(s))
    }

    fn cfg() -> Config {
        let p = Params::devnet();
        Config {
            min_chain_weight: 0,
            tree_blocks: p.tree_depth + p.cascade_step,
            max_local_future_ms: 7_200_000,
        }
    }

    const P: Hash = Hash([7; 32]);

    fn start(jobs: &mut Jobs, ours: &mut Ours) {
        jobs.handle(t(0), Input::Start { peer: P, job: Job::CatchUp, claim: 0, group: vec![10, 0] }, ours);
    }

    /// Answer every request from `peer` (tampering with answers by `tamper`) until the job
    /// ends; returns every output that was not a request.
    fn run(
        jobs: &mut Jobs,
        ours: &mut Ours,
        peer: &ChainBuilder,
        mut tamper: impl FnMut(Message) -> Message,
    ) -> Vec<Output> {
        let mut rest = vec![];
        for _ in 0..10_000 {
            let Some(o) = jobs.poll() else { break };
            match o {
                Output::Peer(ToPeer::Request { req, msg, peer: to, .. }) => {
                    assert_eq!(to, P);
                    let answer = tamper(serve(peer, &msg));
                    jobs.handle(t(1), Input::Answer { req, answer: Some(answer) }, ours);
                }
                other => rest.push(other),
            }
        }
        rest
    }

    #[test]
    fn a_catch_up_takes_every_block_the_peer_is_ahead_by_in_order() {
        let peer = peer_chain(40);
        let mut ours = Ours::new(peer.params.clone());
        let mut jobs = Jobs::new(cfg());
        start(&mut jobs, &mut ours);
        let rest = run(&mut jobs, &mut ours, &peer, |m| m);
        assert_eq!(rest, vec![Output::Ended { peer: P, then: None, at_genesis: false }]);
        assert_eq!(ours.chain.tip_id(), peer.chain.tip_id());
        assert_eq!(ours.offered, 40, "each block offered once");
        assert!(jobs.poll_timeout().is_none(), "nothing left running");
    }

    #[test]
    fn headers_that_do_not_connect_hand_on_to_a_cascade_sync() {
        // The peer's tree starts far above our genesis: its first header's parent is unknown.
        let peer = peer_chain(300);
        let mut ours = Ours::new(peer.params.clone());
        let mut jobs = Jobs::new(cfg());
        start(&mut jobs, &mut ours);
        let rest = run(&mut jobs, &mut ours, &peer, |m| m);
        assert_eq!(rest, vec![Output::Ended { peer: P, then: Some(Job::Cascade), at_genesis: true }]);
        assert_eq!(ours.offered, 0);
    }

    #[test]
    fn tampered_headers_ban_the_peer_and_bodies_of_other_blocks_are_refused() {
        let peer = peer_chain(30);
        // A header whose link to the one before is broken.
        let mut ours = Ours::new(peer.params.clone());
        let mut jobs = Jobs::new(cfg());
        start(&mut jobs, &mut ours);
        let rest = run(&mut jobs, &mut ours, &peer, |m| match m {
            Message::Headers(mut h) if h.len() > 3 => {
                h[2].time_ms += 1;
                Message::Headers(h)
            }
            m => m,
        });
        assert!(
            matches!(&rest[0], Output::Peer(ToPeer::Ban { peer, why }) if *peer == P && why.contains("chain")),
            "{rest:?}"
        );
        assert!(matches!(rest[1], Output::Ended { then: None, .. }));
        assert_eq!(ours.offered, 0);

        // Bodies swapped for another block's: the joined block fails validation: banned.
        let mut ours = Ours::new(peer.params.clone());
        let mut jobs = Jobs::new(cfg());
        start(&mut jobs, &mut ours);
        let rest = run(&mut jobs, &mut ours, &peer, |m| match m {
            Message::Bodies(mut b) if b.len() > 2 => {
                b.swap(0, 1);
                Message::Bodies(b)
            }
            m => m,
        });
        assert!(
            matches!(&rest[0], Output::Peer(ToPeer::Ban { why, .. }) if why.contains("invalid block")),
            "{rest:?}"
        );
        assert_eq!(ours.chain.tip().number(), 0);
    }

    #[test]
    fn a_silent_peer_loses_the_turn_at_its_deadline_unpunished_and_a_late_answer_is_ignored() {
        let peer = peer_chain(10);
        let mut ours = Ours::new(peer.params.clone());
        let mut jobs = Jobs::new(cfg());
        start(&mut jobs, &mut ours);
        let Some(Output::Peer(ToPeer::Request { req, msg, timeout, .. })) = jobs.poll() else {
            panic!("a request")
        };
        assert_eq!(timeout, super::super::deadline::STALL);
        let deadline = jobs.poll_timeout().expect("a deadline");
        assert_eq!(deadline, t(0) + timeout);
        // Ticked early: nothing happens.
        jobs.handle(t(5), Input::Tick, &mut ours);
        assert!(jobs.poll().is_none());
        jobs.handle(deadline, Input::Tick, &mut ours);
        assert_eq!(jobs.poll(), Some(Output::Ended { peer: P, then: None, at_genesis: true }));
        assert!(jobs.poll().is_none(), "no penalty for silence");
        // The answer arrives after all: not taken.
        jobs.handle(deadline, Input::Answer { req, answer: Some(serve(&peer, &msg)) }, &mut ours);
        assert!(jobs.poll().is_none());
        assert_eq!(ours.offered, 0);
        assert!(jobs.poll_timeout().is_none());
    }

    #[test]
    fn a_silent_cascade_peer_ends_its_job_and_a_second_start_with_a_busy_peer_is_not_taken() {
        let mut ours = Ours::new(Params::devnet());
        let mut jobs = Jobs::new(cfg());
        jobs.handle(t(0), Input::Start { peer: P, job: Job::Cascade, claim: 0, group: vec![] }, &mut ours);
        let Some(Output::Peer(ToPeer::Request { msg: Message::GetCascade, timeout, .. })) = jobs.poll()
        else {
            panic!()
        };
        assert_eq!(timeout, SYNC_TIMEOUT);
        // The request's deadline comes first; with it the job ends, without a penalty.
        jobs.handle(t(0) + SYNC_TIMEOUT, Input::Tick, &mut ours);
        assert_eq!(jobs.poll(), Some(Output::Ended { peer: P, then: None, at_genesis: true }));
        // A second start for the same peer while one runs is not taken.
        start(&mut jobs, &mut ours);
        let Some(Output::Peer(ToPeer::Request { .. })) = jobs.poll() else { panic!() };
        start(&mut jobs, &mut ours);
        assert!(jobs.poll().is_none());
        assert_eq!(jobs.running().count(), 1);
    }
}
