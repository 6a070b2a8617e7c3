//! The event loop: wait for frames or the next timer, call the model's handler, execute its
//! commands. No protocol decision is made here.
//!
//! Data path of one message: socket → `wire::decode` (typed error → counted, dropped) →
//! [`Inbound::Msg`] → `Bully::step` (the model's one dispatch) → commands → `Send` → transport,
//! `SetTimer`/`CancelTimer` → the deadline table, `Save` → [`Store`].
//!
//! Beside the loop, each in a file of its own under `runtime/`: the deadline table (`timers`),
//! the counters (`stats`), heartbeat round trips (`round_trips`), status requests waiting for
//! a role change (`status_watches`) and the status reply (`status_reply`).

mod round_trips;
mod stats;
mod status_reply;
mod status_watches;
mod timers;

pub use status_reply::NodeInfo;

use crate::failpoints;
use crate::leadership::{describe_role, Leadership, RoleName};
use crate::status::Status;
use crate::steplog::StepLog;
use crate::storage::{self, Store, StoreError};
use crate::transport::{Inbound, Wire};
use crate::watchers::Watchers;
use crate::wire::{self, Watch};
use bully_model::{Bully, Cmd, Event, LoggedEvent, LoggedStep, SendId, State, Storage};
use round_trips::RoundTrips;
use stateright::actor::Id;
use stats::Stats;
use status_watches::{Asker, StatusWatches};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timers::Timers;
use tracing::{error, info, warn};

/// Longest sleep without a timer due (the loop also wakes on frames and signals).
const IDLE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A `Save` that could not be made durable. The node stops: going on would let it break the
    /// promise it just made after its next restart (a crash is within the fault model; a
    /// forgotten promise is not).
    #[error("{0}; stopping: a promise that cannot be saved must not be acted on")]
    Save(#[from] StoreError),
    #[error("transport: {0}")]
    Transport(#[from] anyhow::Error),
}

pub struct Runtime<T: Wire> {
    id: u64,
    me: Id,
    actor: Bully,
    transport: T,
    store: Option<Store>,
    /// The storage last saved (the address book is saved again next to it when it changes).
    last_saved: Option<Storage>,
    info: NodeInfo,
    state: Option<State>,
    timers: Timers,
    steplog: Option<StepLog>,
    /// Handler steps taken.
    seq: u64,
    stats: Stats,
    round_trips: RoundTrips,
    status_watches: StatusWatches,
    watchers: Watchers,
    shutdown: Arc<AtomicBool>,
    /// This run's incarnation ([`storage::next_incarnation`]): numbers its start.
    incarnation: u64,
}

impl<T: Wire> Runtime<T> {
    pub fn new(
        id: u64,
        actor: Bully,
        transport: T,
        store: Option<Store>,
        info: NodeInfo,
        steplog: Option<StepLog>,
        shutdown: Arc<AtomicBool>,
    ) -> Self {
        Runtime {
            id,
            me: wire::id(id),
            actor,
            transport,
            store,
            last_saved: None,
            info,
            state: None,
            timers: Timers::default(),
            steplog,
            seq: 0,
            stats: Stats::new(),
            round_trips: RoundTrips::default(),
            status_watches: StatusWatches::default(),
            watchers: Watchers::default(),
            shutdown,
            incarnation: storage::unix_nanos(),
        }
    }

    /// This run's incarnation, from [`storage::next_incarnation`] (default: the clock alone).
    pub fn with_incarnation(mut self, incarnation: u64) -> Self {
        self.incarnation = incarnation;
        self
    }

    /// Reports leadership changes and counts to `watchers` (metrics, hooks, subscribers).
    pub fn with_watchers(mut self, watchers: Watchers) -> Self {
        self.watchers = watchers;
        self
    }

    /// Runs until SIGINT/SIGTERM (the `shutdown` flag), then lets the protocol say goodbye.
    pub fn run(mut self, saved: Option<Storage>) -> Result<(), RunError> {
        self.last_saved = saved.clone();
        self.step(Event::Start {
            storage: saved,
            incarnation: storage::start_number(self.incarnation),
        })?;
        let mut inbound = Vec::new();
        while !self.shutdown.load(Ordering::SeqCst) {
            self.turn(&mut inbound)?;
        }
        self.stop()
    }

    /// One turn of the loop: fire the timers due, wait for traffic, handle what came.
    fn turn(&mut self, inbound: &mut Vec<Inbound>) -> Result<(), RunError> {
        let external_timers = self.transport.external_timers();
        if !external_timers {
            self.fire_due_timers()?;
        }
        let now = Instant::now();
        self.answer_status_watches(now, false);
        let timers = self.timers.next_deadline().filter(|_| !external_timers);
        let wait = [timers, self.status_watches.next_deadline()]
            .into_iter()
            .flatten()
            .map(|at| at.saturating_duration_since(now))
            .fold(IDLE, Duration::min);
        self.transport.wait(wait, inbound)?;
        for item in inbound.drain(..) {
            self.handle(item)?;
        }
        if self.transport.take_book_changed() {
            self.persist_book();
        }
        self.watchers
            .metrics
            .dropped_totals(&self.transport.counters().dropped);
        Ok(())
    }

    fn handle(&mut self, item: Inbound) -> Result<(), RunError> {
        match item {
            Inbound::Msg { from, msg, sent } => {
                self.stats.received(msg.kind(), &self.watchers.metrics);
                let timeout = self.actor.timing.timeout;
                let metrics = &self.watchers.metrics;
                self.round_trips
                    .received(self.id, from, &msg, timeout, metrics);
                self.step_receipt(Event::Msg { src: from, msg }, sent)
            }
            Inbound::Timer { timer } => {
                if self.timers.cancel(timer) {
                    self.stats.timeout(&timer);
                    self.step(Event::Timeout { timer })
                } else {
                    warn!(node = self.id, "told to fire {timer:?}, which is not set");
                    Ok(())
                }
            }
            Inbound::Status {
                reply,
                nonce,
                watch,
            } => {
                self.on_status((reply, nonce), watch);
                Ok(())
            }
        }
    }

    /// The protocol's goodbye, the last status answers and leadership change, the wire's grace.
    fn stop(mut self) -> Result<(), RunError> {
        info!(node = self.id, "signal received: stopping");
        self.step(Event::Shutdown)?;
        self.answer_status_watches(Instant::now(), true);
        // A coordinator that resigns steps down: hooks and subscribers hear it.
        self.watchers.update(
            self.id,
            Leadership {
                role: RoleName::Stopped,
                coordinator: None,
                epoch: None,
            },
        );
        let timeout = self.actor.timing.timeout;
        self.transport
            .close((timeout / 2).min(Duration::from_millis(300)));
        Ok(())
    }

    /// A status request: answered now, or (watching, with the current role-change count)
    /// parked until the role changes.
    fn on_status(&mut self, asker: Asker, watch: Option<Watch>) {
        self.stats.status_requests += 1;
        match watch {
            Some(w) if w.role_changes == self.stats.role_changes => {
                let evicted = self.status_watches.park(asker, w);
                self.answer_status(evicted.into_iter().collect());
            }
            _ => self.answer_status(vec![asker]),
        }
    }

    /// Answers the parked status requests whose role change came or whose wait is over (all of
    /// them when `all`).
    fn answer_status_watches(&mut self, now: Instant, all: bool) {
        let due = self
            .status_watches
            .take_due(now, self.stats.role_changes, all);
        self.answer_status(due);
    }

    /// Sends the status, built once, to every asker.
    fn answer_status(&mut self, askers: Vec<Asker>) {
        if askers.is_empty() {
            return;
        }
        let status = serde_json::to_value(self.status()).expect("a status reply serialises");
        for (reply, nonce) in askers {
            self.transport.reply_status(reply, nonce, &status);
        }
    }

    fn fire_due_timers(&mut self) -> Result<(), RunError> {
        while let Some(timer) = self.timers.take_due(Instant::now()) {
            self.stats.timeout(&timer);
            self.step(Event::Timeout { timer })?;
        }
        Ok(())
    }

    /// One handler call: run it, log it, execute its commands.
    fn step(&mut self, event: Event) -> Result<(), RunError> {
        self.step_receipt(event, None)
    }

    /// [`Runtime::step`] for a received message, logged with the send it is (`sent`, as the
    /// wire carried it).
    fn step_receipt(&mut self, event: Event, sent: Option<SendId>) -> Result<(), RunError> {
        let Some(stepped) = self.actor.step(self.me, self.state.as_ref(), event.clone()) else {
            return Ok(());
        };
        if let Some(broken) = &stepped.broken {
            // A mutant broke a run-time invariant (the correct protocol panics inside the
            // step): stop before acting on it, as the assertion would. Under the replayer
            // (its wire fires the timers) the node follows a model trace, which the checker's
            // properties judge.
            assert!(self.transport.external_timers(), "{broken}");
            warn!(node = self.id, "{broken}");
        }
        let before = self.state.take();
        let after = stepped.after(before.as_ref());
        let commands: Vec<Cmd> = stepped.out.into_iter().map(Cmd::from).collect();
        self.log_step((&event, sent), &before, &after, &commands);
        let seq = self.seq;
        self.seq += 1;
        self.observe(before.as_ref(), &after, &event);
        self.transport.observe(&after);
        self.state = Some(after);
        // The handler emits a step's save first (persist before send); executing in order
        // keeps that promise, and the step log above lists them in this order.
        let (mut saved, mut sends) = (false, 0);
        let inc = storage::start_number(self.incarnation);
        for (cmd, c) in commands.into_iter().enumerate() {
            let sent = SendId {
                inc,
                seq,
                cmd: cmd as u32,
            };
            match &c {
                Cmd::Save { .. } => saved = true,
                Cmd::Send { msg, .. } => {
                    failpoints::before_send(self.id, msg, sends, saved);
                    sends += 1;
                }
                _ => {}
            }
            self.execute(c, sent)?;
        }
        Ok(())
    }

    /// Appends the step to the step log, if there is one (a log that fails is closed).
    fn log_step(
        &mut self,
        (event, sent): (&Event, Option<SendId>),
        before: &Option<State>,
        after: &State,
        cmds: &[Cmd],
    ) {
        let Some(log) = &mut self.steplog else {
            return;
        };
        let line = LoggedStep {
            node: self.me,
            seq: self.seq,
            t_ms: self.stats.uptime_ms(),
            event: LoggedEvent {
                actor: matches!(event, Event::Start { .. }).then(|| self.actor.clone()),
                event: event.clone(),
                sent,
            },
            before: before.clone(),
            after: after.clone(),
            commands: cmds.to_vec(),
        };
        if let Err(e) = log.write(&line) {
            warn!(
                node = self.id,
                "step log failed ({e}); no more steps are logged"
            );
            self.steplog = None;
        }
    }

    /// Counters and the one readable log line per role change ([`crate::leadership::Change`]).
    fn observe(&mut self, before: Option<&State>, after: &State, event: &Event) {
        let was = before.map(|s| &s.role);
        self.stats.stepped(was, after, &self.watchers.metrics);
        if !self.watchers.update(self.id, Leadership::of(after)) {
            return;
        }
        let why = event.describe();
        self.stats.role_changed(was, &after.role, why.clone());
        let to = describe_role(&after.role);
        match was.map(describe_role) {
            None => {
                info!(node = self.id, promised = %after.promised, "{} -> {to} ({why})", self.id)
            }
            Some(from) => info!(
                node = self.id,
                promised = %after.promised,
                "{}: {from} -> {to} ({why})",
                self.id
            ),
        }
    }

    /// Executes one command; `sent` names it, should it be a send.
    fn execute(&mut self, c: Cmd, sent: SendId) -> Result<(), RunError> {
        match c {
            Cmd::Send { dst, msg } => {
                self.stats.sent(msg.kind(), &self.watchers.metrics);
                self.round_trips.sent(dst, &msg);
                self.transport.send(dst, &msg, sent);
            }
            Cmd::SetTimer { timer, range, .. } => self.timers.set(timer, range.start),
            Cmd::CancelTimer { timer } => {
                self.timers.cancel(timer);
            }
            Cmd::Save { storage } => {
                if let Some(store) = &self.store {
                    store.save(&storage, &self.transport.address_book())?;
                }
                self.last_saved = Some(storage);
            }
            Cmd::ChooseRandom { .. } => {}
        }
        Ok(())
    }

    /// The address book is saved next to the storage, so a restarted joiner can reach members.
    fn persist_book(&mut self) {
        if let (Some(store), Some(saved)) = (&self.store, &self.last_saved) {
            if let Err(e) = store.save(saved, &self.transport.address_book()) {
                error!(node = self.id, "saving the address book failed: {e}");
            }
        }
    }

    /// The `status` reply.
    pub fn status(&self) -> Status {
        status_reply::status(self)
    }
}
