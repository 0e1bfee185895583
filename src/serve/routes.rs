//! The HTTP routes of `edgebench serve`, in OpenAI's wire format (the official `openai` Python
//! client parses them in `tests/it/serve.rs`), plus the faults a test asked for.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use edgebench_core::schedule::{Priority, Rejection};
use edgebench_core::serve_faults::{Fault, pick};
use futures_util::stream::{self, Stream, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Job, JobPrompt, Piece, State};

pub(super) fn router(state: Arc<State>) -> axum::Router {
    axum::Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/props", get(props))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .with_state(state)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Completion,
    Chat,
}

fn error(status: StatusCode, message: impl Into<String>, kind: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message.into(), "type": kind, "code": status.as_u16()}})),
    )
        .into_response()
}

fn overloaded(status: StatusCode, why: &str) -> Response {
    let mut r = error(status, why, "overloaded");
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// A 401 unless the request carries the server's key (when it has one).
fn unauthorized(state: &State, headers: &HeaderMap) -> Option<Response> {
    let key = state.api_key.as_ref()?;
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if sent.is_some_and(|s| key.matches(s)) {
        return None;
    }
    Some(error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong API key (send Authorization: Bearer <key>)",
        "invalid_request_error",
    ))
}

async fn models(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(refused) = unauthorized(&state, &headers) {
        return refused;
    }
    let created = state
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Json(json!({
        "object": "list",
        "data": [{"id": state.model_id, "object": "model", "created": created, "owned_by": "edgebench"}],
    }))
    .into_response()
}

async fn props(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(refused) = unauthorized(&state, &headers) {
        return refused;
    }
    Json(state.props.clone()).into_response()
}

async fn completions(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    handle(state, headers, body, Kind::Completion).await
}

async fn chat(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    handle(state, headers, body, Kind::Chat).await
}

/// The parts of a request body edgebench serve reads.
struct Parsed {
    prompt: JobPrompt,
    max_tokens: u32,
    stream: bool,
    include_usage: bool,
    ignore_eos: bool,
    priority: Priority,
}

fn parse(body: &Value, headers: &HeaderMap, kind: Kind) -> Result<Parsed, String> {
    let prompt = match kind {
        Kind::Completion => match body.get("prompt") {
            Some(Value::String(s)) => JobPrompt::Text(s.clone()),
            Some(Value::Array(a)) if a.iter().all(Value::is_i64) => JobPrompt::Tokens(
                a.iter()
                    .filter_map(|x| x.as_i64().and_then(|x| i32::try_from(x).ok()))
                    .collect(),
            ),
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
                JobPrompt::Text(a[0].as_str().unwrap_or_default().to_owned())
            }
            _ => return Err("`prompt` must be a string or an array of token ids".into()),
        },
        Kind::Chat => {
            let messages = body
                .get("messages")
                .and_then(Value::as_array)
                .ok_or("`messages` must be an array")?;
            let mut out = Vec::new();
            for m in messages {
                let role = m
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or("a message has no `role`")?;
                let content = match m.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    // Content parts: the text ones, joined.
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(""),
                    _ => return Err("a message has no text `content`".into()),
                };
                out.push((role.to_owned(), content));
            }
            JobPrompt::Messages(out)
        }
    };
    let max_tokens = body
        .get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(16);
    let max_tokens = u32::try_from(max_tokens)
        .map_err(|_| "`max_tokens` is too large")?
        .max(1);
    let priority_name = headers
        .get("x-edgebench-priority")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            body.get("priority")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let priority = match priority_name {
        None => Priority::Normal,
        Some(p) => p.parse::<Priority>().map_err(|e| e.to_string())?,
    };
    Ok(Parsed {
        prompt,
        max_tokens,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ignore_eos: body
            .get("ignore_eos")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        priority,
    })
}

async fn handle(
    state: Arc<State>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
    kind: Kind,
) -> Response {
    // Refused before it counts: the fault sequence numbers the requests the server accepted.
    if let Some(refused) = unauthorized(&state, &headers) {
        return refused;
    }
    let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if state.faults.kill_at_request == Some(n as u32) {
        // As if the process were killed: no answer, no cleanup.
        std::process::abort();
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                e.body_text(),
                "invalid_request_error",
            );
        }
    };
    let parsed = match parse(&body, &headers, kind) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e, "invalid_request_error"),
    };
    if state.faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(state.faults.latency_ms)).await;
    }
    let fault = pick(&state.faults, state.seed, n);
    match fault {
        Some(Fault::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected fault: server error",
                "server_error",
            );
        }
        Some(Fault::Overloaded) => {
            return overloaded(StatusCode::TOO_MANY_REQUESTS, "injected fault: overloaded");
        }
        _ => {}
    }
    let (reply, mut pieces) = mpsc::unbounded_channel();
    let job = Job {
        prompt: parsed.prompt,
        max_tokens: parsed.max_tokens,
        ignore_eos: parsed.ignore_eos,
        priority: parsed.priority,
        reply,
    };
    let sent = state
        .jobs
        .lock()
        .ok()
        .and_then(|j| j.as_ref().map(|tx| tx.send(job).is_ok()))
        .unwrap_or(false);
    if !sent {
        return overloaded(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        );
    }
    // The first piece decides the status: a refusal is an HTTP answer, not a broken stream.
    let first = match pieces.recv().await {
        Some(p) => p,
        None => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the engine stopped",
                "server_error",
            );
        }
    };
    match &first {
        Piece::Rejected(Rejection::QueueFull) => {
            return overloaded(StatusCode::TOO_MANY_REQUESTS, "the queue is full");
        }
        Piece::Rejected(Rejection::AdmissionTimeout) => {
            return overloaded(
                StatusCode::SERVICE_UNAVAILABLE,
                "no slot within the admission timeout",
            );
        }
        Piece::Failed {
            message,
            client_error,
        } => {
            let status = if *client_error {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return error(status, message.clone(), "invalid_request_error");
        }
        _ => {}
    }
    let meta = Meta {
        id: format!(
            "{}-{n}",
            if kind == Kind::Chat {
                "chatcmpl"
            } else {
                "cmpl"
            }
        ),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: state.model_id.clone(),
        kind,
    };
    if parsed.stream {
        streamed(meta, first, pieces, parsed.include_usage, fault).into_response()
    } else {
        whole(meta, first, pieces).await
    }
}

struct Meta {
    id: String,
    created: u64,
    model: String,
    kind: Kind,
}

impl Meta {
    fn chunk(&self, text: Option<&str>, ids: &[i32], finish: Option<&str>, first: bool) -> Value {
        let choice = match self.kind {
            Kind::Completion => json!({
                "index": 0, "text": text.unwrap_or(""), "token_ids": ids,
                "logprobs": null, "finish_reason": finish,
            }),
            Kind::Chat => {
                let mut delta = json!({});
                if first {
                    delta["role"] = json!("assistant");
                }
                if let Some(t) = text {
                    delta["content"] = json!(t);
                }
                json!({"index": 0, "delta": delta, "token_ids": ids, "logprobs": null, "finish_reason": finish})
            }
        };
        json!({
            "id": self.id, "object": self.object(true), "created": self.created,
            "model": self.model, "choices": [choice],
        })
    }

    fn object(&self, streaming: bool) -> &'static str {
        match (self.kind, streaming) {
            (Kind::Completion, _) => "text_completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Chat, false) => "chat.completion",
        }
    }
}

fn usage(prompt_tokens: u32, completion_tokens: u32) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

fn streamed(
    meta: Meta,
    first: Piece,
    pieces: mpsc::UnboundedReceiver<Piece>,
    include_usage: bool,
    fault: Option<Fault>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    enum Step {
        Piece(Piece),
        Done,
    }
    struct Run {
        meta: Meta,
        pending: Option<Piece>,
        pieces: mpsc::UnboundedReceiver<Piece>,
        tokens: u32,
        include_usage: bool,
        fault: Option<Fault>,
        over: bool,
    }
    let run = Run {
        meta,
        pending: Some(first),
        pieces,
        tokens: 0,
        include_usage,
        fault,
        over: false,
    };
    let events = stream::unfold(run, |mut run| async move {
        if run.over {
            return None;
        }
        let step = match run.pending.take() {
            Some(p) => Step::Piece(p),
            None => match run.pieces.recv().await {
                Some(p) => Step::Piece(p),
                None => Step::Done,
            },
        };
        let after = |f: Option<Fault>| match f {
            Some(Fault::Cut { after_tokens } | Fault::Stall { after_tokens } | Fault::Malformed { after_tokens }) => {
                Some(after_tokens)
            }
            _ => None,
        };
        if after(run.fault).is_some_and(|a| run.tokens >= a) {
            match run.fault {
                Some(Fault::Cut { .. }) => return None,
                Some(Fault::Stall { .. }) => {
                    // Silent until the client gives up (dropping this stream cancels the job).
                    std::future::pending::<()>().await;
                    return None;
                }
                _ => {
                    run.over = true;
                    let bad = SseEvent::default().data("{\"choices\": [{\"text\": \"unterminated");
                    return Some((vec![Ok(bad)], run));
                }
            }
        }
        let mut out = Vec::new();
        match step {
            Step::Piece(Piece::Token { id, text }) => {
                let first = run.tokens == 0;
                run.tokens += 1;
                let chunk = run.meta.chunk(Some(&text), &[id], None, first);
                out.push(Ok(SseEvent::default().data(chunk.to_string())));
            }
            Step::Piece(Piece::Done { prompt_tokens, completion_tokens, finish_reason }) => {
                let last = run.meta.chunk(None, &[], Some(finish_reason), run.tokens == 0);
                out.push(Ok(SseEvent::default().data(last.to_string())));
                if run.include_usage {
                    let u = json!({
                        "id": run.meta.id, "object": run.meta.object(true), "created": run.meta.created,
                        "model": run.meta.model, "choices": [], "usage": usage(prompt_tokens, completion_tokens),
                    });
                    out.push(Ok(SseEvent::default().data(u.to_string())));
                }
                out.push(Ok(SseEvent::default().data("[DONE]")));
                run.over = true;
            }
            Step::Piece(Piece::Failed { message, .. }) => {
                out.push(Ok(SseEvent::default()
                    .data(json!({"error": {"message": message, "type": "server_error"}}).to_string())));
                run.over = true;
            }
            // Only a first piece can be a rejection, and it never reaches a stream.
            Step::Piece(Piece::Rejected(_)) | Step::Done => return None,
        }
        Some((out, run))
    })
    .flat_map(stream::iter);
    Sse::new(events)
}

async fn whole(meta: Meta, first: Piece, mut pieces: mpsc::UnboundedReceiver<Piece>) -> Response {
    let mut text = String::new();
    let mut next = Some(first);
    loop {
        let piece = match next.take() {
            Some(p) => p,
            None => match pieces.recv().await {
                Some(p) => p,
                None => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the engine stopped",
                        "server_error",
                    );
                }
            },
        };
        match piece {
            Piece::Token { text: t, .. } => text.push_str(&t),
            Piece::Done {
                prompt_tokens,
                completion_tokens,
                finish_reason,
            } => {
                let choice = match meta.kind {
                    Kind::Completion => {
                        json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason})
                    }
                    Kind::Chat => json!({
                        "index": 0, "message": {"role": "assistant", "content": text},
                        "logprobs": null, "finish_reason": finish_reason,
                    }),
                };
                return Json(json!({
                    "id": meta.id, "object": meta.object(false), "created": meta.created,
                    "model": meta.model, "choices": [choice], "usage": usage(prompt_tokens, completion_tokens),
                }))
                .into_response();
            }
            Piece::Failed { message, .. } => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, message, "server_error");
            }
            Piece::Rejected(_) => return overloaded(StatusCode::SERVICE_UNAVAILABLE, "rejected"),
        }
    }
}
