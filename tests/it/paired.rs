//! `edgebench::paired` on the real engines: two files in one process, alternating rounds.

use crate::common::model;
use edgebench::backend::BackendKind;
use edgebench::paired::{Decoder, PairError, PairPlan, run};

const PLAN: PairPlan = PairPlan {
    threads: 2,
    prompt_tokens: 16,
    generate_tokens: 8,
    rounds: 4,
};

backend_test!(a_file_paired_with_itself_runs_at_its_own_speed, |backend| {
    let smollm2 = model("smollm2-135m", "Q4_1");
    let engine = Decoder::Engine(backend.kind());
    let paired = run([&smollm2, &smollm2], [engine; 2], &PLAN).expect("paired run");
    assert_eq!(
        paired.rounds.len(),
        PLAN.rounds,
        "the warm-up round is not recorded"
    );
    let rates = paired.decode_rates(0);
    assert!(rates.iter().all(|r| r.is_finite() && *r > 0.0), "{rates:?}");
    // The same bytes on both sides: each round's ratio is the host's noise only. A pairing
    // that timed one side's prefill as decode, or skipped a reset (a growing context), would
    // put every round far from 1. On a shared machine the noise is anything: the run says so
    // (a compile at full priority beside a niced run put the median outside 0.67–1.5).
    if paired.contended() {
        eprintln!(
            "the ratio is not checked: other processes used {:.0}% of the cores",
            100.0 * paired.others_cpu_share.unwrap_or(0.0)
        );
        return;
    }
    let ratios = paired.decode_ratios();
    let median = edgebench::core::stats::summarize(&ratios)
        .expect("finite ratios")
        .median;
    assert!((0.67..1.5).contains(&median), "{ratios:?}");
});

#[test]
fn a_plan_without_a_decode_step_or_a_missing_file_is_refused() {
    let engine = Decoder::Engine(BackendKind::LlamaCpp);
    let smollm2 = model("smollm2-135m", "Q4_1");
    let one_token = PairPlan {
        generate_tokens: 1,
        ..PLAN
    };
    assert!(matches!(
        run([&smollm2, &smollm2], [engine; 2], &one_token),
        Err(PairError::Plan)
    ));
    let missing = std::path::Path::new("models/no-such-file.gguf");
    let err = run([&smollm2, missing], [engine; 2], &PLAN).expect_err("missing file");
    assert!(err.to_string().contains("no-such-file.gguf"), "{err}");
}

/// The candle anchor: candle-transformers' own model and our candle engine on one file.
#[test]
fn stock_candle_pairs_with_our_candle_engine_and_the_profile_covers_every_matrix() {
    let smollm2 = model("smollm2-135m", "Q4_1");
    let paired = run(
        [&smollm2, &smollm2],
        [
            Decoder::CandleTransformers,
            Decoder::Engine(BackendKind::Candle),
        ],
        &PLAN,
    )
    .expect("paired run");
    assert_eq!(paired.rounds.len(), PLAN.rounds);
    for side in 0..2 {
        let rates = paired.decode_rates(side);
        assert!(rates.iter().all(|r| r.is_finite() && *r > 0.0), "{rates:?}");
    }
    // SmolLM2 is candle-transformers' quantized_llama on both sides: the same work per token.
    if !paired.contended() {
        let ratios = paired.decode_ratios();
        let median = edgebench::core::stats::summarize(&ratios)
            .expect("finite ratios")
            .median;
        assert!((0.67..1.5).contains(&median), "{ratios:?}");
    }
    let profile = edgebench::engines::candle_matmul_profile(&smollm2, 2, 1).expect("profile");
    let summary = edgebench_gguf::validate_file(&smollm2).expect("valid file");
    // Every 2-D tensor is multiplied in a decode step (SmolLM2 ties its output to the
    // embedding, so the embedding is one of them).
    let matrices = summary.tensors.iter().filter(|t| t.dims.len() == 2).count();
    assert_eq!(profile.iter().map(|s| s.tensors).sum::<usize>(), matrices);
    let q4_1 = profile
        .iter()
        .find(|s| s.storage == "Q4_1")
        .expect("Q4_1 matrices");
    assert!(q4_1.seconds_per_token > 0.0 && q4_1.bytes > 0, "{q4_1:?}");
}
