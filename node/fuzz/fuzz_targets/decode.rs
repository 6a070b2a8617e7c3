//! The frame decoder on arbitrary bytes: never panics, every rejection has a counter key.
#![no_main]

use bully_node::wire::{self, Frame, DEFAULT_MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match wire::decode_stamped(data, 7, DEFAULT_MAX_FRAME) {
        Ok((Frame::Peer(env), _)) => {
            // What decodes re-encodes and decodes to the same envelope.
            let again = wire::decode(&wire::encode(&env), 7, DEFAULT_MAX_FRAME);
            assert_eq!(again, Ok(Frame::Peer(env)));
        }
        Ok((Frame::Status { .. }, stamp)) => assert!(stamp.is_none()),
        Err(e) => assert!(!e.reason().is_empty() && !e.to_string().is_empty()),
    }
});
