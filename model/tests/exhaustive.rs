//! Exhaustive checks of the correct protocol under Bully's assumptions (sync timing, reliable
//! network), with one crash and one recovery, in both start modes.

mod common;
use bully_model::system::{Config, StartMode};
use common::assert_all_hold;

#[test]
fn three_processes_full_start() {
    let r = assert_all_hold(Config::new(3));
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn three_processes_join_start() {
    let r = assert_all_hold(Config::new(3).start(StartMode::Join));
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn three_processes_two_crashes_one_recovery() {
    // Two failovers in one execution (738 k states with the dead-message reduction).
    let r = assert_all_hold(Config::new(3).crashes(2).recoveries(1));
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn four_processes_full_start_no_faults() {
    // N=4 with a crash *and* a recovery is beyond this machine (see README, "Scale").
    let r = assert_all_hold(Config::new(4).crashes(0).recoveries(0));
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn four_processes_full_start_one_crash() {
    // The coordinator (or anyone) crashes and stays down: failover at N=4, 1.26 M states.
    let r = assert_all_hold(Config::new(4).crashes(1).recoveries(0));
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn two_processes_join_start() {
    assert_all_hold(Config::new(2).start(StartMode::Join));
}

#[test]
fn two_processes_two_crashes_two_recoveries() {
    assert_all_hold(Config::new(2).crashes(2).recoveries(2));
}
