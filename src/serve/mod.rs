//! `edgebench serve`: an OpenAI-compatible server over edgebench's own engines and scheduler.
//!
//! `/v1/completions` and `/v1/chat/completions` (streaming with server-sent events, or not;
//! `usage`, with `stream_options.include_usage` when streaming), `/v1/models`, `/props` (as
//! llama-server names it) and `/health`. A full queue answers 429 and an admission timeout 503,
//! both with `Retry-After`. Shutdown (SIGINT/SIGTERM) stops accepting, lets streams in flight
//! finish for a grace period, then ends them. Faults for tests are injected only when asked
//! ([`ServerFaults`], chosen per request by [`edgebench_core::serve_faults::pick`]).
//!
//! Binds 127.0.0.1 unless told otherwise.

pub mod engine;
pub mod launch;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use edgebench_core::scenario::ServerFaults;

pub use engine::{EngineConfig, Job, JobPrompt, Piece};

/// Everything `edgebench serve` is started with.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub engine: EngineConfig,
    /// The id `/v1/models` lists (requests may name any model: the one loaded answers).
    pub model_id: String,
    pub address: SocketAddr,
    pub faults: ServerFaults,
    /// Seeds the fault sequence.
    pub seed: u64,
    /// How long in-flight streams may run on after a shutdown signal.
    pub grace: Duration,
    /// The key every request but `/health` must carry (`Authorization: Bearer …`).
    pub api_key: Option<ApiKey>,
}

/// A key clients must send. It lives in memory only: `Debug` redacts it and nothing formats it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    #[must_use]
    pub fn new(key: String) -> Self {
        Self(key)
    }

    /// Whether `sent` is the key, comparing every byte whatever the first difference (no
    /// timing hint of how much of a guess was right).
    pub(crate) fn matches(&self, sent: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), sent.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("could not bind {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the engine could not start: {0}")]
    Engine(String),
    #[error("the server's runtime failed: {0}")]
    Runtime(std::io::Error),
}

/// Shared by every handler.
pub(crate) struct State {
    pub jobs: std::sync::Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    pub model_id: String,
    pub faults: ServerFaults,
    pub seed: u64,
    /// Requests seen, for the fault sequence (the first is 1).
    pub requests: AtomicU64,
    pub started: std::time::SystemTime,
    pub props: serde_json::Value,
    pub api_key: Option<ApiKey>,
}

/// Loads the model, binds, prints `listening on http://ADDR/v1` on stdout (tests and
/// launchers read the port from it), and serves until SIGINT or SIGTERM.
pub fn serve(options: ServeOptions) -> Result<(), ServeError> {
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<Job>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let engine_config = options.engine.clone();
    let engine = std::thread::Builder::new()
        .name("edgebench-serve-engine".into())
        .spawn(move || engine::run(&engine_config, &jobs_rx, &ready_tx))
        .map_err(ServeError::Runtime)?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(ServeError::Engine(e)),
        Err(_) => {
            return Err(ServeError::Engine(
                "the engine thread ended while loading".into(),
            ));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let e = &options.engine;
    let props = serde_json::json!({
        "model_path": e.model_path.display().to_string(),
        "model_id": options.model_id,
        "engine": e.backend.as_str(),
        "server": "edgebench serve",
        "version": crate::TOOL_VERSION,
        "build": crate::BUILD_PROFILE,
        "total_slots": e.scheduler.slots,
        "queue_capacity": e.scheduler.queue_capacity,
        "admission_timeout_ms": e.scheduler.admission_timeout_ns.map(|n| n / 1_000_000),
        "n_ctx": e.load.context,
        "threads": e.load.threads,
        "faults_injected": options.faults.any(),
        "api_key_required": options.api_key.is_some(),
    });
    let state = Arc::new(State {
        jobs: std::sync::Mutex::new(Some(jobs_tx)),
        model_id: options.model_id.clone(),
        faults: options.faults,
        seed: options.seed,
        requests: AtomicU64::new(0),
        started: std::time::SystemTime::now(),
        props,
        api_key: options.api_key.clone(),
    });
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(options.address)
            .await
            .map_err(|source| ServeError::Bind {
                address: options.address,
                source,
            })?;
        let local = listener.local_addr().map_err(ServeError::Runtime)?;
        println!("listening on http://{local}/v1");
        let app = routes::router(Arc::clone(&state));
        let shutdown = shutdown_signal();
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let grace = options.grace;
        let serving = tokio::spawn(async move {
            let r = server.await;
            let _ = done_tx.send(());
            r
        });
        // After the signal: streams in flight get `grace` to finish, then the process ends them.
        tokio::select! {
            _ = done_rx => {}
            () = async { shutdown_signal().await; tokio::time::sleep(grace).await } => {}
        }
        serving.abort();
        Ok::<(), ServeError>(())
    });
    // Closing the job channel lets the engine drain and stop.
    if let Ok(mut jobs) = state.jobs.lock() {
        jobs.take();
    }
    drop(runtime);
    let _ = engine.join();
    served
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
