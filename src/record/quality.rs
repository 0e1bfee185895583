//! A quality pass as its storage row (`runs.quality`, migration 0014), and a run's output
//! integrity (`runs.integrity`, migration 0015).

use edgebench_store::QualityRow;

use crate::execute::quality::QualityRun;

/// Version of `runs.quality`'s JSON.
pub const QUALITY_FORMAT: u32 = 1;

pub(super) fn row(q: &QualityRun) -> QualityRow {
    let s = &q.summary;
    QualityRow {
        json: serde_json::json!({
            "format": QUALITY_FORMAT,
            "reference": q.reference,
            "reference_quant": q.reference_quant.map(|quant| quant.as_str()),
            "corpus": q.corpus,
            "corpus_sha256": q.corpus_sha256,
            "context": q.context,
            "chunks": q.chunks,
            "tokens": s.tokens,
            "mean_kld": s.mean_kld,
            "kld_stderr": s.kld_stderr,
            "kld_ci95": [s.kld_ci95.0, s.kld_ci95.1],
            "median_kld": s.median_kld,
            "p99_kld": s.p99_kld,
            "max_kld": s.max_kld,
            "same_top1": s.same_top1,
            "same_top1_stderr": s.same_top1_stderr,
            "delta_log_ppl": s.delta_log_ppl,
            "reference_ppl": s.reference_ppl,
            "candidate_ppl": s.candidate_ppl,
            "seconds": q.seconds,
        })
        .to_string(),
        mean_kld: s.mean_kld,
        same_top1: s.same_top1,
    }
}

/// Version of `runs.integrity`'s JSON.
pub const INTEGRITY_FORMAT: u32 = 1;

pub(super) fn integrity_row(i: &edgebench_core::integrity::Integrity) -> (String, bool) {
    (
        serde_json::json!({
            "format": INTEGRITY_FORMAT,
            "turns": i.turns,
            "greedy": i.greedy,
            "inconsistent_first_tokens": i.inconsistent_first_tokens,
            "wrong_counts": i.wrong_counts,
            "expected_tokens": i.expected_tokens,
            "verdict": i.verdict().to_string(),
        })
        .to_string(),
        i.passed(),
    )
}
