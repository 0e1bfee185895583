//! Any text as a scenario file: parsing returns a scenario (which then expands) or an error
//! located inside the file, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

const REGISTRY: &str = include_str!("../../../../models.toml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registry = edgebench_core::Registry::parse("models.toml", REGISTRY).expect("registry");
    match edgebench_core::Scenario::parse("f.toml", text, &registry) {
        Ok(s) => {
            let _ = s.expand();
        }
        Err(e) => {
            let loc = e.location();
            assert!(loc.line >= 1 && loc.line <= text.lines().count() + 1 && loc.col >= 1, "{e}");
        }
    }
});
