//! Teeth: every mutant of the model, run in the simulator, violates a property within a bounded
//! number of generated cases (a fixed seed, so the search is reproducible).
//!
//! Which configuration catches which mutant, and with which property:
//!
//! | mutant                    | configuration                               | property           |
//! |---------------------------|---------------------------------------------|--------------------|
//! | NeverAnswer               | full start, N 2–6, 1 crash                  | settled            |
//! | LowestWins                | full start, N 2–12, no faults               | settled            |
//! | SkipCoordinatorBroadcast  | full start, N 2–12, no faults               | settled            |
//! | NoWaitForAnswers          | full start, N 3–12, no faults               | single coordinator or agreement |
//! | IgnoreHeartbeatTimeout    | full start, N 2–12, 1 crash                 | settled            |
//! | ReuseEpoch                | full start, N 3–8, 1 crash                  | settled            |
//! | NoHalt                    | full start, N 2–8, 1 crash, 1 recovery      | agreement or single coordinator |
//! | ForgetPromise             | full start, N 2–6, 1 crash, 1 recovery      | epoch order (or agreement, single coordinator) |
//! | FollowStaleCoordinator    | full start, N 3–6, 1 crash, 1 recovery      | epoch order (or agreement, single coordinator) |
//!
//!
//! Run: `cargo test -p bully-proptests --test mutants -- --nocapture` prints each shrunk
//! counterexample as numbered steps.

use bully_model::system::StartMode;
use bully_model::Variant;
use bully_proptests::sim::{self, Options, Space};
use std::time::Instant;

/// Where and how long to look for each mutant, and which properties may catch it.
fn plan(v: Variant) -> (Space, u32, &'static [&'static str]) {
    match v {
        Variant::NeverAnswer => (
            Space::new(2..=6, StartMode::Full).faults(1..=1, 0..=0),
            200,
            &["settled"],
        ),
        Variant::LowestWins => (Space::new(2..=12, StartMode::Full), 50, &["settled"]),
        Variant::SkipCoordinatorBroadcast => {
            (Space::new(2..=12, StartMode::Full), 50, &["settled"])
        }
        Variant::NoWaitForAnswers => (
            Space::new(3..=12, StartMode::Full),
            1_000,
            &["single coordinator", "agreement"],
        ),
        Variant::IgnoreHeartbeatTimeout => (
            Space::new(2..=12, StartMode::Full).faults(1..=1, 0..=0),
            300,
            &["settled"],
        ),
        Variant::ReuseEpoch => (
            Space::new(3..=8, StartMode::Full).faults(1..=1, 0..=0),
            300,
            &["settled", "epoch order"],
        ),
        Variant::NoHalt => (
            Space::new(2..=8, StartMode::Full).faults(1..=1, 1..=1),
            300,
            &["agreement", "single coordinator"],
        ),
        Variant::ForgetPromise => (
            Space::new(2..=6, StartMode::Full).faults(1..=1, 1..=1),
            300,
            &["epoch order", "agreement", "single coordinator"],
        ),
        Variant::FollowStaleCoordinator => (
            Space::new(3..=6, StartMode::Full).faults(1..=1, 1..=1),
            3_000,
            &["epoch order", "agreement", "single coordinator"],
        ),
        Variant::Correct => unreachable!("not a mutant"),
        #[allow(unreachable_patterns)]
        other => panic!("no simulator plan for the new mutant {other:?}: add one to plan()"),
    }
}

fn caught(v: Variant) {
    let (space, cases, expected) = plan(v);
    let started = Instant::now();
    let found = sim::hunt(&space.variant(v), cases, Options::full())
        .unwrap_or_else(|| panic!("the simulator did not catch {v:?} within {cases} cases"));
    println!(
        "{v:?}: caught by `{}` in {:.1}s\n{}",
        found.property(),
        started.elapsed().as_secs_f64(),
        found.report()
    );
    assert!(
        expected.contains(&found.property()),
        "{v:?} was caught by `{}`, expected one of {expected:?}:\n{}",
        found.property(),
        found.report()
    );
}

#[test]
fn every_mutant_has_a_plan() {
    for v in Variant::MUTANTS {
        let (_, cases, expected) = plan(v);
        assert!(cases > 0 && !expected.is_empty());
    }
}

#[test]
fn never_answer() {
    caught(Variant::NeverAnswer);
}

#[test]
fn lowest_wins() {
    caught(Variant::LowestWins);
}

#[test]
fn skip_coordinator_broadcast() {
    caught(Variant::SkipCoordinatorBroadcast);
}

#[test]
fn no_wait_for_answers() {
    caught(Variant::NoWaitForAnswers);
}

#[test]
fn ignore_heartbeat_timeout() {
    caught(Variant::IgnoreHeartbeatTimeout);
}

#[test]
fn reuse_epoch() {
    caught(Variant::ReuseEpoch);
}

#[test]
fn no_halt() {
    caught(Variant::NoHalt);
}

#[test]
fn forget_promise() {
    caught(Variant::ForgetPromise);
}

#[test]
fn follow_stale_coordinator() {
    caught(Variant::FollowStaleCoordinator);
}

/// The correct protocol passes the very searches that catch the mutants (so each catch is the
/// mutant's doing, not the configuration's).
#[test]
fn correct_protocol_passes_every_plan() {
    for v in Variant::MUTANTS {
        let (space, cases, _) = plan(v);
        if let Some(found) = sim::hunt(&space.variant(Variant::Correct), cases, Options::full()) {
            panic!(
                "the correct protocol fails the plan for {v:?}:\n{}",
                found.report()
            );
        }
    }
}
