//! How much could a partial-order reduction save on this model? An upper bound, measured.
//!
//! A reduction that keeps every verdict here (the `always` and `sometimes` properties, and
//! `liveness`, which is `AG EF settled`) and every reachable combination of process states may,
//! at a state, explore a single action instead of all of them only if that action is
//! *invisible* (it changes no process state, timer, crash flag or ghost: only the network) and
//! *persistent* (it commutes with every action on every path that avoids it, until it is taken).
//! A real reduction must decide persistence from the current state alone. This oracle builds the
//! whole graph first and decides it exactly on the graph, so it picks such an action wherever
//! one exists: no reduction of that kind can do better.
//!
//! ```sh
//! cargo bench -p bully-model --bench por_ceiling -- 4 0 0            # N, crashes, recoveries
//! cargo bench -p bully-model --bench por_ceiling -- 3 1 1 join unordered
//! ```
//!
//! It also measures the ceiling of a stronger dead-message reduction, one that may read the whole
//! state: a message is *dead* in a state if, on every path from there until it is delivered,
//! delivering it would do nothing but remove it. The count of states that hold no such message bounds
//! what any exact rule of that kind can leave.
//!
//! It holds the whole graph in memory: for graphs up to a few hundred thousand states.

use bully_model::system::{Channels, Config, Env, RoleCode, StartMode, SysAction, SysState};
use stateright::Model;
use std::collections::{HashMap, HashSet, VecDeque};

/// The explicit graph: states and, per state, its steps (action, successor index).
struct Graph {
    states: Vec<SysState>,
    steps: Vec<Vec<(SysAction, usize)>>,
}

impl Graph {
    fn explore(model: &impl Model<State = SysState, Action = SysAction>) -> Graph {
        let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
        let mut g = Graph {
            states: model.init_states(),
            steps: Vec::new(),
        };
        let mut index: HashMap<u64, usize> = g
            .states
            .iter()
            .enumerate()
            .map(|(i, s)| (hasher.hash_one(s), i))
            .collect();
        let mut actions = Vec::new();
        let mut i = 0;
        while i < g.states.len() {
            let s = g.states[i].clone();
            model.actions(&s, &mut actions);
            let mut steps = Vec::new();
            for a in actions.drain(..) {
                let Some(next) = model.next_state(&s, a) else {
                    continue;
                };
                let j = *index.entry(hasher.hash_one(&next)).or_insert_with(|| {
                    g.states.push(next);
                    g.states.len() - 1
                });
                steps.push((a, j));
            }
            g.steps.push(steps);
            i += 1;
        }
        g
    }

    fn successor(&self, i: usize, a: SysAction) -> Option<usize> {
        self.steps[i].iter().find(|(b, _)| *b == a).map(|&(_, j)| j)
    }

    /// States holding no message that is dead on every path (see the module docs): the least
    /// fixed point of "its delivery here changes a process state, or it is still in flight
    /// after some other step, in a state where it is live".
    fn without_globally_dead(&self) -> usize {
        let messages: Vec<Vec<Env>> = self
            .states
            .iter()
            .map(|s| {
                let mut v: Vec<Env> = s.network.iter().copied().collect();
                v.dedup();
                v
            })
            .collect();
        let mut live: Vec<Vec<bool>> = messages
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.iter()
                    .map(|&e| {
                        // Live unless its delivery does nothing but remove it.
                        let mut without = self.states[i].clone();
                        without.network.remove(&e);
                        self.successor(i, SysAction::Deliver(e))
                            .is_some_and(|j| self.states[j] != without)
                    })
                    .collect()
            })
            .collect();
        loop {
            let mut changed = false;
            for i in 0..self.states.len() {
                for k in 0..messages[i].len() {
                    if live[i][k] {
                        continue;
                    }
                    let e = messages[i][k];
                    let later = self.steps[i].iter().any(|&(a, j)| {
                        a != SysAction::Deliver(e)
                            && messages[j]
                                .iter()
                                .position(|f| *f == e)
                                .is_some_and(|k2| live[j][k2])
                    });
                    if later {
                        live[i][k] = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        live.iter().filter(|l| l.iter().all(|&b| b)).count()
    }

    fn invisible(&self, i: usize, j: usize) -> bool {
        let (s, t) = (&self.states[i], &self.states[j]);
        s.procs == t.procs && s.ghost == t.ghost
    }

    /// Every (state, action) pair where the action is persistent: the greatest set of enabled
    /// pairs such that every other action at the state commutes with it there and the pair
    /// after that other action is in the set too. Computed as the complement of what fails:
    /// pairs that fail locally, and everything that reaches them by actions other than `t`.
    fn persistent_pairs(&self) -> HashSet<(usize, SysAction)> {
        let mut alive: HashSet<(usize, SysAction)> = HashSet::new();
        let mut waiting_on: HashMap<(usize, SysAction), Vec<usize>> = HashMap::new();
        let mut failed = Vec::new();
        for (i, steps) in self.steps.iter().enumerate() {
            for &(t, after_t) in steps {
                let mut ok = true;
                for &(a, after_a) in steps {
                    if a == t {
                        continue;
                    }
                    let commutes = match self.successor(after_a, t) {
                        Some(a_then_t) => self.successor(after_t, a) == Some(a_then_t),
                        None => false,
                    };
                    if !commutes {
                        ok = false;
                        break;
                    }
                    waiting_on.entry((after_a, t)).or_default().push(i);
                }
                alive.insert((i, t));
                if !ok {
                    failed.push((i, t));
                }
            }
        }
        while let Some((i, t)) = failed.pop() {
            if !alive.remove(&(i, t)) {
                continue;
            }
            for &before in waiting_on.get(&(i, t)).into_iter().flatten() {
                if alive.contains(&(before, t)) {
                    failed.push((before, t));
                }
            }
        }
        alive
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let number =
        |k: usize, default: u8| args.get(k).and_then(|a| a.parse().ok()).unwrap_or(default);
    let mut cfg = Config::new(number(0, 4) as usize)
        .crashes(number(1, 0))
        .recoveries(number(2, 0));
    if args.iter().any(|a| a == "join") {
        cfg = cfg.start(StartMode::Join);
    }
    if args.iter().any(|a| a == "unordered") {
        cfg = cfg.channels(Channels::Unordered);
    }
    let description = cfg.to_string();
    let g = Graph::explore(&cfg.into_model());
    let persistent = g.persistent_pairs();
    let mut picked: HashMap<String, usize> = HashMap::new();
    let mut seen = vec![false; g.states.len()];
    let mut queue = VecDeque::from([0]);
    seen[0] = true;
    let mut reduced = 0;
    let mut combinations = HashSet::new();
    while let Some(i) = queue.pop_front() {
        reduced += 1;
        combinations.insert((g.states[i].procs.clone(), g.states[i].ghost));
        let single = g.steps[i]
            .iter()
            .find(|&&(a, j)| g.invisible(i, j) && persistent.contains(&(i, a)));
        let explored: Vec<usize> = match single {
            Some(&(a, j)) => {
                let what = match a {
                    SysAction::Deliver(e) => {
                        let role = match g.states[i].procs[e.dst as usize].role {
                            RoleCode::Joining { .. } => "a joiner",
                            RoleCode::Electing { .. } => "an electing process",
                            RoleCode::Waiting => "a waiting process",
                            RoleCode::Halting { .. } => "a candidate",
                            RoleCode::Coordinator { .. } => "the coordinator",
                            RoleCode::Follower { .. } => "a follower",
                        };
                        format!("{} to {role}", e.msg().kind())
                    }
                    other => format!("{other:?}"),
                };
                *picked.entry(what).or_default() += 1;
                vec![j]
            }
            None => g.steps[i].iter().map(|&(_, j)| j).collect(),
        };
        for j in explored {
            if !seen[j] {
                seen[j] = true;
                queue.push_back(j);
            }
        }
    }
    println!("{description}");
    let all: HashSet<_> = g
        .states
        .iter()
        .map(|s| (s.procs.clone(), s.ghost))
        .collect();
    println!(
        "{} states; with the oracle's reduction {} ({:.1}x); combinations of process states: {} reached of {}",
        g.states.len(),
        reduced,
        g.states.len() as f64 / reduced as f64,
        combinations.len(),
        all.len()
    );
    let clean = g.without_globally_dead();
    println!(
        "states holding no message dead on every path: {} ({:.1}x fewer)",
        clean,
        g.states.len() as f64 / clean as f64
    );
    let mut picked: Vec<_> = picked.into_iter().collect();
    picked.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    println!("single actions explored, by kind: {picked:?}");
}
