//! The explicit state graph, explored once for every question the checker asks.
//!
//! One breadth-first pass over the model (level by level, each level shared among the worker
//! threads) gives every state an ID, and for each state evaluates the `always` and `sometimes`
//! properties, records its BFS parent (for counterexamples) and, when liveness is asked for,
//! its fault-free edges, reversed, for the backward search in [`crate::liveness`]. A separate
//! safety search and liveness pass would explore the same graph twice.
//!
//! IDs are handed out level by level, so the smallest ID with some finding is on the
//! shallowest level: the counterexamples and examples are shortest paths, as stateright's own
//! breadth-first search gives.

use crate::engine::Stop;
use crate::memory::{self, Budget};
use crate::properties::settled;
use crate::system::{BullySystem, SysAction, SysState};
use crate::trace::Path;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use stateright::{Expectation, Model, Property};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What one pass records and when it stops.
#[derive(Clone, Debug)]
pub struct PassOptions {
    pub threads: usize,
    /// Stop, with no verdict, before the process's resident size reaches this.
    pub budget: Option<Budget>,
    /// Keep the fault-free edges (for the liveness check).
    pub edges: bool,
    /// Stop at the first violation of an `always` property.
    pub stop_at_violation: bool,
    /// Print progress on stderr this often.
    pub progress_every: Option<Duration>,
}

/// The explored graph.
pub struct Graph {
    pub(crate) hasher: ahash::RandomState,
    pub(crate) index: DashMap<u64, u32, ahash::RandomState>,
    /// Each state's BFS parent (an initial state is its own parent).
    pub(crate) parent: Vec<u32>,
    /// Whether the liveness goal holds in the state (or it lies past the bound, see `cut`).
    pub(crate) settled: Vec<bool>,
    /// Fault-free edges, reversed: (to, from). Empty unless asked for.
    pub(crate) back_edges: Vec<(u32, u32)>,
    /// States past the bound of a bounded run: given an ID, not explored.
    pub cut: usize,
    /// Successors generated within the bound (stateright's "total").
    pub total: usize,
    /// BFS levels explored.
    pub depth: usize,
    /// Per property of `Model::properties`, the first state where an `always` failed or a
    /// `sometimes` held.
    pub found: Vec<Option<u32>>,
    pub stopped: Option<Stop>,
    pub peak_memory: u64,
    pub elapsed: Duration,
}

impl Graph {
    /// States within the bound (stateright's "unique states").
    pub fn unique_states(&self) -> usize {
        self.parent.len() - self.cut
    }
    pub fn states(&self) -> usize {
        self.parent.len()
    }
    pub fn complete(&self) -> bool {
        self.stopped.is_none()
    }
}

fn fingerprint(hasher: &ahash::RandomState, s: &SysState) -> u64 {
    hasher.hash_one(s)
}

/// The property findings that a state adds: (property index, state ID).
fn findings(
    model: &BullySystem,
    properties: &[Property<BullySystem>],
    seen: &[AtomicBool],
    id: u32,
    s: &SysState,
    out: &mut Vec<(usize, u32)>,
) {
    for (i, p) in properties.iter().enumerate() {
        let hit = match p.expectation {
            // An example is enough; a counterexample is recorded in every state it shows up
            // in, so the shallowest one wins whichever worker sees it first.
            Expectation::Sometimes if seen[i].load(Ordering::Relaxed) => continue,
            Expectation::Sometimes => (p.condition)(model, s),
            Expectation::Always => !(p.condition)(model, s),
            Expectation::Eventually => unimplemented!("liveness is checked by `liveness`"),
        };
        if hit {
            seen[i].store(true, Ordering::Relaxed);
            out.push((i, id));
        }
    }
}

/// What one worker found while expanding its share of a level.
#[derive(Default)]
struct Expanded {
    frontier: Vec<(u32, SysState)>,
    /// New states: (id, parent, settled or cut at the bound).
    new: Vec<(u32, u32, bool)>,
    back_edges: Vec<(u32, u32)>,
    findings: Vec<(usize, u32)>,
    generated: usize,
    cut: usize,
}

struct Shared<'a> {
    model: &'a BullySystem,
    properties: &'a [Property<BullySystem>],
    seen: &'a [AtomicBool],
    hasher: &'a ahash::RandomState,
    index: &'a DashMap<u64, u32, ahash::RandomState>,
    next_id: &'a AtomicU32,
    edges: bool,
}

/// Expands `states`: every successor gets an ID the first time any worker sees it.
fn expand(sh: &Shared<'_>, states: Vec<(u32, SysState)>) -> Expanded {
    let model = sh.model;
    let mut out = Expanded::default();
    let mut actions = Vec::new();
    for (from, s) in states {
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            let fault = BullySystem::is_fault(&a);
            let Some(next) = model.next_state(&s, a) else {
                continue;
            };
            let inside = model.within_boundary(&next);
            out.generated += inside as usize;
            let to = match sh.index.entry(fingerprint(sh.hasher, &next)) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    let id = sh.next_id.fetch_add(1, Ordering::Relaxed);
                    e.insert(id);
                    // A state beyond the bound of a bounded run is not explored; it counts as
                    // one that may still settle, so every reported trap is a real one.
                    if inside {
                        findings(model, sh.properties, sh.seen, id, &next, &mut out.findings);
                        out.new.push((id, from, settled(model, &next)));
                        out.frontier.push((id, next));
                    } else {
                        out.new.push((id, from, true));
                        out.cut += 1;
                    }
                    id
                }
            };
            if sh.edges && !fault {
                out.back_edges.push((to, from));
            }
        }
    }
    out
}

/// States per worker per slice of a level.
const SLICE: usize = 4096;

/// Explores `model` breadth first (see the module comment).
pub fn explore(model: &BullySystem, opts: &PassOptions) -> Graph {
    let start = Instant::now();
    let threads = opts.threads.max(1);
    let properties = model.properties();
    let seen: Vec<AtomicBool> = properties.iter().map(|_| AtomicBool::new(false)).collect();
    let mut g = Graph::empty(properties.len());
    let next_id = AtomicU32::new(0);
    let mut frontier = initial_frontier(model, &mut g, &properties, &seen, &next_id);
    let mut last_progress = Instant::now();
    g.depth = usize::from(!frontier.is_empty());
    'levels: while !frontier.is_empty() {
        // Levels can be large: expand them in slices, so memory and findings are watched as
        // the level grows.
        let mut next_frontier = Vec::new();
        while !frontier.is_empty() {
            if let Some(stop) = should_stop(&mut g, &properties, opts) {
                g.stopped = Some(stop);
                break 'levels;
            }
            let take = frontier.len().min(SLICE * threads);
            let slice: Vec<_> = frontier.drain(frontier.len() - take..).collect();
            let shared = Shared {
                model,
                properties: &properties,
                seen: &seen,
                hasher: &g.hasher,
                index: &g.index,
                next_id: &next_id,
                edges: opts.edges,
            };
            let results = expand_in_parallel(&shared, slice, threads);
            let total = next_id.load(Ordering::Relaxed) as usize;
            merge(&mut g, results, total, &mut next_frontier);
            if let Some(every) = opts.progress_every {
                if last_progress.elapsed() >= every {
                    last_progress = Instant::now();
                    eprintln!(
                        "  … {} unique states, {} total, depth {}, {} resident, {:.0}s",
                        g.unique_states(),
                        g.total,
                        g.depth,
                        Budget::show(g.peak_memory),
                        start.elapsed().as_secs_f64()
                    );
                }
            }
        }
        if !next_frontier.is_empty() {
            g.depth += 1;
        }
        frontier = next_frontier;
    }
    g.peak_memory = g.peak_memory.max(memory::resident_bytes().unwrap_or(0));
    g.elapsed = start.elapsed();
    g
}

impl Graph {
    /// A graph with no state yet, for `properties` properties.
    fn empty(properties: usize) -> Graph {
        let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
        Graph {
            index: DashMap::with_hasher(hasher.clone()),
            hasher,
            parent: Vec::new(),
            settled: Vec::new(),
            back_edges: Vec::new(),
            cut: 0,
            total: 0,
            depth: 0,
            found: vec![None; properties],
            stopped: None,
            peak_memory: memory::resident_bytes().unwrap_or(0),
            elapsed: Duration::ZERO,
        }
    }
}

/// Numbers the initial states inside the bound (their own parents) and judges them: the first
/// level.
fn initial_frontier(
    model: &BullySystem,
    g: &mut Graph,
    properties: &[Property<BullySystem>],
    seen: &[AtomicBool],
    next_id: &AtomicU32,
) -> Vec<(u32, SysState)> {
    let mut frontier = Vec::new();
    let mut found = Vec::new();
    for s in model.init_states() {
        if !model.within_boundary(&s) {
            continue;
        }
        g.total += 1;
        if let Entry::Vacant(e) = g.index.entry(fingerprint(&g.hasher, &s)) {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            e.insert(id);
            g.parent.push(id);
            g.settled.push(settled(model, &s));
            findings(model, properties, seen, id, &s, &mut found);
            frontier.push((id, s));
        }
    }
    record(g, &mut found);
    frontier
}

/// Expands `slice` on `threads` workers, each its share.
fn expand_in_parallel(
    shared: &Shared<'_>,
    slice: Vec<(u32, SysState)>,
    threads: usize,
) -> Vec<Expanded> {
    let mut shares: Vec<Vec<(u32, SysState)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, job) in slice.into_iter().enumerate() {
        shares[i % threads].push(job);
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = shares
            .into_iter()
            .map(|share| scope.spawn(move || expand(shared, share)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a checker worker panicked"))
            .collect()
    })
}

/// Adds what the workers found to `g` (which now numbers `total` states), and their new
/// states to the next level.
fn merge(
    g: &mut Graph,
    results: Vec<Expanded>,
    total: usize,
    next_frontier: &mut Vec<(u32, SysState)>,
) {
    g.parent.resize(total, 0);
    g.settled.resize(total, false);
    for mut r in results {
        for (id, parent, flag) in r.new {
            g.parent[id as usize] = parent;
            g.settled[id as usize] = flag;
        }
        g.back_edges.extend(r.back_edges);
        g.cut += r.cut;
        g.total += r.generated;
        record(g, &mut r.findings);
        next_frontier.extend(r.frontier);
    }
}

/// Keeps, per property, the smallest (shallowest) state ID found.
fn record(g: &mut Graph, found: &mut Vec<(usize, u32)>) {
    for (i, id) in found.drain(..) {
        let f = &mut g.found[i];
        *f = Some(f.map_or(id, |old| old.min(id)));
    }
}

/// Whether to stop now: at the memory budget, or at a counterexample when asked to.
fn should_stop(
    g: &mut Graph,
    properties: &[Property<BullySystem>],
    opts: &PassOptions,
) -> Option<Stop> {
    let resident = memory::resident_bytes().unwrap_or(0);
    g.peak_memory = g.peak_memory.max(resident);
    if let Some(b) = opts.budget {
        if resident >= b.stop_at() {
            return Some(Stop::MemoryBudget {
                budget: b.bytes,
                resident,
            });
        }
    }
    if opts.stop_at_violation {
        let violated = properties
            .iter()
            .zip(&g.found)
            .find(|(p, f)| p.expectation == Expectation::Always && f.is_some());
        if let Some((p, _)) = violated {
            return Some(Stop::Violation {
                property: p.name.to_string(),
            });
        }
    }
    None
}

/// The BFS tree's path from an initial state to `target` (a shortest one).
pub fn path_to(model: &BullySystem, g: &Graph, target: u32) -> Path {
    paths_to(model, g, &[target]).pop().expect("one path")
}

/// [`path_to`] for several targets, with one scan of the index (it holds every state's
/// fingerprint: tens of millions at N=4).
pub fn paths_to(model: &BullySystem, g: &Graph, targets: &[u32]) -> Vec<Path> {
    let chains: Vec<Vec<u32>> = targets
        .iter()
        .map(|&target| {
            let mut chain = vec![target];
            loop {
                let last = *chain.last().unwrap();
                let parent = g.parent[last as usize];
                if parent == last {
                    break;
                }
                chain.push(parent);
            }
            chain.reverse();
            chain
        })
        .collect();
    let on_paths: HashSet<u32> = chains.iter().flatten().copied().collect();
    let wanted: HashMap<u32, u64> = g
        .index
        .iter()
        .filter(|e| on_paths.contains(e.value()))
        .map(|e| (*e.value(), *e.key()))
        .collect();
    chains
        .iter()
        .map(|chain| {
            let init = model
                .init_states()
                .into_iter()
                .find(|s| fingerprint(&g.hasher, s) == wanted[&chain[0]])
                .expect("initial state");
            let mut state = init.clone();
            let mut actions = Vec::new();
            for want in &chain[1..] {
                let mut enabled: Vec<SysAction> = Vec::new();
                model.actions(&state, &mut enabled);
                let (a, next) = enabled
                    .into_iter()
                    .filter_map(|a| model.next_state(&state, a).map(|n| (a, n)))
                    .find(|(_, n)| fingerprint(&g.hasher, n) == wanted[want])
                    .expect("the BFS tree replays");
                actions.push(a);
                state = next;
            }
            Path { init, actions }
        })
        .collect()
}
