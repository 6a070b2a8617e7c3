//! The status reply ([`Status`], the one type its writer and its readers share), the status
//! client (`{"v":2,"request":"status","nonce":N}` over a DEALER, reply matched by nonce: a late
//! reply to an earlier request is skipped, never mistaken for the current one; a request may
//! also wait for the next role change, [`wire::Watch`]) and the reply's human form.

use crate::wire;
use bully_model::{Epoch, Members, Role, Storage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// What a node reports about itself (`bully-node status`, the `cluster` launcher, the tests,
/// the benchmarks). The runtime writes it; every reader in this crate reads it as this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub id: u64,
    pub pid: u32,
    pub version: String,
    pub listen: String,
    pub advertise: String,
    /// `joining`, `electing`, `waiting`, `halting`, `coordinator` or `follower` (none before
    /// the first step).
    pub role: Option<String>,
    pub role_detail: Option<Role>,
    pub role_text: Option<String>,
    pub coordinator: Option<Id>,
    pub is_coordinator: bool,
    pub epoch: Option<Epoch>,
    pub epoch_text: Option<String>,
    pub promised: Option<Epoch>,
    pub members: Option<Members>,
    /// Which member lives at which endpoint, as far as the transport knows.
    pub endpoints: BTreeMap<u64, String>,
    /// The timers set, and milliseconds until each fires.
    pub timers: BTreeMap<String, u64>,
    pub elections_started: u64,
    pub elections_seen: u64,
    pub role_changes: u64,
    pub last_role_change: Option<RoleChange>,
    pub epoch_since_unix_ms: Option<u64>,
    pub messages: MessageCounts,
    /// Timer firings by timer.
    pub timeouts: BTreeMap<String, u64>,
    /// Frames dropped, by reason.
    pub dropped: BTreeMap<String, u64>,
    pub dropped_total: u64,
    /// Frame authentication (`null`: the wire has none).
    pub auth: Option<AuthStatus>,
    pub transport: TransportStats,
    pub status_requests: u64,
    /// Heartbeat round trips longer than half the timeout (each is logged sparsely): the
    /// timeout is too close to the real round trip for the failure detector to stay accurate.
    #[serde(default)]
    pub slow_round_trips: u64,
    /// The longest heartbeat round trip this node saw, in ms.
    #[serde(default)]
    pub longest_round_trip_ms: f64,
    /// Handler steps taken.
    pub steps: u64,
    pub timing: TimingStatus,
    /// The storage file, if any.
    pub storage: Option<String>,
    /// The last storage saved.
    pub saved: Option<Storage>,
    pub started_unix_ms: u64,
    pub now_unix_ms: u64,
    pub uptime_ms: u64,
}

/// The last change of role: when, from what, to what, why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleChange {
    pub unix_ms: u64,
    pub uptime_ms: u64,
    pub from: Option<String>,
    pub to: String,
    pub why: String,
}

/// Protocol messages sent and received, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageCounts {
    pub sent: BTreeMap<String, u64>,
    pub received: BTreeMap<String, u64>,
    pub sent_total: u64,
    pub received_total: u64,
}

/// Frame authentication: off, or HMAC-SHA256 with this incarnation's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthStatus {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub senders_tracked: Option<u64>,
}

/// The transport's frame and byte counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportStats {
    pub deferred: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The node's timer durations, and the failover bound they give (one-way delays left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingStatus {
    pub heartbeat_ms: f64,
    pub timeout_ms: f64,
    pub failover_bound_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid endpoint {0:?} (expected tcp://HOST:PORT, ipc://PATH or a port number)")]
    BadEndpoint(String),
    #[error("no status reply from {endpoint} within {}", humantime::format_duration(*.timeout))]
    Timeout { endpoint: String, timeout: Duration },
    #[error("bad status reply from {endpoint}: {reason}")]
    BadReply { endpoint: String, reason: String },
    #[error("ZeroMQ: {0}")]
    Zmq(#[from] zmq::Error),
}

/// A `tcp://...` endpoint, or a bare port (the exercise's convention: localhost).
pub fn parse_target(s: &str) -> Result<String, ClientError> {
    if let Ok(port) = s.parse::<u64>() {
        return wire::localhost_endpoint(port).ok_or_else(|| ClientError::BadEndpoint(s.into()));
    }
    if wire::valid_connect_endpoint(s) {
        Ok(s.to_string())
    } else {
        Err(ClientError::BadEndpoint(s.into()))
    }
}

/// A connection to one node that can be asked repeatedly.
pub struct StatusClient {
    socket: zmq::Socket,
    endpoint: String,
    nonce: u64,
}

impl StatusClient {
    pub fn connect(ctx: &zmq::Context, endpoint: &str) -> Result<StatusClient, ClientError> {
        if !wire::valid_connect_endpoint(endpoint) {
            return Err(ClientError::BadEndpoint(endpoint.into()));
        }
        let socket = ctx.socket(zmq::DEALER)?;
        socket.set_linger(0)?;
        socket.set_sndhwm(4)?;
        socket.set_reconnect_ivl(50)?;
        socket.set_maxmsgsize(16 << 20)?;
        socket.connect(endpoint)?;
        Ok(StatusClient {
            socket,
            endpoint: endpoint.to_string(),
            // Distinct clients should not share nonces (a reused socket id is possible).
            nonce: u64::from(std::process::id()) << 32 | u64::from(rand_u16()) << 16,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Asks for the status and waits at most `timeout` for the matching reply.
    pub fn query(&mut self, timeout: Duration) -> Result<Status, ClientError> {
        let deadline = Instant::now() + timeout;
        let endpoint = self.endpoint.clone();
        let timed_out = || ClientError::Timeout { endpoint, timeout };
        let nonce = match self.ask(None) {
            Ok(n) => n,
            Err(ClientError::Zmq(zmq::Error::EAGAIN)) => return Err(timed_out()),
            Err(e) => return Err(e),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            let ms = left.as_millis().max(1) as i64;
            match self.socket.poll(zmq::POLLIN, ms) {
                Ok(0) | Err(zmq::Error::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            while let Some((n, status)) = self.try_reply()? {
                if n == Some(nonce) {
                    return Ok(status);
                }
                // A late reply to an earlier request.
            }
        }
    }

    /// Sends a status request without waiting for its reply (with `watch`, the node answers
    /// once its role changed or the wait is over); returns the request's nonce. `EAGAIN`: the
    /// node is not reachable yet.
    pub fn ask(&mut self, watch: Option<wire::Watch>) -> Result<u64, ClientError> {
        self.nonce += 1;
        // An empty delimiter first, as a REQ socket sends: a ROUTER accepts it and a REP (the
        // exercise wire) requires it.
        let request = [Vec::new(), wire::status_request(self.nonce, watch)];
        self.socket.send_multipart(request, zmq::DONTWAIT)?;
        Ok(self.nonce)
    }

    /// A reply that has arrived, with the nonce it echoes, without waiting.
    pub fn try_reply(&mut self) -> Result<Option<(Option<u64>, Status)>, ClientError> {
        let frames = loop {
            match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(f) => break f,
                Err(zmq::Error::EAGAIN) => return Ok(None),
                Err(zmq::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let bad = |reason: String| ClientError::BadReply {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let payload = frames.last().ok_or_else(|| bad("no frame".into()))?;
        let v: Value = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
        let nonce = v.get("nonce").and_then(Value::as_u64);
        match v.get("status") {
            Some(s) if s.is_object() => serde_json::from_value(s.clone())
                .map(|status| Some((nonce, status)))
                .map_err(|e| bad(e.to_string())),
            _ => Err(bad("no \"status\" object".into())),
        }
    }

    /// For `zmq::poll`: readable when a reply has arrived.
    pub fn poll_item(&self) -> zmq::PollItem<'_> {
        self.socket.as_poll_item(zmq::POLLIN)
    }
}

fn rand_u16() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (t ^ (t >> 16)) as u16
}

/// One-shot query.
pub fn query(endpoint: &str, timeout: Duration) -> Result<Status, ClientError> {
    let ctx = zmq::Context::new();
    let mut c = StatusClient::connect(&ctx, endpoint)?;
    c.query(timeout)
}

fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
    parts.join(", ")
}

fn or_dash(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// The human form of a status reply.
pub fn render(s: &Status) -> String {
    let members = s
        .members
        .as_ref()
        .map(|m| {
            m.iter()
                .map(|id| usize::from(id).to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "id           {}", s.id);
    let _ = writeln!(out, "role         {}", or_dash(s.role_text.as_ref()));
    let _ = writeln!(
        out,
        "coordinator  {}",
        or_dash(s.coordinator.map(usize::from))
    );
    let _ = writeln!(out, "epoch        {}", or_dash(s.epoch_text.as_ref()));
    let _ = writeln!(out, "promised     {}", or_dash(s.promised));
    let _ = writeln!(out, "members      {members}");
    let _ = writeln!(
        out,
        "elections    seen {}, started {}",
        s.elections_seen, s.elections_started
    );
    let m = &s.messages;
    let _ = writeln!(out, "sent         {} ({})", m.sent_total, counts(&m.sent));
    let _ = writeln!(
        out,
        "received     {} ({})",
        m.received_total,
        counts(&m.received)
    );
    let _ = writeln!(
        out,
        "dropped      {} ({})",
        s.dropped_total,
        counts(&s.dropped)
    );
    let _ = writeln!(
        out,
        "round trips  longest {:.1} ms; {} over half the timeout",
        s.longest_round_trip_ms, s.slow_round_trips
    );
    let auth = match &s.auth {
        Some(a) if a.enabled => format!(
            "HMAC-SHA256 with the cluster key, incarnation {}",
            or_dash(a.incarnation)
        ),
        Some(_) => "none: UNAUTHENTICATED cluster".into(),
        None => "-".into(),
    };
    let _ = writeln!(out, "auth         {auth}");
    let _ = writeln!(
        out,
        "uptime       {}",
        humantime::format_duration(Duration::from_millis(s.uptime_ms))
    );
    out
}
