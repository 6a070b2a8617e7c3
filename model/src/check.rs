//! Runs the checker on a [`Config`] and reports every property's verdict.

use crate::liveness::{self, LivenessReport};
use crate::properties::describe_action;
use crate::protocol::Role;
use crate::system::{BullySystem, Config, SysAction, SysState};
use serde::Serialize;
use stateright::{Checker, Expectation, Model};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Bfs,
    Dfs,
}

#[derive(Clone, Debug, Serialize)]
pub struct Options {
    pub strategy: Strategy,
    pub threads: usize,
    /// Print progress on stderr every this many seconds (None: quiet).
    pub progress_every: Option<Duration>,
    /// Run the liveness pass.
    pub liveness: bool,
    /// Stop the safety search at the first counterexample (mutation tests).
    pub stop_on_violation: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            strategy: Strategy::Bfs,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress_every: None,
            liveness: true,
            stop_on_violation: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// An `always` property held in every reachable state, or liveness held.
    Holds,
    /// A counterexample was found.
    Violated,
    /// A `sometimes` property's example was found.
    Reached,
    /// A `sometimes` property was never satisfied: whatever it guards was not exercised.
    NotReached,
    /// Not checked in this run (e.g. liveness of a bounded run).
    NotChecked,
}

#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    pub name: String,
    pub kind: &'static str,
    pub verdict: Verdict,
    /// The counterexample (or example), as numbered readable steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<String>>,
}

impl PropertyReport {
    pub fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Violated | Verdict::NotReached)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub config: Config,
    pub description: String,
    pub unique_states: usize,
    pub total_states: usize,
    pub max_depth: usize,
    pub seconds: f64,
    pub states_per_second: f64,
    pub liveness_seconds: Option<f64>,
    pub properties: Vec<PropertyReport>,
}

impl Report {
    pub fn ok(&self) -> bool {
        !self.properties.iter().any(PropertyReport::failed)
    }
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.verdict)
    }
    pub fn property(&self, name: &str) -> Option<&PropertyReport> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// A compact description of a system state: each process's role, and the messages in flight.
pub fn describe_state(s: &SysState) -> String {
    let mut out = String::new();
    for (i, a) in s.actor_states.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if s.crashed[i] {
            let _ = write!(out, "{i}: crashed");
            continue;
        }
        let _ = match &a.role {
            Role::Joining { contact } => write!(out, "{i}: joining via {}", usize::from(*contact)),
            Role::Electing { waiting } => write!(out, "{i}: electing (asked {waiting:?})"),
            Role::Waiting => write!(out, "{i}: waiting for coordinator"),
            Role::Halting { epoch, waiting } => {
                write!(out, "{i}: candidate {epoch} (halting {waiting:?})")
            }
            Role::Coordinator { epoch } => write!(out, "{i}: COORDINATOR {epoch}"),
            Role::Follower { epoch } => {
                write!(out, "{i}: follows {} ({epoch})", usize::from(epoch.leader))
            }
        };
    }
    let _ = write!(out, "; {} message(s) in flight", s.network.len());
    out
}

fn steps_of(path: stateright::Path<SysState, SysAction>) -> Vec<String> {
    let mut steps = Vec::new();
    for (i, (state, action)) in path.into_vec().into_iter().enumerate() {
        match action {
            Some(a) => steps.push(format!("{}. {}", i + 1, describe_action(&a))),
            None => steps.push(format!("   then: {}", describe_state(&state))),
        }
    }
    steps
}

/// Checks every property of the model built from `cfg`.
pub fn run(cfg: &Config, opts: &Options) -> Report {
    let model = cfg.clone().into_model();
    let properties = model.properties();
    let started = Instant::now();
    let mut builder = cfg
        .clone()
        .into_model()
        .checker()
        .threads(opts.threads.max(1));
    if opts.stop_on_violation {
        // One thread: with several, a thread that stops early can leave the others waiting
        // for its work forever (stateright 0.31's job broker).
        builder = builder
            .finish_when(stateright::HasDiscoveries::AnyFailures)
            .threads(1);
    }
    let checker = match opts.strategy {
        Strategy::Bfs => Box::new(builder.spawn_bfs()) as Box<dyn Checker<BullySystem> + Send>,
        Strategy::Dfs => Box::new(builder.spawn_dfs()),
    };
    let mut last_progress = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(every) = opts.progress_every {
            if last_progress.elapsed() >= every {
                last_progress = Instant::now();
                eprintln!(
                    "  … {} unique states, {} total, depth {}, {:.0}s",
                    checker.unique_state_count(),
                    checker.state_count(),
                    checker.max_depth(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let discoveries = checker.discoveries();
    let mut reports: Vec<PropertyReport> = properties
        .iter()
        .map(|p| {
            let found = discoveries.get(p.name).cloned();
            let (kind, verdict) = match (&p.expectation, &found) {
                (Expectation::Always, None) => ("always", Verdict::Holds),
                (Expectation::Always, Some(_)) => ("always", Verdict::Violated),
                (Expectation::Sometimes, Some(_)) => ("sometimes", Verdict::Reached),
                (Expectation::Sometimes, None) => ("sometimes", Verdict::NotReached),
                (Expectation::Eventually, None) => ("eventually", Verdict::Holds),
                (Expectation::Eventually, Some(_)) => ("eventually", Verdict::Violated),
            };
            PropertyReport {
                name: p.name.to_string(),
                kind,
                verdict,
                steps: found.map(steps_of),
            }
        })
        .collect();
    let unique_states = checker.unique_state_count();
    let total_states = checker.state_count();
    let max_depth = checker.max_depth();
    drop(checker);

    let mut liveness_seconds = None;
    let liveness = if opts.liveness {
        let r: LivenessReport = liveness::check(&model);
        liveness_seconds = Some(r.elapsed.as_secs_f64());
        PropertyReport {
            name: "liveness".into(),
            kind: "liveness",
            verdict: if r.holds() {
                Verdict::Holds
            } else {
                Verdict::Violated
            },
            steps: r.counterexample.map(|steps| {
                steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| format!("{}. {s}", i + 1))
                    .collect()
            }),
        }
    } else {
        PropertyReport {
            name: "liveness".into(),
            kind: "liveness",
            verdict: Verdict::NotChecked,
            steps: None,
        }
    };
    reports.insert(3, liveness);
    Report {
        config: cfg.clone(),
        description: cfg.to_string(),
        unique_states,
        total_states,
        max_depth,
        seconds,
        states_per_second: unique_states as f64 / seconds.max(1e-9),
        liveness_seconds,
        properties: reports,
    }
}

/// The report as text, for people.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Checked: {}", r.description);
    let _ = writeln!(
        out,
        "{} unique states, {} total, max depth {}, {:.2}s ({:.0} unique states/s){}",
        r.unique_states,
        r.total_states,
        r.max_depth,
        r.seconds,
        r.states_per_second,
        match r.liveness_seconds {
            Some(l) => format!("; liveness pass {l:.2}s"),
            None => String::new(),
        }
    );
    for p in &r.properties {
        let verdict = match p.verdict {
            Verdict::Holds => "holds",
            Verdict::Violated => "VIOLATED",
            Verdict::Reached => "reached",
            Verdict::NotReached => "NOT REACHED",
            Verdict::NotChecked => "not checked in this run",
        };
        let verdict = if p.kind == "liveness" && r.config.is_bounded() {
            format!("{verdict} (within the bound; a trap found is real)")
        } else {
            verdict.to_string()
        };
        let _ = writeln!(out, "  {:<10} {:<58} {verdict}", p.kind, p.name);
        if p.verdict == Verdict::Violated {
            let _ = writeln!(out, "    counterexample:");
            for s in p.steps.iter().flatten() {
                let _ = writeln!(out, "      {s}");
            }
        }
    }
    let _ = writeln!(
        out,
        "{}",
        if r.ok()
            && r.properties
                .iter()
                .any(|p| p.verdict == Verdict::NotChecked)
        {
            "OK: every checked property holds (see \"not checked\" above)."
        } else if r.ok() {
            "OK: every property holds."
        } else {
            "FAILED: see above."
        }
    );
    out
}
