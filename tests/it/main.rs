//! The root package's integration tests, in one binary (each separate binary would link
//! llama.cpp and candle again). `cargo test --test it -- parity` runs one module.

#[macro_use]
mod common;

mod accuracy;
mod backends;
mod broken_scenarios;
mod contention;
mod crash_containment;
mod differential;
mod full_size;
mod integrity;
mod memory_estimate;
mod nightly_slowdown;
mod paired;
mod parity;
mod prompts;
mod quality;
mod serve;
mod sustained;
mod tidy;
