//! Cross-check: for N ≤ 3, every state the simulator reaches (schedule and settling phases) is
//! one the exhaustive exploration of the same model reaches. This ties the simulator to the
//! checker: it neither invents transitions nor applies actions the model does not enable.
//!
//! The exploration is a plain breadth-first search over `Model::actions`/`next_state`, keyed by
//! [`sim::fingerprint`] (fixed hasher seeds). Sizes (FIFO channels, the default): N=2 with 1
//! crash and 1 recovery has a few hundred states, N=3 a few thousand to ten thousand; N=3 with
//! unordered channels and 1 crash and 1 recovery about 345 thousand (a few seconds).
//! `PROPTEST_CASES=…` changes the number of random schedules per configuration.

use bully_model::system::{BullySystem, StartMode};
use bully_proptests::sim::{self, Options, Scenario, Space};
use proptest::test_runner::{
    Config as ProptestConfig, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};
use stateright::Model;
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::time::Instant;

/// Class weights (deliver, timer, lose, crash, recover) for the cross-check.
const FAULT_HEAVY: [u32; 5] = [50, 20, 0, 15, 15];

/// Fingerprints of every state reachable in `model`.
fn reachable(model: &BullySystem) -> HashSet<u64> {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::new();
    for s in model.init_states() {
        if seen.insert(sim::fingerprint(&s)) {
            queue.push_back(s);
        }
    }
    let mut actions = Vec::new();
    while let Some(s) = queue.pop_front() {
        actions.clear();
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(next) = model.next_state(&s, a) {
                if seen.insert(sim::fingerprint(&next)) {
                    queue.push_back(next);
                }
            }
        }
    }
    seen
}

/// Runs `cases` random schedules of `space` (which must fix N and the fault budgets) and fails
/// with the shrunk schedule if one reaches a state outside the exhaustive exploration.
fn crosscheck(space: Space, cases: u32) {
    let probe = {
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = TestRunner::deterministic();
        space.strategy().new_tree(&mut runner).unwrap().current()
    };
    assert!(
        space.processes.start() == space.processes.end()
            && space.crashes.start() == space.crashes.end()
            && space.recoveries.start() == space.recoveries.end(),
        "the space must fix N and the budgets: they are part of the explored model"
    );
    let model = probe.model();
    // Faults early and often: the states after a quick crash and recovery are the ones default
    // weights rarely reach.
    let space = space.weights(FAULT_HEAVY);
    let started = Instant::now();
    let states = reachable(&model);
    let explored_in = started.elapsed();

    let config = ProptestConfig {
        cases: sim::cases(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let visited: RefCell<HashSet<u64>> = RefCell::default();
    let result = runner.run(&space.strategy(), |sc: Scenario| {
        let mut outside = None;
        let mut steps = 0usize;
        let outcome = sim::run(&model, &sc.schedule, Options::full(), |s| {
            let fp = sim::fingerprint(s);
            if outside.is_none() && !states.contains(&fp) {
                outside = Some((steps, bully_model::check::describe_state(s)));
            }
            visited.borrow_mut().insert(fp);
            steps += 1;
        });
        match outside {
            None => Ok(()),
            Some((step, state)) => Err(TestCaseError::fail(format!(
                "after step {step} the simulator reached a state the exhaustive exploration \
                 does not: {state}\n{}",
                outcome.report(&sc)
            ))),
        }
    });
    println!(
        "{}: {} reachable states (explored in {:.2}s); {} cases visited {} distinct states ({:.1}%) in {:.2}s",
        model.cfg,
        states.len(),
        explored_in.as_secs_f64(),
        sim::cases(cases),
        visited.borrow().len(),
        100.0 * visited.borrow().len() as f64 / states.len() as f64,
        started.elapsed().as_secs_f64() - explored_in.as_secs_f64(),
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn two_processes_full_start_with_crash_and_recovery() {
    crosscheck(
        Space::new(2..=2, StartMode::Full)
            .faults(1..=1, 1..=1)
            .steps(0..=40),
        20_000,
    );
}

#[test]
fn two_processes_join_start_with_crash_and_recovery() {
    crosscheck(
        Space::new(2..=2, StartMode::Join)
            .faults(1..=1, 1..=1)
            .steps(0..=40),
        20_000,
    );
}

#[test]
fn three_processes_full_start() {
    crosscheck(Space::new(3..=3, StartMode::Full).steps(0..=60), 20_000);
}

#[test]
fn three_processes_join_start() {
    crosscheck(Space::new(3..=3, StartMode::Join).steps(0..=60), 20_000);
}

#[test]
fn three_processes_full_start_with_crash() {
    crosscheck(
        Space::new(3..=3, StartMode::Full)
            .faults(1..=1, 0..=0)
            .steps(0..=60),
        20_000,
    );
}

#[test]
fn three_processes_full_start_with_crash_and_recovery() {
    crosscheck(
        Space::new(3..=3, StartMode::Full)
            .faults(1..=1, 1..=1)
            .steps(0..=80),
        20_000,
    );
}

/// The largest: unordered channels, about 345 thousand states.
#[test]
fn three_processes_unordered_channels_with_crash_and_recovery() {
    crosscheck(
        Space::new(3..=3, StartMode::Full)
            .faults(1..=1, 1..=1)
            .channels(bully_model::system::Channels::Unordered)
            .steps(0..=80),
        20_000,
    );
}
