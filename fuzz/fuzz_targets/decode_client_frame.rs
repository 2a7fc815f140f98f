//! Any bytes a client sends: decoding never panics, every rejection carries a documented
//! code, and whatever is accepted re-encodes to a frame that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{ClientFrame, DecodeLimits, ErrorCode, ServerFrame};

fuzz_target!(|data: &[u8]| {
    match ClientFrame::decode_bytes(data, DecodeLimits::default()) {
        Ok(frame) => {
            let again = ClientFrame::decode(&frame.encode()).expect("an encoded frame decodes");
            assert_eq!(again, frame);
        }
        Err(err) => assert!(ErrorCode::ALL.contains(&err.code())),
    }
    // The client side decodes server frames from the same kind of input.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ServerFrame::decode(text);
    }
});
