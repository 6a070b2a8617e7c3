//! What every search engine shares with the report: why a search stopped early.
//!
//! The explicit pass ([`crate::engine::explicit`]), the liveness pass ([`crate::liveness`]) and the
//! symbolic engine ([`crate::engine::symbolic`]) all report it, and [`crate::check`] turns it into
//! verdicts; it lives here so that none of them depends on the report.

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
