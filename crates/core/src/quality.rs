//! Output quality as llama.cpp's `llama-perplexity --kl-divergence` measures it: a fixed text
//! is fed teacher-forced (the text's own tokens, never sampled ones) through a reference
//! configuration and a candidate of the same weights, and their next-token distributions are
//! compared position by position: KL divergence (reference ‖ candidate), whether the most
//! likely token is the same, and each side's negative log-likelihood of the text's real next
//! token (so the change in log-perplexity).
//!
//! Chunking follows `llama-perplexity`: the text is cut into chunks of `context` tokens, the
//! first token of each chunk becomes BOS when the model adds one, and only the second half of
//! each chunk is scored (every scored position has at least `context / 2` tokens of context).

use crate::stats;

/// Mean KLD up to which a variant counts as "q8_0-level": llama.cpp measured an f16 → q8_0
/// K/V cache at about +0.001 and Q8_0 weights at 0.0014 on LLaMA-3-8B (PR #7412, #5962);
/// twice the former leaves room for a smaller model's noisier distributions.
pub const Q8_LEVEL_MEAN_KLD: f64 = 0.002;

/// How one position's two distributions compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionQuality {
    /// KL(reference ‖ candidate) in nats.
    pub kld: f64,
    /// Whether both put their largest probability on the same token.
    pub same_top1: bool,
    /// −ln p(next token) under the reference.
    pub reference_nll: f64,
    /// −ln p(next token) under the candidate.
    pub candidate_nll: f64,
}

/// Why two positions can't be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QualityError {
    #[error(
        "the reference has {reference} logits and the candidate {candidate}: not the same vocabulary"
    )]
    VocabularyMismatch { reference: usize, candidate: usize },
    #[error("token {token} is outside the {size}-entry vocabulary")]
    TokenOutOfRange { token: usize, size: usize },
    #[error("the logits hold no finite value")]
    NoFiniteLogit,
}

/// `ln Σ exp(x)` and the index of the largest `x` (first on ties), in f64.
fn log_sum_exp_and_argmax(logits: &[f32]) -> Option<(f64, usize)> {
    let (mut best, mut best_index) = (f32::NEG_INFINITY, None);
    for (i, &x) in logits.iter().enumerate() {
        if x > best {
            best = x;
            best_index = Some(i);
        }
    }
    let index = best_index?;
    let max = f64::from(best);
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    Some((max + sum.ln(), index))
}

/// Compares the raw logits two configurations gave at one position, where the text's next
/// token is `next`.
pub fn compare_position(
    reference: &[f32],
    candidate: &[f32],
    next: usize,
) -> Result<PositionQuality, QualityError> {
    if reference.len() != candidate.len() {
        return Err(QualityError::VocabularyMismatch {
            reference: reference.len(),
            candidate: candidate.len(),
        });
    }
    if next >= reference.len() {
        return Err(QualityError::TokenOutOfRange {
            token: next,
            size: reference.len(),
        });
    }
    let (ref_lse, ref_top) =
        log_sum_exp_and_argmax(reference).ok_or(QualityError::NoFiniteLogit)?;
    let (cand_lse, cand_top) =
        log_sum_exp_and_argmax(candidate).ok_or(QualityError::NoFiniteLogit)?;
    let mut kld = 0.0;
    for (&r, &c) in reference.iter().zip(candidate) {
        let log_p = f64::from(r) - ref_lse;
        let p = log_p.exp();
        if p > 0.0 {
            kld += p * (log_p - (f64::from(c) - cand_lse));
        }
    }
    Ok(PositionQuality {
        // Rounding can leave a hair below zero for identical distributions.
        kld: kld.max(0.0),
        same_top1: ref_top == cand_top,
        reference_nll: ref_lse - f64::from(reference[next]),
        candidate_nll: cand_lse - f64::from(candidate[next]),
    })
}

/// One configuration's quality against its reference over a whole text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualitySummary {
    /// Positions scored.
    pub tokens: usize,
    pub mean_kld: f64,
    /// Standard error of the mean KLD (what llama-perplexity prints after "±").
    pub kld_stderr: f64,
    /// 95% interval of the mean KLD (normal approximation; thousands of positions).
    pub kld_ci95: (f64, f64),
    pub median_kld: f64,
    pub p99_kld: f64,
    pub max_kld: f64,
    /// Share of positions with the same most likely token, 0 to 1.
    pub same_top1: f64,
    /// Its binomial standard error.
    pub same_top1_stderr: f64,
    /// Mean NLL of the text's tokens under the candidate minus under the reference:
    /// ln(PPL(candidate) / PPL(reference)).
    pub delta_log_ppl: f64,
    pub reference_ppl: f64,
    pub candidate_ppl: f64,
}

/// Summarises the scored positions; `None` when there are none.
#[must_use]
pub fn summarize(positions: &[PositionQuality]) -> Option<QualitySummary> {
    let n = positions.len();
    if n == 0 {
        return None;
    }
    let klds: Vec<f64> = positions.iter().map(|p| p.kld).collect();
    let spread = stats::summarize(&klds)?;
    let stderr = if n > 1 {
        spread.stddev / (n as f64).sqrt()
    } else {
        0.0
    };
    let z = stats::normal_quantile(0.975);
    let same = positions.iter().filter(|p| p.same_top1).count() as f64 / n as f64;
    let mean_ref_nll = positions.iter().map(|p| p.reference_nll).sum::<f64>() / n as f64;
    let mean_cand_nll = positions.iter().map(|p| p.candidate_nll).sum::<f64>() / n as f64;
    let mut sorted = klds;
    sorted.sort_by(f64::total_cmp);
    Some(QualitySummary {
        tokens: n,
        mean_kld: spread.mean,
        kld_stderr: stderr,
        kld_ci95: (
            (spread.mean - z * stderr).max(0.0),
            spread.mean + z * stderr,
        ),
        median_kld: stats::percentile_sorted(&sorted, 50.0),
        p99_kld: stats::percentile_sorted(&sorted, 99.0),
        max_kld: sorted[n - 1],
        same_top1: same,
        same_top1_stderr: (same * (1.0 - same) / n as f64).sqrt(),
        delta_log_ppl: mean_cand_nll - mean_ref_nll,
        reference_ppl: mean_ref_nll.exp(),
        candidate_ppl: mean_cand_nll.exp(),
    })
}

/// Whether a mean KLD is within the q8_0-level band ([`Q8_LEVEL_MEAN_KLD`]).
#[must_use]
pub fn q8_level(mean_kld: f64) -> bool {
    mean_kld <= Q8_LEVEL_MEAN_KLD
}

/// The text cut as `llama-perplexity` cuts it: consecutive chunks of `context` tokens (a
/// partial last chunk is dropped), at most `max_chunks` of them, each starting with `bos`
/// in place of its first token when the model adds one.
#[must_use]
pub fn chunks<T: Copy>(
    tokens: &[T],
    context: usize,
    bos: Option<T>,
    max_chunks: usize,
) -> Vec<Vec<T>> {
    if context < 2 {
        return Vec::new();
    }
    tokens
        .chunks_exact(context)
        .take(max_chunks)
        .map(|chunk| {
            let mut chunk = chunk.to_vec();
            if let Some(bos) = bos {
                chunk[0] = bos;
            }
            chunk
        })
        .collect()
}

/// The first scored position of a chunk of `context` tokens: positions `context / 2` to
/// `context - 2` are scored, each predicting the token after it.
#[must_use]
pub fn first_scored(context: usize) -> usize {
    context / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(reference: &[f32], candidate: &[f32], next: usize) -> PositionQuality {
        compare_position(reference, candidate, next).expect("comparable")
    }

    #[test]
    fn identical_distributions_have_zero_divergence_and_the_same_top_token() {
        let p = position(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], 0);
        assert_eq!(p.kld, 0.0);
        assert!(p.same_top1);
        assert!((p.reference_nll - p.candidate_nll).abs() < 1e-12);
    }

    #[test]
    fn a_shift_of_all_logits_changes_nothing() {
        let p = position(&[1.0, 2.0, 3.0], &[11.0, 12.0, 13.0], 2);
        assert!(p.kld < 1e-12, "{}", p.kld);
    }

    #[test]
    fn divergence_matches_the_closed_form_for_two_tokens() {
        // Reference p = (0.5, 0.5), candidate q = (0.2689, 0.7311) (logits 0 and 1).
        let p = position(&[0.0, 0.0], &[0.0, 1.0], 0);
        let q0 = 1.0 / (1.0 + 1f64.exp());
        let expected = 0.5 * (0.5 / q0).ln() + 0.5 * (0.5 / (1.0 - q0)).ln();
        assert!((p.kld - expected).abs() < 1e-9, "{} vs {expected}", p.kld);
        assert!(
            !p.same_top1,
            "ties go to the first token; the candidate prefers the second"
        );
        assert!((p.reference_nll - 2f64.ln()).abs() < 1e-9);
        assert!((p.candidate_nll - (-q0.ln())).abs() < 1e-6);
    }

    #[test]
    fn divergence_grows_with_the_damage() {
        let reference = [2.0, 1.0, 0.5, -1.0];
        let slight = position(&reference, &[2.01, 1.0, 0.49, -1.0], 0).kld;
        let heavy = position(&reference, &[0.0, 1.0, 2.5, -1.0], 0).kld;
        assert!(0.0 < slight && slight < heavy, "{slight} {heavy}");
    }

    #[test]
    fn mismatched_inputs_are_errors() {
        assert_eq!(
            compare_position(&[0.0, 1.0], &[0.0], 0),
            Err(QualityError::VocabularyMismatch {
                reference: 2,
                candidate: 1
            })
        );
        assert_eq!(
            compare_position(&[0.0, 1.0], &[0.0, 1.0], 2),
            Err(QualityError::TokenOutOfRange { token: 2, size: 2 })
        );
        assert_eq!(
            compare_position(&[f32::NAN], &[f32::NAN], 0),
            Err(QualityError::NoFiniteLogit)
        );
    }

    #[test]
    fn summary_reports_mean_tail_top1_share_and_perplexity_change() {
        let mut positions = vec![
            PositionQuality {
                kld: 0.0,
                same_top1: true,
                reference_nll: 1.0,
                candidate_nll: 1.0,
            };
            99
        ];
        positions.push(PositionQuality {
            kld: 1.0,
            same_top1: false,
            reference_nll: 1.0,
            candidate_nll: 2.0,
        });
        let s = summarize(&positions).expect("positions");
        assert_eq!(s.tokens, 100);
        assert!((s.mean_kld - 0.01).abs() < 1e-12);
        assert_eq!(s.max_kld, 1.0);
        assert_eq!(s.median_kld, 0.0);
        assert!((s.same_top1 - 0.99).abs() < 1e-12);
        assert!((s.delta_log_ppl - 0.01).abs() < 1e-12);
        assert!((s.reference_ppl - 1f64.exp()).abs() < 1e-9);
        assert!(s.kld_ci95.0 <= s.mean_kld && s.mean_kld < s.kld_ci95.1);
        assert!(s.kld_stderr > 0.0);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn chunks_follow_llama_perplexity() {
        let tokens: Vec<u32> = (10..21).collect();
        let c = chunks(&tokens, 4, Some(1), 10);
        assert_eq!(c, vec![vec![1, 11, 12, 13], vec![1, 15, 16, 17]]);
        assert_eq!(chunks(&tokens, 4, None, 1), vec![vec![10, 11, 12, 13]]);
        assert!(chunks(&tokens, 1, None, 10).is_empty());
        assert_eq!(first_scored(512), 256);
    }

    #[test]
    fn the_q8_band_is_inclusive() {
        assert!(q8_level(Q8_LEVEL_MEAN_KLD));
        assert!(!q8_level(0.0021));
    }
}
