//! Random walks: for sizes beyond exhaustive reach, and for traces to replay on real nodes.
//!
//! [`Walker`] is the one walker over the checked system: it asks the model which actions are
//! enabled, lets a chooser pick one, takes it through the model's `next_state`, and judges the
//! `always` properties in every state it reaches. `bully-model simulate` chooses uniformly at
//! random ([`walk`]); the proptests choose along a schedule, then settle
//! (`bully_proptests::sim`).
//!
//! A random walk starts at the initial state and takes one uniformly chosen enabled action at
//! a time, up to a length. Walk `r` of a run from seed `s` uses seed `s + r`, so any walk can
//! be taken again alone (`--seed s+r --runs 1`), and its [`Path`] can be written out
//! (`--trace-out`).

use crate::properties::ALWAYS;
use crate::system::{Action, BullySystem, SysState};
use crate::trace::Path;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stateright::Model;

/// Which `always` properties a walk judges after every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    Every,
    /// Only this one (where the others are known not to hold).
    Only(&'static str),
    Nothing,
}

/// A chooser's answer for one turn. (Moved once per step: boxing the state would cost an
/// allocation per step.)
#[allow(clippy::large_enum_variant)]
pub enum Pick {
    /// Take this action, which leads to this state (the model's `next_state` of it).
    Take(Action, SysState),
    /// Take nothing this turn, and go on.
    Skip,
    /// End the walk.
    Stop,
}

/// Why [`Walker::walk`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// A judged property is false in the current state.
    Violated(&'static str),
    /// The chooser ended the walk.
    Stopped,
    /// Every turn was used.
    Limit,
}

/// A walk through the checked system, judged after every step.
pub struct Walker<'m> {
    model: &'m BullySystem,
    judged: Judged,
    /// Where the walk is.
    pub state: SysState,
    /// The way it came (from its first state).
    pub path: Path,
    /// The first judged property violated (the walk takes no step after it).
    pub violation: Option<&'static str>,
    enabled: Vec<Action>,
}

impl<'m> Walker<'m> {
    /// A walk from `init`, judged there at once.
    pub fn new(model: &'m BullySystem, init: SysState, judged: Judged) -> Walker<'m> {
        let mut walker = Walker {
            model,
            judged,
            path: Path {
                init: init.clone(),
                actions: Vec::new(),
            },
            state: init,
            violation: None,
            enabled: Vec::new(),
        };
        walker.violation = walker.violated();
        walker
    }

    /// The first judged `always` property the current state violates.
    fn violated(&self) -> Option<&'static str> {
        ALWAYS
            .iter()
            .filter(|(name, _)| match self.judged {
                Judged::Every => true,
                Judged::Only(only) => only == *name,
                Judged::Nothing => false,
            })
            .find(|(_, holds)| !holds(self.model, &self.state))
            .map(|&(name, _)| name)
    }

    /// Up to `turns` turns: in each, `choose` gets the turn's number (from 0), the state and
    /// the enabled actions in the model's order (it may reorder them), and picks; `observe`
    /// sees each step taken (the turn, the action and the state after it).
    pub fn walk(
        &mut self,
        turns: usize,
        mut choose: impl FnMut(usize, &SysState, &mut Vec<Action>) -> Pick,
        mut observe: impl FnMut(usize, Action, &SysState),
    ) -> End {
        for turn in 0..turns {
            if let Some(name) = self.violation {
                return End::Violated(name);
            }
            let mut enabled = std::mem::take(&mut self.enabled);
            enabled.clear();
            self.model.actions(&self.state, &mut enabled);
            let pick = choose(turn, &self.state, &mut enabled);
            self.enabled = enabled;
            match pick {
                Pick::Take(action, next) => {
                    self.state = next;
                    self.path.actions.push(action);
                    observe(turn, action, &self.state);
                    self.violation = self.violated();
                }
                Pick::Skip => {}
                Pick::Stop => return End::Stopped,
            }
        }
        match self.violation {
            Some(name) => End::Violated(name),
            None => End::Limit,
        }
    }
}

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

/// One random walk of at most `depth` steps from seed `seed`: the path, how many states it
/// visited and the first `always` property it violated (the walk stops there).
pub fn walk(model: &BullySystem, seed: u64, depth: usize) -> (Path, usize, Option<&'static str>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let inits = model.init_states();
    let init = inits[rng.gen_range(0..inits.len())].clone();
    let mut walker = Walker::new(model, init, Judged::Every);
    walker.walk(
        depth,
        |_, state, enabled| {
            // Actions that change nothing are not steps (stateright drops them too).
            let mut steps: Vec<(Action, SysState)> = enabled
                .drain(..)
                .filter_map(|a| model.next_state(state, a).map(|next| (a, next)))
                .collect();
            if steps.is_empty() {
                return Pick::Stop;
            }
            let (a, next) = steps.swap_remove(rng.gen_range(0..steps.len()));
            Pick::Take(a, next)
        },
        |_, _, _| {},
    );
    let visited = walker.path.actions.len() + 1;
    (walker.path, visited, walker.violation)
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
