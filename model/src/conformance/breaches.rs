//! Where a run left the model's assumptions, named.
//!
//! Bully is safe only under bounded delay and an accurate failure detector: a process that
//! does not run for longer than the timeout looks dead to its peers while it lives. The
//! checked model assumes it never happens (`--timing sync`); a real run can leave that
//! assumption (SIGSTOP, a starved CPU). The logs show it without any clock shared between
//! nodes: each node's own step times (`t_ms`) and the timers its handler set say when it
//! should have run next.

use super::{n, NodeLog, Pos, Step};
use crate::{Cmd, Event, Timer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Which assumption was left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreachKind {
    /// A process did not run for longer than the timeout past a due timer (paused with
    /// SIGSTOP, or starved): its peers may presume it down while it lives, so two nodes may
    /// be in office at once (the epoch fences them).
    Stalled,
    /// A frame between two live processes was dropped while its receiver was stalled: the
    /// sender's queue toward it filled, or the sender presumed it down (its connection was
    /// silent longer than the delay bound), and the frame was lost.
    LostToStall,
}

impl fmt::Display for BreachKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreachKind::Stalled => "stalled past the timeout",
            BreachKind::LostToStall => "frame lost to a stalled receiver",
        })
    }
}

/// One assumption breach: what, where (the step after which it shows) and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct Breach {
    pub kind: BreachKind,
    pub node: u64,
    pub seq: u64,
    /// 0-based incarnation of the node.
    pub incarnation: usize,
    pub file: PathBuf,
    pub line: usize,
    /// How long the assumption was left, in milliseconds (of the stalled node's clock).
    pub ms: u64,
    pub what: String,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at node {} seq {} (incarnation {}, {}:{}), {} ms: {}",
            self.kind,
            self.node,
            self.seq,
            self.incarnation,
            self.file.display(),
            self.line,
            self.ms,
            self.what
        )
    }
}

pub(super) fn breach(kind: BreachKind, step: &Step, inc: usize, ms: u64, what: String) -> Breach {
    Breach {
        kind,
        node: n(step.node),
        seq: step.seq,
        incarnation: inc,
        file: step.source.0.clone(),
        line: step.source.1,
        ms,
        what,
    }
}

/// A stretch of one incarnation in which the process did not run: from the step at `from` to
/// the next one (`from.1 + 1`), although `timer` was due `late_ms` before it ran, more than
/// `timeout_ms`; or (`timer` `None`) a silent gap of `late_ms` during which a frame to it was
/// lost ([`silent_gap`]).
/// `timeout_ms`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stall {
    pub from: Pos,
    pub timer: Option<Timer>,
    pub late_ms: u64,
    pub timeout_ms: u64,
}

impl Stall {
    /// The step after the stall.
    pub fn to(&self) -> Pos {
        (self.from.0, self.from.1 + 1)
    }

    /// Whether the state a node entered at `at` (of its own log, until its next step) is in
    /// this stall's shadow: it lasted until one timeout before the stall began or later (a
    /// peer that presumed the process down had last heard from it up to a timeout before),
    /// and began no later than one timeout after the process ran again (the time its peers
    /// need to hear from it and it from them), by its own clock.
    pub fn shadows(&self, logs: &[NodeLog<'_>], at: Pos) -> bool {
        if at.0 != self.from.0 {
            return false;
        }
        let steps = &logs[self.from.0].steps;
        let began = steps[at.1].0.t_ms;
        let ended = steps.get(at.1 + 1).map_or(began, |s| s.0.t_ms);
        steps[at.1].1 == steps[self.from.1].1
            && ended + self.timeout_ms >= steps[self.from.1].0.t_ms
            && began <= steps[self.to().1].0.t_ms + self.timeout_ms
    }

    pub fn describe(&self, logs: &[NodeLog<'_>]) -> Breach {
        let (s, inc) = logs[self.from.0].steps[self.from.1];
        let (next, _) = logs[self.from.0].steps[self.from.1 + 1];
        let why = match &self.timer {
            Some(timer) => format!(
                "its {} timer was {} ms overdue when it ran",
                crate::timer_name(timer),
                self.late_ms
            ),
            None => "a frame to it was lost meanwhile".to_string(),
        };
        breach(
            BreachKind::Stalled,
            s,
            inc,
            next.t_ms - s.t_ms,
            format!(
                "no step from t={} ms to t={} ms; {why}, longer than the {} ms timeout (paused, or starved of CPU)",
                s.t_ms, next.t_ms, self.timeout_ms
            ),
        )
    }
}

/// Every stall of every incarnation: after each step, the timers the handler has set (each
/// due at the step's `t_ms` plus its delay, which the node never exceeds); if the next step
/// of the same incarnation came more than the timeout after the earliest of them was due (or
/// after this step, if it was due already), the process did not run in between.
pub(super) fn stalls(logs: &[NodeLog<'_>]) -> Vec<Stall> {
    let mut out = Vec::new();
    for (i, l) in logs.iter().enumerate() {
        let mut timers: BTreeMap<Timer, u64> = BTreeMap::new();
        let mut timeout_ms = u64::MAX;
        for (k, &(s, inc)) in l.steps.iter().enumerate() {
            match &s.event.event {
                Event::Start { .. } => {
                    timers.clear();
                    if let Some(actor) = &s.event.actor {
                        timeout_ms = actor.timing.timeout.as_millis() as u64;
                    }
                }
                Event::Timeout { timer } => {
                    timers.remove(timer);
                }
                _ => {}
            }
            for c in &s.commands {
                match c {
                    Cmd::SetTimer { timer, range, .. } => {
                        let due = s.t_ms + range.start.as_millis() as u64;
                        timers.insert(*timer, due);
                    }
                    Cmd::CancelTimer { timer } => {
                        timers.remove(timer);
                    }
                    _ => {}
                }
            }
            let Some(&(next, next_inc)) = l.steps.get(k + 1) else {
                continue;
            };
            let Some((&timer, &due)) = timers.iter().min_by_key(|(_, due)| **due) else {
                continue;
            };
            // Measured from this step when the timer was overdue already: the steps a resumed
            // process takes in a burst are one stall, not one each.
            let idle_from = due.max(s.t_ms);
            if next_inc == inc && next.t_ms > idle_from.saturating_add(timeout_ms) {
                out.push(Stall {
                    from: (i, k),
                    timer: Some(timer),
                    late_ms: next.t_ms - idle_from,
                    timeout_ms,
                });
            }
        }
    }
    out
}

/// A stall no due timer shows (a quiet process, such as a coordinator between announcements,
/// paused): in incarnation `inc` of node `j`, two consecutive steps more than the timeout apart
/// between which `during` says a lost frame was sent. A sender gives up a frame to a peer whose
/// connection is not up within half the timeout, so a frame lost to a live process that took
/// no step for longer than the timeout was lost to that silence.
pub(super) fn silent_gap(
    logs: &[NodeLog<'_>],
    (j, inc): (usize, usize),
    during: impl Fn(Pos, Pos) -> bool,
) -> Option<Stall> {
    let steps = &logs[j].steps;
    let start = steps.iter().position(|&(_, c)| c == inc)?;
    let timeout_ms = steps[start]
        .0
        .event
        .actor
        .as_ref()
        .map(|a| a.timing.timeout.as_millis() as u64)?;
    (start..steps.len() - 1)
        .take_while(|&k| steps[k + 1].1 == inc)
        .find(|&k| steps[k + 1].0.t_ms - steps[k].0.t_ms > timeout_ms && during((j, k), (j, k + 1)))
        .map(|k| Stall {
            from: (j, k),
            timer: None,
            late_ms: steps[k + 1].0.t_ms - steps[k].0.t_ms,
            timeout_ms,
        })
}
