//! Property tests for the Bully model and the node.
//!
//! * [`sim`]: a deterministic simulator that drives the model's own checked system
//!   ([`bully_model::system::BullySystem`]) along schedules chosen by proptest, checking the
//!   model's safety properties after every step and its liveness goal once the schedule is
//!   over. Tests: `tests/schedules.rs` (the correct protocol), `tests/mutants.rs` (every mutant
//!   is caught), `tests/crosscheck.rs` (for N ≤ 3 the simulator stays inside the exhaustively
//!   explored state space).
//!
//! * [`conformance`]: a validator for real nodes' NDJSON step logs (replay through the model's
//!   handlers, sends matched to receipts, the model's properties on the merged run), also a tool:
//!   `cargo run -p bully-proptests --bin conformance -- LOG...`. Test: `tests/conformance.rs`
//!   (a real 5-node cluster with a kill, a restart and a pause; mutant and tampered logs are
//!   rejected).
//! * `tests/codec.rs`: the node's wire encoding round-trips every envelope, and the decoder never
//!   panics on arbitrary, truncated, corrupted or oversized frames.

pub mod conformance;
pub mod sim;
