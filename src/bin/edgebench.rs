//! `edgebench serve`: an OpenAI-compatible server over edgebench's engines and scheduler (see
//! `edgebench::serve`). Binds 127.0.0.1 unless `--host` says otherwise.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use edgebench::serve::{EngineConfig, ServeOptions};
use edgebench_backend::{BackendKind, LoadOptions};
use edgebench_core::scenario::ServerFaults;
use edgebench_core::schedule::SchedulerConfig;

#[derive(Parser)]
#[command(
    name = "edgebench",
    version,
    about = "edgebench: reproducible on-device LLM benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a model over the OpenAI API (completions and chat, streaming or not).
    Serve(Serve),
}

#[derive(clap::Args)]
struct Serve {
    /// Registry id from models.toml (with --quant), e.g. smollm2-135m.
    #[arg(long, conflicts_with = "model_file")]
    model: Option<String>,
    /// Quantization of the registry model (default: its first file).
    #[arg(long, requires = "model")]
    quant: Option<String>,
    /// A GGUF file to serve instead of a registry model.
    #[arg(long)]
    model_file: Option<PathBuf>,
    /// The id /v1/models lists (default: the registry id or the file's stem).
    #[arg(long)]
    model_id: Option<String>,
    /// A built-in chat template name for files that carry none.
    #[arg(long)]
    chat_template: Option<String>,
    /// llama_cpp or candle.
    #[arg(long, default_value = "llama_cpp")]
    engine: String,
    /// Address to bind; 127.0.0.1 unless you mean to serve your network.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// 0 picks a free port (printed on the first line of stdout).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Context per slot, in tokens.
    #[arg(long, default_value_t = 2048)]
    context: u32,
    /// Requests generating at once.
    #[arg(long, default_value_t = 4)]
    slots: u32,
    /// Requests that may wait for a slot; one more is answered 429 (default: 64).
    #[arg(long, default_value_t = 64)]
    queue: u32,
    /// A request waiting longer than this for a slot is answered 503.
    #[arg(long)]
    admission_timeout_ms: Option<u64>,
    /// Seeds sampling and the fault sequence.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// After SIGTERM/SIGINT, streams in flight may run this long.
    #[arg(long, default_value_t = 10_000)]
    grace_ms: u64,
    /// Tests only: added before every response.
    #[arg(long, default_value_t = 0)]
    fault_latency_ms: u64,
    #[arg(long, default_value_t = 0.0)]
    fault_error_rate: f64,
    #[arg(long, default_value_t = 0.0)]
    fault_overload_rate: f64,
    #[arg(long, default_value_t = 0.0)]
    fault_cut_rate: f64,
    #[arg(long, default_value_t = 0.0)]
    fault_stall_rate: f64,
    #[arg(long, default_value_t = 0.0)]
    fault_malformed_rate: f64,
    /// Where cut, stalled and malformed streams go wrong.
    #[arg(long, default_value_t = 2)]
    fault_after_tokens: u32,
    /// Abort the process when this request arrives (counting from 1).
    #[arg(long)]
    fault_kill_at_request: Option<u32>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<()> {
    let Command::Serve(s) = Cli::parse().command;
    let backend: BackendKind = s
        .engine
        .parse()
        .map_err(|e| anyhow::anyhow!("--engine: {e}"))?;
    if matches!(backend, BackendKind::Http | BackendKind::Hybrid) {
        bail!("--engine must be an in-process engine (llama_cpp or candle)");
    }
    let root = edgebench::paths::root();
    let (model_path, default_id, template) = match (&s.model, &s.model_file) {
        (Some(id), None) => {
            let registry = edgebench::catalog::load_registry(&root)?;
            let entry = registry
                .get(id)
                .with_context(|| format!("model `{id}` is not in models.toml"))?;
            let file = match &s.quant {
                Some(q) => entry
                    .file(q)
                    .with_context(|| format!("model `{id}` lists no `{q}` file"))?,
                None => entry
                    .files
                    .first()
                    .with_context(|| format!("model `{id}` lists no files"))?,
            };
            let path = edgebench::paths::models_dir(&root).join(&file.path);
            (path, id.clone(), entry.chat_template.clone())
        }
        (None, Some(path)) => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (path.clone(), stem, None)
        }
        _ => bail!("say what to serve: --model <registry id> or --model-file <gguf>"),
    };
    edgebench_backend::check_model_file(&model_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let load = LoadOptions {
        threads: s.threads,
        context: s.context,
        positions_needed: s.context,
        max_sequences: s.slots.max(1),
        seed: s.seed,
        ..LoadOptions::default()
    };
    let options = ServeOptions {
        engine: EngineConfig {
            backend,
            model_path,
            chat_template: s.chat_template.or(template),
            load,
            scheduler: SchedulerConfig {
                slots: s.slots.max(1) as usize,
                queue_capacity: s.queue as usize,
                admission_timeout_ns: s.admission_timeout_ms.map(|ms| ms * 1_000_000),
            },
        },
        model_id: s.model_id.unwrap_or(default_id),
        address: SocketAddr::new(s.host, s.port),
        faults: ServerFaults {
            latency_ms: s.fault_latency_ms,
            error_rate: s.fault_error_rate,
            overload_rate: s.fault_overload_rate,
            cut_rate: s.fault_cut_rate,
            stall_rate: s.fault_stall_rate,
            malformed_rate: s.fault_malformed_rate,
            after_tokens: s.fault_after_tokens,
            kill_at_request: s.fault_kill_at_request,
        },
        seed: s.seed,
        grace: Duration::from_millis(s.grace_ms),
    };
    edgebench::serve::serve(options)?;
    Ok(())
}
