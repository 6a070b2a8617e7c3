//! Random schedules of the correct protocol, N = 2..=12, beyond the exhaustive checker's reach.
//!
//! Every step is checked against the model's `always` properties; after each schedule the
//! system settles without faults and must reach the model's liveness goal.
//!
//! * Default run: `cargo test -p bully-proptests --test schedules` (a few seconds).
//! * Soak: `PROPTEST_CASES=50000 cargo test -p bully-proptests --release --test schedules`
//!   (scales every proptest here), and the wider `soak` test:
//!   `cargo test -p bully-proptests --release --test schedules soak -- --ignored --nocapture`.
//! * A failure prints the shrunk schedule as numbered steps and a `BULLY_SCENARIO='…'` line;
//!   replay it with
//!   `BULLY_SCENARIO='…' cargo test -p bully-proptests --test schedules replay -- --ignored --nocapture`.
//!   proptest also records the failing seed in `proptests/proptest-regressions/schedules.txt`
//!   and re-runs it first next time.

use bully_model::system::{Channels, NetworkKind, StartMode, Timing};
use bully_model::Variant;
use bully_proptests::sim::{self, Options, Scenario, Space, SAFETY};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use stateright::{Expectation, Model};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: sim::cases(cases),
        max_shrink_iters: 4_000,
        // Relative to the package directory (cargo runs tests there).
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/schedules.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(6_000))]

    /// Full start: every process knows every member. Up to 2 crashes and 2 recoveries.
    #[test]
    fn full_start(sc in Space::new(2..=12, StartMode::Full).faults(0..=2, 0..=2).strategy()) {
        sc.check(Options::full())?;
    }

    /// Join start: process 0 starts alone, the others know only process 0. Crashes only (with
    /// recoveries: `join_start_with_recoveries`). With at most one crash, every property; with
    /// two, a process may take office not knowing a member whose informants both crashed
    /// (docs, "Known limits"; `model/tests/join.rs`), so only that the group settles.
    #[test]
    fn join_start(sc in Space::new(2..=12, StartMode::Join).faults(0..=2, 0..=0).strategy()) {
        let opts = if sc.config.crashes <= 1 { Options::full() } else { Options::liveness_only() };
        sc.check(opts)?;
    }
}

proptest! {
    #![proptest_config(config(3_000))]

    /// Full start with unordered channels (any message in flight may arrive next): the protocol
    /// does not need FIFO channels.
    #[test]
    fn full_start_unordered_channels(
        sc in Space::new(2..=12, StartMode::Full)
            .faults(0..=2, 0..=2)
            .channels(Channels::Unordered)
            .strategy()
    ) {
        sc.check(Options::full())?;
    }
}

proptest! {
    #![proptest_config(config(1_500))]

    /// A duplicating network keeps safety (liveness is not claimed there: old messages are
    /// redelivered forever).
    #[test]
    fn duplicating_network_keeps_safety(
        sc in Space::new(2..=12, StartMode::Full)
            .faults(0..=2, 0..=2)
            .network(NetworkKind::Duplicating)
            .strategy()
    ) {
        sc.check(Options::safety_only())?;
    }

    /// Join start: crashes only, as in `join_start`, and at most one: with two, `agreement`
    /// may fail for a while on any network (a member whose informants both crashed stays
    /// unknown to the new coordinator: docs, "Known limits"; `model/tests/join.rs`), and on
    /// this one liveness, which `join_start` checks instead, is not claimed.
    #[test]
    fn duplicating_network_keeps_safety_join(
        sc in Space::new(2..=12, StartMode::Join)
            .faults(0..=1, 0..=0)
            .network(NetworkKind::Duplicating)
            .strategy()
    ) {
        sc.check(Options::safety_only())?;
    }
}

proptest! {
    #![proptest_config(config(1_500))]

    /// Join start with crashes and recoveries, what the docs ("Known limits") promise: with
    /// at most one crash, every property; with two, a process that restarts while every member
    /// it knows is down may crown itself beside the others' coordinator for a while (inherent
    /// to joining through one contact), so only that the split brain heals (the group
    /// settles). The schedules the join-mode rules exist for are in `model/tests/join.rs`.
    #[test]
    fn join_start_with_recoveries(
        sc in Space::new(2..=12, StartMode::Join).faults(0..=2, 0..=2).strategy()
    ) {
        let opts = if sc.config.crashes <= 1 { Options::full() } else { Options::liveness_only() };
        sc.check(opts)?;
    }
}

proptest! {
    #![proptest_config(config(1_500))]

    /// Recoveries that may lose their storage (a node without its data directory), full start:
    /// never two coordinators at once, and the group settles. `agreement` and `epoch order` are
    /// not claimed there (docs, "A lost data directory"; `lost_storage_breaks_epoch_order`).
    #[test]
    fn lost_storage_keeps_a_single_coordinator(
        sc in Space::new(2..=12, StartMode::Full)
            .faults(0..=2, 0..=2)
            .lose_storage(true)
            .strategy()
    ) {
        sc.check(Options::full().only("single coordinator"))?;
    }
}

/// What `--lose-storage` gives up: the simulator finds an epoch named by two terms (or a
/// process following a stale announcement).
#[test]
fn lost_storage_breaks_epoch_order() {
    let space = Space::new(2..=6, StartMode::Full)
        .faults(1..=2, 1..=2)
        .lose_storage(true);
    let found = sim::hunt(&space, 2_000, Options::safety_only())
        .expect("a recovery without its promise takes office again at an old epoch");
    println!("{}", found.report());
    assert!(matches!(found.property(), "agreement" | "epoch order"));
    assert!(
        found.report().contains("storage lost"),
        "{}",
        found.report()
    );
}

/// Safety is not expected under a lossy network (a lost reply makes a live peer look dead,
/// which Bully cannot tell from a crash): the simulator must find a violation.
#[test]
fn lossy_network_breaks_safety() {
    let space = Space::new(2..=6, StartMode::Full)
        .faults(0..=1, 0..=1)
        .network(NetworkKind::Lossy);
    let found = sim::hunt(&space, 500, Options::safety_only())
        .expect("a lossy network lets two processes both act as coordinator");
    println!("{}", found.report());
    assert!(matches!(
        found.property(),
        "single coordinator" | "agreement" | "epoch order"
    ));
}

/// Nor under asynchronous timing (a timeout may fire while the answer is on its way).
#[test]
fn async_timing_breaks_safety() {
    let space = Space::new(2..=6, StartMode::Full)
        .faults(0..=1, 0..=1)
        .timing(Timing::Async);
    let found = sim::hunt(&space, 500, Options::safety_only())
        .expect("async timing lets two processes both act as coordinator");
    println!("{}", found.report());
    assert!(matches!(
        found.property(),
        "single coordinator" | "agreement" | "epoch order"
    ));
}

/// The simulator checks exactly the model's `always` properties: if the model gains one,
/// `sim::SAFETY` must list it too.
#[test]
fn safety_properties_are_the_models() {
    for (start, crashes) in [(StartMode::Full, 0), (StartMode::Join, 1)] {
        let model = bully_model::system::Config::new(3)
            .crashes(crashes)
            .start(start)
            .into_model();
        let always: Vec<&str> = model
            .properties()
            .iter()
            .filter(|p| p.expectation == Expectation::Always)
            .map(|p| p.name)
            .collect();
        let ours: Vec<&str> = SAFETY.iter().map(|(name, _)| *name).collect();
        assert_eq!(always, ours, "the model's `always` properties changed");
    }
}

/// A scenario replays identically (the simulator orders enabled actions canonically, so the
/// network's hash order does not matter) and its one-line form round-trips.
#[test]
fn replay_is_deterministic() {
    let text = "-n 5: \
                d3 d17 t2 d5 d9 x4 d1 d1 d2 t0 d7 r0 d3 d3 d8 t1 d0 d4";
    let sc: Scenario = text.parse().expect("parses");
    assert_eq!(sc.to_string(), text);
    let a = sc.run(Options::full());
    let b = sc.run(Options::full());
    assert!(a.ok(), "{}", a.report(&sc));
    let steps = |o: &sim::Outcome| -> Vec<String> {
        o.trace
            .iter()
            .map(|s| bully_model::properties::describe_action(&s.action))
            .collect()
    };
    assert_eq!(steps(&a), steps(&b));
    assert_eq!(sim::fingerprint(&a.last), sim::fingerprint(&b.last));
    assert!(a.settle_steps > 0 || a.schedule_steps() > 0);

    let mutant: Scenario =
        "-n 2 --crashes 0 --recoveries 0 --network duplicating --start join --variant no-halt: d0"
            .parse()
            .expect("parses");
    assert_eq!(mutant.config.variant, Variant::NoHalt);
    assert_eq!(mutant.config.network, NetworkKind::Duplicating);
    assert_eq!(mutant.config.start, StartMode::Join);
    // Without --channels a scenario has FIFO channels.
    assert_eq!(mutant.config.channels, Channels::Fifo);
    let unordered: Scenario = "-n 3 --crashes 0 --recoveries 0 --channels unordered: d0"
        .parse()
        .expect("parses");
    assert_eq!(unordered.config.channels, Channels::Unordered);
    let lost = "-n 3 --lose-storage: d0";
    let lost_sc: Scenario = lost.parse().expect("parses");
    assert!(lost_sc.config.lose_storage && !unordered.config.lose_storage);
    assert_eq!(lost_sc.to_string(), lost);
}

/// A schedule in which a joiner halted by a candidate that then crashes would join without
/// the group's member list (its contact's reply is cut short by the contact's crash), and
/// crown itself beside the coordinator it never heard of, for good. A joiner that
/// acknowledges a HALT stays a joiner until the members come, so the group settles.
#[test]
fn a_halted_joiner_waits_for_the_members() {
    let sc: Scenario = "-n 8 --crashes 2 --recoveries 0 --start join: \
                        d47845 d16227 d37662 x25264 d2186 l10999 x28163"
        .parse()
        .expect("parses");
    let outcome = sc.run(Options::full());
    assert!(outcome.ok(), "{}", outcome.report(&sc));
    let cut = outcome
        .trace
        .iter()
        .any(|s| matches!(s.action, bully_model::system::Action::CutShort(_)));
    assert!(cut, "the schedule cuts the contact's reply short");
}

/// Replays `BULLY_SCENARIO` (the line a failure prints) and prints its steps.
#[test]
#[ignore = "a tool: set BULLY_SCENARIO"]
fn replay() {
    let Ok(text) = std::env::var("BULLY_SCENARIO") else {
        panic!("set BULLY_SCENARIO to a scenario line printed by a failure");
    };
    let sc: Scenario = text.parse().expect("a scenario line");
    let outcome = sc.run(sc.default_options());
    println!("{}", outcome.report(&sc));
    assert!(
        outcome.ok(),
        "the scenario violates a property (steps above)"
    );
}

proptest! {
    #![proptest_config(config(20_000))]

    /// A longer, wider soak: up to 16 processes, 3 crashes and 3 recoveries (full start),
    /// schedules up to 1000 choices.
    #[test]
    #[ignore = "soak: run explicitly (see the module docs)"]
    fn soak_full_start(
        sc in Space::new(2..=16, StartMode::Full).faults(0..=3, 0..=3).steps(0..=1_000).strategy()
    ) {
        sc.check(Options::full())?;
    }

    #[test]
    #[ignore = "soak: run explicitly (see the module docs)"]
    fn soak_join_start(
        sc in Space::new(2..=16, StartMode::Join).faults(0..=3, 0..=0).steps(0..=1_000).strategy()
    ) {
        sc.check(Options::full())?;
    }
}
