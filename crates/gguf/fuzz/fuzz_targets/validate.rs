//! Any bytes, any claimed file length: the validator returns Ok or an error, never panics, and
//! an error's offset lies within the claimed length.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u32, &[u8])| {
    let (extra, data) = input;
    let len = data.len() as u64 + u64::from(extra % 4096);
    if let Err(d) = edgebench_gguf::validate(data, len) {
        assert!(d.offset <= len);
    }
});
