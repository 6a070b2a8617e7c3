//! The symbolic engine: the same state graph as the explicit checker, stored as explicit
//! process states, each with the *set* of networks it occurs with as a decision diagram.
//!
//! Why: at N=4 with a crash and a recovery, 31 M states hold only 8 100 distinct combinations
//! of process states (crash flags and ghost state included); the rest is which messages are in
//! flight, and the channels vary nearly independently of each other. A decision diagram with
//! one level per pair of processes (the two channels between them) stores such a set in a few
//! nodes, and a step transforms the whole set at once:
//!
//! * everything a step does to the processes depends on the processes and the action alone
//!   ([`BullySystem::step`]), so it is computed once per (process states, action);
//! * what it does to the network is a list of [`NetOp`]s, each acting on one channel at a
//!   time, so it is a map of each level's values ([`Mdd::transform_by`]; module `levels`
//!   names each level's map by what it reads, so maps and their images are shared across
//!   steps and combinations);
//! * what it needs of the network is a head (or last message) of one channel
//!   ([`BullySystem::message_actions`], asked value by value) or that some channels be empty
//!   ([`BullySystem::local_actions`], [`Quiet`]): a filter on those levels.
//!
//! So this engine runs the very functions the explicit checker runs, on sets; it is exact, not
//! an abstraction (`model/tests/symbolic.rs` compares both engines state by state). A level's
//! value is an index into that pair's dictionary of contents ([`Network`]s holding only its
//! two channels); a whole network is the levels' contents merged in channel order, which is
//! the network's canonical order.
//!
//! The search expands one combination at a time, all its new networks at once, in no fixed
//! depth order ([`Engine::run`] says why); so it reports no depth, and its paths, found
//! backwards through the order in which networks arrived ([`Mdd::preimage`]), are short but
//! not always shortest. Liveness (`AG EF settled` over fault-free steps, as [`crate::liveness`]
//! defines it) is the backward fixpoint of "can still settle" over the same steps (module
//! `backward`). The properties read the processes and
//! ghost state only, except `crash cuts a broadcast short`, which reads whether channels are
//! empty ([`properties::broadcast_cut_channels`]).
//!
//! With [`Options::threads`] above one, the search runs on that many workers, each owning a
//! share of the combinations with a store of its own (module `parallel`). The workers stay as
//! the engine's shards: the liveness pass runs on them in parallel too; the search for paths
//! runs on one thread.

use crate::mdd::{LevelFn, Mdd, Node, Value};
use crate::memory::{self, Budget};
use crate::properties;
use crate::system::{Action, BullySystem, Config, NetOp, NetOps, Network, Quiet, SysState};
use crate::trace::{Path, Witness};
use stateright::{Expectation, Model};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

mod backward;
mod levels;
mod parallel;

use backward::Backward;
use levels::{Dict, LevelMaps, LevelStep};

/// Each property's first example or counterexample found, by name.
type Found = Vec<(&'static str, SysState)>;

/// How often the search looks at its resident size (for the budget and the progress lines).
const LOOK_EVERY: Duration = Duration::from_millis(10);

/// Most layers of its own networks one expansion adds (see [`Engine::expand`]); the rest wait
/// for a later one. A deliberately broken engine's graph may be infinite.
const MAX_LAYERS: usize = 256;

/// An entry number's bits below the worker's (see [`Engine::global`]).
const WORKER_SHIFT: u32 = 27;

/// Collect garbage nodes once there are this many (and then once the store has doubled).
const GC_FLOOR: usize = 1 << 20;

/// One combination of process states (and crash flags, ghost state): its networks.
struct Entry {
    /// The processes and ghost state; its network is empty.
    state: SysState,
    reached: Node,
    /// The networks as they arrived: `(n, nets)`, the networks first reached at tick `n` (0:
    /// the initial state; then one tick per expansion and per layer of [`Engine::expand`]), in
    /// increasing order. A network that arrived at tick `n` has a predecessor that arrived
    /// before `n`, so following arrivals back always ends at the start ([`Engine::trace`]).
    arrivals: Vec<(u32, Node)>,
    /// The steps into this entry: (from entry, action).
    preds: Vec<(u32, Action)>,
}

/// Deliberately broken engines, to show that the comparison with the explicit checker
/// (`model/tests/symbolic.rs`) catches a wrong one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Flaw {
    #[default]
    None,
    /// Ignores the synchronous timing rule's reads of the network (a timer fires whatever
    /// is in flight).
    IgnoreQuiet,
    /// Ignores a crash's effect on the messages to the crashed process (they stay).
    KeepMessagesToCrashed,
    /// A broken saturation step: closing a combination under its own local steps
    /// (`Engine::expand`) applies a message step to every network, not only to those whose
    /// channel holds a content that enables it (the event's effect without its guard's level).
    LocalStepWithoutGuard,
}

/// What a symbolic run found.
pub struct Outcome {
    pub states: u128,
    pub seconds: f64,
    pub nodes: DiagramNodes,
    pub peak_memory: u64,
    /// Set when the search stopped early (a counterexample or the memory budget).
    pub stopped: Option<crate::engine::Stop>,
    /// Each property's first example or counterexample (by name).
    pub discoveries: HashMap<&'static str, Witness>,
}

/// How large the diagram store grew during the search (on several threads: the sum of each
/// worker's largest), and what the reached sets hold at its end.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiagramNodes {
    pub peak: usize,
    pub last: usize,
}

/// The liveness verdict of a symbolic run.
pub struct Liveness {
    pub trapped_states: u128,
    pub settled_states: u128,
    pub counterexample: Option<Witness>,
    pub elapsed: Duration,
    /// The resident size at which the memory budget stopped the pass (no verdict then).
    pub stopped_at_memory: Option<u64>,
}

/// Options of a symbolic run.
#[derive(Clone, Debug)]
pub struct Options {
    pub stop_at_violation: bool,
    pub budget: Option<Budget>,
    pub progress_every: Option<Duration>,
    /// Expand no more often than this (for tests of broken engines, whose graphs may be
    /// infinite); the run is then incomplete.
    pub max_expansions: Option<u32>,
    pub flaw: Flaw,
    /// Find a path to each `sometimes` example too, not only to counterexamples: a second
    /// search in the same order, as long as it takes to reach the last of them.
    pub example_paths: bool,
    /// Threads that search: each owns the combinations that hash to it, with a diagram store
    /// of its own (module `parallel`); the liveness pass runs on them too. The search for
    /// paths runs on one.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stop_at_violation: true,
            budget: None,
            progress_every: None,
            max_expansions: None,
            flaw: Flaw::None,
            example_paths: true,
            threads: 1,
        }
    }
}

/// The reachable states of an unbounded configuration (sync timing, no mutant, a reliable or
/// duplicating network), found symbolically.
pub struct Engine<'m> {
    model: &'m BullySystem,
    opts: Options,
    /// `slot[src][dst]`: the level of the channel from `src` to `dst` (and back).
    slot: Vec<Vec<usize>>,
    /// Each level's pair of processes, `(a, b)` with `a < b`: the channels from `a` to `b`
    /// and from `b` to `a`.
    ends: Vec<(usize, usize)>,
    dicts: Vec<Dict>,
    /// Every step's maps of levels seen so far, and their images of values.
    level_maps: LevelMaps,
    mdd: Mdd,
    index: HashMap<SysState, u32, ahash::RandomState>,
    entries: Vec<Entry>,
    edges: HashSet<(u32, Action), ahash::RandomState>,
    /// Which worker of a parallel search this is (0 alone): the high bits of the entry
    /// numbers its steps are recorded from ([`Entry::preds`], [`Engine::global`]).
    worker: u32,
    /// What this worker's dictionaries share with the other workers'.
    peers: parallel::Peers,
    /// The most nodes the store has held (see [`DiagramNodes`]).
    peak_nodes: usize,
    /// After a search on several threads: each worker's engine, holding the combinations it
    /// owns (this one then holds none). The liveness pass runs on them in parallel.
    shards: Vec<Engine<'m>>,
}

/// The search's eye on its means: the peak resident size, the budget, the progress lines.
struct Watch {
    t0: Instant,
    peak: u64,
    last_look: Instant,
    last_progress: Instant,
}

impl Watch {
    fn new(t0: Instant) -> Watch {
        Watch {
            t0,
            peak: memory::resident_bytes().unwrap_or(0),
            // The first look is at once.
            last_look: t0.checked_sub(LOOK_EVERY).unwrap_or(t0),
            last_progress: t0,
        }
    }

    /// Looks at the resident size (read from /proc, so at most every 10 ms): a stop if the
    /// budget is reached; a progress line (`what`, the size, the time) when one is due.
    fn look(
        &mut self,
        opts: &Options,
        what: impl FnOnce() -> String,
    ) -> Option<crate::engine::Stop> {
        if self.last_look.elapsed() < LOOK_EVERY {
            return None;
        }
        self.last_look = Instant::now();
        let resident = memory::resident_bytes().unwrap_or(0);
        self.peak = self.peak.max(resident);
        if let Some(budget) = opts.budget {
            if resident >= budget.stop_at() {
                return Some(crate::engine::Stop::MemoryBudget {
                    budget: budget.bytes,
                    resident,
                });
            }
        }
        if let Some(every) = opts.progress_every {
            if self.last_progress.elapsed() >= every {
                self.last_progress = Instant::now();
                eprintln!(
                    "  … {}, {} resident, {:.0}s",
                    what(),
                    Budget::show(resident),
                    self.t0.elapsed().as_secs_f64()
                );
            }
        }
        None
    }
}

impl<'m> Engine<'m> {
    /// Whether `cfg` can be explored symbolically: an unbounded configuration.
    pub fn supports(cfg: &Config) -> bool {
        !cfg.is_bounded()
    }

    pub fn new(model: &'m BullySystem, opts: Options) -> Engine<'m> {
        assert!(
            Self::supports(&model.cfg),
            "the symbolic engine explores unbounded configurations only ({})",
            model.cfg
        );
        let n = model.cfg.processes;
        let mut slot = vec![vec![usize::MAX; n]; n];
        let mut ends = Vec::new();
        // One level per pair of processes, holding both of its channels, the pairs of the
        // highest processes on top. A request and its reply travel on the two channels of a
        // pair, so their contents are strongly correlated: one level for both keeps the
        // diagrams narrow and half as deep as a level per channel, and a step rebuilds
        // fewer nodes.
        let mut pairs: Vec<(usize, usize)> = (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .collect();
        pairs.sort_by_key(|&(a, b)| (Reverse(b), Reverse(a)));
        for (a, b) in pairs {
            slot[a][b] = ends.len();
            slot[b][a] = ends.len();
            ends.push((a, b));
        }
        Engine {
            model,
            opts,
            dicts: (0..ends.len()).map(|_| Dict::new()).collect(),
            level_maps: LevelMaps::new(ends.len()),
            mdd: Mdd::new(ends.len()),
            slot,
            ends,
            index: HashMap::default(),
            entries: Vec::new(),
            edges: HashSet::default(),
            worker: 0,
            peers: parallel::Peers::default(),
            peak_nodes: 0,
            shards: Vec::new(),
        }
    }

    /// The engines that hold the combinations: the workers after a parallel search, else
    /// this one.
    fn parts(&self) -> Vec<&Engine<'m>> {
        if self.shards.is_empty() {
            vec![self]
        } else {
            self.shards.iter().collect()
        }
    }

    fn parts_mut(&mut self) -> Vec<&mut Engine<'m>> {
        if self.shards.is_empty() {
            vec![self]
        } else {
            self.shards.iter_mut().collect()
        }
    }

    /// `net`, level by level (pair by pair).
    fn split(&mut self, net: &Network) -> Vec<Value> {
        let mut parts: Vec<Network> = vec![Network::default(); self.ends.len()];
        for e in net.iter() {
            parts[self.slot[e.src as usize][e.dst as usize]].push_raw(*e);
        }
        parts
            .into_iter()
            .enumerate()
            .map(|(l, part)| self.dicts[l].intern(part))
            .collect()
    }

    /// The network of a vector of level contents. Each level's content is a canonical
    /// network (a part of one), so sorting the messages of all of them by channel, stably,
    /// gives the network's canonical order.
    fn join(&self, vector: &[Value]) -> Network {
        let mut envs: Vec<crate::system::Env> = vector
            .iter()
            .enumerate()
            .flat_map(|(l, &v)| self.dicts[l].values[v as usize].iter().copied())
            .collect();
        envs.sort_by_key(|e| (e.src, e.dst));
        let mut net = Network::default();
        for e in envs {
            net.push_raw(e);
        }
        net
    }

    fn entry(&mut self, state: SysState) -> u32 {
        if let Some(&k) = self.index.get(&state) {
            return k;
        }
        let k = self.entries.len() as u32;
        self.index.insert(state.clone(), k);
        self.entries.push(Entry {
            state,
            reached: Mdd::EMPTY,
            arrivals: Vec::new(),
            preds: Vec::new(),
        });
        k
    }

    /// Explores every reachable state, checking the `always` and `sometimes` properties.
    ///
    /// The order is chaotic, not breadth first: of the combinations that have networks not
    /// expanded yet, the least advanced ([`progress`]) is expanded next, with all of them at
    /// once, and among equals the lowest-numbered (combinations are numbered as they are found,
    /// so this follows the graph's rough flow from the start). Most combinations are expanded a
    /// few times instead of once per breadth-first layer they have news in (N=4 with a crash
    /// and a recovery: 21.6 k expansions, against 100.8 k entry-layers breadth first, and 11
    /// times faster). Progress first matters at N=5: there a combination gets news from many
    /// others found after it, and by number alone the same few thousand combinations would be
    /// expanded again and again, one predecessor's news at a time.
    ///
    /// The search keeps no record of how it got anywhere: a path to what it found is the work
    /// of a second, recording search that stops once it has seen it ([`Engine::paths_to`]).
    pub fn run(&mut self) -> Outcome {
        let t0 = Instant::now();
        let properties = self.model.properties();
        let mut found: Found = Vec::new();
        let (stopped, peak) = if self.opts.threads > 1 && self.opts.max_expansions.is_none() {
            parallel::explore(self, t0, &properties, &mut found)
        } else {
            self.explore(t0, |engine, k, fresh, _| {
                engine.check_properties(&properties, &mut found, k, fresh)
            })
        };
        let states = self
            .parts()
            .iter()
            .map(|part| {
                let mut counter = part.mdd.counter();
                part.entries
                    .iter()
                    .map(|e| counter.count(e.reached))
                    .sum::<u128>()
            })
            .sum();
        let seconds = t0.elapsed().as_secs_f64();
        let peak_nodes = if self.shards.is_empty() {
            self.peak_nodes.max(self.mdd.node_count())
        } else {
            self.peak_nodes
        };
        // What the reached sets need, without the search's garbage.
        let mut last = 0;
        for part in self.parts_mut() {
            let mut roots: Vec<&mut Node> =
                part.entries.iter_mut().map(|e| &mut e.reached).collect();
            part.mdd.collect(&mut roots);
            last += part.mdd.node_count();
        }
        let nodes = DiagramNodes {
            peak: peak_nodes,
            last,
        };
        // Counterexamples always get a path; examples only if asked (it may take as long as
        // the search again). An example without one is reported as reached, path unknown.
        let wanted = |name: &str| {
            self.opts.example_paths
                || properties
                    .iter()
                    .any(|p| p.name == name && p.expectation != Expectation::Sometimes)
        };
        let targets: Vec<SysState> = found
            .iter()
            .filter(|(name, _)| wanted(name))
            .map(|(_, s)| s.clone())
            .collect();
        let mut paths = self.paths_to(&targets).into_iter();
        let found: Vec<(&'static str, Witness)> = found
            .into_iter()
            .map(|(name, state)| {
                let witness = if wanted(name) {
                    paths.next().expect("one path per target")
                } else {
                    Witness::NoPath {
                        why: "no path was asked for (check --json asks for one)".to_string(),
                        state,
                    }
                };
                (name, witness)
            })
            .collect();
        Outcome {
            states,
            seconds,
            nodes,
            peak_memory: peak.max(memory::resident_bytes().unwrap_or(0)),
            stopped,
            discoveries: found.into_iter().collect(),
        }
    }

    /// Checks `properties` on the networks `fresh` of entry `k`, adding what it finds to
    /// `found` (a property's first example or counterexample only). Breaks off at a
    /// counterexample if the search stops at violations.
    fn check_properties(
        &mut self,
        properties: &[stateright::Property<BullySystem>],
        found: &mut Found,
        k: u32,
        fresh: Node,
    ) -> ControlFlow<Option<crate::engine::Stop>> {
        for p in properties {
            if found.iter().any(|(name, _)| *name == p.name) {
                continue;
            }
            let Some(nets) = self.satisfying(p, k, fresh) else {
                continue;
            };
            if p.expectation == Expectation::Eventually {
                continue;
            }
            let vector = self.mdd.pick(nets).expect("non-empty");
            let mut state = self.entries[k as usize].state.clone();
            state.network = self.join(&vector);
            found.push((p.name, state));
            if p.expectation == Expectation::Always && self.opts.stop_at_violation {
                return ControlFlow::Break(Some(crate::engine::Stop::Violation {
                    property: p.name.to_string(),
                }));
            }
        }
        ControlFlow::Continue(())
    }

    /// The search itself: from the initial states until nothing is left to expand, `visit`
    /// breaks off (with the reason to report, if any), the budget is reached or
    /// [`Options::max_expansions`] are done. `visit` sees
    /// every combination's networks as they first arrive, with their tick (see
    /// [`Entry::arrivals`]; 0: the initial states). Returns why the search stopped early (if it
    /// did) and the peak resident size.
    fn explore(
        &mut self,
        t0: Instant,
        mut visit: impl FnMut(&mut Self, u32, Node, u32) -> ControlFlow<Option<crate::engine::Stop>>,
    ) -> (Option<crate::engine::Stop>, u64) {
        let mut watch = Watch::new(t0);
        let mut work = Work::default();
        // What the last expansion (number `expansions`) reached.
        let mut arrived: Vec<(u32, Node)> = Vec::new();
        for s in self.model.init_states() {
            let vector = self.split(&s.network);
            let nets = self.mdd.singleton(&vector);
            let mut state = s;
            state.network = Network::default();
            let k = self.entry(state);
            arrived.push((k, nets));
        }
        let mut expansions = 0u32;
        // Arrivals are stamped with `tick`: 0 for the initial states, then one per expansion
        // and one more per layer of its own combination's networks (see `Engine::expand`), so
        // every network arrived strictly after some predecessor ([`Entry::arrivals`]).
        let mut tick = 0u32;
        let mut gc_at = GC_FLOOR;
        loop {
            for (k, nets) in std::mem::take(&mut arrived) {
                if let ControlFlow::Break(stop) = self.arrive(&mut work, k, nets, tick, &mut visit)
                {
                    return (stop, watch.peak);
                }
            }
            if self.opts.max_expansions.is_some_and(|m| expansions >= m) {
                return (None, watch.peak);
            }
            if self.mdd.node_count() > gc_at {
                self.collect_garbage(&mut work.pending);
                gc_at = (2 * self.mdd.node_count()).max(GC_FLOOR);
            }
            // The next expansion.
            let Some(Reverse((_, k))) = work.queue.pop() else {
                return (None, watch.peak);
            };
            let nets = std::mem::replace(&mut work.pending[k as usize], Mdd::EMPTY);
            expansions += 1;
            // Each layer counts as an expansion, for `max_expansions`.
            let max_layers = self.opts.max_expansions.map_or(MAX_LAYERS, |m| {
                (m.saturating_sub(expansions) as usize).min(MAX_LAYERS)
            });
            let (layers, closed, others) = self.expand(k, nets, max_layers);
            expansions += layers.len() as u32;
            let settled = self.settle_layers(&mut work, k, layers, closed, &mut tick, &mut visit);
            if let ControlFlow::Break(stop) = settled {
                return (stop, watch.peak);
            }
            tick += 1;
            arrived = others
                .into_iter()
                .map(|(next, a, image)| {
                    let to = self.entry(next);
                    self.record_edge(k, to, a);
                    (to, image)
                })
                .collect();
            let what = || {
                format!(
                    "{expansions} expansions, {} process-state combinations, {} diagram nodes",
                    self.entries.len(),
                    self.mdd.node_count()
                )
            };
            if let Some(stop) = watch.look(&self.opts, what) {
                return (Some(stop), watch.peak);
            }
        }
    }

    /// The new networks of `k` itself that [`Engine::expand`] found: reached and shown, but
    /// not pending, since `expand` has taken every step from them already (but the last
    /// layer's own steps when it stopped short of the fixpoint). Each layer is a tick.
    fn settle_layers(
        &mut self,
        work: &mut Work,
        k: u32,
        layers: Vec<Node>,
        closed: bool,
        tick: &mut u32,
        visit: &mut impl FnMut(&mut Self, u32, Node, u32) -> ControlFlow<Option<crate::engine::Stop>>,
    ) -> ControlFlow<Option<crate::engine::Stop>> {
        let last = layers.len();
        for (i, fresh) in layers.into_iter().enumerate() {
            *tick += 1;
            let reached = self.entries[k as usize].reached;
            self.entries[k as usize].reached = self.mdd.union(reached, fresh);
            if !closed && i + 1 == last {
                work.pending[k as usize] = fresh;
                work.queue
                    .push(Reverse((progress(&self.entries[k as usize].state), k)));
            }
            visit(self, k, fresh, *tick)?;
        }
        ControlFlow::Continue(())
    }

    /// Networks `nets` arrived at entry `k` at `tick`: what is new of them is reached, pending
    /// and shown to `visit`.
    fn arrive(
        &mut self,
        work: &mut Work,
        k: u32,
        nets: Node,
        tick: u32,
        visit: &mut impl FnMut(&mut Self, u32, Node, u32) -> ControlFlow<Option<crate::engine::Stop>>,
    ) -> ControlFlow<Option<crate::engine::Stop>> {
        work.pending.resize(self.entries.len(), Mdd::EMPTY);
        let reached = self.entries[k as usize].reached;
        let fresh = self.mdd.diff(nets, reached);
        if fresh == Mdd::EMPTY {
            return ControlFlow::Continue(());
        }
        self.entries[k as usize].reached = self.mdd.union(reached, fresh);
        let was = work.pending[k as usize];
        work.pending[k as usize] = self.mdd.union(was, fresh);
        if was == Mdd::EMPTY {
            work.queue
                .push(Reverse((progress(&self.entries[k as usize].state), k)));
        }
        visit(self, k, fresh, tick)
    }

    /// Frees the nodes that neither `pending` nor any entry holds.
    fn collect_garbage(&mut self, pending: &mut [Node]) {
        self.peak_nodes = self.peak_nodes.max(self.mdd.node_count());
        let mut roots: Vec<&mut Node> = pending.iter_mut().collect();
        for e in self.entries.iter_mut() {
            roots.push(&mut e.reached);
            roots.extend(e.arrivals.iter_mut().map(|(_, n)| n));
        }
        self.mdd.collect(&mut roots);
    }

    /// A path to each of `targets` (reachable states), as readable steps ending with it: a
    /// new search in the same order, which records when each combination's networks arrived
    /// ([`Entry::arrivals`]) and stops once every target has arrived, traced back from there.
    /// Where that search cannot finish within the budget, the steps say so.
    fn paths_to(&self, targets: &[SysState]) -> Vec<Witness> {
        if targets.is_empty() {
            return Vec::new();
        }
        let mut recorder = Engine::new(
            self.model,
            Options {
                stop_at_violation: false,
                progress_every: None,
                max_expansions: None,
                threads: 1,
                ..self.opts.clone()
            },
        );
        // Where each target arrived: entry, arrival, its network's values (not a node: the
        // search collects garbage and renumbers nodes until it ends).
        let mut spots: Vec<Option<(u32, u32, Vec<Value>)>> = vec![None; targets.len()];
        let mut missing = targets.len();
        let wanted: Vec<(SysState, Network)> = targets
            .iter()
            .map(|t| {
                let mut free = t.clone();
                free.network = Network::default();
                (free, t.network.clone())
            })
            .collect();
        let (stopped, _) = recorder.explore(Instant::now(), |engine, k, fresh, n| {
            engine.entries[k as usize].arrivals.push((n, fresh));
            for (i, (free, net)) in wanted.iter().enumerate() {
                if spots[i].is_some() || engine.entries[k as usize].state != *free {
                    continue;
                }
                let vector = engine.split(net);
                if engine.mdd.contains(fresh, &vector) {
                    spots[i] = Some((k, n, vector));
                    missing -= 1;
                }
            }
            if missing == 0 {
                return ControlFlow::Break(None);
            }
            ControlFlow::Continue(())
        });
        spots
            .into_iter()
            .zip(targets)
            .map(|(spot, target)| match spot {
                Some((entry, arrival, vector)) => {
                    Witness::Path(recorder.trace(entry, arrival, vector))
                }
                None => Witness::NoPath {
                    why: match stopped {
                        Some(crate::engine::Stop::MemoryBudget { .. }) => {
                            "the memory budget stopped the search for one"
                        }
                        _ => "the search for one did not reach this state",
                    }
                    .to_string(),
                    state: target.clone(),
                },
            })
            .collect()
    }

    /// The networks of `nets` (at entry `k`) where property `p`'s condition holds, if any.
    fn satisfying(
        &mut self,
        p: &stateright::Property<BullySystem>,
        k: u32,
        nets: Node,
    ) -> Option<Node> {
        let state = &self.entries[k as usize].state;
        let holds_somewhere = if p.name == properties::BROADCAST_CUT {
            let channels: Vec<(usize, usize)> = properties::broadcast_cut_channels(state).collect();
            let mut found = Mdd::EMPTY;
            for (src, dst) in channels {
                let level = self.slot[src][dst];
                let mut maps = self.no_maps();
                let dict = &self.dicts[level];
                let mut empty = |v: Value| {
                    let content = &dict.values[v as usize];
                    (!content.any_between(src, dst)).then_some(v)
                };
                maps[level] = Some(&mut empty);
                let these = self.mdd.transform(nets, &mut maps);
                found = self.mdd.union(found, these);
            }
            return match p.expectation {
                Expectation::Sometimes => (found != Mdd::EMPTY).then_some(found),
                _ => {
                    let fails = self.mdd.diff(nets, found);
                    (fails != Mdd::EMPTY).then_some(fails)
                }
            };
        } else {
            (p.condition)(self.model, state)
        };
        // Every other property reads the processes and ghost state only.
        let wanted = match p.expectation {
            Expectation::Always => !holds_somewhere,
            _ => holds_somewhere,
        };
        wanted.then_some(nets)
    }

    fn no_maps<'a>(&self) -> Vec<Option<LevelFn<'a>>> {
        (0..self.ends.len()).map(|_| None).collect()
    }

    /// The steps from the networks `nets` of a combination of processes `state`, each with
    /// the channels it needs empty (a timer's; none for a message step, whose guard is its
    /// channel's content).
    fn steps_of(&self, state: &SysState, nets: Node) -> Vec<(Action, Quiet)> {
        let values = self.mdd.values_by_level(nets);
        // Steps a message enables, asked of each channel content present.
        let mut actions = Vec::new();
        let mut enabled: BTreeSet<Action> = BTreeSet::new();
        for (level, vs) in values.iter().enumerate() {
            for &v in vs {
                actions.clear();
                self.model.message_actions(
                    state,
                    &self.dicts[level].values[v as usize],
                    &mut actions,
                );
                enabled.extend(actions.iter().copied());
            }
        }
        let n = self.model.cfg.processes;
        let mut steps: Vec<(Action, Quiet)> =
            enabled.into_iter().map(|a| (a, Quiet::none(n))).collect();
        self.model
            .local_actions(state, |a, quiet| steps.push((a, quiet)));
        steps
    }

    /// Step `a` from `state`, but for the network: the processes after it (network empty)
    /// and its network effects. None where the model sees no step.
    fn stepped(&self, state: &SysState, a: Action) -> Option<Stepped> {
        let mut ops = NetOps::new();
        let mut next = self.model.step(state, a, &mut ops)?;
        next.network = Network::default();
        if self.opts.flaw == Flaw::KeepMessagesToCrashed {
            ops.retain(|op| !matches!(op, NetOp::ClearTo(_)));
        }
        Some(Stepped { next, ops })
    }

    /// [`Engine::stepped`], once per step of an expansion (`effects` remembers them).
    fn effect<'e>(
        &self,
        effects: &'e mut HashMap<Action, Option<Stepped>, ahash::RandomState>,
        state: &SysState,
        a: Action,
    ) -> Option<&'e Stepped> {
        effects
            .entry(a)
            .or_insert_with(|| self.stepped(state, a))
            .as_ref()
    }

    /// Every step from the networks `nets` of entry `k`.
    ///
    /// The steps that keep the processes as they are first, to a fixpoint: as in saturation
    /// (Ciardo et al.), a combination is closed under its own local steps before anything
    /// leaves it. Without this, a chain of such steps (a crash cutting a pile of messages short,
    /// one at a time) came back to the same combination once per step, and each time took
    /// every other step again from a large set of networks. Returns the layers of new networks
    /// of `k` itself (layer i: i such steps from `nets`; at most `max_layers`), whether they
    /// reached the fixpoint (if not, the last layer's own steps are still to be taken), and,
    /// for every other step taken from `nets` and all the layers, the processes it reaches,
    /// the step and its networks.
    fn expand(
        &mut self,
        k: u32,
        nets: Node,
        max_layers: usize,
    ) -> (Vec<Node>, bool, Vec<(SysState, Action, Node)>) {
        let state = self.entries[k as usize].state.clone();
        let reached = self.entries[k as usize].reached;
        // Each step's effect on the processes, computed once per expansion.
        let mut effects: HashMap<Action, Option<Stepped>, ahash::RandomState> = HashMap::default();
        // Whether a step leaves the processes (and ghost state) as they are: it changes the
        // network only (a loss, a message cut short, one the receiver ignores now).
        let keeps = |stepped: &&Stepped| stepped.next == state;
        // The steps from `nets` (also those from all the layers, if there are none).
        let first = self.steps_of(&state, nets);
        let mut layers = Vec::new();
        let mut covered = nets;
        let mut frontier = nets;
        let mut closed = false;
        while layers.len() < max_layers {
            let mut grown = Mdd::EMPTY;
            let later;
            let steps = if layers.is_empty() {
                &first
            } else {
                later = self.steps_of(&state, frontier);
                &later
            };
            for (a, quiet) in steps {
                let Some(stepped) = self.effect(&mut effects, &state, *a).filter(keeps) else {
                    continue;
                };
                let guard = Guard {
                    quiet: Some(quiet),
                    level: self.opts.flaw != Flaw::LocalStepWithoutGuard,
                };
                let Some(image) = self.step_set(&state, frontier, *a, stepped, guard, None) else {
                    continue;
                };
                self.record_edge(k, k, *a);
                grown = self.mdd.union(grown, image);
            }
            let new = self.mdd.diff(grown, reached);
            let fresh = self.mdd.diff(new, covered);
            if fresh == Mdd::EMPTY {
                closed = true;
                break;
            }
            covered = self.mdd.union(covered, fresh);
            layers.push(fresh);
            frontier = fresh;
        }
        let steps = if layers.is_empty() {
            first
        } else {
            self.steps_of(&state, covered)
        };
        let mut out = Vec::new();
        for (a, quiet) in &steps {
            let Some(stepped) = self.effect(&mut effects, &state, *a) else {
                continue;
            };
            if keeps(&stepped) {
                continue;
            }
            let guard = Guard {
                quiet: Some(quiet),
                level: true,
            };
            let Some(image) = self.step_set(&state, covered, *a, stepped, guard, None) else {
                continue;
            };
            out.push((stepped.next.clone(), *a, image));
        }
        (layers, closed, out)
    }

    /// Records the step `a` from entry `from` to entry `to` (for liveness and paths).
    fn record_edge(&mut self, from: u32, to: u32, a: Action) {
        if self.edges.insert((from, a)) {
            let from = self.global(from);
            self.entries[to as usize].preds.push((from, a));
        }
    }

    /// Entry `k`'s number among every worker's ([`Engine::worker`]).
    fn global(&self, k: u32) -> u32 {
        debug_assert!(
            k < 1 << WORKER_SHIFT,
            "too many combinations for one worker"
        );
        self.worker << WORKER_SHIFT | k
    }

    /// The level of the channel a message step depends on, if `a` is one.
    fn level_of(&self, a: &Action) -> Option<usize> {
        match a {
            Action::Deliver(e) | Action::Drop(e) | Action::CutShort(e) => {
                Some(self.slot[e.src as usize][e.dst as usize])
            }
            _ => None,
        }
    }

    /// Step `a` from `state` (its effects: `stepped`) applied to the set `nets`: the networks
    /// after it (forward), or with `back = Some(target)`, the networks of `nets` that the
    /// step takes into `target`. None if that is empty. A message step needs its channel to
    /// hold a content that enables it.
    fn step_set(
        &mut self,
        state: &SysState,
        nets: Node,
        a: Action,
        stepped: &Stepped,
        guard: Guard<'_>,
        back: Option<Node>,
    ) -> Option<Node> {
        let step = LevelStep {
            model: self.model,
            crashed: state.crashed(),
            procs: &stepped.next.procs,
            action: a,
            ops: &stepped.ops,
            quiet: guard.quiet.filter(|_| self.opts.flaw != Flaw::IgnoreQuiet),
            guard_level: guard.level.then(|| self.level_of(&a)).flatten(),
        };
        let result =
            self.level_maps
                .apply(&mut self.mdd, step, &self.ends, &mut self.dicts, nets, back);
        (result != Mdd::EMPTY).then_some(result)
    }

    /// The networks of `domain` (at entry `from`) that step `a` takes into `target`.
    fn step_back(&mut self, from: u32, a: Action, domain: Node, target: Node) -> Option<Node> {
        let state = self.entries[from as usize].state.clone();
        // A timer's guard is the one `local_actions` gives it; a message step has none.
        let mut quiet = Quiet::none(state.procs.len());
        if self.level_of(&a).is_none() {
            self.model.local_actions(&state, |b, q| {
                if b == a {
                    quiet = q;
                }
            });
        }
        let guard = Guard {
            quiet: Some(&quiet),
            level: true,
        };
        let stepped = self.stepped(&state, a)?;
        self.step_set(&state, domain, a, &stepped, guard, Some(target))
    }

    /// A path to the state of entry `entry` with network `vector`, which arrived at tick
    /// `arrival` (see [`Entry::arrivals`]); replayed through the explicit model as a check.
    ///
    /// Backwards by arrivals: a state that arrived at tick `n` is a successor of a
    /// state that arrived before `n`, so each step back lands on a strictly earlier arrival and
    /// the walk ends at the start. Each step takes the earliest such predecessor, which keeps
    /// the path short, though not always shortest (the search is not breadth first).
    fn trace(&mut self, entry: u32, arrival: u32, vector: Vec<Value>) -> Path {
        let (mut at, mut arrival, mut vector) = (entry, arrival, vector);
        let mut actions = Vec::new();
        let mut end = self.entries[at as usize].state.clone();
        end.network = self.join(&vector);
        while arrival > 0 {
            let target = self.mdd.singleton(&vector);
            let preds = self.entries[at as usize].preds.clone();
            // (arrival, from, action, the predecessors there)
            let mut best: Option<(u32, u32, Action, Node)> = None;
            for (from, a) in preds {
                let arrivals = self.entries[from as usize].arrivals.clone();
                for (n, nets) in arrivals {
                    if n >= arrival || best.is_some_and(|b| n >= b.0) {
                        break;
                    }
                    if let Some(back) = self.step_back(from, a, nets, target) {
                        best = Some((n, from, a, back));
                        break;
                    }
                }
            }
            let (n, from, a, back) =
                best.expect("a state that arrived has a predecessor that arrived before");
            vector = self.mdd.pick(back).expect("non-empty");
            actions.push(a);
            (at, arrival) = (from, n);
        }
        actions.reverse();
        let mut init = self.entries[at as usize].state.clone();
        init.network = self.join(&vector);
        let path = Path { init, actions };
        // Replay through the explicit model: the same path, step by step (a deliberately
        // broken engine's paths need not replay).
        if cfg!(debug_assertions) && self.opts.flaw == Flaw::None {
            assert!(self.model.init_states().contains(&path.init));
            assert_eq!(
                path.last(self.model),
                end,
                "the replayed path ends where the search found it"
            );
        }
        path
    }

    /// `AG EF settled` over fault-free steps: every reachable state can still reach a settled
    /// state without faults (see [`crate::liveness`]). Run after a complete [`Engine::run`].
    pub fn liveness(&mut self) -> Liveness {
        let model = self.model;
        self.can_reach(|s| properties::settled(model, s))
    }

    /// `AG EF goal` over fault-free steps, for a `goal` that reads the processes and ghost
    /// state only: which reachable states can no longer reach it (the tests also ask for goals
    /// that fail, to see this find them).
    pub fn can_reach(&mut self, goal: impl Fn(&SysState) -> bool + Sync) -> Liveness {
        let t0 = Instant::now();
        let good = if self.shards.is_empty() {
            self.can_reach_sets(&goal, t0).map(|good| vec![good])
        } else {
            parallel::can_reach_sets(&mut self.shards, &self.opts, &goal, t0)
        };
        let good = match good {
            Ok(good) => good,
            Err(resident) => {
                return Liveness {
                    trapped_states: 0,
                    settled_states: 0,
                    counterexample: None,
                    elapsed: t0.elapsed(),
                    stopped_at_memory: Some(resident),
                }
            }
        };
        let mut trapped_states = 0;
        let mut settled_states = 0;
        // The trapped state to show: one of the least advanced combination to hold any (the
        // least advanced tend to have the shortest paths).
        let mut first: Option<(u64, SysState)> = None;
        for (part, good) in self.parts_mut().into_iter().zip(good) {
            let trapped: Vec<Node> = good
                .into_iter()
                .enumerate()
                .map(|(k, good_here)| part.mdd.diff(part.entries[k].reached, good_here))
                .collect();
            let mut counter = part.mdd.counter();
            for (e, trapped) in part.entries.iter().zip(trapped) {
                if goal(&e.state) {
                    settled_states += counter.count(e.reached);
                }
                if trapped == Mdd::EMPTY {
                    continue;
                }
                trapped_states += counter.count(trapped);
                let rank = progress(&e.state);
                if first.as_ref().is_none_or(|(r, _)| rank < *r) {
                    let vector = part.mdd.pick(trapped).expect("non-empty");
                    let mut state = e.state.clone();
                    state.network = part.join(&vector);
                    first = Some((rank, state));
                }
            }
        }
        let counterexample = first.map(|(_, state)| self.paths_to(&[state]).remove(0));
        Liveness {
            trapped_states,
            settled_states,
            counterexample,
            elapsed: t0.elapsed(),
            stopped_at_memory: None,
        }
    }

    /// Each entry's networks from which fault-free steps can reach `goal` (module
    /// `backward`). `Err(resident size)` if the memory budget stopped it.
    fn can_reach_sets(
        &mut self,
        goal: &impl Fn(&SysState) -> bool,
        t0: Instant,
    ) -> Result<Vec<Node>, u64> {
        let mut watch = Watch::new(t0);
        let mut back = Backward::new(self, goal);
        while let Some((to, news)) = back.next() {
            for (from, a) in self.entries[to as usize].preds.clone() {
                if !BullySystem::is_fault(&a) {
                    back.take_back(self, from, a, news);
                }
            }
            let what = || format!("liveness: {} combinations to go back from", back.waiting());
            if let Some(crate::engine::Stop::MemoryBudget { resident, .. }) =
                watch.look(&self.opts, what)
            {
                return Err(resident);
            }
        }
        Ok(back.good)
    }

    /// Every reachable state, explicitly (for tests on small configurations).
    pub fn states(&self) -> Vec<SysState> {
        let mut out = Vec::new();
        for part in self.parts() {
            for e in &part.entries {
                for vector in part.mdd.vectors(e.reached) {
                    let mut s = e.state.clone();
                    s.network = part.join(&vector);
                    out.push(s);
                }
            }
        }
        out
    }
}

/// A step's effects but for the network's: the processes after it, and its network ops.
struct Stepped {
    /// The processes and ghost state after it (network empty).
    next: SysState,
    ops: NetOps,
}

/// What is left to expand: each combination's networks not expanded yet, and the
/// combinations that have some, least advanced first ([`progress`]).
#[derive(Default)]
struct Work {
    pending: Vec<Node>,
    queue: BinaryHeap<Reverse<(u64, u32)>>,
}

/// What a step needs of the networks it is applied to.
#[derive(Clone, Copy)]
struct Guard<'a> {
    /// The channels that must be empty (a timer's), if any.
    quiet: Option<&'a Quiet>,
    /// Whether a message step's channel must hold a content that enables it (only a
    /// deliberately broken engine says no: [`Flaw::LocalStepWithoutGuard`]).
    level: bool,
}

/// How far the run has come, by what never goes back: the faults spent, the promises (each
/// process's only grows, crashes included), the epochs accepted (ghost) and the members known.
/// No step lowers it, so news flows only to combinations of equal or greater progress, and
/// the search expands the least advanced first: a combination then gets most of its networks
/// before it is expanded, instead of once per predecessor that reaches it.
fn progress(s: &SysState) -> u64 {
    let faults = u64::from(s.ghost.crashes) + u64::from(s.ghost.recoveries);
    let promised: u64 = s.procs.iter().map(|p| u64::from(p.promised.0)).sum();
    let accepted: u64 = s.procs.iter().map(|p| u64::from(p.accepted.0)).sum();
    let members: u64 = s.procs.iter().map(|p| p.members.len() as u64).sum();
    faults << 56 | promised << 32 | accepted << 8 | members
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The liveness pass, like the search, stops at the memory budget, without a verdict, on
    /// one thread and on several.
    #[test]
    fn the_liveness_pass_stops_at_the_memory_budget() {
        let model = Config::new(3).into_model();
        for threads in [1, 2] {
            let mut engine = Engine::new(
                &model,
                Options {
                    example_paths: false,
                    threads,
                    ..Options::default()
                },
            );
            let outcome = engine.run();
            assert!(outcome.stopped.is_none());
            assert_eq!(engine.shards.len(), if threads > 1 { threads } else { 0 });
            let live = engine.liveness();
            assert!(live.stopped_at_memory.is_none() && live.settled_states > 0);
            // A budget this process is already over.
            engine.opts.budget = Some(Budget { bytes: 1 << 20 });
            let stopped = engine.liveness();
            let resident = stopped.stopped_at_memory.expect("stopped by the budget");
            assert!(resident >= 1 << 20);
            assert_eq!(stopped.settled_states + stopped.trapped_states, 0);
            assert!(stopped.counterexample.is_none());
        }
    }
}
