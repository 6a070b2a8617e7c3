//! The JSON wire: a versioned envelope around the model's [`Msg`], and the status request/reply.
//!
//! Every frame is one JSON object (see `node/PROTOCOL.md`):
//!
//! * protocol message: `{"v":2,"from":5003,"from_endpoint":"tcp://127.0.0.1:5003",
//!   "peers":{"5001":"tcp://127.0.0.1:5001"},"msg":{"type":"election","tag":915544234889576449}}`
//! * status request: `{"v":2,"request":"status","nonce":7}`, answered by
//!   `{"v":2,"reply":"status","nonce":7,"status":{...}}`; with
//!   `"watch":{"role_changes":4,"wait_ms":1000}` the answer waits until the node's role changed
//!   (its `role_changes` count is no longer 4) or `wait_ms` passed.
//!
//! `from_endpoint` and `peers` are transport data (where to reach whom), not protocol: the
//! protocol only ever sees `from` and `msg`. Decoding never panics: every defect is a typed
//! [`DecodeError`] with a short [`reason`](DecodeError::reason) used as a counter key.

use bully_model::{Msg, SendId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stateright::actor::Id;
use std::collections::BTreeMap;

/// The only envelope version this node speaks.
pub const VERSION: u64 = 2;

/// Default limit on one frame's payload, in bytes (`run --max-frame`).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// A protocol message with its sender and the sender's address book.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u64,
    /// The sender's process ID.
    pub from: u64,
    /// Where the sender can be reached (so the receiver can reply without prior configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_endpoint: Option<String>,
    /// The sender's address book: ID → endpoint of the members it knows how to reach.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peers: BTreeMap<u64, String>,
    /// How long the message waited at the sender for the connection before it left, in ms
    /// (absent: it left at once). A receiver that was not yet listening that long ago was not
    /// running when the message was sent, and drops it (`before_start`): a message sent to a
    /// process that is down is lost, as the checked model assumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_ms: Option<u64>,
    /// Which send this is (the sender's start number, step and command): the receiver logs it
    /// with the receipt, so the conformance checker pairs each receipt with exactly one send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<SendId>,
    /// The protocol message, exactly as the model serialises it (`{"type":"election","tag":915544234889576449}`, ...).
    pub msg: Msg,
}

/// The authentication stamp of a protocol message (inside the MAC'd payload, as `"auth"`):
/// who the frame is for, and where it stands in its sender's stream of frames. See
/// [`crate::auth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The sender's incarnation: chosen at process start, larger than every earlier one.
    pub inc: u64,
    /// Per-incarnation sequence number of the frame, from 1, one counter for all receivers.
    pub seq: u64,
    /// The receiver's ID: a frame is valid only at the node it was sent to.
    pub to: u64,
    /// The sender's clock at sending (Unix ms); checked only when a receiver first hears an
    /// incarnation.
    pub ts: u64,
}

/// An envelope with its stamp, as an authenticated sender serialises it.
#[derive(Serialize)]
struct Stamped<'a> {
    #[serde(flatten)]
    env: &'a Envelope,
    auth: &'a Stamp,
}

/// A decoded frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A protocol message, with the address-book entries that were valid.
    Peer(Envelope),
    /// A status request; the reply echoes the nonce.
    Status {
        nonce: Option<u64>,
        watch: Option<Watch>,
    },
}

/// A status request that waits for a change: answer once the node's `role_changes` count
/// differs from `role_changes`, or after `wait` (a launcher or monitor learns of every role
/// change at once without asking many times a second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    pub role_changes: u64,
    pub wait: std::time::Duration,
}

impl Watch {
    /// The longest a watch may wait (a longer `wait_ms` is cut to it).
    pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

    fn parse(v: &Value) -> Result<Watch, DecodeError> {
        let field = |name: &str| {
            v.get(name).and_then(Value::as_u64).ok_or_else(|| {
                DecodeError::Malformed(format!("\"watch\" needs a whole number \"{name}\""))
            })
        };
        Ok(Watch {
            role_changes: field("role_changes")?,
            wait: std::time::Duration::from_millis(field("wait_ms")?).min(Watch::MAX_WAIT),
        })
    }
}

/// Why a frame was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {size} bytes exceeds the {limit}-byte limit")]
    Oversized { size: usize, limit: usize },
    #[error("unexpected framing: {0} ZeroMQ frames after the routing id (expected 1, or an empty delimiter and 1)")]
    Framing(usize),
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("missing version field \"v\"")]
    MissingVersion,
    #[error("unknown version {0} (this node speaks {VERSION})")]
    UnknownVersion(String),
    #[error("missing sender field \"from\"")]
    MissingSender,
    #[error("invalid sender {0} (expected a process ID: an unsigned integer)")]
    InvalidSender(String),
    #[error("sender {0} claims to be this node")]
    SelfSender(u64),
    #[error("invalid sender endpoint {0}")]
    InvalidEndpoint(String),
    #[error("unknown request {0}")]
    UnknownRequest(String),
    #[error("bad message: {0}")]
    BadMessage(String),
    #[error("protocol frame without a MAC (this cluster requires --cluster-key authentication)")]
    Unauthenticated,
    #[error("MAC does not verify (wrong key or altered frame)")]
    BadMac,
    #[error("authenticated frame without a valid \"auth\" stamp: {0}")]
    BadStamp(String),
    #[error("frame is addressed to {to}, not to this node")]
    WrongReceiver { to: u64 },
    #[error("replayed or out-of-date frame from {from}: {why}")]
    Replayed { from: u64, why: &'static str },
    #[error("first frame of incarnation {inc} of {from} is stamped {skew_ms} ms away from this node's clock (limit {limit_ms} ms)")]
    Stale {
        from: u64,
        inc: u64,
        skew_ms: u64,
        limit_ms: u64,
    },
}

impl DecodeError {
    /// Counter key for `status` (`dropped.<reason>`).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Oversized { .. } => "oversized",
            DecodeError::Framing(_) => "framing",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::MissingVersion | DecodeError::UnknownVersion(_) => "unknown_version",
            DecodeError::MissingSender => "missing_sender",
            DecodeError::InvalidSender(_) | DecodeError::SelfSender(_) => "invalid_sender",
            DecodeError::InvalidEndpoint(_) => "invalid_endpoint",
            DecodeError::UnknownRequest(_) => "unknown_request",
            DecodeError::BadMessage(_) => "bad_message",
            DecodeError::Unauthenticated => "unauthenticated",
            DecodeError::BadMac => "bad_mac",
            DecodeError::BadStamp(_) => "bad_stamp",
            DecodeError::WrongReceiver { .. } => "wrong_receiver",
            DecodeError::Replayed { .. } => "replayed",
            DecodeError::Stale { .. } => "stale",
        }
    }
}

/// Shortens untrusted text for error messages and logs.
pub(crate) fn clip(s: impl std::fmt::Display) -> String {
    let s = s.to_string();
    if s.chars().count() <= 80 {
        s
    } else {
        let mut t: String = s.chars().take(77).collect();
        t.push_str("...");
        t
    }
}

/// Decodes one payload. `me` is this node's ID (a frame claiming to come from it is rejected).
/// The `"auth"` stamp, if any, is ignored (see [`decode_stamped`]).
pub fn decode(payload: &[u8], me: u64, max_frame: usize) -> Result<Frame, DecodeError> {
    decode_stamped(payload, me, max_frame).map(|(f, _)| f)
}

/// Like [`decode`], and also returns the `"auth"` stamp of a protocol message: `None` without
/// one, `Some(Err(why))` when it is malformed.
pub fn decode_stamped(
    payload: &[u8],
    me: u64,
    max_frame: usize,
) -> Result<(Frame, Option<Result<Stamp, String>>), DecodeError> {
    if payload.len() > max_frame {
        return Err(DecodeError::Oversized {
            size: payload.len(),
            limit: max_frame,
        });
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| DecodeError::Malformed(clip(e)))?;
    let Value::Object(mut obj) = value else {
        return Err(DecodeError::Malformed("not a JSON object".into()));
    };
    match obj.get("v") {
        None => return Err(DecodeError::MissingVersion),
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => return Err(DecodeError::UnknownVersion(clip(v))),
    }
    if let Some(request) = obj.get("request") {
        return match request.as_str() {
            Some("status") => Ok((
                Frame::Status {
                    nonce: obj.get("nonce").and_then(Value::as_u64),
                    watch: obj.get("watch").map(Watch::parse).transpose()?,
                },
                None,
            )),
            _ => Err(DecodeError::UnknownRequest(clip(request))),
        };
    }
    let from = sender(&obj, me)?;
    let from_endpoint = match obj.remove("from_endpoint") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if valid_connect_endpoint(&e) => Some(e),
        Some(other) => return Err(DecodeError::InvalidEndpoint(clip(other))),
    };
    let peers = advisory_book(obj.remove("peers"));
    let queued_ms = match obj.remove("queued_ms") {
        None | Some(Value::Null) => None,
        Some(q) => Some(q.as_u64().ok_or_else(|| {
            DecodeError::BadMessage(format!("\"queued_ms\" is not a whole number: {}", clip(q)))
        })?),
    };
    let sent = sent_of(obj.remove("sent"))?;
    let msg = obj
        .remove("msg")
        .ok_or_else(|| DecodeError::BadMessage("missing field \"msg\"".into()))?;
    let msg: Msg = serde_json::from_value(msg).map_err(|e| DecodeError::BadMessage(clip(e)))?;
    let stamp = obj
        .remove("auth")
        .map(|a| serde_json::from_value::<Stamp>(a).map_err(clip));
    Ok((
        Frame::Peer(Envelope {
            v: VERSION,
            from,
            from_endpoint,
            peers,
            queued_ms,
            sent,
            msg,
        }),
        stamp,
    ))
}

/// The envelope's `sent` field, if any.
fn sent_of(field: Option<Value>) -> Result<Option<SendId>, DecodeError> {
    match field {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v).map(Some).map_err(|e| {
            DecodeError::BadMessage(format!("\"sent\" is not a send identity: {}", clip(e)))
        }),
    }
}

/// The `"from"` of a protocol message: a process ID, and not this node's (`me`).
fn sender(obj: &serde_json::Map<String, Value>, me: u64) -> Result<u64, DecodeError> {
    let from = match obj.get("from") {
        None | Some(Value::Null) => return Err(DecodeError::MissingSender),
        Some(f) => f
            .as_u64()
            .filter(|&id| usize::try_from(id).is_ok())
            .ok_or_else(|| DecodeError::InvalidSender(clip(f)))?,
    };
    if from == me {
        return Err(DecodeError::SelfSender(from));
    }
    Ok(from)
}

/// The `"peers"` address book of an envelope. It is advisory: entries that do not parse are
/// skipped, not fatal.
fn advisory_book(book: Option<Value>) -> BTreeMap<u64, String> {
    let Some(Value::Object(book)) = book else {
        return BTreeMap::new();
    };
    book.into_iter()
        .filter_map(|(k, v)| match (k.parse::<u64>(), v) {
            (Ok(id), Value::String(e))
                if valid_connect_endpoint(&e) && usize::try_from(id).is_ok() =>
            {
                Some((id, e))
            }
            _ => None,
        })
        .collect()
}

/// Encodes a protocol envelope.
pub fn encode(env: &Envelope) -> Vec<u8> {
    serde_json::to_vec(env).expect("an envelope always serialises")
}

/// Encodes a protocol envelope with its authentication stamp (the payload that gets a MAC).
pub fn encode_stamped(env: &Envelope, stamp: &Stamp) -> Vec<u8> {
    serde_json::to_vec(&Stamped { env, auth: stamp }).expect("an envelope always serialises")
}

/// The status request frame; with `watch`, the reply waits for a role change (see [`Watch`]).
pub fn status_request(nonce: u64, watch: Option<Watch>) -> Vec<u8> {
    let mut request = serde_json::json!({"v": VERSION, "request": "status", "nonce": nonce});
    if let Some(w) = watch {
        request["watch"] = serde_json::json!({
            "role_changes": w.role_changes,
            "wait_ms": w.wait.as_millis() as u64,
        });
    }
    serde_json::to_vec(&request).expect("static JSON")
}

/// The status reply frame.
pub fn status_reply(nonce: Option<u64>, status: &Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "v": VERSION, "reply": "status", "nonce": nonce, "status": status
    }))
    .expect("JSON value")
}

/// The reply a REQ-socket client gets for a protocol frame (REQ must receive exactly one reply
/// per request, or it wedges): `{"v":2,"reply":"accepted"}` or `{"v":2,"reply":"error",...}`.
pub fn req_ack(error: Option<&DecodeError>) -> Vec<u8> {
    let v = match error {
        None => serde_json::json!({"v": VERSION, "reply": "accepted"}),
        Some(e) => serde_json::json!({
            "v": VERSION, "reply": "error", "reason": e.reason(), "error": e.to_string()
        }),
    };
    serde_json::to_vec(&v).expect("JSON value")
}

/// Whether `e` is an endpoint a peer can connect to: `tcp://HOST:PORT` (HOST not `*`),
/// `ipc://PATH` or `inproc://NAME`.
pub fn valid_connect_endpoint(e: &str) -> bool {
    valid_endpoint(e, false)
}

/// Whether `e` can be bound: like [`valid_connect_endpoint`], and `tcp://*:PORT` too.
pub fn valid_bind_endpoint(e: &str) -> bool {
    valid_endpoint(e, true)
}

fn valid_endpoint(e: &str, bind: bool) -> bool {
    if e.len() > 256 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if let Some(rest) = e.strip_prefix("tcp://") {
        let Some((host, port)) = rest.rsplit_once(':') else {
            return false;
        };
        let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0 || bind);
        let host_ok = !host.is_empty() && (bind || host != "*");
        return port_ok && host_ok;
    }
    if let Some(rest) = e
        .strip_prefix("ipc://")
        .or_else(|| e.strip_prefix("inproc://"))
    {
        return !rest.is_empty();
    }
    false
}

/// The exercise's convention: process ID = TCP port on localhost.
pub fn localhost_endpoint(id: u64) -> Option<String> {
    u16::try_from(id)
        .ok()
        .filter(|&p| p != 0)
        .map(|p| format!("tcp://127.0.0.1:{p}"))
}

/// `Id` ↔ the `u64` on the wire.
/// Milliseconds since the Unix epoch (authentication stamps, status times; 0 if the clock is
/// before 1970).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn id(n: u64) -> Id {
    Id::from(n as usize)
}

pub fn num(id: Id) -> u64 {
    usize::from(id) as u64
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bully_model::{Epoch, Members, Tag};

    fn env(msg: Msg) -> Envelope {
        Envelope {
            v: crate::wire::VERSION,
            from: 5003,
            from_endpoint: Some("tcp://127.0.0.1:5003".into()),
            peers: [(5001, "tcp://127.0.0.1:5001".to_string())].into(),
            queued_ms: None,
            sent: None,
            msg,
        }
    }

    /// One message of every kind (and both forms of a heartbeat reply), for codec tests.
    pub(crate) fn every_kind_of_message() -> Vec<Msg> {
        let e = Epoch {
            round: 3,
            leader: id(5005),
        };
        let m = Members::new([id(5001), id(5005)]);
        vec![
            Msg::Election { tag: Tag::first(2) },
            Msg::Answer {
                tag: Tag::first(2),
                members: m.clone(),
            },
            Msg::Halt { epoch: e },
            Msg::HaltAck {
                epoch: e,
                members: m.clone(),
            },
            Msg::HaltNack { promised: e },
            Msg::Coordinator {
                epoch: e,
                members: m.clone(),
            },
            Msg::Heartbeat { tag: Tag::first(2) },
            Msg::HeartbeatAck {
                tag: Tag::first(2),
                coordinator: Some(e),
                promised: e,
                members: m.clone(),
            },
            Msg::HeartbeatAck {
                tag: Tag::default(),
                coordinator: None,
                promised: Epoch::none(),
                members: m,
            },
            Msg::Resign { epoch: e },
        ]
    }

    #[test]
    fn round_trip_every_kind() {
        for msg in every_kind_of_message() {
            let bytes = encode(&env(msg.clone()));
            assert_eq!(
                decode(&bytes, 1, DEFAULT_MAX_FRAME),
                Ok(Frame::Peer(env(msg)))
            );
        }
    }

    #[test]
    fn documented_example_decodes() {
        let raw = br#"{"v":2,"from":5003,"from_endpoint":"tcp://127.0.0.1:5003","msg":{"type":"election","tag":4294967297}}"#;
        let Ok(Frame::Peer(e)) = decode(raw, 5005, DEFAULT_MAX_FRAME) else {
            panic!()
        };
        assert_eq!(
            e.msg,
            Msg::Election {
                tag: Tag(4294967297)
            }
        );
        let raw = br#"{"v":2,"from":5005,"msg":{"type":"halt","epoch":{"round":2,"leader":5005}}}"#;
        assert!(decode(raw, 5003, DEFAULT_MAX_FRAME).is_ok());
    }

    #[test]
    fn defects_are_typed() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "malformed"),
            (b"[1,2]", "malformed"),
            (
                br#"{"from":1,"msg":{"type":"election","tag":4294967297}}"#,
                "unknown_version",
            ),
            // Version 1 (before election tags).
            (
                br#"{"v":1,"from":1,"msg":{"type":"election"}}"#,
                "unknown_version",
            ),
            (br#"{"v":2,"from":1,"msg":{"type":"election"}}"#, "bad_message"),
            (br#"{"v":2,"msg":{"type":"election","tag":4294967297}}"#, "missing_sender"),
            (
                br#"{"v":2,"from":"x","msg":{"type":"election","tag":4294967297}}"#,
                "invalid_sender",
            ),
            (
                br#"{"v":2,"from":-4,"msg":{"type":"election","tag":4294967297}}"#,
                "invalid_sender",
            ),
            (
                br#"{"v":2,"from":9,"msg":{"type":"election","tag":4294967297}}"#,
                "invalid_sender",
            ),
            (
                br#"{"v":2,"from":1,"from_endpoint":"http://x","msg":{"type":"election","tag":4294967297}}"#,
                "invalid_endpoint",
            ),
            (br#"{"v":2,"from":1}"#, "bad_message"),
            (br#"{"v":2,"from":1,"msg":{"type":"bogus"}}"#, "bad_message"),
            (br#"{"v":2,"from":1,"msg":{"type":"halt"}}"#, "bad_message"),
            (br#"{"v":2,"request":"reboot"}"#, "unknown_request"),
        ];
        for (raw, reason) in cases {
            let err = decode(raw, 9, DEFAULT_MAX_FRAME).unwrap_err();
            assert_eq!(err.reason(), *reason, "{}", String::from_utf8_lossy(raw));
        }
        let big = vec![b' '; 100];
        assert_eq!(decode(&big, 9, 99).unwrap_err().reason(), "oversized");
    }

    #[test]
    fn bad_book_entries_are_skipped() {
        let raw = br#"{"v":2,"from":1,"peers":{"2":"tcp://h:2","x":"tcp://h:3","4":5,"6":"tcp://*:6"},"msg":{"type":"heartbeat","tag":4294967298}}"#;
        let Ok(Frame::Peer(e)) = decode(raw, 9, DEFAULT_MAX_FRAME) else {
            panic!()
        };
        assert_eq!(e.peers, [(2, "tcp://h:2".to_string())].into());
    }

    #[test]
    fn status_request_decodes() {
        assert_eq!(
            decode(&status_request(7, None), 1, DEFAULT_MAX_FRAME),
            Ok(Frame::Status {
                nonce: Some(7),
                watch: None
            })
        );
        let watch = Watch {
            role_changes: 4,
            wait: std::time::Duration::from_millis(1500),
        };
        assert_eq!(
            decode(&status_request(8, Some(watch)), 1, DEFAULT_MAX_FRAME),
            Ok(Frame::Status {
                nonce: Some(8),
                watch: Some(watch)
            })
        );
        // A wait beyond the limit is cut to it; a watch without its count is malformed.
        let long = br#"{"v":2,"request":"status","watch":{"role_changes":1,"wait_ms":99999999}}"#;
        assert!(matches!(
            decode(long, 1, DEFAULT_MAX_FRAME),
            Ok(Frame::Status { watch: Some(w), .. }) if w.wait == Watch::MAX_WAIT
        ));
        let bad = br#"{"v":2,"request":"status","watch":{"wait_ms":10}}"#;
        assert_eq!(
            decode(bad, 1, DEFAULT_MAX_FRAME).unwrap_err().reason(),
            "malformed"
        );
    }

    #[test]
    fn endpoints() {
        assert!(valid_connect_endpoint("tcp://127.0.0.1:5001"));
        assert!(valid_connect_endpoint("tcp://[::1]:5001"));
        assert!(valid_connect_endpoint("ipc:///tmp/x"));
        assert!(!valid_connect_endpoint("tcp://*:5001"));
        assert!(valid_bind_endpoint("tcp://*:5001"));
        assert!(!valid_connect_endpoint("tcp://127.0.0.1"));
        assert!(!valid_connect_endpoint("tcp://127.0.0.1:99999"));
        assert!(!valid_connect_endpoint("udp://x:1"));
        assert_eq!(
            localhost_endpoint(5001).as_deref(),
            Some("tcp://127.0.0.1:5001")
        );
        assert_eq!(localhost_endpoint(70000), None);
    }
}
