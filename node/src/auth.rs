//! Frame authentication with a shared cluster key (`--cluster-key FILE`).
//!
//! Every protocol frame a keyed node sends is two ZeroMQ frames: the JSON envelope (with an
//! `"auth"` stamp, see [`Stamp`]) and `HMAC-SHA256(key, envelope bytes)` (32 bytes). The
//! receiver checks, in this order, and drops (counting the reason) at the first failure:
//!
//! 1. size (`oversized`, before anything is computed);
//! 2. the MAC over the whole envelope bytes, in constant time (`bad_mac`); a protocol frame
//!    without a MAC is `unauthenticated`;
//! 3. the envelope itself (the ordinary decoder, [`wire::decode_stamped`]);
//! 4. the stamp: present (`bad_stamp`), addressed to this node (`wrong_receiver`);
//! 5. freshness: a sender's incarnation only grows, and within an incarnation each sequence
//!    number is accepted once (a 64-frame sliding window tolerates reordering across
//!    reconnections), and a frame that arrives out of order must have been sent within
//!    [`MAX_REORDER_MS`] of the newest one, by the sender's own stamps (`replayed`); the first frame of an incarnation this node has not heard
//!    must be stamped within [`MAX_SKEW_MS`] of this node's clock (`stale`), so that frames
//!    captured long ago cannot be replayed to a receiver that restarted and forgot them.
//!
//! Only then does the envelope reach the transport's address book and the protocol handler. The
//! per-sender table only grows on authenticated frames and holds at most [`MAX_SENDERS`]
//! entries. Status requests stay unauthenticated (read-only): `bully-node status` and the
//! cluster launcher need no key.
//!
//! Membership: the key is the membership credential. A process that holds it is a member (so a
//! joiner that knows only the coordinator is learned from its authenticated heartbeat, as
//! without a key); a process that does not hold it cannot get a single frame to the protocol,
//! whatever ID it claims.

use crate::wire::{self, DecodeError, Envelope, Frame, Stamp};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

/// Length of the MAC frame.
pub const MAC_LEN: usize = 32;
/// Shortest accepted key (after trimming surrounding whitespace).
pub const MIN_KEY_LEN: usize = 16;
/// Longest accepted key file.
pub const MAX_KEY_LEN: usize = 4096;
/// Sequence numbers this far below the highest one seen are refused outright.
pub const REPLAY_WINDOW: u64 = 64;
/// Most senders whose replay state is kept (least recently heard is forgotten first).
pub const MAX_SENDERS: usize = 1024;
/// How far the stamp of a new incarnation's first frame may be from this node's clock.
pub const MAX_SKEW_MS: u64 = 60_000;
/// How far behind the sender's newest accepted frame (by the sender's own stamps) a frame that
/// arrives out of order may be: reordering across a reconnection takes milliseconds, so a
/// frame held back longer (recorded and withheld, then released) is refused.
pub const MAX_REORDER_MS: u64 = 1_000;

/// The shared secret. Its `Debug` form does not show it.
#[derive(Clone)]
pub struct ClusterKey(Vec<u8>);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterKey({} bytes)", self.0.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("--cluster-key {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("--cluster-key {path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("--cluster-key {path}: group or others have access (mode {mode:03o}); a cluster key must be accessible by its owner only: chmod 600 {path}")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("--cluster-key {path}: {why}")]
    Content { path: PathBuf, why: String },
}

impl ClusterKey {
    /// The key from raw bytes: surrounding ASCII whitespace is trimmed, and at least
    /// [`MIN_KEY_LEN`] bytes must remain.
    pub fn from_bytes(bytes: &[u8]) -> Result<ClusterKey, String> {
        let key = bytes.trim_ascii();
        if key.len() < MIN_KEY_LEN {
            return Err(format!(
                "the key is {} bytes, at least {MIN_KEY_LEN} are needed (make one with: head -c 32 /dev/urandom | base64 > FILE)",
                key.len()
            ));
        }
        if bytes.len() > MAX_KEY_LEN {
            return Err(format!("the key file is larger than {MAX_KEY_LEN} bytes"));
        }
        Ok(ClusterKey(key.to_vec()))
    }

    /// Reads a key file, refusing one that group or others can access (mode `& 0o077`).
    pub fn load(path: &Path) -> Result<ClusterKey, KeyError> {
        let p = path.to_path_buf();
        let f = File::open(path).map_err(|source| KeyError::Read {
            path: p.clone(),
            source,
        })?;
        // The checks are made on the opened file, not on the name.
        let meta = f.metadata().map_err(|source| KeyError::Read {
            path: p.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile { path: p });
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions { path: p, mode });
        }
        let mut bytes = Vec::new();
        f.take(MAX_KEY_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| KeyError::Read {
                path: p.clone(),
                source,
            })?;
        ClusterKey::from_bytes(&bytes).map_err(|why| KeyError::Content { path: p, why })
    }

    fn hmac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length")
    }

    /// `HMAC-SHA256(key, payload)`.
    pub fn tag(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut m = self.hmac();
        m.update(payload);
        m.finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `payload` (constant-time comparison).
    pub fn verify(&self, payload: &[u8], tag: &[u8]) -> bool {
        let mut m = self.hmac();
        m.update(payload);
        m.verify_slice(tag).is_ok()
    }
}

/// What one receiver remembers of one sender.
#[derive(Debug, Clone)]
struct Window {
    inc: u64,
    /// Highest sequence number accepted in `inc`.
    top: u64,
    /// Bit `k` set: `top - k` was accepted.
    bits: u64,
    /// The newest sender stamp accepted in `inc`.
    newest_ts: u64,
    last_ms: u64,
}

/// Seals outgoing frames and opens incoming ones for one node.
#[derive(Debug)]
pub struct Authenticator {
    key: ClusterKey,
    incarnation: u64,
    seq: u64,
    seen: HashMap<u64, Window>,
    max_skew_ms: u64,
}

impl Authenticator {
    /// `incarnation` must be larger than that of every earlier run of this node (see
    /// [`next_incarnation`](crate::storage::next_incarnation)).
    pub fn new(key: ClusterKey, incarnation: u64) -> Authenticator {
        Authenticator {
            key,
            incarnation,
            seq: 0,
            seen: HashMap::new(),
            max_skew_ms: MAX_SKEW_MS,
        }
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The sequence number of the last frame sealed.
    pub fn sent_seq(&self) -> u64 {
        self.seq
    }

    /// How many senders' replay state is kept.
    pub fn senders(&self) -> usize {
        self.seen.len()
    }

    /// The two ZeroMQ frames of `env` sent to `to`: the stamped envelope, and its MAC.
    pub fn seal(&mut self, env: &Envelope, to: u64, now_ms: u64) -> Vec<Vec<u8>> {
        self.seq += 1;
        let stamp = Stamp {
            inc: self.incarnation,
            seq: self.seq,
            to,
            ts: now_ms,
        };
        let payload = wire::encode_stamped(env, &stamp);
        let tag = self.key.tag(&payload).to_vec();
        vec![payload, tag]
    }

    /// Checks one received frame (`tag`: the MAC frame, if there was one) and decodes it. See
    /// the module documentation for the order of the checks. Never panics.
    pub fn open(
        &mut self,
        payload: &[u8],
        tag: Option<&[u8]>,
        me: u64,
        max_frame: usize,
        now_ms: u64,
    ) -> Result<Frame, DecodeError> {
        if payload.len() > max_frame {
            return Err(DecodeError::Oversized {
                size: payload.len(),
                limit: max_frame,
            });
        }
        let Some(tag) = tag else {
            return match wire::decode(payload, me, max_frame)? {
                f @ Frame::Status { .. } => Ok(f),
                Frame::Peer(_) => Err(DecodeError::Unauthenticated),
            };
        };
        if !self.key.verify(payload, tag) {
            return Err(DecodeError::BadMac);
        }
        let (frame, stamp) = wire::decode_stamped(payload, me, max_frame)?;
        let Frame::Peer(env) = frame else {
            return Ok(frame);
        };
        let stamp = match stamp {
            None => return Err(DecodeError::BadStamp("missing".into())),
            Some(Err(why)) => return Err(DecodeError::BadStamp(why)),
            Some(Ok(s)) => s,
        };
        if stamp.to != me {
            return Err(DecodeError::WrongReceiver { to: stamp.to });
        }
        if stamp.seq == 0 {
            return Err(DecodeError::BadStamp("sequence numbers start at 1".into()));
        }
        self.admit(env.from, &stamp, now_ms)?;
        Ok(Frame::Peer(env))
    }

    /// The replay check; records the frame only if it passes.
    fn admit(&mut self, from: u64, s: &Stamp, now_ms: u64) -> Result<(), DecodeError> {
        let replayed = |why| Err(DecodeError::Replayed { from, why });
        match self.seen.get_mut(&from) {
            Some(w) if s.inc == w.inc => {
                if s.seq > w.top {
                    let shift = s.seq - w.top;
                    w.bits = if shift >= 64 { 0 } else { w.bits << shift };
                    w.bits |= 1;
                    w.top = s.seq;
                } else {
                    let back = w.top - s.seq;
                    if back >= REPLAY_WINDOW {
                        return replayed("older than the replay window");
                    }
                    let bit = 1u64 << back;
                    if w.bits & bit != 0 {
                        return replayed("already received");
                    }
                    if s.ts.saturating_add(MAX_REORDER_MS) < w.newest_ts {
                        return replayed("out of order and sent too long before the newest frame");
                    }
                    w.bits |= bit;
                }
                w.newest_ts = w.newest_ts.max(s.ts);
                w.last_ms = now_ms;
                Ok(())
            }
            Some(w) if s.inc < w.inc => replayed("from an earlier incarnation of the sender"),
            _ => {
                let skew_ms = now_ms.abs_diff(s.ts);
                if skew_ms > self.max_skew_ms {
                    return Err(DecodeError::Stale {
                        from,
                        inc: s.inc,
                        skew_ms,
                        limit_ms: self.max_skew_ms,
                    });
                }
                if !self.seen.contains_key(&from) && self.seen.len() >= MAX_SENDERS {
                    if let Some(oldest) = self
                        .seen
                        .iter()
                        .min_by_key(|(_, w)| w.last_ms)
                        .map(|(&id, _)| id)
                    {
                        self.seen.remove(&oldest);
                    }
                }
                self.seen.insert(
                    from,
                    Window {
                        inc: s.inc,
                        top: s.seq,
                        bits: 1,
                        newest_ts: s.ts,
                        last_ms: now_ms,
                    },
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bully_model::Msg;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_700_000_000_000;

    fn env(from: u64) -> Envelope {
        Envelope {
            v: crate::wire::VERSION,
            from,
            from_endpoint: Some(format!("tcp://127.0.0.1:{from}")),
            peers: Default::default(),
            queued_ms: None,
            sent: None,
            msg: Msg::Heartbeat {
                tag: bully_model::Tag::first(1),
            },
        }
    }

    fn pair() -> (Authenticator, Authenticator) {
        let k = ClusterKey::from_bytes(KEY).unwrap();
        (Authenticator::new(k.clone(), 10), Authenticator::new(k, 20))
    }

    fn open(rx: &mut Authenticator, f: &[Vec<u8>], me: u64) -> Result<Frame, DecodeError> {
        rx.open(&f[0], f.get(1).map(|t| &t[..]), me, 65536, NOW)
    }

    #[test]
    fn sealed_frames_open_once() {
        let (mut tx, mut rx) = pair();
        let f = tx.seal(&env(1), 2, NOW);
        assert_eq!(f[1].len(), MAC_LEN);
        assert_eq!(open(&mut rx, &f, 2), Ok(Frame::Peer(env(1))));
        let again = open(&mut rx, &f, 2).unwrap_err();
        assert_eq!(again.reason(), "replayed", "{again}");
    }

    #[test]
    fn wrong_key_altered_frame_missing_mac_and_wrong_receiver_are_refused() {
        let (mut tx, mut rx) = pair();
        let mut other = Authenticator::new(
            ClusterKey::from_bytes(b"another key, 16+ bytes").unwrap(),
            5,
        );
        let f = other.seal(&env(1), 2, NOW);
        assert_eq!(open(&mut rx, &f, 2), Err(DecodeError::BadMac));
        let mut f = tx.seal(&env(1), 2, NOW);
        let last = f[0].len() - 2;
        f[0][last] ^= 1;
        assert_eq!(open(&mut rx, &f, 2), Err(DecodeError::BadMac));
        let f = tx.seal(&env(1), 2, NOW);
        assert_eq!(open(&mut rx, &f[..1], 2), Err(DecodeError::Unauthenticated));
        assert_eq!(
            open(&mut rx, &[f[0].clone(), vec![0; 3]], 2),
            Err(DecodeError::BadMac)
        );
        let f = tx.seal(&env(1), 3, NOW);
        assert_eq!(
            open(&mut rx, &f, 2),
            Err(DecodeError::WrongReceiver { to: 3 })
        );
        // Status requests need no MAC.
        let s = wire::status_request(4, None);
        assert_eq!(
            rx.open(&s, None, 2, 65536, NOW),
            Ok(Frame::Status {
                nonce: Some(4),
                watch: None
            })
        );
        // A MAC'd frame without a stamp.
        let raw = wire::encode(&env(1));
        let tag = ClusterKey::from_bytes(KEY).unwrap().tag(&raw);
        assert_eq!(
            rx.open(&raw, Some(&tag), 2, 65536, NOW)
                .unwrap_err()
                .reason(),
            "bad_stamp"
        );
    }

    #[test]
    fn reordering_within_the_window_is_accepted_older_frames_and_incarnations_are_not() {
        let (mut tx, mut rx) = pair();
        let frames: Vec<Vec<Vec<u8>>> = (0..100).map(|_| tx.seal(&env(1), 2, NOW)).collect();
        assert!(open(&mut rx, &frames[99], 2).is_ok());
        assert!(open(&mut rx, &frames[50], 2).is_ok(), "within the window");
        assert!(open(&mut rx, &frames[50], 2).is_err(), "but only once");
        assert_eq!(
            open(&mut rx, &frames[10], 2).unwrap_err().reason(),
            "replayed"
        );
        // The sender restarts with a larger incarnation: accepted, and the old one is dead.
        let mut tx2 = Authenticator::new(ClusterKey::from_bytes(KEY).unwrap(), 11);
        assert!(open(&mut rx, &tx2.seal(&env(1), 2, NOW), 2).is_ok());
        let old = tx.seal(&env(1), 2, NOW);
        assert_eq!(open(&mut rx, &old, 2).unwrap_err().reason(), "replayed");
    }

    #[test]
    fn a_frame_held_back_and_released_late_is_refused() {
        let (mut tx, mut rx) = pair();
        let held = tx.seal(&env(1), 2, NOW);
        let quick = tx.seal(&env(1), 2, NOW + 10);
        let later = tx.seal(&env(1), 2, NOW + MAX_REORDER_MS + 500);
        assert!(open(&mut rx, &quick, 2).is_ok());
        assert!(open(&mut rx, &later, 2).is_ok());
        // Within the sequence window, but stamped long before the newest frame.
        assert_eq!(open(&mut rx, &held, 2).unwrap_err().reason(), "replayed");
    }

    #[test]
    fn a_new_incarnation_must_be_fresh() {
        let (mut tx, mut rx) = pair();
        let f = tx.seal(&env(1), 2, NOW - 2 * MAX_SKEW_MS);
        assert_eq!(open(&mut rx, &f, 2).unwrap_err().reason(), "stale");
        // Once an incarnation is known, later frames are not checked against the clock.
        assert!(open(&mut rx, &tx.seal(&env(1), 2, NOW), 2).is_ok());
        assert!(open(&mut rx, &tx.seal(&env(1), 2, 0), 2).is_ok());
    }

    #[test]
    fn the_sender_table_is_bounded() {
        let (_, mut rx) = pair();
        let k = ClusterKey::from_bytes(KEY).unwrap();
        for from in 0..(MAX_SENDERS as u64 + 50) {
            let mut tx = Authenticator::new(k.clone(), 1);
            assert!(open(&mut rx, &tx.seal(&env(from + 100), 2, NOW), 2).is_ok());
        }
        assert_eq!(rx.senders(), MAX_SENDERS);
    }

    #[test]
    fn key_files() {
        let dir = std::env::temp_dir().join(format!("bully-auth-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("key");
        fs::write(&p, b"0123456789abcdef\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            ClusterKey::load(&p),
            Err(KeyError::Permissions { .. })
        ));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(ClusterKey::load(&p).is_ok());
        fs::write(&p, b"short\n").unwrap();
        assert!(matches!(
            ClusterKey::load(&p),
            Err(KeyError::Content { .. })
        ));
        assert!(matches!(
            ClusterKey::load(&dir.join("nope")),
            Err(KeyError::Read { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
