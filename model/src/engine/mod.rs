//! The search engines: [`explicit`] keeps every state (breadth first, with the state graph
//! the liveness pass reads); [`symbolic`] keeps each combination of process states once, with
//! its set of networks as a decision diagram.
//!
//! Both report why a search stopped early ([`Stop`]), and so does the liveness pass
//! ([`crate::liveness`]); [`crate::check`] turns it into verdicts.

pub mod explicit;
pub mod symbolic;

use serde::Serialize;

/// Why a search ended before it had seen every reachable state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Stop {
    /// At the first counterexample to an `always` property (the default; `--keep-going`
    /// explores on).
    Violation { property: String },
    /// Before the process outgrew its memory budget.
    MemoryBudget { budget: u64, resident: u64 },
}
