//! The epoch-order rule: what a process may do with epochs over its whole life (crashes
//! included). The model's ghost state applies it at every step ([`crate::system`]), the
//! `epoch order` property reads the result, and the conformance tool applies the very same
//! function to real nodes' step logs.

use crate::protocol::{Epoch, Role, State};
use stateright::actor::Id;
use std::fmt;

/// A term a process enters: it takes office, or it starts following a coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entered {
    Office(Epoch),
    Following(Epoch),
}

impl Entered {
    /// The term `role` is in, if it is one.
    pub fn term(role: &Role) -> Option<Entered> {
        match *role {
            Role::Coordinator { epoch } => Some(Entered::Office(epoch)),
            Role::Follower { epoch } => Some(Entered::Following(epoch)),
            _ => None,
        }
    }
    /// The term a process enters with a step from `before` (`None`: a start) to `after`:
    /// one whose role changed into a term (a start counts as a change).
    pub fn on_step(before: Option<&State>, after: &State) -> Option<Entered> {
        if before.map(|b| &b.role) == Some(&after.role) {
            return None;
        }
        Entered::term(&after.role)
    }
    pub fn epoch(self) -> Epoch {
        match self {
            Entered::Office(e) | Entered::Following(e) => e,
        }
    }
}

/// A step that broke the epoch order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochOrderViolation {
    pub entered: Entered,
    pub accepted: Epoch,
}

impl fmt::Display for EpochOrderViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let accepted = self.accepted;
        match self.entered {
            Entered::Office(epoch) => write!(
                f,
                "epoch order: takes office with epoch {epoch}, but it is not its own or not above {accepted}, which it accepted before"
            ),
            Entered::Following(epoch) => write!(
                f,
                "epoch order: follows epoch {epoch}, below {accepted}, which it accepted before"
            ),
        }
    }
}

/// The epoch-order rule for one step of process `me` that enters a term, given `accepted`,
/// the highest epoch it accepted before (over all its incarnations): it takes office only with
/// its own epoch, strictly above every epoch it accepted; it never follows one below. Either
/// way `accepted` becomes the larger of the two. The checked system's ghost state and the
/// conformance tool's check of node logs both apply this one rule.
pub fn check_epoch_order(
    me: Id,
    accepted: &mut Epoch,
    entered: Entered,
) -> Result<(), EpochOrderViolation> {
    let before = *accepted;
    let ok = match entered {
        Entered::Office(epoch) => epoch.leader == me && epoch > before,
        Entered::Following(epoch) => epoch >= before,
    };
    *accepted = before.max(entered.epoch());
    if ok {
        Ok(())
    } else {
        Err(EpochOrderViolation {
            entered,
            accepted: before,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(round: u32, leader: usize) -> Epoch {
        Epoch {
            round,
            leader: Id::from(leader),
        }
    }

    #[test]
    fn the_epoch_order_rule() {
        let me = Id::from(2);
        let accepted = epoch(3, 1);
        // Taking office: only with its own epoch, strictly above what it accepted.
        assert!(check_epoch_order(me, &mut accepted.clone(), Entered::Office(epoch(4, 2))).is_ok());
        assert!(check_epoch_order(me, &mut accepted.clone(), Entered::Office(epoch(3, 2))).is_ok());
        let not_own = check_epoch_order(me, &mut accepted.clone(), Entered::Office(epoch(5, 1)));
        assert!(not_own.is_err());
        let not_above = check_epoch_order(me, &mut epoch(3, 2), Entered::Office(epoch(3, 2)));
        assert_eq!(
            not_above.unwrap_err().to_string(),
            "epoch order: takes office with epoch 3.2, but it is not its own or not above 3.2, which it accepted before"
        );
        // Following: never below what it accepted (the same epoch again is fine).
        assert!(
            check_epoch_order(me, &mut accepted.clone(), Entered::Following(epoch(3, 1))).is_ok()
        );
        let below = check_epoch_order(me, &mut accepted.clone(), Entered::Following(epoch(2, 4)));
        assert_eq!(
            below.unwrap_err().to_string(),
            "epoch order: follows epoch 2.4, below 3.1, which it accepted before"
        );
        // Either way it has then accepted the larger epoch.
        let mut after = accepted;
        let _ = check_epoch_order(me, &mut after, Entered::Following(epoch(2, 4)));
        assert_eq!(after, accepted);
        let _ = check_epoch_order(me, &mut after, Entered::Office(epoch(5, 1)));
        assert_eq!(after, epoch(5, 1));
    }
}
