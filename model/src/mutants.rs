//! Deliberately broken variants of the protocol. Each one must be rejected by the checker (see
//! `tests/mutants.rs`): a property that no mutant can break would prove nothing.
//!
//! The protocol ([`crate::protocol`]) asks the hooks below at named points of its decisions;
//! each hook says what the protocol does there and is the only place a mutant departs from it.

use crate::protocol::Epoch;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// The protocol as designed.
    #[default]
    Correct,
    /// A higher process never sends OK: every asker times out and crowns itself.
    NeverAnswer,
    /// Lower IDs outrank higher ones: elections settle on the lowest live process.
    LowestWins,
    /// The winner never sends COORDINATOR (not on taking office, not in answers): nobody learns
    /// who won.
    SkipCoordinatorBroadcast,
    /// The asker becomes a candidate right after sending ELECTION, without waiting for answers.
    NoWaitForAnswers,
    /// Followers ignore a heartbeat timeout: a dead coordinator is never replaced.
    IgnoreHeartbeatTimeout,
    /// A candidate proposes the round it already promised instead of a fresh one.
    ReuseEpoch,
    /// The three-message textbook form: no halt phase before taking office.
    NoHalt,
    /// A restarted process forgets the epoch it promised (its saved promise is not restored).
    ForgetPromise,
    /// A process follows a COORDINATOR announcement below the epoch it promised.
    FollowStaleCoordinator,
}

impl Variant {
    pub const MUTANTS: [Variant; 9] = [
        Variant::NeverAnswer,
        Variant::LowestWins,
        Variant::SkipCoordinatorBroadcast,
        Variant::NoWaitForAnswers,
        Variant::IgnoreHeartbeatTimeout,
        Variant::ReuseEpoch,
        Variant::NoHalt,
        Variant::ForgetPromise,
        Variant::FollowStaleCoordinator,
    ];
}

/// The hooks: what the protocol does at each point a mutant changes.
impl Variant {
    /// Whether `a` outranks `b`: the higher ID ([`Variant::LowestWins`]: the lower).
    pub fn outranks(self, a: Id, b: Id) -> bool {
        if self == Variant::LowestWins {
            a < b
        } else {
            a > b
        }
    }
    /// Whether a higher process answers a lower one's ELECTION ([`Variant::NeverAnswer`]: no).
    pub fn answers_elections(self) -> bool {
        self != Variant::NeverAnswer
    }
    /// Whether an elector waits for answers before its candidacy
    /// ([`Variant::NoWaitForAnswers`]: no).
    pub fn waits_for_answers(self) -> bool {
        self != Variant::NoWaitForAnswers
    }
    /// The round a candidate proposes: one above its promise ([`Variant::ReuseEpoch`]: the
    /// promised round itself).
    pub fn proposed_round(self, promised: Epoch) -> u32 {
        if self == Variant::ReuseEpoch {
            promised.round.max(1)
        } else {
            promised.round + 1
        }
    }
    /// Whether a candidate halts the lower members before taking office
    /// ([`Variant::NoHalt`]: no).
    pub fn halts_before_office(self) -> bool {
        self != Variant::NoHalt
    }
    /// Whether a coordinator announces itself, on taking office, periodically, to newcomers
    /// and in answers ([`Variant::SkipCoordinatorBroadcast`]: never).
    pub fn announces(self) -> bool {
        self != Variant::SkipCoordinatorBroadcast
    }
    /// Whether a follower elects when its heartbeat goes unanswered
    /// ([`Variant::IgnoreHeartbeatTimeout`]: no).
    pub fn heeds_heartbeat_timeouts(self) -> bool {
        self != Variant::IgnoreHeartbeatTimeout
    }
    /// Whether a restart restores its saved promise ([`Variant::ForgetPromise`]: no).
    pub fn restores_promise(self) -> bool {
        self != Variant::ForgetPromise
    }
    /// Whether a process follows an announcement below its promise
    /// ([`Variant::FollowStaleCoordinator`]: yes).
    pub fn follows_below_promise(self) -> bool {
        self == Variant::FollowStaleCoordinator
    }
}
