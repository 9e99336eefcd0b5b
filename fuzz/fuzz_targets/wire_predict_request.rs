#![no_main]
//! The salary request parser: any bytes give a request or an error, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = unseen_wire::salary::PredictRequest::parse(data) {
        assert!(!req.values.is_empty());
    }
    let _ = unseen_wire::salary::parse_legacy_reply(data);
});
