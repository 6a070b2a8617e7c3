//! Runs the checker on a [`Config`] and reports every property's verdict.
//!
//! Breadth first (the default), one pass of [`crate::engine::explicit`] over the state graph answers the
//! `always` and `sometimes` properties and keeps the fault-free edges for the liveness verdict.
//! Depth first, stateright's own checker runs the search while this module watches it, and a
//! separate pass checks liveness. Either way the search stops at the first counterexample to an
//! `always` property (unless told to keep going) and before the process outgrows its memory
//! [`Budget`], and the report says which verdicts a stopped search did and did not settle.

use crate::engine::explicit::{self, PassOptions};
use crate::engine::symbolic;
pub use crate::engine::Stop;
use crate::liveness::{self, LivenessReport};
use crate::memory::{self, Budget};
pub use crate::properties::describe_state;
use crate::system::{BullySystem, Config, SysAction, SysState};
use crate::trace::{Path, TraceFile, TraceProperty, Witness};
use serde::Serialize;
use stateright::{Checker, Expectation, HasDiscoveries, Model};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Bfs,
    Dfs,
}

/// Which engine explores the state graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Symbolic where it applies (sync timing, no mutant, no loss) and pays (full start, 4
    /// processes or more), else explicit.
    Auto,
    /// One state at a time ([`crate::engine::explicit`], or stateright's checker depth first).
    Explicit,
    /// Process states one at a time, each with its set of networks as a decision diagram
    /// ([`crate::engine::symbolic`]); least advanced combination first (no depth), on `--threads`.
    Symbolic,
}

#[derive(Clone, Debug, Serialize)]
pub struct Options {
    pub engine: Engine,
    pub strategy: Strategy,
    pub threads: usize,
    /// Print progress on stderr every this many seconds (None: quiet).
    pub progress_every: Option<Duration>,
    /// Run the liveness pass.
    pub liveness: bool,
    /// Explore on after an `always` property is violated (by default the search stops at the
    /// first counterexample).
    pub keep_going: bool,
    /// Stop cleanly before the process's resident memory reaches this budget.
    pub max_memory: Option<Budget>,
    /// Report a path to each `sometimes` example, not only to counterexamples (the symbolic
    /// engine searches again for them; the explicit one has them anyway).
    pub example_paths: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            engine: Engine::Auto,
            strategy: Strategy::Bfs,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress_every: None,
            liveness: true,
            keep_going: false,
            max_memory: Some(Budget::default_for_machine()),
            example_paths: true,
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
    /// Not checked in this run (e.g. `--no-liveness`).
    NotChecked,
    /// Not settled: the search stopped before it had seen every state (at a counterexample to
    /// another property, or at the memory budget).
    Unsettled,
}

#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    pub name: String,
    pub kind: &'static str,
    pub verdict: Verdict,
    /// The counterexample (or example), as numbered readable steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<String>>,
    /// The same as a path (for `--trace-out`).
    #[serde(skip)]
    pub path: Option<Path>,
}

impl PropertyReport {
    pub fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Violated | Verdict::NotReached)
    }
    /// Its counterexample (or example) as a trace file, if it has a path; `command` reproduces
    /// the run.
    pub fn trace(&self, model: &BullySystem, command: String) -> Option<TraceFile> {
        let verdict = match self.verdict {
            Verdict::Reached => "reached",
            _ => "violated",
        };
        let property = TraceProperty {
            name: self.name.clone(),
            kind: self.kind.to_string(),
            verdict: verdict.to_string(),
        };
        Some(TraceFile::new(
            model,
            self.path.as_ref()?,
            command,
            Some(property),
        ))
    }
}

/// How a check ended, and the process exit code that says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every checked property holds (exit 0).
    Verified,
    /// A property is violated or a `sometimes` was never reached (exit 1).
    Failed,
    /// The search stopped at its memory budget with nothing found (exit 3).
    OutOfMemory,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Verified => 0,
            Outcome::Failed => 1,
            Outcome::OutOfMemory => 3,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub config: Config,
    pub description: String,
    /// `symbolic` or `explicit`.
    pub engine: &'static str,
    pub unique_states: usize,
    pub total_states: usize,
    /// The longest shortest path from the start, in states (the explicit engine's breadth
    /// first search measures it; the symbolic engine does not).
    pub max_depth: Option<usize>,
    pub seconds: f64,
    pub states_per_second: f64,
    pub liveness_seconds: Option<f64>,
    /// The whole check, wall clock: the search, the liveness pass, and the paths to what was
    /// found (the symbolic engine searches again for those).
    pub total_seconds: f64,
    /// Set when the search ended before seeing every state.
    pub stopped: Option<Stop>,
    /// The largest resident size seen while checking, in bytes.
    pub peak_memory: u64,
    pub max_memory: Option<u64>,
    pub properties: Vec<PropertyReport>,
}

impl Report {
    pub fn outcome(&self) -> Outcome {
        if self.properties.iter().any(PropertyReport::failed) {
            Outcome::Failed
        } else if matches!(self.stopped, Some(Stop::MemoryBudget { .. })) {
            Outcome::OutOfMemory
        } else {
            Outcome::Verified
        }
    }
    pub fn ok(&self) -> bool {
        self.outcome() == Outcome::Verified
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
    /// The first counterexample found, with its path: the one the search stopped at, else the
    /// first violated property's in report order (liveness included).
    pub fn counterexample(&self) -> Option<&PropertyReport> {
        let stopped_at = match &self.stopped {
            Some(Stop::Violation { property }) => self.property(property),
            _ => None,
        };
        stopped_at
            .into_iter()
            .chain(&self.properties)
            .find(|p| p.verdict == Verdict::Violated && p.path.is_some())
    }
}

/// A path of stateright's checker as ours.
fn path_of(path: stateright::Path<SysState, SysAction>) -> Path {
    let mut steps = path.into_vec().into_iter();
    let (init, first) = steps.next().expect("a path has a state");
    let actions = first
        .into_iter()
        .chain(steps.filter_map(|(_, a)| a))
        .collect();
    Path { init, actions }
}

/// What the watcher saw of the safety search.
struct Search {
    unique_states: usize,
    total_states: usize,
    max_depth: Option<usize>,
    seconds: f64,
    stopped: Option<Stop>,
    peak_memory: u64,
    /// Each property's counterexample or example.
    discoveries: std::collections::HashMap<&'static str, Witness>,
}

/// Runs the safety search (every `always` and `sometimes` property) and watches it.
fn search(cfg: &Config, opts: &Options) -> Search {
    let model = cfg.clone().into_model();
    let always: Vec<&'static str> = model
        .properties()
        .iter()
        .filter(|p| p.expectation == Expectation::Always)
        .map(|p| p.name)
        .collect();
    let halt = model.halt_switch();
    let started = Instant::now();
    // Never let a thread finish on its own (see `BullySystem::halt_switch`): the run ends when
    // the state space is exhausted or the halt switch drains it.
    let never = HasDiscoveries::AllOf(["(no property has this name)"].into_iter().collect());
    let builder = model
        .checker()
        .threads(opts.threads.max(1))
        .finish_when(never);
    let checker = match opts.strategy {
        Strategy::Bfs => Box::new(builder.spawn_bfs()) as Box<dyn Checker<BullySystem> + Send>,
        Strategy::Dfs => Box::new(builder.spawn_dfs()),
    };
    let mut stopped = None;
    let mut peak_memory = memory::resident_bytes().unwrap_or(0);
    let mut last_progress = Instant::now();
    let mut last_look = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(10));
        let resident = memory::resident_bytes().unwrap_or(0);
        peak_memory = peak_memory.max(resident);
        if stopped.is_none() {
            if let Some(budget) = opts.max_memory {
                if resident >= budget.stop_at() {
                    stopped = Some(Stop::MemoryBudget {
                        budget: budget.bytes,
                        resident,
                    });
                    halt.store(true, Ordering::Relaxed);
                }
            }
            if !opts.keep_going && last_look.elapsed() >= Duration::from_millis(50) {
                last_look = Instant::now();
                let found = checker.discoveries();
                if let Some(name) = always.iter().find(|n| found.contains_key(*n)) {
                    stopped = Some(Stop::Violation {
                        property: name.to_string(),
                    });
                    halt.store(true, Ordering::Relaxed);
                }
            }
        }
        if let Some(every) = opts.progress_every {
            if last_progress.elapsed() >= every {
                last_progress = Instant::now();
                eprintln!(
                    "  … {} unique states, {} total, depth {}, {} resident, {:.0}s",
                    checker.unique_state_count(),
                    checker.state_count(),
                    checker.max_depth(),
                    Budget::show(resident),
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    Search {
        unique_states: checker.unique_state_count(),
        total_states: checker.state_count(),
        max_depth: Some(checker.max_depth()),
        seconds: started.elapsed().as_secs_f64(),
        stopped,
        peak_memory,
        discoveries: checker
            .discoveries()
            .into_iter()
            .map(|(name, path)| (name, Witness::Path(path_of(path))))
            .collect(),
    }
}

/// The breadth-first search: one pass of [`explicit::explore`] answers every `always` and
/// `sometimes` property and keeps the graph for the liveness verdict.
fn single_pass(model: &BullySystem, opts: &Options) -> (Search, Option<LivenessReport>) {
    let g = explicit::explore(
        model,
        &PassOptions {
            threads: opts.threads,
            budget: opts.max_memory,
            edges: opts.liveness,
            stop_at_violation: !opts.keep_going,
            progress_every: opts.progress_every,
        },
    );
    let properties = model.properties();
    let found: Vec<(&'static str, u32)> = properties
        .iter()
        .zip(&g.found)
        .filter_map(|(p, f)| Some((p.name, (*f)?)))
        .collect();
    let targets: Vec<u32> = found.iter().map(|&(_, id)| id).collect();
    let discoveries = found
        .iter()
        .zip(explicit::paths_to(model, &g, &targets))
        .map(|(&(name, _), path)| (name, Witness::Path(path)))
        .collect();
    let search = Search {
        unique_states: g.unique_states(),
        total_states: g.total,
        max_depth: Some(g.depth),
        seconds: g.elapsed.as_secs_f64(),
        stopped: g.stopped.clone(),
        peak_memory: g.peak_memory,
        discoveries,
    };
    let live = (opts.liveness && g.complete()).then(|| liveness::analyze(model, &g));
    (search, live)
}

/// The symbolic search ([`crate::engine::symbolic`]): the same verdicts and counts as the explicit
/// breadth-first pass, and paths that replay in the model (short, not always shortest).
fn symbolic_pass(model: &BullySystem, opts: &Options) -> (Search, Option<LivenessReport>) {
    let mut engine = symbolic::Engine::new(
        model,
        symbolic::Options {
            stop_at_violation: !opts.keep_going,
            budget: opts.max_memory,
            progress_every: opts.progress_every,
            max_expansions: None,
            flaw: symbolic::Flaw::None,
            example_paths: opts.example_paths,
            threads: opts.threads.max(1),
        },
    );
    let found = engine.run();
    if opts.progress_every.is_some() {
        eprintln!(
            "  diagram nodes: {} at most, {} at the end of the search",
            found.nodes.peak, found.nodes.last
        );
    }
    let search = Search {
        unique_states: usize::try_from(found.states).unwrap_or(usize::MAX),
        total_states: usize::try_from(found.states).unwrap_or(usize::MAX),
        max_depth: None,
        seconds: found.seconds,
        stopped: found.stopped.clone(),
        peak_memory: found.peak_memory,
        discoveries: found.discoveries,
    };
    let live = (opts.liveness && search.stopped.is_none()).then(|| {
        let l = engine.liveness();
        LivenessReport {
            states: search.unique_states,
            fault_free_edges: 0,
            settled_states: usize::try_from(l.settled_states).unwrap_or(usize::MAX),
            trapped_states: usize::try_from(l.trapped_states).unwrap_or(usize::MAX),
            cut_at_bound: 0,
            counterexample: l.counterexample,
            elapsed: l.elapsed,
            peak_memory: memory::resident_bytes().unwrap_or(0),
            stopped_at_memory: l.stopped_at_memory,
        }
    });
    (search, live)
}

/// Whether `opts` run `model` symbolically.
pub fn uses_symbolic(model: &BullySystem, opts: &Options) -> bool {
    match opts.engine {
        Engine::Explicit => false,
        Engine::Symbolic => true,
        // Where it pays: from four processes the process states are few against the
        // networks (N=4 join with a crash and a recovery: 525 k combinations for 247 M
        // states); below four processes the explicit pass, on every core, is faster.
        Engine::Auto => {
            opts.strategy == Strategy::Bfs
                && symbolic::Engine::supports(&model.cfg)
                && model.cfg.processes >= 4
        }
    }
}

/// Checks every property of the model built from `cfg`: breadth first in one pass over the
/// graph (see [`crate::engine::explicit`]); depth first with stateright's checker, then, if asked, a
/// liveness pass of its own.
pub fn run(cfg: &Config, opts: &Options) -> Report {
    let started = Instant::now();
    let model = cfg.clone().into_model();
    let symbolic = uses_symbolic(&model, opts);
    let (mut s, live) = match opts.strategy {
        _ if symbolic => symbolic_pass(&model, opts),
        Strategy::Bfs => single_pass(&model, opts),
        Strategy::Dfs => {
            let s = search(cfg, opts);
            let live = (opts.liveness && s.stopped.is_none())
                .then(|| liveness::check(&model, opts.max_memory, opts.threads));
            (s, live)
        }
    };
    let complete = s.stopped.is_none();
    let mut reports = property_reports(&model, &mut s, complete);
    let (liveness, liveness_seconds) = liveness_report(&model, opts, complete, live, &mut s);
    reports.insert(3, liveness);
    Report {
        config: cfg.clone(),
        description: cfg.to_string(),
        engine: if symbolic { "symbolic" } else { "explicit" },
        unique_states: s.unique_states,
        total_states: s.total_states,
        max_depth: s.max_depth,
        seconds: s.seconds,
        states_per_second: s.unique_states as f64 / s.seconds.max(1e-9),
        liveness_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
        stopped: s.stopped,
        peak_memory: s.peak_memory,
        max_memory: opts.max_memory.map(|b| b.bytes),
        properties: reports,
    }
}

/// The verdict on each registered property, from what the search found (`complete`: it saw
/// every reachable state).
fn property_reports(model: &BullySystem, s: &mut Search, complete: bool) -> Vec<PropertyReport> {
    model
        .properties()
        .iter()
        .map(|p| {
            let found = s.discoveries.remove(p.name);
            let (kind, verdict) = match (&p.expectation, &found) {
                (Expectation::Always, Some(_)) => ("always", Verdict::Violated),
                (Expectation::Always, None) if complete => ("always", Verdict::Holds),
                (Expectation::Always, None) => ("always", Verdict::Unsettled),
                (Expectation::Sometimes, Some(_)) => ("sometimes", Verdict::Reached),
                (Expectation::Sometimes, None) if complete => ("sometimes", Verdict::NotReached),
                (Expectation::Sometimes, None) => ("sometimes", Verdict::Unsettled),
                (Expectation::Eventually, Some(_)) => ("eventually", Verdict::Violated),
                (Expectation::Eventually, None) if complete => ("eventually", Verdict::Holds),
                (Expectation::Eventually, None) => ("eventually", Verdict::Unsettled),
            };
            PropertyReport {
                name: p.name.to_string(),
                kind,
                verdict,
                steps: found.as_ref().map(|w| w.steps(model)),
                path: found.as_ref().and_then(Witness::path).cloned(),
            }
        })
        .collect()
}

/// The liveness verdict and the time its pass took: not checked, unsettled (the search or the
/// pass stopped early: a memory stop is recorded in `s`), holds, or violated with a trap.
fn liveness_report(
    model: &BullySystem,
    opts: &Options,
    complete: bool,
    live: Option<LivenessReport>,
    s: &mut Search,
) -> (PropertyReport, Option<f64>) {
    let mut seconds = None;
    let (verdict, found) = if !opts.liveness {
        (Verdict::NotChecked, None)
    } else if !complete {
        (Verdict::Unsettled, None)
    } else {
        let r: LivenessReport = live.expect("a complete search is analysed for liveness");
        seconds = Some(r.elapsed.as_secs_f64());
        s.peak_memory = s.peak_memory.max(r.peak_memory);
        if let Some(resident) = r.stopped_at_memory {
            s.stopped = Some(Stop::MemoryBudget {
                budget: opts.max_memory.map_or(0, |b| b.bytes),
                resident,
            });
            (Verdict::Unsettled, None)
        } else if r.holds() {
            (Verdict::Holds, None)
        } else {
            (Verdict::Violated, r.counterexample)
        }
    };
    let report = PropertyReport {
        name: "liveness".into(),
        kind: "liveness",
        verdict,
        steps: found.as_ref().map(|w| {
            let mut steps = w.steps(model);
            steps.push("   from there no fault-free execution reaches a settled state".to_string());
            steps
        }),
        path: found.as_ref().and_then(Witness::path).cloned(),
    };
    (report, seconds)
}

/// The report as text, for people.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Checked: {} ({} engine)", r.description, r.engine);
    let _ = writeln!(
        out,
        "{} unique states, {} total{}, {:.2}s ({:.0} unique states/s){}, {:.2}s in all, peak {} resident",
        r.unique_states,
        r.total_states,
        r.max_depth
            .map_or(String::new(), |d| format!(", max depth {d}")),
        r.seconds,
        r.states_per_second,
        match r.liveness_seconds {
            Some(l) => format!("; liveness pass {l:.2}s"),
            None => String::new(),
        },
        r.total_seconds,
        Budget::show(r.peak_memory),
    );
    match &r.stopped {
        Some(Stop::Violation { property }) => {
            let _ = writeln!(
                out,
                "Stopped at the first counterexample (to `{property}`); --keep-going explores on."
            );
        }
        Some(Stop::MemoryBudget { budget, resident }) => {
            let _ = writeln!(
                out,
                "STOPPED before the memory budget of {} (--max-memory): {} resident after {} unique states{}. Not every state was explored.",
                Budget::show(*budget),
                Budget::show(*resident),
                r.unique_states,
                r.max_depth.map_or(String::new(), |d| format!(", depth {d}"))
            );
        }
        None => {}
    }
    for p in &r.properties {
        let _ = writeln!(
            out,
            "  {:<10} {:<58} {}",
            p.kind,
            p.name,
            verdict_text(r, p)
        );
        if p.verdict == Verdict::Violated {
            let _ = writeln!(out, "    counterexample:");
            for s in p.steps.iter().flatten() {
                let _ = writeln!(out, "      {s}");
            }
        }
    }
    let _ = writeln!(out, "{}", outcome_text(r));
    out
}

/// A property's verdict in words.
fn verdict_text(r: &Report, p: &PropertyReport) -> String {
    let verdict = match p.verdict {
        Verdict::Holds => "holds",
        Verdict::Violated => "VIOLATED",
        Verdict::Reached => "reached",
        Verdict::NotReached => "NOT REACHED",
        Verdict::NotChecked => "not checked in this run",
        Verdict::Unsettled if p.kind == "always" => "not settled (no violation in the states seen)",
        Verdict::Unsettled => "not settled",
    };
    if p.kind == "liveness"
        && r.config.is_bounded()
        && matches!(p.verdict, Verdict::Holds | Verdict::Violated)
    {
        format!("{verdict} (within the bound; a trap found is real)")
    } else {
        verdict.to_string()
    }
}

/// The report's last line: the outcome, and what to try when it did not fit in memory.
fn outcome_text(r: &Report) -> String {
    match r.outcome() {
        Outcome::Failed => "FAILED: see above.".to_string(),
        Outcome::OutOfMemory => format!(
            "NOT VERIFIED: the search did not fit in memory. Try instead:\n{}",
            alternatives(&r.config)
        ),
        Outcome::Verified
            if r.properties
                .iter()
                .any(|p| p.verdict == Verdict::NotChecked) =>
        {
            "OK: every checked property holds (see \"not checked\" above).".to_string()
        }
        Outcome::Verified => "OK: every property holds.".to_string(),
    }
}

/// What to run when a configuration does not fit in memory.
fn alternatives(cfg: &Config) -> String {
    let args = cfg.cli_args();
    let mut smaller = cfg.clone();
    smaller.processes = cfg.processes.saturating_sub(1).max(1);
    format!(
        "  bully-model check {args} --strategy dfs --no-liveness   (depth first keeps less in memory; safety only)\n  \
         bully-model simulate {args}   (random walks: any size, no proof)\n  \
         bully-model check {}   (a smaller group)\n  \
         or a larger --max-memory, up to the machine's memory",
        smaller.cli_args()
    )
}
