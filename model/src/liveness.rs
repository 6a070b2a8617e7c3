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
//! there is a heartbeat loop (the proptest simulator finds it) that keeps disabling another
//! process's outcome timer, which the model enables only when no message is in flight.
//!
//! The graph comes from [`crate::engine::explicit`]'s breadth-first pass, which records each state's
//! parent (for the counterexample) and its fault-free edges; [`analyze`] walks those edges
//! backwards from every settled state. Any state left unmarked is reported, with the shortest
//! path to it.

use crate::engine::explicit::{self, Graph, PassOptions};
use crate::memory::Budget;
use crate::system::BullySystem;
use crate::trace::Witness;
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
    /// A path to a trapped state (the explicit engine's is a shortest one).
    pub counterexample: Option<Witness>,
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

/// Explores the whole model and checks liveness, with `threads` workers (a pass of its own;
/// [`crate::check`] asks [`analyze`] on the graph its own pass built instead). In a bounded run
/// (see [`Config::is_bounded`](crate::system::Config::is_bounded)) states past the bound are
/// not explored and presumed able to settle: a reported violation is real, "holds" holds
/// within the bound only. The pass stops, with no verdict, before the process's resident size
/// reaches `budget`.
pub fn check(model: &BullySystem, budget: Option<Budget>, threads: usize) -> LivenessReport {
    let g = explicit::explore(
        model,
        &PassOptions {
            threads,
            budget,
            edges: true,
            stop_at_violation: false,
            progress_every: None,
        },
    );
    let mut r = analyze(model, &g);
    r.elapsed += g.elapsed;
    r
}

/// The liveness verdict on an explored graph (built with its edges); its `elapsed` is the
/// analysis alone.
pub fn analyze(model: &BullySystem, g: &Graph) -> LivenessReport {
    let start = Instant::now();
    if let Some(crate::engine::Stop::MemoryBudget { resident, .. }) = g.stopped {
        return LivenessReport {
            states: 0,
            fault_free_edges: 0,
            settled_states: 0,
            trapped_states: 0,
            cut_at_bound: 0,
            counterexample: None,
            elapsed: g.elapsed,
            peak_memory: g.peak_memory,
            stopped_at_memory: Some(resident),
        };
    }
    assert!(g.complete(), "liveness needs the whole graph");
    let n = g.states();
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
    drop(fill);
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
    let counterexample = trapped
        .first()
        .map(|&bad| Witness::Path(explicit::path_to(model, g, bad as u32)));
    LivenessReport {
        states: n,
        fault_free_edges: g.back_edges.len(),
        settled_states: g.settled.iter().filter(|&&b| b).count(),
        trapped_states: trapped.len(),
        cut_at_bound: g.cut,
        counterexample,
        elapsed: start.elapsed(),
        peak_memory: g
            .peak_memory
            .max(crate::memory::resident_bytes().unwrap_or(0)),
        stopped_at_memory: None,
    }
}
