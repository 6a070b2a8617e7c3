//! Property tests for the Bully model and, later, for the node.
//!
//! * [`sim`]: a deterministic simulator that drives the model's own checked system
//!   ([`bully_model::system::BullySystem`]) along schedules chosen by proptest, checking the
//!   model's safety properties after every step and its liveness goal once the schedule is
//!   over. Tests: `tests/schedules.rs` (the correct protocol), `tests/mutants.rs` (every mutant
//!   is caught), `tests/crosscheck.rs` (for N ≤ 3 the simulator stays inside the exhaustively
//!   explored state space).
//!
//! Still to come (they depend on the node crate): codec properties and the conformance
//! validator for real nodes' step logs (`conformance`, with a `conformance` binary).

pub mod sim;
