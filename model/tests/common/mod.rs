//! Shared helpers for the model's tests.
#![allow(dead_code)]

use bully_model::check::{self, Options, Report, Verdict};
use bully_model::system::Config;

pub fn quiet() -> Options {
    Options {
        progress_every: None,
        ..Options::default()
    }
}

/// Runs the full check and asserts that every property holds and every `sometimes` is reached.
pub fn assert_all_hold(cfg: Config) -> Report {
    let r = check::run(&cfg, &quiet());
    assert!(r.ok(), "{}", check::render(&r));
    assert_eq!(r.verdict("liveness"), Some(&Verdict::Holds));
    for p in &r.properties {
        if p.kind == "sometimes" {
            assert_eq!(p.verdict, Verdict::Reached, "{} not reached", p.name);
        }
    }
    assert!(r.unique_states > 0);
    r
}

/// [`assert_all_hold`], and that the search saw exactly `states` unique states: a change that
/// silently grows or shrinks the graph (a new behaviour, a lost one) is noticed and explained.
pub fn assert_all_hold_in(cfg: Config, states: usize) -> Report {
    let r = assert_all_hold(cfg.clone());
    assert_eq!(r.unique_states, states, "{cfg}: the state count changed");
    r
}

/// Runs the check and asserts that `property` is violated, returning the report.
pub fn assert_violated(cfg: Config, property: &str, stop_early: bool) -> Report {
    let opts = Options {
        keep_going: !stop_early,
        liveness: property == "liveness",
        ..quiet()
    };
    let r = check::run(&cfg, &opts);
    assert_eq!(
        r.verdict(property),
        Some(&Verdict::Violated),
        "expected `{property}` violated for {}:\n{}",
        cfg,
        check::render(&r)
    );
    let steps = r.property(property).and_then(|p| p.steps.as_ref());
    assert!(
        steps.is_some_and(|s| !s.is_empty()),
        "a violation comes with its counterexample"
    );
    assert!(!r.ok());
    r
}
