//! Random walks: for sizes beyond exhaustive reach, and for traces to replay on real nodes.
//!
//! Each walk starts at the initial state and takes one uniformly chosen enabled action at a
//! time, up to a length, checking every `always` property in every state it visits. Walk `r`
//! of a run from seed `s` uses seed `s + r`, so any walk can be taken again alone
//! (`--seed s+r --runs 1`), and its [`Path`] can be written out (`--trace-out`).

use crate::properties::ALWAYS;
use crate::system::{Action, BullySystem, SysState};
use crate::trace::Path;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stateright::Model;

/// What a simulation found.
pub struct Simulation {
    /// How many walks were taken (fewer than asked when one found a violation).
    pub walks: usize,
    /// States visited over all walks (the initial ones included).
    pub states: usize,
    /// The first `always` property violated, and the walk that violated it (ending there).
    pub violation: Option<(&'static str, Path)>,
    /// The last walk taken (the violating one, if any).
    pub last: Path,
}

/// One walk of at most `depth` steps from seed `seed`: the path, how many states it visited
/// and the first `always` property it violated (the walk stops there).
pub fn walk(model: &BullySystem, seed: u64, depth: usize) -> (Path, usize, Option<&'static str>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let inits = model.init_states();
    let init = inits[rng.gen_range(0..inits.len())].clone();
    let violated = |s: &SysState| {
        ALWAYS
            .iter()
            .find(|(_, holds)| !holds(model, s))
            .map(|&(name, _)| name)
    };
    let mut path = Path {
        init: init.clone(),
        actions: Vec::new(),
    };
    let mut state = init;
    let mut visited = 1;
    if let Some(name) = violated(&state) {
        return (path, visited, Some(name));
    }
    let mut enabled: Vec<Action> = Vec::new();
    while path.actions.len() < depth {
        enabled.clear();
        model.actions(&state, &mut enabled);
        // Actions that change nothing are not steps (stateright drops them too).
        let mut steps: Vec<(Action, SysState)> = enabled
            .drain(..)
            .filter_map(|a| model.next_state(&state, a).map(|next| (a, next)))
            .collect();
        if steps.is_empty() {
            break;
        }
        let (a, next) = steps.swap_remove(rng.gen_range(0..steps.len()));
        path.actions.push(a);
        state = next;
        visited += 1;
        if let Some(name) = violated(&state) {
            return (path, visited, Some(name));
        }
    }
    (path, visited, None)
}

/// `runs` walks of at most `depth` steps, from seeds `seed`, `seed + 1`, …; stops at the
/// first violation.
pub fn simulate(model: &BullySystem, seed: u64, runs: usize, depth: usize) -> Simulation {
    let mut states = 0;
    let mut last = None;
    for r in 0..runs.max(1) {
        let (path, visited, violated) = walk(model, seed.wrapping_add(r as u64), depth);
        states += visited;
        if let Some(name) = violated {
            return Simulation {
                walks: r + 1,
                states,
                violation: Some((name, path.clone())),
                last: path,
            };
        }
        last = Some(path);
    }
    Simulation {
        walks: runs.max(1),
        states,
        violation: None,
        last: last.expect("at least one walk"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Config;
    use crate::Variant;

    /// A walk is a path of the model, the same for the same seed; the correct protocol
    /// violates nothing, and the no-halt mutant's two coordinators are found by walking.
    #[test]
    fn walks_replay_repeat_and_find_violations() {
        let model = Config::new(3).into_model();
        let (path, visited, violated) = walk(&model, 7, 60);
        assert_eq!(violated, None);
        assert_eq!(visited, path.actions.len() + 1);
        assert_eq!(path.states(&model).len(), path.actions.len());
        assert_eq!(walk(&model, 7, 60).0, path, "the same seed, the same walk");
        let mutant = Config::new(2).variant(Variant::NoHalt).into_model();
        let found = simulate(&mutant, 0, 200, 40);
        let (name, path) = found.violation.expect("two coordinators, by walking");
        assert_eq!(name, "single coordinator");
        assert_eq!(found.last, path);
        let end = path.last(&mutant);
        assert!(!crate::properties::single_coordinator(&mutant, &end));
    }
}
