//! Every property has teeth: each deliberately broken variant is rejected by the checker,
//! and by the property that guards what it breaks.

mod common;
use bully_model::system::Config;
use bully_model::Variant;
use common::assert_violated;

fn n3(crashes: u8, recoveries: u8, v: Variant) -> Config {
    Config::new(3)
        .crashes(crashes)
        .recoveries(recoveries)
        .variant(v)
}

#[test]
fn never_answering_leaves_askers_waiting_forever() {
    // With accurate failure detection an unanswered ELECTION to a live process never times
    // out, so the asker is stuck once the coordinator it replaced is gone.
    assert_violated(n3(1, 0, Variant::NeverAnswer), "liveness", false);
}

#[test]
fn lowest_wins_is_not_the_highest_live() {
    assert_violated(n3(0, 0, Variant::LowestWins), "liveness", false);
}

#[test]
fn skipping_the_coordinator_broadcast_leaves_nobody_following() {
    assert_violated(
        n3(0, 0, Variant::SkipCoordinatorBroadcast),
        "liveness",
        false,
    );
}

#[test]
fn not_waiting_for_answers_crowns_two() {
    assert_violated(
        n3(0, 0, Variant::NoWaitForAnswers),
        "single coordinator",
        true,
    );
}

#[test]
fn ignoring_heartbeat_timeouts_never_replaces_a_dead_coordinator() {
    assert_violated(n3(1, 0, Variant::IgnoreHeartbeatTimeout), "liveness", false);
}

#[test]
fn reusing_an_epoch_breaks_epoch_order() {
    assert_violated(n3(1, 1, Variant::ReuseEpoch), "epoch order", true);
}

#[test]
fn without_the_halt_phase_a_recovered_process_and_the_old_coordinator_both_lead() {
    // The textbook three-message form, perfect timing: Crash, take over, Recover.
    assert_violated(n3(1, 1, Variant::NoHalt), "single coordinator", true);
}

#[test]
fn forgetting_the_saved_promise_breaks_epoch_order() {
    // A restarted process accepts an epoch below one it had already promised.
    assert_violated(n3(1, 1, Variant::ForgetPromise), "epoch order", true);
}

#[test]
fn following_a_stale_coordinator_breaks_epoch_order() {
    // `agreement` fails first (a crash that cuts a HALT short makes it two steps shorter), so
    // the search explores on to the `epoch order` counterexample.
    assert_violated(
        n3(1, 1, Variant::FollowStaleCoordinator),
        "epoch order",
        false,
    );
}

#[test]
fn every_variant_but_the_correct_one_is_a_listed_mutant() {
    // A variant added without being listed in MUTANTS would escape the proptests' teeth.
    use clap::ValueEnum;
    for v in Variant::value_variants() {
        assert_eq!(
            *v != Variant::Correct,
            Variant::MUTANTS.contains(v),
            "{v:?} must be listed in Variant::MUTANTS exactly when it is not Correct"
        );
    }
}
