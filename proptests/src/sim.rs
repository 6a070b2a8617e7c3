//! A deterministic simulator over the model's own checked system.
//!
//! The simulator never decides anything about the protocol, the timing or the network: it asks
//! [`BullySystem`] (a `stateright::Model`) which actions are enabled — that already applies the
//! synchronous timing rule, the fault budgets and the network's semantics — and only picks
//! **which** of them happens next. `next_state` then runs the very same [`bully_model::Bully`]
//! handlers the node runs. So a schedule is just a list of [`Choice`]s, which proptest
//! generates and shrinks.
//!
//! A run has two phases:
//!
//! 1. **Schedule.** Each [`Choice`] names a class of action (deliver, timer, loss, crash,
//!    recovery) and a pick among the enabled actions of that class, in a canonical (sorted)
//!    order, so a schedule replays identically in every process. A class with nothing enabled
//!    falls back to deliveries, then timers; if only faults are left the step does nothing.
//! 2. **Settle** (optional). Faults stop; a fair deterministic scheduler delivers messages
//!    before it fires timers (bounded delay, shorter than every timeout), each kind least
//!    recently taken first (ties in canonical order), until nothing is enabled or a step limit
//!    is hit. Then [`properties::settled`] must hold: one coordinator,
//!    the highest live ID, named by every live process.
//!
//! After the initial state and after every step (in both phases), the model's `always`
//! properties ([`SAFETY`]) are evaluated with the same functions the model checker registers.
//! The first violation ends the run. An [`Outcome`] renders as numbered readable steps.

use bully_model::check::describe_state;
use bully_model::cli::ModelArgs;
use bully_model::properties::{self, describe_action};
use bully_model::simulate::{End, Judged, Pick, Walker};
use bully_model::system::{
    BullySystem, Channels, Config, NetworkKind, StartMode, SysAction, SysState, Timing,
};
use bully_model::Variant;
use proptest::prelude::*;
use proptest::test_runner::{
    Config as ProptestConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use stateright::Model;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::ops::RangeInclusive;
use std::str::FromStr;

/// The model's `always` properties, under the names the model checker reports them with (the
/// model's one table).
pub use bully_model::properties::{Check, ALWAYS as SAFETY};

/// The kinds of action a schedule chooses between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Deliver a message in flight.
    Deliver,
    /// Fire a timer (only those the timing rule enables).
    Timer,
    /// Lose a message in flight (lossy network only).
    Drop,
    /// Crash a live process (within the crash budget).
    Crash,
    /// Recover a crashed process (within the recovery budget).
    Recover,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Deliver,
        Class::Timer,
        Class::Drop,
        Class::Crash,
        Class::Recover,
    ];

    pub fn of(a: &SysAction) -> Class {
        match a {
            SysAction::Deliver(_) => Class::Deliver,
            SysAction::Timeout(..) => Class::Timer,
            SysAction::Drop(_) | SysAction::CutShort(_) => Class::Drop,
            SysAction::Crash(_) => Class::Crash,
            SysAction::Recover(_) | SysAction::RecoverLost(_) => Class::Recover,
        }
    }

    fn letter(self) -> char {
        match self {
            Class::Deliver => 'd',
            Class::Timer => 't',
            Class::Drop => 'l',
            Class::Crash => 'x',
            Class::Recover => 'r',
        }
    }

    fn from_letter(c: char) -> Option<Class> {
        Class::ALL.into_iter().find(|k| k.letter() == c)
    }
}

/// One scheduling decision: the `pick % k`-th of the `k` enabled actions of `class` (in
/// canonical order). Written compactly: `d3` (deliver), `t0` (timer), `l1` (lose), `x2`
/// (crash), `r0` (recover).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Choice {
    pub class: Class,
    pub pick: u16,
}

impl fmt::Debug for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.class.letter(), self.pick)
    }
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut chars = s.chars();
        let class = chars
            .next()
            .and_then(Class::from_letter)
            .ok_or_else(|| format!("bad choice {s:?}: expected d, t, l, x or r then a number"))?;
        let pick = chars
            .as_str()
            .parse()
            .map_err(|_| format!("bad choice {s:?}: expected a number after the letter"))?;
        Ok(Choice { class, pick })
    }
}

/// Relative weights of the classes, in the order of [`Class::ALL`] (deliver, timer, lose,
/// crash, recover). The default makes faults rarer than deliveries and timers.
pub const WEIGHTS: [u32; 5] = [70, 20, 4, 3, 3];

/// A class drawn with `weights` (zero weights are never drawn). Shrinks towards
/// [`Class::Deliver`] (proptest's union shrinks to earlier alternatives).
pub fn class(weights: [u32; 5]) -> impl Strategy<Value = Class> {
    let alternatives: Vec<(u32, Just<Class>)> = Class::ALL
        .into_iter()
        .zip(weights)
        .filter(|&(_, w)| w > 0)
        .map(|(k, w)| (w, Just(k)))
        .collect();
    proptest::strategy::Union::new_weighted(alternatives)
}

pub fn choice(weights: [u32; 5]) -> impl Strategy<Value = Choice> {
    (class(weights), any::<u16>()).prop_map(|(class, pick)| Choice { class, pick })
}

pub fn schedule(
    len: RangeInclusive<usize>,
    weights: [u32; 5],
) -> impl Strategy<Value = Vec<Choice>> {
    proptest::collection::vec(choice(weights), len)
}

/// A configuration of the model plus a schedule: one proptest input. `Display`/`FromStr` give a
/// one-line form that [`replay`](Scenario::from_str) accepts: the model's flags in their one
/// text form ([`ModelArgs`]), a colon, the choices, e.g. `-n 3 --crashes 2: d0 t1 x2`.
#[derive(Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The model checked; a scenario keeps the reductions on.
    pub config: Config,
    pub schedule: Vec<Choice>,
}

impl Scenario {
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    pub fn model(&self) -> BullySystem {
        self.config().into_model()
    }

    /// What the model claims for this scenario: liveness only with sync timing on a reliable
    /// network (the model's finite, unbounded configurations); safety everywhere.
    pub fn default_options(&self) -> Options {
        if self.config.timing == Timing::Sync && self.config.network == NetworkKind::Reliable {
            Options::full()
        } else {
            Options::safety_only()
        }
    }

    /// The scenario without the trailing choices `outcome` did not use (they changed nothing).
    pub fn trimmed(&self, outcome: &Outcome) -> Scenario {
        let used = outcome
            .trace
            .iter()
            .filter_map(|s| s.choice)
            .max()
            .map_or(0, |i| i + 1);
        Scenario {
            schedule: self.schedule[..used.min(self.schedule.len())].to_vec(),
            ..self.clone()
        }
    }

    pub fn run(&self, opts: Options) -> Outcome {
        run(&self.model(), &self.schedule, opts, |_| {})
    }

    /// Runs the scenario and turns a failure into a proptest failure whose message is the
    /// numbered steps.
    pub fn check(&self, opts: Options) -> Result<(), TestCaseError> {
        let outcome = self.run(opts);
        if outcome.failure.is_some() {
            Err(TestCaseError::fail(outcome.report(self)))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", ModelArgs::of(&self.config()))?;
        for c in &self.schedule {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().trim_matches('"');
        let (head, tail) = s
            .split_once(':')
            .ok_or("expected `<bully-model flags>: <choices>`")?;
        let flags: ModelArgs = head.parse()?;
        let sc = Scenario {
            config: flags.config(),
            schedule: tail
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()?,
        };
        if ModelArgs::of(&sc.config) != flags {
            return Err(format!(
                "{head:?}: a scenario keeps the reductions on (no --no-reduction, \
                 --no-truncation or --no-tag-renaming)"
            ));
        }
        Ok(sc)
    }
}

/// The space proptest draws [`Scenario`]s from. Every range shrinks towards its low end.
#[derive(Clone, Debug)]
pub struct Space {
    pub processes: RangeInclusive<usize>,
    pub start: StartMode,
    pub crashes: RangeInclusive<u8>,
    pub recoveries: RangeInclusive<u8>,
    pub timing: Timing,
    pub network: NetworkKind,
    pub channels: Channels,
    pub variant: Variant,
    pub lose_storage: bool,
    pub steps: RangeInclusive<usize>,
    /// Class weights (see [`WEIGHTS`]).
    pub weights: [u32; 5],
}

impl Space {
    /// Sync timing, reliable network, the correct protocol, no faults, up to 300 steps.
    pub fn new(processes: RangeInclusive<usize>, start: StartMode) -> Space {
        Space {
            processes,
            start,
            crashes: 0..=0,
            recoveries: 0..=0,
            timing: Timing::Sync,
            network: NetworkKind::Reliable,
            channels: Channels::Fifo,
            variant: Variant::Correct,
            lose_storage: false,
            steps: 0..=300,
            weights: WEIGHTS,
        }
    }
    pub fn faults(mut self, crashes: RangeInclusive<u8>, recoveries: RangeInclusive<u8>) -> Self {
        self.crashes = crashes;
        self.recoveries = recoveries;
        self
    }
    pub fn timing(mut self, t: Timing) -> Self {
        self.timing = t;
        self
    }
    pub fn network(mut self, n: NetworkKind) -> Self {
        self.network = n;
        self
    }
    pub fn channels(mut self, c: Channels) -> Self {
        self.channels = c;
        self
    }
    pub fn variant(mut self, v: Variant) -> Self {
        self.variant = v;
        self
    }
    pub fn lose_storage(mut self, on: bool) -> Self {
        self.lose_storage = on;
        self
    }
    pub fn steps(mut self, steps: RangeInclusive<usize>) -> Self {
        self.steps = steps;
        self
    }

    pub fn weights(mut self, weights: [u32; 5]) -> Self {
        self.weights = weights;
        self
    }

    pub fn strategy(&self) -> impl Strategy<Value = Scenario> {
        let (start, timing, network, channels, variant, lose_storage) = (
            self.start,
            self.timing,
            self.network,
            self.channels,
            self.variant,
            self.lose_storage,
        );
        (
            self.processes.clone(),
            self.crashes.clone(),
            self.recoveries.clone(),
            schedule(self.steps.clone(), self.weights),
        )
            .prop_map(move |(processes, crashes, recoveries, schedule)| Scenario {
                config: Config::new(processes)
                    .crashes(crashes)
                    .recoveries(recoveries)
                    .network(network)
                    .channels(channels)
                    .timing(timing)
                    .start(start)
                    .variant(variant)
                    .lose_storage(lose_storage),
                schedule,
            })
    }
}

/// How a run ends.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Check the `always` properties after every step.
    pub safety: bool,
    /// Settle after the schedule and require [`properties::settled`].
    pub settle: bool,
    /// At most this many settling steps (0: a default that grows with the number of processes).
    pub settle_limit: usize,
    /// Check only this `always` property (where the others are known not to hold).
    pub only: Option<&'static str>,
}

impl Options {
    /// Safety after every step, then settle and check the liveness goal.
    pub fn full() -> Options {
        Options {
            safety: true,
            settle: true,
            settle_limit: 0,
            only: None,
        }
    }
    /// Safety after every step only (for networks where liveness is not claimed).
    pub fn safety_only() -> Options {
        Options {
            safety: true,
            settle: false,
            settle_limit: 0,
            only: None,
        }
    }
    /// Only the liveness goal after settling (where a moment of two coordinators is a
    /// documented exception, e.g. join start with two crashes).
    pub fn liveness_only() -> Options {
        Options {
            safety: false,
            settle: true,
            settle_limit: 0,
            only: None,
        }
    }
    /// The same, checking only the `always` property `name`.
    pub fn only(self, name: &'static str) -> Options {
        assert!(
            SAFETY.iter().any(|(n, _)| *n == name),
            "{name:?} is not an `always` property"
        );
        Options {
            only: Some(name),
            ..self
        }
    }
    fn limit(&self, processes: usize) -> usize {
        if self.settle_limit > 0 {
            self.settle_limit
        } else {
            500 + 20 * processes * processes
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Schedule,
    Settle,
}

/// One action taken.
#[derive(Clone, Debug)]
pub struct Step {
    pub phase: Phase,
    /// The index in the schedule of the choice that took it (schedule phase only).
    pub choice: Option<usize>,
    pub action: SysAction,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// An `always` property was false after `after_step` steps (0: in the initial state).
    Safety {
        property: &'static str,
        after_step: usize,
    },
    /// Fault-free settling ended (nothing left to do, or the step limit) in a state that is not
    /// settled.
    NotSettled { quiescent: bool },
}

impl Failure {
    /// The name of the violated property (`"settled"` for the liveness goal).
    pub fn property(&self) -> &'static str {
        match self {
            Failure::Safety { property, .. } => property,
            Failure::NotSettled { .. } => "settled",
        }
    }
}

/// What a run did.
#[derive(Clone)]
pub struct Outcome {
    pub description: String,
    pub trace: Vec<Step>,
    pub failure: Option<Failure>,
    /// The last state (the violating one, if a safety property failed).
    pub last: SysState,
    /// Choices that found nothing but faults enabled (and did not choose a fault).
    pub idle_choices: usize,
    pub settle_steps: usize,
    /// Settling ended because no fault-free action was left.
    pub quiescent: bool,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    pub fn schedule_steps(&self) -> usize {
        self.trace.len() - self.settle_steps
    }

    /// The run as numbered readable steps (with the scenario line for replaying it).
    pub fn report(&self, scenario: &Scenario) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.description);
        let _ = match &self.failure {
            None => writeln!(out, "No violation."),
            Some(Failure::Safety {
                property,
                after_step,
            }) => writeln!(out, "VIOLATED `{property}` after step {after_step}:"),
            Some(Failure::NotSettled { quiescent }) => writeln!(
                out,
                "NOT SETTLED after the schedule and {} fault-free step(s) ({}):",
                self.settle_steps,
                if *quiescent {
                    "nothing left to do"
                } else {
                    "step limit reached"
                }
            ),
        };
        const KEEP: usize = 60;
        let mut settling = false;
        let n = self.trace.len();
        for (i, step) in self.trace.iter().enumerate() {
            if step.phase == Phase::Settle && !settling {
                settling = true;
                let _ = writeln!(
                    out,
                    "   -- schedule over; settling (no faults; messages before timers, least recently taken first) --"
                );
            }
            // Long settling runs: keep the start and the end.
            if settling && n > 2 * KEEP + 1 && i >= KEEP && i + KEEP < n {
                if i == KEEP {
                    let _ = writeln!(out, "   ... {} step(s) elided ...", n - 2 * KEEP);
                }
                continue;
            }
            let _ = writeln!(out, "{:>4}. {}", i + 1, describe_action(&step.action));
        }
        let _ = writeln!(out, "   then: {}", describe_state(&self.last));
        let _ = writeln!(
            out,
            "Replay: BULLY_SCENARIO='{}' \\",
            scenario.trimmed(self)
        );
        let _ = writeln!(
            out,
            "  cargo test -p bully-proptests --test schedules replay -- --ignored --nocapture"
        );
        out
    }
}

/// What `opts` judge after every step.
fn judged(opts: Options) -> Judged {
    match (opts.safety, opts.only) {
        (false, _) => Judged::Nothing,
        (true, Some(name)) => Judged::Only(name),
        (true, None) => Judged::Every,
    }
}

/// The schedule's pick: one enabled action of `class` (the `pick % k`-th in canonical order,
/// skipping actions the model turns into no transition), else a delivery, else a timer, else
/// nothing.
fn scheduled(model: &BullySystem, state: &SysState, actions: &mut [SysAction], c: Choice) -> Pick {
    actions.sort();
    [c.class, Class::Deliver, Class::Timer]
        .into_iter()
        .find_map(|class| take(model, state, actions, class, c.pick))
        .map_or(Pick::Skip, |(action, next)| Pick::Take(action, next))
}

/// Takes one enabled action of `class` (the `pick % k`-th, skipping actions the model turns
/// into no transition), or `None` if there is none.
fn take(
    model: &BullySystem,
    state: &SysState,
    actions: &[SysAction],
    class: Class,
    pick: u16,
) -> Option<(SysAction, SysState)> {
    let mut candidates: Vec<&SysAction> =
        actions.iter().filter(|a| Class::of(a) == class).collect();
    while !candidates.is_empty() {
        let i = pick as usize % candidates.len();
        if let Some(next) = model.next_state(state, *candidates[i]) {
            return Some((*candidates[i], next));
        }
        candidates.remove(i);
    }
    None
}

/// The settling scheduler's pick at `clock` (see [`run`]): no faults; messages before timers;
/// within each kind the action taken least recently (never-taken ones count from when they
/// were first seen; ties in canonical order). `stamp` remembers both.
fn settling(
    model: &BullySystem,
    state: &SysState,
    actions: &mut Vec<SysAction>,
    clock: usize,
    stamp: &mut HashMap<SysAction, usize>,
) -> Pick {
    actions.sort();
    actions.retain(|a| !BullySystem::is_fault(a));
    for a in actions.iter() {
        stamp.entry(*a).or_insert(clock);
    }
    let mut by_age: Vec<&SysAction> = actions.iter().collect();
    // Stable: ties stay in canonical order.
    by_age.sort_by_key(|a| (Class::of(a) != Class::Deliver, stamp[*a]));
    match by_age
        .into_iter()
        .find_map(|a| model.next_state(state, *a).map(|n| (*a, n)))
    {
        Some((action, next)) => {
            stamp.insert(action, clock + 1);
            Pick::Take(action, next)
        }
        None => Pick::Stop,
    }
}

/// Runs `schedule` on `model` from its (single) initial state, on the model's walker
/// ([`Walker`]). `observe` sees every state reached, the initial one included.
///
/// Settling delivers messages before any timer fires (the bounded delay is much shorter than
/// every timeout), least recently taken first, so no message or timer is starved. Draining the
/// network first never disables a timer under the sync timing rule (every rule only asks for
/// *fewer* messages in flight), so this is one of the model's own executions.
pub fn run(
    model: &BullySystem,
    schedule: &[Choice],
    opts: Options,
    mut observe: impl FnMut(&SysState),
) -> Outcome {
    let mut inits = model.init_states();
    assert_eq!(inits.len(), 1, "the model has one initial state");
    let init = inits.pop().expect("an initial state");
    observe(&init);
    let mut walker = Walker::new(model, init, judged(opts));
    let (mut trace, mut idle_choices) = (Vec::new(), 0);
    let mut end = walker.walk(
        schedule.len(),
        |turn, state, actions| {
            let pick = scheduled(model, state, actions, schedule[turn]);
            idle_choices += usize::from(matches!(pick, Pick::Skip));
            pick
        },
        |turn, action, state| {
            observe(state);
            trace.push(Step {
                phase: Phase::Schedule,
                choice: Some(turn),
                action,
            });
        },
    );
    let schedule_steps = trace.len();
    if opts.settle && !matches!(end, End::Violated(_)) {
        let mut stamp = HashMap::new();
        end = walker.walk(
            opts.limit(model.cfg.processes),
            |clock, state, actions| settling(model, state, actions, clock, &mut stamp),
            |_, action, state| {
                observe(state);
                trace.push(Step {
                    phase: Phase::Settle,
                    choice: None,
                    action,
                });
            },
        );
    }
    let failure = match end {
        End::Violated(property) => Some(Failure::Safety {
            property,
            after_step: trace.len(),
        }),
        _ if opts.settle && !properties::settled(model, &walker.state) => {
            Some(Failure::NotSettled {
                quiescent: end == End::Stopped,
            })
        }
        _ => None,
    };
    Outcome {
        description: model.cfg.to_string(),
        settle_steps: trace.len() - schedule_steps,
        quiescent: opts.settle && end == End::Stopped,
        trace,
        failure,
        last: walker.state,
        idle_choices,
    }
}

/// A fingerprint of a system state that is the same in every process (fixed seeds), for
/// comparing the states the simulator reaches with an exhaustive exploration.
pub fn fingerprint(s: &SysState) -> u64 {
    ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(s)
}

/// Cases from `PROPTEST_CASES` when set (for soak runs), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A violation found by [`hunt`]: the shrunk scenario and its run.
pub struct Found {
    pub scenario: Scenario,
    pub outcome: Outcome,
    /// How many generated cases ran before the first failing one (1-based: the failing one).
    pub first_failure_case: usize,
}

impl Found {
    pub fn property(&self) -> &'static str {
        self.outcome
            .failure
            .as_ref()
            .expect("a found violation")
            .property()
    }
    pub fn report(&self) -> String {
        format!(
            "found at generated case {}; shrunk to {} choice(s)\n{}",
            self.first_failure_case,
            self.scenario.schedule.len(),
            self.outcome.report(&self.scenario)
        )
    }
}

/// Searches `space` for a schedule that violates a property within `cases` generated cases,
/// with a fixed seed (so the search is reproducible), and returns it shrunk.
pub fn hunt(space: &Space, cases: u32, opts: Options) -> Option<Found> {
    hunt_with(
        space,
        cases,
        opts,
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

/// [`hunt`] with a given random generator (e.g. `TestRng::from_seed`).
pub fn hunt_with(space: &Space, cases: u32, opts: Options, rng: TestRng) -> Option<Found> {
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng);
    let generated = std::cell::Cell::new(0usize);
    let first = std::cell::Cell::new(None);
    let result = runner.run(&space.strategy(), |sc| {
        if first.get().is_none() {
            generated.set(generated.get() + 1);
        }
        let r = sc.check(opts);
        if r.is_err() && first.get().is_none() {
            first.set(Some(generated.get()));
        }
        r
    });
    match result {
        Ok(()) => None,
        Err(TestError::Fail(_, scenario)) => {
            let outcome = scenario.run(opts);
            assert!(!outcome.ok(), "a shrunk failure replays as a failure");
            Some(Found {
                scenario: scenario.trimmed(&outcome),
                outcome,
                first_failure_case: first.get().unwrap_or(0),
            })
        }
        Err(TestError::Abort(why)) => panic!("proptest aborted: {why}"),
    }
}
