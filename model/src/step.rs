//! One handler step as data: what a process is called with ([`Event`]), the one dispatch that
//! runs it ([`Bully::step`]), and the step as the node logs it ([`LoggedStep`]).
//!
//! Every caller of the handlers goes through [`Bully::step`]: the model's system, the node's
//! runtime and the conformance tool. So "which handler does this event call, with what" is
//! decided here once. The logged forms derive both `Serialize` and `Deserialize`: the node's
//! step log writes them, the conformance tool and the tests read them.

use crate::invariants::{self, judge, Broken, StepView};
use crate::protocol::{Bully, Msg, State, Storage, Timer};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Command, Id, Out};
use std::borrow::Cow;
use std::ops::{Deref, Range};
use std::time::Duration;

/// What a process's handler is called with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The process starts: fresh (`None`) or restarted with what it saved ([`Bully::start`]).
    /// `incarnation` numbers the start from outside: it keeps a start's tags new when the
    /// storage was lost or is older (0, or absent from a log: none).
    Start {
        storage: Option<Storage>,
        #[serde(default)]
        incarnation: u64,
    },
    /// A message arrives (`on_msg`).
    Msg { src: Id, msg: Msg },
    /// A timer fires (`on_timeout`).
    Timeout { timer: Timer },
    /// The process is asked to stop (`on_shutdown`, on SIGINT/SIGTERM).
    Shutdown,
}

impl Event {
    /// A first start, numbered by nobody but itself (the checker's initial states, tests).
    pub fn fresh() -> Event {
        Event::Start {
            storage: None,
            incarnation: 0,
        }
    }

    /// Short description for log lines ("why" a role changed).
    pub fn describe(&self) -> String {
        match self {
            Event::Start { storage: None, .. } => "started fresh".into(),
            Event::Start {
                storage: Some(s), ..
            } => {
                format!("restarted (saved promise {})", s.promised)
            }
            Event::Msg { src, msg } => format!("{} from {}", msg.kind(), usize::from(*src)),
            Event::Timeout { timer } => format!("{} timer fired", timer_name(timer)),
            Event::Shutdown => "shutting down".into(),
        }
    }
}

/// A timer's name as the logs and the status reply spell it (`heartbeat_timeout`).
pub fn timer_name(t: &Timer) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{t:?}"))
}

/// What one step did.
#[derive(Debug)]
pub struct Stepped {
    /// The state after the step; `None` if the handler left it as it was (a no-op for the
    /// model checker, which counts only changes as steps).
    pub state: Option<State>,
    /// The commands, in the order the handler emitted them (a save first: persist before send).
    pub out: Out<Bully>,
    /// The run-time invariant the step broke (see [`crate::invariants`]; from
    /// [`Bully::step`], only a mutant's: the correct protocol panics instead).
    pub broken: Option<Broken>,
}

impl Stepped {
    /// The state after the step, given the state before it.
    pub fn after(&self, before: Option<&State>) -> State {
        match (&self.state, before) {
            (Some(s), _) | (None, Some(s)) => s.clone(),
            (None, None) => unreachable!("a start always yields a state"),
        }
    }
}

impl Bully {
    /// The one dispatch: runs the handler `event` calls for on process `me`, whose state is
    /// `before` (`None` until it has started). `None` when there is nothing to run: an event
    /// other than a start for a process that has not started.
    ///
    /// The step is judged against the run-time invariants ([`crate::invariants`]): the correct
    /// protocol panics on a breach, a mutant's step carries it.
    pub fn step(&self, me: Id, before: Option<&State>, event: Event) -> Option<Stepped> {
        let stepped = self.step_judged(me, before, event)?;
        if let Some(broken) = &stepped.broken {
            invariants::assert_only_a_mutant_breaks(self.variant, broken);
        }
        Some(stepped)
    }

    /// [`Bully::step`] without the assertion: a breach, by any variant, is carried by the
    /// step. For tools that step from states the protocol did not produce (a log's, which may
    /// be tampered with), where a breach is a finding to report, not a bug to stop on.
    pub fn step_judged(&self, me: Id, before: Option<&State>, event: Event) -> Option<Stepped> {
        let mut out = Out::new();
        let saved = match &event {
            Event::Start { storage, .. } => storage.clone(),
            _ => None,
        };
        let start = matches!(event, Event::Start { .. });
        let changed = |state: Cow<'_, State>| match state {
            Cow::Owned(s) => Some(s),
            Cow::Borrowed(_) => None,
        };
        let state = match (event, before) {
            (
                Event::Start {
                    storage,
                    incarnation,
                },
                _,
            ) => Some(self.start(me, &storage, incarnation, &mut out)),
            (Event::Msg { src, msg }, Some(s)) => {
                let mut state = Cow::Borrowed(s);
                self.on_msg(me, &mut state, src, msg, &mut out);
                changed(state)
            }
            (Event::Timeout { timer }, Some(s)) => {
                let mut state = Cow::Borrowed(s);
                self.on_timeout(me, &mut state, &timer, &mut out);
                changed(state)
            }
            (Event::Shutdown, Some(s)) => {
                self.on_shutdown(me, s, &mut out);
                None
            }
            (_, None) => return None,
        };
        let view = StepView {
            me,
            before: if start { None } else { before },
            saved: saved.as_ref(),
            after: state
                .as_ref()
                .or(before)
                .expect("a start always yields a state"),
            out: &out,
        };
        // The debug-only invariant only in debug builds: see `invariants`.
        let broken = judge(&view, cfg!(debug_assertions));
        Some(Stepped { state, out, broken })
    }
}

/// One command as logged (and as a replay produces it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cmd {
    Send {
        dst: Id,
        msg: Msg,
    },
    SetTimer {
        timer: Timer,
        range: Range<Duration>,
        /// The range's start in milliseconds: the delay the node uses (derived, for readers).
        #[serde(default)]
        ms: f64,
    },
    CancelTimer {
        timer: Timer,
    },
    Save {
        storage: Storage,
    },
    ChooseRandom {
        key: String,
    },
}

impl From<Command<Msg, Timer, (), Storage>> for Cmd {
    fn from(c: Command<Msg, Timer, (), Storage>) -> Cmd {
        match c {
            Command::Send(dst, msg) => Cmd::Send { dst, msg },
            Command::SetTimer(timer, range) => Cmd::SetTimer {
                ms: range.start.as_secs_f64() * 1000.0,
                timer,
                range,
            },
            Command::CancelTimer(timer) => Cmd::CancelTimer { timer },
            Command::Save(storage) => Cmd::Save { storage },
            Command::ChooseRandom(key, _) => Cmd::ChooseRandom { key },
        }
    }
}

/// Which send a message is: the sender's start number (the `incarnation` of its start step),
/// the step that sent it (`seq`) and the command's position among that step's commands
/// (`cmd`). The wire carries it with the message and the receiver logs it with the receipt, so
/// a receipt is paired with exactly one send, never by content (a coordinator announces the
/// same message many times).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SendId {
    pub inc: u64,
    pub seq: u64,
    pub cmd: u32,
}

impl std::fmt::Display for SendId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "start {} seq {} command {}",
            self.inc, self.seq, self.cmd
        )
    }
}

/// An event as the step log records it: a start also names the actor's configuration, so a
/// log can be replayed without the command line that started the node; a receipt names the
/// send it is ([`SendId`]). (In JSON both sit inside the event object:
/// `{"kind":"start","storage":null,"actor":{..}}`,
/// `{"kind":"msg","src":5003,"msg":{..},"sent":{"inc":..,"seq":12,"cmd":0}}`.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedEvent {
    #[serde(flatten)]
    pub event: Event,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Bully>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<SendId>,
}

impl Deref for LoggedEvent {
    type Target = Event;
    fn deref(&self) -> &Event {
        &self.event
    }
}

/// One line of the node's NDJSON step log: one handler call, enough to replay it.
///
/// ```text
/// {"node":5003,"seq":0,"t_ms":0,"event":{"kind":"start","storage":null,"actor":{..}},
///  "before":null,"after":{..State..},"commands":[{"kind":"send","dst":5005,"msg":{"type":"election"}},..]}
/// ```
///
/// * `event.kind` is `start` (with the `storage` passed to `on_start`, the `incarnation` (start
///   number) and the `actor` configuration), `msg` (`src`, `msg`, and `sent`: the
///   [`SendId`] the wire carried), `timeout` (`timer`) or `shutdown`.
/// * `before` is the state the handler got (`null` for `start`), `after` the state it left.
/// * `commands` are the handler's output in the order executed: `send` (`dst`, `msg`),
///   `set_timer` (`timer`, `range`: the serde form of the `Range<Duration>`, and `ms`: its
///   start, which the node uses as the delay), `cancel_timer` (`timer`), `save` (`storage`),
///   `choose_random` (`key`).
/// * `t_ms` is milliseconds since the node process started; `seq` counts steps from 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedStep {
    pub node: Id,
    pub seq: u64,
    #[serde(default)]
    pub t_ms: u64,
    pub event: LoggedEvent,
    pub before: Option<State>,
    pub after: State,
    pub commands: Vec<Cmd>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Durations, Members, Start, Tag};

    /// The logged JSON keeps its documented shape: the actor inside the start event.
    #[test]
    fn a_logged_start_round_trips_with_the_actor_inside_the_event() {
        let members = Members::new([Id::from(0), Id::from(1)]);
        let actor = Bully::new(
            Start::Full {
                members: members.clone(),
            },
            Durations::default(),
        );
        let me = Id::from(1);
        let event = Event::fresh();
        let stepped = actor.step(me, None, event.clone()).expect("a start runs");
        let line = LoggedStep {
            node: me,
            seq: 0,
            t_ms: 0,
            event: LoggedEvent {
                event,
                actor: Some(actor.clone()),
                sent: None,
            },
            before: None,
            after: stepped.after(None),
            commands: stepped.out.into_iter().map(Cmd::from).collect(),
        };
        let json = serde_json::to_value(&line).unwrap();
        assert_eq!(json["event"]["kind"], "start");
        assert!(json["event"]["actor"].is_object(), "{json}");
        assert!(json["event"]["storage"].is_null(), "{json}");
        let back: LoggedStep = serde_json::from_value(json).unwrap();
        assert_eq!(back, line);
    }

    /// Only a start runs before a process has started; an unchanged state reads as `None`.
    #[test]
    fn the_dispatch_runs_the_handler_the_event_calls_for() {
        let actor = Bully::new(
            Start::Full {
                members: Members::new([Id::from(0), Id::from(1)]),
            },
            Durations::default(),
        );
        let me = Id::from(0);
        let timeout = Event::Timeout {
            timer: Timer::Heartbeat,
        };
        assert!(actor.step(me, None, timeout.clone()).is_none());
        let started = actor.step(me, None, Event::fresh()).unwrap();
        let state = started.after(None);
        // A heartbeat from a lower process is answered and changes nothing.
        let heartbeat = Event::Msg {
            src: Id::from(1),
            msg: Msg::Heartbeat { tag: Tag::first(1) },
        };
        let answered = actor.step(me, Some(&state), heartbeat).unwrap();
        assert!(answered.state.is_none());
        assert!(matches!(
            answered.out.iter().next(),
            Some(Command::Send(dst, Msg::HeartbeatAck { .. })) if *dst == Id::from(1)
        ));
        let shutdown = actor.step(me, Some(&state), Event::Shutdown).unwrap();
        assert_eq!(shutdown.after(Some(&state)), state);
    }
}
