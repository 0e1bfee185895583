//! The engine thread of `edgebench serve`: one session of one of edgebench's engines, fed by
//! the core [`Scheduler`] (slots, bounded queue, realtime > normal > batch, admission timeout)
//! with continuous batching: every loop iteration admits what it can, prefills the admitted
//! prompts as one batch and runs one decode step of every generating request.
//!
//! The session and the vocabulary never leave this thread (llama.cpp's types are not `Send`);
//! HTTP handlers talk to it through channels. A request whose client went away (its reply
//! channel closed) is cancelled and its slot freed at the next step.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use edgebench_backend::{BackendKind, ChatMessage, LoadOptions, TokenId};
use edgebench_core::schedule::{
    Decision, Priority, Rejection, RequestId, Scheduler, SchedulerConfig,
};
use tokio::sync::mpsc as async_mpsc;

/// What a request sends as its prompt.
#[derive(Debug, Clone)]
pub enum JobPrompt {
    Text(String),
    Tokens(Vec<TokenId>),
    /// Chat messages `(role, content)`, rendered through the model's template.
    Messages(Vec<(String, String)>),
}

/// One generation request from a handler.
#[derive(Debug)]
pub struct Job {
    pub prompt: JobPrompt,
    pub max_tokens: u32,
    pub ignore_eos: bool,
    pub priority: Priority,
    pub reply: async_mpsc::UnboundedSender<Piece>,
}

/// What the engine sends back for a job, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// One generated token and the text it adds (possibly empty until a character completes).
    Token {
        id: TokenId,
        text: String,
    },
    Done {
        prompt_tokens: u32,
        completion_tokens: u32,
        /// `length` or `stop`.
        finish_reason: &'static str,
    },
    Rejected(Rejection),
    /// The request can't be served (bad prompt, engine error); the message says why.
    Failed {
        message: String,
        client_error: bool,
    },
}

/// How the engine thread is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub backend: BackendKind,
    pub model_path: PathBuf,
    pub chat_template: Option<String>,
    pub load: LoadOptions,
    pub scheduler: SchedulerConfig,
}

struct Active {
    job: Job,
    tokens: Vec<TokenId>,
    slot: Option<usize>,
    generated: Vec<TokenId>,
    /// Text already sent (the detokenized prefix of `generated`).
    sent_text: String,
    prefilled: bool,
}

/// Runs the engine until `jobs` is closed and every admitted request has ended. `ready` gets
/// `Ok(())` once the model is loaded, or why it could not be.
pub fn run(
    config: &EngineConfig,
    jobs: &mpsc::Receiver<Job>,
    ready: &mpsc::Sender<Result<(), String>>,
) {
    let setup = || -> Result<_, String> {
        let backend = crate::engines::engine(config.backend).map_err(|e| e.to_string())?;
        let vocabulary = crate::engines::reference_vocabulary_for(
            &config.model_path,
            config.chat_template.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        let session = backend
            .load(&config.model_path, &config.load)
            .map_err(|e| e.to_string())?;
        Ok((vocabulary, session))
    };
    let (vocabulary, mut session) = match setup() {
        Ok(v) => {
            let _ = ready.send(Ok(()));
            v
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let start = Instant::now();
    let now = || start.elapsed().as_nanos() as u64;
    let mut scheduler = Scheduler::new(config.scheduler);
    let mut active: BTreeMap<RequestId, Active> = BTreeMap::new();
    let mut next_id: RequestId = 0;
    let mut open = true;
    let context = config.load.context;

    while open || !active.is_empty() {
        // Intake: wait when idle (until the next admission deadline), else take what is there.
        let mut incoming = Vec::new();
        if active.is_empty() && open {
            let wait = scheduler
                .next_timeout_ns()
                .map_or(Duration::from_millis(200), |t| {
                    Duration::from_nanos(t.saturating_sub(now()))
                });
            match jobs.recv_timeout(wait) {
                Ok(j) => incoming.push(j),
                Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        loop {
            match jobs.try_recv() {
                Ok(j) => incoming.push(j),
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        for job in incoming {
            let tokens = match tokenize(vocabulary.as_ref(), &job.prompt) {
                Ok(t) if t.is_empty() => Err("the prompt is empty".to_owned()),
                Ok(t) if t.len() as u64 + u64::from(job.max_tokens) > u64::from(context) => {
                    Err(format!(
                        "prompt ({} tokens) + max_tokens ({}) exceed the server's context of {context} tokens",
                        t.len(),
                        job.max_tokens
                    ))
                }
                other => other,
            };
            let tokens = match tokens {
                Ok(t) => t,
                Err(message) => {
                    let _ = job.reply.send(Piece::Failed {
                        message,
                        client_error: true,
                    });
                    continue;
                }
            };
            let id = next_id;
            next_id += 1;
            match scheduler.submit(id, job.priority, now()) {
                Ok(Ok(())) => {
                    active.insert(
                        id,
                        Active {
                            job,
                            tokens,
                            slot: None,
                            generated: Vec::new(),
                            sent_text: String::new(),
                            prefilled: false,
                        },
                    );
                }
                Ok(Err(rejection)) => {
                    let _ = job.reply.send(Piece::Rejected(rejection));
                }
                Err(e) => {
                    let _ = job.reply.send(Piece::Failed {
                        message: e.to_string(),
                        client_error: false,
                    });
                }
            }
        }
        // Clients that went away free their slot or queue place.
        let gone: Vec<RequestId> = active
            .iter()
            .filter(|(_, a)| a.job.reply.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            scheduler.cancel(id, now());
            active.remove(&id);
        }
        for decision in scheduler.schedule(now()) {
            match decision {
                Decision::Admitted { request, slot, .. } => {
                    if let Some(a) = active.get_mut(&request) {
                        a.slot = Some(slot);
                    }
                }
                Decision::TimedOut { request, .. } => {
                    if let Some(a) = active.remove(&request) {
                        let _ = a
                            .job
                            .reply
                            .send(Piece::Rejected(Rejection::AdmissionTimeout));
                    }
                }
            }
        }
        let mut finished = Vec::new();
        // Prefill every admitted request as one batch.
        let admitted: Vec<RequestId> = active
            .iter()
            .filter(|(_, a)| a.slot.is_some() && !a.prefilled)
            .map(|(id, _)| *id)
            .collect();
        if !admitted.is_empty() {
            let mut batch = Vec::new();
            let mut failed = None;
            for id in &admitted {
                let a = &active[id];
                let slot = a.slot.unwrap_or_default();
                if let Err(e) = session.reset(slot) {
                    failed = Some(e.to_string());
                }
                batch.push((slot, a.tokens.as_slice()));
            }
            let result = match failed {
                Some(e) => Err(e),
                None => session.prefill(&batch).map_err(|e| e.to_string()),
            };
            step_results(
                &admitted,
                result,
                &mut active,
                vocabulary.as_ref(),
                &mut finished,
            );
        }
        // One decode step of every generating request that wasn't just prefilled.
        let generating: Vec<RequestId> = active
            .iter()
            .filter(|(id, a)| a.prefilled && !admitted.contains(id) && !finished.contains(*id))
            .map(|(id, _)| *id)
            .collect();
        if !generating.is_empty() {
            let inputs: Vec<(usize, TokenId)> = generating
                .iter()
                .map(|id| {
                    let a = &active[id];
                    (
                        a.slot.unwrap_or_default(),
                        a.generated.last().copied().unwrap_or(0),
                    )
                })
                .collect();
            let result = session.decode_step(&inputs).map_err(|e| e.to_string());
            step_results(
                &generating,
                result,
                &mut active,
                vocabulary.as_ref(),
                &mut finished,
            );
        }
        for id in finished {
            let _ = scheduler.finish(id);
            active.remove(&id);
        }
    }
}

/// Hands each request its token from one engine call, ends the requests that are complete
/// (or all of them, when the call failed).
fn step_results(
    ids: &[RequestId],
    result: Result<Vec<TokenId>, String>,
    active: &mut BTreeMap<RequestId, Active>,
    vocabulary: &dyn edgebench_backend::Vocabulary,
    finished: &mut Vec<RequestId>,
) {
    let tokens = match result {
        Ok(t) => t,
        Err(message) => {
            for id in ids {
                if let Some(a) = active.get(id) {
                    let _ = a.job.reply.send(Piece::Failed {
                        message: message.clone(),
                        client_error: false,
                    });
                }
                finished.push(*id);
            }
            return;
        }
    };
    for (id, token) in ids.iter().zip(tokens) {
        let Some(a) = active.get_mut(id) else {
            continue;
        };
        a.prefilled = true;
        let end_of_generation = vocabulary.is_end_of_generation(token);
        if end_of_generation && !a.job.ignore_eos {
            let _ = a.job.reply.send(done(a, "stop"));
            finished.push(*id);
            continue;
        }
        a.generated.push(token);
        // The text so far, minus what was sent: multi-byte characters split over tokens come
        // out whole, once complete.
        let visible: Vec<TokenId> = a
            .generated
            .iter()
            .copied()
            .filter(|t| !vocabulary.is_end_of_generation(*t))
            .collect();
        let text = vocabulary.detokenize(&visible).unwrap_or_default();
        let trimmed = text.trim_end_matches('\u{fffd}');
        let new = trimmed
            .strip_prefix(a.sent_text.as_str())
            .unwrap_or_default()
            .to_owned();
        a.sent_text.push_str(&new);
        let _ = a.job.reply.send(Piece::Token {
            id: token,
            text: new,
        });
        if a.generated.len() >= a.job.max_tokens as usize {
            let _ = a.job.reply.send(done(a, "length"));
            finished.push(*id);
        }
    }
}

fn done(a: &Active, finish_reason: &'static str) -> Piece {
    Piece::Done {
        prompt_tokens: a.tokens.len() as u32,
        completion_tokens: a.generated.len() as u32,
        finish_reason,
    }
}

fn tokenize(
    vocabulary: &dyn edgebench_backend::Vocabulary,
    prompt: &JobPrompt,
) -> Result<Vec<TokenId>, String> {
    let size = vocabulary.size();
    match prompt {
        JobPrompt::Tokens(ids) => match ids.iter().find(|&&t| t < 0 || t as usize >= size) {
            Some(bad) => Err(format!(
                "token id {bad} is outside the {size}-token vocabulary"
            )),
            None => Ok(ids.clone()),
        },
        JobPrompt::Text(text) => vocabulary.tokenize(text, true).map_err(|e| e.to_string()),
        JobPrompt::Messages(messages) => {
            let messages: Vec<ChatMessage<'_>> = messages
                .iter()
                .map(|(role, content)| ChatMessage { role, content })
                .collect();
            match vocabulary
                .render_chat(&messages, true)
                .map_err(|e| e.to_string())?
            {
                Some(text) => vocabulary
                    .tokenize_chat(&text, true)
                    .map_err(|e| e.to_string()),
                // No template in the file: the messages' text, one per line.
                None => {
                    let text: Vec<&str> = messages.iter().map(|m| m.content).collect();
                    vocabulary
                        .tokenize(&text.join("\n"), true)
                        .map_err(|e| e.to_string())
                }
            }
        }
    }
}
