//! Moving protocol messages between processes, behind one small trait.
//!
//! The runtime never sees sockets or bytes: it hands a [`Msg`] and a destination [`Id`] to
//! [`Transport::send`] and gets [`Inbound`] items back from [`Transport::wait`]. Everything a
//! wire needs beyond that — encoding, framing, the address book (which ID lives at which
//! endpoint), queues and their limits — is the transport's business. [`zmq::ZmqTransport`] is the
//! JSON-over-ZeroMQ wire; [`crate::exercise::transport::ExerciseTransport`] is the exercise's
//! pickle-over-REQ/REP wire.

pub mod zmq;

use bully_model::{Msg, State};
use serde::Serialize;
use serde_json::Value;
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::time::Duration;

/// Something that arrived.
#[derive(Debug)]
pub enum Inbound {
    /// A protocol message from process `from`.
    Msg { from: Id, msg: Msg },
    /// A status request; answer it with [`Transport::reply_status`].
    Status { reply: ReplyTo, nonce: Option<u64> },
}

/// Where to send a reply to a request (opaque routing data of the transport that received it).
#[derive(Debug, Clone)]
pub struct ReplyTo(pub Vec<Vec<u8>>);

/// Counters a transport keeps (reported by `status`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TransportCounters {
    /// Frames dropped, by reason (decode errors on the way in; no route, expired or overflowing
    /// queues on the way out).
    pub dropped: BTreeMap<&'static str, u64>,
    /// Sends that could not leave at once (peer not connected yet) and were queued briefly.
    pub deferred: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl TransportCounters {
    /// Counts one drop; returns the new count for `reason` (callers log sparsely with it).
    pub fn drop_one(&mut self, reason: &'static str) -> u64 {
        let n = self.dropped.entry(reason).or_default();
        *n += 1;
        *n
    }
}

/// Whether the `n`th occurrence of something is worth a log line (1..=5, then powers of two):
/// a flood of garbage must not turn into a flood of log lines.
pub fn worth_logging(n: u64) -> bool {
    n <= 5 || n.is_power_of_two()
}

pub trait Transport {
    /// Sends `msg` to process `to`. Never blocks: a message that cannot leave now is queued for
    /// a bounded time or dropped, and counted.
    fn send(&mut self, to: Id, msg: &Msg);
    /// Waits at most `timeout` for traffic (or a wake-up), and appends what arrived.
    fn wait(&mut self, timeout: Duration, inbound: &mut Vec<Inbound>) -> anyhow::Result<()>;
    /// Answers a status request.
    fn reply_status(&mut self, to: ReplyTo, nonce: Option<u64>, status: &Value);
    /// Which process lives at which endpoint, as far as this transport knows.
    fn address_book(&self) -> BTreeMap<u64, String>;
    /// Whether the address book changed since the last call.
    fn take_book_changed(&mut self) -> bool;
    fn counters(&self) -> &TransportCounters;
    /// The handler's state after each step, given before the step's commands are executed (a
    /// wire that must fill in fields a peer cannot send, like the exercise's, reads it; others
    /// ignore it).
    fn observe(&mut self, _state: &State) {}
    /// Gives queued messages up to `grace` to leave; called once before the process exits.
    fn close(&mut self, grace: Duration);
    /// The state of frame authentication, for `status` (`null`: none).
    fn auth_status(&self) -> Value {
        Value::Null
    }
}
