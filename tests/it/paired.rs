//! `edgebench::paired` on the real engines: two files in one process, alternating rounds.

use crate::common::model;
use edgebench::paired::{PairError, PairPlan, run};

const PLAN: PairPlan = PairPlan {
    threads: 2,
    prompt_tokens: 16,
    generate_tokens: 8,
    rounds: 4,
};

backend_test!(a_file_paired_with_itself_runs_at_its_own_speed, |backend| {
    let smollm2 = model("smollm2-135m", "Q4_1");
    let paired = run(backend, [&smollm2, &smollm2], &PLAN).expect("paired run");
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
    let engine = crate::common::engine(edgebench::backend::BackendKind::LlamaCpp);
    let smollm2 = model("smollm2-135m", "Q4_1");
    let one_token = PairPlan {
        generate_tokens: 1,
        ..PLAN
    };
    assert!(matches!(
        run(engine, [&smollm2, &smollm2], &one_token),
        Err(PairError::Plan)
    ));
    let missing = std::path::Path::new("models/no-such-file.gguf");
    let err = run(engine, [&smollm2, missing], &PLAN).expect_err("missing file");
    assert!(err.to_string().contains("no-such-file.gguf"), "{err}");
}
