//! The properties, as plain public functions so that the proptest simulator and the
//! conformance checker in `proptests/` evaluate exactly the same definitions.
//!
//! Each definition is written once, over [`ProcessView`]: what a property needs to know of one
//! process. The node's [`State`] and the checker's compact [`Proc`] both provide it.

pub use crate::epochs::{check_epoch_order, Entered, EpochOrderViolation};
use crate::protocol::{Role, State};
use crate::system::{event, Action, BullySystem, Proc, RoleCode, StartMode, SysState};
use stateright::actor::Id;

use std::fmt::Write as _;

/// What the properties read of a process.
pub trait ProcessView {
    /// The coordinator this process names, if it is in normal operation.
    fn coordinator(&self) -> Option<Id>;
    fn is_coordinator(&self) -> bool;
    /// The contact of a process still joining the group.
    fn joining_contact(&self) -> Option<Id>;
}

impl ProcessView for State {
    fn coordinator(&self) -> Option<Id> {
        State::coordinator(self)
    }
    fn is_coordinator(&self) -> bool {
        State::is_coordinator(self)
    }
    fn joining_contact(&self) -> Option<Id> {
        match self.role {
            Role::Joining { contact } => Some(contact),
            _ => None,
        }
    }
}

impl ProcessView for Proc {
    fn coordinator(&self) -> Option<Id> {
        self.epoch().map(|e| Id::from(e.leader()))
    }
    fn is_coordinator(&self) -> bool {
        matches!(self.role, RoleCode::Coordinator { .. })
    }
    fn joining_contact(&self) -> Option<Id> {
        match self.role {
            RoleCode::Joining { contact } => Some(Id::from(contact as usize)),
            _ => None,
        }
    }
}

/// The live processes' states with their IDs.
pub fn live(s: &SysState) -> impl Iterator<Item = (Id, &Proc)> {
    s.live().map(|(i, p)| (Id::from(i), p))
}

/// No two live processes both act as coordinator.
pub fn single_coordinator_of<'a, P: ProcessView + 'a>(
    states: impl IntoIterator<Item = &'a P>,
) -> bool {
    states.into_iter().filter(|a| a.is_coordinator()).count() <= 1
}

/// Any two live processes in normal operation name the same coordinator.
pub fn agreement_of<'a, P: ProcessView + 'a>(states: impl IntoIterator<Item = &'a P>) -> bool {
    let mut named = states.into_iter().filter_map(|a| a.coordinator());
    match named.next() {
        None => true,
        Some(first) => named.all(|c| c == first),
    }
}

/// The liveness goal: exactly one live coordinator, the highest live process that has joined,
/// named by every live joined process. A live joiner is exempt only while its contact is down
/// (it must not elect without having heard from the group).
pub fn settled_of<P: ProcessView>(states: &[(Id, &P, bool)]) -> bool {
    let is_crashed = |id: Id| {
        states
            .iter()
            .find(|(i, _, _)| *i == id)
            .is_some_and(|(_, _, crashed)| *crashed)
    };
    let mut highest = None;
    for (id, s, crashed) in states {
        if *crashed {
            continue;
        }
        match s.joining_contact() {
            Some(contact) if is_crashed(contact) => continue,
            Some(_) => return false,
            None => highest = highest.max(Some(*id)),
        }
    }
    let Some(leader) = highest else {
        return true;
    };
    states.iter().all(|(id, s, crashed)| {
        *crashed
            || s.joining_contact().is_some()
            || if *id == leader {
                s.is_coordinator()
            } else {
                !s.is_coordinator() && s.coordinator() == Some(leader)
            }
    })
}

/// A property of a system state, in the model's signature.
pub type Check = fn(&BullySystem, &SysState) -> bool;

/// The `always` properties, under the names the checker reports them with: the one table that
/// the model's property list ([`BullySystem`]'s `Model::properties`), the random walks
/// (`bully-model simulate`) and the proptest simulator all read.
pub const ALWAYS: [(&str, Check); 3] = [
    ("single coordinator", single_coordinator),
    ("agreement", agreement),
    ("epoch order", epoch_order),
];

pub fn single_coordinator(_: &BullySystem, s: &SysState) -> bool {
    single_coordinator_of(live(s).map(|(_, a)| a))
}

pub fn agreement(_: &BullySystem, s: &SysState) -> bool {
    agreement_of(live(s).map(|(_, a)| a))
}

/// `epoch order` over the whole run: no process ever broke [`check_epoch_order`] (the ghost
/// state remembers it).
pub fn epoch_order(_: &BullySystem, s: &SysState) -> bool {
    !s.ghost.epoch_violation
}

pub fn settled(_: &BullySystem, s: &SysState) -> bool {
    let states: Vec<(Id, &Proc, bool)> = s
        .procs
        .iter()
        .enumerate()
        .map(|(i, p)| (Id::from(i), p, p.crashed))
        .collect();
    settled_of(&states)
}

pub fn failover_happens(_: &BullySystem, s: &SysState) -> bool {
    s.ghost.events & event::FAILOVER != 0
}

pub fn recovered_takeover(_: &BullySystem, s: &SysState) -> bool {
    s.ghost.events & event::RECOVERED_TAKEOVER != 0
}

pub fn lowest_election_finished(_: &BullySystem, s: &SysState) -> bool {
    s.ghost.events & event::LOWEST_ELECTION_FINISHED != 0
}

/// A crash cut a COORDINATOR broadcast short, as the state shows it (no ghost needed): process
/// `p` is down, still at the term `E` it took office with (its promise is `E`); a live `q`
/// follows `E` (the announcement reached it); and a live `d` that `p` counts as a member and
/// that was never down has never followed `E` (ghost: [`Proc::accepted`]), has promised nothing
/// above `E` (so it would have accepted the announcement) and has nothing from `p` in flight.
/// `p` announced `E` to every member it knew (on taking office, or on learning one later), and
/// a message to a process that is up is lost only with its crashed sender (the property is not
/// registered on a lossy network): so `d`'s copy was cut short. (A mutant that skips the
/// announcement satisfies this without a cut; the property is there for the correct protocol.)
pub fn broadcast_cut(_: &BullySystem, s: &SysState) -> bool {
    broadcast_cut_channels(s).any(|(p, d)| !s.network.any_between(p, d))
}

/// The name of [`broadcast_cut`], the only property that reads the network (and that only
/// through [`broadcast_cut_channels`]).
pub const BROADCAST_CUT: &str = "crash cuts a broadcast short";

/// The channels `p → d` whose emptiness would make [`broadcast_cut`] hold, by the processes
/// alone: the property holds exactly when one of them is empty.
pub fn broadcast_cut_channels(s: &SysState) -> impl Iterator<Item = (usize, usize)> + '_ {
    s.procs
        .iter()
        .enumerate()
        .filter(|(_, down)| down.crashed)
        .flat_map(move |(p, down)| {
            live(s).flat_map(move |(q, follower)| {
                let term = follower.epoch().filter(|&term| {
                    follower.role == (RoleCode::Follower { epoch: term })
                        && term.leader() == p
                        && down.promised == term
                });
                live(s).filter_map(move |(d, other)| {
                    let term = term?;
                    let d = usize::from(d);
                    (d != usize::from(q)
                        && down.members.contains(d)
                        && !s.ghost.recovered.contains(d)
                        && other.accepted < term
                        && other.promised <= term)
                        .then_some((p, d))
                })
            })
        })
}

pub fn joiner_learns_all(m: &BullySystem, s: &SysState) -> bool {
    m.cfg.start == StartMode::Join
        && live(s).any(|(id, a)| usize::from(id) != 0 && a.members.len() == m.cfg.processes)
}

/// One action as a readable step.
pub fn describe_action(a: &Action) -> String {
    match a {
        Action::Deliver(e) => format!("{} → {}: {:?}", e.src, e.dst, e.msg()),
        Action::Drop(e) => format!("lost {} → {}: {:?}", e.src, e.dst, e.msg()),
        Action::CutShort(e) => format!(
            "lost in crashed {}'s queue: {} → {}: {:?}",
            e.src,
            e.src,
            e.dst,
            e.msg()
        ),
        Action::Timeout(id, t) => format!("{} timer {:?} fires", usize::from(*id), t),
        Action::Crash(id) => format!("{} crashes", usize::from(*id)),
        Action::Recover(id) => format!("{} recovers", usize::from(*id)),
        Action::RecoverLost(id) => format!("{} recovers with its storage lost", usize::from(*id)),
    }
}

/// One process as `check` prints it: `0: COORDINATOR 1.0`, `1: electing (asked {2})`; a
/// crashed process (`role` None) is `2: crashed`.
pub fn describe_process(i: usize, role: Option<&Role>) -> String {
    match role {
        None => format!("{i}: crashed"),
        Some(Role::Joining { contact }) => format!("{i}: joining via {}", usize::from(*contact)),
        Some(Role::Electing { waiting }) => format!("{i}: electing (asked {waiting:?})"),
        Some(Role::Waiting) => format!("{i}: waiting for coordinator"),
        Some(Role::Halting { epoch, waiting, .. }) => {
            format!("{i}: candidate {epoch} (halting {waiting:?})")
        }
        Some(Role::Coordinator { epoch }) => format!("{i}: COORDINATOR {epoch}"),
        Some(Role::Follower { epoch }) => {
            format!("{i}: follows {} ({epoch})", usize::from(epoch.leader))
        }
    }
}

/// Each process of `s` as [`describe_process`] says it.
fn describe_processes(s: &SysState) -> impl Iterator<Item = String> + '_ {
    s.procs.iter().enumerate().map(|(i, p)| {
        let role = (!p.crashed).then(|| p.decode().role);
        describe_process(i, role.as_ref())
    })
}

/// A compact description of a system state: each process's role, and the messages in flight.
pub fn describe_state(s: &SysState) -> String {
    let procs: Vec<String> = describe_processes(s).collect();
    format!(
        "{}; {} message(s) in flight",
        procs.join(", "),
        s.network.len()
    )
}

/// A state to read at a glance (the Explorer shows it above the full state): one line per
/// process as [`describe_process`] says it, then how many messages are in flight and each of
/// them on a line of its own.
pub fn summarize_state(s: &SysState) -> String {
    let mut out = String::new();
    for line in describe_processes(s) {
        let _ = writeln!(out, "{line}");
    }
    let _ = write!(out, "{} message(s) in flight", s.network.len());
    if !s.network.is_empty() {
        out.push(':');
    }
    for e in s.network.iter() {
        let _ = write!(out, "\n  {e:?}");
    }
    out
}
