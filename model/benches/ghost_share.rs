//! What does the ghost state cost? A measurement for the symbolic engine, whose unit of work is
//! a combination of process states, crash flags and ghost state.
//!
//! It explores the graph explicitly (breadth first, up to a limit of states) and counts the
//! distinct network-free parts of the states it saw, three ways: as the checker keeps them
//! (processes and ghost); without the ghost that only the properties read (each process's
//! accepted epoch, the `sometimes` events, the last epoch in office, who recovered); and the
//! protocol's view alone (what each process holds, its timers and crash flag). The ratios say
//! how much of the combinations the ghost accounts for.
//!
//! ```sh
//! cargo bench -p bully-model --bench ghost_share -- 3 1 1 join
//! cargo bench -p bully-model --bench ghost_share -- 4 1 1 join 20000000   # a limit
//! ```

use bully_model::system::{Config, Ep, StartMode, SysState};
use stateright::Model;
use std::collections::{HashSet, VecDeque};

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
    let limit = args
        .iter()
        .filter_map(|a| a.parse::<usize>().ok())
        .nth(3)
        .unwrap_or(usize::MAX);
    let model = cfg.clone().into_model();
    let mut seen: HashSet<SysState> = HashSet::new();
    let mut queue = VecDeque::new();
    for s in model.init_states() {
        if seen.insert(s.clone()) {
            queue.push_back(s);
        }
    }
    let mut actions = Vec::new();
    while let Some(s) = queue.pop_front() {
        if seen.len() >= limit {
            break;
        }
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(next) = model.next_state(&s, a) {
                if seen.insert(next.clone()) {
                    queue.push_back(next);
                }
            }
        }
    }
    let mut full = HashSet::new();
    let mut no_ghost = HashSet::new();
    let mut per_process: Vec<HashSet<_>> = vec![HashSet::new(); n];
    for s in &seen {
        full.insert((s.procs.clone(), s.ghost));
        let mut procs = s.procs.clone();
        for p in procs.iter_mut() {
            p.accepted = Ep::default();
        }
        no_ghost.insert((procs.clone(), s.ghost.crashes, s.ghost.recoveries));
        for (i, p) in procs.iter().enumerate() {
            per_process[i].insert(*p);
        }
    }
    println!(
        "{cfg}: {} states{}",
        seen.len(),
        if queue.is_empty() {
            String::new()
        } else {
            format!(" (stopped at the limit, {} waiting)", queue.len())
        }
    );
    println!(
        "  network-free parts as checked: {}; without the properties' ghost: {} ({:.2}x)",
        full.len(),
        no_ghost.len(),
        full.len() as f64 / no_ghost.len() as f64
    );
    let sizes: Vec<usize> = per_process.iter().map(HashSet::len).collect();
    println!("  states of each process (ghost left out): {sizes:?}");
}
