//! Quality beside speed on a real model (SmolLM2): the KLD of a KV-cache variant against the
//! f16 cache orders as llama.cpp's own measurements do (f16-vs-f16 noise < q8_0 < q4_0 V
//! cache), candle against llama.cpp is measured in the same terms, and a reset sequence reads
//! a text exactly as a fresh context does on both engines (no KV pollution).

use edgebench::backend::{KvType, LoadOptions, Pinned, Session};
use edgebench::core::quality::{self, QualitySummary};
use edgebench::execute::quality::{compare, corpus_chunks, reference_options};

use crate::common;

/// The corpus's first `n` chunks of `context` tokens, as the quality pass cuts them.
fn chunks(path: &std::path::Path, context: u32, n: usize) -> Vec<Vec<i32>> {
    let vocabulary =
        edgebench::engines::reference_vocabulary_for(path, None).expect("vocabulary loads");
    let text =
        std::fs::read_to_string(edgebench::paths::root().join("datasets/quality_corpus.txt"))
            .expect("the corpus ships with the project");
    let all = corpus_chunks(vocabulary.as_ref(), &text, context, usize::MAX).expect("tokenizes");
    assert!(
        all.len() * context as usize >= 8_000,
        "the corpus must hold at least 8k tokens (issue #35); it holds {} chunks of {context}",
        all.len()
    );
    all.into_iter().take(n).collect()
}

#[test]
fn the_corpus_holds_at_least_8k_tokens_for_every_real_model() {
    for &(id, quant) in common::REAL_MODELS {
        let path = common::model(id, quant);
        let chunks = chunks(&path, 512, usize::MAX);
        eprintln!("{id}: {} whole chunks of 512 tokens", chunks.len());
        assert!(chunks.len() >= 16, "{id}: {} chunks", chunks.len());
    }
}

fn options(type_k: KvType, type_v: KvType, flash_attention: bool) -> LoadOptions {
    LoadOptions {
        context: 512,
        positions_needed: 512,
        type_k,
        type_v,
        flash_attention,
        pinned: Pinned {
            cache_types: true,
            flash_attention: true,
            ..Pinned::default()
        },
        ..LoadOptions::default()
    }
}

/// Engine defaults (nothing pinned): what both engines accept.
fn defaults() -> LoadOptions {
    LoadOptions {
        context: 512,
        positions_needed: 512,
        ..LoadOptions::default()
    }
}

fn measure(
    reference: &mut dyn Session,
    candidate: &mut dyn Session,
    chunks: &[Vec<i32>],
) -> QualitySummary {
    let positions = compare(reference, candidate, chunks).expect("comparable");
    quality::summarize(&positions).expect("positions scored")
}

#[test]
fn kv_cache_variants_order_by_divergence_from_the_f16_cache_on_smollm2() {
    let path = common::model("smollm2-135m", "Q4_1");
    let llama = common::engine(edgebench::backend::BackendKind::LlamaCpp);
    let chunks = chunks(&path, 512, 2);
    // A quantized V cache needs flash attention: every variant is measured against the f16
    // cache with flash attention, so the cache type alone differs.
    let base = options(KvType::F16, KvType::F16, true);
    let mut reference = llama.load(&path, &base).expect("loads");
    let mut run = |options: LoadOptions| {
        let mut candidate = llama.load(&path, &options).expect("loads");
        measure(reference.as_mut(), candidate.as_mut(), &chunks)
    };
    let same = run(base.clone());
    // The f16-vs-f16 noise floor of a rerun on other threads: llama.cpp's CPU kernels give
    // bit-identical logits for one thread and for two.
    let noise = run(LoadOptions {
        threads: 1,
        ..base.clone()
    });
    // The floor of the numerics themselves: the same f16 cache fed in batches of 32 instead of
    // 512 (other kernels, another summation order). On SmolLM2 this is as large as the q8_0 V
    // cache's divergence; printed for the methodology, and q4_0 must stand clearly above it.
    let kernels = run(LoadOptions {
        batch: 32,
        ..base.clone()
    });
    let q8 = run(options(KvType::F16, KvType::Q8_0, true));
    let q4 = run(options(KvType::F16, KvType::Q4_0, true));
    // What the pass stores for an `f16-fa` case (its reference is the engine default, no flash
    // attention): printed for the methodology, not asserted.
    let fa = {
        let mut plain = llama.load(&path, &reference_options(&base)).expect("loads");
        let mut fa = llama.load(&path, &base).expect("loads");
        measure(plain.as_mut(), fa.as_mut(), &chunks)
    };
    for (name, s) in [
        ("f16", &same),
        ("1 thread", &noise),
        ("batch 32", &kernels),
        ("q8_0 V", &q8),
        ("q4_0 V", &q4),
        ("fa vs no fa", &fa),
    ] {
        eprintln!(
            "{name:>7}: n {} mean KLD {:.6} ± {:.6}, p99 {:.5}, same top-1 {:.2}%, Δ ln PPL {:+.5}, PPL {:.2}",
            s.tokens,
            s.mean_kld,
            s.kld_stderr,
            s.p99_kld,
            100.0 * s.same_top1,
            s.delta_log_ppl,
            s.reference_ppl
        );
    }
    assert_eq!(
        same.tokens,
        2 * 255,
        "two chunks, the second half of each scored"
    );
    assert_eq!(
        same.mean_kld, 0.0,
        "the same configuration twice is deterministic on the CPU"
    );
    assert_eq!(same.same_top1, 1.0);
    assert!(
        noise.mean_kld < q8.mean_kld && q8.mean_kld < q4.mean_kld,
        "expected f16-vs-f16 noise {} < q8_0 V {} < q4_0 V {}",
        noise.mean_kld,
        q8.mean_kld,
        q4.mean_kld
    );
    assert!(
        q4.mean_kld > 1.5 * kernels.mean_kld,
        "a q4_0 V cache ({}) stands clearly above the kernels' own noise ({})",
        q4.mean_kld,
        kernels.mean_kld
    );
    assert!(
        q4.same_top1 < 1.0 && q4.same_top1 <= q8.same_top1,
        "a q4_0 V cache changes some top tokens, at least as many as q8_0: {} vs {}",
        q4.same_top1,
        q8.same_top1
    );
}

#[test]
fn candle_against_llama_cpp_is_measured_as_kld_on_smollm2() {
    let path = common::model("smollm2-135m", "Q4_1");
    let llama = common::engine(edgebench::backend::BackendKind::LlamaCpp);
    let candle = common::engine(edgebench::backend::BackendKind::Candle);
    // One short chunk: candle steps each scored position on its own.
    let chunks = chunks(&path, 128, 1);
    let mut reference = llama.load(&path, &defaults()).expect("loads");
    let mut candidate = candle.load(&path, &defaults()).expect("loads");
    let s = measure(reference.as_mut(), candidate.as_mut(), &chunks);
    eprintln!(
        "candle vs llama.cpp: n {} mean KLD {:.6} ± {:.6}, p99 {:.5}, same top-1 {:.2}%",
        s.tokens,
        s.mean_kld,
        s.kld_stderr,
        s.p99_kld,
        100.0 * s.same_top1
    );
    assert_eq!(s.tokens, 63);
    // Same weights, different summation order and cache precision: close but never identical.
    assert!(
        s.mean_kld > 0.0 && s.mean_kld < 0.01,
        "mean KLD {}",
        s.mean_kld
    );
    assert!(s.same_top1 >= 0.9, "same top-1 {}", s.same_top1);
}

backend_test!(
    a_reset_sequence_reads_a_text_as_a_fresh_context_does,
    |backend| {
        let path = common::model("smollm2-135m", "Q4_1");
        let chunks = chunks(&path, 128, 2);
        let mut fresh = backend.load(&path, &defaults()).expect("loads");
        let mut used = backend.load(&path, &defaults()).expect("loads");
        // The used session reads another text first; teacher forcing resets the sequence before
        // the measured text, so nothing of the first may leak into the second.
        used.teacher_forced(0, &chunks[1], 0, &mut |_, _| Ok(()))
            .expect("reads");
        let s = measure(fresh.as_mut(), used.as_mut(), &chunks[..1]);
        eprintln!(
            "pollution: n {} mean KLD {:e}, max {:e}",
            s.tokens, s.mean_kld, s.max_kld
        );
        assert!(s.max_kld < 1e-6, "KV pollution: max KLD {}", s.max_kld);
        assert_eq!(s.same_top1, 1.0);
    }
);

#[test]
fn quantized_copies_load_and_rank_by_divergence_from_their_f16_dequantization() {
    let path = common::model("smollm2-135m", "Q4_1");
    let dir = tempfile::tempdir().expect("temp dir");
    let f16 = dir.path().join("smollm2-F16.gguf");
    edgebench::engines::quantize(&path, &f16, "F16", 2).expect("dequantizes to F16");
    let mut copies = Vec::new();
    for to in ["Q8_0", "Q4_0"] {
        let out = dir.path().join(format!("smollm2-{to}.gguf"));
        edgebench::engines::quantize(&f16, &out, to, 2).expect("quantizes");
        copies.push(out);
    }
    let size = |p: &std::path::Path| std::fs::metadata(p).expect("written").len();
    assert!(size(&f16) > size(&copies[0]) && size(&copies[0]) > size(&copies[1]));
    // A bad type names the choices; a missing file names itself.
    let err = edgebench::engines::quantize(&f16, &dir.path().join("x.gguf"), "Q9", 2)
        .expect_err("unknown type")
        .to_string();
    assert!(
        err.contains("unknown type `Q9`") && err.contains("Q4_K_M"),
        "{err}"
    );
    let err = edgebench::engines::quantize(&dir.path().join("none.gguf"), &f16, "Q8_0", 2)
        .expect_err("missing input")
        .to_string();
    assert!(err.contains("none.gguf"), "{err}");

    let llama = common::engine(edgebench::backend::BackendKind::LlamaCpp);
    let chunks = chunks(&path, 512, 1);
    let mut reference = llama.load(&f16, &defaults()).expect("the F16 copy loads");
    let mut measured = Vec::new();
    for copy in &copies {
        let mut candidate = llama.load(copy, &defaults()).expect("the copy loads");
        measured.push(measure(reference.as_mut(), candidate.as_mut(), &chunks));
    }
    eprintln!(
        "vs F16: Q8_0 mean KLD {:.5}, Q4_0 {:.5}",
        measured[0].mean_kld, measured[1].mean_kld
    );
    assert!(
        measured[0].mean_kld < measured[1].mean_kld
            && measured[0].same_top1 > measured[1].same_top1,
        "Q8_0 stays closer to F16 than Q4_0: {:?}",
        measured
    );
}

/// Runs `case` in a child in smoke mode (one chunk of the quality pass) into `db`.
fn run_case(case: &str, run_id: &str, db: &std::path::Path) -> edgebench::store::dataset::Run {
    let smoke = edgebench::plan::Mode {
        smoke: true,
        fixed_stopping: false,
        ..edgebench::plan::Mode::default()
    };
    common::run_case(case, run_id, db, smoke, &[])
}

#[test]
fn the_scenarios_store_a_quality_pass_for_a_kv_variant_and_a_weight_type() {
    common::model("smollm2-135m", "Q4_1");
    common::model("smollm2-135m-requant", "Q4_0");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    // A KV variant against the f16 cache of the same file.
    let kv = run_case(
        "kv_cache::smollm2-135m::Q4_1::llama_cpp::c1::q4_0-fa",
        "kv-q4",
        &db,
    );
    let q = kv.quality.expect("a quality pass is stored");
    assert_eq!(
        (q.reference.as_str(), q.reference_quant),
        ("llama_cpp f16/f16", None)
    );
    assert_eq!((q.chunks, q.tokens), (1, 255), "smoke: one chunk");
    assert!(q.mean_kld > 0.01 && q.same_top1 < 1.0, "{q:?}");
    // A weight type against the F16 file, with the same cache.
    let weights = run_case(
        "quantization::smollm2-135m-requant::Q4_0::llama_cpp::c1",
        "w-q4",
        &db,
    );
    let w = weights.quality.expect("a quality pass is stored");
    assert_eq!(w.reference_quant, Some(edgebench::core::quant::Quant::F16));
    assert!(w.reference.contains("F16 file"), "{}", w.reference);
    assert!(
        w.mean_kld > 0.05,
        "Q4_0 requantized from Q4_1 drifts far from F16: {w:?}"
    );
    // The reference configurations themselves store none (their KLD is 0 by construction).
    let base = run_case(
        "quantization::smollm2-135m-requant::F16::llama_cpp::c1",
        "w-f16",
        &db,
    );
    assert!(base.quality.is_none());
}
