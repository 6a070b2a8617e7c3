//! The checked system: N [`Bully`] actors on a simulated network, plus what stateright's
//! `ActorModel` does not model by itself:
//!
//! * **Timing.** stateright fires timers at any moment (an asynchronous system). With
//!   [`Timing::Sync`] a failure-detector timeout may fire only when the reply it waits for can no
//!   longer arrive: for every awaited peer, no message from it is in flight to us, and it is
//!   crashed or our request to it is gone (lost). That is the bounded-delay, accurate
//!   failure-detector assumption Bully is built on. Retry timers fire only once nothing to or
//!   from the process is in flight (the timeout is longer than any message delay), which also
//!   keeps the network finite.
//! * **Fault budgets.** A total number of crashes and of recoveries (stateright's `max_crashes`
//!   bounds only the *concurrently* crashed), so the state space is finite.
//! * **Message fate.** A delivered message is consumed even when the receiver ignores it, and a
//!   message to a crashed process is lost (as with ZeroMQ's `IMMEDIATE` toward a dead peer),
//!   rather than waiting, unboundedly delayed, for the process to come back.
//! * **Ghost state** ([`Ghost`]): fault counters and what the properties need to see over time
//!   (each process's accepted epochs, notable events), never read by the protocol.

use crate::mutants::Variant;
use crate::protocol::{Bully, Epoch, Members, Msg, Role, Start, Timer, Timing as Durations, Wait};
use serde::{Deserialize, Serialize};
use stateright::actor::{
    ActorModel, ActorModelAction, ActorModelState, Envelope, Id, LossyNetwork, Network,
};
use stateright::{Model, Path, Property};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub type SysState = ActorModelState<Bully, Ghost>;
pub type SysAction = ActorModelAction<Msg, Timer, ()>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkKind {
    /// Unordered, no loss, no duplicates.
    Reliable,
    /// Unordered; any message may be lost.
    Lossy,
    /// Unordered; any message may be delivered again, any number of times.
    Duplicating,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Timing {
    /// Bounded delay and an accurate failure detector (Bully's assumption).
    Sync,
    /// Timeouts may fire at any time.
    Async,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum StartMode {
    /// Every process knows every member and holds an election.
    Full,
    /// Process 0 starts alone (the first coordinator); the others know only process 0.
    Join,
}

/// What is checked. Build with [`Config::new`] and the setters, then [`Config::into_model`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    pub processes: usize,
    /// Total crashes allowed over a whole execution.
    pub crashes: u8,
    /// Total recoveries allowed over a whole execution.
    pub recoveries: u8,
    pub network: NetworkKind,
    pub timing: Timing,
    pub start: StartMode,
    pub variant: Variant,
    /// Bound for runs whose state space is otherwise infinite (async timing, lossy or
    /// duplicating networks): no process goes past this epoch round and at most
    /// `max_in_flight` messages are in flight. Sync + reliable is finite without it.
    pub max_round: u32,
    pub max_in_flight: usize,
    /// Discard dead messages at once (the dead-message reduction, see [`BullySystem`]). On by
    /// default; off only to measure or cross-check it.
    #[serde(default = "yes")]
    pub reduction: bool,
}

fn yes() -> bool {
    true
}

impl Config {
    pub fn new(processes: usize) -> Self {
        Config {
            processes,
            crashes: 1,
            recoveries: 1,
            network: NetworkKind::Reliable,
            timing: Timing::Sync,
            start: StartMode::Full,
            variant: Variant::Correct,
            max_round: processes as u32 + 3,
            max_in_flight: 2 * processes * processes,
            reduction: true,
        }
    }
    pub fn crashes(mut self, k: u8) -> Self {
        self.crashes = k;
        self
    }
    pub fn recoveries(mut self, r: u8) -> Self {
        self.recoveries = r;
        self
    }
    pub fn network(mut self, n: NetworkKind) -> Self {
        self.network = n;
        self
    }
    pub fn timing(mut self, t: Timing) -> Self {
        self.timing = t;
        self
    }
    pub fn start(mut self, s: StartMode) -> Self {
        self.start = s;
        self
    }
    pub fn variant(mut self, v: Variant) -> Self {
        self.variant = v;
        self
    }
    pub fn reduction(mut self, on: bool) -> Self {
        self.reduction = on;
        self
    }
    /// Whether the run needs the `max_round`/`max_in_flight` bound to be finite (a mutant may
    /// elect forever, so mutants are bounded too).
    pub fn is_bounded(&self) -> bool {
        self.timing == Timing::Async
            || self.network != NetworkKind::Reliable
            || self.variant != Variant::Correct
    }
    /// The actor of process `i`: the same [`Bully`] the node runs.
    pub fn actor(&self, i: usize) -> Bully {
        let start = match self.start {
            StartMode::Full => Start::Full {
                members: (0..self.processes).map(Id::from).collect(),
            },
            StartMode::Join if i == 0 => Start::Full {
                members: Members::new([Id::from(0)]),
            },
            StartMode::Join => Start::Join {
                contact: Id::from(0),
            },
        };
        Bully {
            start,
            timing: Durations::default(),
            variant: self.variant,
        }
    }
    pub fn into_model(self) -> BullySystem {
        BullySystem::new(self)
    }
    /// The `bully-model` arguments that select this configuration (defaults left out).
    pub fn cli_args(&self) -> String {
        use clap::ValueEnum;
        let name = |v: Option<clap::builder::PossibleValue>| {
            v.map(|p| p.get_name().to_string()).unwrap_or_default()
        };
        let mut args = format!("-n {}", self.processes);
        if self.crashes != 1 {
            args += &format!(" --crashes {}", self.crashes);
        }
        if self.recoveries != 1 {
            args += &format!(" --recoveries {}", self.recoveries);
        }
        if self.network != NetworkKind::Reliable {
            args += &format!(" --network {}", name(self.network.to_possible_value()));
        }
        if self.timing != Timing::Sync {
            args += &format!(" --timing {}", name(self.timing.to_possible_value()));
        }
        if self.start != StartMode::Full {
            args += &format!(" --start {}", name(self.start.to_possible_value()));
        }
        if self.variant != Variant::Correct {
            args += &format!(" --variant {}", name(self.variant.to_possible_value()));
        }
        if !self.reduction {
            args += " --no-reduction";
        }
        args
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} processes, {} crash(es), {} recovery(ies), {:?} network, {:?} timing, {:?} start",
            self.processes, self.crashes, self.recoveries, self.network, self.timing, self.start
        )?;
        if self.variant != Variant::Correct {
            write!(f, ", mutant {:?}", self.variant)?;
        }
        if !self.reduction {
            write!(f, ", no dead-message reduction")?;
        }
        if self.is_bounded() {
            write!(
                f,
                ", bounded to epoch round {} and {} messages in flight",
                self.max_round, self.max_in_flight
            )?;
        }
        Ok(())
    }
}

/// Events the `sometimes` properties look for (bits of [`Ghost::events`]).
pub mod event {
    /// A process crashed while coordinator.
    pub const COORDINATOR_CRASHED: u8 = 1;
    /// After that, another process took office.
    pub const FAILOVER: u8 = 2;
    /// A process that had recovered took office over a lower previous coordinator.
    pub const RECOVERED_TAKEOVER: u8 = 4;
    /// The lowest process left normal operation to start an election.
    pub const LOWEST_ELECTING: u8 = 8;
    /// After that, a higher process took office.
    pub const LOWEST_ELECTION_FINISHED: u8 = 16;
}

/// Ghost state: observed by the checker, never read by the protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ghost {
    pub crashes: u8,
    pub recoveries: u8,
    /// Per process: the highest epoch it has taken office with or followed.
    pub accepted: Vec<Epoch>,
    /// Set once any process takes office with an epoch not strictly above the last epoch it
    /// accepted (or not its own), or follows an epoch below one it accepted before.
    pub epoch_violation: bool,
    /// The highest epoch anyone took office with.
    pub last_office: Epoch,
    /// Processes that have recovered at least once (bit i = process i).
    pub recovered: u32,
    pub events: u8,
}

/// The checked system, a `stateright::Model`.
///
/// **Dead-message reduction.** After every step, messages their receiver ignores forever
/// ([`Bully::ignores_forever`]) are discarded, as if delivered at once. This is exact, not an
/// approximation: delivering a dead message changes nothing but the network, and a message in
/// flight only ever *blocks* a synchronous timeout (see [`BullySystem::timer_enabled`]), so
/// every state `s` reaches its reduced form `s − dead` by no-op deliveries, and `s − dead` can
/// do everything `s` can. The two graphs are stuttering-equivalent for every property here
/// (none reads the network), liveness included. `model/tests/reduction.rs` compares both
/// graphs state by state.
pub struct BullySystem {
    pub cfg: Config,
    inner: ActorModel<Bully, Config, Ghost>,
    /// Once set, no state has any successor: a running search drains its queue and finishes
    /// (see [`BullySystem::halt_switch`]).
    halt: Arc<AtomicBool>,
}

impl BullySystem {
    pub fn new(cfg: Config) -> Self {
        assert!(
            (1..=32).contains(&cfg.processes),
            "1 to 32 processes are supported"
        );
        let network = match cfg.network {
            NetworkKind::Duplicating => Network::new_unordered_duplicating([]),
            _ => Network::new_unordered_nonduplicating([]),
        };
        let ghost = Ghost {
            accepted: vec![Epoch::none(); cfg.processes],
            ..Ghost::default()
        };
        let inner = ActorModel::new(cfg.clone(), ghost)
            .actors((0..cfg.processes).map(|i| cfg.actor(i)))
            .init_network(network)
            .lossy_network(if cfg.network == NetworkKind::Lossy {
                LossyNetwork::Yes
            } else {
                LossyNetwork::No
            })
            .max_crashes(cfg.crashes as usize);
        BullySystem {
            cfg,
            inner,
            halt: Arc::default(),
        }
    }

    /// The switch that ends a search early: once it is set, [`Model::actions`] returns nothing
    /// on stateright's checker threads, so every one of them runs out of work and finishes
    /// normally. (Stopping threads one by one instead, with stateright's `finish_when`, can
    /// leave the others waiting forever for work in stateright 0.31's job broker.) Other
    /// threads still see every action: that is how the counterexamples found so far are
    /// replayed from their action indices.
    pub fn halt_switch(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.halt)
    }

    fn halted(&self) -> bool {
        self.halt.load(Ordering::Relaxed)
            && std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("checker-"))
    }

    /// Whether the synchronous timing rule lets `timer` of process `p` fire now.
    pub fn timer_enabled(&self, s: &SysState, p: Id, timer: Timer) -> bool {
        if self.cfg.timing == Timing::Async {
            return true;
        }
        // Duplicated messages never leave the network: only crashes count as failures there.
        let duplicating = self.cfg.network == NetworkKind::Duplicating;
        let lossy = self.cfg.network == NetworkKind::Lossy;
        let in_flight = |from: Id, to: Id| {
            !duplicating && s.network.iter_all().any(|e| e.src == from && e.dst == to)
        };
        match s.actor_states[usize::from(p)].wait(timer) {
            Wait::Pace => Self::heartbeat_matters(s, p),
            // Accurate failure detection: suspect only peers that are down, once nothing they
            // sent us is still on its way; on a lossy network also peers whose request or
            // reply was lost (nothing in flight either way): that is how loss fools Bully.
            Wait::Suspect(peers) => peers.iter().all(|q| {
                !in_flight(q, p) && (s.crashed[usize::from(q)] || (lossy && !in_flight(p, q)))
            }),
            // Asking again presumes nothing; it waits until the last request or its reply is
            // gone (the timeout exceeds the round trip).
            Wait::Retry(peers) => peers.iter().all(|q| !in_flight(q, p) && !in_flight(p, q)),
            // The wait for a COORDINATOR after an answer or a halt: under bounded delay it
            // expires only once the election it waits for is over (no message in flight, no
            // process still electing or halting) without the announcement reaching us.
            Wait::Outcome => {
                duplicating
                    || (s.network.len() == 0
                        && s.actor_states.iter().enumerate().all(|(i, a)| {
                            s.crashed[i]
                                || !matches!(a.role, Role::Electing { .. } | Role::Halting { .. })
                        }))
            }
        }
    }

    /// Whether a heartbeat from follower `p` now could change anything. A round trip with a
    /// coordinator that is up, still in office for the same epoch and has the same member
    /// list leaves both processes exactly as they were (a stutter), and whatever the reply
    /// would report later is reported just as well by a heartbeat sent later. So the checker
    /// lets the pacing timer fire only when the answer can differ: this removes only
    /// stuttering interleavings, not behaviours.
    fn heartbeat_matters(s: &SysState, p: Id) -> bool {
        let me = &s.actor_states[usize::from(p)];
        let Role::Follower { epoch } = me.role else {
            return true;
        };
        let c = usize::from(epoch.leader);
        let coordinator = &s.actor_states[c];
        // The coordinator learns only the sender; the follower learns the coordinator's list.
        s.crashed[c]
            || coordinator.role != (Role::Coordinator { epoch })
            || !coordinator.members.contains(p)
            || coordinator.members.iter().any(|m| !me.members.contains(m))
    }

    /// Drops, in one pass over the network, what can never be delivered: messages to crashed
    /// processes (lost, see the module docs) and, with the reduction on, dead messages (see
    /// [`BullySystem`]).
    fn discard_undeliverable(&self, s: &mut SysState) {
        let reduce = self.cfg.reduction;
        if !reduce && !s.crashed.iter().any(|&c| c) {
            return;
        }
        let actors = &self.inner.actors;
        let states = &s.actor_states;
        let crashed = &s.crashed;
        let undeliverable = |e: &Envelope<Msg>| {
            let i = usize::from(e.dst);
            crashed[i] || (reduce && actors[i].ignores_forever(e.dst, &states[i], e.src, &e.msg))
        };
        match &mut s.network {
            Network::UnorderedNonDuplicating(m) => m.retain(|e, _| !undeliverable(e)),
            Network::UnorderedDuplicating(set, _) => set.retain(|e| !undeliverable(e)),
            Network::Ordered(_) => unreachable!("ordered networks are not offered"),
        }
    }

    /// A delivery the receiver ignored: stateright leaves such a message in flight forever; a
    /// real network consumes it.
    fn consume(s: &SysState, src: Id, dst: Id, msg: Msg) -> SysState {
        let mut next = s.clone();
        if let Network::UnorderedNonDuplicating(m) = &mut next.network {
            let env = Envelope { src, dst, msg };
            if let Some(count) = m.get_mut(&env) {
                *count -= 1;
                if *count == 0 {
                    m.remove(&env);
                }
            }
        }
        next
    }

    /// Records what the properties observe about process `i`'s step from `before` to `after`.
    fn observe(&self, last: &SysState, next: &mut SysState, i: usize, action: &SysAction) {
        let before = &last.actor_states[i].role;
        let after = next.actor_states[i].role.clone();
        let g = &mut next.history;
        match (&after, action) {
            (Role::Coordinator { epoch }, _) if before != &after || last.crashed[i] => {
                if epoch.leader != Id::from(i) || *epoch <= g.accepted[i] {
                    g.epoch_violation = true;
                }
                g.accepted[i] = g.accepted[i].max(*epoch);
                if g.events & event::COORDINATOR_CRASHED != 0 {
                    g.events |= event::FAILOVER;
                }
                if g.recovered & (1 << i) != 0
                    && g.last_office != Epoch::none()
                    && g.last_office.leader < Id::from(i)
                {
                    g.events |= event::RECOVERED_TAKEOVER;
                }
                if g.events & event::LOWEST_ELECTING != 0 && i != 0 {
                    g.events |= event::LOWEST_ELECTION_FINISHED;
                }
                g.last_office = g.last_office.max(*epoch);
            }
            (Role::Follower { epoch }, _) if before != &after || last.crashed[i] => {
                if *epoch < g.accepted[i] {
                    g.epoch_violation = true;
                }
                g.accepted[i] = g.accepted[i].max(*epoch);
            }
            (Role::Electing { .. }, ActorModelAction::Timeout(_, Timer::HeartbeatTimeout))
                if i == 0 && matches!(before, Role::Follower { .. }) =>
            {
                g.events |= event::LOWEST_ELECTING;
            }
            _ => {}
        }
    }

    /// Whether `a` is a fault (crash, recovery, loss): the liveness check asks what happens
    /// once faults stop, so it follows only the other actions.
    pub fn is_fault(a: &SysAction) -> bool {
        matches!(
            a,
            ActorModelAction::Crash(_) | ActorModelAction::Recover(_) | ActorModelAction::Drop(_)
        )
    }
}

impl Model for BullySystem {
    type State = SysState;
    type Action = SysAction;

    fn init_states(&self) -> Vec<SysState> {
        self.inner.init_states()
    }

    fn actions(&self, s: &SysState, actions: &mut Vec<SysAction>) {
        if self.halted() {
            return;
        }
        self.inner.actions(s, actions);
        let g = &s.history;
        actions.retain(|a| match a {
            ActorModelAction::Crash(_) => g.crashes < self.cfg.crashes,
            ActorModelAction::Recover(_) => g.recoveries < self.cfg.recoveries,
            ActorModelAction::Deliver { dst, .. } => !s.crashed[usize::from(*dst)],
            ActorModelAction::Timeout(p, t) => self.timer_enabled(s, *p, *t),
            _ => true,
        });
    }

    fn next_state(&self, last: &SysState, action: SysAction) -> Option<SysState> {
        let mut next = match self.inner.next_state(last, action.clone()) {
            Some(next) => next,
            None => match &action {
                ActorModelAction::Deliver { src, dst, msg } => {
                    Self::consume(last, *src, *dst, msg.clone())
                }
                _ => return None,
            },
        };
        match action {
            ActorModelAction::Crash(id) => {
                let i = usize::from(id);
                next.history.crashes += 1;
                if last.actor_states[i].is_coordinator() {
                    next.history.events |= event::COORDINATOR_CRASHED;
                }
            }
            ActorModelAction::Recover(id) => {
                let i = usize::from(id);
                next.history.recoveries += 1;
                next.history.recovered |= 1 << i;
                self.observe(last, &mut next, i, &action);
            }
            ActorModelAction::Deliver { dst: id, .. } | ActorModelAction::Timeout(id, _) => {
                self.observe(last, &mut next, usize::from(id), &action);
            }
            _ => {}
        }
        self.discard_undeliverable(&mut next);
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut p = vec![
            Property::always("single coordinator", crate::properties::single_coordinator),
            Property::always("agreement", crate::properties::agreement),
            Property::always("epoch order", crate::properties::epoch_order),
            Property::sometimes("liveness goal reached", crate::properties::settled),
        ];
        // Each `sometimes` is registered only where the configuration allows what it looks
        // for; a registered one that is never reached fails the check.
        if self.cfg.crashes > 0 && self.cfg.processes > 1 {
            p.push(Property::sometimes(
                "coordinator crashes and a new one is elected",
                crate::properties::failover_happens,
            ));
            p.push(Property::sometimes(
                "lowest process starts an election a higher one finishes",
                crate::properties::lowest_election_finished,
            ));
        }
        if self.cfg.crashes > 0 && self.cfg.recoveries > 0 && self.cfg.processes > 1 {
            p.push(Property::sometimes(
                "recovered higher process takes over",
                crate::properties::recovered_takeover,
            ));
        }
        if self.cfg.start == StartMode::Join && self.cfg.processes > 1 {
            p.push(Property::sometimes(
                "joiner learns every member",
                crate::properties::joiner_learns_all,
            ));
        }
        p
    }

    fn within_boundary(&self, s: &SysState) -> bool {
        if !self.cfg.is_bounded() {
            return true;
        }
        s.network.len() <= self.cfg.max_in_flight
            && s.actor_states
                .iter()
                .all(|a| a.promised.round <= self.cfg.max_round)
    }

    fn format_action(&self, action: &SysAction) -> String {
        crate::properties::describe_action(action)
    }

    fn format_step(&self, last: &SysState, action: SysAction) -> Option<String> {
        self.inner.format_step(last, action)
    }

    fn as_svg(&self, path: Path<SysState, SysAction>) -> Option<String> {
        self.inner.as_svg(path)
    }
}
