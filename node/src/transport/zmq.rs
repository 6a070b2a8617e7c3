//! JSON envelopes over ZeroMQ: one ROUTER to receive, one DEALER per peer to send.
//!
//! * The ROUTER is bound on the node's endpoint. Protocol messages and status requests arrive
//!   there; status requests are answered through it (a DEALER or REQ client gets the reply).
//!   `MAXMSGSIZE` caps frames at the libzmq level (a peer sending more is disconnected); the
//!   application limit (`--max-frame`, lower) is checked on every frame and counted.
//! * Each peer gets its own DEALER, connected to the peer's endpoint with `LINGER 0`,
//!   `IMMEDIATE 1` (nothing is queued toward a peer that is not connected, so nothing stale is
//!   delivered after it restarts) and a small `SNDHWM`. Sends never block (`DONTWAIT`).
//! * A send that cannot leave at once because the first connection to the peer is not up yet
//!   (both just started) waits in the peer's [`Backlog`] for at most `pending_ttl` (half the
//!   protocol timeout: a message that waited that long and its reply still fit in one timeout)
//!   and leaves as soon as the DEALER becomes writable; after that it is dropped and counted as
//!   `expired`. Once a peer has been connected, a send that cannot leave is dropped at once
//!   (`peer_down`, the rule of [`peer_is_down`] that both wires apply): the peer crashed (or
//!   stalls), and a message sent to a crashed process is lost, exactly as the checked model
//!   assumes. The exception is a peer we heard from within `pending_ttl`: it is up (a new
//!   incarnation whose connection our DEALER has not re-established yet), so the frame waits
//!   as above — dropping it would lose a reply between two live processes (a HALT_ACK to a
//!   restarted candidate, which would then presume us down).
//! * One thread owns every socket and waits on all of them with `zmq::poll`.
//! * With a cluster key ([`crate::auth`]) a protocol message is two frames, the stamped
//!   envelope and its MAC; frames that fail the checks are dropped before anything in them is
//!   used (address book included). Without a key a second frame is a `framing` error.
//!
//! The address book (ID → endpoint) is transport data: it comes from the command line, from
//! the `from_endpoint` of every envelope (authoritative: the sender says where it is), and from
//! the `peers` map of envelopes (only fills in IDs this node cannot reach yet). It rides along
//! so that a node that joined through a single contact learns where the members it hears about
//! can be reached: on a frame to a peer when it changed since the last frame to that peer, on
//! the next frame after one toward that peer was dropped, on the first frame after the peer's
//! frames started arriving over a new connection (it restarted, maybe without its data), and
//! at least every [`BOOK_REFRESH`] besides. In a quiet cluster frames carry none: a 64-node
//! coordinator answers 630 heartbeats a second, and parsing and checking 64 entries on each was
//! the largest part of its own work (BENCHMARKS.md).

pub use super::TransportError;
use super::{
    bind_listener, peer_is_down, poll_sockets, serve_until_sent, worth_logging, AddressBook,
    Backlog, Inbound, Listening, ReplyTo, StatusPort, StepObserver, Transport, TransportCounters,
    Wake,
};
use crate::auth::Authenticator;
use crate::status::AuthStatus;
use crate::wire::unix_ms;
use crate::wire::{self, Envelope, Frame};
use bully_model::{Msg, SendId};
use serde_json::Value;
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Most frames taken off the ROUTER per `wait`, so timers are never starved by a flood.
const MAX_BATCH: usize = 256;
/// High-water mark of a peer's DEALER queue (frames).
const PEER_SNDHWM: i32 = 64;
/// A peer gets the address book again at least this often, even if it has not changed (the
/// last resort for a book lost in a way this node cannot see: a receiver that refused it).
const BOOK_REFRESH: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ZmqOptions {
    /// Endpoint to bind, e.g. `tcp://127.0.0.1:5003` or `tcp://*:5003`.
    pub listen: String,
    /// Endpoint peers use to reach this node (sent as `from_endpoint`).
    pub advertise: String,
    /// Largest accepted payload, in bytes.
    pub max_frame: usize,
    /// How long a send may wait for a peer's connection before it is dropped.
    pub pending_ttl: Duration,
    /// Reach IDs with no known endpoint at `tcp://127.0.0.1:<ID>` (the exercise's convention).
    pub localhost_ports: bool,
}

struct Link {
    endpoint: String,
    socket: ::zmq::Socket,
    /// A frame has left on this DEALER: the peer was up (with `IMMEDIATE`, a send succeeds
    /// only on a completed connection).
    connected: bool,
    /// Messages waiting for the connection.
    pending: Backlog<Waiting>,
    /// When a frame from this peer last arrived: a peer we just heard from is up, so a send
    /// that cannot leave yet is waiting for our DEALER to reconnect to its new incarnation,
    /// not sent toward a dead process.
    last_heard: Option<Instant>,
}

/// A message waiting for its peer's connection. It is framed (and sealed) when it leaves, so
/// that it can say how long it waited (`queued_ms`).
struct Waiting {
    queued: Instant,
    env: Envelope,
}

pub struct ZmqTransport {
    ctx: ::zmq::Context,
    me: u64,
    opts: ZmqOptions,
    router: ::zmq::Socket,
    book: BTreeMap<u64, String>,
    links: BTreeMap<u64, Link>,
    /// Bumped whenever `book` changes.
    book_version: u64,
    /// The version the runtime last persisted (see [`AddressBook::take_book_changed`]).
    book_persisted: u64,
    /// The version of the book last sent to each peer, and when.
    book_sent: BTreeMap<u64, (u64, Instant)>,
    /// The ROUTER routing id each peer's frames last came with: a new one is a new connection
    /// (the peer restarted), which gets the book again.
    routes: BTreeMap<u64, Vec<u8>>,
    counters: TransportCounters,
    wake: Option<Wake>,
    /// Frame authentication, with `--cluster-key`.
    auth: Option<Authenticator>,
    /// Since when the ROUTER listens (`before_start`).
    listening: Listening,
}

impl ZmqTransport {
    /// Binds the ROUTER. `book` holds the endpoints known from configuration.
    pub fn bind(
        me: u64,
        opts: ZmqOptions,
        book: BTreeMap<u64, String>,
        wake: Option<UnixStream>,
    ) -> Result<ZmqTransport, TransportError> {
        if !wire::valid_bind_endpoint(&opts.listen) {
            return Err(TransportError::BadEndpoint(opts.listen.clone()));
        }
        if !wire::valid_connect_endpoint(&opts.advertise) {
            return Err(TransportError::BadEndpoint(opts.advertise.clone()));
        }
        let ctx = ::zmq::Context::new();
        let router = bind_listener(&ctx, ::zmq::ROUTER, &opts.listen, opts.max_frame)?;
        let wake = wake.map(Wake::new).transpose()?;
        let mut t = ZmqTransport {
            ctx,
            me,
            opts,
            router,
            book: BTreeMap::new(),
            links: BTreeMap::new(),
            book_version: 0,
            book_persisted: 0,
            book_sent: BTreeMap::new(),
            routes: BTreeMap::new(),
            counters: TransportCounters::default(),
            wake,
            auth: None,
            listening: Listening::now(),
        };
        for (id, e) in book {
            t.learn(id, e, true);
        }
        t.book_persisted = t.book_version;
        Ok(t)
    }

    /// Authenticates every frame from now on (see [`crate::auth`]).
    pub fn with_auth(mut self, auth: Authenticator) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Where `id` lives, from configuration (replaces what was known).
    pub fn add_peer(&mut self, id: u64, endpoint: String) {
        self.learn(id, endpoint, true);
    }

    /// Records where `id` lives. An authoritative entry (the sender's own `from_endpoint`, or
    /// configuration) replaces an old one; a second-hand one only fills a gap.
    fn learn(&mut self, id: u64, endpoint: String, authoritative: bool) {
        if id == self.me {
            return;
        }
        match self.book.get(&id) {
            Some(old) if *old == endpoint => {}
            Some(_) if !authoritative => {}
            Some(old) => {
                debug!(peer = id, old = %old, new = %endpoint, "peer moved");
                self.links.remove(&id);
                self.book.insert(id, endpoint);
                self.book_updated();
            }
            None => {
                self.book.insert(id, endpoint);
                self.book_updated();
            }
        }
    }

    fn book_updated(&mut self) {
        self.book_version += 1;
    }

    /// The address book to put on the next frame to `to`: all of it when it changed since the
    /// last frame to `to`, when that frame may not have arrived ([`Self::book_lost`]) or was
    /// [`BOOK_REFRESH`] ago; else none.
    fn book_for(&mut self, to: u64) -> BTreeMap<u64, String> {
        let now = Instant::now();
        let due = self.book_sent.get(&to).is_none_or(|&(version, at)| {
            version != self.book_version || now.duration_since(at) >= BOOK_REFRESH
        });
        if !due {
            return BTreeMap::new();
        }
        self.book_sent.insert(to, (self.book_version, now));
        self.book.clone()
    }

    /// The last book sent to `to` may not have arrived: a frame toward it was dropped, or it
    /// talks to us over a new connection. The next frame carries the book.
    fn book_lost(&mut self, to: u64) {
        self.book_sent.remove(&to);
    }

    fn count_drop(&mut self, reason: &'static str, what: impl FnOnce() -> String) {
        self.counters.drop_logged(self.me, reason, what);
    }

    /// The DEALER toward `id`, created on first use.
    fn link(&mut self, id: u64) -> Option<&mut Link> {
        if !self.links.contains_key(&id) {
            let endpoint = match self.book.get(&id) {
                Some(e) => e.clone(),
                None if self.opts.localhost_ports => {
                    let e = wire::localhost_endpoint(id)?;
                    self.book.insert(id, e.clone());
                    self.book_updated();
                    e
                }
                None => return None,
            };
            let socket = match self.dealer(&endpoint) {
                Ok(s) => s,
                Err(e) => {
                    self.count_drop("bad_endpoint", || format!("connect {endpoint}: {e}"));
                    self.book.remove(&id);
                    self.book_updated();
                    return None;
                }
            };
            self.links.insert(
                id,
                Link {
                    endpoint,
                    socket,
                    connected: false,
                    pending: Backlog::default(),
                    last_heard: None,
                },
            );
        }
        self.links.get_mut(&id)
    }

    fn dealer(&self, endpoint: &str) -> Result<::zmq::Socket, ::zmq::Error> {
        let s = self.ctx.socket(::zmq::DEALER)?;
        s.set_linger(0)?;
        s.set_immediate(true)?;
        s.set_sndhwm(PEER_SNDHWM)?;
        s.set_reconnect_ivl(50)?;
        s.connect(endpoint)?;
        Ok(s)
    }

    /// Sends what waits for `id` until the DEALER would block; each message says how long it
    /// waited.
    fn flush(&mut self, id: u64) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        while let Some(w) = link.pending.front() {
            let mut env = w.env.clone();
            env.queued_ms = Some(w.queued.elapsed().as_millis() as u64);
            let parts = frame(&mut self.auth, &env, id);
            match send_parts(&link.socket, &parts) {
                Ok(()) => {
                    self.counters.frames_out += 1;
                    self.counters.bytes_out += parts.iter().map(|p| p.len() as u64).sum::<u64>();
                    link.connected = true;
                    link.pending.pop_front();
                }
                Err(::zmq::Error::EAGAIN) => break,
                Err(e) => {
                    link.pending.pop_front();
                    self.book_sent.remove(&id);
                    let n = self.counters.drop_one("send_error");
                    if worth_logging(n) {
                        warn!(node = self.me, peer = id, "send failed: {e}");
                    }
                }
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for (&id, link) in &mut self.links {
            while link
                .pending
                .front()
                .is_some_and(|w| w.queued + self.opts.pending_ttl <= now)
            {
                link.pending.pop_front();
                expired.push(id);
            }
        }
        for id in expired {
            self.book_lost(id);
            let endpoint = self.book.get(&id).cloned().unwrap_or_default();
            self.count_drop("expired", || {
                format!("message to {id} at {endpoint}: not connected in time")
            });
        }
    }

    fn on_frames(&mut self, mut frames: Vec<Vec<u8>>, inbound: &mut Vec<Inbound>) {
        self.counters.frames_in += 1;
        self.counters.bytes_in += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        // ROUTER frames: [routing id, payload] from a DEALER, [routing id, "", payload] from REQ;
        // with a cluster key the payload may be followed by its MAC.
        let req = frames.len() >= 3 && frames[1].is_empty();
        let body = frames.len().saturating_sub(if req { 2 } else { 1 });
        let max_body = if self.auth.is_some() { 2 } else { 1 };
        if body == 0 || body > max_body {
            let n = frames.len().saturating_sub(1);
            self.count_drop("framing", || wire::DecodeError::Framing(n).to_string());
            return;
        }
        let mac = if body == 2 { frames.pop() } else { None };
        let payload = frames.pop().expect("checked length");
        let route = ReplyTo(frames);
        let decoded = match &mut self.auth {
            Some(a) => a.open(
                &payload,
                mac.as_deref(),
                self.me,
                self.opts.max_frame,
                unix_ms(),
            ),
            None => wire::decode(&payload, self.me, self.opts.max_frame),
        };
        match decoded {
            Err(e) => {
                self.count_drop(e.reason(), || e.to_string());
                if req {
                    self.reply(&route, wire::req_ack(Some(&e)));
                }
            }
            Ok(Frame::Status { nonce, watch }) => inbound.push(Inbound::Status {
                reply: route,
                nonce,
                watch,
            }),
            Ok(Frame::Peer(env)) if self.listening.predates(env.queued_ms) => {
                let (from, kind) = (env.from, env.msg.kind());
                self.count_drop("before_start", || {
                    format!("{kind} from {from}: sent before this node was listening")
                });
                if req {
                    self.reply(&route, wire::req_ack(None));
                }
            }
            Ok(Frame::Peer(env)) => {
                if let Some(e) = env.from_endpoint {
                    self.learn(env.from, e, true);
                }
                if let Some(id) = route.0.first() {
                    if self.routes.get(&env.from) != Some(id) {
                        self.routes.insert(env.from, id.clone());
                        self.book_lost(env.from);
                    }
                }
                if let Some(link) = self.links.get_mut(&env.from) {
                    link.last_heard = Some(Instant::now());
                }
                for (id, e) in env.peers {
                    self.learn(id, e, false);
                }
                if req {
                    self.reply(&route, wire::req_ack(None));
                }
                inbound.push(Inbound::Msg {
                    from: wire::id(env.from),
                    msg: env.msg,
                    sent: env.sent,
                });
            }
        }
    }

    fn reply(&mut self, route: &ReplyTo, payload: Vec<u8>) {
        let mut parts = route.0.clone();
        parts.push(payload);
        if let Err(e) = self.router.send_multipart(parts, ::zmq::DONTWAIT) {
            let n = self.counters.drop_one("reply_failed");
            if worth_logging(n) {
                warn!(node = self.me, "reply failed: {e}");
            }
        }
    }
}

/// The frames of `env` toward `to`: the envelope, sealed with a MAC under a cluster key.
fn frame(auth: &mut Option<Authenticator>, env: &Envelope, to: u64) -> Vec<Vec<u8>> {
    match auth {
        Some(a) => a.seal(env, to, unix_ms()),
        None => vec![wire::encode(env)],
    }
}

/// Sends one message (one or more frames) without blocking; all frames or none leave.
fn send_parts(socket: &::zmq::Socket, parts: &[Vec<u8>]) -> Result<(), ::zmq::Error> {
    socket.send_multipart(parts.iter().map(|p| &p[..]), ::zmq::DONTWAIT)
}

impl Transport for ZmqTransport {
    fn send(&mut self, to: Id, msg: &Msg, sent: SendId) {
        let to = wire::num(to);
        if self.counters.refuse_self_send(self.me, to, msg) {
            return;
        }
        let env = Envelope {
            v: wire::VERSION,
            from: self.me,
            from_endpoint: Some(self.opts.advertise.clone()),
            peers: self.book_for(to),
            queued_ms: None,
            sent: Some(sent),
            msg: msg.clone(),
        };
        let parts = frame(&mut self.auth, &env, to);
        if parts[0].len() > self.opts.max_frame {
            let len = parts[0].len();
            self.count_drop("oversized_out", || {
                format!("{} to {to} is {len} bytes", msg.kind())
            });
            return;
        }
        let ttl = self.opts.pending_ttl;
        let Some(link) = self.link(to) else {
            self.count_drop("no_route", || {
                format!("{} to {to}: no known endpoint", msg.kind())
            });
            return;
        };
        if link.pending.is_empty() {
            match send_parts(&link.socket, &parts) {
                Ok(()) => {
                    link.connected = true;
                    self.counters.frames_out += 1;
                    self.counters.bytes_out += parts.iter().map(|p| p.len() as u64).sum::<u64>();
                    return;
                }
                Err(::zmq::Error::EAGAIN)
                    if peer_is_down(link.connected, false, link.last_heard, ttl) =>
                {
                    self.book_lost(to);
                    self.count_drop("peer_down", || {
                        format!(
                            "{} to {to}: connection lost (peer down or stalled)",
                            msg.kind()
                        )
                    });
                    return;
                }
                Err(::zmq::Error::EAGAIN) => {}
                Err(e) => {
                    let endpoint = link.endpoint.clone();
                    self.book_lost(to);
                    self.count_drop("send_error", || {
                        format!("{} to {to} at {endpoint}: {e}", msg.kind())
                    });
                    return;
                }
            }
        }
        let now = Instant::now();
        let overflow = link.pending.push(Waiting { queued: now, env });
        self.counters.deferred += 1;
        if overflow {
            self.book_lost(to);
            self.count_drop("queue_full", || format!("queue toward {to} is full"));
        }
    }

    fn wait(&mut self, timeout: Duration, inbound: &mut Vec<Inbound>) -> anyhow::Result<()> {
        let now = Instant::now();
        self.expire(now);
        let mut timeout = timeout;
        for link in self.links.values() {
            if let Some(w) = link.pending.front() {
                let expires = w.queued + self.opts.pending_ttl;
                timeout = timeout.min(expires.saturating_duration_since(now));
            }
        }
        let waiting: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| !l.pending.is_empty())
            .map(|(&id, _)| id)
            .collect();
        let polled = {
            let others: Vec<_> = waiting
                .iter()
                .map(|id| (&self.links[id].socket, ::zmq::POLLOUT))
                .collect();
            poll_sockets(&self.router, self.wake.as_mut(), &others, timeout)?
        };
        let writable = waiting
            .into_iter()
            .zip(polled.others)
            .filter_map(|(id, ready)| ready.then_some(id));
        for id in writable {
            self.flush(id);
        }
        if polled.listener {
            for _ in 0..MAX_BATCH {
                match self.router.recv_multipart(::zmq::DONTWAIT) {
                    Ok(frames) => self.on_frames(frames, inbound),
                    Err(::zmq::Error::EAGAIN) | Err(::zmq::Error::EINTR) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    fn counters(&self) -> &TransportCounters {
        &self.counters
    }

    fn close(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        serve_until_sent(self, deadline, |t| {
            t.links.values().any(|l| !l.pending.is_empty())
        });
        // Let frames already handed to libzmq leave before the context terminates.
        let ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .max(10) as i32;
        for link in self.links.values() {
            let _ = link.socket.set_linger(ms);
        }
    }
}

/// Status requests arrive on the ROUTER and are answered through it.
impl StatusPort for ZmqTransport {
    fn reply_status(&mut self, to: ReplyTo, nonce: Option<u64>, status: &Value) {
        self.reply(&to, wire::status_reply(nonce, status));
    }

    fn auth_status(&self) -> Option<AuthStatus> {
        Some(match &self.auth {
            None => AuthStatus {
                enabled: false,
                mac: None,
                incarnation: None,
                sent_seq: None,
                senders_tracked: None,
            },
            Some(a) => AuthStatus {
                enabled: true,
                mac: Some("hmac-sha256".into()),
                incarnation: Some(a.incarnation()),
                sent_seq: Some(a.sent_seq()),
                senders_tracked: Some(a.senders() as u64),
            },
        })
    }
}

impl AddressBook for ZmqTransport {
    fn address_book(&self) -> BTreeMap<u64, String> {
        self.book.clone()
    }

    fn take_book_changed(&mut self) -> bool {
        let changed = self.book_persisted != self.book_version;
        self.book_persisted = self.book_version;
        changed
    }
}

impl StepObserver for ZmqTransport {}
