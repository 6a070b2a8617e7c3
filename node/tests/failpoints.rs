//! Crash injection where no outside `kill -9` can aim (node/src/failpoints.rs, compiled into
//! the tests' node binary): between a step's durable write and its first send, and between two
//! sends of one broadcast. The model has both: a step's save comes first (persist before send),
//! and a crash may cut short what its process sent (`crash cuts a broadcast short`).

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

const H: u64 = 100;
const T: u64 = 300;
const SETTLE: Duration = Duration::from_secs(20);

/// Waits (bounded) until node `id` exits on its own; its exit status.
fn wait_exit(net: &mut Net, id: u64, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        let child = net.procs.get_mut(&id).expect("started");
        if let Some(status) = child.try_wait().unwrap() {
            net.procs.remove(&id);
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{id} did not crash within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The promise in `bully-<id>.json`.
fn promise_on_disk(net: &Net, id: u64) -> Option<Epoch> {
    let text = std::fs::read_to_string(net.dir.join(format!("bully-{id}.json"))).ok()?;
    let v: Value = serde_json::from_str(&text).unwrap();
    epoch_of(&v["storage"]["promised"])
}

/// The highest epoch `id` ever acknowledged (a `halt_ack` it sent), by its step log.
fn acknowledged(net: &Net, id: u64) -> Option<Epoch> {
    net.step_lines(id)
        .iter()
        .flat_map(|s| &s.commands)
        .filter_map(|c| match c {
            Cmd::Send {
                msg: Msg::HaltAck { epoch: e, .. },
                ..
            } => Some(epoch(*e)),
            _ => None,
        })
        .max()
}

/// The middle node dies right after making the new candidate's promise durable and before its
/// acknowledgement leaves; restarted, it has the promise, acknowledges from it, and the
/// candidate takes office. No node's file is ever behind a promise it acknowledged.
#[test]
fn a_crash_between_the_durable_write_and_the_ack_loses_no_promise() {
    let mut net = Net::new("fp-save", 3, H, T);
    let ids = net.ids.clone();
    let (low, mid, top) = (ids[0], ids[1], ids[2]);
    net.start_full(low);
    let args = net.full_args(mid);
    net.start_with_env(
        mid,
        args,
        &[("FAILPOINTS", "after-save-before-send=return(halt_ack)")],
    );
    net.wait_agreement("the two lower nodes", &[low, mid], SETTLE, |c, _| c == mid);

    // The highest starts and halts both: the middle one saves its promise and dies.
    net.start_full(top);
    let status = wait_exit(&mut net, mid, SETTLE);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    let steps = net.step_lines(mid);
    let last = steps.last().unwrap();
    let Event::Msg {
        msg: Msg::Halt { epoch: halt },
        ..
    } = last.event.event
    else {
        panic!("the last step handles a halt: {last:?}");
    };
    let promised = epoch(halt);
    assert!(matches!(last.commands[0], Cmd::Save { .. }), "{last:?}");
    assert_eq!(promise_on_disk(&net, mid), Some(promised));

    // Restarted without crash injection, it starts from that promise.
    net.start_full(mid);
    let ((c, e), _) = net.wait_agreement("the highest in office", &ids, SETTLE, |c, _| c == top);
    eprintln!("after the crash between save and ack: {c} leads at {e:?}");
    let restart = net
        .step_lines(mid)
        .into_iter()
        .filter_map(|s| match s.event.event {
            Event::Start { storage, .. } => Some(storage),
            _ => None,
        })
        .nth(1)
        .expect("a second start of the middle node");
    assert_eq!(restart.map(|s| epoch(s.promised)), Some(promised));
    assert!(e >= promised);

    // Never behind what was acknowledged, and saves always came first.
    let mut steps_with_both = 0;
    for &id in &ids {
        if let Some(acked) = acknowledged(&net, id) {
            let on_disk = promise_on_disk(&net, id).unwrap();
            assert!(
                on_disk >= acked,
                "{id}: {on_disk:?} behind its ack of {acked:?}"
            );
        }
        steps_with_both += net.saves_before_sends(id);
    }
    assert!(steps_with_both > 0);
}

/// The highest of four dies between the first and the second COORDINATOR of its broadcast:
/// one lower node follows it, the others never hear of it. They elect among themselves; the
/// restarted highest takes over again.
#[test]
fn a_broadcast_cut_short_by_a_crash_heals() {
    let mut net = Net::new("fp-broadcast", 4, H, T);
    let ids = net.ids.clone();
    let top = ids[3];
    for &id in &ids[..3] {
        net.start_full(id);
    }
    net.wait_agreement("the three lower nodes", &ids[..3], SETTLE, |c, _| {
        c == ids[2]
    });
    let args = net.full_args(top);
    net.start_with_env(
        top,
        args,
        &[("FAILPOINTS", "mid-broadcast=return(coordinator)")],
    );
    let status = wait_exit(&mut net, top, SETTLE);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    let steps = net.step_lines(top);
    let last = steps.last().unwrap();
    let sent: Vec<&Cmd> = last
        .commands
        .iter()
        .filter(|c| {
            matches!(
                c,
                Cmd::Send {
                    msg: Msg::Coordinator { .. },
                    ..
                }
            )
        })
        .collect();
    assert_eq!(sent.len(), 3, "{last:?}");

    // Some lower nodes took the announcement in, some never got it.
    let got: Vec<u64> = ids[..3]
        .iter()
        .copied()
        .filter(|&id| {
            net.step_lines(id).iter().any(|s| {
                matches!(
                    &s.event.event,
                    Event::Msg { src, msg: Msg::Coordinator { .. } } if *src == Id::from(top as usize)
                )
            })
        })
        .collect();
    eprintln!(
        "the crashed highest's COORDINATOR reached {got:?} of {:?}",
        &ids[..3]
    );
    assert!(!got.is_empty() && got.len() < 3, "reached {got:?}");

    // The survivors heal, and the restarted highest takes over.
    net.wait_agreement("the survivors", &ids[..3], SETTLE, |c, _| c == ids[2]);
    net.start_full(top);
    net.wait_agreement("the restarted highest", &ids, SETTLE, |c, _| c == top);
}
