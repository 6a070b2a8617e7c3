//! The checked system: N [`Bully`] actors on a simulated network, as a stateright [`Model`].
//!
//! The model runs the very handlers the node runs, through the same dispatch
//! ([`Bully::step`]), and adds what the protocol does not decide:
//!
//! * **Timing.** An untimed model fires timers at any moment (an asynchronous system). With
//!   [`Timing::Sync`] a failure-detector timeout may fire only when the reply it waits for can no
//!   longer arrive: for every awaited peer, no message from it is in flight to us, and it is
//!   crashed or our request to it is gone (lost). That is the bounded-delay, accurate
//!   failure-detector assumption Bully is built on. Retry timers fire only once nothing to or
//!   from the process is in flight (the timeout is longer than any message delay), which also
//!   keeps the network finite.
//! * **Fault budgets.** A total number of crashes and of recoveries, so the state space is
//!   finite. A crash wipes a process's volatile state and timers; a recovery restarts it from
//!   what it saved.
//! * **Message fate.** A delivered message is consumed even when the receiver ignores it, and a
//!   message to a crashed process is lost (as with ZeroMQ's `IMMEDIATE` toward a dead peer),
//!   rather than waiting, unboundedly delayed, for the process to come back.
//! * **Ghost state** ([`Ghost`], [`Proc::accepted`]): fault counters and what the properties
//!   need to see over time (each process's accepted epochs, notable events), never read by the
//!   protocol.
//!
//! The state is stored compactly ([`state`]); the Explorer shows it decoded.

mod dead;
pub mod state;
pub(crate) mod svg;

use crate::mutants::Variant;
use crate::protocol::{Bully, Durations, Members, Msg, Start, Timer, Wait};
use crate::step::Event;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
pub use state::{Channels, Env, Ep, Mask, MsgCode, Network, Proc, RoleCode};
use stateright::actor::{Command, Id, Out};

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
    /// The order messages travel in (a duplicating network is always unordered).
    #[serde(default = "fifo")]
    pub channels: Channels,
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
    /// A crash may cut short what its process sent: while a process is crashed, messages it
    /// sent that are still in flight may be lost (a `kill -9` discards the frames still queued
    /// inside the dead process's libzmq). With FIFO channels only a suffix of each connection
    /// is lost (what reached the kernel is delivered); unordered, any of them. On by default;
    /// off only to compare.
    #[serde(default = "yes")]
    pub truncation: bool,
    /// Rename tags to current/stale (see [`MsgCode`](state::MsgCode)). On by default; off
    /// only to cross-check it, depth by depth (`model/tests/renaming.rs`): with real tags the
    /// graph is infinite.
    #[serde(default = "yes")]
    pub tag_renaming: bool,
    /// A recovery may also lose the process's storage: it restarts as if it had never run
    /// (a node without `--data-dir`, or whose data directory was lost). Off by default: the
    /// node keeps its storage when given a data directory; on, to see what a loss allows.
    #[serde(default)]
    pub lose_storage: bool,
}

fn yes() -> bool {
    true
}

fn fifo() -> Channels {
    Channels::Fifo
}

impl Config {
    pub fn new(processes: usize) -> Self {
        Config {
            processes,
            crashes: 1,
            recoveries: 1,
            network: NetworkKind::Reliable,
            channels: Channels::Fifo,
            timing: Timing::Sync,
            start: StartMode::Full,
            variant: Variant::Correct,
            max_round: processes as u32 + 3,
            max_in_flight: 2 * processes * processes,
            reduction: true,
            truncation: true,
            tag_renaming: true,
            lose_storage: false,
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
    pub fn channels(mut self, c: Channels) -> Self {
        self.channels = c;
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
    pub fn tag_renaming(mut self, on: bool) -> Self {
        self.tag_renaming = on;
        self
    }
    pub fn truncation(mut self, on: bool) -> Self {
        self.truncation = on;
        self
    }
    pub fn lose_storage(mut self, on: bool) -> Self {
        self.lose_storage = on;
        self
    }
    /// Whether a crash may cut its process's sends short here: [`Config::truncation`], except on
    /// a lossy network, which loses any message anyway.
    pub fn cuts_sends_short(&self) -> bool {
        self.truncation && self.network != NetworkKind::Lossy
    }
    /// Whether the run needs the `max_round`/`max_in_flight` bound to be finite (a mutant may
    /// elect forever, so mutants are bounded too).
    pub fn is_bounded(&self) -> bool {
        self.timing == Timing::Async
            || self.network != NetworkKind::Reliable
            || self.variant != Variant::Correct
    }
    /// The order messages travel in: a duplicating network is a set, never ordered.
    pub fn effective_channels(&self) -> Channels {
        if self.network == NetworkKind::Duplicating {
            Channels::Unordered
        } else {
            self.channels
        }
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
    /// The `bully-model` flags that select this configuration, in their one text form
    /// ([`ModelArgs`](crate::cli::ModelArgs)).
    pub fn cli_args(&self) -> String {
        crate::cli::ModelArgs::of(self).to_string()
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} processes, {} crash(es), {} recovery(ies), {:?} network, {} channels, {:?} timing, {:?} start",
            self.processes,
            self.crashes,
            self.recoveries,
            self.network,
            match self.effective_channels() {
                Channels::Fifo => "FIFO",
                Channels::Unordered => "unordered",
            },
            self.timing,
            self.start
        )?;
        if self.variant != Variant::Correct {
            write!(f, ", mutant {:?}", self.variant)?;
        }
        if !self.reduction {
            write!(f, ", no dead-message reduction")?;
        }
        if !self.tag_renaming {
            write!(f, ", tags not renamed")?;
        }
        if !self.truncation {
            write!(f, ", crashes never cut sends short")?;
        }
        if self.lose_storage {
            write!(f, ", recoveries may lose their storage")?;
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

/// Ghost state: observed by the checker, never read by the protocol. (Each process's accepted
/// epoch is [`Proc::accepted`].)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    pub crashes: u8,
    pub recoveries: u8,
    /// Set once any process takes office with an epoch not strictly above the last epoch it
    /// accepted (or not its own), or follows an epoch below one it accepted before.
    pub epoch_violation: bool,
    pub events: u8,
    /// Processes that have recovered at least once.
    pub recovered: Mask,
    /// The highest epoch anyone took office with.
    pub last_office: Ep,
}

/// A state of the checked system.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SysState {
    /// Process `i` is `procs[i]`.
    pub procs: SmallVec<[Proc; 6]>,
    pub network: Network,
    pub ghost: Ghost,
}

impl SysState {
    pub fn is_crashed(&self, i: usize) -> bool {
        self.procs[i].crashed
    }
    /// Process `i`'s protocol state (for a crashed process: what it saved).
    pub fn state(&self, i: usize) -> crate::protocol::State {
        self.procs[i].decode()
    }
    /// The crashed processes.
    pub fn crashed(&self) -> Mask {
        Mask::of((0..self.procs.len()).filter(|&i| self.procs[i].crashed))
    }
    /// The live processes, with their indices.
    pub fn live(&self) -> impl Iterator<Item = (usize, &Proc)> + '_ {
        self.procs.iter().enumerate().filter(|(_, p)| !p.crashed)
    }
}

impl fmt::Debug for SysState {
    /// Decoded, for people. The alternate form (`{:#?}`, the Explorer's) starts with the
    /// state's summary ([`crate::properties::summarize_state`]), then the full state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{}\n\n", crate::properties::summarize_state(self))?;
        }
        self.in_full().fmt(f)
    }
}

impl SysState {
    /// Every field of the state, decoded, without the summary.
    pub fn in_full(&self) -> impl fmt::Debug + '_ {
        InFull(self)
    }
}

/// [`SysState::in_full`].
struct InFull<'a>(&'a SysState);

impl fmt::Debug for InFull<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        struct Process<'a>(&'a Proc);
        impl fmt::Debug for Process<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let p = self.0;
                if p.crashed {
                    return f
                        .debug_struct("Crashed")
                        .field("saved", &p.storage())
                        .field("accepted (ghost)", &p.accepted)
                        .finish();
                }
                let s = p.decode();
                f.debug_struct("Up")
                    .field("role", &s.role)
                    .field("members", &s.members)
                    .field("promised", &s.promised)
                    .field("timers", &p.timers().collect::<Vec<_>>())
                    .field("requests lost to crashes", &p.lost)
                    .field("accepted (ghost)", &p.accepted)
                    .finish()
            }
        }
        f.debug_struct("SysState")
            .field(
                "processes",
                &s.procs.iter().map(Process).collect::<Vec<_>>(),
            )
            .field("in flight", &s.network)
            .field("ghost", &s.ghost)
            .finish()
    }
}

/// A step of the checked system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// A message in flight reaches its receiver.
    Deliver(Env),
    /// A message in flight is lost (lossy network only).
    Drop(Env),
    /// A message its sender had not sent yet when it crashed is lost with it (while the sender
    /// is crashed; [`Config::truncation`]).
    CutShort(Env),
    /// A timer of a process fires.
    Timeout(Id, Timer),
    /// A process crashes.
    Crash(Id),
    /// A crashed process restarts from what it saved.
    Recover(Id),
    /// A crashed process restarts with its storage lost: as if it had never run (a node without
    /// `--data-dir`, or whose data directory is gone; [`Config::lose_storage`]).
    RecoverLost(Id),
}

pub type SysAction = Action;

/// Channels that must be empty for a timer to fire: the synchronous timing rule's only reads
/// of the network (see [`BullySystem::timer_guard`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quiet {
    /// The whole network.
    pub all: bool,
    /// `from[src]` holds every `dst` such that nothing from `src` to `dst` may be in flight.
    pub from: SmallVec<[Mask; 6]>,
}

impl Quiet {
    /// No requirement (`n` processes).
    pub fn none(n: usize) -> Quiet {
        Quiet {
            all: false,
            from: SmallVec::from_elem(Mask::default(), n),
        }
    }
    pub fn require(&mut self, src: usize, dst: usize) {
        self.from[src] = self.from[src].with(dst);
    }
    /// Whether nothing may be in flight from `src` to `dst`.
    pub fn requires(&self, src: usize, dst: usize) -> bool {
        self.all || self.from[src].contains(dst)
    }
    /// Whether `net` meets the requirement. A copy already delivered once (a duplicating
    /// network) does not count: only the first copy is bound by the delay bound.
    pub fn holds(&self, net: &Network) -> bool {
        net.iter().all(|e| {
            e.delivered || !(self.all || self.from[e.src as usize].contains(e.dst as usize))
        })
    }
}

/// What a step does to the network. The step computes everything else from the processes
/// alone; these are its only effects on the messages in flight, applied in order
/// ([`BullySystem::apply_op`]), and each touches only the channels it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetOp {
    /// The first copy of the message leaves (delivered or lost).
    Remove(Env),
    /// The message's first copy arrived on a duplicating network: it stays, as delivered.
    Delivered(Env),
    /// The last copy leaves (its sender crashed before it left).
    RemoveLast(Env),
    /// Every copy leaves (it is dead).
    RemoveAll(Env),
    /// The message is sent.
    Add(Env),
    /// Everything to this process is lost (it crashed).
    ClearTo(u8),
    /// This process restarted: what it sent so far is from an older incarnation.
    Restarted(u8),
    /// This process has a new tag: what carried its tag so far is stale (see
    /// [`MsgCode`](state::MsgCode)).
    NewTag(u8),
    /// The messages to this process that it now ignores forever are discarded (the
    /// dead-message reduction), judged by its state after the step.
    DiscardDeadTo(u8),
}

/// The network effects of one step.
pub type NetOps = SmallVec<[NetOp; 12]>;

impl Action {
    /// The process whose step this is (the receiver of a delivery); none for a loss.
    pub fn process(&self) -> Option<usize> {
        match self {
            Action::Deliver(e) => Some(e.dst as usize),
            Action::Drop(_) | Action::CutShort(_) => None,
            Action::Timeout(p, _)
            | Action::Crash(p)
            | Action::Recover(p)
            | Action::RecoverLost(p) => Some(usize::from(*p)),
        }
    }
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
    actors: Vec<Bully>,
    /// Once set, no state has any successor: a running search drains its queue and finishes
    /// (see [`BullySystem::halt_switch`]).
    halt: Arc<AtomicBool>,
}

/// What one handler run did to one process: its new state (if it changed) and its commands.
struct Effects {
    state: Option<crate::protocol::State>,
    out: Out<Bully>,
}

impl BullySystem {
    pub fn new(cfg: Config) -> Self {
        assert!(
            (1..=state::MAX_PROCESSES).contains(&cfg.processes),
            "1 to {} processes are supported",
            state::MAX_PROCESSES
        );
        BullySystem {
            actors: (0..cfg.processes).map(|i| cfg.actor(i)).collect(),
            cfg,
            halt: Arc::default(),
        }
    }

    /// The actor of process `i`.
    pub fn actor(&self, i: usize) -> &Bully {
        &self.actors[i]
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

    pub(crate) fn halted(&self) -> bool {
        self.halt.load(Ordering::Relaxed)
            && std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("checker-"))
    }

    fn duplicating(&self) -> bool {
        self.cfg.network == NetworkKind::Duplicating
    }

    /// Whether the synchronous timing rule lets `timer` of process `p` fire now.
    pub fn timer_enabled(&self, s: &SysState, p: usize, timer: Timer) -> bool {
        self.timer_guard(s, p, timer)
            .is_some_and(|quiet| quiet.holds(&s.network))
    }

    /// When `timer` of process `p` may fire: never (`None`), or once the channels of the
    /// returned [`Quiet`] are empty. Everything but the network is read from `s`; the network
    /// only through the channels named (the symbolic engine relies on that).
    pub fn timer_guard(&self, s: &SysState, p: usize, timer: Timer) -> Option<Quiet> {
        let n = s.procs.len();
        if self.cfg.timing == Timing::Async {
            // Any timer at any time; an announcement nobody would act on is still a stutter.
            return (timer != Timer::Announce || self.announcement_matters(s, p))
                .then(|| Quiet::none(n));
        }
        // On a duplicating network only first copies count as in flight (`Quiet::holds`):
        // later copies may arrive at any time.
        let lossy = self.cfg.network == NetworkKind::Lossy;
        let mut quiet = Quiet::none(n);
        // "Nothing from `from` to `to` is in flight."
        let in_flight_never = |quiet: &mut Quiet, from: usize, to: usize| quiet.require(from, to);
        match s.procs[p].decode().wait(timer) {
            Wait::Pace if timer == Timer::Announce => {
                // Bounded delay: the period is far longer than a round trip, so the last
                // announcement, and whatever it was answered with, has arrived before the
                // next one leaves (nothing from or to `p` is still on its way).
                if matches!(s.procs[p].role, RoleCode::Coordinator { .. }) {
                    for q in (0..n).filter(|&q| q != p) {
                        quiet.require(p, q);
                        quiet.require(q, p);
                    }
                }
                if !self.announcement_matters(s, p) {
                    return None;
                }
            }
            Wait::Pace => {
                if !Self::heartbeat_matters(s, p) {
                    return None;
                }
            }
            // Accurate failure detection: suspect only peers that are down, once nothing they
            // sent us is still on its way; on a lossy network also peers whose request or
            // reply was lost (nothing in flight either way): that is how loss fools Bully.
            // A peer that crashed after our last request to it lost that request, even if it
            // is up again (`Proc::lost`): the node's timer fires for it too.
            Wait::Suspect(peers) => {
                for q in peers.iter().map(usize::from) {
                    in_flight_never(&mut quiet, q, p);
                    if !(s.procs[q].crashed || s.procs[p].lost.contains(q)) {
                        if !lossy {
                            return None;
                        }
                        in_flight_never(&mut quiet, p, q);
                    }
                }
            }
            // Asking again presumes nothing; it waits until the last request or its reply is
            // gone (the timeout exceeds the round trip).
            Wait::Retry(peers) => {
                for q in peers.iter().map(usize::from) {
                    in_flight_never(&mut quiet, q, p);
                    in_flight_never(&mut quiet, p, q);
                }
            }
            // The wait for a COORDINATOR after an answer or a halt: under bounded delay it
            // expires only once the election it waits for is over (no message in flight, no
            // process still electing or halting) without the announcement reaching us.
            Wait::Outcome => {
                if s.procs.iter().any(|a| {
                    !a.crashed
                        && matches!(a.role, RoleCode::Electing { .. } | RoleCode::Halting { .. })
                }) {
                    return None;
                }
                quiet.all = true;
            }
        }
        Some(quiet)
    }

    /// The peers process `p` now waits for with a failure-detector timer.
    fn suspected(p: &Proc) -> Mask {
        let state = p.decode();
        p.timers()
            .fold(Mask::default(), |m, t| match state.wait(t) {
                Wait::Suspect(peers) => Mask(m.0 | Mask::encode(&peers).0),
                _ => m,
            })
    }

    /// Whether coordinator `p`'s periodic announcement now could change anything: whether
    /// some live member would act on it (the handler runs on that member's state as it is
    /// now). Like [`heartbeat_matters`](Self::heartbeat_matters), this leaves out
    /// announcements that every receiver ignores: in steady state a coordinator's period
    /// changes nothing. (Under bounded delay [`BullySystem::timer_guard`] also waits until
    /// nothing from or to `p` is on its way.)
    fn announcement_matters(&self, s: &SysState, p: usize) -> bool {
        let me = &s.procs[p];
        let RoleCode::Coordinator { epoch } = me.role else {
            return true;
        };
        let msg = Msg::Coordinator {
            epoch: epoch.decode(),
            members: me.decode().members,
        };
        // Whether member `m` would act on it: its handler, run on its state as it is now.
        let acts = |m: usize| {
            let before = s.state(m);
            let event = Event::Msg {
                src: Id::from(p),
                msg: msg.clone(),
            };
            let stepped = self.actors[m]
                .step(Id::from(m), Some(&before), event)
                .expect("a live process has a state");
            stepped.state.is_some() || !stepped.out.is_empty()
        };
        me.members.iter().any(|m| {
            let q = &s.procs[m];
            if m == p || q.crashed {
                return false;
            }
            // The common case, decided without the handler (the safety search of unordered
            // N=3 join takes about 20 % less time): a follower of this very term, with nothing
            // promised beyond it, that knows every member. Debug builds (the tests too) ask the
            // handler as well.
            if self.cfg.variant == Variant::Correct
                && m < p
                && q.role == (RoleCode::Follower { epoch })
                && q.promised == epoch
                && me.members.is_subset(q.members)
            {
                debug_assert!(!acts(m), "a follower of the term acted on its announcement");
                return false;
            }
            acts(m)
        })
    }

    /// Whether a heartbeat from follower `p` now could change anything. A round trip with a
    /// coordinator that is up, still in office for the same epoch and has the same member
    /// list leaves both processes exactly as they were (a stutter), and whatever the reply
    /// would report later is reported just as well by a heartbeat sent later. So the checker
    /// lets the pacing timer fire only when the answer can differ: this removes only
    /// stuttering interleavings, not behaviours.
    fn heartbeat_matters(s: &SysState, p: usize) -> bool {
        let me = &s.procs[p];
        let RoleCode::Follower { epoch } = me.role else {
            return true;
        };
        let coordinator = &s.procs[epoch.leader()];
        // The coordinator learns only the sender; the follower learns the coordinator's list.
        coordinator.crashed
            || coordinator.role != (RoleCode::Coordinator { epoch })
            || !coordinator.members.contains(p)
            || !coordinator.members.is_subset(me.members)
    }

    /// Runs the handler that `action` triggers at its process, without changing `s`. `None`
    /// for a loss, a crash, or a timeout stateright would not count as a step (the handler
    /// only set the same timer again).
    fn effects(&self, s: &SysState, action: &Action) -> Option<Effects> {
        let (p, event) = match *action {
            Action::Deliver(e) => (
                e.dst as usize,
                Event::Msg {
                    src: e.src(),
                    msg: e.msg(),
                },
            ),
            Action::Timeout(id, timer) => (usize::from(id), Event::Timeout { timer }),
            // The environment numbers the start one above the last (the node uses its clock),
            // which keeps the tags of a start without storage new.
            Action::Recover(id) | Action::RecoverLost(id) => {
                let p = &s.procs[usize::from(id)];
                let storage = matches!(action, Action::Recover(_)).then(|| p.storage());
                let incarnation = u64::from(p.starts) + 1;
                (
                    usize::from(id),
                    Event::Start {
                        storage,
                        incarnation,
                    },
                )
            }
            Action::Drop(_) | Action::CutShort(_) | Action::Crash(_) => return None,
        };
        // A recovering process starts afresh from its storage: no state before.
        let before = (!matches!(event, Event::Start { .. })).then(|| s.state(p));
        let stepped = self.actors[p].step(Id::from(p), before.as_ref(), event)?;
        if let Action::Timeout(_, timer) = *action {
            let out = &stepped.out;
            let renewed_only =
                out.len() == 1 && matches!(&out[0], Command::SetTimer(t, _) if *t == timer);
            if stepped.state.is_none() && renewed_only {
                return None;
            }
        }
        Some(Effects {
            state: stepped.state,
            out: stepped.out,
        })
    }

    /// Applies the effects of process `p`'s handler to `next`'s processes, and records its
    /// sends in `ops` (a message to a crashed process is lost at once; see [`NetOp`]).
    fn apply(&self, next: &mut SysState, p: usize, fx: Effects, ops: &mut NetOps) {
        if let Some(state) = &fx.state {
            next.procs[p].encode(state);
        }
        // Tags are renamed (see `MsgCode`): a new one makes what named the old one stale,
        // before this step's own messages go out, and is then called current.
        let rename = self.cfg.tag_renaming;
        let tag = next.procs[p].tag.decode();
        if rename && tag != state::CURRENT {
            ops.push(NetOp::NewTag(p as u8));
            next.procs[p].tag = state::TagCode::encode(state::CURRENT);
        }
        debug_assert!(
            !fx.out.iter().skip(1).any(|c| matches!(c, Command::Save(_))),
            "a step saves first (persist before send): {:?}",
            fx.out
        );
        let first_send = ops.len();
        for c in fx.out {
            match c {
                Command::Send(dst, msg) => {
                    let e = if rename {
                        // A reply's asker is its receiver, whose tag is current.
                        let asker = state::asker(&msg, Id::from(p), dst);
                        let asker_tag = if asker == Some(Id::from(p)) {
                            tag
                        } else {
                            state::CURRENT
                        };
                        Env::new(Id::from(p), dst, &state::renamed(&msg, asker_tag))
                    } else {
                        Env::new(Id::from(p), dst, &msg)
                    };
                    // A message to a crashed process is lost at once; so is the request
                    // it may have been (`Proc::lost`). A request that arrives replaces one
                    // that was lost.
                    let to = e.dst as usize;
                    if next.procs[to].crashed {
                        if msg.is_request() {
                            next.procs[p].lost = next.procs[p].lost.with(to);
                        }
                        continue;
                    }
                    if msg.is_request() {
                        next.procs[p].lost = next.procs[p].lost.without(to);
                    }
                    ops.push(NetOp::Add(e));
                }
                Command::SetTimer(t, _) => next.procs[p].timers |= state::timer_bit(t),
                Command::CancelTimer(t) => next.procs[p].timers &= !state::timer_bit(t),
                // What a process saves is always derived from its state (see `Proc`).
                Command::Save(saved) => {
                    debug_assert_eq!(saved, next.procs[p].storage(), "saved state drifted");
                }
                Command::ChooseRandom(..) => unreachable!("Bully makes no random choices"),
            }
        }
        // Only lost requests to peers still waited for matter.
        let proc = &mut next.procs[p];
        if !proc.lost.is_empty() {
            proc.lost = proc.lost.intersect(Self::suspected(proc));
        }
        self.discard_dead(next, p, ops, first_send);
    }

    /// The dead-message reduction (see [`BullySystem`]) after a step of process `p`: the
    /// messages to `p`, whose state changed, and those just sent (`ops[first_send..]`) may
    /// have become dead. Whether a message is dead depends only on its receiver's state, and
    /// once dead it stays dead, so no other message needs a look.
    fn discard_dead(&self, next: &SysState, p: usize, ops: &mut NetOps, first_send: usize) {
        if !self.cfg.reduction {
            return;
        }
        for i in first_send..ops.len() {
            let NetOp::Add(e) = ops[i] else { continue };
            let to = e.dst as usize;
            if to != p && self.is_dead(&next.procs[to].decode(), &e) {
                ops.push(NetOp::RemoveAll(e));
            }
        }
        ops.push(NetOp::DiscardDeadTo(p as u8));
    }

    /// Whether `e`'s receiver, in `state`, ignores it forever.
    fn is_dead(&self, state: &crate::protocol::State, e: &Env) -> bool {
        self.actors[e.dst as usize].ignores_forever(e.dst(), state, e.src(), &e.msg())
    }

    /// Applies one network effect of a step to `net`, given the processes after the step.
    /// `net` may hold the whole network or any part of it (the symbolic engine applies ops
    /// channel by channel): each op acts on each channel alone.
    pub fn apply_op(&self, net: &mut Network, op: &NetOp, procs: &[Proc]) {
        match *op {
            NetOp::Remove(e) => {
                net.remove(&e);
            }
            NetOp::Delivered(e) => net.delivered_once(&e),
            NetOp::RemoveLast(e) => {
                net.remove_last(&e);
            }
            NetOp::RemoveAll(e) => net.retain(|x| *x != e),
            NetOp::Add(e) => {
                if self.duplicating() {
                    net.add_once(e);
                } else {
                    net.add(e, self.cfg.effective_channels());
                }
            }
            NetOp::ClearTo(i) => net.retain(|e| e.dst != i),
            NetOp::Restarted(i) => net.sender_restarted(i as usize),
            NetOp::NewTag(i) => net.new_tag(i, self.cfg.effective_channels(), self.duplicating()),
            NetOp::DiscardDeadTo(i) => {
                if net.iter().any(|e| e.dst == i) {
                    let state = procs[i as usize].decode();
                    net.retain(|e| e.dst != i || !self.is_dead(&state, e));
                }
            }
        }
    }

    /// Records what the properties observe about process `i`'s step from `last` to `next`.
    fn observe(&self, last: &SysState, next: &mut SysState, i: usize, action: &Action) {
        let before = last.procs[i].role;
        let was_crashed = last.procs[i].crashed;
        let after = next.procs[i].role;
        let proc = &mut next.procs[i];
        let g = &mut next.ghost;
        // A step enters a term when the role changes, or on a restart.
        let entering = before != after || was_crashed;
        let entered = match after {
            RoleCode::Coordinator { epoch } => Some(crate::epochs::Entered::Office(epoch.decode())),
            RoleCode::Follower { epoch } => Some(crate::epochs::Entered::Following(epoch.decode())),
            _ => None,
        };
        if let Some(term) = entered.filter(|_| entering) {
            let mut accepted = proc.accepted.decode();
            if crate::epochs::check_epoch_order(Id::from(i), &mut accepted, term).is_err() {
                g.epoch_violation = true;
            }
            proc.accepted = Ep::encode(accepted);
        }
        match after {
            RoleCode::Coordinator { epoch } if entering => {
                if g.events & event::COORDINATOR_CRASHED != 0 {
                    g.events |= event::FAILOVER;
                }
                if g.recovered.contains(i)
                    && g.last_office != Ep::default()
                    && g.last_office.leader() < i
                {
                    g.events |= event::RECOVERED_TAKEOVER;
                }
                if g.events & event::LOWEST_ELECTING != 0 && i != 0 {
                    g.events |= event::LOWEST_ELECTION_FINISHED;
                }
                g.last_office = g.last_office.max(epoch);
            }
            RoleCode::Electing { .. }
                if i == 0
                    && matches!(before, RoleCode::Follower { .. })
                    && *action == Action::Timeout(Id::from(0), Timer::HeartbeatTimeout) =>
            {
                g.events |= event::LOWEST_ELECTING;
            }
            _ => {}
        }
    }

    /// The steps that messages in flight enable, for the processes of `s` and the messages
    /// of `net` (all of `s`'s network, or part of it: the symbolic engine asks channel by
    /// channel, and each step here depends on one channel only).
    pub fn message_actions(&self, s: &SysState, net: &Network, actions: &mut Vec<Action>) {
        self.message_actions_given(s.crashed(), net, actions);
    }

    /// [`BullySystem::message_actions`], given all it reads of the processes: which are
    /// crashed. (The symbolic engine keys what it caches of a step by this.)
    pub fn message_actions_given(&self, crashed: Mask, net: &Network, actions: &mut Vec<Action>) {
        // With FIFO channels only a channel's head can arrive next, and losing a message
        // further back is the same as losing it once it is the head (the head blocks the same
        // timers): so only heads are lost, too.
        for e in net.deliverable(self.cfg.effective_channels()) {
            if self.cfg.network == NetworkKind::Lossy {
                actions.push(Action::Drop(*e));
            }
            actions.push(Action::Deliver(*e));
        }
        // A crash cuts short what its process had not sent yet: the last message of each of
        // its connections can be lost, then the one before it, and so on. (A lossy network
        // loses any message anyway, so this adds nothing there.)
        if self.cfg.cuts_sends_short() && !crashed.is_empty() {
            for e in net.unsent(self.cfg.effective_channels()) {
                // A copy delivered once was sent; it cannot be cut short.
                if crashed.contains(e.src as usize) && !e.delivered {
                    actions.push(Action::CutShort(*e));
                }
            }
        }
    }

    /// The other steps of `s` (timers, crashes, recoveries), each given to `each` with the
    /// channels that must be empty for it ([`BullySystem::timer_guard`]); nothing here reads
    /// the network.
    pub fn local_actions(&self, s: &SysState, mut each: impl FnMut(Action, Quiet)) {
        let n = s.procs.len();
        for (i, p) in s.live() {
            for t in p.timers() {
                if let Some(quiet) = self.timer_guard(s, i, t) {
                    each(Action::Timeout(Id::from(i), t), quiet);
                }
            }
        }
        if s.ghost.crashes < self.cfg.crashes {
            for (i, _) in s.live() {
                each(Action::Crash(Id::from(i)), Quiet::none(n));
            }
        }
        if s.ghost.recoveries < self.cfg.recoveries {
            for (i, p) in s.procs.iter().enumerate() {
                if p.crashed {
                    each(Action::Recover(Id::from(i)), Quiet::none(n));
                    if self.cfg.lose_storage {
                        each(Action::RecoverLost(Id::from(i)), Quiet::none(n));
                    }
                }
            }
        }
    }

    /// One step, except for its effects on the network: the processes and ghost state after
    /// `action` (whose enabling the caller has checked), with the network of `last` left as it
    /// was, and the step's network effects in `ops`. None where stateright would see no step.
    /// Nothing here reads the network: the explicit checker applies `ops` to the state's
    /// network ([`Model::next_state`]), the symbolic engine to sets of networks.
    pub fn step(&self, last: &SysState, action: Action, ops: &mut NetOps) -> Option<SysState> {
        let mut next = last.clone();
        match action {
            Action::Drop(e) => ops.push(NetOp::Remove(e)),
            Action::CutShort(e) => ops.push(NetOp::RemoveLast(e)),
            Action::Crash(id) => {
                let i = usize::from(id);
                next.procs[i].crash();
                next.ghost.crashes += 1;
                // Whoever waits for it has lost its request (see `Proc::lost`).
                for p in next.procs.iter_mut().filter(|p| !p.crashed) {
                    if Self::suspected(p).contains(i) {
                        p.lost = p.lost.with(i);
                    }
                }
                if matches!(last.procs[i].role, RoleCode::Coordinator { .. }) {
                    next.ghost.events |= event::COORDINATOR_CRASHED;
                }
                // Messages to a crashed process are lost.
                ops.push(NetOp::ClearTo(i as u8));
            }
            Action::Deliver(e) => {
                let i = e.dst as usize;
                if !self.duplicating() {
                    ops.push(NetOp::Remove(e));
                } else if !e.delivered {
                    ops.push(NetOp::Delivered(e));
                }
                let fx = self
                    .effects(last, &action)
                    .expect("a delivery runs its handler");
                if fx.state.is_none() && fx.out.is_empty() {
                    // Ignored: only the message is gone.
                    return Some(next);
                }
                self.apply(&mut next, i, fx, ops);
                self.observe(last, &mut next, i, &action);
            }
            Action::Timeout(id, timer) => {
                let i = usize::from(id);
                let fx = self.effects(last, &action)?;
                next.procs[i].timers &= !state::timer_bit(timer);
                self.apply(&mut next, i, fx, ops);
                self.observe(last, &mut next, i, &action);
            }
            Action::Recover(id) | Action::RecoverLost(id) => {
                let i = usize::from(id);
                let fx = self.effects(last, &action).expect("a recovery restarts");
                next.procs[i].crashed = false;
                next.procs[i].timers = 0;
                next.ghost.recoveries += 1;
                next.ghost.recovered = next.ghost.recovered.with(i);
                if self.cfg.effective_channels() == Channels::Fifo {
                    ops.push(NetOp::Restarted(i as u8));
                }
                self.apply(&mut next, i, fx, ops);
                self.observe(last, &mut next, i, &action);
            }
        }
        Some(next)
    }

    /// Whether `a` is a fault (crash, recovery, loss): the liveness check asks what happens
    /// once faults stop, so it follows only the other actions.
    pub fn is_fault(a: &Action) -> bool {
        matches!(
            a,
            Action::Crash(_)
                | Action::Recover(_)
                | Action::RecoverLost(_)
                | Action::Drop(_)
                | Action::CutShort(_)
        )
    }

    /// The commands the handler of `action` emits in `s` (for the Explorer).
    pub(crate) fn commands(
        &self,
        s: &SysState,
        action: &Action,
    ) -> Vec<Command<Msg, Timer, (), crate::protocol::Storage>> {
        self.effects(s, action)
            .map(|fx| fx.out.into_iter().collect())
            .unwrap_or_default()
    }

    /// Every process started fresh (no storage) and its first messages in flight.
    pub fn initial_state(&self) -> SysState {
        let mut s = SysState {
            procs: SmallVec::new(),
            network: Network::default(),
            ghost: Ghost::default(),
        };
        let mut starts = Vec::new();
        for (i, actor) in self.actors.iter().enumerate() {
            let started = actor
                .step(Id::from(i), None, Event::fresh())
                .expect("a start always runs");
            let state = started.after(None);
            s.procs.push(Proc::new(&state));
            starts.push((state, started.out));
        }
        // The initial sends pass the same dead-message check as any step's (none is dead).
        let mut ops = NetOps::new();
        for (i, (state, out)) in starts.into_iter().enumerate() {
            let fx = Effects {
                state: Some(state),
                out,
            };
            self.apply(&mut s, i, fx, &mut ops);
        }
        for op in &ops {
            self.apply_op(&mut s.network, op, &s.procs);
        }
        s
    }
}
