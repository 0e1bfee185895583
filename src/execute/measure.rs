//! A speed case: tokenizes its prompts once, loads the model once, serves the prompts for every
//! warmup and measured repetition (until adaptive stopping says enough), and collects the
//! engine's counters, CPU time, energy and the roofline of the decode steps.

use std::path::Path;
use std::time::Instant;

use edgebench_backend::{ChatMessage, TokenId, Vocabulary};
use edgebench_core::measure::{self, StopReason};
use edgebench_core::overhead::RepetitionPhases;
use edgebench_core::scenario::{Category, PromptFormat};
use edgebench_core::schedule::{self, SchedulerConfig};
use edgebench_core::{Case, ModelEntry};

use super::serving::{
    self, Arrivals, MonotonicClock, ServeConfig, ServeError, Served, StepTotals, WorkItem,
};
use super::{Inputs, Prepared, SessionFacts, case_error};
use crate::device_facts;
use crate::error::RunError;
use crate::prompt_set::{self, Prompt};

/// Power assumed per fully busy core when RAPL can't be read: a round figure for a laptop or
/// phone big core; energy computed from it is stored as an estimate, never as a measurement.
pub const ESTIMATED_WATTS_PER_BUSY_CORE: f64 = 4.0;

/// One request as served in one repetition, with what the client saw.
#[derive(Debug, Clone)]
pub struct ServedRequest {
    /// Measured repetition index (warmup repetitions count from 0 too, flagged `warmup`).
    pub repetition: u32,
    pub warmup: bool,
    pub prompt_id: String,
    /// Prompt tokens of each turn of the conversation.
    pub prompt_tokens: Vec<u32>,
    pub served: Served,
    /// Each served turn's generated text, cut at the first end-of-generation token.
    pub texts: Vec<String>,
}

/// How close the decode steps came to the device's memory bandwidth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roofline {
    /// The bytes the decode steps had to read at least: the weights once per step and every
    /// stepped sequence's KV entries.
    pub decode_bytes_read: u64,
    pub decode_steps_ns: u64,
    pub bandwidth_bytes_per_s: f64,
    pub fraction: f64,
    /// The probe beside the case `bandwidth_bytes_per_s` is the median of, when there was one.
    pub probe: Option<crate::device_facts::ProbeSpread>,
}

impl Roofline {
    /// The same decode measured against the probe beside the case (its median).
    #[must_use]
    pub fn against(self, probe: &crate::device_facts::ProbeBeside) -> Self {
        let bandwidth = probe.median();
        Self {
            bandwidth_bytes_per_s: bandwidth,
            fraction: self.decode_bytes_read as f64
                / (self.decode_steps_ns as f64 / 1e9)
                / bandwidth,
            probe: Some(probe.spread()),
            ..self
        }
    }
}

/// Energy over the measured repetitions and where the figure comes from (`rapl`, or an
/// `estimate: …` with its assumption).
#[derive(Debug, Clone, PartialEq)]
pub struct Energy {
    pub joules: f64,
    pub source: String,
}

/// A measured speed case.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Every request of every repetition, warmup included, in serving order.
    pub requests: Vec<ServedRequest>,
    /// The engine's work per measured repetition.
    pub steps: Vec<StepTotals>,
    /// The engine's own counters per measured repetition beside the harness's timing.
    pub phases: Vec<RepetitionPhases>,
    pub stop_reason: StopReason,
    pub session: SessionFacts,
    pub energy: Option<Energy>,
    pub roofline: Option<Roofline>,
    /// Who else used the machine while this run measured.
    pub host: Option<HostShare>,
    /// The quality pass, when the scenario asked for one (never for a twin).
    pub quality: Option<super::quality::QualityRun>,
    /// Whether the engine produced what was asked (first tokens consistent, lengths).
    pub integrity: edgebench_core::integrity::Integrity,
}

/// Others' share of the machine's CPU time over the measured part
/// (`edgebench_core::contention`) and the load average at its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostShare {
    pub others_cpu_share: f64,
    pub load_1m: Option<f64>,
}

/// A prompt tokenized once for every engine.
pub(crate) struct Request {
    prompt_id: String,
    /// Token ids per turn.
    pub(crate) turns: Vec<Vec<TokenId>>,
}

pub fn measure(
    inputs: Inputs<'_>,
    case: &Case,
    entry: &ModelEntry,
    model_path: &Path,
) -> Result<Measured, RunError> {
    let s = &case.scenario;
    let plan = inputs.plan;
    let prompts = prompt_set::load(&inputs.root.join(&s.dataset))?;
    let prompts: Vec<Prompt> = prompts.into_iter().take(plan.prompts).collect();

    let prepared = Prepared::new(inputs, case, entry, model_path)?;
    let vocabulary = prepared.vocabulary.as_ref();
    let requests = tokenize(
        vocabulary,
        prepared.format,
        s.category,
        &prompts,
        plan.prompt_tokens,
    )?;
    let priorities = schedule::priority_mix(requests.len(), s.serving.priorities);
    let work: Vec<WorkItem> = requests
        .iter()
        .zip(&priorities)
        .map(|(r, &priority)| WorkItem {
            priority,
            turns: r.turns.clone(),
        })
        .collect();
    let (mut session, load_ms) = prepared.load(case, model_path)?;

    let mut served_requests = Vec::new();
    let rapl = device_facts::Rapl::open();
    let (mut cpu_before, mut energy_before, mut busy_before) = (None, None, None);
    let mut measured_steps = Vec::new();
    let mut phases: Vec<RepetitionPhases> = Vec::new();
    let mut measuring_since = Instant::now();
    let mut repetition = 0;
    let stop_reason = loop {
        let warmup = repetition < plan.warmup;
        if repetition == plan.warmup {
            // Engine counters, CPU time and energy cover measured repetitions only, like our
            // own samples.
            session.reset_counters();
            cpu_before = device_facts::process_cpu_ms();
            busy_before = device_facts::machine_busy_ms();
            energy_before = rapl.as_ref().and_then(device_facts::Rapl::read);
            measuring_since = Instant::now();
        }
        let config = serve_config(case, work.len(), repetition);
        let clock = MonotonicClock::start();
        let outcome = serving::serve(session.as_mut(), &clock, &work, &config)
            .map_err(|e| serve_error(case, e))?;
        let measured_repetition = repetition.saturating_sub(plan.warmup);
        for served in outcome.served {
            let request = &requests[served.request];
            let texts = served
                .turns
                .iter()
                .map(|t| vocabulary.detokenize(visible_tokens(vocabulary, &t.tokens)))
                .collect::<Result<Vec<_>, _>>()?;
            served_requests.push(ServedRequest {
                repetition: measured_repetition,
                warmup,
                prompt_id: request.prompt_id.clone(),
                prompt_tokens: request.turns.iter().map(|t| t.len() as u32).collect(),
                served,
                texts,
            });
        }
        repetition += 1;
        if warmup {
            continue;
        }
        // The engine's counters for this repetition alone, beside our timing of the same
        // phases; read between repetitions, outside every timed span.
        if let Some(c) = session.counters() {
            session.reset_counters();
            phases.push(RepetitionPhases {
                harness_prefill_tokens: outcome.steps.prefill_tokens,
                harness_prefill_ns: outcome.steps.prefill_ns,
                harness_decode_tokens: outcome.steps.decode_tokens,
                harness_decode_ns: outcome.steps.decode_ns,
                engine_prefill_tokens: c.prompt_eval_tokens,
                engine_prefill_ms: c.prompt_eval_ms,
                engine_decode_tokens: c.eval_tokens,
                engine_decode_ms: c.eval_ms,
            });
        }
        measured_steps.push(outcome.steps);
        if inputs.mode.smoke {
            break StopReason::Smoke;
        }
        let rates: Vec<f64> = measured_steps
            .iter()
            .map(|t| rate(t.decode_tokens, t.decode_ns))
            .collect();
        if let Some(reason) = measure::should_stop(
            &rates,
            plan.repetitions,
            s.stopping.as_ref().filter(|_| !inputs.mode.fixed_stopping),
            measuring_since.elapsed().as_secs_f64(),
            inputs.mode.min_measured_seconds(),
            s.seed,
        ) {
            break reason;
        }
    };
    let cpu_time_ms = cpu_before
        .zip(device_facts::process_cpu_ms())
        .map(|(before, after)| after - before);
    // An HTTP case's work is done by its server, another process (on loopback, the machine's
    // own cores): its CPU time is the case, not contention, so remote runs are not judged.
    let host = busy_before
        .filter(|_| !prepared.backend.is_remote())
        .zip(device_facts::machine_busy_ms())
        .zip(cpu_time_ms)
        .map(|((before, after), own)| HostShare {
            others_cpu_share: edgebench_core::contention::others_share(
                after - before,
                own,
                measuring_since.elapsed().as_secs_f64() * 1e3,
                std::thread::available_parallelism().map_or(1, usize::from),
            ),
            load_1m: device_facts::load_average_1m(),
        });
    let energy = match rapl.as_ref() {
        Some(r) => r.read().and_then(|after| {
            Some(Energy {
                joules: r.joules_between(energy_before.as_deref()?, &after),
                source: "rapl".to_owned(),
            })
        }),
        // Not measurable here: an estimate from CPU time, labelled as one.
        None => cpu_time_ms.map(|ms| Energy {
            joules: ms / 1e3 * ESTIMATED_WATTS_PER_BUSY_CORE,
            source: format!(
                "estimate: cpu_time_s × {ESTIMATED_WATTS_PER_BUSY_CORE} W per busy core (assumed, not measured)"
            ),
        }),
    };
    let integrity = integrity(
        &served_requests,
        // Batched prefills change with the batch's make-up between repetitions, and so may a
        // near-tied first token (the numerics floor in docs/methodology.md): checked one
        // sequence at a time only.
        s.sampling == edgebench_core::scenario::Sampling::Greedy && case.slots() == 1,
        // A server may stop at its end-of-generation token; in-process engines generate the
        // requested length.
        (!prepared.backend.is_remote()).then_some(u64::from(s.generate_tokens)),
    );
    let kv_bytes_per_token = prepared
        .backend
        .kv_bytes_per_token(&entry.arch, &prepared.options);
    // A server elsewhere reads its weights from its own memory, not this host's.
    let remote = prepared.backend.is_remote();
    let session = prepared.facts(session, load_ms, cpu_time_ms);
    // After the speed session is gone and its facts are read: the pass loads its own two.
    let quality = super::quality::run(
        inputs,
        case,
        entry,
        model_path,
        &prepared.options,
        prepared.vocabulary.as_ref(),
    )?;
    let roofline = inputs
        .bandwidth_bytes_per_s
        .filter(|_| !remote)
        .and_then(|bandwidth| {
            roofline(
                kv_bytes_per_token,
                session.memory.weights_bytes,
                &measured_steps,
                bandwidth,
            )
        });
    Ok(Measured {
        requests: served_requests,
        steps: measured_steps,
        phases,
        stop_reason,
        session,
        energy,
        roofline,
        host,
        quality,
        integrity,
    })
}

/// TEST06 in spirit (`edgebench_core::integrity`) over every completed turn of every
/// repetition, warmup included.
fn integrity(
    requests: &[ServedRequest],
    greedy: bool,
    expected: Option<u64>,
) -> edgebench_core::integrity::Integrity {
    let turns: Vec<edgebench_core::integrity::TurnOutput<'_>> = requests
        .iter()
        .filter(|r| r.served.outcome == serving::Outcome::Completed)
        .flat_map(|r| {
            r.served.turns.iter().enumerate().map(|(turn, t)| {
                edgebench_core::integrity::TurnOutput {
                    prompt_id: &r.prompt_id,
                    turn,
                    first_token: t.tokens.first().copied(),
                    generated: t.tokens.len() as u64,
                }
            })
        })
        .collect();
    edgebench_core::integrity::check(&turns, greedy, expected)
}

/// How close the measured decode steps came to the device's memory bandwidth: the bytes they
/// had to read at least (the weights once per step, every stepped sequence's KV entries) over
/// their time, as a fraction of the triad bandwidth measured on this device.
fn roofline(
    kv_bytes_per_token: f64,
    weights_bytes: u64,
    steps: &[StepTotals],
    bandwidth: f64,
) -> Option<Roofline> {
    let decode_steps: u64 = steps.iter().map(|t| t.decode_steps).sum();
    let kv_positions: u64 = steps.iter().map(|t| t.decode_kv_positions).sum();
    let decode_ns: u64 = steps.iter().map(|t| t.decode_ns).sum();
    if decode_ns == 0 || bandwidth <= 0.0 {
        return None;
    }
    let bytes =
        decode_steps as f64 * weights_bytes as f64 + kv_positions as f64 * kv_bytes_per_token;
    Some(Roofline {
        decode_bytes_read: bytes.round() as u64,
        decode_steps_ns: decode_ns,
        bandwidth_bytes_per_s: bandwidth,
        fraction: bytes / (decode_ns as f64 / 1e9) / bandwidth,
        probe: None,
    })
}

/// Tokens over nanoseconds, as tokens per second (0 for no time).
#[must_use]
pub fn rate(tokens: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        tokens as f64 / (ns as f64 / 1e9)
    }
}

fn serve_error(case: &Case, e: ServeError) -> RunError {
    match e {
        ServeError::Backend(b) => RunError::Backend(b),
        other => case_error(case, other.to_string()),
    }
}

/// How one repetition of `case` serves its `requests` requests.
pub(crate) fn serve_config(case: &Case, requests: usize, repetition: u32) -> ServeConfig {
    let s = &case.scenario;
    let serving = &s.serving;
    let ms = |v: u64| v.saturating_mul(1_000_000);
    ServeConfig {
        scheduler: SchedulerConfig {
            slots: case.slots() as usize,
            queue_capacity: serving.queue_capacity.map_or(usize::MAX, |q| q as usize),
            admission_timeout_ns: serving.admission_timeout_ms.map(ms),
        },
        arrivals: match serving.arrival_rate_per_s {
            // Each repetition draws its own arrivals from the scenario's seed.
            Some(rate) => Arrivals::Open {
                offsets_ns: schedule::poisson_arrivals(
                    requests,
                    rate,
                    s.seed ^ (u64::from(repetition) << 32),
                ),
            },
            None => Arrivals::Closed {
                clients: case.concurrency as usize,
            },
        },
        generate: s.generate_tokens,
        cancel_after_ns: serving.cancel_after_ms.map(ms),
    }
}

/// Generated tokens up to (not including) the first end-of-generation token.
pub(crate) fn visible_tokens<'t>(
    vocabulary: &dyn Vocabulary,
    tokens: &'t [TokenId],
) -> &'t [TokenId] {
    let end = tokens
        .iter()
        .position(|&t| vocabulary.is_end_of_generation(t))
        .unwrap_or(tokens.len());
    &tokens[..end]
}

/// Cuts `ids` to its last `max` tokens, keeping a leading `bos` token in front of them.
pub(crate) fn keep_last_tokens(ids: &mut Vec<TokenId>, max: usize, bos: Option<TokenId>) {
    if ids.len() > max {
        let keep_bos = usize::from(bos.is_some() && bos == ids.first().copied());
        let cut = ids.len() - (max - keep_bos);
        ids.drain(keep_bos..cut);
    }
}

/// The format this case's prompts take: the scenario's, else the model's own default (`chat`
/// exactly when its file carries a chat template). `chat` on a model without one is an error.
pub(crate) fn prompt_format(
    vocabulary: &dyn Vocabulary,
    case: &Case,
) -> Result<PromptFormat, RunError> {
    let probe = [ChatMessage {
        role: "user",
        content: "hi",
    }];
    let has_template = vocabulary.render_chat(&probe, true)?.is_some();
    let declared = case.scenario.prompt_format;
    if declared == Some(PromptFormat::Chat) && !has_template {
        return Err(case_error(
            case,
            "prompt_format = \"chat\", but the model file carries no chat template (tokenizer.chat_template); use \"raw\"".to_owned(),
        ));
    }
    Ok(PromptFormat::resolve(declared, has_template))
}

/// How one raw turn is rendered. Multi-turn prompts get a minimal role prefix so later turns
/// read as a conversation.
fn raw_turn_text(category: Category, turn: usize, text: &str) -> String {
    if category == Category::MultiTurn {
        let lead = if turn == 0 { "" } else { "\n" };
        format!("{lead}User: {text}\nAssistant:")
    } else {
        text.to_owned()
    }
}

/// Marks where the model's own reply goes when a conversation is rendered: the text of a later
/// turn is what the template puts after the previous reply (the end of the assistant's turn,
/// the next user message, the assistant's opening tag). Private-use characters no dataset holds.
fn reply_marker(turn: usize) -> String {
    format!("\u{E000}edgebench reply {turn}\u{E001}")
}

/// The text of each turn of `turns` rendered through the model's chat template: turn 0 is the
/// whole opening (system preamble, first user message, assistant tag); turn `i > 0` is what
/// follows the previous reply. The model's replies themselves are the tokens it generated, kept
/// in its KV cache between turns.
fn chat_turn_texts(vocabulary: &dyn Vocabulary, turns: &[String]) -> Result<Vec<String>, RunError> {
    let markers: Vec<String> = (0..turns.len()).map(reply_marker).collect();
    let mut texts = Vec::with_capacity(turns.len());
    for i in 0..turns.len() {
        let mut messages = Vec::with_capacity(2 * i + 1);
        for (j, user) in turns[..=i].iter().enumerate() {
            messages.push(ChatMessage {
                role: "user",
                content: user,
            });
            if j < i {
                messages.push(ChatMessage {
                    role: "assistant",
                    content: &markers[j],
                });
            }
        }
        let rendered = vocabulary
            .render_chat(&messages, true)?
            .ok_or_else(|| RunError::ChatTemplate("the model's chat template vanished".into()))?;
        let text = if i == 0 {
            rendered
        } else {
            let marker = &markers[i - 1];
            let at = rendered.rfind(marker.as_str()).ok_or_else(|| {
                RunError::ChatTemplate(format!(
                    "the chat template dropped the assistant's reply of turn {i}: it can't render a multi-turn conversation"
                ))
            })?;
            rendered[at + marker.len()..].to_owned()
        };
        texts.push(text);
    }
    Ok(texts)
}

/// One single-turn chat prompt within `max` tokens: a prompt over the limit keeps the last tokens
/// of the user's text (long-context questions come last), and the template's tags stay whole.
fn chat_prompt_within(
    vocabulary: &dyn Vocabulary,
    text: &str,
    max: usize,
) -> Result<Vec<TokenId>, RunError> {
    let render = |content: &str| -> Result<Vec<TokenId>, RunError> {
        let turns = [content.to_owned()];
        let rendered = chat_turn_texts(vocabulary, &turns)?;
        Ok(vocabulary.tokenize_chat(&rendered[0], true)?)
    };
    let mut ids = render(text)?;
    if ids.len() <= max {
        return Ok(ids);
    }
    let content = vocabulary.tokenize(text, false)?;
    let overhead = ids.len().saturating_sub(content.len());
    // Detokenizing and tokenizing again may merge a token or two differently: shorten until it
    // fits, a few tokens more each time.
    let mut keep = max.saturating_sub(overhead);
    for _ in 0..8 {
        let tail = &content[content.len().saturating_sub(keep)..];
        ids = render(&vocabulary.detokenize(tail)?)?;
        if ids.len() <= max {
            return Ok(ids);
        }
        keep = keep.saturating_sub(ids.len() - max + 4);
    }
    Err(RunError::ChatTemplate(format!(
        "a chat prompt does not fit in {max} tokens even after cutting its text"
    )))
}

/// Tokenizes every prompt once. Single-turn prompts longer than `max_tokens` keep their last
/// tokens (long-context questions come last), after the BOS token if the model adds one.
pub(crate) fn tokenize(
    vocabulary: &dyn Vocabulary,
    format: PromptFormat,
    category: Category,
    prompts: &[Prompt],
    max_tokens: u32,
) -> Result<Vec<Request>, RunError> {
    let max = max_tokens as usize;
    // What the model prepends to an empty text: its BOS token, if it adds one.
    let bos_token = vocabulary.tokenize("", true)?.first().copied();
    prompts
        .iter()
        .map(|p| {
            let turns = match format {
                PromptFormat::Raw => p
                    .turns
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let mut ids =
                            vocabulary.tokenize(&raw_turn_text(category, i, t), i == 0)?;
                        keep_last_tokens(&mut ids, max, bos_token);
                        Ok(ids)
                    })
                    .collect::<Result<Vec<_>, RunError>>()?,
                PromptFormat::Chat if p.turns.len() == 1 => {
                    vec![chat_prompt_within(vocabulary, &p.turns[0], max)?]
                }
                PromptFormat::Chat => chat_turn_texts(vocabulary, &p.turns)?
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        let mut ids = vocabulary.tokenize_chat(text, i == 0)?;
                        keep_last_tokens(&mut ids, max, bos_token);
                        Ok(ids)
                    })
                    .collect::<Result<Vec<_>, RunError>>()?,
            };
            Ok(Request {
                prompt_id: p.id.clone(),
                turns,
            })
        })
        .collect()
}
