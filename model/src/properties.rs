//! The properties, as plain public functions so that the proptest simulator and the
//! conformance checker in `proptests/` evaluate exactly the same definitions.

use crate::protocol::{Role, State};
use crate::system::{event, BullySystem, StartMode, SysAction, SysState};
use stateright::actor::{ActorModelAction, Id};

/// The live processes' states with their IDs.
pub fn live(s: &SysState) -> impl Iterator<Item = (Id, &State)> {
    s.actor_states
        .iter()
        .enumerate()
        .filter(|(i, _)| !s.crashed[*i])
        .map(|(i, a)| (Id::from(i), &**a))
}

/// No two live processes both act as coordinator.
pub fn single_coordinator_of<'a>(states: impl IntoIterator<Item = &'a State>) -> bool {
    states.into_iter().filter(|a| a.is_coordinator()).count() <= 1
}

/// Any two live processes in normal operation name the same coordinator.
pub fn agreement_of<'a>(states: impl IntoIterator<Item = &'a State>) -> bool {
    let mut named = states.into_iter().filter_map(State::coordinator);
    match named.next() {
        None => true,
        Some(first) => named.all(|c| c == first),
    }
}

/// The liveness goal: exactly one live coordinator, the highest live process that has joined,
/// named by every live joined process. A live joiner is exempt only while its contact is down
/// (it must not elect without having heard from the group).
pub fn settled_of(states: &[(Id, &State, bool)]) -> bool {
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
        match s.role {
            Role::Joining { contact } if is_crashed(contact) => continue,
            Role::Joining { .. } => return false,
            _ => highest = highest.max(Some(*id)),
        }
    }
    let Some(leader) = highest else {
        return true;
    };
    states.iter().all(|(id, s, crashed)| {
        *crashed
            || matches!(s.role, Role::Joining { .. })
            || if *id == leader {
                s.is_coordinator()
            } else {
                matches!(s.role, Role::Follower { epoch } if epoch.leader == leader)
            }
    })
}

pub fn single_coordinator(_: &BullySystem, s: &SysState) -> bool {
    single_coordinator_of(live(s).map(|(_, a)| a))
}

pub fn agreement(_: &BullySystem, s: &SysState) -> bool {
    agreement_of(live(s).map(|(_, a)| a))
}

pub fn epoch_order(_: &BullySystem, s: &SysState) -> bool {
    !s.history.epoch_violation
}

pub fn settled(_: &BullySystem, s: &SysState) -> bool {
    let states: Vec<(Id, &State, bool)> = s
        .actor_states
        .iter()
        .enumerate()
        .map(|(i, a)| (Id::from(i), &**a, s.crashed[i]))
        .collect();
    settled_of(&states)
}

pub fn failover_happens(_: &BullySystem, s: &SysState) -> bool {
    s.history.events & event::FAILOVER != 0
}

pub fn recovered_takeover(_: &BullySystem, s: &SysState) -> bool {
    s.history.events & event::RECOVERED_TAKEOVER != 0
}

pub fn lowest_election_finished(_: &BullySystem, s: &SysState) -> bool {
    s.history.events & event::LOWEST_ELECTION_FINISHED != 0
}

pub fn joiner_learns_all(m: &BullySystem, s: &SysState) -> bool {
    m.cfg.start == StartMode::Join
        && live(s).any(|(id, a)| usize::from(id) != 0 && a.members.len() == m.cfg.processes)
}

/// One action as a readable step.
pub fn describe_action(a: &SysAction) -> String {
    let n = |id: &Id| usize::from(*id);
    match a {
        ActorModelAction::Deliver { src, dst, msg } => {
            format!("{} → {}: {:?}", n(src), n(dst), msg)
        }
        ActorModelAction::Drop(e) => format!("lost {} → {}: {:?}", n(&e.src), n(&e.dst), e.msg),
        ActorModelAction::Timeout(id, t) => format!("{} timer {:?} fires", n(id), t),
        ActorModelAction::Crash(id) => format!("{} crashes", n(id)),
        ActorModelAction::Recover(id) => format!("{} recovers", n(id)),
        ActorModelAction::SelectRandom { actor, .. } => format!("{} random choice", n(actor)),
    }
}
