//! The symbolic search, and the liveness pass after it, on several threads sharing nothing
//! but channels and a counter.
//!
//! Each worker is an [`Engine`] of its own: it owns the combinations of process states that
//! hash to it ([`owner`]), with their networks in a diagram store and dictionaries of its own,
//! and expands them in its own order ([`progress`](super::progress) first). A step that reaches a combination
//! another worker owns is sent there as a [`Delivery`]: the networks as a [`Shipment`] (a
//! portable diagram with the channel contents its values stand for), rebuilt by the owner in
//! its store. Diagram operations are most of the time and none of them is shared, so the
//! workers do not wait for each other. When the search is over the workers stay, as the
//! calling engine's shards: counting, the liveness pass ([`can_reach_sets`]: news for a
//! combination another worker owns goes there as [`News`]) and the states run on them.
//!
//! A pass ends when no worker is at work and no message is on its way: `busy` counts both (a
//! message is counted before it is sent and uncounted once absorbed, by a worker that counts
//! itself busy first), so it is zero only then, and stays zero.

use super::{Backward, Engine, Found, Options, Watch, Work, GC_FLOOR, MAX_LAYERS, WORKER_SHIFT};
use crate::engine::Stop;
use crate::mdd::{Mdd, Node, Portable, Value};
use crate::system::{Action, BullySystem, Network, SysState};
use stateright::Model;
use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A set of networks on its way to another worker's store.
struct Shipment {
    /// The worker that sent it.
    sender: usize,
    nets: Portable,
    /// The channel content that each `(level, value)` of `nets` not sent to this worker before
    /// stands for.
    contents: Vec<((usize, Value), Network)>,
}

/// What a worker's dictionaries ([`Dict`](super::Dict)) hold in common with the others': a
/// channel content goes to each worker once, and each later shipment names it by its value
/// here. Messages from one worker arrive in the order it sent them, so a content always
/// arrives before its first use.
#[derive(Default)]
pub(super) struct Peers {
    /// For each worker: the `(level, value)`s whose content it has been sent.
    sent: Vec<HashSet<(usize, Value), ahash::RandomState>>,
    /// For each worker: its `(level, value)`s, as values here.
    known: Vec<HashMap<(usize, Value), Value, ahash::RandomState>>,
}

/// Networks for a combination another worker owns, reached by `action` from entry `from`
/// (numbered among every worker's, [`Engine::global`]).
struct Delivery {
    state: SysState,
    nets: Shipment,
    from: u32,
    action: Action,
    /// Whether the sender took this step from `from` for the first time (to be recorded).
    first: bool,
}

/// For the liveness pass: networks `target` of another worker's combination are good, and
/// each of `steps` (from an entry the receiver owns, by its own number) reaches them.
struct News {
    target: Shipment,
    steps: Vec<(u32, Action)>,
}

/// What the workers share.
struct Shared {
    /// Workers at work plus deliveries not yet absorbed: zero once the search is over.
    busy: AtomicUsize,
    /// Set when a worker breaks off the search (a counterexample, the budget).
    stop: AtomicBool,
    why: Mutex<Option<Stop>>,
    /// For the progress lines.
    expansions: AtomicU64,
    combinations: AtomicU64,
}

impl Shared {
    fn new(workers: usize) -> Shared {
        Shared {
            busy: AtomicUsize::new(workers),
            stop: AtomicBool::new(false),
            why: Mutex::new(None),
            expansions: AtomicU64::new(0),
            combinations: AtomicU64::new(0),
        }
    }

    fn break_off(&self, why: Option<Stop>) {
        let mut slot = self.why.lock().expect("no worker panics holding it");
        if slot.is_none() {
            *slot = why;
        }
        self.stop.store(true, SeqCst);
    }
}

/// The worker that owns the combination `state` (its network empty), of `workers`: by its two
/// lowest processes and its ghost state. A step of any other process stays with its worker.
///
/// The key decides how much work the workers duplicate: each has its own diagram store and
/// caches, so a sub-diagram that combinations on both workers hold is built, and stepped,
/// twice. With the two lowest processes, at N=5 two workers spend about the CPU time of one
/// (54.5 s of user time, against 53.1 s on one thread). Keys with the highest processes cost
/// more: the
/// lowest and the two highest 1.4 times as much (73.2 s), the two highest alone 1.2 times
/// (64.5 s). Measured with `check -n 5 --threads 2 --no-liveness` and each key; join start
/// the same way: 43.3 s of wall time against 47.2 s with the lowest and two highest.
fn owner(state: &SysState, workers: usize) -> usize {
    let lowest = &state.procs[..state.procs.len().min(2)];
    let h = ahash::RandomState::with_seeds(3, 5, 7, 9).hash_one((lowest, &state.ghost));
    (h % workers as u64) as usize
}

/// The search of [`Engine::explore`] on `main.opts.threads` workers, checking `properties`
/// into `found`; the workers then become `main`'s shards. Returns why the search stopped
/// early (if it did) and the peak resident size.
pub(super) fn explore(
    main: &mut Engine<'_>,
    t0: Instant,
    properties: &[stateright::Property<BullySystem>],
    found: &mut Found,
) -> (Option<Stop>, u64) {
    let workers = main.opts.threads;
    let shared = Shared::new(workers);
    let engines: Vec<Engine<'_>> = (0..workers)
        .map(|w| {
            let mut opts = main.opts.clone();
            if w > 0 {
                opts.progress_every = None;
            }
            let mut engine = Engine::new(main.model, opts);
            engine.worker = w as u32;
            engine
        })
        .collect();
    let done = on_threads("symbolic", engines, |mut engine, inbox, outboxes| {
        let mut found = Found::new();
        let peak = work(&mut engine, &shared, &inbox, outboxes, t0, |e, k, n| {
            e.check_properties(properties, &mut found, k, n)
        });
        (engine, found, peak)
    });
    let peak = done.iter().map(|d| d.2).max().unwrap_or(0);
    let mut engines = Vec::with_capacity(done.len());
    for (engine, their_found, _) in done {
        for (name, state) in their_found {
            if !found.iter().any(|(n, _)| *n == name) {
                found.push((name, state));
            }
        }
        engines.push(engine);
    }
    main.peak_nodes = engines
        .iter()
        .map(|e| e.peak_nodes.max(e.mdd.node_count()))
        .sum();
    main.shards = engines;
    let why = shared.why.into_inner().expect("no worker panicked");
    (why, peak)
}

/// One worker: absorbs deliveries and expands its combinations until the search is over or
/// broken off. Returns its peak resident size.
fn work(
    engine: &mut Engine<'_>,
    shared: &Shared,
    inbox: &Receiver<Delivery>,
    outboxes: &[Sender<Delivery>],
    t0: Instant,
    mut visit: impl FnMut(&mut Engine<'_>, u32, Node) -> ControlFlow<Option<Stop>>,
) -> u64 {
    let mut visit = |e: &mut Engine<'_>, k: u32, n: Node, _tick: u32| visit(e, k, n);
    let me = engine.worker as usize;
    let mut watch = Watch::new(t0);
    let mut work = Work::default();
    let mut gc_at = GC_FLOOR;
    for s in engine.model.init_states() {
        let vector = engine.split(&s.network);
        let mut state = s;
        state.network = Network::default();
        if owner(&state, outboxes.len()) == me {
            let nets = engine.mdd.singleton(&vector);
            let k = engine.new_entry(state, shared);
            if let ControlFlow::Break(why) = engine.arrive(&mut work, k, nets, 0, &mut visit) {
                shared.break_off(why);
            }
        }
    }
    while !shared.stop.load(SeqCst) {
        drain(shared, inbox, |d| {
            engine.absorb(&mut work, d, shared, &mut visit)
        });
        if engine.mdd.node_count() > gc_at {
            engine.collect_garbage(&mut work.pending);
            gc_at = (2 * engine.mdd.node_count()).max(GC_FLOOR);
        }
        let Some(Reverse((_, k))) = work.queue.pop() else {
            let absorb = |d| engine.absorb(&mut work, d, shared, &mut visit);
            if !wait(shared, inbox, absorb) {
                break;
            }
            continue;
        };
        if let ControlFlow::Break(why) =
            engine.expand_one(&mut work, k, shared, outboxes, &mut visit)
        {
            shared.break_off(why);
        }
        let what = || {
            format!(
                "{} expansions, {} process-state combinations, {} diagram nodes ({} threads)",
                shared.expansions.load(SeqCst),
                shared.combinations.load(SeqCst),
                engine.mdd.node_count(),
                outboxes.len()
            )
        };
        if let Some(stop) = watch.look(&engine.opts, what) {
            shared.break_off(Some(stop));
        }
    }
    watch.peak
}

/// Runs `each` on one thread per worker (named `name-W`), given the worker's own part of
/// `parts`, its inbox and every worker's outbox; the results in worker order.
fn on_threads<P: Send, D: Send, T: Send>(
    name: &str,
    parts: Vec<P>,
    each: impl Fn(P, Receiver<D>, &[Sender<D>]) -> T + Sync,
) -> Vec<T> {
    let (outboxes, inboxes): (Vec<Sender<D>>, Vec<Receiver<D>>) =
        parts.iter().map(|_| channel()).unzip();
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .zip(inboxes)
            .enumerate()
            .map(|(w, (part, inbox))| {
                let (each, outboxes) = (&each, outboxes.clone());
                std::thread::Builder::new()
                    .name(format!("{name}-{w}"))
                    .spawn_scoped(scope, move || each(part, inbox, &outboxes))
                    .expect("a thread starts")
            })
            .collect();
        drop(outboxes);
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker completes"))
            .collect()
    })
}

/// Absorbs every message already in `inbox`.
fn drain<D>(
    shared: &Shared,
    inbox: &Receiver<D>,
    mut absorb: impl FnMut(D) -> ControlFlow<Option<Stop>>,
) {
    while let Ok(d) = inbox.try_recv() {
        let absorbed = absorb(d);
        shared.busy.fetch_sub(1, SeqCst);
        if let ControlFlow::Break(why) = absorbed {
            shared.break_off(why);
        }
    }
}

/// An idle worker waits for a message and absorbs it: false once the pass is over (nobody at
/// work, nothing on its way) or broken off.
fn wait<D>(
    shared: &Shared,
    inbox: &Receiver<D>,
    mut absorb: impl FnMut(D) -> ControlFlow<Option<Stop>>,
) -> bool {
    shared.busy.fetch_sub(1, SeqCst);
    loop {
        match inbox.recv_timeout(Duration::from_millis(1)) {
            Ok(d) => {
                // Busy again before the message is uncounted: `busy` never passes zero.
                shared.busy.fetch_add(1, SeqCst);
                let absorbed = absorb(d);
                shared.busy.fetch_sub(1, SeqCst);
                if let ControlFlow::Break(why) = absorbed {
                    shared.break_off(why);
                }
                return true;
            }
            Err(RecvTimeoutError::Timeout) => {
                if shared.busy.load(SeqCst) == 0 || shared.stop.load(SeqCst) {
                    return false;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}

/// Sends `message` to worker `to`, counted as on its way.
fn send<D>(shared: &Shared, outboxes: &[Sender<D>], to: usize, message: D) {
    shared.busy.fetch_add(1, SeqCst);
    // A worker stops listening only once the pass is broken off.
    if outboxes[to].send(message).is_err() {
        assert!(shared.stop.load(SeqCst), "a worker left early");
    }
}

impl Engine<'_> {
    /// A new entry for `state`, counted for the progress lines.
    fn new_entry(&mut self, state: SysState, shared: &Shared) -> u32 {
        let before = self.entries.len();
        let k = self.entry(state);
        if self.entries.len() > before {
            shared.combinations.fetch_add(1, SeqCst);
        }
        k
    }

    /// Takes in a delivery: its networks arrive at the combination it is for.
    fn absorb(
        &mut self,
        work: &mut Work,
        d: Delivery,
        shared: &Shared,
        visit: &mut impl FnMut(&mut Self, u32, Node, u32) -> ControlFlow<Option<Stop>>,
    ) -> ControlFlow<Option<Stop>> {
        let nets = self.unpack(d.nets);
        let to = self.new_entry(d.state, shared);
        if d.first {
            self.entries[to as usize].preds.push((d.from, d.action));
        }
        self.arrive(work, to, nets, 0, visit)
    }

    /// Expands entry `k` (see [`Engine::explore`]): its own new networks stay, the others
    /// arrive here or are sent to their owners.
    fn expand_one(
        &mut self,
        work: &mut Work,
        k: u32,
        shared: &Shared,
        outboxes: &[Sender<Delivery>],
        visit: &mut impl FnMut(&mut Self, u32, Node, u32) -> ControlFlow<Option<Stop>>,
    ) -> ControlFlow<Option<Stop>> {
        let nets = std::mem::replace(&mut work.pending[k as usize], Mdd::EMPTY);
        let (layers, closed, others) = self.expand(k, nets, MAX_LAYERS);
        shared.expansions.fetch_add(1, SeqCst);
        let mut tick = 0;
        self.settle_layers(work, k, layers, closed, &mut tick, visit)?;
        let me = self.worker as usize;
        for (next, action, image) in others {
            let to = owner(&next, outboxes.len());
            if to == me {
                let to = self.new_entry(next, shared);
                self.record_edge(k, to, action);
                self.arrive(work, to, image, 0, visit)?;
                continue;
            }
            let d = self.delivery(next, image, k, action, to);
            send(shared, outboxes, to, d);
        }
        ControlFlow::Continue(())
    }

    /// The networks `image` that step `action` from entry `k` reaches in the combination
    /// `state`, for the worker that owns it.
    fn delivery(
        &mut self,
        state: SysState,
        image: Node,
        k: u32,
        action: Action,
        to: usize,
    ) -> Delivery {
        Delivery {
            state,
            nets: self.pack(image, to),
            from: self.global(k),
            action,
            first: self.edges.insert((k, action)),
        }
    }

    /// The networks `nets`, ready to leave this store for worker `to`'s.
    fn pack(&mut self, nets: Node, to: usize) -> Shipment {
        let nets = self.mdd.export(nets);
        if self.peers.sent.len() <= to {
            self.peers.sent.resize_with(to + 1, HashSet::default);
        }
        let sent = &mut self.peers.sent[to];
        let mut contents: Vec<((usize, Value), Network)> = Vec::new();
        for (level, v) in nets.values() {
            if sent.insert((level, v)) {
                contents.push(((level, v), self.dicts[level].values[v as usize].clone()));
            }
        }
        Shipment {
            sender: self.worker as usize,
            nets,
            contents,
        }
    }

    /// Networks from another store, rebuilt in this one.
    fn unpack(&mut self, shipment: Shipment) -> Node {
        let from = shipment.sender;
        if self.peers.known.len() <= from {
            self.peers.known.resize_with(from + 1, HashMap::default);
        }
        let known = &mut self.peers.known[from];
        for ((level, v), net) in shipment.contents {
            known.insert((level, v), self.dicts[level].intern(net));
        }
        self.mdd
            .import(&shipment.nets, |level, v| known[&(level, v)])
    }
}

/// The liveness pass's backward fixpoint (module `backward`) on `shards`, each on a thread
/// of its own: each shard's networks from which fault-free steps can reach `goal`, entry by
/// entry. `Err(resident size)` if the memory budget stopped it.
pub(super) fn can_reach_sets(
    shards: &mut [Engine<'_>],
    opts: &Options,
    goal: &(impl Fn(&SysState) -> bool + Sync),
    t0: Instant,
) -> Result<Vec<Vec<Node>>, u64> {
    let shared = Shared::new(shards.len());
    for engine in shards.iter_mut() {
        // The budget is the caller's; the first worker prints the progress lines.
        engine.opts.budget = opts.budget;
        engine.opts.progress_every = opts.progress_every.filter(|_| engine.worker == 0);
    }
    let good = on_threads(
        "liveness",
        shards.iter_mut().collect(),
        |engine, inbox, outboxes| go_back(engine, &shared, &inbox, outboxes, goal, t0),
    );
    match shared.why.into_inner().expect("no worker panicked") {
        Some(Stop::MemoryBudget { resident, .. }) => Err(resident),
        _ => Ok(good),
    }
}

/// One worker of the liveness pass: passes its combinations' news back, to its own
/// predecessors at once and to the others' owners as [`News`].
fn go_back(
    engine: &mut Engine<'_>,
    shared: &Shared,
    inbox: &Receiver<News>,
    outboxes: &[Sender<News>],
    goal: &impl Fn(&SysState) -> bool,
    t0: Instant,
) -> Vec<Node> {
    let me = engine.worker;
    let mut watch = Watch::new(t0);
    let mut back = Backward::new(engine, goal);
    let absorb = |engine: &mut Engine<'_>, back: &mut Backward, news: News| {
        let target = engine.unpack(news.target);
        for (from, a) in news.steps {
            back.take_back(engine, from, a, target);
        }
        ControlFlow::Continue(())
    };
    while !shared.stop.load(SeqCst) {
        drain(shared, inbox, |news| absorb(engine, &mut back, news));
        let Some((to, target)) = back.next() else {
            if !wait(shared, inbox, |news| absorb(engine, &mut back, news)) {
                break;
            }
            continue;
        };
        // Steps from this worker's entries are taken back here; the others go to their
        // owners, one shipment per worker.
        let mut elsewhere: Vec<Vec<(u32, Action)>> = vec![Vec::new(); outboxes.len()];
        for (from, a) in engine.entries[to as usize].preds.clone() {
            if BullySystem::is_fault(&a) {
                continue;
            }
            let (w, k) = (from >> WORKER_SHIFT, from & ((1 << WORKER_SHIFT) - 1));
            if w == me {
                back.take_back(engine, k, a, target);
            } else {
                elsewhere[w as usize].push((k, a));
            }
        }
        for (w, steps) in elsewhere.into_iter().enumerate() {
            if !steps.is_empty() {
                let target = engine.pack(target, w);
                send(shared, outboxes, w, News { target, steps });
            }
        }
        let what = || format!("liveness: {} combinations to go back from", back.waiting());
        if let Some(stop) = watch.look(&engine.opts, what) {
            shared.break_off(Some(stop));
        }
    }
    back.good
}
