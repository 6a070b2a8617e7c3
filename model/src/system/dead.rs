//! The dead-message reduction's rule: which messages a process ignores forever. Only the
//! checker asks it (the protocol never does); it lives here, beside the system that discards
//! such messages, and reads the protocol's handlers in [`crate::protocol`].

use crate::mutants::Variant;
use crate::protocol::{Bully, Epoch, Members, Msg, Role, State};
use stateright::actor::Id;

impl Bully {
    /// Whether a message from `src` to process `me` (now in state `s`) is **dead**: delivering
    /// it does nothing (no state change, no send, no timer, no save) now and in every state
    /// this process can reach before it crashes (a crash discards it anyway). The checker uses
    /// this to discard such messages at once (see [`BullySystem`](super::BullySystem),
    /// "dead-message reduction").
    ///
    /// Each rule rests on what only grows while a process is up: its member list, its promise
    /// (`promised`), and the epochs it takes office with (always above its promise). A message
    /// whose members and sender are all known teaches nothing, now or later. Conservative: a
    /// message not covered here is never dead; mutants have no dead messages (their handlers
    /// break these invariants, e.g. `reuse-epoch`).
    pub fn ignores_forever(&self, me: Id, s: &State, src: Id, msg: &Msg) -> bool {
        if self.variant != Variant::Correct || !s.members.contains(src) {
            return false;
        }
        let known = |members: &Members| members.iter().all(|m| s.members.contains(m));
        let lower = self.outranks(me, src);
        match msg {
            // A higher process's ELECTION only teaches its sender.
            Msg::Election { .. } => !lower,
            // A lower candidate's HALT acts only above our promise.
            Msg::Halt { epoch } => lower && *epoch <= s.promised,
            // Counts only toward the candidacy of `epoch`, for a peer still awaited; every later
            // candidacy of ours has a fresh epoch above our promise, and a known peer is never
            // awaited again in the same candidacy.
            Msg::HaltAck { epoch, members } => {
                known(members)
                    && *epoch <= s.promised
                    && !matches!(&s.role, Role::Halting { epoch: e, waiting, .. } if e == epoch && waiting.contains(src))
            }
            // Acts only above our promise (while halting) or above the epoch we hold office
            // with, and every later term of ours is above our promise.
            Msg::HaltNack { promised } => {
                (*promised == Epoch::none() || s.members.contains(promised.leader))
                    && *promised <= s.promised
                    && !matches!(s.role, Role::Coordinator { epoch } if *promised > epoch)
            }
            // From a lower process: a stale announcement is over for good. Misattributed
            // announcements are always ignored.
            Msg::Coordinator { epoch, members } => {
                known(members) && (epoch.leader != src || (lower && *epoch < s.promised))
            }
            // Acts only on the term we are in; we never enter a term below our promise.
            Msg::Resign { epoch } => *epoch < s.promised && s.epoch() != Some(*epoch),
            // Acts only on the election named by the tag, while it is under way; every later
            // election of ours has a new tag.
            Msg::Answer { tag, members } => {
                known(members)
                    && (*tag != s.tag
                        || !matches!(s.role, Role::Electing { .. } | Role::Halting { .. }))
            }
            // Acts only on the term (or join) named by the tag, from its coordinator (or
            // contact): following another term takes a new tag, and a joined process never
            // joins again (a joiner may change its contact, so that stays live).
            Msg::HeartbeatAck { tag, members, .. } => {
                known(members)
                    && (*tag != s.tag
                        || match s.role {
                            Role::Follower { epoch } => epoch.leader != src,
                            Role::Joining { .. } => false,
                            _ => true,
                        })
            }
            // Always answered.
            Msg::Heartbeat { .. } => false,
        }
    }
}
