//! The exercise's frames: one pickled Python dict each, decoded safely.
//!
//! `pickle.loads` on network input runs whatever code the sender chose. Here a frame is first
//! *scanned*: every opcode is checked against an allowlist of pure-data opcodes before
//! `serde-pickle` (which builds data only) reads it. Refused, each with its own counter key:
//!
//! * opcodes that name or call Python objects (`GLOBAL`, `STACK_GLOBAL`, `REDUCE`, `BUILD`,
//!   `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, `EXT1/2/4`, `PERSID`, `BINPERSID`, out-of-band
//!   buffers): `code`;
//! * memo reads (`GET`, `BINGET`, `LONG_BINGET`): `shared_reference` — the exercise's messages
//!   never repeat an object, and shared references are how a small pickle expands into a huge
//!   structure;
//! * more than [`MAX_CONTAINERS`] containers (bounds nesting, hence recursion): `too_complex`;
//! * no `PROTO` opcode or a protocol outside 2–5: `unsupported_protocol`;
//! * truncated data, unknown opcodes, bytes after `STOP`: `malformed`.
//!
//! Then the dict must be one of the exercise's five messages with its fields:
//! `{'type': 'election', 'origin': int}`, `{'type': 'election_ok', 'origin': int}`,
//! `{'type': 'election_won', 'winner': int}`, `{'type': 'heartbeat', 'origin': int}`,
//! `{'type': 'ack', 'processes': {int: ...}}`. Unknown keys are ignored (as Python code that
//! reads only the keys it knows does), except `bully`, the extension Rust nodes add (see
//! [`Ext`]).
//!
//! Frames are encoded with pickle protocol 3, which every Python 3 `pickle.loads` reads.

use crate::wire::clip;
use bully_model::{Msg, SendId};
use serde_pickle::{DeOptions, HashableValue, SerOptions, Value};
use std::collections::BTreeMap;

/// Most containers (lists, dicts, tuples, sets, marks) in one frame.
pub const MAX_CONTAINERS: usize = 256;

/// Default limit on one frame (the exercise's dicts are tens of bytes; a member list of a few
/// hundred ports is a few kilobytes).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// The key Rust nodes add to every frame. Python code ignores keys it does not read.
pub const EXT_KEY: &str = "bully";
/// The key a Rust node adds to a request that waited for its connection: how long, in ms
/// (the native wire's `queued_ms`, node/PROTOCOL.md).
pub const QUEUED_KEY: &str = "bully_queued_ms";
/// The key a Rust node adds to a frame that carries a model message: which send it is, as
/// `[start, seq, command]` (the native wire's `sent`, node/PROTOCOL.md).
pub const SENT_KEY: &str = "bully_sent";

/// The exercise's message types. Nothing else is ever sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Election,
    ElectionOk,
    ElectionWon,
    Heartbeat,
    Ack,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Election => "election",
            Kind::ElectionOk => "election_ok",
            Kind::ElectionWon => "election_won",
            Kind::Heartbeat => "heartbeat",
            Kind::Ack => "ack",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "election" => Kind::Election,
            "election_ok" => Kind::ElectionOk,
            "election_won" => Kind::ElectionWon,
            "heartbeat" => Kind::Heartbeat,
            "ack" => Kind::Ack,
            _ => return None,
        })
    }

    /// Whether this type is a request (sent on a REQ socket) rather than a reply.
    pub fn is_request(self) -> bool {
        matches!(self, Kind::Election | Kind::ElectionWon | Kind::Heartbeat)
    }
}

/// What rides in the `bully` key.
#[derive(Clone, Debug, PartialEq)]
pub enum Ext {
    /// No `bully` key: a plain exercise peer (a Python node).
    Plain,
    /// `'bully': None`: a Rust node whose protocol had nothing to say (a neutral reply).
    Empty,
    /// `'bully': {...}`: the model's message, exactly (its serde form as a pickled dict).
    Msg(Msg),
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub kind: Kind,
    /// The sender (`origin` of election, election_ok and heartbeat; `winner` of election_won).
    /// `None` for `ack`, which names nobody.
    pub sender: Option<u64>,
    /// The keys of `processes` (ack only).
    pub processes: Vec<u64>,
    pub ext: Ext,
    /// How long a request waited at its sender for the connection ([`QUEUED_KEY`]).
    pub queued_ms: Option<u64>,
    /// Which send the carried model message is ([`SENT_KEY`]).
    pub sent: Option<SendId>,
}

impl Frame {
    pub fn new(kind: Kind, sender: Option<u64>) -> Frame {
        Frame {
            kind,
            sender,
            processes: Vec::new(),
            ext: Ext::Plain,
            queued_ms: None,
            sent: None,
        }
    }
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {size} bytes exceeds the {limit}-byte limit")]
    Oversized { size: usize, limit: usize },
    #[error("unexpected framing: {0} ZeroMQ frames (expected 1)")]
    Framing(usize),
    #[error("not a pickle of protocol 2-5 ({0})")]
    UnsupportedProtocol(String),
    #[error("pickle refers to Python code (opcode {0}): refused, nothing is executed")]
    Code(&'static str),
    #[error("pickle uses a shared reference (memo {0}): refused")]
    SharedReference(&'static str),
    #[error("pickle has more than {MAX_CONTAINERS} containers")]
    TooComplex,
    #[error("malformed pickle: {0}")]
    Malformed(String),
    #[error("not a dict")]
    NotADict,
    #[error("unknown message type {0}")]
    UnknownType(String),
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    #[error("bad field {0:?}: {1}")]
    BadField(&'static str, String),
    #[error("bad extension: {0}")]
    BadExtension(String),
}

impl DecodeError {
    /// Counter key for `status` (`dropped.<reason>`).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Oversized { .. } => "oversized",
            DecodeError::Framing(_) => "framing",
            DecodeError::UnsupportedProtocol(_) => "unsupported_protocol",
            DecodeError::Code(_) => "code",
            DecodeError::SharedReference(_) => "shared_reference",
            DecodeError::TooComplex => "too_complex",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::NotADict => "not_a_dict",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::MissingField(_) | DecodeError::BadField(..) => "bad_field",
            DecodeError::BadExtension(_) => "bad_extension",
        }
    }
}

/// How an opcode's argument is laid out.
enum Arg {
    None,
    Fixed(usize),
    /// A length prefix of this many bytes (little endian), then that many bytes.
    Counted(usize),
    /// Text up to a newline.
    Line,
}

/// What the scanner does with one opcode.
enum Op {
    Stop,
    /// Opens a container or pushes a mark (counted against [`MAX_CONTAINERS`]).
    Container,
    /// Anything else of pure data, with its argument's layout.
    Data(Arg),
}

/// Walks the opcode stream: only pure-data opcodes, lengths inside the frame, one `STOP` at
/// the very end. This runs before any decoder sees the bytes.
pub fn scan(p: &[u8]) -> Result<(), DecodeError> {
    match p {
        [0x80, v, ..] if (2..=5).contains(v) => {}
        [0x80, v, ..] => return Err(DecodeError::UnsupportedProtocol(format!("protocol {v}"))),
        _ => return Err(DecodeError::UnsupportedProtocol("no PROTO opcode".into())),
    }
    let mut i = 0;
    let mut containers = 0usize;
    while i < p.len() {
        let op = p[i];
        i += 1;
        let arg = match classify(op)? {
            Op::Stop if i == p.len() => return Ok(()),
            Op::Stop => {
                let after = p.len() - i;
                return Err(DecodeError::Malformed(format!("{after} bytes after STOP")));
            }
            Op::Container => {
                containers += 1;
                if containers > MAX_CONTAINERS {
                    return Err(DecodeError::TooComplex);
                }
                Arg::None
            }
            Op::Data(arg) => arg,
        };
        i = skip_arg(p, i, arg)?;
    }
    Err(DecodeError::Malformed("no STOP opcode".into()))
}

/// One opcode: refused (code, shared references, unknown) or what to do with it.
fn classify(op: u8) -> Result<Op, DecodeError> {
    let arg = match op {
        b'.' => return Ok(Op::Stop),
        b'c' => return Err(DecodeError::Code("GLOBAL")),
        0x93 => return Err(DecodeError::Code("STACK_GLOBAL")),
        b'R' => return Err(DecodeError::Code("REDUCE")),
        b'b' => return Err(DecodeError::Code("BUILD")),
        b'i' => return Err(DecodeError::Code("INST")),
        b'o' => return Err(DecodeError::Code("OBJ")),
        0x81 => return Err(DecodeError::Code("NEWOBJ")),
        0x92 => return Err(DecodeError::Code("NEWOBJ_EX")),
        0x82..=0x84 => return Err(DecodeError::Code("EXT")),
        b'P' | b'Q' => return Err(DecodeError::Code("PERSID")),
        0x97 | 0x98 => return Err(DecodeError::Code("out-of-band buffer")),
        b'g' => return Err(DecodeError::SharedReference("GET")),
        b'h' => return Err(DecodeError::SharedReference("BINGET")),
        b'j' => return Err(DecodeError::SharedReference("LONG_BINGET")),
        // Containers and marks.
        b'(' | b']' | b'}' | b')' | 0x8f => return Ok(Op::Container),
        // Stack operations and constants without arguments.
        b'0' | b'1' | b'2' | b'N' | b'a' | b'd' | b'e' | b'l' | b's' | b't' | b'u' | 0x85
        | 0x86 | 0x87 | 0x88 | 0x89 | 0x90 | 0x91 | 0x94 => Arg::None,
        0x80 => Arg::Fixed(1), // PROTO (again: harmless)
        b'K' => Arg::Fixed(1),
        b'M' => Arg::Fixed(2),
        b'J' => Arg::Fixed(4),
        b'G' => Arg::Fixed(8),
        0x95 => Arg::Fixed(8), // FRAME
        b'q' => Arg::Fixed(1), // BINPUT
        b'r' => Arg::Fixed(4), // LONG_BINPUT
        b'F' | b'I' | b'L' | b'S' | b'V' | b'p' => Arg::Line,
        b'U' | b'C' | 0x8a | 0x8c => Arg::Counted(1),
        b'T' | b'X' | b'B' | 0x8b => Arg::Counted(4),
        0x8d | 0x8e | 0x96 => Arg::Counted(8),
        other => {
            return Err(DecodeError::Malformed(format!(
                "unknown opcode 0x{other:02x}"
            )))
        }
    };
    Ok(Op::Data(arg))
}

/// Where the next opcode starts, after the argument `arg` that starts at `i` (which must lie
/// inside the frame).
fn skip_arg(p: &[u8], i: usize, arg: Arg) -> Result<usize, DecodeError> {
    let truncated = || DecodeError::Malformed("truncated".into());
    let left = p.len() - i;
    match arg {
        Arg::None => Ok(i),
        Arg::Fixed(n) if left < n => Err(truncated()),
        Arg::Fixed(n) => Ok(i + n),
        Arg::Counted(n) if left < n => Err(truncated()),
        Arg::Counted(n) => {
            let len = p[i..i + n]
                .iter()
                .enumerate()
                .fold(0u64, |len, (k, b)| len | u64::from(*b) << (8 * k));
            if len > (left - n) as u64 {
                return Err(truncated());
            }
            Ok(i + n + len as usize)
        }
        Arg::Line => match p[i..].iter().position(|&b| b == b'\n') {
            Some(at) => Ok(i + at + 1),
            None => Err(truncated()),
        },
    }
}

fn as_id(v: &Value, field: &'static str) -> Result<u64, DecodeError> {
    match v {
        Value::I64(n) if (1..=i64::from(u16::MAX)).contains(n) => Ok(*n as u64),
        other => Err(DecodeError::BadField(
            field,
            format!("{} (expected a port, 1-65535)", clip(format!("{other:?}"))),
        )),
    }
}

fn key_id(k: &HashableValue) -> Result<u64, DecodeError> {
    match k {
        HashableValue::I64(n) if (1..=i64::from(u16::MAX)).contains(n) => Ok(*n as u64),
        other => Err(DecodeError::BadField(
            "processes",
            format!(
                "key {} (expected a port, 1-65535)",
                clip(format!("{other:?}"))
            ),
        )),
    }
}

/// Decodes one payload (scanned first: see the module documentation).
pub fn decode(payload: &[u8], max_frame: usize) -> Result<Frame, DecodeError> {
    if payload.len() > max_frame {
        return Err(DecodeError::Oversized {
            size: payload.len(),
            limit: max_frame,
        });
    }
    scan(payload)?;
    let value = serde_pickle::value_from_slice(payload, DeOptions::new())
        .map_err(|e| DecodeError::Malformed(clip(e)))?;
    let Value::Dict(mut dict) = value else {
        return Err(DecodeError::NotADict);
    };
    let mut take = |k: &str| dict.remove(&HashableValue::String(k.into()));
    let kind = match take("type") {
        None => return Err(DecodeError::MissingField("type")),
        Some(Value::String(s)) => {
            Kind::parse(&s).ok_or_else(|| DecodeError::UnknownType(clip(format!("{s:?}"))))?
        }
        Some(other) => return Err(DecodeError::UnknownType(clip(format!("{other:?}")))),
    };
    let mut frame = Frame::new(kind, None);
    let field = match kind {
        Kind::Election | Kind::ElectionOk | Kind::Heartbeat => Some("origin"),
        Kind::ElectionWon => Some("winner"),
        Kind::Ack => None,
    };
    if let Some(field) = field {
        let v = take(field).ok_or(DecodeError::MissingField(field))?;
        frame.sender = Some(as_id(&v, field)?);
    }
    if kind == Kind::Ack {
        match take("processes") {
            None => return Err(DecodeError::MissingField("processes")),
            Some(Value::Dict(d)) => {
                frame.processes = d.keys().map(key_id).collect::<Result<_, _>>()?;
            }
            Some(other) => {
                return Err(DecodeError::BadField(
                    "processes",
                    format!("{} (expected a dict)", clip(format!("{other:?}"))),
                ))
            }
        }
    }
    frame.queued_ms = match take(QUEUED_KEY) {
        None => None,
        Some(Value::I64(ms)) if ms >= 0 => Some(ms as u64),
        Some(other) => {
            return Err(DecodeError::BadField(
                QUEUED_KEY,
                format!("{} (expected an int >= 0)", clip(format!("{other:?}"))),
            ))
        }
    };
    frame.sent = match take(SENT_KEY) {
        None => None,
        Some(Value::List(v)) => match v[..] {
            [Value::I64(inc), Value::I64(seq), Value::I64(cmd)]
                if inc >= 0 && seq >= 0 && (0..=i64::from(u32::MAX)).contains(&cmd) =>
            {
                Some(SendId {
                    inc: inc as u64,
                    seq: seq as u64,
                    cmd: cmd as u32,
                })
            }
            _ => return Err(bad_sent(&Value::List(v))),
        },
        Some(other) => return Err(bad_sent(&other)),
    };
    frame.ext = match take(EXT_KEY) {
        None => Ext::Plain,
        Some(Value::None) => Ext::Empty,
        Some(v) => {
            Ext::Msg(serde_pickle::from_value(v).map_err(|e| DecodeError::BadExtension(clip(e)))?)
        }
    };
    Ok(frame)
}

fn bad_sent(v: &Value) -> DecodeError {
    DecodeError::BadField(
        SENT_KEY,
        format!(
            "{} (expected [start, seq, command], ints >= 0)",
            clip(format!("{v:?}"))
        ),
    )
}

fn s(k: &str) -> HashableValue {
    HashableValue::String(k.into())
}

/// Encodes a frame as a pickled dict (protocol 3).
pub fn encode(f: &Frame) -> Vec<u8> {
    let mut d: BTreeMap<HashableValue, Value> = BTreeMap::new();
    d.insert(s("type"), Value::String(f.kind.name().into()));
    match f.kind {
        Kind::Election | Kind::ElectionOk | Kind::Heartbeat => {
            d.insert(s("origin"), Value::I64(f.sender.unwrap_or(0) as i64));
        }
        Kind::ElectionWon => {
            d.insert(s("winner"), Value::I64(f.sender.unwrap_or(0) as i64));
        }
        Kind::Ack => {
            let procs = f
                .processes
                .iter()
                .map(|&p| (HashableValue::I64(p as i64), Value::Bool(true)))
                .collect();
            d.insert(s("processes"), Value::Dict(procs));
        }
    }
    if let Some(ms) = f.queued_ms {
        d.insert(s(QUEUED_KEY), Value::I64(ms.min(i64::MAX as u64) as i64));
    }
    if let Some(id) = f.sent {
        let int = |n: u64| Value::I64(n.min(i64::MAX as u64) as i64);
        d.insert(
            s(SENT_KEY),
            Value::List(vec![int(id.inc), int(id.seq), int(u64::from(id.cmd))]),
        );
    }
    match &f.ext {
        Ext::Plain => {}
        Ext::Empty => {
            d.insert(s(EXT_KEY), Value::None);
        }
        Ext::Msg(m) => {
            let v = serde_pickle::to_value(m).expect("a protocol message always converts");
            d.insert(s(EXT_KEY), v);
        }
    }
    serde_pickle::value_to_vec(&Value::Dict(d), SerOptions::new())
        .expect("a dict of plain values always pickles")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_message_round_trips_in_the_extension() {
        for msg in crate::wire::tests::every_kind_of_message() {
            let f = Frame {
                kind: Kind::Heartbeat,
                sender: Some(5003),
                processes: vec![],
                ext: Ext::Msg(msg),
                queued_ms: None,
                sent: None,
            };
            assert_eq!(decode(&encode(&f), DEFAULT_MAX_FRAME), Ok(f.clone()));
            let waited = Frame {
                queued_ms: Some(1234),
                sent: Some(SendId {
                    inc: 1 << 41,
                    seq: 17,
                    cmd: 2,
                }),
                ..f
            };
            assert_eq!(decode(&encode(&waited), DEFAULT_MAX_FRAME), Ok(waited));
        }
        let ack = Frame {
            kind: Kind::Ack,
            sender: None,
            processes: vec![5001, 5002],
            ext: Ext::Empty,
            queued_ms: None,
            sent: None,
        };
        assert_eq!(decode(&encode(&ack), DEFAULT_MAX_FRAME), Ok(ack));
    }

    // Fixtures written by Python 3.11's pickle.dumps(..., protocol=N).
    /// `{'type': 'election', 'origin': 5001}`, protocol 2.
    const ELECTION_P2: &[u8] = b"\x80\x02}q\x00(X\x04\x00\x00\x00typeq\x01X\x08\x00\x00\x00electionq\x02X\x06\x00\x00\x00originq\x03M\x89\x13u.";
    /// `{'type': 'heartbeat', 'origin': 5001}`, protocol 4.
    const HEARTBEAT_P4: &[u8] = b"\x80\x04\x95$\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04type\x94\x8c\theartbeat\x94\x8c\x06origin\x94M\x89\x13u.";
    /// `{'type': 'ack', 'processes': {5001: True, 5002: True}}`, protocol 5.
    const ACK_P5: &[u8] = b"\x80\x05\x95*\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04type\x94\x8c\x03ack\x94\x8c\tprocesses\x94}\x94(M\x89\x13\x88M\x8a\x13\x88uu.";
    /// `{'type': 'election_won', 'winner': 5003}`, protocol 3.
    const WON_P3: &[u8] = b"\x80\x03}q\x00(X\x04\x00\x00\x00typeq\x01X\x0c\x00\x00\x00election_wonq\x02X\x06\x00\x00\x00winnerq\x03M\x8b\x13u.";
    /// `pickle.dumps(Evil(), protocol=4)` where `Evil.__reduce__` returns `(os.system, ('true',))`.
    const EVIL_P4: &[u8] = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.";

    #[test]
    fn python_fixtures_of_protocols_2_to_5_decode() {
        let f = decode(ELECTION_P2, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(
            (f.kind, f.sender, &f.ext),
            (Kind::Election, Some(5001), &Ext::Plain)
        );
        let f = decode(HEARTBEAT_P4, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!((f.kind, f.sender), (Kind::Heartbeat, Some(5001)));
        let f = decode(ACK_P5, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!((f.kind, f.processes), (Kind::Ack, vec![5001, 5002]));
        let f = decode(WON_P3, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!((f.kind, f.sender), (Kind::ElectionWon, Some(5003)));
    }

    #[test]
    fn code_and_defects_are_refused_with_a_reason() {
        let cases: &[(&[u8], &str)] = &[
            (EVIL_P4, "code"),
            // protocol 0: cos\nsystem\n(S'true'\ntR.
            (b"cos\nsystem\n(S'true'\ntR.", "unsupported_protocol"),
            (b"\x80\x02cos\nsystem\n(S'true'\ntR.", "code"),
            (b"\x80\x06}.", "unsupported_protocol"),
            (b"", "unsupported_protocol"),
            (b"not a pickle", "unsupported_protocol"),
            (b"\x80\x04]\x94h\x00.", "shared_reference"),
            (b"\x80\x04}", "malformed"),
            (b"\x80\x04X\xff\xff\xff\xff.", "malformed"),
            (b"\x80\x04\xff.", "malformed"),
            (b"\x80\x04}.junk", "malformed"),
            (b"\x80\x04].", "not_a_dict"),
            (b"\x80\x04}.", "bad_field"),
            (b"\x80\x04}(\x8c\x04type\x8c\x04evilu.", "unknown_type"),
            (b"\x80\x04}(\x8c\x04type\x8c\x08election\x8c\x06origin\x8c\x01xu.", "bad_field"),
            (b"\x80\x04}(\x8c\x04type\x8c\x08election\x8c\x06originJ\xff\xff\xff\xffu.", "bad_field"),
            (b"\x80\x04}(\x8c\x04type\x8c\x03ack\x8c\tprocesses]u.", "bad_field"),
            (b"\x80\x04}(\x8c\x04type\x8c\theartbeat\x8c\x06originM\x89\x13\x8c\x05bully\x8c\x01xu.", "bad_extension"),
        ];
        for (raw, reason) in cases {
            let err = decode(raw, DEFAULT_MAX_FRAME).unwrap_err();
            assert_eq!(err.reason(), *reason, "{raw:?}: {err}");
        }
        let deep: Vec<u8> = [&b"\x80\x04"[..], &[b']'; MAX_CONTAINERS + 1], b"."].concat();
        assert_eq!(
            decode(&deep, DEFAULT_MAX_FRAME).unwrap_err().reason(),
            "too_complex"
        );
        assert_eq!(decode(ACK_P5, 10).unwrap_err().reason(), "oversized");
    }

    #[test]
    fn every_truncation_of_a_valid_frame_is_an_error_not_a_panic() {
        for fixture in [ELECTION_P2, HEARTBEAT_P4, ACK_P5, WON_P3, EVIL_P4] {
            for n in 0..fixture.len() {
                assert!(decode(&fixture[..n], DEFAULT_MAX_FRAME).is_err());
            }
        }
    }
}
