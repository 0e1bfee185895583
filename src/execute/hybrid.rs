//! The hybrid engine, the seed's `HybridInferenceService`: every request tries the on-device
//! engine (llama.cpp on this host) first and falls back to the cloud endpoint when the device
//! can't serve it: the model failed to load, the memory guard refused it, the engine failed, or
//! its first token came later than the TTFT budget. The scenario's priority (speed / quality /
//! cost) picks the cloud model. Every request records where it was answered, why it left the
//! device, its latencies, tokens and cost (prices from `datasets/roi.toml`); a request the
//! cloud could not answer either is recorded with the cloud's error, never lost.

use std::path::Path;
use std::time::Instant;

use crate::engines::cloud::{Event, Prompt, Remote, Request};
use edgebench_backend::{Session, TokenCounts, Vocabulary};
use edgebench_core::scenario::{CloudRoute, Endpoint, EndpointTarget, Hybrid};
use edgebench_core::{Case, ModelEntry};

use edgebench_core::schedule::Priority;

use super::serving::{self, MonotonicClock, Outcome, WorkItem};
use super::{Inputs, Prepared, SessionFacts, case_error};
use crate::error::RunError;
use crate::preflight::MemoryEstimate;
use crate::prompt_set;
use crate::serve::launch::{LaunchSpec, Launched};

pub use edgebench_core::run_facts::AnswerSource;

/// One request as the hybrid engine served it. Times in ns from the request's start.
#[derive(Debug, Clone)]
pub struct HybridRequest {
    pub repetition: u32,
    pub warmup: bool,
    pub index: u32,
    pub prompt_id: String,
    pub source: AnswerSource,
    pub fallback_reason: Option<String>,
    /// When the request started, from the start of the run.
    pub sent_ns: u64,
    /// First token of the answer that counted (on device or cloud).
    pub ttft_ns: Option<u64>,
    pub e2e_ns: u64,
    /// From the decision to fall back to the cloud's first token.
    pub fallback_ns: Option<u64>,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
    pub token_counts: Option<TokenCounts>,
    pub token_gaps_ns: Vec<u64>,
    pub cost_usd: f64,
    pub error: Option<String>,
    pub text: String,
}

/// The price the cloud's tokens are charged at.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub name: String,
    pub usd_per_million: f64,
    pub source: String,
}

/// A hybrid case.
#[derive(Debug, Clone)]
pub struct HybridRun {
    pub requests: Vec<HybridRequest>,
    pub session: SessionFacts,
    /// Why the device took no request at all (load failure, memory guard), if so.
    pub device_refusal: Option<String>,
    pub route: CloudRoute,
    pub price: Price,
    pub cloud_url: String,
    pub cloud_server: String,
    pub ttft_budget_ms: Option<f64>,
}

/// The cloud's base URL for `endpoint`: its own, or a server launched for this case.
pub(crate) fn endpoint_base(
    inputs: Inputs<'_>,
    case: &Case,
    entry: &ModelEntry,
    model_path: &Path,
    endpoint: &Endpoint,
) -> Result<(String, Option<Launched>), RunError> {
    let model = match &endpoint.target {
        EndpointTarget::Url(url) => return Ok((url.clone(), None)),
        EndpointTarget::Launch { model } => model,
    };
    let (file, model_id, template) = match model {
        None => (
            model_path.to_owned(),
            entry.id.clone(),
            entry.chat_template.clone(),
        ),
        Some(id) => {
            let registry = crate::catalog::load_registry(inputs.root)
                .map_err(|e| case_error(case, e.to_string()))?;
            let other = registry.get(id).ok_or_else(|| {
                case_error(
                    case,
                    format!("endpoint.launch_model `{id}` is not in models.toml"),
                )
            })?;
            let file = other
                .file(case.quant)
                .or_else(|| other.files.first())
                .ok_or_else(|| case_error(case, format!("model `{id}` lists no files")))?;
            (
                crate::paths::models_dir(inputs.root).join(&file.path),
                id.clone(),
                other.chat_template.clone(),
            )
        }
    };
    let s = &case.scenario;
    let spec = LaunchSpec {
        model_file: file,
        model_id,
        chat_template: template,
        threads: case.threads,
        context: case.context(),
        slots: case.slots(),
        queue: s.serving.queue_capacity,
        admission_timeout_ms: s.serving.admission_timeout_ms,
        faults: endpoint.faults,
        seed: s.seed,
        api_key_env: endpoint.api_key_env.clone(),
    };
    let launched = spec
        .launch()
        .map_err(|e| case_error(case, format!("launching the endpoint: {e}")))?;
    Ok((launched.base_url.clone(), Some(launched)))
}

/// The `[[cloud]]` price named `name` in `datasets/roi.toml`.
fn price(root: &Path, name: &str) -> Result<Price, String> {
    let path = root.join("datasets/roi.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: toml::Value =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let clouds = value.get("cloud").and_then(toml::Value::as_array);
    let entry = clouds
        .into_iter()
        .flatten()
        .find(|c| c.get("name").and_then(toml::Value::as_str) == Some(name))
        .ok_or_else(|| {
            format!(
                "{}: no [[cloud]] named `{name}` (hybrid.cloud's price)",
                path.display()
            )
        })?;
    Ok(Price {
        name: name.to_owned(),
        usd_per_million: entry
            .get("usd_per_million")
            .and_then(toml::Value::as_float)
            .ok_or_else(|| format!("{}: `{name}` has no usd_per_million", path.display()))?,
        source: entry
            .get("source")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

/// The on-device side, when it could start.
struct Device {
    prepared: Prepared,
    session: Box<dyn Session>,
    load_ms: f64,
}

pub fn run(
    inputs: Inputs<'_>,
    case: &Case,
    entry: &ModelEntry,
    model_path: &Path,
) -> Result<HybridRun, RunError> {
    let s = &case.scenario;
    let (Some(hybrid), Some(endpoint)) = (&s.hybrid, &s.endpoint) else {
        return Err(case_error(
            case,
            "a hybrid case needs [hybrid] and [endpoint]",
        ));
    };
    let route = hybrid
        .route()
        .cloned()
        .ok_or_else(|| case_error(case, "[hybrid] names no cloud model"))?;
    let price = price(inputs.root, &route.price).map_err(|m| case_error(case, m))?;
    let (base, _server) = endpoint_base(inputs, case, entry, model_path, endpoint)?;
    let cloud = crate::engines::cloud::connect(&base, endpoint)
        .map_err(|e| case_error(case, e.to_string()))?;
    let cloud_server = cloud.server_facts();

    let plan = inputs.plan;
    let prompts = prompt_set::load(&inputs.root.join(&s.dataset))?;
    let prompts: Vec<prompt_set::Prompt> = prompts.into_iter().take(plan.prompts).collect();

    // The device: the memory guard first (a refusal that saves a load), then the load.
    let backend =
        crate::engines::engine(case.backend).map_err(|e| case_error(case, e.to_string()))?;
    let estimate = crate::preflight::estimated_memory(backend, case, entry, model_path);
    // A previous child of this case crashed on the device: the parent says so.
    let mut device_refusal = inputs.device_down.map(str::to_owned).or_else(|| {
        crate::preflight::over_budget(backend, case, entry, model_path)
            .map(|r| format!("memory guard: {r}"))
    });
    let mut device = None;
    if device_refusal.is_none() {
        match Prepared::new(inputs, case, entry, model_path).and_then(|p| {
            let (session, load_ms) = p.load(case, model_path)?;
            Ok(Device {
                prepared: p,
                session,
                load_ms,
            })
        }) {
            Ok(d) => device = Some(d),
            Err(e) => device_refusal = Some(format!("load failed: {e}")),
        }
    }
    let tokenized = match &device {
        Some(d) => Some(super::measure::tokenize(
            d.prepared.vocabulary.as_ref(),
            d.prepared.format,
            s.category,
            &prompts,
            plan.prompt_tokens,
        )?),
        None => None,
    };

    let run_start = Instant::now();
    let mut requests = Vec::new();
    let repetitions = plan.warmup + plan.repetitions;
    let mut index = 0u32;
    for repetition in 0..repetitions {
        let warmup = repetition < plan.warmup;
        // The device serves the whole repetition first, as the scenario's serving table says
        // (clients, slots, queue, admission timeout); what it could not answer goes to the
        // cloud after it, one request at a time.
        let attempts: Vec<Attempt> = match (device.as_mut(), tokenized.as_ref()) {
            (Some(d), Some(tokens)) => on_device(d, case, tokens, repetition, hybrid),
            _ => prompts
                .iter()
                .map(|_| Attempt {
                    result: Err(device_refusal.clone().unwrap_or_default()),
                    spent_ns: 0,
                })
                .collect(),
        };
        for ((p, prompt), attempt) in prompts.iter().enumerate().zip(attempts) {
            let mut record = HybridRequest {
                repetition: repetition.saturating_sub(plan.warmup),
                warmup,
                index,
                prompt_id: prompt.id.clone(),
                source: AnswerSource::OnDevice,
                fallback_reason: None,
                sent_ns: run_start.elapsed().as_nanos() as u64,
                ttft_ns: None,
                e2e_ns: 0,
                fallback_ns: None,
                prompt_tokens: tokenized.as_ref().map_or(0, |t| t[p].turns[0].len() as u32),
                generated_tokens: 0,
                token_counts: None,
                token_gaps_ns: Vec::new(),
                cost_usd: 0.0,
                error: None,
                text: String::new(),
            };
            index += 1;
            match attempt.result {
                Ok(answer) => {
                    record.ttft_ns = Some(answer.ttft_ns);
                    record.e2e_ns = answer.e2e_ns;
                    record.generated_tokens = answer.tokens.len() as u32;
                    record.token_gaps_ns = answer.gaps_ns;
                    record.token_counts = Some(TokenCounts::Vocabulary);
                    if let Some(d) = &device {
                        record.text = d.prepared.vocabulary.detokenize(&answer.tokens)?;
                    }
                    requests.push(record);
                    continue;
                }
                Err(reason) => record.fallback_reason = Some(reason),
            }
            cloud_answer(
                &cloud,
                &route,
                &price,
                endpoint,
                prompt,
                s.generate_tokens,
                s.seed,
                Instant::now(),
                &mut record,
            );
            // The time the device took to fail is part of the user's wait.
            record.e2e_ns += attempt.spent_ns;
            record.ttft_ns = record.ttft_ns.map(|t| t + attempt.spent_ns);
            requests.push(record);
        }
        if inputs.mode.smoke && !warmup {
            break;
        }
    }
    let session = match device {
        Some(d) => {
            let Device {
                prepared,
                session,
                load_ms,
            } = d;
            prepared.facts(session, load_ms, None)
        }
        None => SessionFacts {
            load_ms: 0.0,
            memory: edgebench_backend::MemoryReport::default(),
            effective: edgebench_backend::Effective {
                kv_storage: "none (device refused)".into(),
                flash_attention: false,
                weights: edgebench_backend::WeightsLoading::Remote,
                scheduling: edgebench_backend::Scheduling::Server,
            },
            cpu_time_ms: None,
            peak_rss_bytes: crate::host::peak_rss_bytes(),
            estimate: MemoryEstimate { ..estimate },
            prompt_format: None,
            remote: None,
        },
    };
    Ok(HybridRun {
        requests,
        session,
        device_refusal,
        route,
        price,
        cloud_url: crate::engines::cloud::public_url(&base),
        cloud_server,
        ttft_budget_ms: hybrid.ttft_budget_ms,
    })
}

struct Answer {
    ttft_ns: u64,
    e2e_ns: u64,
    /// Up to the first end of generation.
    tokens: Vec<i32>,
    gaps_ns: Vec<u64>,
}

/// What the device did with one request: its answer, or why it goes to the cloud, and how
/// long the device held it before that.
struct Attempt {
    result: Result<Answer, String>,
    spent_ns: u64,
}

/// One repetition's requests on the device, through the serving loop and its scheduler.
fn on_device(
    d: &mut Device,
    case: &Case,
    tokens: &[super::measure::Request],
    repetition: u32,
    hybrid: &Hybrid,
) -> Vec<Attempt> {
    let work: Vec<WorkItem> = tokens
        .iter()
        .map(|r| WorkItem {
            priority: Priority::Normal,
            turns: vec![r.turns[0].clone()],
        })
        .collect();
    let config = super::measure::serve_config(case, work.len(), repetition);
    let clock = MonotonicClock::start();
    let vocabulary: &dyn Vocabulary = d.prepared.vocabulary.as_ref();
    let budget_ns = hybrid.ttft_budget_ms.map(|ms| (ms * 1e6) as u64);
    let served = match serving::serve(d.session.as_mut(), &clock, &work, &config) {
        Ok(outcome) => outcome.served,
        Err(e) => {
            let reason = format!("engine error: {e}");
            return work
                .iter()
                .map(|_| Attempt {
                    result: Err(reason.clone()),
                    spent_ns: 0,
                })
                .collect();
        }
    };
    served
        .iter()
        .map(|q| match (q.outcome, q.turns.first()) {
            (Outcome::Completed, Some(t)) => {
                let ttft_ns = t.first_token_ns.saturating_sub(t.sent_ns);
                match budget_ns.filter(|&b| ttft_ns > b) {
                    // The app stops waiting at the budget and asks the cloud.
                    Some(b) => Attempt {
                        result: Err(format!(
                            "TTFT over budget: {:.1} ms > {} ms",
                            ttft_ns as f64 / 1e6,
                            b as f64 / 1e6
                        )),
                        spent_ns: b,
                    },
                    None => Attempt {
                        result: Ok(Answer {
                            ttft_ns,
                            e2e_ns: t.end_ns.saturating_sub(t.sent_ns),
                            tokens: super::measure::visible_tokens(vocabulary, &t.tokens).to_vec(),
                            gaps_ns: t.token_gaps_ns.clone(),
                        }),
                        spent_ns: 0,
                    },
                }
            }
            (Outcome::Rejected(r), _) => Attempt {
                result: Err(format!("admission: {} on the device", r.as_str())),
                spent_ns: q.queue_ns,
            },
            (outcome, _) => Attempt {
                result: Err(format!("no answer on the device ({})", outcome.as_str())),
                spent_ns: q.queue_ns,
            },
        })
        .collect()
}

/// Sends the request to the cloud and fills `record` with what came back.
#[allow(clippy::too_many_arguments)]
fn cloud_answer(
    cloud: &Remote,
    route: &CloudRoute,
    price: &Price,
    endpoint: &Endpoint,
    prompt: &prompt_set::Prompt,
    generate: u32,
    seed: u64,
    start: Instant,
    record: &mut HybridRequest,
) {
    let decided = Instant::now();
    let text = prompt.turns.join("\n");
    let mut stream = cloud.start(Request {
        model: route.model.clone(),
        prompt: Prompt::Text(text.clone()),
        api: endpoint.api,
        max_tokens: generate,
        stream: endpoint.stream,
        // A real app's answer ends where the model ends it.
        ignore_eos: false,
        cache_prompt: endpoint.cache_prompt,
        temperature: 0.0,
        seed,
    });
    let mut last: Option<Instant> = None;
    let mut chunks = 0u32;
    let outcome = loop {
        match cloud.next(&mut stream) {
            Ok(Event::Content { text, at, .. }) => {
                if let Some(l) = last {
                    record
                        .token_gaps_ns
                        .push(at.duration_since(l).as_nanos() as u64);
                } else {
                    record.ttft_ns = Some(at.duration_since(start).as_nanos() as u64);
                    record.fallback_ns = Some(at.duration_since(decided).as_nanos() as u64);
                }
                last = Some(at);
                chunks += 1;
                record.text.push_str(&text);
            }
            Ok(Event::Finished { usage, .. }) => break Ok(usage),
            Err(e) => break Err(e),
        }
    };
    record.e2e_ns = start.elapsed().as_nanos() as u64;
    match outcome {
        Ok(usage) => {
            record.source = AnswerSource::Cloud;
            match usage {
                Some(u) => {
                    record.generated_tokens = u.completion_tokens as u32;
                    record.prompt_tokens = u.prompt_tokens as u32;
                    record.token_counts = Some(TokenCounts::Usage);
                }
                None => {
                    record.generated_tokens = chunks;
                    record.token_counts = Some(TokenCounts::Vocabulary);
                }
            }
            // As the seed: every token of the exchange, at the route's price.
            let tokens = f64::from(record.prompt_tokens) + f64::from(record.generated_tokens);
            record.cost_usd = tokens * price.usd_per_million / 1e6;
        }
        Err(e) => {
            record.source = AnswerSource::Unanswered;
            record.error = Some(format!("{}: {e}", e.kind()));
        }
    }
}
