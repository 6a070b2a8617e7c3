//! What a recovery that loses its storage allows (`--lose-storage`): a node run without
//! `--data-dir`, or whose data directory is gone, restarts as if it had never run. The node
//! keeps such a start's tags new (they are numbered from its clock), so the checker's tag
//! renaming still holds (`renaming.rs`); what is lost is the promise. These tests pin down the
//! checker's verdict, which docs/src/assumptions.md ("A lost data directory") quotes.

mod common;
use bully_model::check::{self, Options, Report, Verdict};
use bully_model::system::{Config, StartMode};

const LOST: &str = "recovers with its storage lost";

fn check_all(cfg: &Config) -> Report {
    check::run(
        cfg,
        &Options {
            keep_going: true,
            ..common::quiet()
        },
    )
}

/// The counterexample to `property`, which must go through a recovery that lost its storage.
fn counterexample(r: &Report, property: &str) -> Vec<String> {
    assert_eq!(
        r.verdict(property),
        Some(&Verdict::Violated),
        "{}",
        check::render(r)
    );
    let steps = r.property(property).and_then(|p| p.steps.clone());
    let steps = steps.expect("a violation comes with its counterexample");
    assert!(
        steps.iter().any(|s| s.contains(LOST)),
        "the counterexample to `{property}` loses a storage: {steps:#?}"
    );
    steps
}

#[test]
fn a_lost_promise_lets_a_restarted_coordinator_take_office_again_at_its_old_epoch() {
    let cfg = Config::new(3).lose_storage(true);
    let r = check_all(&cfg);
    // Two coordinators never act at once, and everyone agrees on who leads.
    assert_eq!(r.verdict("single coordinator"), Some(&Verdict::Holds));
    assert_eq!(r.verdict("agreement"), Some(&Verdict::Holds));
    assert_eq!(r.verdict("liveness"), Some(&Verdict::Holds));
    // But an epoch no longer names one term: the restarted process proposes round 1 again.
    let steps = counterexample(&r, "epoch order");
    println!("{}", steps.join("\n"));
    assert_eq!(r.unique_states, 10_264, "{cfg}: the state count changed");
    // The same configuration with storage kept: every property holds.
    let kept = check_all(&Config::new(3));
    assert!(kept.ok(), "{}", check::render(&kept));
}

#[test]
fn with_two_crashes_a_lost_promise_lets_a_process_follow_a_stale_announcement() {
    let cfg = Config::new(3).crashes(2).recoveries(2).lose_storage(true);
    let r = check_all(&cfg);
    assert_eq!(r.verdict("single coordinator"), Some(&Verdict::Holds));
    assert_eq!(r.verdict("liveness"), Some(&Verdict::Holds));
    // A process that forgot it promised a higher candidate follows a lower one's
    // announcement, which its promise would have refused.
    let steps = counterexample(&r, "agreement");
    println!("{}", steps.join("\n"));
}

#[test]
fn in_join_mode_a_first_coordinator_that_loses_its_storage_crowns_itself_again() {
    let cfg = Config::new(3).start(StartMode::Join).lose_storage(true);
    let r = check_all(&cfg);
    // Process 0 starts alone, as the exercise's first coordinator does, beside the one the
    // group elected meanwhile (the two merge through their announcements: liveness holds).
    let steps = counterexample(&r, "single coordinator");
    println!("{}", steps.join("\n"));
    assert_eq!(r.verdict("liveness"), Some(&Verdict::Holds));
}
