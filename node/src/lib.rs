//! `bully-node`: runs the model's [`Bully`](bully_model::Bully) actor on ZeroMQ sockets.
//!
//! This crate moves bytes and timers and nothing else: every protocol decision is made by the
//! handlers in `bully_model::protocol`, which the model checker verified. See `PROTOCOL.md` for
//! the wire, and the guide (docs/src/nodes.md, docs/src/failover.md) for running nodes and the
//! failover bound.

pub mod auth;
pub mod chaos;
pub mod child;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod exercise;
pub mod failpoints;
pub mod failure;
pub mod hooks;
pub mod leadership;
pub mod metrics;
pub mod node;
pub mod replay;
pub mod runtime;
pub mod status;
pub mod steplog;
pub mod storage;
pub mod transport;
pub mod watchers;
pub mod wire;
pub mod workbench;
