//! Who leads, as an application sees it: the view that hooks, metrics and the library API share.
//!
//! The protocol state has more in it (whom a candidate still waits for, what it promised); an
//! application that acts on leadership needs three things: this node's role, whom it follows,
//! and the epoch to fence its work with. A [`Change`] is reported whenever one of them changes.

use bully_model::{Epoch, Members, Role, State};
use std::fmt;

/// A node's role, without the protocol's details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoleName {
    /// Before the node's first step.
    Starting,
    /// Starting in join mode: not a member yet.
    Joining,
    /// Asked the higher members whether they are alive.
    Electing,
    /// A higher member answered; waiting for its announcement.
    Waiting,
    /// Taking office: halting the lower members first.
    Halting,
    /// In office: the leader.
    Coordinator,
    /// Following a coordinator.
    Follower,
    /// The node has stopped (reported once, when it shuts down).
    Stopped,
}

impl RoleName {
    pub fn of(role: &Role) -> RoleName {
        match role {
            Role::Joining { .. } => RoleName::Joining,
            Role::Electing { .. } => RoleName::Electing,
            Role::Waiting => RoleName::Waiting,
            Role::Halting { .. } => RoleName::Halting,
            Role::Coordinator { .. } => RoleName::Coordinator,
            Role::Follower { .. } => RoleName::Follower,
        }
    }
    /// The name used in `status`, logs, metrics and the hooks' `BULLY_ROLE`: the one spelling
    /// of a role's name in this crate (for the protocol's roles, the model's serde tag).
    pub fn as_str(self) -> &'static str {
        match self {
            RoleName::Starting => "starting",
            RoleName::Joining => "joining",
            RoleName::Electing => "electing",
            RoleName::Waiting => "waiting",
            RoleName::Halting => "halting",
            RoleName::Coordinator => "coordinator",
            RoleName::Follower => "follower",
            RoleName::Stopped => "stopped",
        }
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn ids(m: &Members) -> String {
    let v: Vec<String> = m.iter().map(|i| usize::from(i).to_string()).collect();
    v.join(", ")
}

/// A role in words, for log lines, `status` and the cluster view.
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

/// What an application needs to know about leadership at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Leadership {
    pub role: RoleName,
    /// The coordinator this node is, or follows (none while an election is on).
    pub coordinator: Option<u64>,
    /// The epoch of that coordinator's term: the fencing token. It only grows, across
    /// restarts too; stamp work with it and refuse work stamped with a lower one.
    pub epoch: Option<Epoch>,
}

impl Default for Leadership {
    fn default() -> Self {
        Leadership::NONE
    }
}

impl Leadership {
    /// Before the node's first step.
    pub const NONE: Leadership = Leadership {
        role: RoleName::Starting,
        coordinator: None,
        epoch: None,
    };

    pub fn of(state: &State) -> Leadership {
        Leadership {
            role: RoleName::of(&state.role),
            coordinator: state.coordinator().map(|c| usize::from(c) as u64),
            epoch: state.epoch(),
        }
    }
    pub fn is_coordinator(&self) -> bool {
        self.role == RoleName::Coordinator
    }
}

/// A change of role, of whom the node follows, or of the epoch: the one definition of a role
/// change (the log line, `status`'s `role_changes` and its watches, the metrics, the hooks and
/// the subscribers all count these). The coordinator is the term's leader, so this is a change
/// of role or of term; a candidate bidding again at a higher epoch is still halting and leads no
/// one, so its new candidacy is an election's progress (like whom it waits for), not a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// The node's ID.
    pub id: u64,
    pub previous: Leadership,
    pub current: Leadership,
}

impl Change {
    /// This node took office.
    pub fn took_office(&self) -> bool {
        self.current.is_coordinator() && !self.previous.is_coordinator()
    }
    /// This node stopped acting as coordinator: deposed, halted by a higher candidate, or
    /// shutting down.
    pub fn stepped_down(&self) -> bool {
        self.previous.is_coordinator() && !self.current.is_coordinator()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::actor::Id;

    #[test]
    fn a_roles_name_is_the_models_serde_tag() {
        let epoch = Epoch {
            round: 2,
            leader: Id::from(1),
        };
        let roles = [
            Role::Joining {
                contact: Id::from(1),
            },
            Role::Electing {
                waiting: Members::new([Id::from(2)]),
            },
            Role::Waiting,
            Role::Halting {
                epoch,
                waiting: Members::new([Id::from(0)]),
                asked_again: false,
            },
            Role::Coordinator { epoch },
            Role::Follower { epoch },
        ];
        for role in roles {
            let json = serde_json::to_value(&role).expect("a role serialises");
            assert_eq!(json["role"], RoleName::of(&role).as_str(), "{role:?}");
        }
    }
}
