//! Bully is safe only under bounded delay and accurate failure detection. Drop either and the
//! checker finds two coordinators at once: Bully's known limit, shown, not hidden.

mod common;
use bully_model::system::{Config, NetworkKind, Timing};
use common::assert_violated;

#[test]
fn asynchronous_timing_elects_two_coordinators() {
    let r = assert_violated(
        Config::new(2)
            .crashes(0)
            .recoveries(0)
            .timing(Timing::Async),
        "single coordinator",
        true,
    );
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn lossy_network_elects_two_coordinators() {
    let r = assert_violated(
        Config::new(3)
            .crashes(0)
            .recoveries(0)
            .network(NetworkKind::Lossy),
        "single coordinator",
        true,
    );
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn duplicating_network_keeps_safety_with_crash_only() {
    // Duplicates alone do not fool the failure detector (only crashes count there).
    let r = bully_model::check::run(
        &Config::new(2).network(NetworkKind::Duplicating),
        &bully_model::check::Options {
            liveness: false,
            ..common::quiet()
        },
    );
    assert_eq!(
        r.verdict("single coordinator"),
        Some(&bully_model::check::Verdict::Holds),
        "{}",
        bully_model::check::render(&r)
    );
}
