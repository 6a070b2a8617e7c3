//! Crashes that cut sends short (`Config::truncation`, on by default): a `kill -9` discards the
//! frames still queued in the dead process, so while a process is down any suffix of what it
//! sent on each connection may be lost. The node does this for real (node/tests/failpoints.rs);
//! here: the `sometimes` property that shows it happens is honest, and every property holds
//! with it (exhaustive.rs checks the default configurations, which include it).

mod common;

use bully_model::check::{self, Verdict};
use bully_model::properties::broadcast_cut;
use bully_model::system::{Config, StartMode, SysState};
use common::{assert_all_hold, quiet};
use stateright::Model;
use std::collections::{HashSet, VecDeque};

const CUT: &str = "crash cuts a broadcast short";

/// Every reachable state of `cfg`.
fn states(cfg: Config) -> Vec<SysState> {
    let model = cfg.into_model();
    let mut seen: HashSet<SysState> = HashSet::new();
    let mut queue: VecDeque<SysState> = model.init_states().into();
    let mut out = Vec::new();
    let mut actions = Vec::new();
    while let Some(s) = queue.pop_front() {
        if !seen.insert(s.clone()) {
            continue;
        }
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(next) = model.next_state(&s, a) {
                if !seen.contains(&next) {
                    queue.push_back(next);
                }
            }
        }
        out.push(s);
    }
    out
}

/// The example the checker gives is a broadcast cut short: a crash, then a COORDINATOR of the
/// crashed process lost in its queue.
#[test]
fn the_example_is_a_coordinator_lost_with_its_crashed_sender() {
    for cfg in [Config::new(3), Config::new(4).crashes(1).recoveries(0)] {
        let r = assert_all_hold(cfg.clone());
        let steps = r.property(CUT).and_then(|p| p.steps.clone()).unwrap();
        let crash = steps.iter().position(|s| s.contains("crashes")).unwrap();
        let cut = steps
            .iter()
            .position(|s| s.contains("lost in crashed") && s.contains("Coordinator"))
            .unwrap_or_else(|| panic!("{cfg}: no cut COORDINATOR in {steps:#?}"));
        assert!(crash < cut, "{steps:#?}");
    }
}

/// The property's state predicate never holds where nothing can be cut short: no false
/// example. (Without truncation the property is not registered; its predicate is asked here
/// directly, in every reachable state.)
#[test]
fn without_truncation_no_state_shows_a_cut_broadcast() {
    for cfg in [
        Config::new(3),
        Config::new(3).start(StartMode::Join),
        Config::new(3).crashes(2).recoveries(1),
        Config::new(4).crashes(1).recoveries(0),
    ] {
        let cfg = cfg.truncation(false);
        let model = cfg.clone().into_model();
        assert!(model.properties().iter().all(|p| p.name != CUT));
        let all = states(cfg.clone());
        assert!(all.len() > 1000, "{cfg}");
        let bad = all.iter().find(|s| broadcast_cut(&model, s));
        assert!(bad.is_none(), "{cfg}: {bad:?}");
    }
}

/// Truncation adds behaviours (states), never a failure: the same verdicts with and without.
#[test]
fn truncation_adds_states_and_keeps_every_verdict() {
    for cfg in [Config::new(3), Config::new(3).start(StartMode::Join)] {
        let with = check::run(&cfg, &quiet());
        let without = check::run(&cfg.clone().truncation(false), &quiet());
        assert!(with.ok() && without.ok(), "{cfg}");
        assert!(with.unique_states > without.unique_states, "{cfg}");
        assert_eq!(with.verdict(CUT), Some(&Verdict::Reached));
        assert_eq!(without.verdict(CUT), None);
        for p in &without.properties {
            assert_eq!(with.verdict(&p.name), Some(&p.verdict), "{cfg}: {}", p.name);
        }
    }
}
