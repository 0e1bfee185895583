//! Runs one case: checks it can run here, loads the model once, serves the prompts for every
//! warmup and measured repetition, and writes the run with every raw sample to the store.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edgebench_backend::{
    Backend, BackendError, BackendKind, LoadOptions, SeqId, Session, TokenId, Vocabulary,
};
use edgebench_core::registry::Origin;
use edgebench_core::scenario::{Category, Device, KvType, Sampling};
use edgebench_core::{Case, ModelEntry, Registry, projection};
use edgebench_store::{
    CaseRow, EffectiveRow, ModelRow, NewRunRow, RequestRow, RunEndRow, RunStatus, Store, StoreError,
};

use crate::dataset::{self, DatasetError, Prompt};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("cannot read model file {}: {source}", path.display())]
    ReadModel {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "model file {} has sha256 {actual}, but models.toml expects {expected}; delete it and run `cargo xtask models fetch`",
        path.display()
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("case {case}: {message}")]
    Case { case: String, message: String },
}

/// Whether a case can run on this machine and build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready {
        model_path: PathBuf,
    },
    /// The case is ignored, with a reason that says what is missing and how to get it.
    Skip(String),
}

/// The engine for `kind`, if this build has it.
pub fn engine(kind: BackendKind) -> Result<&'static dyn Backend, String> {
    match kind {
        BackendKind::LlamaCpp => edgebench_llama::LlamaCpp::global()
            .map(|b| b as &dyn Backend)
            .map_err(|e| e.to_string()),
        BackendKind::Candle => Ok(edgebench_candle::Candle::global() as &dyn Backend),
    }
}

/// The tokenizer every engine's token ids come from: llama.cpp's, reading the GGUF's own
/// vocabulary (loaded without weights).
pub fn reference_vocabulary(model: &Path) -> Result<Box<dyn Vocabulary>, BackendError> {
    let llama = edgebench_llama::LlamaCpp::global()?;
    Ok(Box::new(llama.vocabulary(model)?))
}

/// How `case` asks an engine to load its model.
#[must_use]
pub fn load_options(case: &Case) -> LoadOptions {
    let s = &case.scenario;
    let multi_turn = s.category == Category::MultiTurn;
    LoadOptions {
        threads: case.threads,
        context: case.context(),
        batch: s.batch,
        max_sequences: case.concurrency,
        mmap: case.kv.mmap,
        type_k: case.kv.type_k,
        type_v: case.kv.type_v,
        flash_attention: case.kv.flash_attention,
        pinned: case.kv.pinned,
        sampling: s.sampling,
        seed: s.seed,
        engine_logs: false,
        // A conversation may fill the whole context; a single prompt needs at most its tokens
        // plus the generated ones.
        positions_needed: if multi_turn {
            case.context()
        } else {
            (s.prompt_tokens + s.generate_tokens).min(case.context())
        },
        continues_prefill: multi_turn,
    }
}

/// Checks device, engine, model file and memory budget, without loading anything.
#[must_use]
pub fn readiness(case: &Case, registry: &Registry, models_dir: &Path) -> Readiness {
    let s = &case.scenario;
    match case.backend {
        // candle knows which accelerators it was compiled with.
        BackendKind::Candle => {
            if let Err(reason) = edgebench_candle::device(s.device.as_str()) {
                return Readiness::Skip(reason);
            }
            if s.device != Device::Cpu {
                return Readiness::Skip(format!(
                    "device `{}`: the harness drives candle on the CPU only for now",
                    s.device.as_str()
                ));
            }
        }
        BackendKind::LlamaCpp if s.device != Device::Cpu => {
            return Readiness::Skip(format!(
                "device `{}` is not built into this edgebench's llama.cpp (compiled: cpu); rebuild llama-cpp-2 with its `{}` feature",
                s.device.as_str(),
                s.device.as_str()
            ));
        }
        BackendKind::LlamaCpp => {}
    }
    let backend = match engine(case.backend) {
        Ok(b) => b,
        Err(reason) => return Readiness::Skip(reason),
    };
    let Some(entry) = registry.get(&case.model) else {
        return Readiness::Skip(format!("model `{}` is not in models.toml", case.model));
    };
    let Some(file) = entry.file(&case.quant) else {
        return Readiness::Skip(format!(
            "model `{}` lists no `{}` file",
            case.model, case.quant
        ));
    };
    let model_path = models_dir.join(&file.path);
    if !model_path.is_file() {
        return Readiness::Skip(format!(
            "model file not present: {}; {}",
            model_path.display(),
            entry.obtain
        ));
    }
    if let Some(budget) = s.memory_budget {
        let (weights, kv) = estimated_memory(case, entry, &model_path);
        if weights + kv > budget {
            return Readiness::Skip(format!(
                "estimated memory {} MiB (weights {} MiB + KV {} MiB for {} × {} tokens) exceeds the budget of {} MiB",
                (weights + kv) >> 20,
                weights >> 20,
                kv >> 20,
                case.concurrency,
                case.context(),
                budget >> 20
            ));
        }
    }
    if let Some(reason) = backend.refuses(&model_path, &load_options(case)) {
        return Readiness::Skip(reason);
    }
    Readiness::Ready { model_path }
}

/// Memory a case needs before anything is computed: the weights file and the KV cache for
/// `context × concurrency` tokens at the engine's cache type (candle keeps f32, twice f16).
/// Compute buffers are not included; runs store this estimate beside the measured peak RSS.
#[must_use]
pub fn estimated_memory(case: &Case, entry: &ModelEntry, model_path: &Path) -> (u64, u64) {
    let weights = std::fs::metadata(model_path).map_or(0, |m| m.len());
    let (context, sequences) = (case.context(), case.concurrency);
    let kv = if case.backend == BackendKind::Candle {
        projection::kv_bytes(&entry.arch, KvType::F16, KvType::F16, context, sequences) * 2
    } else {
        projection::kv_bytes(
            &entry.arch,
            case.kv.type_k,
            case.kv.type_v,
            context,
            sequences,
        )
    };
    (weights, kv)
}

/// What a finished case reports back to the harness.
#[derive(Debug, Clone)]
pub struct CaseReport {
    pub run_id: String,
    pub measured_requests: usize,
    /// Generated tokens per second over all measured requests (aggregate).
    pub generation_tokens_per_s: f64,
    pub prefill_tokens_per_s: f64,
    pub first_output: String,
    pub first_output_tokens: Vec<TokenId>,
}

/// How many times a case runs, and over how many prompts.
#[derive(Debug, Clone, Copy)]
struct RunPlan {
    warmup: u32,
    repetitions: u32,
    prompts: usize,
}

/// Runs cases and writes them to one store. Open one per harness invocation.
#[derive(Debug)]
pub struct Runner {
    pub root: PathBuf,
    pub models_dir: PathBuf,
    store: Store,
    device_id: i64,
    invocation: String,
    host: String,
    hashes: HashMap<PathBuf, (u64, String)>,
    smoke: bool,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn unique_id(parts: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    edgebench_core::sha256_hex(format!("{parts}|{}|{nanos}|{n}", std::process::id()).as_bytes())
        [..32]
        .to_owned()
}

/// Resets the kernel's peak-RSS counter for this process (Linux), so VmHWM measures one case.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`).
#[must_use]
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn sha256_file(path: &Path) -> Result<String, RunError> {
    use sha2::Digest;
    let err = |source| RunError::ReadModel {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Digest of generated token ids (little-endian i32s), for bit-for-bit comparison of reruns.
#[must_use]
pub fn token_digest(tokens: &[TokenId]) -> String {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    edgebench_core::sha256_hex(&bytes)
}

fn case_row(case: &Case) -> CaseRow {
    let s = &case.scenario;
    CaseRow {
        case_key: case.key(),
        name: case.name.clone(),
        scenario: s.name.clone(),
        category: s.category.as_str().into(),
        model: case.model.clone(),
        quant: case.quant.clone(),
        backend: case.backend.as_str().into(),
        device: s.device.as_str().into(),
        concurrency: case.concurrency,
        threads: case.threads,
        context: case.context(),
        prompt_tokens: s.prompt_tokens,
        generate_tokens: s.generate_tokens,
        batch: s.batch,
        kv_variant: case.kv.name.clone(),
        kv_baseline: case.kv.baseline,
        type_k: case.kv.type_k.as_str().into(),
        type_v: case.kv.type_v.as_str().into(),
        flash_attention: case.kv.flash_attention,
        mmap: case.kv.mmap,
        sampling: match s.sampling {
            Sampling::Greedy => "greedy".into(),
            Sampling::Temperature { temperature, top_k } => {
                format!("temperature={temperature} top_k={top_k}")
            }
        },
    }
}

/// How one turn is rendered. Plain text keeps both engines' inputs identical; multi-turn prompts
/// get a minimal role prefix so later turns read as a conversation.
fn turn_text(category: Category, turn: usize, text: &str) -> String {
    if category == Category::MultiTurn {
        let lead = if turn == 0 { "" } else { "\n" };
        format!("{lead}User: {text}\nAssistant:")
    } else {
        text.to_owned()
    }
}

struct Request {
    prompt_id: String,
    /// Token ids per turn, tokenized once.
    turns: Vec<Vec<TokenId>>,
}

impl Runner {
    /// Opens the store at `db` and records this machine's fingerprint.
    pub fn open(root: &Path, models_dir: &Path, db: &Path) -> Result<Self, RunError> {
        let store = Store::open(db)?;
        let engines: Vec<_> = [BackendKind::LlamaCpp, BackendKind::Candle]
            .into_iter()
            .filter_map(|k| engine(k).ok())
            .map(Backend::build)
            .collect();
        let device = crate::fingerprint::collect(&engines);
        let device_id = store.upsert_device(&device)?;
        if store
            .device_measurement(device_id, crate::device_facts::TRIAD_KIND)?
            .is_none()
        {
            // Once per device and database: 3 × 96 MiB arrays, best of 5 (seeded).
            let t = crate::device_facts::triad(96 << 20, 5, 20_261_125);
            store.insert_device_measurement(&edgebench_store::DeviceMeasurementRow {
                device_id,
                kind: crate::device_facts::TRIAD_KIND.into(),
                value: t.best_bytes_per_s,
                median: t.median_bytes_per_s,
                n: t.repetitions.len() as u32,
                details: serde_json::json!({
                    "array_bytes": t.array_bytes, "threads": t.threads, "seed": t.seed,
                    "repetitions_bytes_per_s": t.repetitions,
                })
                .to_string(),
                measured_at_ms: now_ms(),
            })?;
        }
        let host = device.hostname.clone();
        store.mark_stale_runs_aborted(&host, |pid| Path::new(&format!("/proc/{pid}")).exists())?;
        Ok(Self {
            root: root.to_owned(),
            models_dir: models_dir.to_owned(),
            store,
            device_id,
            invocation: unique_id("invocation"),
            host,
            hashes: HashMap::new(),
            smoke: false,
        })
    }

    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn model_hash(&mut self, path: &Path) -> Result<(u64, String), RunError> {
        if let Some(h) = self.hashes.get(path) {
            return Ok(h.clone());
        }
        let size = std::fs::metadata(path)
            .map_err(|source| RunError::ReadModel {
                path: path.to_owned(),
                source,
            })?
            .len();
        let h = (size, sha256_file(path)?);
        self.hashes.insert(path.to_owned(), h.clone());
        Ok(h)
    }

    /// Smoke mode: every case runs once (no warmup, one repetition, one wave of prompts), to
    /// check that it works, not to measure it. Runs are stored with `mode = 'smoke'` and the
    /// repetitions actually run, so reports can leave them out.
    pub fn set_smoke(&mut self, smoke: bool) {
        self.smoke = smoke;
    }

    fn plan(&self, case: &Case) -> RunPlan {
        let s = &case.scenario;
        let prompts = s.prompts.map_or(usize::MAX, |n| n as usize);
        if self.smoke {
            RunPlan {
                warmup: 0,
                repetitions: 1,
                prompts: prompts.min(case.concurrency.max(1) as usize),
            }
        } else {
            RunPlan {
                warmup: s.warmup,
                repetitions: s.repetitions,
                prompts,
            }
        }
    }

    /// Identifier of this harness invocation (groups the runs and parity rows it writes).
    #[must_use]
    pub fn invocation(&self) -> &str {
        &self.invocation
    }

    /// Hashes the model file (once per path), checks it against models.toml and records it.
    pub fn register_model(
        &mut self,
        entry: &ModelEntry,
        quant: &str,
        model_path: &Path,
    ) -> Result<i64, RunError> {
        let (size, sha256) = self.model_hash(model_path)?;
        if let Some(expected) = entry.file(quant).and_then(|f| f.sha256.clone())
            && expected != sha256
        {
            return Err(RunError::HashMismatch {
                path: model_path.to_owned(),
                expected,
                actual: sha256,
            });
        }
        Ok(self.store.upsert_model(&ModelRow {
            sha256,
            registry_id: entry.id.clone(),
            label: entry.label(),
            origin: match entry.origin {
                Origin::Real => "real".into(),
                Origin::Twin => "twin".into(),
            },
            quant: quant.to_owned(),
            gguf_arch: entry.arch.gguf_arch.clone(),
            size_bytes: size,
            path: model_path.display().to_string(),
        })?)
    }

    /// Runs `case` with the model at `model_path` (from [`readiness`]) and stores the run.
    pub fn run_case(
        &mut self,
        case: &Case,
        entry: &ModelEntry,
        model_path: &Path,
    ) -> Result<CaseReport, RunError> {
        let model_id = self.register_model(entry, &case.quant, model_path)?;
        let case_id = self.store.upsert_case(&case_row(case))?;
        let run_id = unique_id(&case.key());
        let s = &case.scenario;
        let plan = self.plan(case);
        self.store.begin_run(&NewRunRow {
            id: run_id.clone(),
            invocation: self.invocation.clone(),
            case_id,
            device_id: self.device_id,
            model_id: Some(model_id),
            started_at_ms: now_ms(),
            tool_version: crate::TOOL_VERSION.into(),
            git_commit: crate::GIT_COMMIT.into(),
            scenario_file: s.source.file.clone(),
            scenario_sha256: s.source.sha256.clone(),
            seed: s.seed,
            warmup: plan.warmup,
            repetitions: plan.repetitions,
            mode: if self.smoke { "smoke" } else { "measure" }.into(),
            host: self.host.clone(),
            pid: std::process::id(),
        })?;

        let (weights, kv) = estimated_memory(case, entry, model_path);
        match self.measure(case, plan, model_path, weights + kv) {
            Ok((end, rows, report)) => {
                self.store.finish_run(&run_id, &end, &rows)?;
                Ok(CaseReport { run_id, ..report })
            }
            Err(e) => {
                let end = RunEndRow {
                    status: RunStatus::Failed,
                    ended_at_ms: now_ms(),
                    error: Some(e.to_string()),
                    load_ms: None,
                    kv_cache_bytes: None,
                    weights_bytes: None,
                    peak_rss_bytes: peak_rss_bytes(),
                    engine_counters: None,
                    effective: None,
                    estimated_peak_bytes: Some(weights + kv),
                    cpu_time_ms: None,
                    energy: None,
                };
                self.store.finish_run(&run_id, &end, &[])?;
                Err(e)
            }
        }
    }

    fn measure(
        &self,
        case: &Case,
        plan: RunPlan,
        model_path: &Path,
        estimated_peak_bytes: u64,
    ) -> Result<(RunEndRow, Vec<RequestRow>, CaseReport), RunError> {
        let s = &case.scenario;
        let prompts = dataset::load(&self.root.join(&s.dataset))?;
        let prompts: Vec<Prompt> = prompts.into_iter().take(plan.prompts).collect();

        let backend = engine(case.backend).map_err(|message| RunError::Case {
            case: case.name.clone(),
            message,
        })?;
        let options = load_options(case);
        let vocabulary = reference_vocabulary(model_path)?;
        let requests = tokenize(vocabulary.as_ref(), s.category, &prompts, s.prompt_tokens)?;
        reset_peak_rss();
        let load_start = Instant::now();
        let mut session = backend.load(model_path, &options)?;
        let load_ms = load_start.elapsed().as_secs_f64() * 1e3;

        let mut rows = Vec::new();
        let mut first_output: Option<(String, Vec<TokenId>)> = None;
        let rapl = crate::device_facts::Rapl::open();
        let (mut cpu_before, mut energy_before) = (None, None);
        for repetition in 0..plan.warmup + plan.repetitions {
            let warmup = repetition < plan.warmup;
            if repetition == plan.warmup {
                // Engine counters, CPU time and energy cover measured repetitions only, like
                // our own samples.
                session.reset_counters();
                cpu_before = crate::device_facts::process_cpu_ms();
                energy_before = rapl.as_ref().and_then(crate::device_facts::Rapl::read);
            }
            for (wave_index, wave) in requests.chunks(case.concurrency as usize).enumerate() {
                let base = wave_index * case.concurrency as usize;
                let served = serve_wave(session.as_mut(), wave, s.generate_tokens)?;
                for (i, (req, turns)) in wave.iter().zip(served).enumerate() {
                    for (turn, t) in turns.into_iter().enumerate() {
                        let visible = visible_tokens(vocabulary.as_ref(), &t.tokens);
                        let text = vocabulary.detokenize(visible)?;
                        if first_output.is_none() && !warmup {
                            first_output = Some((text.clone(), t.tokens.clone()));
                        }
                        rows.push(RequestRow {
                            repetition: repetition - plan.warmup.min(repetition),
                            warmup,
                            request_index: (base + i) as u32,
                            prompt_id: req.prompt_id.clone(),
                            turn: turn as u32,
                            seq: i as u32,
                            prompt_tokens: req.turns[turn].len() as u32,
                            generated_tokens: t.tokens.len() as u32,
                            queue_ns: 0,
                            prefill_ns: t.prefill_ns,
                            ttft_ns: t.prefill_ns,
                            decode_ns: t.latencies_ns.iter().sum(),
                            e2e_ns: t.prefill_ns + t.latencies_ns.iter().sum::<u64>(),
                            reset_ns: t.reset_ns,
                            output_sha256: token_digest(&t.tokens),
                            output_text: text,
                            token_latencies_ns: t.latencies_ns,
                        });
                    }
                }
            }
        }
        let counters = session.counters().map(|c| {
            serde_json::json!({
                "prompt_eval_ms": c.prompt_eval_ms, "prompt_eval_tokens": c.prompt_eval_tokens,
                "eval_ms": c.eval_ms, "eval_tokens": c.eval_tokens,
            })
            .to_string()
        });
        let cpu_time_ms = cpu_before
            .zip(crate::device_facts::process_cpu_ms())
            .map(|(before, after)| after - before);
        let energy = rapl.as_ref().and_then(|r| {
            let after = r.read()?;
            Some((
                r.joules_between(energy_before.as_deref()?, &after),
                "rapl".to_owned(),
            ))
        });
        let memory = session.memory();
        let effective = session.effective();
        drop(session);

        let measured: Vec<&RequestRow> = rows.iter().filter(|r| !r.warmup).collect();
        let rate = |tokens: u64, ns: u64| {
            if ns == 0 {
                0.0
            } else {
                tokens as f64 / (ns as f64 / 1e9)
            }
        };
        // Requests of one wave share their prefill and decode steps: count each step's time once.
        let generation_tokens_per_s = rate(
            measured
                .iter()
                .map(|r| u64::from(r.generated_tokens.saturating_sub(1)))
                .sum(),
            measured.iter().map(|r| r.decode_ns).sum::<u64>() / u64::from(case.concurrency),
        );
        let prefill_tokens_per_s = rate(
            measured.iter().map(|r| u64::from(r.prompt_tokens)).sum(),
            measured.iter().map(|r| r.prefill_ns).sum::<u64>() / u64::from(case.concurrency),
        );
        let (first_output, first_output_tokens) = first_output.unwrap_or_default();
        let end = RunEndRow {
            status: RunStatus::Passed,
            ended_at_ms: now_ms(),
            error: None,
            load_ms: Some(load_ms),
            kv_cache_bytes: Some(memory.kv_cache_bytes),
            weights_bytes: Some(memory.weights_bytes),
            peak_rss_bytes: peak_rss_bytes(),
            engine_counters: counters,
            effective: Some(EffectiveRow {
                kv_storage: effective.kv_storage,
                weights_loading: effective.weights.into(),
                scheduling: effective.scheduling.into(),
                flash_attention: effective.flash_attention,
            }),
            estimated_peak_bytes: Some(estimated_peak_bytes),
            cpu_time_ms,
            energy,
        };
        let report = CaseReport {
            run_id: String::new(),
            measured_requests: measured.len(),
            generation_tokens_per_s,
            prefill_tokens_per_s,
            first_output,
            first_output_tokens,
        };
        Ok((end, rows, report))
    }
}

/// Generated tokens up to (not including) the first end-of-generation token.
fn visible_tokens<'t>(vocabulary: &dyn Vocabulary, tokens: &'t [TokenId]) -> &'t [TokenId] {
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

/// Tokenizes every prompt once. Single-turn prompts longer than `max_tokens` keep their last
/// tokens (long-context questions come last), after the BOS token if the model adds one.
fn tokenize(
    vocabulary: &dyn Vocabulary,
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
            let turns = p
                .turns
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut ids = vocabulary.tokenize(&turn_text(category, i, t), i == 0)?;
                    keep_last_tokens(&mut ids, max, bos_token);
                    Ok(ids)
                })
                .collect::<Result<Vec<_>, BackendError>>()?;
            Ok(Request {
                prompt_id: p.id.clone(),
                turns,
            })
        })
        .collect()
}

/// One turn's measurements for one request.
struct TurnResult {
    tokens: Vec<TokenId>,
    /// Time to reset the sequence before its first turn (0 for later turns).
    reset_ns: u64,
    prefill_ns: u64,
    /// Time of each decode step after the first token.
    latencies_ns: Vec<u64>,
}

/// Serves up to `concurrency` requests together as parallel sequences: every turn is one prefill
/// of all active sequences, then `generate` − 1 decode steps. Generation always runs the full
/// length (end-of-generation tokens are recorded, not obeyed) so every repetition does equal work.
fn serve_wave(
    session: &mut dyn Session,
    wave: &[Request],
    generate: u32,
) -> Result<Vec<Vec<TurnResult>>, RunError> {
    let mut results: Vec<Vec<TurnResult>> = wave.iter().map(|_| Vec::new()).collect();
    let mut reset_ns = Vec::with_capacity(wave.len());
    for seq in 0..wave.len() {
        let start = Instant::now();
        session.reset(seq)?;
        reset_ns.push(start.elapsed().as_nanos() as u64);
    }
    let max_turns = wave.iter().map(|r| r.turns.len()).max().unwrap_or(0);
    // The last token of a turn was sampled but never fed back; the next turn's prefill starts
    // with it so the conversation in the KV cache is complete.
    let mut carried: Vec<Option<TokenId>> = vec![None; wave.len()];
    for turn in 0..max_turns {
        let active: Vec<SeqId> = (0..wave.len())
            .filter(|&i| turn < wave[i].turns.len())
            .collect();
        let owned: Vec<Vec<TokenId>> = active
            .iter()
            .map(|&i| {
                carried[i]
                    .into_iter()
                    .chain(wave[i].turns[turn].iter().copied())
                    .collect()
            })
            .collect();
        let prompts: Vec<(SeqId, &[TokenId])> = active
            .iter()
            .zip(&owned)
            .map(|(&i, t)| (i, t.as_slice()))
            .collect();
        let start = Instant::now();
        let first = session.prefill(&prompts)?;
        let prefill_ns = start.elapsed().as_nanos() as u64;
        let mut tokens: Vec<Vec<TokenId>> = first
            .iter()
            .map(|&t| {
                let mut v = Vec::with_capacity(generate as usize);
                v.push(t);
                v
            })
            .collect();
        let mut latencies: Vec<u64> = Vec::with_capacity(generate as usize);
        let mut inputs: Vec<(SeqId, TokenId)> =
            active.iter().zip(&first).map(|(&s, &t)| (s, t)).collect();
        for _ in 1..generate {
            let step = Instant::now();
            let next = session.decode_step(&inputs)?;
            latencies.push(step.elapsed().as_nanos() as u64);
            for (k, t) in next.into_iter().enumerate() {
                tokens[k].push(t);
                inputs[k].1 = t;
            }
        }
        for (k, &i) in active.iter().enumerate() {
            carried[i] = tokens[k].last().copied();
            results[i].push(TurnResult {
                tokens: std::mem::take(&mut tokens[k]),
                reset_ns: if turn == 0 { reset_ns[i] } else { 0 },
                prefill_ns,
                latencies_ns: latencies.clone(),
            });
        }
    }
    Ok(results)
}
