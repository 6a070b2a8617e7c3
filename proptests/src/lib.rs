//! Property tests for the Bully model and the node.
//!
//! * [`sim`]: a deterministic simulator that drives the model's own checked system
//!   ([`bully_model::system::BullySystem`]) along schedules chosen by proptest, checking the
//!   model's safety properties after every step and its liveness goal once the schedule is
//!   over. Tests: `tests/schedules.rs` (the correct protocol), `tests/mutants.rs` (every mutant
//!   is caught), `tests/crosscheck.rs` (for N ≤ 3 the simulator stays inside the exhaustively
//!   explored state space).
//!
//! * [`conformance`]: the validator for real nodes' NDJSON step logs
//!   ([`bully_model::conformance`]: replay through the model's handlers, each receipt paired
//!   with the send it names, assumption breaches named, the model's properties on the merged
//!   run), also a tool: `cargo run -p bully-proptests --bin conformance -- LOG...`. Tests:
//!   `tests/conformance.rs` (a real 5-node cluster with a kill, a restart and a pause; mutant
//!   and tampered logs are rejected), `tests/chaos.rs` (random fault schedules on 7 nodes).
//! * `tests/codec.rs`: the node's wire encoding round-trips every envelope, and the decoder never
//!   panics on arbitrary, truncated, corrupted or oversized frames.

pub use bully_model::conformance;
pub mod sim;
