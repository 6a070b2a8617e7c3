//! The authenticated path (`Authenticator::open`): size, MAC, decoder, stamp, replay window.
//!
//! The first byte chooses what the fuzzer's bytes are: 0 a frame without a MAC, 1 a frame
//! whose last 32 bytes are its (almost surely wrong) MAC, otherwise a frame with a correct MAC,
//! so that the decoder and the stamp checks behind the MAC are reached too. Properties: never
//! a panic; a frame that passes is refused the second time (replay).
#![no_main]

use bully_node::auth::{Authenticator, ClusterKey, MAC_LEN};
use bully_node::wire::{Frame, DEFAULT_MAX_FRAME};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzzing cluster key, 32 bytes..!";
const ME: u64 = 7;
const NOW: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = ClusterKey::from_bytes(KEY).unwrap();
    let mut rx = Authenticator::new(key.clone(), 1);
    let (payload, tag): (&[u8], Option<Vec<u8>>) = match mode % 3 {
        0 => (rest, None),
        1 if rest.len() >= MAC_LEN => {
            let (p, t) = rest.split_at(rest.len() - MAC_LEN);
            (p, Some(t.to_vec()))
        }
        1 => (rest, Some(rest.to_vec())),
        _ => (rest, Some(key.tag(rest).to_vec())),
    };
    let first = rx.open(payload, tag.as_deref(), ME, DEFAULT_MAX_FRAME, NOW);
    if let Err(e) = &first {
        assert!(!e.reason().is_empty());
    }
    if let Ok(Frame::Peer(_)) = first {
        assert!(tag.is_some(), "a protocol frame passed without a MAC");
        let second = rx.open(payload, tag.as_deref(), ME, DEFAULT_MAX_FRAME, NOW);
        assert_eq!(second.map_err(|e| e.reason()), Err("replayed"));
    }
});
