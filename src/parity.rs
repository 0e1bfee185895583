//! Cross-backend parity: do two engines compute the same model from the same GGUF file?
//!
//! Both engines get the same token ids (the reference vocabulary's). Three measurements:
//! - **first token**: the greedy token after each dataset prompt, on both engines;
//! - **teacher-forced top-1**: the reference generates N greedy tokens; the candidate is fed the
//!   same prompt and then the reference's tokens, and at each position its greedy choice is
//!   compared with the reference's. Feeding the reference's tokens keeps one early flip from
//!   turning every later position into a disagreement;
//! - **log-prob distance**: max |log-softmax(reference) − log-softmax(candidate)| at the last
//!   position of a fixed prompt, over the whole vocabulary and over the reference's top 10.
//!
//! Every comparison is a row in the `parity` table.

use edgebench_core::quant::Quant;
use std::path::Path;

use edgebench_backend::{Backend, LoadOptions, TokenId};
use edgebench_core::ModelEntry;

use crate::engines::reference_vocabulary;
use crate::error::RunError;
use crate::execute::measure::keep_last_tokens;
use crate::prompt_set::Prompt;
use crate::record::{self, PromptParity};
use crate::runner::Runner;

/// The fixed prompt whose last-position distributions are compared.
pub const FIXED_PROMPT: &str =
    "The quick brown fox jumps over the lazy dog. The capital of France is";

/// How much to compare.
#[derive(Debug, Clone)]
pub struct ParityPlan {
    /// Prompt sets: (name, prompts). Each prompt's first turn is used.
    pub prompt_sets: Vec<(String, Vec<Prompt>)>,
    /// Longer prompts keep their last tokens (after BOS), so every engine's window fits.
    pub max_prompt_tokens: usize,
    /// Prompts (from the start of each set) that also get the teacher-forced comparison.
    pub forced_prompts_per_set: usize,
    /// N: tokens compared per teacher-forced prompt.
    pub forced_tokens: usize,
    pub threads: u32,
}

/// One model's parity, summed over its prompts.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelParity {
    pub model: String,
    pub quant: String,
    pub prompts: usize,
    pub first_token_matches: usize,
    pub forced_compared: usize,
    pub forced_matches: usize,
    pub max_abs_logprob_diff: f64,
    /// The same over the reference's 10 most likely tokens: the part of the distribution that
    /// sampling actually draws from.
    pub top10_abs_logprob_diff: f64,
    pub fixed_top1_match: bool,
}

impl ModelParity {
    #[must_use]
    pub fn first_token_agreement(&self) -> f64 {
        ratio(self.first_token_matches, self.prompts)
    }

    #[must_use]
    pub fn forced_agreement(&self) -> f64 {
        ratio(self.forced_matches, self.forced_compared)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let log_sum = sum.ln();
    logits
        .iter()
        .map(|&l| f64::from(l - max) - log_sum)
        .collect()
}

/// Max |Δ log-softmax| over the vocabulary both engines share, and over the reference's `k`
/// most likely tokens.
#[must_use]
pub fn logprob_distance(reference: &[f32], candidate: &[f32], k: usize) -> (f64, f64) {
    let n = reference.len().min(candidate.len());
    let (la, lb) = (log_softmax(&reference[..n]), log_softmax(&candidate[..n]));
    let diff: Vec<f64> = la.iter().zip(&lb).map(|(x, y)| (x - y).abs()).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| la[j].total_cmp(&la[i]));
    let top = order.iter().take(k).map(|&i| diff[i]).fold(0.0, f64::max);
    (diff.iter().copied().fold(0.0, f64::max), top)
}

/// The prompt sets parity compares on, in this order.
pub const PROMPT_SETS: &[&str] = &[
    "code_generation",
    "math_reasoning",
    "batch_concurrent",
    "multi_turn",
    "long_context",
];

/// The plan `cargo test --test it -- parity` and `edgebench-parity` use: the first
/// `prompts_per_set` prompts (all when `None`) of each of [`PROMPT_SETS`], the last 256 tokens
/// of long ones, 32 teacher-forced tokens on the first 2 prompts of each set, 2 threads.
pub fn standard_plan(
    root: &Path,
    prompts_per_set: Option<usize>,
) -> Result<ParityPlan, crate::prompt_set::DatasetError> {
    let prompt_sets = PROMPT_SETS
        .iter()
        .map(|s| {
            let file = format!("datasets/{s}.jsonl");
            let mut prompts = crate::prompt_set::load(&root.join(&file))?;
            if let Some(n) = prompts_per_set {
                prompts.truncate(n);
            }
            Ok((file, prompts))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ParityPlan {
        prompt_sets,
        // Long documents keep their last 256 tokens: enough to compare, short enough for CI.
        max_prompt_tokens: 256,
        forced_prompts_per_set: 2,
        forced_tokens: 32,
        threads: 2,
    })
}

/// Compares `candidate` with `reference` on the model at `path` and records every prompt.
pub fn compare(
    runner: &mut Runner,
    entry: &ModelEntry,
    quant: Quant,
    path: &Path,
    reference: &dyn Backend,
    candidate: &dyn Backend,
    plan: &ParityPlan,
) -> Result<ModelParity, RunError> {
    // No validation here: the vocabulary and both engines' loads validate the file first
    // (`edgebench_backend::check_model_file`), naming it and the byte offset.
    let model_id = runner.register_model(entry, quant, path)?;
    let vocabulary = reference_vocabulary(path)?;
    let bos = vocabulary.tokenize("", true)?.first().copied();
    let tokenize = |text: &str| -> Result<Vec<TokenId>, RunError> {
        let mut ids = vocabulary.tokenize(text, true)?;
        keep_last_tokens(&mut ids, plan.max_prompt_tokens, bos);
        Ok(ids)
    };
    let context = (plan.max_prompt_tokens + plan.forced_tokens + 1) as u32;
    let options = LoadOptions {
        threads: plan.threads,
        context,
        positions_needed: context,
        ..LoadOptions::default()
    };
    for engine in [reference, candidate] {
        if let Some(why) = engine.refuses(path, &options) {
            return Err(RunError::Case {
                case: format!("parity {} {quant}", entry.id),
                message: format!("{} refuses: {why}", engine.kind().as_str()),
            });
        }
    }
    let mut ref_session = reference.load(path, &options)?;
    let mut cand_session = candidate.load(path, &options)?;
    let mut parity = ModelParity {
        model: entry.id.clone(),
        quant: quant.to_string(),
        prompts: 0,
        first_token_matches: 0,
        forced_compared: 0,
        forced_matches: 0,
        max_abs_logprob_diff: 0.0,
        top10_abs_logprob_diff: 0.0,
        fixed_top1_match: false,
    };
    let engines = (reference.kind(), candidate.kind());
    let store = |runner: &Runner, compared: &PromptParity<'_>| {
        let row = record::parity_row(runner.invocation(), model_id, engines, compared);
        runner.store().insert_parity(&row)
    };

    let fixed = tokenize(FIXED_PROMPT)?;
    let a = ref_session.prompt_logits(0, &fixed)?;
    let b = cand_session.prompt_logits(0, &fixed)?;
    // The engines' own greedy rule (first maximum, NaN never picked), not a second one.
    let (ta, tb) = (edgebench_backend::argmax(&a), edgebench_backend::argmax(&b));
    (parity.max_abs_logprob_diff, parity.top10_abs_logprob_diff) = logprob_distance(&a, &b, 10);
    parity.fixed_top1_match = ta.is_some() && ta == tb;
    store(
        runner,
        &PromptParity {
            set: "fixed",
            prompt_id: "fixed",
            prompt_tokens: fixed.len(),
            first_token_match: parity.fixed_top1_match,
            compared_tokens: 0,
            agreeing_tokens: 0,
            logprob_distance: Some((parity.max_abs_logprob_diff, parity.top10_abs_logprob_diff)),
            top1: (ta.map(|t| t as i64), tb.map(|t| t as i64)),
        },
    )?;

    for (set, prompts) in &plan.prompt_sets {
        for (index, prompt) in prompts.iter().enumerate() {
            let Some(text) = prompt.turns.first() else {
                continue;
            };
            let ids = tokenize(text)?;
            ref_session.reset(0)?;
            cand_session.reset(0)?;
            let r0 = ref_session.prefill(&[(0, &ids)])?[0];
            let c0 = cand_session.prefill(&[(0, &ids)])?[0];
            let mut compared = 0;
            let mut agreeing = 0;
            if index < plan.forced_prompts_per_set {
                // Reference tokens r0..rN-1, candidate's choice at each of those positions.
                let (mut r, mut c) = (r0, c0);
                for step in 0..plan.forced_tokens {
                    compared += 1;
                    agreeing += usize::from(r == c);
                    if step + 1 == plan.forced_tokens {
                        break;
                    }
                    let fed = r;
                    r = ref_session.decode_step(&[(0, fed)])?[0];
                    c = cand_session.decode_step(&[(0, fed)])?[0];
                }
            }
            parity.prompts += 1;
            parity.first_token_matches += usize::from(r0 == c0);
            parity.forced_compared += compared;
            parity.forced_matches += agreeing;
            store(
                runner,
                &PromptParity {
                    set,
                    prompt_id: &prompt.id,
                    prompt_tokens: ids.len(),
                    first_token_match: r0 == c0,
                    compared_tokens: compared,
                    agreeing_tokens: agreeing,
                    logprob_distance: None,
                    top1: (Some(i64::from(r0)), Some(i64::from(c0))),
                },
            )?;
        }
    }
    Ok(parity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprob_distance_is_zero_for_shifted_logits_and_sees_a_changed_top_token() {
        let a = [1.0_f32, 2.0, 3.0, -5.0];
        let shifted: Vec<f32> = a.iter().map(|x| x + 7.0).collect();
        let (all, top) = logprob_distance(&a, &shifted, 2);
        assert!(all < 1e-9 && top < 1e-9, "softmax ignores a constant shift");
        let changed = [1.0_f32, 2.0, 3.0, -1.0];
        let (all, top) = logprob_distance(&a, &changed, 2);
        assert!(all > 3.9, "the tail token moved by about 4 nats: {all}");
        assert!(top < all, "the top-2 tokens moved less: {top}");
    }
}
