//! Paths through the checked system, and the trace file that carries one out of the model.
//!
//! Every engine hands back what it found as a [`Path`]: an initial state and the actions taken
//! from it. The readable steps of a report ([`Path::steps`]) and the trace file
//! ([`TraceFile`], `bully-model check --trace-out`, `simulate --trace-out`) are both made from
//! it by replaying the actions through the model, so they cannot disagree with each other or
//! with the model.
//!
//! The trace file is versioned JSON for other programs (the node's replayer): the
//! configuration, and for every step the action (a delivery with its sender, receiver and
//! message; a timer; a crash; a recovery; a loss) and every process's state after it, in the
//! protocol's own types ([`State`], [`Storage`], [`Timer`], [`Msg`]).

use crate::properties::{describe_action, describe_state};
use crate::protocol::{Msg, State, Storage, Timer};
use crate::system::{Action, BullySystem, Config, Env, SysState};
use serde::{Deserialize, Serialize};
use stateright::Model;

/// A path: where it starts and the actions taken from there.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub init: SysState,
    pub actions: Vec<Action>,
}

impl Path {
    /// The states after each action, replayed through `model` (panics if the path does not
    /// replay: every engine's paths are paths of the model).
    pub fn states(&self, model: &BullySystem) -> Vec<SysState> {
        let mut state = self.init.clone();
        self.actions
            .iter()
            .map(|a| {
                state = model
                    .next_state(&state, *a)
                    .unwrap_or_else(|| panic!("the path replays: {a:?} from {state:?}"));
                state.clone()
            })
            .collect()
    }

    /// The state the path ends in.
    pub fn last(&self, model: &BullySystem) -> SysState {
        self.states(model)
            .pop()
            .unwrap_or_else(|| self.init.clone())
    }

    /// Numbered readable steps, then the state reached (or where the path stops replaying:
    /// only a deliberately broken engine's can).
    pub fn steps(&self, model: &BullySystem) -> Vec<String> {
        let mut steps = Vec::new();
        let mut state = self.init.clone();
        for (i, a) in self.actions.iter().enumerate() {
            steps.push(format!("{}. {}", i + 1, describe_action(a)));
            match model.next_state(&state, *a) {
                Some(next) => state = next,
                None => {
                    steps.push("   (this step does not replay in the model)".to_string());
                    return steps;
                }
            }
        }
        steps.push(format!("   then: {}", describe_state(&state)));
        steps
    }
}

/// The trace file's format name and version; a reader refuses anything else.
pub const FORMAT: &str = "bully-model trace";
/// Version 2: processes and ELECTION/ANSWER messages carry election tags ([`crate::Tag`]).
pub const VERSION: u32 = 2;

/// A path written out: `bully-model check --trace-out` (the first counterexample) or
/// `simulate --trace-out` (the walk).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceFile {
    pub format: String,
    pub version: u32,
    /// The checked system: processes, budgets, network, channels, timing, start, variant.
    pub config: Config,
    /// The command that reproduces the run.
    pub command: String,
    /// What the trace shows: the property it violates (or reaches), if any.
    pub property: Option<TraceProperty>,
    /// Every process before the first step.
    pub initial: Vec<TraceProcess>,
    pub steps: Vec<TraceStep>,
}

/// The property a trace ends at, as the checker names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceProperty {
    pub name: String,
    /// `always`, `sometimes` or `liveness`.
    pub kind: String,
    /// `violated` or `reached`.
    pub verdict: String,
}

/// One step of a trace and every process's state after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// 1-based.
    pub step: usize,
    pub action: TraceAction,
    /// The action as the checker prints it.
    pub text: String,
    pub processes: Vec<TraceProcess>,
    /// How many messages are in flight after the step.
    pub in_flight: usize,
}

/// A step of the checked system, in the protocol's types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceAction {
    /// A message reaches its receiver.
    Deliver(InFlight),
    /// A message is lost in the network (lossy network only).
    Lose(InFlight),
    /// A message its sender had not sent when it crashed is lost with it.
    CutShort(InFlight),
    /// A timer fires.
    Timeout { process: usize, timer: Timer },
    /// A process crashes (loses its volatile state, keeps its storage).
    Crash { process: usize },
    /// A crashed process restarts from its storage.
    Recover { process: usize },
    /// A crashed process restarts with its storage lost, as if it had never run.
    RecoverLost { process: usize },
}

/// A message in flight: sender, receiver, the message, and how many restarts of its sender ago
/// it was sent (0: by the sender's current incarnation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub src: usize,
    pub dst: usize,
    pub msg: Msg,
    pub sent_before_restarts: u8,
}

impl InFlight {
    fn of(e: &Env) -> InFlight {
        InFlight {
            src: e.src as usize,
            dst: e.dst as usize,
            msg: e.msg(),
            sent_before_restarts: e.age,
        }
    }
}

impl TraceAction {
    pub fn of(a: &Action) -> TraceAction {
        match a {
            Action::Deliver(e) => TraceAction::Deliver(InFlight::of(e)),
            Action::Drop(e) => TraceAction::Lose(InFlight::of(e)),
            Action::CutShort(e) => TraceAction::CutShort(InFlight::of(e)),
            Action::Timeout(p, timer) => TraceAction::Timeout {
                process: usize::from(*p),
                timer: *timer,
            },
            Action::Crash(p) => TraceAction::Crash {
                process: usize::from(*p),
            },
            Action::Recover(p) => TraceAction::Recover {
                process: usize::from(*p),
            },
            Action::RecoverLost(p) => TraceAction::RecoverLost {
                process: usize::from(*p),
            },
        }
    }
}

/// One process as the model has it: up, with its protocol state and the timers set; or
/// crashed, with what it saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TraceProcess {
    Up { state: State, timers: Vec<Timer> },
    Crashed { storage: Storage },
}

impl TraceProcess {
    pub fn all(s: &SysState) -> Vec<TraceProcess> {
        (0..s.procs.len())
            .map(|i| {
                let p = &s.procs[i];
                if p.crashed {
                    TraceProcess::Crashed {
                        storage: p.storage(),
                    }
                } else {
                    TraceProcess::Up {
                        state: s.state(i),
                        timers: p.timers().collect(),
                    }
                }
            })
            .collect()
    }
}

impl TraceFile {
    /// `path` of `model`, written out. `command` reproduces the run.
    pub fn new(
        model: &BullySystem,
        path: &Path,
        command: String,
        property: Option<TraceProperty>,
    ) -> TraceFile {
        let states = path.states(model);
        TraceFile {
            format: FORMAT.to_string(),
            version: VERSION,
            config: model.cfg.clone(),
            command,
            property,
            initial: TraceProcess::all(&path.init),
            steps: path
                .actions
                .iter()
                .zip(&states)
                .enumerate()
                .map(|(i, (a, s))| TraceStep {
                    step: i + 1,
                    action: TraceAction::of(a),
                    text: describe_action(a),
                    processes: TraceProcess::all(s),
                    in_flight: s.network.len(),
                })
                .collect(),
        }
    }

    /// Reads a trace file, refusing other formats and versions with a one-line reason.
    pub fn parse(text: &str) -> Result<TraceFile, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(format!("not a {FORMAT} file (no \"format\": \"{FORMAT}\")"));
        }
        match v.get("version").and_then(|f| f.as_u64()) {
            Some(n) if n == u64::from(VERSION) => {}
            other => {
                return Err(format!(
                    "trace version {other:?}, this build reads version {VERSION}"
                ))
            }
        }
        serde_json::from_value(v).map_err(|e| format!("malformed trace: {e}"))
    }

    /// The path it describes: replayed through the model of its configuration, action by
    /// action, each matched to the recorded step (for the Explorer's link, and for readers
    /// that want the model's states). Whatever engine wrote the trace, the path is the
    /// explicit model's.
    pub fn path(&self, model: &BullySystem) -> Result<Path, String> {
        let init = model
            .init_states()
            .into_iter()
            .find(|s| TraceProcess::all(s) == self.initial)
            .ok_or("the initial processes are not an initial state of the model")?;
        let mut state = init.clone();
        let mut actions = Vec::new();
        for step in &self.steps {
            let mut enabled = Vec::new();
            model.actions(&state, &mut enabled);
            // Several enabled actions may look alike in the file (copies of one message):
            // the step is the one that leads to the recorded processes.
            let mut alike = enabled
                .into_iter()
                .filter(|a| TraceAction::of(a) == step.action)
                .filter_map(|a| model.next_state(&state, a).map(|next| (a, next)))
                .peekable();
            if alike.peek().is_none() {
                return Err(format!(
                    "step {}: {} is not enabled in the model here",
                    step.step, step.text
                ));
            }
            let recorded = |next: &SysState| {
                TraceProcess::all(next) == step.processes && next.network.len() == step.in_flight
            };
            let Some((a, next)) = alike.find(|(_, next)| recorded(next)) else {
                return Err(format!(
                    "step {}: the model's processes or messages in flight after {} differ from the recorded ones",
                    step.step, step.text
                ));
            };
            actions.push(a);
            state = next;
        }
        Ok(Path { init, actions })
    }
}

/// What an engine found for a property: a path to it, or only the state, when the search for
/// a path stopped first (the symbolic engine looks for paths in a second search, which its
/// memory budget can stop).
#[derive(Clone, Debug)]
pub enum Witness {
    Path(Path),
    NoPath { why: String, state: SysState },
}

impl Witness {
    pub fn path(&self) -> Option<&Path> {
        match self {
            Witness::Path(p) => Some(p),
            Witness::NoPath { .. } => None,
        }
    }

    /// Numbered readable steps, then the state reached.
    pub fn steps(&self, model: &BullySystem) -> Vec<String> {
        match self {
            Witness::Path(p) => p.steps(model),
            Witness::NoPath { why, state } => vec![
                format!("(no path: {why})"),
                format!("   then: {}", describe_state(state)),
            ],
        }
    }
}
