//! Running a case once its preflight passed: load the model, serve or score, and return a typed
//! outcome. Nothing here writes to the store; `record` maps an outcome to rows.
//!
//! - `serving`: the serving loop (scheduler, continuous batching) on one engine session.
//! - `measure`: speed cases, repetitions with adaptive stopping, counters, energy, roofline.
//! - `accuracy`: multiple-choice cases scored by log-likelihood.
//! - `sustained`: one sequence decoding for minutes, sampled at 1 Hz, judged for throttling.
//! - `goodput`: the open loop at a sweep of arrival rates against latency targets.
//! - `quality`: a speed case's KLD against a reference configuration over a fixed text.

pub mod accuracy;
pub mod goodput;
pub mod hybrid;
pub mod measure;
pub mod quality;
pub mod serving;
pub mod sustained;

use std::path::Path;

use edgebench_backend::{Effective, MemoryReport};
use edgebench_core::scenario::{PromptFormat, Workload};
use edgebench_core::{Case, ModelEntry};

use crate::error::RunError;
use crate::plan::{Mode, RunPlan};
use crate::preflight::MemoryEstimate;

/// What the engine reported about the session a case ran on.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionFacts {
    pub load_ms: f64,
    pub memory: MemoryReport,
    pub effective: Effective,
    /// CPU time of this process over the measured part.
    pub cpu_time_ms: Option<f64>,
    /// Peak RSS of this process (reset before loading).
    pub peak_rss_bytes: Option<u64>,
    pub estimate: MemoryEstimate,
    /// How the prompts reached the model (`None` where there were none to format).
    pub prompt_format: Option<PromptFormat>,
    /// What an HTTP session learned about its server.
    pub remote: Option<edgebench_backend::RemoteFacts>,
}

/// What a generating case (speed, sustained, goodput) prepares before its model loads: the
/// engine, its load options, the memory estimate, the reference vocabulary and the prompt
/// format.
pub(crate) struct Prepared {
    pub backend: &'static dyn edgebench_backend::Backend,
    pub options: edgebench_backend::LoadOptions,
    pub estimate: MemoryEstimate,
    pub vocabulary: Box<dyn edgebench_backend::Vocabulary>,
    pub format: PromptFormat,
    /// The server launched for an `[endpoint]` with `launch = true`; stopped when dropped.
    pub _server: Option<crate::serve::launch::Launched>,
}

impl Prepared {
    pub(crate) fn new(
        inputs: Inputs<'_>,
        case: &Case,
        entry: &ModelEntry,
        model_path: &Path,
    ) -> Result<Self, RunError> {
        let backend =
            crate::engines::engine(case.backend).map_err(|e| case_error(case, e.to_string()))?;
        let vocabulary =
            crate::engines::reference_vocabulary_for(model_path, entry.chat_template.as_deref())?;
        let mut options = crate::preflight::load_options(case);
        let mut server = None;
        // An HTTP case's own server: launched now, its URL handed to the engine.
        if case.backend == edgebench_core::scenario::BackendKind::Http
            && let Some(endpoint) = options.endpoint.as_mut()
        {
            let (base, launched) =
                hybrid::endpoint_base(inputs, case, entry, model_path, endpoint)?;
            endpoint.target = edgebench_core::scenario::EndpointTarget::Url(base);
            server = launched;
        }
        Ok(Self {
            backend,
            _server: server,
            options,
            estimate: crate::preflight::estimated_memory(backend, case, entry, model_path),
            format: measure::prompt_format(vocabulary.as_ref(), case)?,
            vocabulary,
        })
    }

    /// Loads the model (peak RSS reset first) with the fault switches applied; the session and
    /// the load time in ms.
    pub(crate) fn load(
        &self,
        case: &Case,
        model_path: &Path,
    ) -> Result<(Box<dyn edgebench_backend::Session + 'static>, f64), RunError> {
        crate::host::reset_peak_rss();
        let start = std::time::Instant::now();
        let mut session = self.backend.load(model_path, &self.options)?;
        let load_ms = start.elapsed().as_secs_f64() * 1e3;
        crate::fault::inject_fault_if_asked(&case.name);
        if let Some(slowdown) = crate::fault::decode_slowdown(&case.name) {
            session = crate::fault::slowed(session, slowdown);
        }
        if let Some(after) = crate::fault::first_token_drift(&case.name) {
            session = crate::fault::drifting(session, after);
        }
        Ok((session, load_ms))
    }

    /// The session's facts once the case is done with it (the session is dropped).
    pub(crate) fn facts(
        &self,
        session: Box<dyn edgebench_backend::Session + '_>,
        load_ms: f64,
        cpu_time_ms: Option<f64>,
    ) -> SessionFacts {
        let (memory, effective, remote) = (session.memory(), session.effective(), session.remote());
        drop(session);
        SessionFacts {
            load_ms,
            memory,
            effective,
            cpu_time_ms,
            peak_rss_bytes: crate::host::peak_rss_bytes(),
            estimate: self.estimate,
            prompt_format: Some(self.format),
            remote,
        }
    }
}

/// Everything a case's execution produced, before any storage mapping.
#[derive(Debug, Clone)]
pub enum RunOutcome {
    Measured(measure::Measured),
    Scored(accuracy::Scored),
    Sustained(sustained::SustainedRun),
    Goodput(goodput::GoodputRun),
    Hybrid(hybrid::HybridRun),
}

/// What a case needs from around it: where the project lives, how this invocation runs, and
/// the device's measured memory bandwidth (for the roofline), if any.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub root: &'a Path,
    /// A hybrid case's device is down for this reason: its requests go to the cloud.
    pub device_down: Option<&'a str>,
    pub mode: Mode,
    pub plan: RunPlan,
    pub bandwidth_bytes_per_s: Option<f64>,
    /// The device's idle temperature (the hottest zone when its database was first opened),
    /// for a sustained case's cool-down.
    pub idle_temperature_c: Option<f64>,
}

/// Runs `case` on the model at `model_path`.
pub fn execute(
    inputs: Inputs<'_>,
    case: &Case,
    entry: &ModelEntry,
    model_path: &Path,
) -> Result<RunOutcome, RunError> {
    // The hybrid engine serves every workload itself (device first, then the cloud).
    if case.backend == edgebench_core::scenario::BackendKind::Hybrid {
        return hybrid::run(inputs, case, entry, model_path).map(RunOutcome::Hybrid);
    }
    match &case.scenario.workload {
        Workload::Timed => {
            measure::measure(inputs, case, entry, model_path).map(RunOutcome::Measured)
        }
        Workload::Accuracy(settings) => {
            accuracy::score(inputs, case, entry, model_path, settings).map(RunOutcome::Scored)
        }
        Workload::Goodput(settings) => {
            goodput::run(inputs, case, entry, model_path, settings).map(RunOutcome::Goodput)
        }
        Workload::Sustained(settings) => {
            sustained::run(inputs, case, entry, model_path, *settings).map(RunOutcome::Sustained)
        }
    }
}

fn case_error(case: &Case, message: impl Into<String>) -> RunError {
    RunError::Case {
        case: case.name.clone(),
        message: message.into(),
    }
}
