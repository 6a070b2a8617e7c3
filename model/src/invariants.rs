//! The protocol's run-time invariants: what every step of [`Bully`] promises, judged on the
//! step itself (the state before and after it, and its commands) by the one dispatch
//! ([`Bully::step`]). So the checker judges every step it explores, and a node every event it
//! handles, before it acts on it.
//!
//! * **A promise never decreases** across a step (a restart's step starts from its saved
//!   promise).
//! * **Office only with its own epoch, at its promise:** a process takes office only with an
//!   epoch it proposed itself, and no promise it made is above that epoch.
//! * **Saves before sends:** every save of a step comes before every send of it. A node
//!   executes the commands in order, so what it promised is durable before anyone hears of it.
//! * **No following below the promise:** a process starts to follow an epoch only if it is not
//!   below the promise it held.
//! * **What changed is saved** (debug builds): a step that changes what survives a crash saves
//!   exactly that.
//!
//! # `assert!` or `debug_assert!`
//!
//! The first four compare a few epochs and scan the step's commands once, which costs less
//! than the step itself: they are judged in every build. The fifth builds the storage before
//! and after the step (two copies of the member list) on every step, a cost the checker would
//! pay millions of times, to watch a dozen lines (`save_if_changed`, the start's save) that
//! the durability tests exercise as well: debug builds only.
//!
//! # Mutants
//!
//! The assertions judge the protocol's own promises: a step of [`Variant::Correct`] that
//! breaks one panics with the invariant's message (in the checker, in the proptests and on a
//! node alike). A mutant breaks some on purpose, and the checker must report that as the
//! property the breach violates (`tests/mutants.rs` asserts which one), not stop the search:
//! so a mutant's step carries the breach as data ([`Stepped::broken`](crate::Stepped)). The
//! checker leaves it to the properties; a node stops on it as on an assertion, except under
//! the replayer, which drives the node along a model trace that the checker judges.
//!
//! A tool that steps from states the protocol did not produce (the conformance check replays
//! logged states, which may be tampered with) uses [`Bully::step_judged`], which carries the
//! breach for every variant: for bad input, a finding to report, never a panic.

use crate::mutants::Variant;
use crate::protocol::{Bully, Epoch, Role, State, Storage};
use stateright::actor::{Command, Id, Out};
use std::fmt;

/// One of the invariants above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invariant {
    PromiseNeverDecreases,
    OfficeWithOwnEpoch,
    SavesBeforeSends,
    FollowsNoEpochBelowPromise,
    ChangesAreSaved,
}

impl Invariant {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::PromiseNeverDecreases => "a promise never decreases",
            Invariant::OfficeWithOwnEpoch => "office only with its own epoch, at its promise",
            Invariant::SavesBeforeSends => "a step's saves come before its sends",
            Invariant::FollowsNoEpochBelowPromise => "no following below the promise",
            Invariant::ChangesAreSaved => "what changed is saved",
        }
    }
}

/// A step that broke an invariant: which one, by which process, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub invariant: Invariant,
    pub process: Id,
    pub detail: String,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant broken by process {}: {} ({})",
            usize::from(self.process),
            self.invariant.name(),
            self.detail
        )
    }
}

/// One step, as the invariants see it.
pub struct StepView<'a> {
    pub me: Id,
    /// The state before the step (`None` for a start: the earlier incarnation is gone).
    pub before: Option<&'a State>,
    /// What a start was given from storage (`None` otherwise, or for a fresh start).
    pub saved: Option<&'a Storage>,
    pub after: &'a State,
    pub out: &'a Out<Bully>,
}

impl StepView<'_> {
    /// The promise held before the step: the state's, or a restart's saved one.
    fn promised_before(&self) -> Epoch {
        match (self.before, self.saved) {
            (Some(s), _) => s.promised,
            (None, Some(saved)) => saved.promised,
            (None, None) => Epoch::none(),
        }
    }

    /// Whether the process was in `role` already before the step.
    fn was(&self, role: &Role) -> bool {
        self.before.is_some_and(|s| &s.role == role)
    }
}

/// The first invariant the step breaks, judging the debug-only ones when `thorough`.
pub fn judge(step: &StepView<'_>, thorough: bool) -> Option<Broken> {
    let broken = |invariant, detail: String| {
        Some(Broken {
            invariant,
            process: step.me,
            detail,
        })
    };
    let (me, after) = (step.me, step.after);
    let promised = step.promised_before();
    if after.promised < promised {
        return broken(
            Invariant::PromiseNeverDecreases,
            format!("from {promised} to {}", after.promised),
        );
    }
    match after.role {
        Role::Coordinator { epoch }
            if !step.was(&after.role) && (epoch.leader != me || epoch < after.promised) =>
        {
            return broken(
                Invariant::OfficeWithOwnEpoch,
                format!("took office with {epoch}, promised {}", after.promised),
            );
        }
        Role::Follower { epoch } if !step.was(&after.role) && epoch < promised => {
            return broken(
                Invariant::FollowsNoEpochBelowPromise,
                format!("follows {epoch}, promised {promised}"),
            );
        }
        _ => {}
    }
    let mut sent = false;
    for c in step.out.iter() {
        match c {
            Command::Send(..) => sent = true,
            Command::Save(s) if sent => {
                return broken(
                    Invariant::SavesBeforeSends,
                    format!("saved {s:?} after a send"),
                );
            }
            _ => {}
        }
    }
    if thorough {
        return changes_are_saved(step);
    }
    None
}

/// The debug-only invariant: a step that changes the storage saves exactly the new one, and
/// one that does not change it saves nothing.
fn changes_are_saved(step: &StepView<'_>) -> Option<Broken> {
    let before = step.before.map(State::storage).or(step.saved.cloned());
    let after = step.after.storage();
    let last_save = step.out.iter().rev().find_map(|c| match c {
        Command::Save(s) => Some(s),
        _ => None,
    });
    let fine = match last_save {
        Some(saved) => saved == &after,
        None => before.as_ref() == Some(&after),
    };
    (!fine).then(|| Broken {
        invariant: Invariant::ChangesAreSaved,
        process: step.me,
        detail: format!("storage {after:?} after the step, last save {last_save:?}"),
    })
}

/// What [`Bully::step`] does with a breach: the correct protocol panics with its message; a
/// mutant's step carries it (see the module's documentation).
pub fn assert_only_a_mutant_breaks(variant: Variant, broken: &Broken) {
    assert!(variant != Variant::Correct, "{broken}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Members, Msg, Tag};

    fn state(role: Role, promised: Epoch) -> State {
        State {
            role,
            members: Members::new([Id::from(0), Id::from(1), Id::from(2)]),
            promised,
            tag: Tag::first(1),
            starts: 1,
        }
    }

    fn epoch(round: u32, leader: usize) -> Epoch {
        Epoch {
            round,
            leader: Id::from(leader),
        }
    }

    fn judge_step(before: &State, after: &State, out: &Out<Bully>) -> Option<Invariant> {
        let view = StepView {
            me: Id::from(1),
            before: Some(before),
            saved: None,
            after,
            out,
        };
        judge(&view, true).map(|b| b.invariant)
    }

    /// Each invariant fires on a step planted to break it, and only that one.
    #[test]
    fn each_invariant_fires_on_a_planted_bug() {
        let waiting = state(Role::Waiting, epoch(3, 2));
        let saves = |s: &State| {
            let mut out = Out::new();
            out.save(s.storage());
            out
        };
        let lowered = state(Role::Waiting, epoch(2, 2));
        assert_eq!(
            judge_step(&waiting, &lowered, &saves(&lowered)),
            Some(Invariant::PromiseNeverDecreases)
        );
        let foreign = state(Role::Coordinator { epoch: epoch(4, 2) }, epoch(4, 2));
        assert_eq!(
            judge_step(&waiting, &foreign, &saves(&foreign)),
            Some(Invariant::OfficeWithOwnEpoch)
        );
        let below = state(Role::Coordinator { epoch: epoch(2, 1) }, epoch(3, 2));
        assert_eq!(
            judge_step(&waiting, &below, &Out::new()),
            Some(Invariant::OfficeWithOwnEpoch)
        );
        let stale = state(Role::Follower { epoch: epoch(2, 2) }, epoch(3, 2));
        assert_eq!(
            judge_step(&waiting, &stale, &Out::new()),
            Some(Invariant::FollowsNoEpochBelowPromise)
        );
        let raised = state(Role::Waiting, epoch(4, 2));
        let mut late = Out::new();
        late.send(Id::from(2), Msg::Heartbeat { tag: Tag::first(1) });
        late.save(raised.storage());
        assert_eq!(
            judge_step(&waiting, &raised, &late),
            Some(Invariant::SavesBeforeSends)
        );
        assert_eq!(
            judge_step(&waiting, &raised, &Out::new()),
            Some(Invariant::ChangesAreSaved)
        );
        // The same steps done right break nothing.
        assert_eq!(judge_step(&waiting, &raised, &saves(&raised)), None);
        let office = state(Role::Coordinator { epoch: epoch(4, 1) }, epoch(4, 1));
        assert_eq!(judge_step(&waiting, &office, &saves(&office)), None);
    }

    /// Mutants driven through the one dispatch: each breach is carried by the step.
    #[test]
    fn mutants_that_break_an_invariant_report_it_from_the_step() {
        use crate::protocol::{Durations, Start};
        use crate::step::Event;
        use stateright::actor::Id;
        let members = Members::new([Id::from(0), Id::from(1), Id::from(2)]);
        let actor = |variant| Bully {
            start: Start::Full {
                members: members.clone(),
            },
            timing: Durations::default(),
            variant,
        };
        // A restart that forgets the promise it saved.
        let saved = state(Role::Waiting, epoch(3, 2)).storage();
        let restart = Event::Start {
            storage: Some(saved),
            incarnation: 0,
        };
        let me = Id::from(1);
        let forgets = actor(Variant::ForgetPromise).step(me, None, restart.clone());
        let broken = forgets.and_then(|s| s.broken).map(|b| b.invariant);
        assert_eq!(broken, Some(Invariant::PromiseNeverDecreases));
        let keeps = actor(Variant::Correct).step(me, None, restart).unwrap();
        assert_eq!(keeps.broken, None);
        // Following an announcement below the promise.
        let promised = state(Role::Waiting, epoch(3, 2));
        let stale = Event::Msg {
            src: Id::from(2),
            msg: Msg::Coordinator {
                epoch: epoch(2, 2),
                members: members.clone(),
            },
        };
        let follows = actor(Variant::FollowStaleCoordinator).step(me, Some(&promised), stale);
        let broken = follows.and_then(|s| s.broken).map(|b| b.invariant);
        assert_eq!(broken, Some(Invariant::FollowsNoEpochBelowPromise));
    }

    /// The correct protocol panics with the invariant's message; a mutant does not.
    #[test]
    fn the_correct_protocol_panics_and_a_mutant_reports() {
        let b = Broken {
            invariant: Invariant::PromiseNeverDecreases,
            process: Id::from(1),
            detail: "from 3.2 to 0.0".into(),
        };
        assert_only_a_mutant_breaks(Variant::ForgetPromise, &b);
        let panic = std::panic::catch_unwind(|| assert_only_a_mutant_breaks(Variant::Correct, &b))
            .expect_err("the correct protocol asserts");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert_eq!(
            message,
            "invariant broken by process 1: a promise never decreases (from 3.2 to 0.0)"
        );
    }
}
