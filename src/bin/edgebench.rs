//! `edgebench serve`: an OpenAI-compatible server over edgebench's engines and scheduler (see
//! `edgebench::serve`). Binds 127.0.0.1 unless `--host` says otherwise.
//! `edgebench quantize`: a GGUF's weights converted by llama.cpp's own quantizer.
//! `edgebench quality`: one configuration's KLD against llama.cpp with an f16 cache over a
//! text, printed as JSON (what `cargo xtask anchor llama-perplexity` compares).
//! `edgebench paired`: two GGUF files decoded in one process in alternating rounds, the second's
//! speed ÷ the first's per round with a CI (what `cargo xtask fidelity --paired` runs).

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
    /// Write a copy of a GGUF with its weights converted by llama.cpp's own quantizer.
    Quantize(Quantize),
    /// Print, as JSON, one configuration's KLD against llama.cpp with an f16 cache over a text.
    Quality(QualityArgs),
    /// Decode two GGUF files in one process in alternating rounds and print, as JSON, the
    /// second's speed ÷ the first's per round and the median with its 95% CI.
    Paired(PairedArgs),
}

#[derive(clap::Args)]
struct PairedArgs {
    /// The reference file (a real model).
    first: PathBuf,
    /// The file compared with it (its random-weight copy, or the same file).
    second: PathBuf,
    /// What decodes the first file: llama_cpp, candle, or candle-transformers (its stock
    /// quantized model, as the candle anchor runs it).
    #[arg(long, default_value = "llama_cpp")]
    engine: String,
    /// What decodes the second file; `--engine`'s when left out.
    #[arg(long)]
    second_engine: Option<String>,
    /// Also time candle's kernel on every weight matrix of the first file, one token's
    /// activations each, this many times (where a decode step's time goes).
    #[arg(long)]
    matmul_profile: Option<usize>,
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Prompt tokens per round: the depth generation starts at.
    #[arg(long, default_value_t = 32)]
    prompt_tokens: usize,
    /// Tokens generated per round.
    #[arg(long, default_value_t = 64)]
    generate_tokens: usize,
    /// Recorded rounds (after one warm-up round).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

#[derive(clap::Args)]
struct Quantize {
    /// The GGUF to convert (quantized weights are dequantized first).
    input: PathBuf,
    /// Where to write the copy.
    output: PathBuf,
    /// Weight type: F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_0, Q4_K_M, Q4_K_S, Q4_1, Q4_0, Q3_K_M, Q2_K.
    #[arg(long)]
    to: String,
    #[arg(long, default_value_t = 2)]
    threads: u32,
}

#[derive(clap::Args)]
struct QualityArgs {
    /// The candidate's GGUF.
    #[arg(long)]
    model_file: PathBuf,
    /// The reference's GGUF (default: the candidate's file; give the F16 file to measure a
    /// weight quantization).
    #[arg(long)]
    reference_file: Option<PathBuf>,
    /// The text (UTF-8).
    #[arg(long)]
    corpus: PathBuf,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 512)]
    context: u32,
    /// At most this many chunks (default: every whole chunk).
    #[arg(long)]
    chunks: Option<usize>,
    /// The candidate's engine: llama_cpp or candle (the reference is always llama.cpp).
    #[arg(long, default_value = "llama_cpp")]
    engine: String,
    /// The candidate's K and V cache types (f16, q8_0, q4_0, ...).
    #[arg(long, default_value = "f16")]
    type_k: String,
    #[arg(long, default_value = "f16")]
    type_v: String,
    /// Flash attention for the candidate.
    #[arg(long)]
    flash_attention: bool,
    /// Flash attention for the reference too.
    #[arg(long)]
    reference_flash_attention: bool,
    #[arg(long, default_value_t = 2)]
    threads: u32,
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
    /// The environment variable holding the key every request must send (Authorization:
    /// Bearer); the key itself never goes on the command line.
    #[arg(long)]
    api_key_env: Option<String>,
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
    let s = match Cli::parse().command {
        Command::Serve(s) => s,
        Command::Quantize(q) => {
            return edgebench::engines::quantize(&q.input, &q.output, &q.to, q.threads)
                .map_err(|e| anyhow::anyhow!("{e}"));
        }
        Command::Quality(q) => return quality(&q),
        Command::Paired(p) => return paired(&p),
    };
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
                Some(q) => {
                    let quant: edgebench_core::quant::Quant =
                        q.parse().map_err(|e| anyhow::anyhow!("--quant: {e}"))?;
                    entry
                        .file(quant)
                        .with_context(|| format!("model `{id}` lists no `{q}` file"))?
                }
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
        api_key: match &s.api_key_env {
            Some(var) => Some(edgebench::serve::ApiKey::new(std::env::var(var).map_err(
                |_| anyhow::anyhow!("--api-key-env {var}: the variable is not set"),
            )?)),
            None => None,
        },
    };
    edgebench::serve::serve(options)?;
    Ok(())
}

fn quality(q: &QualityArgs) -> Result<()> {
    use edgebench_backend::{KvType, Pinned};
    let backend: BackendKind = q
        .engine
        .parse()
        .map_err(|e| anyhow::anyhow!("--engine: {e}"))?;
    let engine = edgebench::engines::engine(backend).map_err(|e| anyhow::anyhow!("{e}"))?;
    let kv = |name: &str, flag: &str| -> Result<KvType> {
        name.parse().map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let text = std::fs::read_to_string(&q.corpus)
        .with_context(|| format!("reading {}", q.corpus.display()))?;
    let pinned = q.type_k != "f16" || q.type_v != "f16" || q.flash_attention;
    let base = LoadOptions {
        threads: q.threads,
        batch: q.context,
        ..LoadOptions::default()
    };
    let candidate = edgebench::execute::quality::chunk_options(
        &LoadOptions {
            type_k: kv(&q.type_k, "--type-k")?,
            type_v: kv(&q.type_v, "--type-v")?,
            flash_attention: q.flash_attention,
            pinned: Pinned {
                cache_types: pinned,
                flash_attention: pinned,
                ..Pinned::default()
            },
            ..base.clone()
        },
        q.context,
    );
    let reference = edgebench::execute::quality::chunk_options(
        &LoadOptions {
            flash_attention: q.reference_flash_attention,
            ..base
        },
        q.context,
    );
    let reference_file = q.reference_file.as_ref().unwrap_or(&q.model_file);
    let vocabulary = edgebench::engines::reference_vocabulary_for(reference_file, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = std::time::Instant::now();
    let (s, chunks) = edgebench::execute::quality::measure_text_between(
        engine,
        &q.model_file,
        &candidate,
        reference_file,
        &reference,
        vocabulary.as_ref(),
        &text,
        q.context,
        q.chunks.unwrap_or(usize::MAX),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", q.corpus.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "chunks": chunks, "context": q.context, "tokens": s.tokens,
            "mean_kld": s.mean_kld, "kld_stderr": s.kld_stderr, "median_kld": s.median_kld,
            "p99_kld": s.p99_kld, "max_kld": s.max_kld, "same_top1": s.same_top1,
            "same_top1_stderr": s.same_top1_stderr, "delta_log_ppl": s.delta_log_ppl,
            "reference_ppl": s.reference_ppl, "candidate_ppl": s.candidate_ppl,
            "seconds": start.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}

fn paired(p: &PairedArgs) -> Result<()> {
    use edgebench::paired::Decoder;
    use edgebench_core::stats;
    let decoder = |name: &str, flag: &str| -> Result<Decoder> {
        name.parse().map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let first_decoder = decoder(&p.engine, "--engine")?;
    let second_decoder = match &p.second_engine {
        Some(name) => decoder(name, "--second-engine")?,
        None => first_decoder,
    };
    let plan = edgebench::paired::PairPlan {
        threads: p.threads,
        prompt_tokens: p.prompt_tokens,
        generate_tokens: p.generate_tokens,
        rounds: p.rounds,
    };
    let result = edgebench::paired::run(
        [&p.first, &p.second],
        [first_decoder, second_decoder],
        &plan,
    )?;
    let profile = match p.matmul_profile {
        Some(repetitions) => {
            edgebench::engines::candle_matmul_profile(&p.first, p.threads, repetitions)?
                .into_iter()
                .map(|share| {
                    serde_json::json!({
                        "storage": share.storage, "tensors": share.tensors,
                        "bytes": share.bytes, "seconds_per_token": share.seconds_per_token,
                    })
                })
                .collect()
        }
        None => Vec::new(),
    };
    let summary = |ratios: Vec<f64>| {
        let ci = stats::bootstrap_median_ci(&ratios, 0.95, 2000, 1);
        let median = stats::summarize(&ratios).map(|s| s.median);
        serde_json::json!({
            "median": median, "ci95": ci.map(|c| [c.low, c.high]), "per_round": ratios,
        })
    };
    println!(
        "{}",
        serde_json::json!({
            "first": p.first, "second": p.second,
            "first_engine": first_decoder.to_string(), "second_engine": second_decoder.to_string(),
            "threads": p.threads, "prompt_tokens": p.prompt_tokens,
            "generate_tokens": p.generate_tokens, "rounds": p.rounds,
            "first_generation_tokens_per_s": stats::summarize(&result.decode_rates(0)).map(|s| s.median),
            "second_generation_tokens_per_s": stats::summarize(&result.decode_rates(1)).map(|s| s.median),
            "others_cpu_share": result.others_cpu_share, "contended": result.contended(),
            "generation_ratio": summary(result.decode_ratios()),
            "prefill_ratio": summary(result.prefill_ratios()),
            "first_prefill_tokens_per_s": stats::summarize(&result.prefill_rates(0)).map(|s| s.median),
            "second_prefill_tokens_per_s": stats::summarize(&result.prefill_rates(1)).map(|s| s.median),
            "matmul_profile": profile,
        })
    );
    Ok(())
}
