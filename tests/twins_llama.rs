//! llama.cpp loads every twin at every shipped quantization and generates greedily and
//! deterministically.

use edgebench::backend::{Backend, LoadOptions};

mod common;
use common::greedy;
use edgebench::core::twin;
use edgebench_llama::LlamaCpp;
use edgebench_twins::{TWIN_QUANTS, build_tokenizer, write_twin};

#[test]
fn llama_cpp_runs_every_twin_at_every_quantization() {
    let root = edgebench::paths::root();
    let registry = edgebench::catalog::load_registry(&root).expect("registry");
    let tok = build_tokenizer(255);
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = LlamaCpp::global().expect("llama.cpp");
    for real in ["mimo-7b", "phi-4-mini"] {
        let arch = twin::scaled(
            &registry.get(real).expect("real model").arch,
            16,
            tok.vocab_size(),
        );
        for quant in TWIN_QUANTS {
            let path = dir.path().join(format!("{real}-{quant}.gguf"));
            write_twin(&path, &arch, real, quant, 42, &tok).expect("write twin");
            let options = LoadOptions {
                context: 256,
                ..LoadOptions::default()
            };
            let mut s = engine
                .load(&path, &options)
                .unwrap_or_else(|e| panic!("{real} {quant}: {e}"));
            let prompt = s
                .tokenize("Write a function that sorts a list of numbers.", true)
                .expect("tokenize");
            assert!(
                prompt.len() < 47,
                "{real}: BPE merges apply ({} tokens for 47 bytes)",
                prompt.len()
            );
            let a = greedy(s.as_mut(), &prompt, 16);
            let b = greedy(s.as_mut(), &prompt, 16);
            assert_eq!(a.len(), 16);
            assert_eq!(a, b, "{real} {quant}: greedy is deterministic");
            assert!(
                a.iter().all(|&t| (0..tok.vocab_size() as i32).contains(&t)),
                "{real}: ids in vocab"
            );
        }
    }
}
