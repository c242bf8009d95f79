//! Any bytes must decode to a frame or an error, never a panic; and whatever decodes must
//! re-encode to bytes that decode to the same frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mirai_proto::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode(data, 1 << 20) {
        let again = encode(&frame);
        assert_eq!(decode(&again, usize::MAX).ok(), Some(frame));
    }
});
