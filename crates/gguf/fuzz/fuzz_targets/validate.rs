//! Any bytes, any claimed file length: the validator (structure and model checks) returns Ok or
//! an error, never panics, and an error's offset lies within the claimed length and its message
//! stays short.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u32, &[u8])| {
    let (extra, data) = input;
    let len = data.len() as u64 + u64::from(extra % 4096);
    if let Err(d) = edgebench_gguf::validate_model(data, len) {
        assert!(d.offset <= len);
        assert!(d.problem.len() < 1024, "{}", d.problem);
    }
});
