//! The nemesis of `bully-node cluster --chaos SEED`: a random fault schedule, drawn from its
//! seed alone (the same seed, nodes and options give the same schedule), that keeps a minimum
//! number of nodes running and unpaused at every moment.
//!
//! Faults come one every 0.5 to 2.5 s (uniformly), each one of those allowed (`--faults`)
//! that keeps the floor: `kill` (SIGKILL a running, unpaused node), `restart` (start a killed
//! node again, with its data directory), `pause` (SIGSTOP a running node, and SIGCONT it 0.2
//! to 2 s later). Pausing longer than the timeout leaves Bully's timing assumption on purpose:
//! the conformance verdict at the end names it. The launcher prints the schedule as
//! `--script` lines, so a run can be repeated without the nemesis.

use std::collections::BTreeSet;
use std::time::Duration;

/// A kind of fault the nemesis may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Fault {
    Kill,
    Restart,
    Pause,
}

/// One scheduled action: what, to which node, when (from the cluster's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: Duration,
    pub what: Injected,
    pub node: u64,
}

/// What an event does (a pause is undone by a later `Resume`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    Kill,
    Restart,
    Pause,
    Resume,
}

/// What to draw.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    pub duration: Duration,
    pub faults: Vec<Fault>,
    /// Nodes kept running and unpaused at every moment.
    pub min_up: usize,
}

/// SplitMix64: a small, fixed generator, so a seed means the same draws on every build (the
/// chaos schedule here, the workbench's fault times).
#[derive(Clone, Debug)]
pub struct Draw(u64);

impl Draw {
    pub fn new(seed: u64) -> Draw {
        Draw(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi` milliseconds.
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[(self.next() % from.len() as u64) as usize]
    }
    /// A duration drawn uniformly from `0..upto`.
    pub fn upto(&mut self, upto: Duration) -> Duration {
        let ms = upto.as_millis() as u64;
        if ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(self.next() % ms)
    }
}

/// The schedule for `ids`, in time order. Nothing happens in the last second, and every pause
/// is resumed before the end.
pub fn draw(plan: &Plan, ids: &[u64]) -> Vec<Event> {
    let mut rng = Draw::new(plan.seed);
    let mut down: BTreeSet<u64> = BTreeSet::new();
    // Paused nodes with their resume time.
    let mut paused: Vec<(Duration, u64)> = Vec::new();
    let mut out = Vec::new();
    let end = plan.duration.saturating_sub(Duration::from_secs(1));
    let mut t = Duration::ZERO;
    loop {
        t += rng.ms(500, 2500);
        if t >= end {
            break;
        }
        paused.retain(|&(at, _)| at > t);
        let up: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| !down.contains(id) && !paused.iter().any(|p| p.1 == *id))
            .collect();
        let allowed: Vec<Fault> = plan
            .faults
            .iter()
            .copied()
            .filter(|f| match f {
                Fault::Kill | Fault::Pause => up.len() > plan.min_up,
                Fault::Restart => !down.is_empty(),
            })
            .collect();
        if allowed.is_empty() {
            continue;
        }
        let (what, node) = match rng.pick(&allowed) {
            Fault::Kill => (Injected::Kill, rng.pick(&up)),
            Fault::Restart => (
                Injected::Restart,
                rng.pick(&down.iter().copied().collect::<Vec<_>>()),
            ),
            Fault::Pause => (Injected::Pause, rng.pick(&up)),
        };
        match what {
            Injected::Kill => {
                down.insert(node);
            }
            Injected::Restart => {
                down.remove(&node);
            }
            _ => {
                let resume = (t + rng.ms(200, 2000)).min(end);
                paused.push((resume, node));
                out.push(Event {
                    at: resume,
                    what: Injected::Resume,
                    node,
                });
            }
        }
        out.push(Event { at: t, what, node });
    }
    out.sort_by_key(|e| e.at);
    out
}

/// Counts per kind, for the summary line: (kills, restarts, pauses).
pub fn counts(events: &[Event]) -> (usize, usize, usize) {
    let n = |w: Injected| events.iter().filter(|e| e.what == w).count();
    (n(Injected::Kill), n(Injected::Restart), n(Injected::Pause))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(seed: u64, faults: &[Fault]) -> Plan {
        Plan {
            seed,
            duration: Duration::from_secs(60),
            faults: faults.to_vec(),
            min_up: 3,
        }
    }

    /// Replays a schedule and returns the fewest nodes up at any time.
    fn fewest_up(events: &[Event], ids: &[u64]) -> usize {
        let mut down = BTreeSet::new();
        let mut paused = BTreeSet::new();
        let mut fewest = ids.len();
        for e in events {
            match e.what {
                Injected::Kill => assert!(down.insert(e.node), "{e:?}: killed twice"),
                Injected::Restart => assert!(down.remove(&e.node), "{e:?}: was not down"),
                Injected::Pause => assert!(paused.insert(e.node), "{e:?}: paused twice"),
                Injected::Resume => assert!(paused.remove(&e.node), "{e:?}: was not paused"),
            }
            let up = ids
                .iter()
                .filter(|i| !down.contains(*i) && !paused.contains(*i))
                .count();
            fewest = fewest.min(up);
        }
        assert!(paused.is_empty(), "every pause is resumed");
        fewest
    }

    #[test]
    fn a_seed_draws_one_schedule_that_keeps_the_floor() {
        let ids: Vec<u64> = (5001..=5007).collect();
        let all = [Fault::Kill, Fault::Restart, Fault::Pause];
        for seed in 0..50 {
            let a = draw(&plan(seed, &all), &ids);
            assert_eq!(a, draw(&plan(seed, &all), &ids), "seed {seed}");
            assert!(a.len() > 20, "seed {seed}: {} events", a.len());
            assert!(fewest_up(&a, &ids) >= 3, "seed {seed}");
            assert!(a.iter().all(|e| e.at <= Duration::from_secs(59)));
        }
        let kr = draw(&plan(1, &[Fault::Kill, Fault::Restart]), &ids);
        let (k, r, p) = counts(&kr);
        assert!(k > 5 && r > 5 && p == 0, "{k} {r} {p}");
        assert_ne!(kr, draw(&plan(2, &[Fault::Kill, Fault::Restart]), &ids));
    }
}
