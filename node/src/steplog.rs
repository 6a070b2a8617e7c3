//! The NDJSON step log: one line per handler call, enough to replay it through the same handler.
//!
//! ```text
//! {"node":5003,"seq":0,"t_ms":0,"event":{"kind":"start","storage":null,"actor":{..}},
//!  "before":null,"after":{..State..},"commands":[{"kind":"send","dst":5005,"msg":{"type":"election"}},..]}
//! ```
//!
//! * `event.kind` is `start` (with the `storage` passed to `on_start` and the `actor`
//!   configuration), `msg` (`src`, `msg`: passed to `on_msg`), `timeout` (`timer`: passed to
//!   `on_timeout`) or `shutdown` (`on_shutdown`, on SIGINT/SIGTERM).
//! * `before` is the state the handler got (`null` for `start`), `after` the state it left.
//! * `commands` are the handler's output in order: `send` (`dst`, `msg`), `set_timer` (`timer`,
//!   `range`: the serde form of the `Range<Duration>`, and `ms`: its start, which the node uses
//!   as the delay), `cancel_timer` (`timer`), `save` (`storage`), `choose_random` (`key`).
//! * `t_ms` is milliseconds since the node process started; `seq` counts steps from 0.

use bully_model::{Bully, Msg, State, Storage, Timer};
use serde::Serialize;
use stateright::actor::{Command, Id};
use std::io::Write;
use std::ops::Range;
use std::time::Duration;

/// What a handler was called with.
#[derive(Debug, Clone)]
pub enum Event {
    Start(Option<Storage>),
    Msg(Id, Msg),
    Timeout(Timer),
    Shutdown,
}

/// The JSON form of an event (`kind` first).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum EventJson<'a> {
    Start {
        storage: &'a Option<Storage>,
        actor: &'a Bully,
    },
    Msg {
        src: Id,
        msg: &'a Msg,
    },
    Timeout {
        timer: &'a Timer,
    },
    Shutdown,
}

impl Event {
    fn json<'a>(&'a self, actor: &'a Bully) -> EventJson<'a> {
        match self {
            Event::Start(storage) => EventJson::Start { storage, actor },
            Event::Msg(src, msg) => EventJson::Msg { src: *src, msg },
            Event::Timeout(timer) => EventJson::Timeout { timer },
            Event::Shutdown => EventJson::Shutdown,
        }
    }

    /// Short description for log lines ("why" a role changed).
    pub fn describe(&self) -> String {
        match self {
            Event::Start(None) => "started fresh".into(),
            Event::Start(Some(s)) => format!("restarted (saved promise {})", s.promised),
            Event::Msg(src, msg) => format!("{} from {}", msg.kind(), usize::from(*src)),
            Event::Timeout(t) => format!("{} timer fired", timer_name(t)),
            Event::Shutdown => "shutting down".into(),
        }
    }
}

pub fn timer_name(t: &Timer) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{t:?}"))
}

pub type Cmd = Command<Msg, Timer, (), Storage>;

/// The JSON form of a command (`kind` first).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum CommandJson<'a> {
    Send {
        dst: Id,
        msg: &'a Msg,
    },
    SetTimer {
        timer: &'a Timer,
        range: &'a Range<Duration>,
        ms: f64,
    },
    CancelTimer {
        timer: &'a Timer,
    },
    Save {
        storage: &'a Storage,
    },
    ChooseRandom {
        key: &'a str,
    },
}

fn command_json(c: &Cmd) -> CommandJson<'_> {
    match c {
        Command::Send(dst, msg) => CommandJson::Send { dst: *dst, msg },
        Command::SetTimer(timer, range) => CommandJson::SetTimer {
            timer,
            range,
            ms: range.start.as_secs_f64() * 1000.0,
        },
        Command::CancelTimer(timer) => CommandJson::CancelTimer { timer },
        Command::Save(storage) => CommandJson::Save { storage },
        Command::ChooseRandom(key, _) => CommandJson::ChooseRandom { key },
    }
}

#[derive(Serialize)]
struct StepLine<'a> {
    node: Id,
    seq: u64,
    t_ms: u64,
    event: EventJson<'a>,
    before: Option<&'a State>,
    after: &'a State,
    commands: Vec<CommandJson<'a>>,
}

/// Where step lines go.
pub struct StepLog {
    out: Box<dyn Write + Send>,
}

impl StepLog {
    pub fn new(out: Box<dyn Write + Send>) -> StepLog {
        StepLog { out }
    }

    /// Writes one line and flushes it (a node killed with -9 loses no finished step).
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        node: Id,
        seq: u64,
        t_ms: u64,
        event: &Event,
        actor: &Bully,
        before: Option<&State>,
        after: &State,
        commands: &[Cmd],
    ) -> std::io::Result<()> {
        let line = StepLine {
            node,
            seq,
            t_ms,
            event: event.json(actor),
            before,
            after,
            commands: commands.iter().map(command_json).collect(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.out.write_all(&bytes)?;
        self.out.flush()
    }
}
