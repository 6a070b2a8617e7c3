//! The exercise's sockets: one REP bound on the node's port, one REQ per peer (Lazy Pirate).
//!
//! * **REP.** A request is decoded ([`codec::decode`]) and handed to the runtime as the model
//!   message it means ([`adapter::request_msg`]). While the handler runs, the first message it
//!   sends back to the requester *is* the reply (`election_ok` / `ack`, carrying that message
//!   under `bully`). If it sends none, the next [`Transport::wait`] answers with the neutral
//!   reply of that request type. A frame that cannot be decoded is counted by reason, logged
//!   sparsely and answered with the neutral `ack` (the exercise knows no error type). So every
//!   request is answered exactly once and the REP socket never wedges. Status requests (JSON,
//!   from `bully-node status`) are answered on the same socket.
//! * **REQ, one per peer, lockstep.** Messages to a peer wait in a short queue; one request is
//!   in flight at a time, with a deadline of one protocol timeout. No reply by the deadline:
//!   the request is abandoned and the model is told nothing (its own timers detect failures),
//!   so a dead peer costs one timeout. The socket is never stuck: it has `REQ_RELAXED` and
//!   `REQ_CORRELATE`, libzmq's built-in form of the Lazy Pirate's close-and-reopen (the next
//!   request leaves at once; a late reply to the abandoned one is discarded), and `LINGER 0`.
//!   Unlike a closed and reopened socket it keeps its connection, so a peer that was only
//!   paused gets later requests when it resumes, as on the native wire (a reopened socket could
//!   not connect to a paused process, and a resumed coordinator would never hear that it was
//!   deposed). `IMMEDIATE 1`: a request leaves only on a live connection, so nothing is queued
//!   toward a crashed peer and delivered to its next incarnation. As on the native wire, a
//!   request that cannot leave because the connection is gone (or because the peer is presumed
//!   down: its last request got no reply or could not connect, and nothing was heard from it
//!   since) is dropped at once (`peer_down`, the rule of [`peer_is_down`] that both wires
//!   apply: a message to a crashed process is lost, as the model assumes). Messages wait in the
//!   peer's [`Backlog`], as on the native wire. A request on a new socket may wait half a timeout for the first
//!   connection (`expired` after that), and queued requests that waited longer than one
//!   timeout are dropped (`expired`).
//! * One thread owns every socket and waits on all of them with `zmq::poll`: a slow or dead
//!   peer never blocks the event loop.

use super::adapter;
use super::codec::{self, Ext, Kind};
use crate::transport::{
    bind_listener, peer_is_down, poll_sockets, serve_until_sent, worth_logging, AddressBook,
    Backlog, Inbound, Listening, ReplyTo, StatusPort, StepObserver, Transport, TransportCounters,
    TransportError, Wake,
};
use crate::wire;
use bully_model::{Members, Msg, SendId, State};
use serde_json::Value;
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use tracing::debug;

#[derive(Debug, Clone)]
pub struct ExerciseOptions {
    /// Endpoint the REP socket binds, e.g. `tcp://127.0.0.1:5003`.
    pub listen: String,
    /// Host where every peer's port is reached (the exercise: localhost).
    pub host: String,
    /// Largest accepted frame, in bytes.
    pub max_frame: usize,
    /// How long a request waits for its reply (the protocol timeout).
    pub timeout: Duration,
}

struct Outgoing {
    msg: Msg,
    /// Encoded when it leaves, so that it can say how long it waited (`bully_queued_ms`).
    request: codec::Frame,
    queued: Instant,
}

enum Phase {
    /// Waiting for the connection (`IMMEDIATE`: the request has not left).
    Connecting,
    /// Sent; waiting for the reply.
    Waiting,
}

struct InFlight {
    out: Outgoing,
    phase: Phase,
    deadline: Instant,
}

#[derive(Default)]
struct Peer {
    socket: Option<::zmq::Socket>,
    queue: Backlog<Outgoing>,
    current: Option<InFlight>,
    /// Whether the peer is a plain exercise node (no `bully` key), once heard from.
    plain: Option<bool>,
    /// A request has left on the current socket (with `IMMEDIATE`: it was connected).
    socket_connected: bool,
    /// The last request to this peer got no reply, or could not connect, and nothing has
    /// been heard from it since: it is presumed down.
    suspect: bool,
    /// When a request or reply from this peer last arrived.
    last_heard: Option<Instant>,
}

/// The request the REP socket owes a reply to.
enum Owed {
    /// A protocol request from `from`; `handling` once the handler's step for it has begun
    /// (only that step's messages to `from` can be the reply).
    Request {
        from: u64,
        kind: Kind,
        handling: bool,
    },
    /// A status request.
    Status,
}

pub struct ExerciseTransport {
    ctx: ::zmq::Context,
    me: u64,
    opts: ExerciseOptions,
    rep: ::zmq::Socket,
    owed: Option<Owed>,
    peers: BTreeMap<u64, Peer>,
    counters: TransportCounters,
    /// The handler's latest state (members for neutral acks, epochs for plain peers' fields).
    state: Option<State>,
    wake: Option<Wake>,
    /// Since when the REP socket listens (`before_start`).
    listening: Listening,
}

impl ExerciseTransport {
    pub fn bind(
        me: u64,
        opts: ExerciseOptions,
        wake: Option<UnixStream>,
    ) -> Result<ExerciseTransport, TransportError> {
        let ctx = ::zmq::Context::new();
        let rep = bind_listener(&ctx, ::zmq::REP, &opts.listen, opts.max_frame)?;
        let wake = wake.map(Wake::new).transpose()?;
        Ok(ExerciseTransport {
            ctx,
            me,
            opts,
            rep,
            owed: None,
            peers: BTreeMap::new(),
            counters: TransportCounters::default(),
            state: None,
            wake,
            listening: Listening::now(),
        })
    }

    fn endpoint(&self, id: u64) -> String {
        format!("tcp://{}:{id}", self.opts.host)
    }

    fn count_drop(&mut self, reason: &'static str, what: impl FnOnce() -> String) {
        self.counters.drop_logged(self.me, reason, what);
    }

    fn members(&self) -> Members {
        self.state
            .as_ref()
            .map(|s| s.members.clone())
            .unwrap_or_else(|| Members::new([wire::id(self.me)]))
    }

    /// Sends one frame on the REP socket (the one reply it owes).
    fn rep_send(&mut self, payload: Vec<u8>) {
        match self.rep.send(&payload[..], ::zmq::DONTWAIT) {
            Ok(()) => {
                self.counters.frames_out += 1;
                self.counters.bytes_out += payload.len() as u64;
            }
            Err(e) => self.count_drop("reply_failed", || format!("reply: {e}")),
        }
    }

    /// Answers the owed request with `msg` (the handler's message, and which send it is), or
    /// the neutral reply.
    fn answer(&mut self, kind: Kind, msg: Option<(&Msg, SendId)>) {
        let mut frame = adapter::reply(self.me, kind, msg.map(|m| m.0), &self.members());
        frame.sent = msg.map(|m| m.1);
        self.rep_send(codec::encode(&frame));
    }

    fn enqueue(&mut self, to: u64, msg: &Msg, sent: SendId) {
        let mut request = adapter::request(self.me, msg);
        request.sent = Some(sent);
        let peer = self.peers.entry(to).or_default();
        let overflow = peer.queue.push(Outgoing {
            msg: msg.clone(),
            request,
            queued: Instant::now(),
        });
        if overflow {
            self.count_drop("queue_full", || format!("queue toward {to} is full"));
        }
    }

    fn req_socket(&self, to: u64) -> Result<::zmq::Socket, ::zmq::Error> {
        let s = self.ctx.socket(::zmq::REQ)?;
        s.set_linger(0)?;
        s.set_immediate(true)?;
        s.set_req_relaxed(true)?;
        s.set_req_correlate(true)?;
        s.set_reconnect_ivl(50)?;
        s.set_maxmsgsize((self.opts.max_frame as i64 * 4).max(1 << 20))?;
        s.connect(&self.endpoint(to))?;
        Ok(s)
    }

    /// Lazy Pirate bookkeeping: expire, give up on overdue requests, start the next ones.
    fn pump(&mut self, now: Instant) {
        let timeout = self.opts.timeout;
        let ids: Vec<u64> = self.peers.keys().copied().collect();
        for id in ids {
            let mut drops: Vec<(&'static str, String)> = Vec::new();
            let new_socket = {
                let peer = self.peers.get_mut(&id).expect("listed");
                match &peer.current {
                    Some(c) if c.deadline <= now => {
                        let kind = c.out.msg.kind();
                        if matches!(c.phase, Phase::Waiting) {
                            // No reply in time: abandon the request. The socket is not stuck
                            // (REQ_RELAXED): the next request leaves on it at once, and a late
                            // reply to this one is discarded (REQ_CORRELATE).
                            drops.push(("no_reply", format!("{kind} to {id}: no reply in time")));
                        } else {
                            // Never left: the connection did not come up in time. The socket
                            // stays and keeps connecting.
                            drops.push((
                                "expired",
                                format!("{kind} to {id}: not connected in time"),
                            ));
                        }
                        peer.current = None;
                        peer.suspect = true;
                    }
                    _ => {}
                }
                while peer.current.is_none() {
                    let Some(out) = peer.queue.pop_front() else {
                        break;
                    };
                    if now.duration_since(out.queued) > timeout {
                        drops.push((
                            "expired",
                            format!("{} to {id}: waited too long", out.msg.kind()),
                        ));
                        continue;
                    }
                    peer.current = Some(InFlight {
                        out,
                        phase: Phase::Connecting,
                        deadline: now + timeout / 2,
                    });
                }
                (peer.current.is_some() || peer.suspect) && peer.socket.is_none()
            };
            if new_socket {
                match self.req_socket(id) {
                    Ok(s) => {
                        let peer = self.peers.get_mut(&id).expect("listed");
                        peer.socket = Some(s);
                        peer.socket_connected = false;
                    }
                    Err(e) => {
                        let peer = self.peers.get_mut(&id).expect("listed");
                        peer.current = None;
                        drops.push(("send_error", format!("socket toward {id}: {e}")));
                    }
                }
            }
            self.try_send(id, &mut drops);
            for (reason, what) in drops {
                self.count_drop(reason, || what);
            }
        }
    }

    /// Sends the current request of `id` if it has not left yet and the connection is up.
    fn try_send(&mut self, id: u64, drops: &mut Vec<(&'static str, String)>) {
        let ttl = self.opts.timeout / 2;
        let peer = self.peers.get_mut(&id).expect("listed");
        let (Some(c), Some(socket)) = (&mut peer.current, &peer.socket) else {
            return;
        };
        if !matches!(c.phase, Phase::Connecting) {
            return;
        }
        let waited = c.out.queued.elapsed().as_millis() as u64;
        let frame = codec::encode(&codec::Frame {
            queued_ms: (waited > 0).then_some(waited),
            ..c.out.request.clone()
        });
        match socket.send(&frame[..], ::zmq::DONTWAIT) {
            Ok(()) => {
                c.phase = Phase::Waiting;
                c.deadline = Instant::now() + self.opts.timeout;
                peer.socket_connected = true;
                peer.suspect = false;
                self.counters.frames_out += 1;
                self.counters.bytes_out += frame.len() as u64;
            }
            Err(::zmq::Error::EAGAIN)
                if peer_is_down(peer.socket_connected, peer.suspect, peer.last_heard, ttl) =>
            {
                drops.push((
                    "peer_down",
                    format!("{} to {id}: not connected (peer down)", c.out.msg.kind()),
                ));
                peer.current = None;
                peer.suspect = true;
            }
            Err(::zmq::Error::EAGAIN) => {}
            Err(e) => {
                drops.push(("send_error", format!("{} to {id}: {e}", c.out.msg.kind())));
                peer.current = None;
                peer.socket = None;
            }
        }
    }

    /// A reply from `id` to its current request.
    fn on_reply(&mut self, id: u64, frames: Vec<Vec<u8>>, inbound: &mut Vec<Inbound>) {
        self.counters.frames_in += 1;
        self.counters.bytes_in += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        let Some(c) = self.peers.get_mut(&id).and_then(|p| p.current.take()) else {
            return;
        };
        if frames.len() != 1 {
            let e = codec::DecodeError::Framing(frames.len());
            return self.count_drop(e.reason(), || format!("reply from {id}: {e}"));
        }
        let frame = match codec::decode(&frames[0], self.opts.max_frame) {
            Ok(f) => f,
            Err(e) => return self.count_drop(e.reason(), || format!("reply from {id}: {e}")),
        };
        if let Some(p) = self.peers.get_mut(&id) {
            p.plain = Some(frame.ext == Ext::Plain);
            p.last_heard = Some(Instant::now());
            p.suspect = false;
        }
        match adapter::reply_msg(id, &c.out.msg, &frame, self.state.as_ref()) {
            Ok(Some(msg)) => inbound.push(Inbound::Msg {
                from: wire::id(id),
                msg,
                sent: frame.sent,
            }),
            Ok(None) => {}
            Err(adapter::ReplyError::Unexpected) => {
                let (got, sent) = (frame.kind.name(), c.out.msg.kind());
                self.count_drop("unexpected_reply", || {
                    format!("{got} from {id} in reply to {sent}")
                });
            }
        }
    }

    /// A request on the REP socket. Every path either hands it to the runtime (which answers
    /// it while handling it, or the next `wait` answers it) or answers it here.
    fn on_request(&mut self, frames: Vec<Vec<u8>>, inbound: &mut Vec<Inbound>) {
        self.counters.frames_in += 1;
        self.counters.bytes_in += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        if frames.len() != 1 {
            let e = codec::DecodeError::Framing(frames.len());
            return self.refuse(e.reason(), e.to_string());
        }
        let payload = &frames[0];
        if payload.first() == Some(&b'{') {
            return self.on_json_request(payload, inbound);
        }
        let frame = match codec::decode(payload, self.opts.max_frame) {
            Ok(f) => f,
            Err(e) => return self.refuse(e.reason(), e.to_string()),
        };
        if !frame.kind.is_request() {
            return self.refuse(
                "unexpected_type",
                format!("{} sent as a request", frame.kind.name()),
            );
        }
        if self.listening.predates(frame.queued_ms) {
            let what = format!(
                "{} from {:?}: sent before this node was listening",
                frame.kind.name(),
                frame.sender
            );
            return self.refuse("before_start", what);
        }
        let Some((from, msg)) = adapter::request_msg(&frame, self.state.as_ref()) else {
            return self.refuse("bad_field", "a request without a sender".into());
        };
        if from == self.me {
            return self.refuse("invalid_sender", format!("sender {from} is this node"));
        }
        let peer = self.peers.entry(from).or_default();
        peer.plain = Some(frame.ext == Ext::Plain);
        peer.last_heard = Some(Instant::now());
        peer.suspect = false;
        debug!(node = self.me, from, kind = frame.kind.name(), "request");
        self.owed = Some(Owed::Request {
            from,
            kind: frame.kind,
            handling: false,
        });
        // First, so that the runtime's next step is this request's: every later step (other
        // arrivals, timers) finds the reply settled.
        inbound.insert(
            0,
            Inbound::Msg {
                from: wire::id(from),
                msg,
                sent: frame.sent,
            },
        );
    }

    /// A JSON request on the REP socket: only a status request (`bully-node status`) is
    /// meaningful here; anything else gets the neutral reply.
    fn on_json_request(&mut self, payload: &[u8], inbound: &mut Vec<Inbound>) {
        match wire::decode(payload, self.me, self.opts.max_frame) {
            Ok(wire::Frame::Status { nonce, .. }) => {
                self.owed = Some(Owed::Status);
                // The REP socket takes no request before this one is answered, so a watch is
                // answered at once, like a plain request.
                inbound.push(Inbound::Status {
                    reply: ReplyTo(Vec::new()),
                    nonce,
                    watch: None,
                });
            }
            _ => self.refuse(
                "not_pickle",
                "a JSON frame that is no status request".into(),
            ),
        }
    }

    /// Counts a request dropped for `reason` and answers it with the neutral reply (the
    /// exercise knows no error type, and the REP socket must answer every request).
    fn refuse(&mut self, reason: &'static str, what: String) {
        self.count_drop(reason, || what);
        self.answer(Kind::Heartbeat, None);
    }

    /// Pays a reply still owed (the handler had nothing to say to the requester).
    fn settle(&mut self) {
        match self.owed.take() {
            Some(Owed::Request { kind, .. }) => self.answer(kind, None),
            Some(Owed::Status) => self.rep_send(wire::status_reply(None, &Value::Null)),
            None => {}
        }
    }

    fn busy(&self) -> bool {
        self.peers
            .values()
            .any(|p| p.current.is_some() || !p.queue.is_empty())
    }
}

impl Transport for ExerciseTransport {
    fn send(&mut self, to: Id, msg: &Msg, sent: SendId) {
        let to = wire::num(to);
        if self.counters.refuse_self_send(self.me, to, msg) {
            return;
        }
        if let Some(Owed::Request {
            from,
            kind,
            handling: true,
        }) = self.owed
        {
            if from == to {
                // The handler's first message back to the requester is the reply.
                self.owed = None;
                self.answer(kind, Some((msg, sent)));
                let plain = self.peers.get(&to).and_then(|p| p.plain) == Some(true);
                if plain && kind == Kind::Election && matches!(msg, Msg::Coordinator { .. }) {
                    // A coordinator answers an election with its announcement; a plain peer
                    // reads only `election_ok` from the reply, so it gets `election_won` too.
                    self.enqueue(to, msg, sent);
                }
                return;
            }
        }
        let plain = self.peers.get(&to).and_then(|p| p.plain) == Some(true);
        if plain && !adapter::has_plain_meaning(msg) {
            let n = self.counters.drop_one("no_exercise_equivalent");
            if worth_logging(n) {
                debug!(
                    node = self.me,
                    "{} to {to}: a plain exercise node has no such message",
                    msg.kind()
                );
            }
            return;
        }
        self.enqueue(to, msg, sent);
        self.pump(Instant::now());
    }

    fn wait(&mut self, timeout: Duration, inbound: &mut Vec<Inbound>) -> anyhow::Result<()> {
        self.settle();
        let now = Instant::now();
        self.pump(now);
        let mut timeout = timeout;
        for p in self.peers.values() {
            if let Some(c) = &p.current {
                timeout = timeout.min(c.deadline.saturating_duration_since(now));
            }
        }
        let active: Vec<(u64, bool)> = self
            .peers
            .iter()
            .filter_map(|(&id, p)| {
                let c = p.current.as_ref()?;
                p.socket.as_ref()?;
                Some((id, matches!(c.phase, Phase::Connecting)))
            })
            .collect();
        let polled = {
            let others: Vec<_> = active
                .iter()
                .map(|(id, connecting)| {
                    let socket = self.peers[id].socket.as_ref().expect("active");
                    // A request still connecting waits to be written; one sent, for its reply.
                    let events = if *connecting {
                        ::zmq::POLLOUT
                    } else {
                        ::zmq::POLLIN
                    };
                    (socket, events)
                })
                .collect();
            poll_sockets(&self.rep, self.wake.as_mut(), &others, timeout)?
        };
        let rep_ready = polled.listener;
        let ready: Vec<(u64, bool)> = active
            .into_iter()
            .zip(polled.others)
            .filter_map(|(peer, ready)| ready.then_some(peer))
            .collect();
        for (id, connecting) in ready {
            if connecting {
                let mut drops = Vec::new();
                self.try_send(id, &mut drops);
                for (reason, what) in drops {
                    self.count_drop(reason, || what);
                }
                continue;
            }
            let got = match &self.peers[&id].socket {
                Some(s) => s.recv_multipart(::zmq::DONTWAIT),
                None => continue,
            };
            match got {
                Ok(frames) => self.on_reply(id, frames, inbound),
                Err(::zmq::Error::EAGAIN) | Err(::zmq::Error::EINTR) => {}
                Err(e) => {
                    let p = self.peers.get_mut(&id).expect("listed");
                    p.current = None;
                    p.socket = None;
                    self.count_drop("recv_error", || format!("from {id}: {e}"));
                }
            }
        }
        // One request at a time: the REP socket must answer it before it reads the next.
        if rep_ready && self.owed.is_none() {
            match self.rep.recv_multipart(::zmq::DONTWAIT) {
                Ok(frames) => self.on_request(frames, inbound),
                Err(::zmq::Error::EAGAIN) | Err(::zmq::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pump(Instant::now());
        Ok(())
    }

    fn counters(&self) -> &TransportCounters {
        &self.counters
    }

    fn close(&mut self, grace: Duration) {
        serve_until_sent(self, Instant::now() + grace, |t| {
            t.settle();
            t.busy()
        });
        self.settle();
    }
}

/// Status requests (JSON) arrive on the REP socket, which owes each one its reply.
impl StatusPort for ExerciseTransport {
    fn reply_status(&mut self, _to: ReplyTo, nonce: Option<u64>, status: &Value) {
        if matches!(self.owed, Some(Owed::Status)) {
            self.owed = None;
            self.rep_send(wire::status_reply(nonce, status));
        }
    }
}

/// Port = ID: every peer's endpoint follows from its ID.
impl AddressBook for ExerciseTransport {
    fn address_book(&self) -> BTreeMap<u64, String> {
        self.peers
            .keys()
            .map(|&id| (id, self.endpoint(id)))
            .collect()
    }

    fn take_book_changed(&mut self) -> bool {
        // Endpoints follow from IDs (port = ID): nothing to persist.
        false
    }
}

impl StepObserver for ExerciseTransport {
    fn observe(&mut self, state: &State) {
        self.state = Some(state.clone());
        // Called once per step, before its commands run. The first step after a request is
        // its own; a later one means the handler had nothing to say back: pay the neutral reply
        // now, so that a message from a later step (a timer's heartbeat, say) is never taken
        // for the reply — a plain peer would not read it there.
        match &mut self.owed {
            Some(Owed::Request { handling, .. }) if !*handling => *handling = true,
            Some(Owed::Request { .. }) => self.settle(),
            _ => {}
        }
    }
}
