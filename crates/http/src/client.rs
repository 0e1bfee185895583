//! The OpenAI-compatible client: one request, streamed (server-sent events, parsed by
//! `eventsource-stream`) or not, turned into [`Event`]s stamped with their arrival time. Every
//! way a server can fail is a typed [`HttpError`] that names the URL and what was seen.

use std::time::{Duration, Instant};

use edgebench_core::scenario::{Api, Endpoint};
use eventsource_stream::Eventsource as _;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// What a request sends as its prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Token ids of the server's own vocabulary (`/v1/completions` accepts an array).
    Tokens(Vec<i32>),
    Text(String),
}

/// One request.
#[derive(Debug, Clone)]
pub struct Request {
    pub model: String,
    pub prompt: Prompt,
    pub api: Api,
    pub max_tokens: u32,
    pub stream: bool,
    pub ignore_eos: bool,
    /// llama-server's `cache_prompt`, sent only when set.
    pub cache_prompt: Option<bool>,
    /// 0: greedy.
    pub temperature: f32,
    pub seed: u64,
}

/// The server's token accounting for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What arrives for one request, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A chunk with content (streaming), or the whole text (not streaming).
    Content {
        text: String,
        /// Token ids, where the server sends them (`edgebench serve` does; an extension).
        token_ids: Option<Vec<i32>>,
        at: Instant,
    },
    /// The response is complete.
    Finished {
        usage: Option<Usage>,
        finish_reason: Option<String>,
        at: Instant,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    #[error("could not connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url} answered HTTP {status}{}: {body}", retry_after.as_ref().map(|r| format!(" (Retry-After: {r})")).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        retry_after: Option<String>,
        body: String,
    },
    #[error(
        "{url}: the stream ended after {chunks} chunk(s) without a finish reason or [DONE] (cut)"
    )]
    Cut { url: String, chunks: u64 },
    #[error("{url}: no event for {ms} ms after {chunks} chunk(s) (stalled stream)")]
    Stalled { url: String, ms: u64, chunks: u64 },
    #[error("{url}: the whole request took longer than {ms} ms")]
    Timeout { url: String, ms: u64 },
    #[error("{url}: malformed event after {chunks} chunk(s) ({reason}): {excerpt:?}")]
    Malformed {
        url: String,
        chunks: u64,
        reason: String,
        excerpt: String,
    },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("the API key variable `{var}` is not set")]
    MissingKey { var: String },
}

impl HttpError {
    /// A short stored name for the kind of failure (`requests.error` starts with it).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Status { status: 429, .. } => "http_429",
            Self::Status { status, .. } if *status >= 500 => "http_5xx",
            Self::Status { .. } => "http_4xx",
            Self::Cut { .. } => "cut",
            Self::Stalled { .. } => "stalled",
            Self::Timeout { .. } => "timeout",
            Self::Malformed { .. } => "malformed",
            Self::Transport { .. } => "transport",
            Self::MissingKey { .. } => "missing_key",
        }
    }
}

/// A configured client for one endpoint. Holds the API key in memory only; nothing it
/// formats (errors, facts) contains it.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    stall: Duration,
    total: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `base` (`…/v1`) with `endpoint`'s timeouts and key variable.
    pub fn new(base: &str, endpoint: &Endpoint) -> Result<Self, HttpError> {
        let key = match &endpoint.api_key_env {
            None => None,
            Some(var) => {
                Some(std::env::var(var).map_err(|_| HttpError::MissingKey { var: var.clone() })?)
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(endpoint.connect_timeout_ms))
            .build()
            .map_err(|e| HttpError::Transport {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            stall: Duration::from_millis(endpoint.stall_timeout_ms),
            total: Duration::from_millis(endpoint.request_timeout_ms),
        })
    }

    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, api: Api) -> String {
        match api {
            Api::Completion => format!("{}/completions", self.base),
            Api::Chat => format!("{}/chat/completions", self.base),
        }
    }

    fn with_key(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    /// Sends `request` and forwards its events to `events` until it finishes or fails (the
    /// failure is the last message). Returns when the response is over or `events` is closed.
    pub async fn run(
        &self,
        request: Request,
        events: mpsc::UnboundedSender<Result<Event, HttpError>>,
    ) {
        let url = self.url(request.api);
        let total = self.total;
        let outcome = tokio::time::timeout(total, self.exchange(&url, &request, &events)).await;
        let last = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(_) => HttpError::Timeout {
                url,
                ms: total.as_millis() as u64,
            },
        };
        let _ = events.send(Err(last));
    }

    async fn exchange(
        &self,
        url: &str,
        request: &Request,
        events: &mpsc::UnboundedSender<Result<Event, HttpError>>,
    ) -> Result<(), HttpError> {
        let transport = |e: reqwest::Error| {
            if e.is_connect() {
                HttpError::Connect {
                    url: url.to_owned(),
                    reason: root_cause(&e),
                }
            } else {
                HttpError::Transport {
                    url: url.to_owned(),
                    reason: root_cause(&e),
                }
            }
        };
        let response = self
            .with_key(self.http.post(url))
            .json(&body(request))
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = response.text().await.unwrap_or_default();
            return Err(HttpError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                retry_after,
                body: excerpt(&text),
            });
        }
        if !request.stream {
            let value: Value = response.json().await.map_err(|e| HttpError::Malformed {
                url: url.to_owned(),
                chunks: 0,
                reason: root_cause(&e),
                excerpt: String::new(),
            })?;
            let at = Instant::now();
            let (text, token_ids, finish_reason) = choice(&value, request.api);
            let _ = events.send(Ok(Event::Content {
                text: text.unwrap_or_default(),
                token_ids,
                at,
            }));
            let _ = events.send(Ok(Event::Finished {
                usage: usage(&value),
                finish_reason,
                at,
            }));
            return Ok(());
        }
        let mut stream = response.bytes_stream().eventsource();
        let mut chunks = 0u64;
        let (mut finish_reason, mut usage_seen) = (None, None);
        loop {
            let next = tokio::time::timeout(self.stall, stream.next()).await;
            let event = match next {
                Err(_) => {
                    return Err(HttpError::Stalled {
                        url: url.to_owned(),
                        ms: self.stall.as_millis() as u64,
                        chunks,
                    });
                }
                // The body ended: complete only if the server said so.
                Ok(None) if finish_reason.is_some() => break,
                Ok(None) => {
                    return Err(HttpError::Cut {
                        url: url.to_owned(),
                        chunks,
                    });
                }
                Ok(Some(Err(e))) => {
                    return Err(match e {
                        eventsource_stream::EventStreamError::Transport(t) => HttpError::Cut {
                            url: format!("{url} ({})", root_cause(&t)),
                            chunks,
                        },
                        other => HttpError::Malformed {
                            url: url.to_owned(),
                            chunks,
                            reason: other.to_string(),
                            excerpt: String::new(),
                        },
                    });
                }
                Ok(Some(Ok(event))) => event,
            };
            let at = Instant::now();
            if event.data.trim() == "[DONE]" {
                break;
            }
            let value: Value =
                serde_json::from_str(&event.data).map_err(|e| HttpError::Malformed {
                    url: url.to_owned(),
                    chunks,
                    reason: e.to_string(),
                    excerpt: excerpt(&event.data),
                })?;
            if let Some(message) = value.get("error") {
                return Err(HttpError::Status {
                    url: url.to_owned(),
                    status: 500,
                    retry_after: None,
                    body: excerpt(&message.to_string()),
                });
            }
            if let Some(u) = usage(&value) {
                usage_seen = Some(u);
            }
            let (text, token_ids, reason) = choice(&value, request.api);
            // The closing chunk carries only the finish reason: no token.
            let carries_token = token_ids.as_ref().is_some_and(|ids| !ids.is_empty());
            if let Some(text) = text.filter(|t| !t.is_empty() || carries_token) {
                chunks += 1;
                if events
                    .send(Ok(Event::Content {
                        text,
                        token_ids,
                        at,
                    }))
                    .is_err()
                {
                    return Ok(()); // nobody listens any more: drop the connection
                }
            }
            if reason.is_some() {
                finish_reason = reason;
            }
        }
        let _ = events.send(Ok(Event::Finished {
            usage: usage_seen,
            finish_reason,
            at: Instant::now(),
        }));
        Ok(())
    }

    /// What the server says about itself: `/v1/models` and llama-server's `/props`, as JSON;
    /// a part that can't be read says why.
    pub async fn server_facts(&self) -> String {
        let get = |url: String| async move {
            let r = self
                .with_key(self.http.get(&url))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => r
                    .json::<Value>()
                    .await
                    .unwrap_or_else(|e| json!({"unavailable": root_cause(&e)})),
                Ok(r) => json!({"unavailable": format!("HTTP {}", r.status().as_u16())}),
                Err(e) => json!({"unavailable": root_cause(&e)}),
            }
        };
        let root = self
            .base
            .strip_suffix("/v1")
            .unwrap_or(&self.base)
            .to_owned();
        let models = get(format!("{}/models", self.base)).await;
        let mut props = get(format!("{root}/props")).await;
        // llama-server's props repeat the whole chat template; the rest identifies the build.
        if let Some(p) = props.as_object_mut() {
            p.remove("chat_template");
        }
        json!({ "models": models, "props": props }).to_string()
    }
}

fn body(r: &Request) -> Value {
    let mut b = json!({
        "model": r.model,
        "max_tokens": r.max_tokens,
        "stream": r.stream,
        "temperature": r.temperature,
        "seed": r.seed,
    });
    if r.stream {
        b["stream_options"] = json!({ "include_usage": true });
    }
    if r.ignore_eos {
        b["ignore_eos"] = json!(true);
    }
    if let Some(c) = r.cache_prompt {
        b["cache_prompt"] = json!(c);
    }
    match (&r.prompt, r.api) {
        (Prompt::Tokens(ids), Api::Completion) => b["prompt"] = json!(ids),
        (Prompt::Text(t), Api::Completion) => b["prompt"] = json!(t),
        (Prompt::Text(t), Api::Chat) => b["messages"] = json!([{"role": "user", "content": t}]),
        (Prompt::Tokens(ids), Api::Chat) => {
            b["messages"] = json!([{"role": "user", "content": format!("{ids:?}")}]);
        }
    }
    b
}

/// The first choice's text (completion `text`, chat `delta.content` or `message.content`),
/// token ids (edgebench serve's extension) and finish reason.
fn choice(v: &Value, api: Api) -> (Option<String>, Option<Vec<i32>>, Option<String>) {
    let Some(c) = v.get("choices").and_then(|c| c.get(0)) else {
        return (None, None, None);
    };
    let text = match api {
        Api::Completion => c.get("text"),
        Api::Chat => c
            .get("delta")
            .or_else(|| c.get("message"))
            .and_then(|d| d.get("content")),
    }
    .and_then(Value::as_str)
    .map(str::to_owned);
    let ids = c.get("token_ids").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|x| x.as_i64().and_then(|x| i32::try_from(x).ok()))
            .collect()
    });
    let finish = c
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    (text, ids, finish)
}

fn usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    Some(Usage {
        prompt_tokens: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        completion_tokens: u.get("completion_tokens").and_then(Value::as_u64)?,
    })
}

fn excerpt(s: &str) -> String {
    let mut e: String = s.chars().take(160).collect();
    if e.len() < s.len() {
        e.push('…');
    }
    e
}

/// The innermost cause of an error chain: what actually went wrong (`Connection refused`).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &dyn std::error::Error = e;
    let mut text = e.to_string();
    while let Some(next) = cause.source() {
        cause = next;
        text = format!("{text}: {next}");
    }
    text
}
