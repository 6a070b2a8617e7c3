//! The controlled wire, for `bully-node replay`: every frame this node sends goes to the
//! replayer instead of to its peer, and frames and timer firings come only from the replayer.
//!
//! Everything else is the real node: the handler, the native wire's encoding and decoding
//! ([`wire::encode`], [`wire::decode`]), the storage, the event loop, ZeroMQ. The replayer
//! decides which frame arrives when, which is how a trace of the model is reproduced step by
//! step on real processes.
//!
//! One DEALER socket, connected to the replayer's ROUTER (its routing ID is this node's ID):
//!
//! | direction | frames | meaning |
//! |---|---|---|
//! | node → replayer | `hello` | this node (incarnation) is connected |
//! | node → replayer | `send`, destination ID, payload | the node sent a protocol message |
//! | replayer → node | `deliver`, payload | hand this frame to the node |
//! | replayer → node | `fire`, timer name | fire this timer now (if it is set) |

use super::{
    poll_sockets, AddressBook, Inbound, ReplyTo, StatusPort, StepObserver, Transport,
    TransportCounters, TransportError, Wake,
};
use crate::wire::{self, Envelope, Frame};
use bully_model::{Msg, SendId, Timer};
use serde_json::Value;
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::time::Duration;
use tracing::warn;

pub struct ControlledTransport {
    me: u64,
    socket: zmq::Socket,
    wake: Option<Wake>,
    max_frame: usize,
    counters: TransportCounters,
    _ctx: zmq::Context,
}

impl ControlledTransport {
    /// Connects to the replayer at `endpoint`.
    pub fn connect(
        me: u64,
        endpoint: &str,
        max_frame: usize,
        wake: Option<UnixStream>,
    ) -> Result<ControlledTransport, TransportError> {
        if !wire::valid_connect_endpoint(endpoint) {
            return Err(TransportError::BadEndpoint(endpoint.to_string()));
        }
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::DEALER)?;
        socket.set_identity(me.to_string().as_bytes())?;
        socket.set_linger(1000)?;
        socket.connect(endpoint)?;
        // The replayer hears of this incarnation before anything else: it cannot route a
        // frame to a node whose connection it has not seen.
        socket.send(&b"hello"[..], 0)?;
        Ok(ControlledTransport {
            me,
            socket,
            wake: wake.map(Wake::new).transpose()?,
            max_frame,
            counters: TransportCounters::default(),
            _ctx: ctx,
        })
    }

    /// One message from the replayer, as something that arrived (None: dropped, counted).
    fn inbound(&mut self, parts: Vec<Vec<u8>>) -> Option<Inbound> {
        match parts.first().map(Vec::as_slice) {
            Some(b"deliver") if parts.len() == 2 => {
                self.counters.frames_in += 1;
                self.counters.bytes_in += parts[1].len() as u64;
                match wire::decode(&parts[1], self.me, self.max_frame) {
                    Ok(Frame::Peer(env)) => Some(Inbound::Msg {
                        from: wire::id(env.from),
                        msg: env.msg,
                        sent: env.sent,
                    }),
                    Ok(Frame::Status { .. }) => None,
                    Err(e) => {
                        let me = self.me;
                        self.counters
                            .drop_logged(me, e.reason(), || format!("from the replayer: {e}"));
                        None
                    }
                }
            }
            Some(b"fire") if parts.len() == 2 => {
                match serde_json::from_value::<Timer>(Value::String(
                    String::from_utf8_lossy(&parts[1]).into_owned(),
                )) {
                    Ok(timer) => Some(Inbound::Timer { timer }),
                    Err(_) => {
                        warn!(node = self.me, "the replayer fired an unknown timer");
                        None
                    }
                }
            }
            _ => {
                let me = self.me;
                self.counters
                    .drop_logged(me, "framing", || "an unknown replayer command".into());
                None
            }
        }
    }
}

impl Transport for ControlledTransport {
    fn send(&mut self, to: Id, msg: &Msg, sent: SendId) {
        let env = Envelope {
            v: wire::VERSION,
            from: self.me,
            from_endpoint: None,
            peers: BTreeMap::new(),
            queued_ms: None,
            sent: Some(sent),
            msg: msg.clone(),
        };
        let payload = wire::encode(&env);
        self.counters.frames_out += 1;
        self.counters.bytes_out += payload.len() as u64;
        let dst = wire::num(to).to_string();
        let parts: [&[u8]; 3] = [b"send", dst.as_bytes(), &payload];
        if self.socket.send_multipart(parts, 0).is_err() {
            self.counters.drop_one("no_route");
        }
    }

    fn wait(&mut self, timeout: Duration, inbound: &mut Vec<Inbound>) -> anyhow::Result<()> {
        // Whatever woke the poll, read everything there is.
        poll_sockets(&self.socket, self.wake.as_mut(), &[], timeout)?;
        while let Ok(parts) = self.socket.recv_multipart(zmq::DONTWAIT) {
            if let Some(item) = self.inbound(parts) {
                inbound.push(item);
            }
        }
        Ok(())
    }

    fn counters(&self) -> &TransportCounters {
        &self.counters
    }

    fn external_timers(&self) -> bool {
        true
    }

    fn close(&mut self, _grace: Duration) {}
}

/// Status requests go to the node's own endpoint, which a controlled node does not bind.
impl StatusPort for ControlledTransport {
    fn reply_status(&mut self, _to: ReplyTo, _nonce: Option<u64>, _status: &Value) {}
}

/// The replayer routes every frame: there are no endpoints to know.
impl AddressBook for ControlledTransport {
    fn address_book(&self) -> BTreeMap<u64, String> {
        BTreeMap::new()
    }
    fn take_book_changed(&mut self) -> bool {
        false
    }
}

impl StepObserver for ControlledTransport {}
