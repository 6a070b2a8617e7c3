//! The event loop: wait for frames or the next timer, call the model's handler, execute its
//! commands. No protocol decision is made here.
//!
//! Data path of one message: socket → `wire::decode` (typed error → counted, dropped) →
//! [`Inbound::Msg`] → `Bully::step` (the model's one dispatch) → commands → `Send` → transport,
//! `SetTimer`/`CancelTimer` → the deadline table, `Save` → [`Store`].

use crate::failpoints;
use crate::leadership::{Leadership, RoleName};
use crate::status::{MessageCounts, RoleChange, Status, TimingStatus, TransportStats};
use crate::steplog::StepLog;
use crate::storage::{self, Store, StoreError};
use crate::transport::{Inbound, ReplyTo, Transport};
use crate::watchers::Watchers;
use crate::wire::{self, unix_ms};
use bully_model::{
    timer_name, Bully, Cmd, Epoch, Event, LoggedEvent, LoggedStep, Members, Role, State, Storage,
    Timer,
};
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Longest sleep without a timer due (the loop also wakes on frames and signals).
const IDLE: Duration = Duration::from_secs(1);
/// Most status requests waiting for a role change at once; beyond it the oldest is answered
/// at once (a client that forgets its requests cannot make the node hoard them).
const MAX_STATUS_WATCHES: usize = 256;

/// A status request waiting for a role change ([`wire::Watch`]).
struct StatusWatch {
    reply: ReplyTo,
    nonce: Option<u64>,
    /// The `role_changes` count the asker knows.
    role_changes: u64,
    /// When it is answered anyway.
    until: Instant,
}

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

/// Static facts shown by `status`.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub listen: String,
    pub advertise: String,
}

fn ids(m: &Members) -> String {
    let v: Vec<String> = m.iter().map(|i| usize::from(i).to_string()).collect();
    v.join(", ")
}

/// A role in words, for log lines and the cluster view.
pub fn describe_role(role: &Role) -> String {
    match role {
        Role::Joining { contact } => format!("joining via {}", usize::from(*contact)),
        Role::Electing { waiting } => format!("electing (asked {})", ids(waiting)),
        Role::Waiting => "waiting for a coordinator".into(),
        Role::Halting { epoch, waiting, .. } => {
            format!("candidate for epoch {epoch} (halting {})", ids(waiting))
        }
        Role::Coordinator { epoch } => format!("COORDINATOR (epoch {epoch})"),
        Role::Follower { epoch } => {
            format!("follower of {} (epoch {epoch})", usize::from(epoch.leader))
        }
    }
}

/// How long after being set `timer` fires, for a handler that asked for `delay`.
///
/// Heartbeats leave on the wall clock's multiples of the heartbeat period rather than a
/// period after the last reply: at most `delay` after the timer is set, never later, so the
/// failure detector's bound ([`bully_model::Durations::failover_bound`]) holds unchanged, and
/// the model lets a heartbeat timer fire at any time (it only paces). What it buys: followers
/// on one clock heartbeat together, so a coordinator answers its members in one burst per
/// period instead of one wake-up per member (a 64-node coordinator's idle CPU, BENCHMARKS.md).
/// Every other timer is a failure detector or a retry and fires exactly `delay` later.
fn timer_delay(timer: Timer, delay: Duration) -> Duration {
    match timer {
        Timer::Heartbeat => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(delay, |now| until_next_multiple(now, delay)),
        _ => delay,
    }
}

/// The time from `now` to the next multiple of `period` after it: in `(0, period]` (a zero
/// period: zero).
fn until_next_multiple(now: Duration, period: Duration) -> Duration {
    let period_ns = period.as_nanos();
    if period_ns == 0 {
        return Duration::ZERO;
    }
    let left = period_ns - now.as_nanos() % period_ns;
    Duration::from_nanos(left.min(u64::MAX as u128) as u64)
}

fn in_election(role: &Role) -> bool {
    matches!(role, Role::Electing { .. } | Role::Halting { .. })
}

#[derive(Debug, Default)]
struct Stats {
    sent: BTreeMap<&'static str, u64>,
    received: BTreeMap<&'static str, u64>,
    timeouts: BTreeMap<String, u64>,
    elections_started: u64,
    elections_seen: u64,
    role_changes: u64,
    status_requests: u64,
    /// Heartbeat round trips longer than half the timeout, and the longest one seen.
    slow_round_trips: u64,
    longest_round_trip: Duration,
    last_role_change: Option<RoleChange>,
    epoch_since_unix_ms: Option<u64>,
    highest_epoch: Option<Epoch>,
}

pub struct Runtime<T: Transport> {
    id: u64,
    me: Id,
    actor: Bully,
    transport: T,
    store: Option<Store>,
    info: NodeInfo,
    state: Option<State>,
    timers: BTreeMap<Timer, Instant>,
    steplog: Option<StepLog>,
    seq: u64,
    stats: Stats,
    started: Instant,
    started_unix_ms: u64,
    last_saved: Option<Storage>,
    shutdown: Arc<AtomicBool>,
    watchers: Watchers,
    /// When this node last sent a heartbeat to each peer (for `bully_heartbeat_rtt_seconds`).
    heartbeat_sent: BTreeMap<Id, Instant>,
    /// Status requests waiting for a role change, oldest first.
    status_watches: Vec<StatusWatch>,
    /// This run's incarnation ([`storage::next_incarnation`]): numbers its start.
    incarnation: u64,
}

impl<T: Transport> Runtime<T> {
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
            info,
            state: None,
            timers: BTreeMap::new(),
            steplog,
            seq: 0,
            stats: Stats::default(),
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            last_saved: None,
            shutdown,
            watchers: Watchers::default(),
            heartbeat_sent: BTreeMap::new(),
            status_watches: Vec::new(),
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
        let external_timers = self.transport.external_timers();
        while !self.shutdown.load(Ordering::SeqCst) {
            if !external_timers {
                self.fire_due_timers()?;
            }
            let now = Instant::now();
            self.answer_status_watches(now, false);
            let wait = self
                .timers
                .values()
                .min()
                .filter(|_| !external_timers)
                .map_or(IDLE, |at| at.saturating_duration_since(now))
                .min(IDLE);
            let wait = self
                .status_watches
                .iter()
                .map(|w| w.until.saturating_duration_since(now))
                .fold(wait, Duration::min);
            self.transport.wait(wait, &mut inbound)?;
            for item in inbound.drain(..) {
                match item {
                    Inbound::Msg { from, msg } => {
                        *self.stats.received.entry(msg.kind()).or_default() += 1;
                        self.watchers.metrics.received(msg.kind());
                        if matches!(msg, bully_model::Msg::HeartbeatAck { .. }) {
                            if let Some(at) = self.heartbeat_sent.remove(&from) {
                                self.round_trip(from, at.elapsed());
                            }
                        }
                        self.step(Event::Msg { src: from, msg })?;
                    }
                    Inbound::Timer { timer } => {
                        if self.timers.remove(&timer).is_some() {
                            *self.stats.timeouts.entry(timer_name(&timer)).or_default() += 1;
                            self.step(Event::Timeout { timer })?;
                        } else {
                            warn!(node = self.id, "told to fire {timer:?}, which is not set");
                        }
                    }
                    Inbound::Status {
                        reply,
                        nonce,
                        watch,
                    } => {
                        self.stats.status_requests += 1;
                        match watch {
                            Some(w) if w.role_changes == self.stats.role_changes => {
                                self.watch_status(reply, nonce, w)
                            }
                            _ => {
                                let status = self.status_json();
                                self.transport.reply_status(reply, nonce, &status);
                            }
                        }
                    }
                }
            }
            if self.transport.take_book_changed() {
                self.persist_book();
            }
            self.watchers
                .metrics
                .dropped_totals(&self.transport.counters().dropped);
        }
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

    /// Records a heartbeat round trip. One longer than half the timeout is counted and logged
    /// (sparsely): Bully's failure detector is accurate only while every round trip stays
    /// under the timeout (the checked model's `--timing sync`; without it the checker shows two
    /// coordinators), and this node is getting close to that edge.
    fn round_trip(&mut self, peer: Id, rtt: Duration) {
        self.watchers.metrics.heartbeat_rtt(rtt);
        self.stats.longest_round_trip = self.stats.longest_round_trip.max(rtt);
        let timeout = self.actor.timing.timeout;
        if rtt * 2 <= timeout {
            return;
        }
        self.stats.slow_round_trips += 1;
        if crate::transport::worth_logging(self.stats.slow_round_trips) {
            warn!(
                node = self.id,
                peer = usize::from(peer),
                count = self.stats.slow_round_trips,
                "a heartbeat round trip took {} ms, over half the {} ms timeout: the failure \
                 detector is accurate only while round trips stay under the timeout; raise \
                 --timeout",
                rtt.as_millis(),
                timeout.as_millis()
            );
        }
    }

    /// Parks a status request until the role changes or its wait is over.
    fn watch_status(&mut self, reply: ReplyTo, nonce: Option<u64>, watch: wire::Watch) {
        if self.status_watches.len() >= MAX_STATUS_WATCHES {
            let oldest = self.status_watches.remove(0);
            let status = self.status_json();
            self.transport
                .reply_status(oldest.reply, oldest.nonce, &status);
        }
        self.status_watches.push(StatusWatch {
            reply,
            nonce,
            role_changes: watch.role_changes,
            until: Instant::now() + watch.wait,
        });
    }

    /// Answers the parked status requests whose role change came or whose wait is over (all of
    /// them when `all`); the status is built once for all of them.
    fn answer_status_watches(&mut self, now: Instant, all: bool) {
        let changes = self.stats.role_changes;
        let due = |w: &StatusWatch| all || w.role_changes != changes || w.until <= now;
        if !self.status_watches.iter().any(due) {
            return;
        }
        let status = self.status_json();
        let (answer, keep) = std::mem::take(&mut self.status_watches)
            .into_iter()
            .partition(due);
        self.status_watches = keep;
        for w in answer {
            self.transport.reply_status(w.reply, w.nonce, &status);
        }
    }

    fn status_json(&self) -> serde_json::Value {
        serde_json::to_value(self.status()).expect("a status reply serialises")
    }

    fn fire_due_timers(&mut self) -> Result<(), RunError> {
        loop {
            let now = Instant::now();
            let due = self
                .timers
                .iter()
                .filter(|(_, at)| **at <= now)
                .min_by_key(|(_, at)| **at)
                .map(|(t, _)| *t);
            let Some(timer) = due else { return Ok(()) };
            self.timers.remove(&timer);
            *self.stats.timeouts.entry(timer_name(&timer)).or_default() += 1;
            self.step(Event::Timeout { timer })?;
        }
    }

    /// One handler call: run it, log it, execute its commands.
    fn step(&mut self, event: Event) -> Result<(), RunError> {
        let Some(stepped) = self.actor.step(self.me, self.state.as_ref(), event.clone()) else {
            return Ok(());
        };
        let before = self.state.take();
        let after = stepped.after(before.as_ref());
        let commands: Vec<Cmd> = stepped.out.into_iter().map(Cmd::from).collect();
        if let Some(log) = &mut self.steplog {
            let line = LoggedStep {
                node: self.me,
                seq: self.seq,
                t_ms: self.started.elapsed().as_millis() as u64,
                event: LoggedEvent {
                    actor: matches!(event, Event::Start { .. }).then(|| self.actor.clone()),
                    event: event.clone(),
                },
                before: before.clone(),
                after: after.clone(),
                commands: commands.clone(),
            };
            if let Err(e) = log.write(&line) {
                warn!(
                    node = self.id,
                    "step log failed ({e}); no more steps are logged"
                );
                self.steplog = None;
            }
        }
        self.seq += 1;
        self.observe(before.as_ref(), &after, &event);
        self.transport.observe(&after);
        self.state = Some(after);
        // The handler emits a step's save first (persist before send); executing in order
        // keeps that promise, and the step log above lists them in this order.
        let (mut saved, mut sends) = (false, 0);
        for c in commands {
            match &c {
                Cmd::Save { .. } => saved = true,
                Cmd::Send { msg, .. } => {
                    failpoints::before_send(self.id, msg, sends, saved);
                    sends += 1;
                }
                _ => {}
            }
            self.execute(c)?;
        }
        Ok(())
    }

    /// Counters and the one readable log line per role change. A role change is a change of
    /// the leadership view ([`Leadership`]), the one rule that the log, `status`, the metrics,
    /// the hooks and the library's subscribers share.
    fn observe(&mut self, before: Option<&State>, after: &State, event: &Event) {
        let was = before.map(|s| &s.role);
        if !was.is_some_and(in_election) && in_election(&after.role) {
            self.stats.elections_started += 1;
            self.watchers.metrics.election_started();
        }
        if let Some(e) = after.epoch() {
            if !matches!(self.stats.highest_epoch, Some(h) if h >= e) {
                self.stats.highest_epoch = Some(e);
                self.stats.elections_seen += 1;
                self.stats.epoch_since_unix_ms = Some(unix_ms());
            }
        }
        if !self.watchers.update(self.id, Leadership::of(after)) {
            return;
        }
        self.stats.role_changes += 1;
        let to = describe_role(&after.role);
        let why = event.describe();
        let from = was.map(describe_role);
        self.stats.last_role_change = Some(RoleChange {
            unix_ms: unix_ms(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            from: was.map(|r| RoleName::of(r).to_string()),
            to: RoleName::of(&after.role).to_string(),
            why: why.clone(),
        });
        match from {
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

    fn execute(&mut self, c: Cmd) -> Result<(), RunError> {
        match c {
            Cmd::Send { dst, msg } => {
                *self.stats.sent.entry(msg.kind()).or_default() += 1;
                self.watchers.metrics.sent(msg.kind());
                if matches!(msg, bully_model::Msg::Heartbeat { .. }) {
                    self.heartbeat_sent.insert(dst, Instant::now());
                }
                self.transport.send(dst, &msg);
            }
            Cmd::SetTimer { timer, range, .. } => {
                self.timers
                    .insert(timer, Instant::now() + timer_delay(timer, range.start));
            }
            Cmd::CancelTimer { timer } => {
                self.timers.remove(&timer);
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
        let now = Instant::now();
        let state = self.state.as_ref();
        let role = state.map(|s| &s.role);
        let tc = self.transport.counters();
        let names = |m: &BTreeMap<&'static str, u64>| -> BTreeMap<String, u64> {
            m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let timing = &self.actor.timing;
        Status {
            id: self.id,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            listen: self.info.listen.clone(),
            advertise: self.info.advertise.clone(),
            role: role.map(|r| RoleName::of(r).to_string()),
            role_detail: role.cloned(),
            role_text: role.map(describe_role),
            coordinator: state.and_then(State::coordinator),
            is_coordinator: state.is_some_and(State::is_coordinator),
            epoch: state.and_then(State::epoch),
            epoch_text: state.and_then(State::epoch).map(|e| e.to_string()),
            promised: state.map(|s| s.promised),
            members: state.map(|s| s.members.clone()),
            endpoints: self.transport.address_book(),
            timers: self
                .timers
                .iter()
                .map(|(t, at)| {
                    let left = at.saturating_duration_since(now).as_millis() as u64;
                    (timer_name(t), left)
                })
                .collect(),
            elections_started: self.stats.elections_started,
            elections_seen: self.stats.elections_seen,
            role_changes: self.stats.role_changes,
            last_role_change: self.stats.last_role_change.clone(),
            epoch_since_unix_ms: self.stats.epoch_since_unix_ms,
            messages: MessageCounts {
                sent: names(&self.stats.sent),
                received: names(&self.stats.received),
                sent_total: self.stats.sent.values().sum(),
                received_total: self.stats.received.values().sum(),
            },
            timeouts: self.stats.timeouts.clone(),
            dropped: names(&tc.dropped),
            dropped_total: tc.dropped.values().sum(),
            auth: self.transport.auth_status(),
            transport: TransportStats {
                deferred: tc.deferred,
                frames_in: tc.frames_in,
                frames_out: tc.frames_out,
                bytes_in: tc.bytes_in,
                bytes_out: tc.bytes_out,
            },
            status_requests: self.stats.status_requests,
            slow_round_trips: self.stats.slow_round_trips,
            longest_round_trip_ms: self.stats.longest_round_trip.as_secs_f64() * 1000.0,
            steps: self.seq,
            timing: TimingStatus {
                heartbeat_ms: ms(timing.heartbeat),
                timeout_ms: ms(timing.timeout),
                // Without the one-way delays (four of them are added to it).
                failover_bound_ms: ms(timing.failover_bound(Duration::ZERO)),
            },
            storage: self.store.as_ref().map(|s| s.path().display().to_string()),
            saved: self.last_saved.clone(),
            started_unix_ms: self.started_unix_ms,
            now_unix_ms: unix_ms(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_wait_for_the_next_multiple_of_the_period() {
        let ms = Duration::from_millis;
        let period = ms(100);
        // Never later than a period, never at once: on a multiple, the next one.
        assert_eq!(until_next_multiple(ms(1_000), period), period);
        assert_eq!(until_next_multiple(ms(1_001), period), ms(99));
        assert_eq!(until_next_multiple(ms(1_099), period), ms(1));
        for now in (0..1_000_000_007u64).step_by(9_999_991) {
            let left = until_next_multiple(Duration::from_nanos(now), period);
            assert!(
                left > Duration::ZERO && left <= period,
                "{now} ns: {left:?}"
            );
            assert_eq!((now + left.as_nanos() as u64) % 100_000_000, 0);
        }
        assert_eq!(until_next_multiple(ms(5), Duration::ZERO), Duration::ZERO);
        // Only the heartbeat is placed on the grid; detectors and retries wait exactly.
        assert_eq!(timer_delay(Timer::HeartbeatTimeout, ms(300)), ms(300));
        assert!(timer_delay(Timer::Heartbeat, period) <= period);
    }
}
