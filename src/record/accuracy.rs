//! Accuracy runs as rows: every scored question (its answer row and a request row carrying its
//! prompt-evaluation timing), the accuracy metrics overall and per subject.

use edgebench_core::measure::{self, StopReason};
use edgebench_core::mmlu;
use edgebench_store::{AnswerRow, MetricRow, RequestRow};

use super::{Recorded, passed};
use crate::accuracy::ScoredQuestion;
use crate::execute::accuracy::Scored;
use crate::execute::measure::rate;
use crate::execute::serving::Outcome;
use crate::outcome::{AccuracyReport, CaseReport};

pub(super) fn scored(s: Scored, seed: u64) -> Recorded {
    let answers: Vec<edgebench_core::mmlu::Answer> =
        s.questions.iter().map(|x| x.answer.clone()).collect();
    let scores = edgebench_core::mmlu::score(&answers);
    let mut metrics = Vec::new();
    let mut proportion = |metric: String, hits: Vec<bool>| {
        if let Some(m) = measure::summarize_proportion(&hits, seed) {
            metrics.push(MetricRow {
                metric,
                ..MetricRow::from_summary(&m)
            });
        }
    };
    proportion(
        "mmlu_acc".into(),
        answers.iter().map(|a| a.predicted() == a.answer).collect(),
    );
    proportion(
        "mmlu_acc_norm".into(),
        answers
            .iter()
            .map(|a| a.predicted_norm() == a.answer)
            .collect(),
    );
    for subject in scores.per_subject.keys() {
        proportion(
            format!("mmlu_acc:{subject}"),
            answers
                .iter()
                .filter(|a| &a.subject == subject)
                .map(|a| a.predicted() == a.answer)
                .collect(),
        );
    }
    let rates: Vec<f64> = s
        .questions
        .iter()
        .filter(|x| x.elapsed_ns > 0)
        .map(|x| rate(u64::from(x.prompt_tokens), x.elapsed_ns))
        .collect();
    if let Some(m) = measure::summarize_metric("prefill_tokens_per_s", "tokens/s", &rates, seed) {
        metrics.push(MetricRow::from_summary(&m));
    }
    let prefill_median = metrics
        .iter()
        .find(|m| m.metric == "prefill_tokens_per_s")
        .map_or(0.0, |m| m.median);
    let answer_rows: Vec<AnswerRow> = s.questions.iter().map(answer_row).collect();
    let requests: Vec<RequestRow> = s
        .questions
        .iter()
        .zip(&answer_rows)
        .enumerate()
        .map(|(i, (q, row))| scoring_request_row(i, q, row))
        .collect();
    let report = CaseReport {
        run_id: String::new(),
        measured_requests: s.questions.len(),
        measured_repetitions: 1,
        generation_tokens_per_s: 0.0,
        prefill_tokens_per_s: prefill_median,
        rejected: 0,
        stop_reason: StopReason::Fixed,
        roofline_fraction: None,
        estimated_peak_bytes: s.session.estimate.total(),
        peak_rss_bytes: s.session.peak_rss_bytes,
        first_output: requests
            .first()
            .map(|r| r.output_text.clone())
            .unwrap_or_default(),
        first_output_tokens: Vec::new(),
        accuracy: Some(AccuracyReport {
            n: scores.micro.n,
            acc: scores.micro.acc,
            acc_stderr: scores.micro.acc_stderr,
            acc_norm: scores.micro.acc_norm,
            macro_acc: scores.macro_acc,
            predicted: answer_rows.iter().map(|r| r.predicted.as_str()).collect(),
        }),
    };
    Recorded {
        end: passed(&s.session, StopReason::Fixed, metrics),
        requests,
        answers: answer_rows,
        report,
    }
}

/// The stored answer to one question: enough to re-score any subset later.
fn answer_row(q: &ScoredQuestion) -> AnswerRow {
    let a = &q.answer;
    AnswerRow {
        subject: a.subject.clone(),
        question_index: q.index as u32,
        question_sha256: q.digest.clone(),
        answer: mmlu::LETTERS[a.answer].to_owned(),
        predicted: mmlu::LETTERS[a.predicted()].to_owned(),
        predicted_norm: mmlu::LETTERS[a.predicted_norm()].to_owned(),
        logprobs: a.logprobs,
        continuation_bytes: a.continuation_bytes.map(|b| b as u32),
        few_shot: q.few_shot,
        prompt_tokens: q.prompt_tokens,
    }
}

/// One question's scoring as a request row: prompt evaluation only (one forward pass per
/// distinct prefix), nothing generated.
fn scoring_request_row(index: usize, q: &ScoredQuestion, answer: &AnswerRow) -> RequestRow {
    RequestRow {
        repetition: 0,
        warmup: false,
        request_index: index as u32,
        prompt_id: format!("{}#{}", q.answer.subject, q.index),
        turn: 0,
        seq: 0,
        prompt_tokens: q.prompt_tokens,
        generated_tokens: 0,
        queue_ns: 0,
        prefill_ns: q.elapsed_ns,
        ttft_ns: q.elapsed_ns,
        decode_ns: 0,
        e2e_ns: q.elapsed_ns,
        reset_ns: 0,
        status: Outcome::Completed.as_str().into(),
        priority: edgebench_core::schedule::Priority::Normal.as_str().into(),
        sent_ns: 0,
        output_sha256: edgebench_core::sha256_hex(format!("{:?}", q.answer.logprobs).as_bytes()),
        output_text: format!("{} (answer {})", answer.predicted, answer.answer),
        token_latencies_ns: Vec::new(),
        source: None,
        fallback_reason: None,
        fallback_ns: None,
        cost_usd: None,
        error: None,
    }
}
