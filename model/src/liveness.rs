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
//! The check runs a breadth-first search recording each state's fingerprint, its parent (for
//! the counterexample) and its fault-free edges, then walks those edges backwards from every
//! settled state. Any state left unmarked is reported, with the shortest path to it.

use crate::memory::{self, Budget};
use crate::properties::{describe_action, settled};
use crate::system::{BullySystem, SysAction, SysState};
use stateright::Model;
use std::collections::{HashMap, VecDeque};
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

/// Explores the whole model and checks liveness. In a bounded run (see
/// [`Config::is_bounded`](crate::system::Config::is_bounded)) states past the bound are not
/// explored and presumed able to settle: a reported violation is real, "holds" holds within
/// the bound only. The pass stops, with no verdict, before the process's resident size reaches
/// `budget`.
pub fn check(model: &BullySystem, budget: Option<Budget>) -> LivenessReport {
    let start = Instant::now();
    let mut peak_memory = memory::resident_bytes().unwrap_or(0);
    let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
    let mut index: HashMap<u64, u32, ahash::RandomState> = HashMap::default();
    let mut parent: Vec<u32> = Vec::new();
    let mut settled_flags: Vec<bool> = Vec::new();
    // Fault-free edges, stored reversed (to, from) for the backward walk.
    let mut back_edges: Vec<(u32, u32)> = Vec::new();
    let mut queue: VecDeque<(u32, SysState)> = VecDeque::new();

    for s in model.init_states() {
        let fp = fingerprint(&hasher, &s);
        if let std::collections::hash_map::Entry::Vacant(e) = index.entry(fp) {
            let id = parent.len() as u32;
            e.insert(id);
            parent.push(id);
            settled_flags.push(settled(model, &s));
            queue.push_back((id, s));
        }
    }
    let mut actions = Vec::new();
    let mut cut = 0usize;
    while let Some((from, s)) = queue.pop_front() {
        if from % 4096 == 0 {
            let resident = memory::resident_bytes().unwrap_or(0);
            peak_memory = peak_memory.max(resident);
            if budget.is_some_and(|b| resident >= b.stop_at()) {
                return LivenessReport {
                    states: parent.len(),
                    fault_free_edges: back_edges.len(),
                    settled_states: 0,
                    trapped_states: 0,
                    cut_at_bound: cut,
                    counterexample: None,
                    elapsed: start.elapsed(),
                    peak_memory,
                    stopped_at_memory: Some(resident),
                };
            }
        }
        actions.clear();
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            let fault = BullySystem::is_fault(&a);
            let Some(next) = model.next_state(&s, a) else {
                continue;
            };
            let fp = fingerprint(&hasher, &next);
            let to = match index.entry(fp) {
                std::collections::hash_map::Entry::Occupied(e) => *e.get(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let id = parent.len() as u32;
                    e.insert(id);
                    parent.push(from);
                    // A state beyond the bound of a bounded run is not explored; it counts as
                    // one that may still settle, so every reported trap is a real one.
                    if model.within_boundary(&next) {
                        settled_flags.push(settled(model, &next));
                        queue.push_back((id, next));
                    } else {
                        settled_flags.push(true);
                        cut += 1;
                    }
                    id
                }
            };
            if !fault {
                back_edges.push((to, from));
            }
        }
    }
    let n = parent.len();
    // Backward reachability from settled states over fault-free edges (CSR by target).
    let mut offsets = vec![0u32; n + 1];
    for &(to, _) in &back_edges {
        offsets[to as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut preds = vec![0u32; back_edges.len()];
    let mut fill = offsets.clone();
    for &(to, from) in &back_edges {
        preds[fill[to as usize] as usize] = from;
        fill[to as usize] += 1;
    }
    let mut can_settle = settled_flags.clone();
    let mut stack: Vec<u32> = (0..n as u32)
        .filter(|&i| settled_flags[i as usize])
        .collect();
    while let Some(v) = stack.pop() {
        for &p in &preds[offsets[v as usize] as usize..offsets[v as usize + 1] as usize] {
            if !can_settle[p as usize] {
                can_settle[p as usize] = true;
                stack.push(p);
            }
        }
    }
    let trapped: Vec<usize> = (0..n).filter(|&i| !can_settle[i]).collect();
    let counterexample = trapped.first().map(|&bad| {
        let fps: HashMap<u32, u64> = index.iter().map(|(fp, id)| (*id, *fp)).collect();
        path_to(model, &hasher, &parent, &fps, bad as u32)
    });
    LivenessReport {
        states: n,
        fault_free_edges: back_edges.len(),
        settled_states: settled_flags.iter().filter(|&&b| b).count(),
        trapped_states: trapped.len(),
        cut_at_bound: cut,
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
