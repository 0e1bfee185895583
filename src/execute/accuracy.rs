//! An accuracy case: loads the model once and scores every selected question (smoke mode: the
//! first few of each subject) by log-likelihood.

use std::path::Path;
use std::time::Instant;

use edgebench_core::{Case, ModelEntry};

use super::{Inputs, SessionFacts, case_error};
use crate::error::RunError;
use crate::{device_facts, engines, host, preflight};

/// The scored questions, in the set's order.
#[derive(Debug, Clone)]
pub struct Scored {
    pub questions: Vec<crate::accuracy::ScoredQuestion>,
    pub session: SessionFacts,
}

pub fn score(
    inputs: Inputs<'_>,
    case: &Case,
    entry: &ModelEntry,
    model_path: &Path,
    settings: &edgebench_core::scenario::Accuracy,
) -> Result<Scored, RunError> {
    // The scorer itself refuses twins too, whatever called it (preflight ignores such cases).
    if let Some(reason) = entry.accuracy_refusal() {
        return Err(case_error(case, reason));
    }
    let s = &case.scenario;
    let dir = crate::accuracy::set_dir(inputs.root, &s.dataset);
    let limit = inputs
        .mode
        .smoke
        .then_some(crate::accuracy::SMOKE_QUESTIONS_PER_SUBJECT);
    let set = crate::accuracy::load(&dir, settings, limit)
        .map_err(|e| case_error(case, e.to_string()))?;
    let backend = engines::engine(case.backend).map_err(|e| case_error(case, e.to_string()))?;
    let estimate = preflight::estimated_memory(backend, case, entry, model_path);
    let vocabulary = engines::reference_vocabulary(model_path)?;
    host::reset_peak_rss();
    let load_start = Instant::now();
    let mut session = backend.load(model_path, &preflight::load_options(case))?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1e3;
    let cpu_before = device_facts::process_cpu_ms();
    let questions = crate::accuracy::evaluate(
        session.as_mut(),
        vocabulary.as_ref(),
        &set,
        settings.few_shot,
        case.context(),
    )
    .map_err(|e| case_error(case, e.to_string()))?;
    let cpu_time_ms = cpu_before
        .zip(device_facts::process_cpu_ms())
        .map(|(a, b)| b - a);
    let session = SessionFacts {
        load_ms,
        memory: session.memory(),
        effective: session.effective(),
        cpu_time_ms,
        peak_rss_bytes: host::peak_rss_bytes(),
        estimate,
        // lm-evaluation-harness's MMLU prompt, as it is.
        prompt_format: Some(edgebench_core::scenario::PromptFormat::Raw),
        remote: None,
    };
    Ok(Scored { questions, session })
}
