//! Deliberately broken variants of the protocol. Each one must be rejected by the checker (see
//! `tests/mutants.rs`): a property that no mutant can break would prove nothing.

use serde::{Deserialize, Serialize};

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
