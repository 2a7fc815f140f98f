//! Any JSON a client publishes, redacted with `REDACT_FIELDS`: never a panic, always valid
//! JSON out, the same result as removing the keys from the parsed tree, and byte for byte
//! its input when no key matches (checked by redacting the result again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_hub::Redactor;
use switchboard_protocol::Payload;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Only what a publish can carry reaches redaction: a payload is validated JSON.
    let Ok(payload) = Payload::from_json(text) else {
        return;
    };
    let redactor = Redactor::new(["password", "ssn", "tökén", "a"]);
    let redacted = redactor.redact_payload(payload.clone());
    // Valid JSON by the same rules a publish is checked with (numbers of any size).
    if let Err(e) = Payload::from_json(redacted.get()) {
        panic!("redaction produced invalid JSON ({e}): {}", redacted.get());
    }

    // Nothing left to remove after one pass: a second pass delivers its input byte for byte
    // (the property a payload without any redacted key relies on).
    let again = redactor.redact_payload(redacted.clone());
    assert_eq!(again.get(), redacted.get(), "input: {text}");

    // serde_json's tree cannot hold every number JSON allows (`1e400`): compare trees only
    // where the input parses into one.
    if let Ok(mut expected) = serde_json::from_str::<serde_json::Value>(text) {
        let out: serde_json::Value =
            serde_json::from_str(redacted.get()).expect("the redacted text parses as the input did");
        redactor.redact_value(&mut expected);
        assert_eq!(out, expected, "input: {text}");
    }
});
