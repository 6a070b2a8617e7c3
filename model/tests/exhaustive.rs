//! Exhaustive checks of the correct protocol under Bully's assumptions (sync timing, reliable
//! network; a crash may cut its process's sends short), with one crash and one recovery, in
//! both start modes: with FIFO channels (the
//! default, as ZeroMQ over TCP), and with unordered channels (a stronger adversary) where that
//! graph fits. Each runs with the default engine: symbolic from four processes
//! (`model/src/engine/symbolic.rs`), explicit otherwise (`model/tests/symbolic.rs` shows both
//! engines reach the same states).

mod common;
use bully_model::check::Verdict;
use bully_model::system::{Channels, Config, StartMode};
use common::assert_all_hold_in;

#[test]
fn three_processes_full_start() {
    let r = assert_all_hold_in(Config::new(3), 3856);
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn three_processes_join_start() {
    let r = assert_all_hold_in(Config::new(3).start(StartMode::Join), 46807);
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn three_processes_two_crashes_one_recovery() {
    // Two failovers in one execution.
    let r = assert_all_hold_in(Config::new(3).crashes(2).recoveries(1), 18020);
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn four_processes_full_start_no_faults() {
    let r = assert_all_hold_in(Config::new(4).crashes(0).recoveries(0), 1800);
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn four_processes_full_start_one_crash() {
    // The coordinator (or anyone) crashes and stays down: failover at N=4.
    let r = assert_all_hold_in(Config::new(4).crashes(1).recoveries(0), 16275);
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn four_processes_full_start_crash_and_recovery() {
    let r = assert_all_hold_in(Config::new(4), 667_026);
    assert_eq!(r.engine, "symbolic", "the default engine at N=4");
    println!("{}", bully_model::check::render(&r));
}

/// Every verdict, symbolically, without the paths to the `sometimes` examples (the symbolic
/// engine would search again for them, about as long again).
fn assert_every_verdict(cfg: Config, states: usize) {
    let opts = bully_model::check::Options {
        example_paths: false,
        ..common::quiet()
    };
    let r = bully_model::check::run(&cfg, &opts);
    assert!(r.ok(), "{}", bully_model::check::render(&r));
    assert_eq!(r.engine, "symbolic");
    assert_eq!(r.unique_states, states, "{cfg}: the state count changed");
    for p in &r.properties {
        assert!(
            matches!(p.verdict, Verdict::Holds | Verdict::Reached),
            "{}: {:?}",
            p.name,
            p.verdict
        );
    }
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn four_processes_join_start_crash_and_recovery() {
    // The members each process knows make many process states: 525 k combinations. About
    // 1.7 minutes on two threads, the longest test of the suite.
    assert_every_verdict(Config::new(4).start(StartMode::Join), 246_710_132);
}

#[test]
fn five_processes_full_start_crash_and_recovery() {
    // N=5 with a crash and a recovery, every verdict: under a minute on two idle threads,
    // longer beside the suite's other tests.
    assert_every_verdict(Config::new(5), 1_818_106_294);
}

#[test]
fn five_processes_full_start_one_crash() {
    // The crash of any of five processes, every interleaving.
    let r = assert_all_hold_in(Config::new(5).crashes(1).recoveries(0), 2_711_066);
    assert_eq!(r.engine, "symbolic");
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn six_processes_full_start_no_faults() {
    // The simultaneous start of six processes, every interleaving.
    let r = assert_all_hold_in(Config::new(6).crashes(0).recoveries(0), 18_262_512);
    assert_eq!(r.engine, "symbolic");
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn unordered_channels_three_processes_full_start() {
    let r = assert_all_hold_in(Config::new(3).channels(Channels::Unordered), 23315);
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn unordered_channels_three_processes_join_start() {
    let r = assert_all_hold_in(
        Config::new(3)
            .channels(Channels::Unordered)
            .start(StartMode::Join),
        167_766,
    );
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn unordered_channels_four_processes_one_crash() {
    let r = assert_all_hold_in(
        Config::new(4)
            .channels(Channels::Unordered)
            .crashes(1)
            .recoveries(0),
        90_420,
    );
    println!("{}", bully_model::check::render(&r));
}

#[test]
fn two_processes_join_start() {
    assert_all_hold_in(Config::new(2).start(StartMode::Join), 151);
}

#[test]
fn two_processes_two_crashes_two_recoveries() {
    assert_all_hold_in(Config::new(2).crashes(2).recoveries(2), 1172);
}
