//! Codec properties of the node's wire (`bully_node::wire`):
//!
//! * every envelope the node can send (any [`Msg`], with any members and epochs, any sender ID,
//!   any valid `from_endpoint` and address book) round-trips through `encode` → `decode`
//!   unchanged;
//! * arbitrary bytes, truncated frames, corrupted frames, frames with fields of the wrong shape
//!   and oversized frames never panic the decoder, and every rejection is a typed
//!   [`DecodeError`] (with one of the documented `reason()` counter keys);
//! * the authenticated path (`bully_node::auth::Authenticator::open`, what a node with
//!   `--cluster-key` runs on every frame; also the `open` cargo-fuzz target in `node/fuzz`):
//!   every sealed envelope opens to itself exactly once, in any delivery order within the replay
//!   window; any altered byte, wrong key, missing MAC or wrong receiver is refused; arbitrary
//!   input never panics it.

use bully_model::{Epoch, Id, Members, Msg, SendId, Tag};
use bully_node::auth::{Authenticator, ClusterKey, MAC_LEN, REPLAY_WINDOW};
use bully_node::wire::{self, DecodeError, Envelope, Frame, DEFAULT_MAX_FRAME, VERSION};
use proptest::prelude::*;
use serde_json::Value;

/// The receiving node's ID in every test (senders are generated different from it).
const ME: u64 = 7;

/// The counter keys `node/PROTOCOL.md` documents.
const REASONS: [&str; 9] = [
    "oversized",
    "framing",
    "malformed",
    "unknown_version",
    "missing_sender",
    "invalid_sender",
    "invalid_endpoint",
    "unknown_request",
    "bad_message",
];

/// The counter keys of the authenticated path (on top of [`REASONS`]).
const AUTH_REASONS: [&str; 6] = [
    "unauthenticated",
    "bad_mac",
    "bad_stamp",
    "wrong_receiver",
    "replayed",
    "stale",
];

const KEY: &[u8] = b"proptest cluster key, 32 bytes!!";
const NOW: u64 = 1_700_000_000_000;

fn authenticator(inc: u64) -> Authenticator {
    Authenticator::new(ClusterKey::from_bytes(KEY).unwrap(), inc)
}

/// Opens one frame and checks the no-panic/typed-error contract.
fn open_checked(rx: &mut Authenticator, parts: &[Vec<u8>], me: u64) -> Result<Frame, DecodeError> {
    let r = rx.open(
        &parts[0],
        parts.get(1).map(|t| &t[..]),
        me,
        DEFAULT_MAX_FRAME,
        NOW,
    );
    if let Err(e) = &r {
        assert!(
            REASONS.contains(&e.reason()) || AUTH_REASONS.contains(&e.reason()),
            "undocumented reason {e:?}"
        );
        assert!(!e.to_string().is_empty());
    }
    r
}

fn id() -> impl Strategy<Value = Id> {
    // Process IDs are `usize` in the model and `u64` on the wire; both are 64 bits here.
    prop_oneof![5000u64..5100, any::<u64>()].prop_map(wire::id)
}

fn epoch() -> impl Strategy<Value = Epoch> {
    (any::<u32>(), id()).prop_map(|(round, leader)| Epoch { round, leader })
}

fn members() -> impl Strategy<Value = Members> {
    prop::collection::vec(id(), 0..12).prop_map(Members::new)
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        any::<u64>().prop_map(|t| Msg::Election { tag: Tag(t) }),
        (any::<u64>(), members()).prop_map(|(t, members)| Msg::Answer {
            tag: Tag(t),
            members
        }),
        epoch().prop_map(|epoch| Msg::Halt { epoch }),
        (epoch(), members()).prop_map(|(epoch, members)| Msg::HaltAck { epoch, members }),
        epoch().prop_map(|promised| Msg::HaltNack { promised }),
        (epoch(), members()).prop_map(|(epoch, members)| Msg::Coordinator { epoch, members }),
        any::<u64>().prop_map(|t| Msg::Heartbeat { tag: Tag(t) }),
        (any::<u64>(), prop::option::of(epoch()), epoch(), members()).prop_map(
            |(t, coordinator, promised, members)| Msg::HeartbeatAck {
                tag: Tag(t),
                coordinator,
                promised,
                members
            }
        ),
        epoch().prop_map(|epoch| Msg::Resign { epoch }),
    ]
}

/// Endpoints a node advertises or keeps in its address book (all pass the connect check).
fn endpoint() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u16..=u16::MAX).prop_map(|p| format!("tcp://127.0.0.1:{p}")),
        ("[a-z0-9][a-z0-9.-]{0,30}", 1u16..=u16::MAX).prop_map(|(h, p)| format!("tcp://{h}:{p}")),
        "[a-zA-Z0-9/_.-]{1,60}".prop_map(|p| format!("ipc://{p}")),
        "[a-zA-Z0-9_.-]{1,30}".prop_map(|n| format!("inproc://{n}")),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<u64>().prop_filter("not the receiver", |&f| f != ME),
        prop::option::of(endpoint()),
        prop::collection::btree_map(any::<u64>(), endpoint(), 0..8),
        prop::option::of(any::<u64>()),
        prop::option::of((any::<u64>(), any::<u64>(), any::<u32>())),
        msg(),
    )
        .prop_map(
            |(from, from_endpoint, peers, queued_ms, sent, msg)| Envelope {
                v: VERSION,
                from,
                from_endpoint,
                peers,
                queued_ms,
                sent: sent.map(|(inc, seq, cmd)| SendId { inc, seq, cmd }),
                msg,
            },
        )
}

/// Decodes and checks the no-panic/typed-error contract; returns the result.
fn decode_checked(bytes: &[u8], limit: usize) -> Result<Frame, DecodeError> {
    let r = wire::decode(bytes, ME, limit);
    if let Err(e) = &r {
        assert!(REASONS.contains(&e.reason()), "undocumented reason {e:?}");
        assert!(!e.to_string().is_empty());
    }
    r
}

/// A JSON value of any shape (to put where a field of one shape is expected).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("election"),
            Just("halt"),
            Just("heartbeat_ack"),
            Just("tcp://x:1"),
            Just("status")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("v".to_string()),
                    Just("from".to_string()),
                    Just("msg".to_string()),
                    Just("type".to_string()),
                    Just("epoch".to_string()),
                    Just("members".to_string()),
                    Just("round".to_string()),
                    Just("leader".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every envelope the node can send decodes to itself.
    #[test]
    fn envelopes_round_trip(env in envelope()) {
        let bytes = wire::encode(&env);
        prop_assert!(bytes.len() <= DEFAULT_MAX_FRAME);
        prop_assert_eq!(decode_checked(&bytes, DEFAULT_MAX_FRAME), Ok(Frame::Peer(env)));
    }

    /// The model's message serialisation alone round-trips too (what the step log records).
    #[test]
    fn messages_round_trip(m in msg()) {
        let json = serde_json::to_string(&m).unwrap();
        prop_assert_eq!(serde_json::from_str::<Msg>(&json).unwrap(), m);
    }

    /// Status requests round-trip (the other frame a node decodes).
    #[test]
    fn status_requests_round_trip(nonce in any::<u64>()) {
        prop_assert_eq!(
            decode_checked(&wire::status_request(nonce, None), DEFAULT_MAX_FRAME),
            Ok(Frame::Status { nonce: Some(nonce), watch: None })
        );
    }

    /// Arbitrary bytes never panic the decoder; a rejection is typed.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_checked(&bytes, DEFAULT_MAX_FRAME);
    }

    /// Every strict prefix of a valid frame is rejected as malformed.
    #[test]
    fn truncated_frames_are_malformed(env in envelope(), cut in any::<prop::sample::Index>()) {
        let bytes = wire::encode(&env);
        let at = cut.index(bytes.len());
        let r = decode_checked(&bytes[..at], DEFAULT_MAX_FRAME);
        prop_assert!(matches!(r, Err(DecodeError::Malformed(_))), "prefix {} of {}: {:?}", at, bytes.len(), r);
    }

    /// A valid frame with one byte changed never panics the decoder.
    #[test]
    fn corrupted_frames_never_panic(env in envelope(), at in any::<prop::sample::Index>(), b in any::<u8>()) {
        let mut bytes = wire::encode(&env);
        let i = at.index(bytes.len());
        bytes[i] = b;
        let _ = decode_checked(&bytes, DEFAULT_MAX_FRAME);
    }

    /// Any frame above the limit is rejected as oversized before it is parsed, whatever it holds.
    #[test]
    fn oversized_frames_are_rejected(
        env in envelope(),
        junk in prop::collection::vec(any::<u8>(), 0..64),
        limit_cut in 1usize..64,
    ) {
        for bytes in [wire::encode(&env), junk] {
            if bytes.is_empty() {
                continue;
            }
            let limit = bytes.len().saturating_sub(limit_cut);
            prop_assert_eq!(
                decode_checked(&bytes, limit),
                Err(DecodeError::Oversized { size: bytes.len(), limit })
            );
        }
    }

    /// Envelopes whose fields have arbitrary JSON shapes never panic the decoder; accepted ones
    /// are protocol messages or status requests, and a rejection is typed.
    #[test]
    fn misshapen_fields_never_panic(
        base in envelope(),
        field in prop_oneof![Just("v"), Just("from"), Just("from_endpoint"), Just("peers"), Just("msg"), Just("request")],
        value in json_value(),
        inner in json_value(),
    ) {
        let mut obj: Value = serde_json::from_slice(&wire::encode(&base)).unwrap();
        obj[field] = value;
        if let Some(m) = obj.get_mut("msg").and_then(Value::as_object_mut) {
            if let Some(k) = m.keys().find(|k| *k != "type").cloned() {
                m.insert(k, inner);
            }
        }
        let bytes = serde_json::to_vec(&obj).unwrap();
        let _ = decode_checked(&bytes, DEFAULT_MAX_FRAME);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A sealed envelope opens to itself at its receiver, once; a second copy is a replay.
    #[test]
    fn sealed_envelopes_open_once(env in envelope(), inc in 1u64.., rx_inc in any::<u64>()) {
        let mut tx = authenticator(inc);
        let mut rx = authenticator(rx_inc);
        let parts = tx.seal(&env, ME, NOW);
        prop_assert_eq!(parts.len(), 2);
        prop_assert_eq!(parts[1].len(), MAC_LEN);
        prop_assert_eq!(open_checked(&mut rx, &parts, ME), Ok(Frame::Peer(env)));
        prop_assert_eq!(open_checked(&mut rx, &parts, ME).map_err(|e| e.reason()), Err("replayed"));
    }

    /// Any delivery order within the replay window is accepted, each frame once.
    #[test]
    fn reordering_within_the_window_is_accepted_once(
        order in Just((0..REPLAY_WINDOW as usize).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let mut tx = authenticator(3);
        let mut rx = authenticator(4);
        let frames: Vec<Vec<Vec<u8>>> = (0..REPLAY_WINDOW)
            .map(|_| tx.seal(&wire_env(), ME, NOW))
            .collect();
        for &i in &order {
            prop_assert!(open_checked(&mut rx, &frames[i], ME).is_ok(), "frame {}", i);
        }
        for &i in &order {
            prop_assert_eq!(open_checked(&mut rx, &frames[i], ME).map_err(|e| e.reason()), Err("replayed"));
        }
    }

    /// Changing any byte of a sealed frame (envelope or MAC) makes it fail the MAC.
    #[test]
    fn altered_sealed_frames_are_refused(
        env in envelope(),
        part in 0usize..2,
        at in any::<prop::sample::Index>(),
        flip in 1u8..,
    ) {
        let mut tx = authenticator(1);
        let mut parts = tx.seal(&env, ME, NOW);
        let i = at.index(parts[part].len());
        parts[part][i] ^= flip;
        prop_assert_eq!(open_checked(&mut authenticator(2), &parts, ME), Err(DecodeError::BadMac));
    }

    /// A frame sealed with another key, without its MAC, or for another receiver never passes.
    #[test]
    fn wrong_key_missing_mac_and_wrong_receiver_are_refused(
        env in envelope(),
        other_key in "[!-~]{16,40}",
        to in any::<u64>().prop_filter("not the receiver", |&t| t != ME),
    ) {
        prop_assume!(other_key.as_bytes().trim_ascii() != KEY);
        let mut rx = authenticator(2);
        let mut wrong = Authenticator::new(ClusterKey::from_bytes(other_key.as_bytes()).unwrap(), 1);
        prop_assert_eq!(open_checked(&mut rx, &wrong.seal(&env, ME, NOW), ME), Err(DecodeError::BadMac));
        let mut tx = authenticator(1);
        let parts = tx.seal(&env, ME, NOW);
        prop_assert_eq!(open_checked(&mut rx, &parts[..1], ME), Err(DecodeError::Unauthenticated));
        prop_assert_eq!(
            open_checked(&mut rx, &tx.seal(&env, to, NOW), ME),
            Err(DecodeError::WrongReceiver { to })
        );
    }

    /// Arbitrary bytes on the authenticated path never panic it: without a MAC, with a wrong
    /// one, and with a correct MAC over garbage (which reaches the decoder and the stamp check).
    #[test]
    fn the_authenticated_path_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        mode in 0u8..3,
        value in json_value(),
    ) {
        let key = ClusterKey::from_bytes(KEY).unwrap();
        let mut rx = authenticator(1);
        let json = serde_json::to_vec(&value).unwrap();
        for payload in [&bytes, &json] {
            let tag = match mode {
                0 => None,
                1 => Some(bytes.iter().rev().take(MAC_LEN).copied().collect::<Vec<u8>>()),
                _ => Some(key.tag(payload).to_vec()),
            };
            let mut parts = vec![payload.clone()];
            parts.extend(tag);
            if let Ok(Frame::Peer(_)) = open_checked(&mut rx, &parts, ME) {
                prop_assert!(parts.len() == 2, "a protocol frame passed without a MAC");
            }
        }
    }
}

fn wire_env() -> Envelope {
    Envelope {
        v: VERSION,
        from: 5003,
        from_endpoint: Some("tcp://127.0.0.1:5003".into()),
        peers: Default::default(),
        queued_ms: None,
        sent: None,
        msg: Msg::Heartbeat { tag: Tag(7) },
    }
}

#[test]
fn huge_frames_are_oversized_not_parsed() {
    // 1 MiB of an unterminated array: rejected on size, never handed to the JSON parser.
    let bytes = vec![b'['; 1 << 20];
    assert_eq!(
        wire::decode(&bytes, ME, DEFAULT_MAX_FRAME),
        Err(DecodeError::Oversized {
            size: 1 << 20,
            limit: DEFAULT_MAX_FRAME
        })
    );
    // Deep nesting within the limit is malformed (serde_json's recursion limit), not a crash.
    let deep = vec![b'['; DEFAULT_MAX_FRAME];
    assert!(matches!(
        wire::decode(&deep, ME, DEFAULT_MAX_FRAME),
        Err(DecodeError::Malformed(_))
    ));
}
