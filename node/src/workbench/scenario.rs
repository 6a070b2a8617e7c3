//! The scenarios: form a cluster the way the exercise starts one, inject the faults, watch.
//!
//! Every scenario starts a fresh cluster. The highest port starts alone (so the exercise's
//! convention, the first process is the coordinator, also makes it the highest), then the
//! others join through it one at a time, from the highest down. Fault times are drawn from the
//! seed.

use super::args::{Draw, Program, Scenario, Settings};
use super::launcher::{crash_lines, last_line, Launcher};
use super::observer::{Observation, Observer, Seen};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a node may take to answer its first heartbeat (an interpreter starting up on a
/// busy machine).
const STARTUP: Duration = Duration::from_secs(10);

/// What the workbench did, or saw happen to a process.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "act", rename_all = "kebab-case")]
pub enum Act {
    Start {
        port: u16,
        contact: Option<u16>,
    },
    /// The node answered its first probe.
    Up {
        port: u16,
    },
    Kill {
        port: u16,
    },
    Pause {
        port: u16,
    },
    Resume {
        port: u16,
    },
    BadFrame {
        port: u16,
    },
    /// The process ended without being killed.
    Exited {
        port: u16,
        status: String,
    },
}

impl Act {
    /// Whether this is a fault the workbench injected.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Act::Kill { .. } | Act::Pause { .. } | Act::Resume { .. } | Act::BadFrame { .. }
        )
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Timed {
    #[serde(serialize_with = "super::report::ser_ms")]
    pub t: Duration,
    #[serde(flatten)]
    pub act: Act,
}

/// Everything one scenario did and saw: what the verdicts are judged from.
#[derive(Clone, Debug)]
pub struct Trace {
    pub scenario: Scenario,
    pub nodes: Vec<(u16, Program)>,
    pub heartbeat: Duration,
    pub timeout: Duration,
    pub slack: Duration,
    /// When every node had joined (faults come after).
    pub formed: Duration,
    pub acts: Vec<Timed>,
    pub seen: Vec<Observation>,
    pub end: Duration,
    /// Lines of the nodes' logs that show a crash (traceback, panic).
    pub crashes: Vec<(u16, String)>,
    /// Step logs written by the nodes (checked with the conformance checker).
    pub step_logs: Vec<PathBuf>,
    /// The processes that wrote no step log: the observer and the nodes without one.
    pub foreign: Vec<u16>,
}

/// Why a scenario did not complete.
#[derive(Debug)]
pub enum Stopped {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The implementation cannot be started (exit 2).
    CannotStart(String),
    Io(String),
}

/// One scenario's running cluster.
pub struct Bench<'a> {
    s: &'a Settings,
    stop: &'a AtomicBool,
    // Declared before the observer: the processes die first, then their tombstones close.
    launcher: Launcher,
    observer: Observer,
    t0: Instant,
    acts: Vec<Timed>,
    draw: Draw,
    formed: Duration,
}

impl<'a> Bench<'a> {
    pub fn new(
        s: &'a Settings,
        stop: &'a AtomicBool,
        exe: PathBuf,
        dir: PathBuf,
        draw: Draw,
    ) -> Result<Bench<'a>, Stopped> {
        let t0 = Instant::now();
        let observer = Observer::start(s.observer_port, s.heartbeat, s.timeout, t0)
            .map_err(Stopped::CannotStart)?;
        Ok(Bench {
            s,
            stop,
            launcher: Launcher::new(s, exe, dir),
            observer,
            t0,
            acts: Vec::new(),
            draw,
            formed: Duration::ZERO,
        })
    }

    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    fn act(&mut self, act: Act) {
        let t = self.now();
        self.acts.push(Timed { t, act });
    }

    /// Waits `d`, noting processes that end by themselves.
    fn watch(&mut self, d: Duration) -> Result<(), Stopped> {
        let until = Instant::now() + d;
        loop {
            self.reap();
            if self.stop.load(Ordering::Relaxed) {
                return Err(Stopped::Interrupted);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(Duration::from_millis(20)));
        }
    }

    fn reap(&mut self) {
        let exits = self.launcher.reap();
        for e in exits {
            self.act(Act::Exited {
                port: e.port,
                status: e.status.to_string(),
            });
        }
        self.observer.probe(self.launcher.live());
    }

    fn start(&mut self, port: u16, contact: Option<u16>) -> Result<(), Stopped> {
        self.launcher.start(port, contact).map_err(Stopped::Io)?;
        self.act(Act::Start { port, contact });
        self.observer.probe(self.launcher.live());
        self.wait_up(port)
    }

    /// Waits until `port` answers a probe; an implementation that exits or stays silent cannot
    /// be started.
    fn wait_up(&mut self, port: u16) -> Result<(), Stopped> {
        let since = self.now();
        let deadline = Instant::now() + STARTUP + self.s.timeout;
        let cmd = self.launcher.command_line(port, None);
        loop {
            self.watch(Duration::from_millis(20))?;
            let up = self.observer.seen().iter().any(|o| {
                o.t >= since
                    && o.seen
                        == Seen::Probe {
                            port,
                            answered: true,
                        }
            });
            if up {
                self.act(Act::Up { port });
                return Ok(());
            }
            let log = self.launcher.log_path(port);
            if let Some(Act::Exited { status, .. }) = self
                .acts
                .iter()
                .rev()
                .map(|a| &a.act)
                .find(|a| matches!(a, Act::Exited { port: p, .. } if *p == port))
            {
                let tail = last_line(&log)
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default();
                return Err(Stopped::CannotStart(format!(
                    "the node on port {port} ({cmd}) exited at once ({status}){tail}"
                )));
            }
            if Instant::now() >= deadline {
                return Err(Stopped::CannotStart(format!(
                    "the node on port {port} ({cmd}) did not answer a heartbeat within {:?}",
                    STARTUP + self.s.timeout
                )));
            }
        }
    }

    /// The first node alone, then the others through it, one at a time.
    pub fn form(&mut self) -> Result<(), Stopped> {
        let mut ports: Vec<u16> = self.s.nodes.iter().map(|n| n.0).collect();
        ports.sort_unstable_by(|a, b| b.cmp(a));
        let first = ports[0];
        let gap = self.s.heartbeat.max(Duration::from_millis(200)) + Duration::from_millis(100);
        for (i, &port) in ports.iter().enumerate() {
            self.start(port, (i > 0).then_some(first))?;
            self.watch(gap)?;
        }
        self.formed = self.now();
        Ok(())
    }

    /// The coordinator as seen from outside: the last announced winner, else the first node.
    pub fn coordinator(&self) -> u16 {
        self.observer
            .seen()
            .iter()
            .rev()
            .find_map(|o| match o.seen {
                Seen::Announced { winner } => Some(winner),
                _ => None,
            })
            .unwrap_or_else(|| self.s.nodes.iter().map(|n| n.0).max().unwrap_or(0))
    }

    fn kill(&mut self, port: u16) {
        self.launcher.kill(port);
        self.act(Act::Kill { port });
        self.observer.tomb(port);
        self.observer.probe(self.launcher.live());
    }

    /// Whether an election shows since `since`: a request at a tombstone, or an announcement by
    /// a node other than those in `failed`.
    fn election_seen(&self, since: Duration, failed: &[u16]) -> Option<Duration> {
        self.observer.seen().iter().find_map(|o| {
            let sign = match &o.seen {
                Seen::Addressed { kind, .. } => *kind == "election",
                Seen::Announced { winner } => !failed.contains(winner),
                _ => false,
            };
            (o.t >= since && sign).then_some(o.t)
        })
    }

    /// The time of the last announcement or request at a tombstone.
    fn last_activity(&self) -> Duration {
        self.observer
            .seen()
            .iter()
            .filter(|o| matches!(o.seen, Seen::Announced { .. } | Seen::Addressed { .. }))
            .map(|o| o.t)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Watches until a new coordinator is announced and nothing more happens for a heartbeat
    /// and a timeout, or until the bounds have passed.
    fn settle(&mut self, since: Duration, failed: &[u16]) -> Result<(), Stopped> {
        let quiet = self.s.heartbeat + self.s.timeout;
        let hard = since + self.s.elect_bound() + quiet;
        loop {
            self.watch(Duration::from_millis(20))?;
            let now = self.now();
            let announced = self.observer.seen().iter().any(|o| {
                o.t >= since
                    && matches!(o.seen, Seen::Announced { winner } if !failed.contains(&winner))
            });
            if (announced && now >= self.last_activity().max(since) + quiet) || now >= hard {
                return Ok(());
            }
        }
    }

    /// Runs the scenario's faults on the formed cluster.
    pub fn inject(&mut self, scenario: Scenario) -> Result<(), Stopped> {
        let (h, t) = (self.s.heartbeat, self.s.timeout);
        let pre = self.draw.upto(h);
        self.watch(pre)?;
        let c = self.coordinator();
        match scenario {
            Scenario::Join => self.watch(h + t)?,
            Scenario::KillCoordinator => {
                self.kill(c);
                self.settle(self.now(), &[c])?;
            }
            Scenario::RestartCoordinator => {
                self.kill(c);
                self.settle(self.now(), &[c])?;
                self.observer.untomb(c);
                self.watch(Duration::from_millis(50))?;
                let contact = self.coordinator();
                let since = self.now();
                self.start(c, Some(contact))?;
                self.settle(since, &[])?;
            }
            Scenario::KillTwo => self.kill_two(c)?,
            Scenario::PauseCoordinator => self.pause(c)?,
            Scenario::BadFrame => {
                let live = self.launcher.live();
                for &port in &live {
                    self.act(Act::BadFrame { port });
                }
                self.observer.bad_frames(live);
                let wait = t + self.draw.upto(h);
                self.watch(wait)?;
                let c = self.coordinator();
                self.kill(c);
                self.settle(self.now(), &[c])?;
            }
        }
        Ok(())
    }

    fn kill_two(&mut self, c: u16) -> Result<(), Stopped> {
        self.kill(c);
        let since = self.now();
        let deadline = since + self.s.detect_bound();
        while self.election_seen(since, &[c]).is_none() && self.now() < deadline {
            self.watch(Duration::from_millis(10))?;
        }
        let wait = self.draw.upto(self.s.timeout / 2);
        self.watch(wait)?;
        if let Some(&next) = self.launcher.live().last() {
            self.kill(next);
            self.settle(self.now(), &[c, next])?;
        }
        Ok(())
    }

    fn pause(&mut self, c: u16) -> Result<(), Stopped> {
        let since = self.now();
        self.launcher.pause(c);
        self.act(Act::Pause { port: c });
        self.observer.probe(self.launcher.live());
        let deadline = since + self.s.detect_bound();
        while self.election_seen(since, &[c]).is_none() && self.now() < deadline {
            self.watch(Duration::from_millis(10))?;
        }
        // Past the timeout in any case; and a timeout past the new coordinator's announcement,
        // so that a resumed node's claim cannot be mistaken for one made at the same time.
        let drawn = self.draw.upto(self.s.timeout);
        let past = since + self.s.heartbeat + self.s.timeout + drawn;
        let after_new = self
            .election_seen(since, &[c])
            .map_or(past, |t| t + self.s.timeout);
        let more = past.max(after_new).saturating_sub(self.now()) + self.s.heartbeat;
        self.watch(more)?;
        self.launcher.resume(c);
        self.act(Act::Resume { port: c });
        self.observer.probe(self.launcher.live());
        self.settle(self.now(), &[])
    }

    /// The trace (the last quiet period of [`Bench::settle`] saw a round of probes).
    pub fn finish(mut self, scenario: Scenario) -> Result<Trace, Stopped> {
        self.watch(Duration::from_millis(50))?;
        let end = self.now();
        let mut seen = self.observer.seen();
        seen.sort_by_key(|o| o.t);
        let mut crashes = Vec::new();
        let mut step_logs = Vec::new();
        let mut foreign = vec![self.s.observer_port];
        for &(port, _) in &self.s.nodes {
            let log = self.launcher.log_path(port);
            crashes.extend(crash_lines(&log).into_iter().map(|l| (port, l)));
            let steps = self.launcher.steps_path(port);
            if steps.metadata().is_ok_and(|m| m.len() > 0) {
                step_logs.push(steps);
            } else {
                foreign.push(port);
            }
        }
        self.launcher.stop_all();
        Ok(Trace {
            scenario,
            nodes: self.s.nodes.clone(),
            heartbeat: self.s.heartbeat,
            timeout: self.s.timeout,
            slack: self.s.slack(),
            formed: self.formed,
            acts: std::mem::take(&mut self.acts),
            seen,
            end,
            crashes,
            step_logs,
            foreign,
        })
    }
}
