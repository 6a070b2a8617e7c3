//! Moving protocol messages between processes, behind one small trait.
//!
//! The runtime never sees sockets or bytes: it hands a [`Msg`] and a destination [`Id`] to
//! [`Transport::send`] and gets [`Inbound`] items back from [`Transport::wait`]. Everything a
//! wire needs beyond that — encoding, framing, the address book (which ID lives at which
//! endpoint), queues and their limits — is the transport's business. [`zmq::ZmqTransport`] is the
//! JSON-over-ZeroMQ wire; [`crate::exercise::transport::ExerciseTransport`] is the exercise's
//! pickle-over-REQ/REP wire; [`controlled::ControlledTransport`] hands every frame and timer to
//! the replayer (`bully-node replay`).

pub mod controlled;
pub mod zmq;

use bully_model::{Msg, SendId, State};
use serde::Serialize;
use serde_json::Value;
use stateright::actor::Id;
use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use tracing::warn;

/// Why a transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid endpoint {0:?}")]
    BadEndpoint(String),
    #[error("cannot bind {endpoint}: {source}")]
    Bind {
        endpoint: String,
        source: ::zmq::Error,
    },
    #[error("ZeroMQ: {0}")]
    Zmq(#[from] ::zmq::Error),
}

/// The listening socket of a wire (a ROUTER, or the exercise's REP), bound to `endpoint`.
pub fn bind_listener(
    ctx: &::zmq::Context,
    kind: ::zmq::SocketType,
    endpoint: &str,
    max_frame: usize,
) -> Result<::zmq::Socket, TransportError> {
    let socket = ctx.socket(kind)?;
    socket.set_linger(0)?;
    // Hard cap in libzmq; the application limit below it is counted per frame.
    socket.set_maxmsgsize((max_frame as i64 * 4).max(1 << 20))?;
    socket
        .bind(endpoint)
        .map_err(|source| TransportError::Bind {
            endpoint: endpoint.to_string(),
            source,
        })?;
    Ok(socket)
}

/// Read end of a self-pipe that signal handlers write to: polled with the sockets, so a signal
/// wakes `wait` at once.
pub struct Wake(UnixStream);

impl Wake {
    pub fn new(pipe: UnixStream) -> Result<Wake, TransportError> {
        pipe.set_nonblocking(true)
            .map_err(|_| TransportError::Zmq(::zmq::Error::EINVAL))?;
        Ok(Wake(pipe))
    }
    pub fn poll_item<'a>(&self) -> ::zmq::PollItem<'a> {
        ::zmq::PollItem::from_fd(self.0.as_raw_fd(), ::zmq::POLLIN)
    }
    /// Empties the pipe after a wake-up.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.0.read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// A poll timeout in whole milliseconds, rounded up: a 0.4 ms wait must not become a busy 0 ms
/// poll loop.
fn poll_ms(timeout: Duration) -> i64 {
    timeout.as_micros().div_ceil(1000).min(i64::MAX as u128) as i64
}

/// What one [`poll_sockets`] found.
pub struct Polled {
    /// The listening socket has something to read.
    pub listener: bool,
    /// Which of the other sockets got the events asked of it, in the order given.
    pub others: Vec<bool>,
}

/// One wait of a wire's event loop, the same on both wires: the listening socket for reading,
/// the wake pipe (drained here, since its only job is to end the wait), and `others` with the
/// events asked of each, for at most `timeout`. An interrupted poll is no error: it reports
/// what it saw.
pub fn poll_sockets(
    listener: &::zmq::Socket,
    wake: Option<&mut Wake>,
    others: &[(&::zmq::Socket, ::zmq::PollEvents)],
    timeout: Duration,
) -> Result<Polled, ::zmq::Error> {
    let mut items = vec![listener.as_poll_item(::zmq::POLLIN)];
    if let Some(w) = &wake {
        items.push(w.poll_item());
    }
    let first = items.len();
    items.extend(others.iter().map(|(s, events)| s.as_poll_item(*events)));
    match ::zmq::poll(&mut items, poll_ms(timeout)) {
        Ok(_) | Err(::zmq::Error::EINTR) => {}
        Err(e) => return Err(e),
    }
    if let Some(w) = wake {
        if items[1].is_readable() {
            w.drain();
        }
    }
    Ok(Polled {
        listener: items[0].is_readable(),
        others: items[first..]
            .iter()
            .map(|it| it.is_readable() || it.is_writable())
            .collect(),
    })
}

/// How both wires close: keep serving the sockets until `busy` says nothing is left to send,
/// or `deadline`. Frames that arrive meanwhile are not processed any more.
pub fn serve_until_sent<T: Transport + ?Sized>(
    t: &mut T,
    deadline: Instant,
    mut busy: impl FnMut(&mut T) -> bool,
) {
    let mut ignored = Vec::new();
    while busy(t) {
        let now = Instant::now();
        if now >= deadline || t.wait(deadline - now, &mut ignored).is_err() {
            break;
        }
        ignored.clear();
    }
}

/// Messages waiting to leave toward one peer, at most [`Backlog::LIMIT`]: a full backlog drops
/// its oldest message for a new one (the newer message reflects the newer state). Both wires
/// queue through it.
#[derive(Debug)]
pub struct Backlog<T> {
    items: VecDeque<T>,
}

impl<T> Default for Backlog<T> {
    fn default() -> Self {
        Backlog {
            items: VecDeque::new(),
        }
    }
}

impl<T> Backlog<T> {
    pub const LIMIT: usize = 64;

    /// Queues `item`; whether the oldest was dropped for it (count it as `queue_full`).
    #[must_use]
    pub fn push(&mut self, item: T) -> bool {
        let overflow = self.items.len() >= Self::LIMIT;
        if overflow {
            self.items.pop_front();
        }
        self.items.push_back(item);
        overflow
    }
    pub fn front(&self) -> Option<&T> {
        self.items.front()
    }
    pub fn pop_front(&mut self) -> Option<T> {
        self.items.pop_front()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The rule both wires apply to a message that cannot leave because its connection is not up:
/// whether its peer is down, so that the message is dropped now (`peer_down`). It is down when
/// its connection was up before, or it is presumed down already (`presumed_down`: its last
/// request went unanswered), and nothing has come from it for `quiet`. A message to a crashed
/// process is lost, as the checked model assumes; it must not reach the next incarnation late.
/// A peer heard from within `quiet` is up (our connection to its new incarnation is not back
/// yet), and a peer never connected may still be starting: their messages wait.
pub fn peer_is_down(
    was_connected: bool,
    presumed_down: bool,
    last_heard: Option<Instant>,
    quiet: Duration,
) -> bool {
    (was_connected || presumed_down) && last_heard.is_none_or(|at| at.elapsed() >= quiet)
}

/// When a wire's listening socket was bound, for the `before_start` rule both wires apply.
#[derive(Clone, Copy, Debug)]
pub struct Listening(Instant);

impl Listening {
    /// Listening from now on.
    pub fn now() -> Listening {
        Listening(Instant::now())
    }
    /// Whether a message that waited `queued_ms` at its sender for the connection was sent
    /// before this socket was bound: this process was not running then, and the message is
    /// dropped (`before_start`), as a message sent to a process that is down is lost in the
    /// checked model. Only durations are compared, each on its own node's monotonic clock.
    pub fn predates(&self, queued_ms: Option<u64>) -> bool {
        queued_ms.is_some_and(|q| u128::from(q) > self.0.elapsed().as_millis())
    }
}

/// Something that arrived.
#[derive(Debug)]
pub enum Inbound {
    /// A protocol message from process `from`; `sent` is the send it is, if the wire carried
    /// it (a plain exercise peer does not).
    Msg {
        from: Id,
        msg: Msg,
        sent: Option<SendId>,
    },
    /// A status request; answer it with [`StatusPort::reply_status`] (with `watch`, once the
    /// role changed or the wait is over).
    Status {
        reply: ReplyTo,
        nonce: Option<u64>,
        watch: Option<crate::wire::Watch>,
    },
    /// Fire this timer now (a transport whose timers are driven from outside, see
    /// [`Transport::external_timers`]).
    Timer { timer: bully_model::Timer },
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
    /// Counts one drop at node `node` and logs it sparsely (see [`worth_logging`]).
    pub fn drop_logged(&mut self, node: u64, reason: &'static str, what: impl FnOnce() -> String) {
        let n = self.drop_one(reason);
        if worth_logging(n) {
            warn!(node, reason, count = n, "dropped: {}", what());
        }
    }
    /// Whether a message from `me` is addressed to `me`: the protocol never sends one, so a
    /// wire drops it (counted as `to_self`) instead of delivering it through a socket.
    pub fn refuse_self_send(&mut self, me: u64, to: u64, msg: &Msg) -> bool {
        if to != me {
            return false;
        }
        self.drop_logged(me, "to_self", || format!("{} to itself", msg.kind()));
        true
    }
}

/// Whether the `n`th occurrence of something is worth a log line (1..=5, then powers of two):
/// a flood of garbage must not turn into a flood of log lines.
pub fn worth_logging(n: u64) -> bool {
    n <= 5 || n.is_power_of_two()
}

/// Moves protocol frames (and, on the replayer's wire, timer firings): the one thing every
/// wire does. What else a wire offers the event loop has a trait of its own ([`Wire`]).
pub trait Transport {
    /// Sends `msg` to process `to`; `sent` names the send (the wire carries it, the receiver
    /// logs it with the receipt). Never blocks: a message that cannot leave now is queued for
    /// a bounded time or dropped, and counted.
    fn send(&mut self, to: Id, msg: &Msg, sent: SendId);
    /// Waits at most `timeout` for traffic (or a wake-up), and appends what arrived.
    fn wait(&mut self, timeout: Duration, inbound: &mut Vec<Inbound>) -> anyhow::Result<()>;
    fn counters(&self) -> &TransportCounters;
    /// Gives queued messages up to `grace` to leave; called once before the process exits.
    fn close(&mut self, grace: Duration);
    /// Whether timers fire only when the transport says so ([`Inbound::Timer`]) instead of at
    /// their deadlines (the replayer's controlled wire).
    fn external_timers(&self) -> bool {
        false
    }
}

/// Answers the status requests that arrive on a wire's socket ([`Inbound::Status`]).
pub trait StatusPort {
    fn reply_status(&mut self, to: ReplyTo, nonce: Option<u64>, status: &Value);
    /// The state of frame authentication, for `status` (`None`: this wire has none).
    fn auth_status(&self) -> Option<crate::status::AuthStatus> {
        None
    }
}

/// Which process lives at which endpoint, as far as a wire knows (saved with the storage, so
/// that a restarted joiner can reach the members).
pub trait AddressBook {
    fn address_book(&self) -> BTreeMap<u64, String>;
    /// Whether the address book changed since the last call.
    fn take_book_changed(&mut self) -> bool;
}

/// A wire that must fill in fields a peer cannot send (like the exercise's) reads the
/// handler's state after each step, before the step's commands are executed.
pub trait StepObserver {
    fn observe(&mut self, _state: &State) {}
}

/// Everything the event loop needs of a wire.
pub trait Wire: Transport + StatusPort + AddressBook + StepObserver {}

impl<T: Transport + StatusPort + AddressBook + StepObserver> Wire for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_backlog_drops_its_oldest() {
        let mut b = Backlog::default();
        for i in 0..Backlog::<usize>::LIMIT {
            assert!(!b.push(i));
        }
        assert!(b.push(999), "the 65th push overflows");
        assert_eq!(b.front(), Some(&1), "the oldest (0) went");
        while b.pop_front().is_some() {}
        assert!(b.is_empty());
    }

    #[test]
    fn only_a_message_that_waited_longer_than_we_listened_predates_us() {
        let listening = Listening(Instant::now() - Duration::from_secs(2));
        assert!(!listening.predates(None), "it left at once");
        assert!(!listening.predates(Some(500)));
        assert!(listening.predates(Some(5_000)));
    }

    #[test]
    fn a_peer_is_down_once_its_connection_was_lost_and_it_is_quiet() {
        let quiet = Duration::from_millis(150);
        let long_ago = Instant::now().checked_sub(Duration::from_secs(1));
        let just_now = Some(Instant::now());
        // Never connected, not presumed down: may still be starting.
        assert!(!peer_is_down(false, false, None, quiet));
        // Connected before (or presumed down), nothing heard lately: down.
        assert!(peer_is_down(true, false, None, quiet));
        assert!(peer_is_down(false, true, long_ago, quiet));
        // Heard from just now: up, whatever our connection says.
        assert!(!peer_is_down(true, true, just_now, quiet));
    }
}
