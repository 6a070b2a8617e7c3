//! The verdicts, judged from a [`Trace`]: what the workbench did and what it saw on the wire.
//!
//! A verdict whose evidence depends on another one that failed is *not judged* (with the
//! reason), so that each broken behaviour fails the verdict that names it and no other: a
//! cluster whose nodes stopped answering cannot hold an election, and a cluster that never
//! starts one cannot announce a winner.

use super::observer::Seen;
use super::scenario::{Act, Trace};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    /// Its evidence needs a verdict that failed.
    NotJudged,
    /// The scenario has nothing for it to judge (no fault).
    NotApplicable,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Verdict {
    pub name: &'static str,
    pub outcome: Outcome,
    pub reason: String,
}

/// The verdicts' names, in the order they are judged and shown.
pub const NAMES: [&str; 6] = [
    "detects",
    "elects-highest",
    "notifies-all",
    "single-coordinator",
    "responsive",
    "no-crash",
];

/// The measured times of a scenario with a fault, from the first fault.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Times {
    /// The first sign that a live node noticed (an election request at the dead port, or an
    /// announcement by another node).
    #[serde(serialize_with = "super::report::ser_opt_ms")]
    pub detect: Option<Duration>,
    /// The first announcement by another node.
    #[serde(serialize_with = "super::report::ser_opt_ms")]
    pub elect: Option<Duration>,
    /// The last announcement, or the last request a live node sent to a dead port, whichever
    /// is later: from then on every node evidently knows the new coordinator.
    #[serde(serialize_with = "super::report::ser_opt_ms")]
    pub notified: Option<Duration>,
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ports(p: &BTreeSet<u16>) -> String {
    p.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
}

/// When each node was live (running, not paused, and answering since it started).
struct Lives(BTreeMap<u16, Vec<(Duration, Duration)>>);

impl Lives {
    fn of(tr: &Trace) -> Lives {
        let mut open: BTreeMap<u16, Duration> = BTreeMap::new();
        let mut lives: BTreeMap<u16, Vec<(Duration, Duration)>> = BTreeMap::new();
        for a in &tr.acts {
            match a.act {
                Act::Up { port } | Act::Resume { port } => {
                    open.insert(port, a.t);
                }
                Act::Kill { port } | Act::Pause { port } | Act::Exited { port, .. } => {
                    if let Some(from) = open.remove(&port) {
                        lives.entry(port).or_default().push((from, a.t));
                    }
                }
                _ => {}
            }
        }
        for (port, from) in open {
            lives.entry(port).or_default().push((from, tr.end));
        }
        Lives(lives)
    }

    /// Whether `port` was live over all of `from..to`.
    fn over(&self, port: u16, from: Duration, to: Duration) -> bool {
        self.0
            .get(&port)
            .is_some_and(|l| l.iter().any(|&(a, b)| a <= from && to <= b))
    }

    fn at(&self, port: u16, t: Duration) -> bool {
        self.over(port, t, t)
    }

    /// The nodes live at the end.
    fn at_end(&self, tr: &Trace) -> BTreeSet<u16> {
        self.0
            .keys()
            .copied()
            .filter(|&p| self.at(p, tr.end))
            .collect()
    }
}

/// Everything a scenario's verdicts look at, computed once.
struct Facts<'a> {
    tr: &'a Trace,
    lives: Lives,
    /// The first fault to the coordinator (kill or pause), and whom it hit.
    fault: Option<(Duration, u16)>,
    /// Every node killed or paused by the workbench.
    failed: Vec<u16>,
    announcements: Vec<(Duration, u16)>,
    /// The last fault or restart: from then on the cluster should settle.
    last_change: Duration,
}

impl<'a> Facts<'a> {
    fn of(tr: &'a Trace) -> Facts<'a> {
        let after = |t: Duration| t >= tr.formed;
        let fault = tr.acts.iter().find_map(|a| match a.act {
            Act::Kill { port } | Act::Pause { port } if after(a.t) => Some((a.t, port)),
            _ => None,
        });
        let failed = tr
            .acts
            .iter()
            .filter_map(|a| match a.act {
                Act::Kill { port } | Act::Pause { port } => Some(port),
                _ => None,
            })
            .collect();
        let announcements = tr
            .seen
            .iter()
            .filter_map(|o| match o.seen {
                Seen::Announced { winner } => Some((o.t, winner)),
                _ => None,
            })
            .collect();
        let last_change = tr
            .acts
            .iter()
            .filter(|a| after(a.t) && (a.act.is_fault() || matches!(a.act, Act::Start { .. })))
            .map(|a| a.t)
            .max()
            .unwrap_or(tr.formed);
        Facts {
            tr,
            lives: Lives::of(tr),
            fault,
            failed,
            announcements,
            last_change,
        }
    }

    fn detect_bound(&self) -> Duration {
        super::args::detect_bound(self.tr.heartbeat, self.tr.timeout, self.tr.slack)
    }

    /// See `Settings::elect_bound`.
    fn elect_bound(&self) -> Duration {
        self.detect_bound() + 4 * self.tr.timeout
    }

    /// The last kill or pause (from then on a new coordinator must be elected).
    fn last_fault(&self) -> Option<(Duration, u16)> {
        self.tr.acts.iter().rev().find_map(|a| match a.act {
            Act::Kill { port } | Act::Pause { port } if a.t >= self.tr.formed => Some((a.t, port)),
            _ => None,
        })
    }

    /// The first announcement at or after `t` by a node the workbench did not fail.
    fn announced_after(&self, t: Duration) -> Option<(Duration, u16)> {
        self.announcements
            .iter()
            .copied()
            .find(|&(at, w)| at >= t && !self.failed.contains(&w))
    }

    fn times(&self) -> Times {
        let Some((f, _)) = self.fault else {
            return Times::default();
        };
        let detect = self
            .tr
            .seen
            .iter()
            .find(|o| {
                o.t >= f
                    && match &o.seen {
                        Seen::Addressed { kind, .. } => *kind == "election",
                        Seen::Announced { winner } => !self.failed.contains(winner),
                        _ => false,
                    }
            })
            .map(|o| o.t - f);
        let elect = self.announced_after(f).map(|(t, _)| t - f);
        let last_addressed = self
            .tr
            .seen
            .iter()
            .filter(|o| o.t >= f && matches!(o.seen, Seen::Addressed { origin, .. } if self.lives.at(origin, o.t)))
            .map(|o| o.t)
            .max();
        let last_announced = self.announcements.last().map(|a| a.0).filter(|&t| t >= f);
        let notified = match (elect, last_announced.max(last_addressed)) {
            (Some(_), Some(t)) => Some(t - f),
            _ => None,
        };
        Times {
            detect,
            elect,
            notified,
        }
    }
}

fn verdict(name: &'static str, outcome: Outcome, reason: impl Into<String>) -> Verdict {
    Verdict {
        name,
        outcome,
        reason: reason.into(),
    }
}

fn no_crash(f: &Facts) -> Verdict {
    let mut why: Vec<String> =
        f.tr.acts
            .iter()
            .filter_map(|a| match &a.act {
                Act::Exited { port, status } => Some(format!(
                    "{port} ended by itself at {} ({status})",
                    secs(a.t)
                )),
                _ => None,
            })
            .collect();
    let printed: BTreeSet<u16> = f.tr.crashes.iter().map(|c| c.0).collect();
    if !printed.is_empty() {
        why.push(format!("{} printed a traceback or panic", ports(&printed)));
    }
    if why.is_empty() {
        verdict(
            "no-crash",
            Outcome::Pass,
            "no process ended by itself; no traceback or panic in any log",
        )
    } else {
        verdict("no-crash", Outcome::Fail, why.join("; "))
    }
}

fn responsive(f: &Facts) -> Verdict {
    let t = f.tr.timeout;
    let mut probes: BTreeMap<u16, Vec<bool>> = BTreeMap::new();
    for o in &f.tr.seen {
        if let Seen::Probe { port, answered } = o.seen {
            // Only probes the node was live for from sending to deadline count.
            if f.lives.over(port, o.t, o.t + t) && o.t + t <= f.tr.end {
                probes.entry(port).or_default().push(answered);
            }
        }
    }
    let mut deaf = BTreeSet::new();
    let mut total = 0;
    let mut single = 0;
    for (port, answers) in &probes {
        total += answers.len();
        single += answers.iter().filter(|a| !**a).count();
        let twice = answers.windows(2).any(|w| !w[0] && !w[1]);
        let last_missed = f.lives.at(*port, f.tr.end) && answers.last() == Some(&false);
        if twice || last_missed {
            deaf.insert(*port);
        }
    }
    if deaf.is_empty() {
        verdict(
            "responsive",
            Outcome::Pass,
            format!("{total} heartbeats to live nodes, {single} unanswered but none twice in a row, and every last one answered within the timeout ({})", secs(t)),
        )
    } else {
        verdict(
            "responsive",
            Outcome::Fail,
            format!("{} left heartbeats unanswered past the timeout ({}) twice in a row or at the end, while running and not paused", ports(&deaf), secs(t)),
        )
    }
}

fn detects(f: &Facts, times: &Times) -> Verdict {
    let Some((at, who)) = f.fault else {
        return verdict(
            "detects",
            Outcome::NotApplicable,
            "no fault in this scenario",
        );
    };
    let bound = f.detect_bound();
    let still: BTreeSet<u16> =
        f.tr.seen
            .iter()
            .filter_map(|o| match o.seen {
                Seen::Addressed {
                    dead,
                    kind: "heartbeat",
                    origin,
                } if dead == who && o.t >= at => Some(origin),
                _ => None,
            })
            .collect();
    match times.detect {
        Some(d) if d <= bound => verdict(
            "detects",
            Outcome::Pass,
            format!("an election began {} after {who} failed (bound {}: heartbeat + timeout, three timeouts for the election, {} slack)", secs(d), secs(bound), secs(f.tr.slack)),
        ),
        Some(d) => verdict(
            "detects",
            Outcome::Fail,
            format!("the first election began {} after {who} failed, past the bound of {}", secs(d), secs(bound)),
        ),
        None if still.is_empty() => verdict(
            "detects",
            Outcome::Fail,
            format!("no election began after {who} failed"),
        ),
        None => verdict(
            "detects",
            Outcome::Fail,
            format!("no election began after {who} failed; {} kept sending it heartbeats", ports(&still)),
        ),
    }
}

fn notifies_all(f: &Facts) -> Verdict {
    let Some((at, who)) = f.last_fault() else {
        return verdict(
            "notifies-all",
            Outcome::NotApplicable,
            "no election: the joiners learn the coordinator from their start arguments",
        );
    };
    let bound = f.elect_bound();
    let Some((t, winner)) = f.announced_after(at).filter(|a| a.0 <= at + bound) else {
        return verdict(
            "notifies-all",
            Outcome::Fail,
            format!("no new coordinator announced itself to the observer within {} of {who}'s failure (bound: the detection bound and four more timeouts)", secs(bound)),
        );
    };
    // After the final announcement and a heartbeat, nobody should address a dead node.
    let last = f
        .announcements
        .iter()
        .rev()
        .find(|a| a.0 >= at)
        .map_or(t, |a| a.0);
    let grace = last + f.tr.heartbeat + f.tr.timeout + f.tr.slack;
    let stale: BTreeSet<u16> =
        f.tr.seen
            .iter()
            .filter_map(|o| match o.seen {
                Seen::Addressed {
                    origin,
                    kind: "heartbeat",
                    ..
                } if o.t > grace && f.lives.at(origin, o.t) && origin != winner => Some(origin),
                _ => None,
            })
            .collect();
    if stale.is_empty() {
        verdict(
            "notifies-all",
            Outcome::Pass,
            format!("{winner} announced itself {} after the failure, and no live node heartbeated a dead one after the last announcement", secs(t - at)),
        )
    } else {
        verdict(
            "notifies-all",
            Outcome::Fail,
            format!("{} still heartbeated a dead coordinator after the announcement of {winner}: not notified", ports(&stale)),
        )
    }
}

fn elects_highest(f: &Facts) -> Verdict {
    let live = f.lives.at_end(f.tr);
    let Some(&highest) = live.iter().max() else {
        return verdict(
            "elects-highest",
            Outcome::Fail,
            "no node is live at the end",
        );
    };
    let first = f.tr.nodes.iter().map(|n| n.0).max().unwrap_or(0);
    let (leader, how) = match f.announcements.last() {
        Some(&(t, w)) => (w, format!("announced at {}", secs(t))),
        None => (
            first,
            "the first node, never replaced by an announcement".to_string(),
        ),
    };
    if leader == highest {
        verdict(
            "elects-highest",
            Outcome::Pass,
            format!("the coordinator at the end is {leader} ({how}), the highest live node"),
        )
    } else {
        verdict(
            "elects-highest",
            Outcome::Fail,
            format!("the coordinator at the end is {leader} ({how}), but the highest live node is {highest}"),
        )
    }
}

fn single_coordinator(f: &Facts) -> Verdict {
    let t = f.tr.timeout;
    for (i, &(t2, b)) in f.announcements.iter().enumerate() {
        for &(t1, a) in &f.announcements[..i] {
            if a != b && t2 - t1 < t && f.lives.at(a, t2) && f.lives.at(b, t2) {
                return verdict(
                    "single-coordinator",
                    Outcome::Fail,
                    format!(
                        "{a} and {b} both announced themselves within {} ({} and {}), both live",
                        secs(t2 - t1),
                        secs(t1),
                        secs(t2)
                    ),
                );
            }
        }
    }
    let settled = f.last_change + f.detect_bound();
    let late: BTreeSet<u16> = f
        .announcements
        .iter()
        .filter(|a| a.0 >= settled)
        .map(|a| a.1)
        .collect();
    if late.len() > 1 {
        return verdict(
            "single-coordinator",
            Outcome::Fail,
            format!(
                "{} kept announcing themselves after the cluster should have settled",
                ports(&late)
            ),
        );
    }
    let who: Vec<String> = f.announcements.iter().map(|a| a.1.to_string()).collect();
    verdict(
        "single-coordinator",
        Outcome::Pass,
        if who.is_empty() {
            "no announcement".to_string()
        } else {
            format!(
                "announcements, in order: {}; no two claims overlap",
                who.join(", ")
            )
        },
    )
}

/// Judges every verdict of one scenario, and measures its times.
pub fn judge(tr: &Trace) -> (Vec<Verdict>, Times) {
    let f = Facts::of(tr);
    let times = f.times();
    let crash = no_crash(&f);
    let resp = responsive(&f);
    let det = detects(&f, &times);
    let blocked = |by: &Verdict, why: &str| {
        (by.outcome == Outcome::Fail).then(|| format!("not judged: {} failed ({why})", by.name))
    };
    let deaf = blocked(&resp, "nodes that do not answer cannot hold an election");
    let notif = deaf
        .clone()
        .or_else(|| blocked(&det, "no election to announce"))
        .map_or_else(
            || notifies_all(&f),
            |r| verdict("notifies-all", Outcome::NotJudged, r),
        );
    let evidence = deaf
        .or_else(|| blocked(&det, "no election to judge"))
        .or_else(|| blocked(&notif, "no announcement to judge"));
    let (highest, single) = match evidence {
        Some(r) => (
            verdict("elects-highest", Outcome::NotJudged, r.clone()),
            verdict("single-coordinator", Outcome::NotJudged, r),
        ),
        None => (elects_highest(&f), single_coordinator(&f)),
    };
    (vec![det, highest, notif, single, resp, crash], times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workbench::args::{Program, Scenario};
    use crate::workbench::observer::Observation;
    use crate::workbench::scenario::Timed;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Four nodes 1..=4 up from 0 ms (formed at 100 ms), the first leading; `acts` and `seen`
    /// after that, and probes every 100 ms answered by every live node (unless `deaf`).
    fn trace(acts: Vec<(u64, Act)>, seen: Vec<(u64, Seen)>, end: u64) -> Trace {
        let nodes: Vec<(u16, Program)> = (1..=4).map(|p| (p, Program::UnderTest)).collect();
        let mut all: Vec<Timed> = nodes
            .iter()
            .map(|&(port, _)| Timed {
                t: ms(0),
                act: Act::Up { port },
            })
            .collect();
        all.extend(acts.into_iter().map(|(t, act)| Timed { t: ms(t), act }));
        let mut tr = Trace {
            scenario: Scenario::KillCoordinator,
            nodes,
            heartbeat: ms(100),
            timeout: ms(300),
            slack: ms(250),
            formed: ms(100),
            acts: all,
            seen: seen
                .into_iter()
                .map(|(t, seen)| Observation { t: ms(t), seen })
                .collect(),
            end: ms(end),
            crashes: Vec::new(),
            step_logs: Vec::new(),
            foreign: Vec::new(),
        };
        let lives = Lives::of(&tr);
        for t in (0..end.saturating_sub(300)).step_by(100) {
            for port in 1..=4 {
                if lives.over(port, ms(t), ms(t + 300)) {
                    let seen = Seen::Probe {
                        port,
                        answered: true,
                    };
                    tr.seen.push(Observation { t: ms(t), seen });
                }
            }
        }
        tr.seen.sort_by_key(|o| o.t);
        tr
    }

    fn outcome(tr: &Trace, name: &str) -> (Outcome, String) {
        let v = judge(tr).0.into_iter().find(|v| v.name == name).unwrap();
        (v.outcome, v.reason)
    }

    fn addressed(kind: &'static str, origin: u16) -> Seen {
        Seen::Addressed {
            dead: 4,
            kind,
            origin,
        }
    }

    /// Observations at given milliseconds.
    type SeenAt = Vec<(u64, Seen)>;

    /// A kill of 4 at 200 ms, an election at 3's tombstone, 3's announcement at 900 ms.
    fn good_failover() -> (Vec<(u64, Act)>, SeenAt) {
        let acts = vec![(200, Act::Kill { port: 4 })];
        let seen = vec![
            (300, addressed("heartbeat", 1)),
            (600, addressed("election", 3)),
            (900, Seen::Announced { winner: 3 }),
        ];
        (acts, seen)
    }

    #[test]
    fn a_clean_failover_passes_every_verdict() {
        let (acts, seen) = good_failover();
        let tr = trace(acts, seen, 3000);
        let (verdicts, times) = judge(&tr);
        for v in &verdicts {
            assert_eq!(v.outcome, Outcome::Pass, "{v:?}");
        }
        assert_eq!((times.detect, times.elect), (Some(ms(400)), Some(ms(700))));
    }

    #[test]
    fn two_claims_within_a_timeout_fail_single_coordinator() {
        let (acts, mut seen) = good_failover();
        seen.push((1000, Seen::Announced { winner: 2 }));
        let (o, why) = outcome(&trace(acts, seen, 3000), "single-coordinator");
        assert_eq!(o, Outcome::Fail, "{why}");
        assert!(why.contains("3 and 2"), "{why}");
    }

    #[test]
    fn announcements_that_go_on_after_settling_fail_single_coordinator() {
        let (acts, mut seen) = good_failover();
        seen.extend([
            (2600, Seen::Announced { winner: 2 }),
            (3200, Seen::Announced { winner: 3 }),
        ]);
        let (o, why) = outcome(&trace(acts, seen, 3600), "single-coordinator");
        assert_eq!(o, Outcome::Fail, "{why}");
    }

    #[test]
    fn a_node_still_following_the_dead_coordinator_fails_notifies_all() {
        let (acts, mut seen) = good_failover();
        seen.push((2000, addressed("heartbeat", 1)));
        let (o, why) = outcome(&trace(acts, seen, 3000), "notifies-all");
        assert_eq!(o, Outcome::Fail, "{why}");
        assert!(why.starts_with("1 still heartbeated"), "{why}");
    }

    #[test]
    fn an_exit_or_a_traceback_fails_no_crash() {
        let (mut acts, seen) = good_failover();
        acts.push((
            1500,
            Act::Exited {
                port: 1,
                status: "exit status: 1".into(),
            },
        ));
        let (o, why) = outcome(&trace(acts.clone(), seen.clone(), 3000), "no-crash");
        assert_eq!(o, Outcome::Fail, "{why}");
        let (acts, seen) = good_failover();
        let mut tr = trace(acts, seen, 3000);
        tr.crashes
            .push((2, "Traceback (most recent call last):".into()));
        assert_eq!(outcome(&tr, "no-crash").0, Outcome::Fail);
    }

    #[test]
    fn a_late_election_fails_detects_and_what_depends_on_it_is_not_judged() {
        let acts = vec![(200, Act::Kill { port: 4 })];
        let seen = vec![(5000, Seen::Announced { winner: 3 })];
        let tr = trace(acts, seen, 6000);
        assert_eq!(outcome(&tr, "detects").0, Outcome::Fail);
        for name in ["notifies-all", "elects-highest", "single-coordinator"] {
            assert_eq!(outcome(&tr, name).0, Outcome::NotJudged, "{name}");
        }
    }

    #[test]
    fn probes_missed_twice_fail_responsive_but_not_while_paused() {
        let (acts, seen) = good_failover();
        let mut tr = trace(acts, seen, 3000);
        for o in tr.seen.iter_mut() {
            if matches!(o.seen, Seen::Probe { port: 2, .. }) && o.t >= ms(1500) {
                o.seen = Seen::Probe {
                    port: 2,
                    answered: false,
                };
            }
        }
        let (o, why) = outcome(&tr, "responsive");
        assert_eq!(o, Outcome::Fail, "{why}");
        // The same misses while 2 is paused do not count.
        tr.acts.push(Timed {
            t: ms(1400),
            act: Act::Pause { port: 2 },
        });
        assert_eq!(outcome(&tr, "responsive").0, Outcome::Pass);
    }
}
