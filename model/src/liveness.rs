//! A sound liveness check over the explicit state graph.
//!
//! stateright's `Property::eventually` can miss a violation on paths that end in a cycle or that
//! join another path (its docs say so), and Bully's graph has both (heartbeats loop; crash and
//! recovery interleave). So liveness is checked here instead, as **"from every reachable state,
//! if no further fault happens, the goal is still reachable"** (CTL: `AG EF settled` over the
//! fault-free transitions).
//!
//! Why that is the liveness we want: the graph is finite (the fault budget is total, and the
//! synchronous timing rule keeps the network finite). Take any execution in which faults stop
//! and the scheduler is *strongly* fair: a transition enabled infinitely often is eventually
//! taken (real timers are: a timeout that keeps coming due fires). From some point on it only
//! visits states it visits infinitely often; each of them can reach a settled state, and
//! strong fairness drives the execution along such a path. So every such execution reaches a
//! settled state. Conversely, a state that cannot reach one is a real trap: no schedule gets
//! out. Weak fairness (only transitions enabled *continuously* must be taken) is not enough:
//! the proptest simulator found a heartbeat loop that keeps disabling another process's
//! outcome timer, which the model enables only when no message is in flight.
//!
//! The check runs a breadth-first search (level by level, each level shared among the checker's
//! threads) recording each state's fingerprint, its parent (for the counterexample) and its
//! fault-free edges, then walks those edges backwards from every settled state. Any state left
//! unmarked is reported, with the shortest path to it.

use crate::memory::{self, Budget};
use crate::properties::{describe_action, settled};
use crate::system::{BullySystem, SysAction, SysState};
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use stateright::Model;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct LivenessReport {
    pub states: usize,
    pub fault_free_edges: usize,
    pub settled_states: usize,
    /// States from which no fault-free execution reaches a settled state.
    pub trapped_states: usize,
    /// States beyond the bound of a bounded run (not explored; presumed able to settle).
    pub cut_at_bound: usize,
    /// The shortest path to a trapped state, as readable steps.
    pub counterexample: Option<Vec<String>>,
    pub elapsed: Duration,
    /// The largest resident size seen during the pass, in bytes.
    pub peak_memory: u64,
    /// Set (to the resident size) when the pass stopped at the memory budget: no verdict.
    pub stopped_at_memory: Option<u64>,
}

impl LivenessReport {
    pub fn holds(&self) -> bool {
        self.stopped_at_memory.is_none() && self.trapped_states == 0
    }
}

fn fingerprint(hasher: &ahash::RandomState, s: &SysState) -> u64 {
    hasher.hash_one(s)
}

/// What one worker found while expanding its share of a level of the search.
#[derive(Default)]
struct Expanded {
    /// New states to expand in the next level.
    frontier: Vec<(u32, SysState)>,
    /// New states: (id, parent, settled or cut at the bound).
    found: Vec<(u32, u32, bool)>,
    /// Fault-free edges, reversed: (to, from).
    back_edges: Vec<(u32, u32)>,
    cut: usize,
}

/// The explicit graph, as the search leaves it.
struct Explored {
    index: DashMap<u64, u32, ahash::RandomState>,
    parent: Vec<u32>,
    settled: Vec<bool>,
    back_edges: Vec<(u32, u32)>,
    cut: usize,
}

/// Expands `states` (a share of one level): every successor gets an ID the first time any
/// worker sees it.
fn expand(
    model: &BullySystem,
    hasher: &ahash::RandomState,
    index: &DashMap<u64, u32, ahash::RandomState>,
    next_id: &AtomicU32,
    states: Vec<(u32, SysState)>,
) -> Expanded {
    let mut out = Expanded::default();
    let mut actions = Vec::new();
    for (from, s) in states {
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            let fault = BullySystem::is_fault(&a);
            let Some(next) = model.next_state(&s, a) else {
                continue;
            };
            let to = match index.entry(fingerprint(hasher, &next)) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    e.insert(id);
                    // A state beyond the bound of a bounded run is not explored; it counts as
                    // one that may still settle, so every reported trap is a real one.
                    if model.within_boundary(&next) {
                        out.found.push((id, from, settled(model, &next)));
                        out.frontier.push((id, next));
                    } else {
                        out.found.push((id, from, true));
                        out.cut += 1;
                    }
                    id
                }
            };
            if !fault {
                out.back_edges.push((to, from));
            }
        }
    }
    out
}

/// Breadth first, level by level, each level shared among `threads` workers. `None` when the
/// memory budget stopped it (with the resident size then).
fn explore(
    model: &BullySystem,
    hasher: &ahash::RandomState,
    threads: usize,
    budget: Option<Budget>,
    peak_memory: &mut u64,
) -> Result<Explored, u64> {
    let mut g = Explored {
        index: DashMap::with_hasher(hasher.clone()),
        parent: Vec::new(),
        settled: Vec::new(),
        back_edges: Vec::new(),
        cut: 0,
    };
    let next_id = AtomicU32::new(0);
    let mut frontier = Vec::new();
    for s in model.init_states() {
        if let Entry::Vacant(e) = g.index.entry(fingerprint(hasher, &s)) {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            e.insert(id);
            g.parent.push(id);
            g.settled.push(settled(model, &s));
            frontier.push((id, s));
        }
    }
    while !frontier.is_empty() {
        let resident = memory::resident_bytes().unwrap_or(0);
        *peak_memory = (*peak_memory).max(resident);
        if budget.is_some_and(|b| resident >= b.stop_at()) {
            return Err(resident);
        }
        // Levels can be large: expand them in slices, so memory is watched as it grows.
        let mut next_frontier = Vec::new();
        while !frontier.is_empty() {
            let take = frontier.len().min(SLICE * threads);
            let slice: Vec<_> = frontier.drain(frontier.len() - take..).collect();
            let mut shares: Vec<Vec<(u32, SysState)>> = (0..threads).map(|_| Vec::new()).collect();
            for (i, job) in slice.into_iter().enumerate() {
                shares[i % threads].push(job);
            }
            let results: Vec<Expanded> = std::thread::scope(|scope| {
                let workers: Vec<_> = shares
                    .into_iter()
                    .map(|share| {
                        let (index, next_id) = (&g.index, &next_id);
                        scope.spawn(move || expand(model, hasher, index, next_id, share))
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().expect("a liveness worker panicked"))
                    .collect()
            });
            let total = next_id.load(Ordering::Relaxed) as usize;
            g.parent.resize(total, 0);
            g.settled.resize(total, false);
            for r in results {
                for (id, parent, flag) in r.found {
                    g.parent[id as usize] = parent;
                    g.settled[id as usize] = flag;
                }
                g.back_edges.extend(r.back_edges);
                g.cut += r.cut;
                next_frontier.extend(r.frontier);
            }
            let resident = memory::resident_bytes().unwrap_or(0);
            *peak_memory = (*peak_memory).max(resident);
            if budget.is_some_and(|b| resident >= b.stop_at()) {
                return Err(resident);
            }
        }
        frontier = next_frontier;
    }
    Ok(g)
}

/// States per worker per slice of a level.
const SLICE: usize = 4096;

/// Explores the whole model and checks liveness, with `threads` workers. In a bounded run (see
/// [`Config::is_bounded`](crate::system::Config::is_bounded)) states past the bound are not
/// explored and presumed able to settle: a reported violation is real, "holds" holds within
/// the bound only. The pass stops, with no verdict, before the process's resident size reaches
/// `budget`.
pub fn check(model: &BullySystem, budget: Option<Budget>, threads: usize) -> LivenessReport {
    let start = Instant::now();
    let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
    let mut peak_memory = memory::resident_bytes().unwrap_or(0);
    let g = match explore(model, &hasher, threads.max(1), budget, &mut peak_memory) {
        Ok(g) => g,
        Err(resident) => {
            return LivenessReport {
                states: 0,
                fault_free_edges: 0,
                settled_states: 0,
                trapped_states: 0,
                cut_at_bound: 0,
                counterexample: None,
                elapsed: start.elapsed(),
                peak_memory,
                stopped_at_memory: Some(resident),
            }
        }
    };
    let n = g.parent.len();
    // Backward reachability from settled states over fault-free edges (CSR by target).
    let mut offsets = vec![0u32; n + 1];
    for &(to, _) in &g.back_edges {
        offsets[to as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut preds = vec![0u32; g.back_edges.len()];
    let mut fill = offsets.clone();
    for &(to, from) in &g.back_edges {
        preds[fill[to as usize] as usize] = from;
        fill[to as usize] += 1;
    }
    let mut can_settle = g.settled.clone();
    let mut stack: Vec<u32> = (0..n as u32).filter(|&i| g.settled[i as usize]).collect();
    while let Some(v) = stack.pop() {
        for &p in &preds[offsets[v as usize] as usize..offsets[v as usize + 1] as usize] {
            if !can_settle[p as usize] {
                can_settle[p as usize] = true;
                stack.push(p);
            }
        }
    }
    // The shortest path to a trap: the trapped state closest to the start (IDs are handed out
    // level by level, so the smallest ID is on the shallowest level).
    let trapped: Vec<usize> = (0..n).filter(|&i| !can_settle[i]).collect();
    let counterexample = trapped.first().map(|&bad| {
        let fps: HashMap<u32, u64> = g.index.iter().map(|e| (*e.value(), *e.key())).collect();
        path_to(model, &hasher, &g.parent, &fps, bad as u32)
    });
    LivenessReport {
        states: n,
        fault_free_edges: g.back_edges.len(),
        settled_states: g.settled.iter().filter(|&&b| b).count(),
        trapped_states: trapped.len(),
        cut_at_bound: g.cut,
        counterexample,
        elapsed: start.elapsed(),
        peak_memory: peak_memory.max(memory::resident_bytes().unwrap_or(0)),
        stopped_at_memory: None,
    }
}

/// Replays the BFS tree from an initial state to `target`, naming each action.
fn path_to(
    model: &BullySystem,
    hasher: &ahash::RandomState,
    parent: &[u32],
    fps: &HashMap<u32, u64>,
    target: u32,
) -> Vec<String> {
    let mut chain = vec![target];
    while parent[*chain.last().unwrap() as usize] != *chain.last().unwrap() {
        chain.push(parent[*chain.last().unwrap() as usize]);
    }
    chain.reverse();
    let mut state = model
        .init_states()
        .into_iter()
        .find(|s| fingerprint(hasher, s) == fps[&chain[0]])
        .expect("initial state");
    let mut steps = Vec::new();
    for want in &chain[1..] {
        let mut actions: Vec<SysAction> = Vec::new();
        model.actions(&state, &mut actions);
        let (a, next) = actions
            .into_iter()
            .filter_map(|a| model.next_state(&state, a).map(|n| (a, n)))
            .find(|(_, n)| fingerprint(hasher, n) == fps[want])
            .expect("the BFS tree replays");
        steps.push(describe_action(&a));
        state = next;
    }
    steps.push(format!(
        "trapped: no fault-free continuation reaches the goal. Final state: {}",
        crate::check::describe_state(&state)
    ));
    steps
}
