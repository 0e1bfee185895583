//! The HTTP engine: any OpenAI-compatible server (llama-server on a phone, Ollama, LM Studio,
//! a cloud, `edgebench serve`) behind the same [`Backend`] trait as the in-process engines.
//!
//! A session's `prefill` sends one streaming request per sequence (the prompt as the reference
//! vocabulary's token ids, `max_tokens` = the scenario's `generate_tokens`) and returns when
//! each has its first content chunk; every `decode_step` returns when each stepped sequence has
//! its next chunk. The harness times those calls as it times any engine, so TTFT is the first
//! chunk's arrival and inter-token latencies are chunk gaps. Token counts come from the
//! server's `usage` where it sends one, else from the reference vocabulary
//! ([`RemoteFacts::token_counts`] says which).

pub mod client;

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use edgebench_backend::{
    Backend, BackendError, BackendKind, Device, Effective, EngineBuild, EngineCounters,
    LoadOptions, MemoryReport, RemoteFacts, Scheduling, SeqId, Session, TokenCounts, TokenId,
    Vocabulary, WeightsLoading,
};
use edgebench_core::scenario::{Api, Endpoint, EndpointTarget, Sampling};
use tokio::sync::mpsc;

pub use client::{Client, Event, HttpError, Prompt, Request, Usage};

const ENGINE: &str = "http";

/// Opens the reference vocabulary of a model file (the pipeline passes llama.cpp's).
pub type VocabularyLoader = fn(&Path) -> Result<Box<dyn Vocabulary>, BackendError>;

/// A blocking front for the async client: its own small runtime, requests started on it and
/// their events read with a stall limit.
#[derive(Debug)]
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    client: Client,
    stall: Duration,
}

/// The events of one request in flight; dropping it drops the connection.
#[derive(Debug)]
pub struct Stream {
    events: mpsc::UnboundedReceiver<Result<Event, HttpError>>,
    task: tokio::task::JoinHandle<()>,
    chunks: u64,
    url: String,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Remote {
    /// A client for `base` with `endpoint`'s timeouts and key.
    pub fn new(base: &str, endpoint: &Endpoint) -> Result<Self, HttpError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| HttpError::Transport {
                url: base.to_owned(),
                reason: format!("could not start the HTTP runtime: {e}"),
            })?;
        let client = Client::new(base, endpoint)?;
        Ok(Self {
            runtime,
            client,
            // The client's own stall limit ends the stream first; this one only guards
            // against a client task that died without a word.
            stall: Duration::from_millis(endpoint.stall_timeout_ms.saturating_mul(2)),
        })
    }

    #[must_use]
    pub fn base(&self) -> &str {
        self.client.base()
    }

    /// Starts `request`; its events queue up until read.
    #[must_use]
    pub fn start(&self, request: Request) -> Stream {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.client.clone();
        let url = self.client.base().to_owned();
        let task = self
            .runtime
            .spawn(async move { client.run(request, tx).await });
        Stream {
            events: rx,
            task,
            chunks: 0,
            url,
        }
    }

    /// The next event of `stream`, waiting at most the stall limit.
    pub fn next(&self, stream: &mut Stream) -> Result<Event, HttpError> {
        let stall = self.stall;
        let got = self
            .runtime
            .block_on(async { tokio::time::timeout(stall, stream.events.recv()).await });
        match got {
            Ok(Some(Ok(event))) => {
                if matches!(event, Event::Content { .. }) {
                    stream.chunks += 1;
                }
                Ok(event)
            }
            Ok(Some(Err(e))) => Err(e),
            Ok(None) => Err(HttpError::Cut {
                url: stream.url.clone(),
                chunks: stream.chunks,
            }),
            Err(_) => Err(HttpError::Stalled {
                url: stream.url.clone(),
                ms: stall.as_millis() as u64,
                chunks: stream.chunks,
            }),
        }
    }

    /// [`Client::server_facts`].
    #[must_use]
    pub fn server_facts(&self) -> String {
        self.runtime.block_on(self.client.server_facts())
    }
}

/// `url` without user, password, query or fragment: what may be stored and shown.
#[must_use]
pub fn public_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string().trim_end_matches('/').to_owned()
        }
        Err(_) => "<unparsable url>".to_owned(),
    }
}

/// The HTTP engine.
#[derive(Debug)]
pub struct Http {
    vocabulary: VocabularyLoader,
}

impl Http {
    #[must_use]
    pub const fn new(vocabulary: VocabularyLoader) -> Self {
        Self { vocabulary }
    }
}

fn step_error(step: &'static str, e: &HttpError) -> BackendError {
    BackendError::step(ENGINE, step, e)
}

impl Backend for Http {
    fn kind(&self) -> BackendKind {
        BackendKind::Http
    }

    fn build(&self) -> EngineBuild {
        EngineBuild {
            engine: ENGINE.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            compiled_backends: vec!["reqwest (native-tls)".to_owned()],
            system_info: "OpenAI-compatible HTTP client; the server's facts are stored per run"
                .to_owned(),
        }
    }

    /// The device is the server's, whatever it is.
    fn supports_device(&self, _device: Device) -> Result<(), edgebench_backend::DeviceUnsupported> {
        Ok(())
    }

    /// Nothing of the model lives in this process.
    fn kv_bytes_per_token(&self, _arch: &edgebench_backend::Architecture, _o: &LoadOptions) -> f64 {
        0.0
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn refuses(&self, _model: &Path, options: &LoadOptions) -> Option<String> {
        if options.endpoint.is_none() {
            return Some("the http engine needs an [endpoint] table".to_owned());
        }
        if options.continues_prefill {
            return Some(
                "an endpoint is stateless: multi-turn conversations need an in-process engine"
                    .to_owned(),
            );
        }
        None
    }

    fn load(
        &self,
        model: &Path,
        options: &LoadOptions,
    ) -> Result<Box<dyn Session + '_>, BackendError> {
        let endpoint = options
            .endpoint
            .clone()
            .ok_or_else(|| BackendError::Unsupported {
                engine: ENGINE,
                what: "a case without an [endpoint]".to_owned(),
            })?;
        let EndpointTarget::Url(base) = &endpoint.target else {
            return Err(BackendError::Load {
                engine: ENGINE,
                path: model.to_owned(),
                reason: "the endpoint was to be launched, but no server URL was handed over"
                    .to_owned(),
            });
        };
        let load_error = |e: HttpError| BackendError::Load {
            engine: ENGINE,
            path: model.to_owned(),
            reason: e.to_string(),
        };
        let remote = Remote::new(base, &endpoint).map_err(load_error)?;
        let vocabulary = (self.vocabulary)(model)?;
        let registry_id = model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let model_id = endpoint.model_id(&registry_id).to_owned();
        let server = remote.server_facts();
        let facts = RemoteFacts {
            url: public_url(base),
            api: endpoint.api.as_str().to_owned(),
            model: model_id,
            streaming: endpoint.stream,
            token_counts: TokenCounts::Usage,
            usage_tokens: 0,
            content_chunks: 0,
            server,
            device_profile: endpoint.device_profile.clone(),
        };
        Ok(Box::new(HttpSession {
            remote,
            endpoint,
            options: options.clone(),
            vocabulary,
            sequences: (0..options.max_sequences.max(1)).map(|_| None).collect(),
            facts,
        }))
    }
}

/// One sequence's request in flight.
#[derive(Debug)]
struct InFlight {
    stream: Stream,
    /// Token ids received but not yet handed out (a chunk may carry several).
    pending: VecDeque<TokenId>,
    last: TokenId,
    finished: bool,
}

struct HttpSession {
    remote: Remote,
    endpoint: Endpoint,
    options: LoadOptions,
    vocabulary: Box<dyn Vocabulary>,
    sequences: Vec<Option<InFlight>>,
    facts: RemoteFacts,
}

impl HttpSession {
    fn slot(&mut self, seq: SeqId) -> Result<&mut Option<InFlight>, BackendError> {
        let max = self.sequences.len() as u32;
        self.sequences
            .get_mut(seq)
            .ok_or(BackendError::BadSequence { seq, max })
    }

    /// The next token of `seq`: a queued id, else the next chunk's.
    fn next_token(&mut self, seq: SeqId, step: &'static str) -> Result<TokenId, BackendError> {
        loop {
            let Some(flight) = self.sequences.get_mut(seq).and_then(Option::as_mut) else {
                return Err(BackendError::step(
                    ENGINE,
                    step,
                    format!("sequence {seq} has no request in flight"),
                ));
            };
            if let Some(t) = flight.pending.pop_front() {
                flight.last = t;
                return Ok(t);
            }
            if flight.finished {
                return Err(BackendError::step(
                    ENGINE,
                    step,
                    format!(
                        "the server ended the response after {} chunk(s), before the {} tokens asked (set `ignore_eos = true` on a server that honours it)",
                        flight.stream.chunks, self.options.generate_tokens
                    ),
                ));
            }
            match self
                .remote
                .next(&mut flight.stream)
                .map_err(|e| step_error(step, &e))?
            {
                Event::Content {
                    text, token_ids, ..
                } => {
                    self.facts.content_chunks += 1;
                    let ids = match token_ids {
                        Some(ids) if !ids.is_empty() => ids,
                        _ => {
                            // One chunk is one step; its id is only for the shown text.
                            let ids = self.vocabulary.tokenize(&text, false)?;
                            vec![ids.first().copied().unwrap_or(flight.last)]
                        }
                    };
                    flight.pending.extend(ids);
                }
                Event::Finished { usage, .. } => {
                    flight.finished = true;
                    match usage {
                        Some(u) => self.facts.usage_tokens += u.completion_tokens,
                        None => self.facts.token_counts = TokenCounts::Vocabulary,
                    }
                }
            }
        }
    }
}

impl Session for HttpSession {
    fn prefill(&mut self, prompts: &[(SeqId, &[TokenId])]) -> Result<Vec<TokenId>, BackendError> {
        let (temperature, seed) = match self.options.sampling {
            Sampling::Greedy => (0.0, self.options.seed),
            Sampling::Temperature { temperature, .. } => (temperature, self.options.seed),
        };
        for &(seq, tokens) in prompts {
            let prompt = match self.endpoint.api {
                Api::Completion => Prompt::Tokens(tokens.to_vec()),
                Api::Chat => Prompt::Text(self.vocabulary.detokenize(tokens)?),
            };
            let stream = self.remote.start(Request {
                model: self.facts.model.clone(),
                prompt,
                api: self.endpoint.api,
                max_tokens: self.options.generate_tokens,
                stream: self.endpoint.stream,
                ignore_eos: self.endpoint.ignore_eos,
                cache_prompt: self.endpoint.cache_prompt,
                temperature,
                seed,
            });
            *self.slot(seq)? = Some(InFlight {
                stream,
                pending: VecDeque::new(),
                last: tokens.last().copied().unwrap_or(0),
                finished: false,
            });
        }
        prompts
            .iter()
            .map(|&(seq, _)| self.next_token(seq, "receive the first token"))
            .collect()
    }

    fn decode_step(&mut self, inputs: &[(SeqId, TokenId)]) -> Result<Vec<TokenId>, BackendError> {
        inputs
            .iter()
            .map(|&(seq, _)| self.next_token(seq, "receive a token"))
            .collect()
    }

    fn reset(&mut self, seq: SeqId) -> Result<(), BackendError> {
        // Dropping the stream closes its connection: the server stops generating.
        *self.slot(seq)? = None;
        Ok(())
    }

    fn prompt_logits(
        &mut self,
        _seq: SeqId,
        _prompt: &[TokenId],
    ) -> Result<Vec<f32>, BackendError> {
        Err(BackendError::Unsupported {
            engine: ENGINE,
            what: "logits (an OpenAI endpoint returns text)".to_owned(),
        })
    }

    fn memory(&self) -> MemoryReport {
        MemoryReport::default()
    }

    fn effective(&self) -> Effective {
        Effective {
            kv_storage: "server's".to_owned(),
            flash_attention: false,
            weights: WeightsLoading::Remote,
            scheduling: Scheduling::Server,
        }
    }

    fn counters(&mut self) -> Option<EngineCounters> {
        None
    }

    fn remote(&self) -> Option<RemoteFacts> {
        Some(self.facts.clone())
    }
}
