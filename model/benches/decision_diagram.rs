//! How compact is the reachable state set as a decision diagram? A measurement.
//!
//! It explores the graph explicitly (one state at a time, breadth first), writes each state as
//! a vector of variables (the ghost state; then, for each process, its state and the contents
//! of each channel *into* it, each variable dictionary-coded) and counts the nodes of the
//! smallest decision diagram of that set of vectors (levels in that order, built bottom up from
//! the sorted vectors). At N=4 with a crash and a recovery: 31 116 275 states, 165 165 nodes.
//! This is what made the symbolic engine (`model/src/engine/symbolic.rs`) worth building.
//!
//! ```sh
//! cargo bench -p bully-model --bench decision_diagram -- 4 1 0   # N, crashes, recoveries
//! cargo bench -p bully-model --bench decision_diagram -- 3 1 1 join
//! ```
//!
//! It keeps every state's vector in memory (about 40 bytes each).

use bully_model::system::{Config, Env, Ghost, Proc, StartMode, SysState};
use stateright::Model;
use std::collections::{HashMap, HashSet};

/// A variable's value.
#[derive(Hash, PartialEq, Eq, Clone)]
enum Val {
    Ghost(Ghost),
    Process(Proc),
    Channel(Vec<Env>),
}

/// The variables: the ghost state, then per process its state and its incoming channels.
#[derive(Clone, Copy)]
enum Var {
    Ghost,
    Process(usize),
    Channel { src: usize, dst: usize },
}

fn value(var: Var, s: &SysState) -> Val {
    match var {
        Var::Ghost => Val::Ghost(s.ghost),
        Var::Process(i) => Val::Process(s.procs[i]),
        Var::Channel { src, dst } => Val::Channel(
            s.network
                .iter()
                .filter(|e| e.src as usize == src && e.dst as usize == dst)
                .copied()
                .collect(),
        ),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let num =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let n = num(0, 3);
    let mut cfg = Config::new(n)
        .crashes(num(1, 1) as u8)
        .recoveries(num(2, 1) as u8);
    if args.iter().any(|a| a == "join") {
        cfg = cfg.start(StartMode::Join);
    }
    println!("{cfg}");
    let model = cfg.into_model();
    let mut vars = vec![Var::Ghost];
    for dst in 0..n {
        vars.push(Var::Process(dst));
        vars.extend(
            (0..n)
                .filter(|&src| src != dst)
                .map(|src| Var::Channel { src, dst }),
        );
    }
    let mut dicts: Vec<HashMap<Val, u16>> = vec![HashMap::new(); vars.len()];
    let mut words: Vec<Vec<u16>> = Vec::new();
    let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
    let mut seen: HashSet<u64> = HashSet::new();
    let mut frontier = model.init_states();
    for s in &frontier {
        seen.insert(hasher.hash_one(s));
    }
    let mut actions = Vec::new();
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for s in frontier.drain(..) {
            let word = vars
                .iter()
                .zip(dicts.iter_mut())
                .map(|(&var, dict)| {
                    let fresh = dict.len() as u16;
                    *dict.entry(value(var, &s)).or_insert(fresh)
                })
                .collect();
            words.push(word);
            model.actions(&s, &mut actions);
            for a in actions.drain(..) {
                if let Some(t) = model.next_state(&s, a) {
                    if seen.insert(hasher.hash_one(&t)) {
                        next.push(t);
                    }
                }
            }
        }
        frontier = next;
    }
    words.sort_unstable();
    words.dedup();
    // Bottom up: at each level, the distinct (value, child) lists of the prefixes are the nodes.
    let mut child: Vec<u32> = vec![0; words.len()];
    let mut per_level = vec![0usize; vars.len()];
    for level in (0..vars.len()).rev() {
        let mut nodes: HashMap<Vec<(u16, u32)>, u32> = HashMap::new();
        let mut next_child = vec![0u32; words.len()];
        let mut i = 0;
        while i < words.len() {
            let mut j = i;
            let mut edges: Vec<(u16, u32)> = Vec::new();
            while j < words.len() && words[j][..level] == words[i][..level] {
                if edges.last().map(|e| e.0) != Some(words[j][level]) {
                    edges.push((words[j][level], child[j]));
                }
                j += 1;
            }
            let fresh = nodes.len() as u32;
            let id = *nodes.entry(edges).or_insert(fresh);
            next_child[i..j].fill(id);
            i = j;
        }
        per_level[level] = nodes.len();
        child = next_child;
    }
    println!(
        "{} states; decision diagram of {} variables: {} nodes (per level {:?})",
        words.len(),
        vars.len(),
        per_level.iter().sum::<usize>(),
        per_level
    );
}
