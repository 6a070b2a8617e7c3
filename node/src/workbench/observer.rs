//! What the workbench sees of a cluster, from the outside, on the exercise's own wire.
//!
//! * **The observer** is one more process to the nodes: it heartbeats every live node (the
//!   probes), so each adds it to its process list as it adds any heartbeating process, and
//!   passes it on in its acks. It holds the lowest port, so no node ever sends it an election
//!   request in a correct Bully; it answers heartbeats and `election_won` as any process does,
//!   and never answers an `election` request (answering would claim the election and change
//!   what is observed). Every `election_won` it receives is an announcement.
//! * **Tombstones.** When the workbench kills a node it binds that node's port and records every
//!   request sent there, answering none: a heartbeat is a node that still follows the dead
//!   coordinator, an `election` request is a node that noticed. To the nodes this is a process
//!   that never answers, which is what a crash looks like through a timeout.
//! * **Probes** show who answers a heartbeat within the timeout.
//!
//! One thread owns every socket; the scenario talks to it through [`Observer`].

use crate::exercise::codec::{self, Frame, Kind};
use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A malformed frame: not a pickle (the exercise's `pickle.loads` raises on it).
pub const BAD_FRAME: &[u8] = b"workbench: this frame is not a pickle";

/// One thing the observer saw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "what", rename_all = "kebab-case")]
pub enum Seen {
    /// An `election_won` reached the observer.
    Announced { winner: u16 },
    /// A request reached the tombstone of a killed node.
    Addressed {
        dead: u16,
        kind: &'static str,
        origin: u16,
    },
    /// A probe (heartbeat) got an ack within the timeout, or did not.
    Probe { port: u16, answered: bool },
    /// A request other than heartbeat and `election_won` reached the observer.
    Odd { kind: &'static str, origin: u16 },
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Observation {
    /// Since the scenario began; for a probe, when it was sent.
    #[serde(serialize_with = "super::report::ser_ms")]
    pub t: Duration,
    #[serde(flatten)]
    pub seen: Seen,
}

enum Cmd {
    Probe(Vec<u16>),
    Tomb(u16),
    Untomb(u16),
    BadFrames(Vec<u16>),
}

/// The scenario's handle on the observer thread (stopped when dropped).
pub struct Observer {
    cmds: Option<Sender<Cmd>>,
    seen: Arc<Mutex<Vec<Observation>>>,
    thread: Option<JoinHandle<()>>,
}

impl Observer {
    /// Binds the observer's port (an error when it is taken) and starts the thread.
    pub fn start(
        port: u16,
        period: Duration,
        timeout: Duration,
        t0: Instant,
    ) -> Result<Observer, String> {
        let ctx = zmq::Context::new();
        let own = router(&ctx, port).map_err(|e| format!("port {port} (the observer's): {e}"))?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let mut eyes = Eyes {
            port,
            own,
            tombs: BTreeMap::new(),
            pending_tombs: Vec::new(),
            targets: Vec::new(),
            asks: Vec::new(),
            period,
            timeout,
            t0,
            next_round: t0,
            seen: seen.clone(),
            ctx,
        };
        let thread = std::thread::Builder::new()
            .name("observer".into())
            .spawn(move || eyes.run(rx))
            .map_err(|e| e.to_string())?;
        Ok(Observer {
            cmds: Some(tx),
            seen,
            thread: Some(thread),
        })
    }

    fn send(&self, c: Cmd) {
        if let Some(tx) = &self.cmds {
            let _ = tx.send(c);
        }
    }

    /// The nodes to probe from now on.
    pub fn probe(&self, ports: Vec<u16>) {
        self.send(Cmd::Probe(ports));
    }

    pub fn tomb(&self, port: u16) {
        self.send(Cmd::Tomb(port));
    }

    pub fn untomb(&self, port: u16) {
        self.send(Cmd::Untomb(port));
    }

    pub fn bad_frames(&self, ports: Vec<u16>) {
        self.send(Cmd::BadFrames(ports));
    }

    /// Everything seen so far, in order.
    pub fn seen(&self) -> Vec<Observation> {
        self.seen.lock().expect("observer log").clone()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.cmds = None; // the thread ends when the channel closes
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn router(ctx: &zmq::Context, port: u16) -> Result<zmq::Socket, zmq::Error> {
    let s = ctx.socket(zmq::ROUTER)?;
    s.set_linger(0)?;
    s.bind(&format!("tcp://127.0.0.1:{port}"))?;
    Ok(s)
}

/// A request in flight: a probe (whose answer is recorded) or a bad frame (whose answer is not).
struct Ask {
    port: u16,
    socket: zmq::Socket,
    deadline: Instant,
    sent: Instant,
    probe: bool,
}

/// The observer thread's state.
struct Eyes {
    port: u16,
    own: zmq::Socket,
    tombs: BTreeMap<u16, zmq::Socket>,
    /// Ports to bind as tombstones once the dead process has let go of them.
    pending_tombs: Vec<u16>,
    targets: Vec<u16>,
    asks: Vec<Ask>,
    period: Duration,
    timeout: Duration,
    t0: Instant,
    next_round: Instant,
    seen: Arc<Mutex<Vec<Observation>>>,
    /// Last: dropped after every socket (a context waits for its sockets to close).
    ctx: zmq::Context,
}

impl Eyes {
    fn record(&self, at: Instant, seen: Seen) {
        let t = at.saturating_duration_since(self.t0);
        self.seen
            .lock()
            .expect("observer log")
            .push(Observation { t, seen });
    }

    fn run(&mut self, cmds: Receiver<Cmd>) {
        loop {
            loop {
                match cmds.try_recv() {
                    Ok(c) => self.command(c),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
            self.bind_tombs();
            let now = Instant::now();
            if now >= self.next_round {
                self.next_round = now + self.period;
                self.probe_round();
            }
            self.expire(now);
            self.poll();
        }
    }

    fn command(&mut self, c: Cmd) {
        match c {
            Cmd::Probe(ports) => self.targets = ports,
            Cmd::Tomb(port) => self.pending_tombs.push(port),
            Cmd::Untomb(port) => {
                self.pending_tombs.retain(|&p| p != port);
                self.tombs.remove(&port);
            }
            Cmd::BadFrames(ports) => {
                for port in ports {
                    self.ask(port, BAD_FRAME.to_vec(), false);
                }
            }
        }
    }

    fn bind_tombs(&mut self) {
        let pending = std::mem::take(&mut self.pending_tombs);
        for port in pending {
            match router(&self.ctx, port) {
                Ok(s) => {
                    self.tombs.insert(port, s);
                }
                // The port is not free yet: try again on the next turn.
                Err(_) => self.pending_tombs.push(port),
            }
        }
    }

    fn probe_round(&mut self) {
        for port in self.targets.clone() {
            if self.asks.iter().any(|a| a.probe && a.port == port) {
                continue; // the last probe is still out
            }
            let hb = Frame::new(Kind::Heartbeat, Some(u64::from(self.port)));
            self.ask(port, codec::encode(&hb), true);
        }
    }

    /// Sends one request on a fresh DEALER (as a REQ would frame it).
    fn ask(&mut self, port: u16, payload: Vec<u8>, probe: bool) {
        let Ok(socket) = self.ctx.socket(zmq::DEALER) else {
            return;
        };
        let _ = socket.set_linger(0);
        if socket.connect(&format!("tcp://127.0.0.1:{port}")).is_err() {
            return;
        }
        let _ = socket.send_multipart([&b""[..], &payload[..]], zmq::DONTWAIT);
        let now = Instant::now();
        self.asks.push(Ask {
            port,
            socket,
            deadline: now + self.timeout,
            sent: now,
            probe,
        });
    }

    fn expire(&mut self, now: Instant) {
        let (late, keep): (Vec<Ask>, Vec<Ask>) = std::mem::take(&mut self.asks)
            .into_iter()
            .partition(|a| now >= a.deadline);
        self.asks = keep;
        for a in late.into_iter().filter(|a| a.probe) {
            self.record(
                a.sent,
                Seen::Probe {
                    port: a.port,
                    answered: false,
                },
            );
        }
    }

    fn poll(&mut self) {
        let tomb_ports: Vec<u16> = self.tombs.keys().copied().collect();
        let mut items = vec![self.own.as_poll_item(zmq::POLLIN)];
        items.extend(self.tombs.values().map(|s| s.as_poll_item(zmq::POLLIN)));
        items.extend(self.asks.iter().map(|a| a.socket.as_poll_item(zmq::POLLIN)));
        if zmq::poll(&mut items, 10).is_err() {
            return;
        }
        let ready: Vec<bool> = items.iter().map(|i| i.is_readable()).collect();
        drop(items);
        if ready[0] {
            self.serve_own();
        }
        for (i, port) in tomb_ports.iter().enumerate() {
            if ready[1 + i] {
                self.serve_tomb(*port);
            }
        }
        let base = 1 + tomb_ports.len();
        let done: Vec<usize> = (0..self.asks.len()).filter(|i| ready[base + i]).collect();
        for i in done.into_iter().rev() {
            let a = self.asks.remove(i);
            let reply = a.socket.recv_multipart(zmq::DONTWAIT).ok();
            let answered = reply
                .and_then(|f| f.last().cloned())
                .and_then(|p| codec::decode(&p, codec::DEFAULT_MAX_FRAME).ok())
                .is_some_and(|f| f.kind == Kind::Ack);
            if a.probe {
                self.record(
                    a.sent,
                    Seen::Probe {
                        port: a.port,
                        answered,
                    },
                );
            }
        }
    }

    /// Requests to the observer: announcements are recorded and answered, heartbeats answered,
    /// `election` requests recorded and never answered.
    fn serve_own(&mut self) {
        while let Ok(frames) = self.own.recv_multipart(zmq::DONTWAIT) {
            let now = Instant::now();
            let (Some(id), Some(payload)) = (frames.first(), frames.last()) else {
                continue;
            };
            let Ok(req) = codec::decode(payload, codec::DEFAULT_MAX_FRAME) else {
                continue;
            };
            let origin = req.sender.unwrap_or(0) as u16;
            let reply = match req.kind {
                Kind::ElectionWon => {
                    self.record(now, Seen::Announced { winner: origin });
                    Frame::new(Kind::ElectionOk, Some(u64::from(self.port)))
                }
                Kind::Heartbeat => {
                    let mut ack = Frame::new(Kind::Ack, None);
                    ack.processes = vec![u64::from(self.port)];
                    ack
                }
                kind => {
                    self.record(
                        now,
                        Seen::Odd {
                            kind: kind.name(),
                            origin,
                        },
                    );
                    continue;
                }
            };
            let _ = self.own.send_multipart(
                [&id[..], &b""[..], &codec::encode(&reply)[..]],
                zmq::DONTWAIT,
            );
        }
    }

    fn serve_tomb(&mut self, dead: u16) {
        let Some(s) = self.tombs.get(&dead) else {
            return;
        };
        let mut got = Vec::new();
        while let Ok(frames) = s.recv_multipart(zmq::DONTWAIT) {
            if let Some(req) = frames
                .last()
                .and_then(|p| codec::decode(p, codec::DEFAULT_MAX_FRAME).ok())
            {
                got.push((req.kind.name(), req.sender.unwrap_or(0) as u16));
            }
        }
        let now = Instant::now();
        for (kind, origin) in got {
            self.record(now, Seen::Addressed { dead, kind, origin });
        }
    }
}
