//! Run-time invariants on a real node (127.0.0.1): a planted bug that lowers a promise stops
//! the node with the invariant's message before it acts on the step. The bug is the mutant
//! `forget-promise`, whose restart drops the promise it saved.

mod common;

use common::*;
use std::fs;
use std::time::{Duration, Instant};

#[test]
fn a_node_whose_step_lowers_its_promise_stops_with_the_invariants_message() {
    let mut net = Net::new("invariant", 1, 50, 150);
    let id = net.ids[0];
    // Alone, it takes office at once and saves its promise; restarted, it proposes a round
    // above that one. So its promise is round 2, above what an election from nothing reaches.
    for round in 1..=2 {
        net.start_full(id);
        net.wait_agreement(
            "the lone node in office",
            &[id],
            Duration::from_secs(20),
            |c, e| c == id && e.0 == round,
        );
        assert!(net.terminate(id, Duration::from_secs(10)).success());
    }
    let storage = net.dir.join(format!("bully-{id}.json"));
    let promised = fs::read_to_string(&storage).unwrap();
    let steps_before = net.step_lines(id).len();

    let mut args = net.full_args(id);
    args.extend(["--variant".into(), "forget-promise".into()]);
    net.start_with(id, args);
    let mut child = net.procs.remove(&id).expect("started");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node did not stop on the broken invariant");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(!status.success(), "{status:?}");
    let log = fs::read_to_string(net.log(id)).unwrap();
    let message = format!("invariant broken by process {id}: a promise never decreases");
    assert!(log.contains(&message), "{log}");
    // It stopped instead of acting: nothing saved, nothing logged as a step.
    assert_eq!(fs::read_to_string(&storage).unwrap(), promised);
    assert_eq!(net.step_lines(id).len(), steps_before);
}
