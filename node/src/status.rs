//! The status client: `{"v":1,"request":"status","nonce":N}` over a DEALER, reply matched by
//! nonce (a late reply to an earlier request is skipped, never mistaken for the current one).

use crate::wire;
use serde_json::Value;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

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
    pub fn query(&mut self, timeout: Duration) -> Result<Value, ClientError> {
        let deadline = Instant::now() + timeout;
        self.nonce += 1;
        let timed_out = || ClientError::Timeout {
            endpoint: self.endpoint.clone(),
            timeout,
        };
        // An empty delimiter first, as a REQ socket sends: a ROUTER accepts it and a REP (the
        // exercise wire) requires it.
        let request = [Vec::new(), wire::status_request(self.nonce)];
        match self.socket.send_multipart(request, zmq::DONTWAIT) {
            Ok(()) => {}
            Err(zmq::Error::EAGAIN) => return Err(timed_out()),
            Err(e) => return Err(e.into()),
        }
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
            let frames = match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(f) => f,
                Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(payload) = frames.last() else {
                continue;
            };
            let bad = |reason: String| ClientError::BadReply {
                endpoint: self.endpoint.clone(),
                reason,
            };
            let v: Value = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
            if v.get("nonce").and_then(Value::as_u64) != Some(self.nonce) {
                continue; // a late reply to an earlier request
            }
            return match v.get("status") {
                Some(s) if s.is_object() => Ok(s.clone()),
                _ => Err(bad("no \"status\" object".into())),
            };
        }
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
pub fn query(endpoint: &str, timeout: Duration) -> Result<Value, ClientError> {
    let ctx = zmq::Context::new();
    let mut c = StatusClient::connect(&ctx, endpoint)?;
    c.query(timeout)
}

fn counts(v: &Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => {
            let parts: Vec<String> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
            parts.join(", ")
        }
        _ => "none".into(),
    }
}

fn ms_text(v: &Value) -> String {
    v.as_u64()
        .map(|ms| humantime::format_duration(Duration::from_millis(ms)).to_string())
        .unwrap_or_else(|| "-".into())
}

/// The human form of a status reply.
pub fn render(s: &Value) -> String {
    let get = |k: &str| s.get(k).cloned().unwrap_or(Value::Null);
    let text = |v: Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s,
        other => other.to_string(),
    };
    let members = get("members")
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let promised = s
        .get("promised")
        .and_then(|p| Some(format!("{}.{}", p.get("round")?, p.get("leader")?)))
        .unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let _ = writeln!(out, "id           {}", text(get("id")));
    let _ = writeln!(out, "role         {}", text(get("role_text")));
    let _ = writeln!(out, "coordinator  {}", text(get("coordinator")));
    let _ = writeln!(out, "epoch        {}", text(get("epoch_text")));
    let _ = writeln!(out, "promised     {promised}");
    let _ = writeln!(out, "members      {members}");
    let _ = writeln!(
        out,
        "elections    seen {}, started {}",
        text(get("elections_seen")),
        text(get("elections_started"))
    );
    let msgs = get("messages");
    let _ = writeln!(
        out,
        "sent         {} ({})",
        text(msgs.get("sent_total").cloned().unwrap_or(Value::Null)),
        counts(msgs.get("sent").unwrap_or(&Value::Null))
    );
    let _ = writeln!(
        out,
        "received     {} ({})",
        text(msgs.get("received_total").cloned().unwrap_or(Value::Null)),
        counts(msgs.get("received").unwrap_or(&Value::Null))
    );
    let _ = writeln!(
        out,
        "dropped      {} ({})",
        text(get("dropped_total")),
        counts(&get("dropped"))
    );
    let auth = get("auth");
    let auth = match auth.get("enabled").and_then(Value::as_bool) {
        Some(true) => format!(
            "HMAC-SHA256 with the cluster key, incarnation {}",
            text(auth.get("incarnation").cloned().unwrap_or(Value::Null))
        ),
        Some(false) => "none: UNAUTHENTICATED cluster".into(),
        None => "-".into(),
    };
    let _ = writeln!(out, "auth         {auth}");
    let _ = writeln!(out, "uptime       {}", ms_text(&get("uptime_ms")));
    out
}
