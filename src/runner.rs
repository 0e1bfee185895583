//! Runs one case: checks it can run here, loads the model once, serves the prompts for every
//! warmup and measured repetition, and writes the run with every raw sample to the store.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edgebench_backend::{Backend, BackendError, BackendKind, LoadOptions, TokenId, Vocabulary};
use edgebench_core::measure::{self, StopReason};
use edgebench_core::overhead::RepetitionPhases;
use edgebench_core::registry::Origin;
use edgebench_core::scenario::{Category, Device, KvType, Sampling};
use edgebench_core::schedule::{self, SchedulerConfig};
use edgebench_core::{Case, ModelEntry, Registry, projection};
use edgebench_store::{
    AnswerRow, CaseRow, DeviceRow, EffectiveRow, MetricRow, ModelRow, NewRunRow, RequestRow,
    RooflineRow, RunEndRow, RunStatus, Store, StoreError,
};

use crate::serve::{
    self, Arrivals, MonotonicClock, ServeConfig, ServeError, Served, StepTotals, WorkItem,
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
    /// The model file is there but malformed: the case fails (an engine would abort on it).
    Invalid(String),
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
        max_sequences: case.slots(),
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
        let m = estimated_memory(case, entry, &model_path);
        if m.total() > budget {
            return Readiness::Skip(format!(
                "estimated memory {} MiB (weights {} MiB + KV {} MiB for {} × {} tokens + compute buffers {} MiB) exceeds {} MiB, the budget set by {}",
                m.total() >> 20,
                m.weights >> 20,
                m.kv >> 20,
                case.slots(),
                case.context(),
                m.compute >> 20,
                budget >> 20,
                s.memory_budget_source
            ));
        }
    }
    // No engine, not even the refusal check that reads metadata, sees a malformed file.
    if let Err(e) = edgebench_gguf::validate_file(&model_path) {
        return Readiness::Invalid(e.to_string());
    }
    if let Some(reason) = backend.refuses(&model_path, &load_options(case)) {
        return Readiness::Skip(reason);
    }
    Readiness::Ready { model_path }
}

/// Memory a case needs, projected before anything is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The weights file.
    pub weights: u64,
    /// KV cache for `context × slots` tokens at the engine's cache type (candle keeps f32).
    pub kv: u64,
    /// Compute buffers ([`projection::compute_buffer_bytes`]).
    pub compute: u64,
}

impl MemoryEstimate {
    #[must_use]
    pub fn total(&self) -> u64 {
        self.weights + self.kv + self.compute
    }
}

/// Bytes of KV cache per token of one sequence, at the cache type the engine really uses.
fn kv_bytes_per_token(case: &Case, entry: &ModelEntry) -> f64 {
    if case.backend == BackendKind::Candle {
        projection::kv_bytes_per_token(&entry.arch, KvType::F16, KvType::F16) * 2.0
    } else {
        projection::kv_bytes_per_token(&entry.arch, case.kv.type_k, case.kv.type_v)
    }
}

/// The memory guard's estimate for `case`; runs store it beside the measured peak RSS.
#[must_use]
pub fn estimated_memory(case: &Case, entry: &ModelEntry, model_path: &Path) -> MemoryEstimate {
    let weights = std::fs::metadata(model_path).map_or(0, |m| m.len());
    let tokens = f64::from(case.context()) * f64::from(case.slots());
    MemoryEstimate {
        weights,
        kv: (kv_bytes_per_token(case, entry) * tokens).round() as u64,
        compute: projection::compute_buffer_bytes(
            &entry.arch,
            case.scenario
                .batch
                .min(case.scenario.prompt_tokens * case.slots()),
            case.context(),
        ),
    }
}

/// What a finished case reports back to the harness.
#[derive(Debug, Clone)]
pub struct CaseReport {
    pub run_id: String,
    pub measured_requests: usize,
    pub measured_repetitions: u32,
    /// Median over repetitions of the aggregate decode rate (tokens from decode steps ÷ their
    /// time).
    pub generation_tokens_per_s: f64,
    pub prefill_tokens_per_s: f64,
    /// Requests turned away (queue full or admission timeout) in measured repetitions.
    pub rejected: usize,
    pub stop_reason: StopReason,
    pub roofline_fraction: Option<f64>,
    /// The memory guard's estimate and the measured peak RSS (the child's whole process).
    pub estimated_peak_bytes: u64,
    pub peak_rss_bytes: Option<u64>,
    pub first_output: String,
    pub first_output_tokens: Vec<TokenId>,
    /// Set for accuracy cases.
    pub accuracy: Option<crate::isolate::AccuracyReport>,
}

/// How many times a case runs, and over how many prompts.
#[derive(Debug, Clone, Copy)]
struct RunPlan {
    warmup: u32,
    repetitions: u32,
    prompts: usize,
}

fn warn_fallback(e: &StoreError, fallback: &Path) {
    eprintln!(
        "edgebench: {e}\n  results are kept in the fallback database {}; merge them later with \
         `cargo xtask ingest {}`",
        fallback.display(),
        fallback.display()
    );
}

/// Runs cases and writes them to one store. Open one per harness invocation.
#[derive(Debug)]
pub struct Runner {
    pub root: PathBuf,
    pub models_dir: PathBuf,
    store: Store,
    device: DeviceRow,
    device_id: i64,
    invocation: String,
    host: String,
    hashes: HashMap<PathBuf, (u64, String)>,
    smoke: bool,
    fixed_stopping: bool,
    /// Where runs go when `store` cannot take them (locked, read-only, full).
    fallback: PathBuf,
}

pub fn now_ms() -> i64 {
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

/// A fresh id for one harness invocation.
#[must_use]
pub fn new_invocation_id() -> String {
    unique_id("invocation")
}

/// Size and sha256 of a model file.
pub fn model_file_hash(path: &Path) -> Result<(u64, String), RunError> {
    let size = std::fs::metadata(path)
        .map_err(|source| RunError::ReadModel {
            path: path.to_owned(),
            source,
        })?
        .len();
    Ok((size, sha256_file(path)?))
}

/// A fresh, globally unique run id for `case`.
#[must_use]
pub fn new_run_id(case: &Case) -> String {
    unique_id(&case.key())
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
    /// Opens the store at `db` and records this machine's fingerprint. When `db` cannot take
    /// writes (locked past the busy timeout, read-only, full), the error is printed and the
    /// runner writes to the fallback database instead ([`crate::paths::fallback_database`]).
    pub fn open(root: &Path, models_dir: &Path, db: &Path) -> Result<Self, RunError> {
        let engines: Vec<_> = [BackendKind::LlamaCpp, BackendKind::Candle]
            .into_iter()
            .filter_map(|k| engine(k).ok())
            .map(Backend::build)
            .collect();
        let device = crate::fingerprint::collect(&engines);
        let fallback = crate::paths::fallback_database(root);
        let (store, device_id) = match Self::open_store(db, &device) {
            Ok(opened) => opened,
            Err(RunError::Store(e)) if e.is_unwritable() && db != fallback => {
                warn_fallback(&e, &fallback);
                Self::open_store(&fallback, &device)?
            }
            Err(e) => return Err(e),
        };
        // Runs are matched to their process by this host name when they are left `running`.
        let host = edgebench_store::local_host();
        Ok(Self {
            root: root.to_owned(),
            models_dir: models_dir.to_owned(),
            store,
            device,
            device_id,
            invocation: unique_id("invocation"),
            host,
            hashes: HashMap::new(),
            smoke: false,
            fixed_stopping: false,
            fallback,
        })
    }

    fn open_store(db: &Path, device: &DeviceRow) -> Result<(Store, i64), RunError> {
        let store = Store::open_with(db, &crate::paths::store_options())?;
        let device_id = store.upsert_device(device)?;
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
        Ok((store, device_id))
    }

    /// Stores a finished run: in the runner's database, or, when that refuses the write, whole
    /// in the fallback database (with its device, model and case rows), so it can be ingested
    /// later. `begun` says whether the database holds the run's `running` row.
    fn store_run(
        &mut self,
        begun: bool,
        run: &NewRunRow,
        model: &ModelRow,
        case: &CaseRow,
        (end, rows, answers): (&RunEndRow, &[RequestRow], &[AnswerRow]),
    ) -> Result<(), RunError> {
        if begun {
            match self
                .store
                .finish_run_with_answers(&run.id, end, rows, answers)
            {
                Ok(()) => return Ok(()),
                Err(e) if e.is_unwritable() && self.store.path() != self.fallback => {
                    warn_fallback(&e, &self.fallback);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut fallback = Store::open(&self.fallback)?;
        fallback.record_whole_run(&edgebench_store::WholeRun {
            device: &self.device,
            model: Some(model),
            case,
            run,
            end,
            requests: rows,
            answers,
        })?;
        eprintln!(
            "edgebench: run {} of {} kept in {}",
            run.id,
            case.name,
            self.fallback.display()
        );
        Ok(())
    }

    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Groups this runner's runs under `invocation` (a child process joins its parent's).
    pub fn set_invocation(&mut self, invocation: String) {
        self.invocation = invocation;
    }

    /// The size and sha256 of a model file, hashed once per path and runner.
    pub fn model_hash(&mut self, path: &Path) -> Result<(u64, String), RunError> {
        if let Some(h) = self.hashes.get(path) {
            return Ok(h.clone());
        }
        let h = model_file_hash(path)?;
        self.hashes.insert(path.to_owned(), h.clone());
        Ok(h)
    }

    /// Smoke mode: every case runs once (no warmup, one repetition, one wave of prompts), to
    /// check that it works, not to measure it. Runs are stored with `mode = 'smoke'` and the
    /// repetitions actually run, so reports can leave them out.
    pub fn set_smoke(&mut self, smoke: bool) {
        self.smoke = smoke;
    }

    /// Ignores every scenario's `[stopping]` and runs its `max_repetitions` instead: the fixed
    /// plan adaptive stopping is measured against (`EDGEBENCH_STOPPING=fixed`).
    pub fn set_fixed_stopping(&mut self, fixed: bool) {
        self.fixed_stopping = fixed;
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
                repetitions: match &s.stopping {
                    Some(stopping) if self.fixed_stopping => stopping.max_repetitions,
                    _ => s.repetitions,
                },
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
        let row = self.model_row(entry, quant, model_path)?;
        Ok(self.store.upsert_model(&row)?)
    }

    /// The model's storage row: hashes the file (once per path) and checks it against
    /// models.toml.
    fn model_row(
        &mut self,
        entry: &ModelEntry,
        quant: &str,
        model_path: &Path,
    ) -> Result<ModelRow, RunError> {
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
        Ok(ModelRow {
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
        })
    }

    fn begin_run(
        &self,
        run: &mut NewRunRow,
        model: &ModelRow,
        case: &CaseRow,
    ) -> Result<(), StoreError> {
        run.model_id = Some(self.store.upsert_model(model)?);
        run.case_id = self.store.upsert_case(case)?;
        self.store.begin_run(run)
    }

    /// Seeds the model-hash cache, so a child process doesn't hash a file its parent hashed.
    pub fn remember_model_hash(&mut self, path: &Path, size: u64, sha256: String) {
        self.hashes.insert(path.to_owned(), (size, sha256));
    }

    /// Runs `case` with the model at `model_path` (from [`readiness`]) and stores the run.
    pub fn run_case(
        &mut self,
        case: &Case,
        entry: &ModelEntry,
        model_path: &Path,
    ) -> Result<CaseReport, RunError> {
        self.run_case_as(&new_run_id(case), case, entry, model_path)
    }

    /// [`Self::run_case`] under a run id chosen by the caller (a parent process that must be
    /// able to mark the run aborted if this process dies).
    pub fn run_case_as(
        &mut self,
        run_id: &str,
        case: &Case,
        entry: &ModelEntry,
        model_path: &Path,
    ) -> Result<CaseReport, RunError> {
        let run_id = run_id.to_owned();
        let model_row = self.model_row(entry, &case.quant, model_path)?;
        let case_row = case_row(case);
        let s = &case.scenario;
        let plan = self.plan(case);
        let mut new_run = NewRunRow {
            id: run_id.clone(),
            invocation: self.invocation.clone(),
            case_id: 0,
            device_id: self.device_id,
            model_id: None,
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
        };
        // The `running` row goes in before any measurement, so a crash leaves a trace. A
        // database that refuses it does not stop the run: the result goes to the fallback.
        let begun = match self.begin_run(&mut new_run, &model_row, &case_row) {
            Ok(()) => true,
            Err(e) if e.is_unwritable() && self.store.path() != self.fallback => {
                warn_fallback(&e, &self.fallback);
                false
            }
            Err(e) => return Err(e.into()),
        };

        let estimate = estimated_memory(case, entry, model_path);
        let outcome = if s.category == Category::Accuracy {
            self.evaluate_accuracy(case, model_path, estimate)
        } else {
            self.measure(case, entry, plan, model_path, estimate)
                .map(|(end, rows, report)| (end, rows, Vec::new(), report))
        };
        match outcome {
            Ok((end, rows, answers, report)) => {
                self.store_run(
                    begun,
                    &new_run,
                    &model_row,
                    &case_row,
                    (&end, &rows, &answers),
                )?;
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
                    phase_timings: None,
                    effective: None,
                    estimated_peak_bytes: Some(estimate.total()),
                    cpu_time_ms: None,
                    energy: None,
                    stop_reason: None,
                    roofline: None,
                    metrics: Vec::new(),
                };
                self.store_run(begun, &new_run, &model_row, &case_row, (&end, &[], &[]))?;
                Err(e)
            }
        }
    }

    fn measure(
        &self,
        case: &Case,
        entry: &ModelEntry,
        plan: RunPlan,
        model_path: &Path,
        estimate: MemoryEstimate,
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
        let priorities = schedule::priority_mix(requests.len(), s.serving.priorities);
        let work: Vec<WorkItem> = requests
            .iter()
            .zip(&priorities)
            .map(|(r, &priority)| WorkItem {
                priority,
                turns: r.turns.clone(),
            })
            .collect();
        reset_peak_rss();
        let load_start = Instant::now();
        let mut session = backend.load(model_path, &options)?;
        let load_ms = load_start.elapsed().as_secs_f64() * 1e3;
        crate::isolate::inject_fault_if_asked(&case.name);

        let mut rows = Vec::new();
        let mut first_output: Option<(String, Vec<TokenId>)> = None;
        let rapl = crate::device_facts::Rapl::open();
        let (mut cpu_before, mut energy_before) = (None, None);
        let mut measured_steps = Vec::new();
        let mut phases: Vec<RepetitionPhases> = Vec::new();
        let mut measuring_since = Instant::now();
        let mut repetition = 0;
        let stop_reason = loop {
            let warmup = repetition < plan.warmup;
            if repetition == plan.warmup {
                // Engine counters, CPU time and energy cover measured repetitions only, like
                // our own samples.
                session.reset_counters();
                cpu_before = crate::device_facts::process_cpu_ms();
                energy_before = rapl.as_ref().and_then(crate::device_facts::Rapl::read);
                measuring_since = Instant::now();
            }
            let config = serve_config(case, work.len(), repetition);
            let clock = MonotonicClock::start();
            let outcome = serve::serve(session.as_mut(), &clock, &work, &config)
                .map_err(|e| serve_error(case, e))?;
            let measured_repetition = repetition.saturating_sub(plan.warmup);
            for served in &outcome.served {
                for row in request_rows(
                    vocabulary.as_ref(),
                    &requests,
                    served,
                    measured_repetition,
                    warmup,
                )? {
                    if first_output.is_none() && !warmup && row.status == "completed" {
                        let tokens = served
                            .turns
                            .first()
                            .map(|t| t.tokens.clone())
                            .unwrap_or_default();
                        first_output = Some((row.output_text.clone(), tokens));
                    }
                    rows.push(row);
                }
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
            if self.smoke {
                break StopReason::Smoke;
            }
            let rates: Vec<f64> = measured_steps
                .iter()
                .map(|t| rate(t.decode_tokens, t.decode_ns))
                .collect();
            if let Some(reason) = measure::should_stop(
                &rates,
                plan.repetitions,
                s.stopping.as_ref().filter(|_| !self.fixed_stopping),
                measuring_since.elapsed().as_secs_f64(),
                s.seed,
            ) {
                break reason;
            }
        };
        // The summed counters (the format `engine_counters` always had) come from the
        // per-repetition ones.
        let counters = (!phases.is_empty()).then(|| {
            let sum = |f: fn(&RepetitionPhases) -> f64| phases.iter().map(f).sum::<f64>();
            serde_json::json!({
                "prompt_eval_ms": sum(|p| p.engine_prefill_ms),
                "prompt_eval_tokens": phases.iter().map(|p| p.engine_prefill_tokens).sum::<u64>(),
                "eval_ms": sum(|p| p.engine_decode_ms),
                "eval_tokens": phases.iter().map(|p| p.engine_decode_tokens).sum::<u64>(),
            })
            .to_string()
        });
        let phase_timings = (!phases.is_empty())
            .then(|| serde_json::to_string(&phases).ok())
            .flatten();
        let cpu_time_ms = cpu_before
            .zip(crate::device_facts::process_cpu_ms())
            .map(|(before, after)| after - before);
        let energy = match rapl.as_ref() {
            Some(r) => r.read().and_then(|after| {
                Some((r.joules_between(energy_before.as_deref()?, &after), "rapl".to_owned()))
            }),
            // Not measurable here: an estimate from CPU time, labelled as one.
            None => cpu_time_ms.map(|ms| {
                (
                    ms / 1e3 * ESTIMATED_WATTS_PER_BUSY_CORE,
                    format!("estimate: cpu_time_s × {ESTIMATED_WATTS_PER_BUSY_CORE} W per busy core (assumed, not measured)"),
                )
            }),
        };
        let memory = session.memory();
        let effective = session.effective();
        drop(session);

        let roofline = self.roofline(case, entry, &memory, &measured_steps)?;
        let peak_rss = peak_rss_bytes();
        let metrics = metric_rows(&rows, &measured_steps, s.seed);
        let median_of = |name: &str| {
            metrics
                .iter()
                .find(|m| m.metric == name)
                .map_or(0.0, |m| m.median)
        };
        let (first_output, first_output_tokens) = first_output.unwrap_or_default();
        let report = CaseReport {
            run_id: String::new(),
            measured_requests: rows.iter().filter(|r| !r.warmup && r.turn == 0).count(),
            measured_repetitions: measured_steps.len() as u32,
            generation_tokens_per_s: median_of("generation_tokens_per_s"),
            prefill_tokens_per_s: median_of("prefill_tokens_per_s"),
            rejected: rows
                .iter()
                .filter(|r| !r.warmup && r.turn == 0)
                .filter(|r| r.status == "queue_full" || r.status == "admission_timeout")
                .count(),
            stop_reason,
            roofline_fraction: roofline.map(|r| r.fraction),
            estimated_peak_bytes: estimate.total(),
            peak_rss_bytes: peak_rss,
            first_output,
            first_output_tokens,
            accuracy: None,
        };
        let end = RunEndRow {
            status: RunStatus::Passed,
            ended_at_ms: now_ms(),
            error: None,
            load_ms: Some(load_ms),
            kv_cache_bytes: Some(memory.kv_cache_bytes),
            weights_bytes: Some(memory.weights_bytes),
            peak_rss_bytes: peak_rss,
            engine_counters: counters,
            phase_timings,
            effective: Some(EffectiveRow {
                kv_storage: effective.kv_storage,
                weights_loading: effective.weights.into(),
                scheduling: effective.scheduling.into(),
                flash_attention: effective.flash_attention,
            }),
            estimated_peak_bytes: Some(estimate.total()),
            cpu_time_ms,
            energy,
            stop_reason: Some(stop_reason.as_str().into()),
            roofline,
            metrics,
        };
        Ok((end, rows, report))
    }

    /// An accuracy case: loads the model once and scores every selected question (smoke mode:
    /// the first few of each subject).
    #[allow(clippy::type_complexity)]
    fn evaluate_accuracy(
        &self,
        case: &Case,
        model_path: &Path,
        estimate: MemoryEstimate,
    ) -> Result<(RunEndRow, Vec<RequestRow>, Vec<AnswerRow>, CaseReport), RunError> {
        let s = &case.scenario;
        let settings = s
            .accuracy
            .clone()
            .unwrap_or(edgebench_core::scenario::Accuracy {
                few_shot: 0,
                subjects: None,
                questions_per_subject: None,
            });
        let case_error = |message: String| RunError::Case {
            case: case.name.clone(),
            message,
        };
        let dir = crate::accuracy::set_dir(&self.root, &s.dataset);
        let limit = self
            .smoke
            .then_some(crate::accuracy::SMOKE_QUESTIONS_PER_SUBJECT);
        let set =
            crate::accuracy::load(&dir, &settings, limit).map_err(|e| case_error(e.to_string()))?;
        let backend = engine(case.backend).map_err(case_error)?;
        let vocabulary = reference_vocabulary(model_path)?;
        let load_start = Instant::now();
        let mut session = backend.load(model_path, &load_options(case))?;
        let load_ms = load_start.elapsed().as_secs_f64() * 1e3;
        let cpu_before = crate::device_facts::process_cpu_ms();
        let scored = crate::accuracy::evaluate(
            session.as_mut(),
            vocabulary.as_ref(),
            &set,
            settings.few_shot,
            case.context(),
        )
        .map_err(|e| case_error(e.to_string()))?;
        let cpu_time_ms = cpu_before
            .zip(crate::device_facts::process_cpu_ms())
            .map(|(a, b)| b - a);
        let memory = session.memory();
        let effective = session.effective();
        drop(session);

        let answers: Vec<edgebench_core::mmlu::Answer> =
            scored.iter().map(|x| x.answer.clone()).collect();
        let scores = edgebench_core::mmlu::score(&answers);
        let mut metrics = Vec::new();
        let mut proportion = |metric: &str, hits: Vec<bool>| {
            let samples: Vec<f64> = hits.iter().map(|h| f64::from(u8::from(*h))).collect();
            if let Some(m) = measure::summarize_metric("accuracy", "fraction", &samples, s.seed) {
                let se = if samples.len() > 1 {
                    m.summary.stddev / (samples.len() as f64).sqrt()
                } else {
                    0.0
                };
                metrics.push(MetricRow {
                    metric: metric.to_owned(),
                    median: m.summary.mean,
                    // A proportion's interval: ±1.96 standard errors (normal approximation).
                    ci: Some((
                        (m.summary.mean - 1.96 * se).max(0.0),
                        (m.summary.mean + 1.96 * se).min(1.0),
                        0.95,
                    )),
                    outliers_low: 0,
                    outliers_high: 0,
                    ..MetricRow::from_summary(&m)
                });
            }
        };
        proportion(
            "mmlu_acc",
            answers.iter().map(|a| a.predicted() == a.answer).collect(),
        );
        proportion(
            "mmlu_acc_norm",
            answers
                .iter()
                .map(|a| a.predicted_norm() == a.answer)
                .collect(),
        );
        for subject in scores.per_subject.keys() {
            proportion(
                &format!("mmlu_acc:{subject}"),
                answers
                    .iter()
                    .filter(|a| &a.subject == subject)
                    .map(|a| a.predicted() == a.answer)
                    .collect(),
            );
        }
        let rates: Vec<f64> = scored
            .iter()
            .filter(|x| x.request.prefill_ns > 0)
            .map(|x| f64::from(x.request.prompt_tokens) / (x.request.prefill_ns as f64 / 1e9))
            .collect();
        if let Some(m) =
            measure::summarize_metric("prefill_tokens_per_s", "tokens/s", &rates, s.seed)
        {
            metrics.push(MetricRow::from_summary(&m));
        }
        let peak_rss = peak_rss_bytes();
        let prefill_median = metrics
            .iter()
            .find(|m| m.metric == "prefill_tokens_per_s")
            .map_or(0.0, |m| m.median);
        let report = CaseReport {
            run_id: String::new(),
            measured_requests: scored.len(),
            measured_repetitions: 1,
            generation_tokens_per_s: 0.0,
            prefill_tokens_per_s: prefill_median,
            rejected: 0,
            stop_reason: StopReason::Fixed,
            roofline_fraction: None,
            estimated_peak_bytes: estimate.total(),
            peak_rss_bytes: peak_rss,
            first_output: scored
                .first()
                .map(|x| x.request.output_text.clone())
                .unwrap_or_default(),
            first_output_tokens: Vec::new(),
            accuracy: Some(crate::isolate::AccuracyReport {
                n: scores.micro.n,
                acc: scores.micro.acc,
                acc_stderr: scores.micro.acc_stderr,
                acc_norm: scores.micro.acc_norm,
                macro_acc: scores.macro_acc,
                predicted: scored.iter().map(|x| x.row.predicted.as_str()).collect(),
            }),
        };
        let end = RunEndRow {
            status: RunStatus::Passed,
            ended_at_ms: now_ms(),
            error: None,
            load_ms: Some(load_ms),
            kv_cache_bytes: Some(memory.kv_cache_bytes),
            weights_bytes: Some(memory.weights_bytes),
            peak_rss_bytes: peak_rss,
            engine_counters: None,
            phase_timings: None,
            effective: Some(EffectiveRow {
                kv_storage: effective.kv_storage,
                weights_loading: effective.weights.into(),
                scheduling: effective.scheduling.into(),
                flash_attention: effective.flash_attention,
            }),
            estimated_peak_bytes: Some(estimate.total()),
            cpu_time_ms,
            energy: None,
            stop_reason: Some(StopReason::Fixed.as_str().into()),
            roofline: None,
            metrics,
        };
        let requests = scored.iter().map(|x| x.request.clone()).collect();
        let rows = scored.into_iter().map(|x| x.row).collect();
        Ok((end, requests, rows, report))
    }

    /// How close the measured decode steps came to the device's memory bandwidth: the bytes they
    /// had to read at least (the weights once per step, every stepped sequence's KV entries) over
    /// their time, as a fraction of the triad bandwidth measured on this device.
    fn roofline(
        &self,
        case: &Case,
        entry: &ModelEntry,
        memory: &edgebench_backend::MemoryReport,
        steps: &[StepTotals],
    ) -> Result<Option<RooflineRow>, RunError> {
        let Some(bandwidth) = self
            .store
            .device_measurement(self.device_id, crate::device_facts::TRIAD_KIND)?
        else {
            return Ok(None);
        };
        let decode_steps: u64 = steps.iter().map(|t| t.decode_steps).sum();
        let kv_positions: u64 = steps.iter().map(|t| t.decode_kv_positions).sum();
        let decode_ns: u64 = steps.iter().map(|t| t.decode_ns).sum();
        if decode_ns == 0 || bandwidth <= 0.0 {
            return Ok(None);
        }
        let bytes = decode_steps as f64 * memory.weights_bytes as f64
            + kv_positions as f64 * kv_bytes_per_token(case, entry);
        Ok(Some(RooflineRow {
            decode_bytes_read: bytes.round() as u64,
            decode_steps_ns: decode_ns,
            bandwidth_bytes_per_s: bandwidth,
            fraction: bytes / (decode_ns as f64 / 1e9) / bandwidth,
        }))
    }
}

/// Power assumed per fully busy core when RAPL can't be read: a round figure for a laptop or
/// phone big core; energy computed from it is stored as an estimate, never as a measurement.
pub const ESTIMATED_WATTS_PER_BUSY_CORE: f64 = 4.0;

fn rate(tokens: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        tokens as f64 / (ns as f64 / 1e9)
    }
}

fn serve_error(case: &Case, e: ServeError) -> RunError {
    match e {
        ServeError::Backend(b) => RunError::Backend(b),
        other => RunError::Case {
            case: case.name.clone(),
            message: other.to_string(),
        },
    }
}

/// How one repetition of `case` serves its `requests` requests.
fn serve_config(case: &Case, requests: usize, repetition: u32) -> ServeConfig {
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

/// Storage rows for one served request: one per turn, or one empty row when it never got a
/// slot (rejected, or cancelled while queued).
fn request_rows(
    vocabulary: &dyn Vocabulary,
    requests: &[Request],
    served: &Served,
    repetition: u32,
    warmup: bool,
) -> Result<Vec<RequestRow>, RunError> {
    let request = &requests[served.request];
    let base = |turn: usize| RequestRow {
        repetition,
        warmup,
        request_index: served.request as u32,
        prompt_id: request.prompt_id.clone(),
        turn: turn as u32,
        seq: served.slot.unwrap_or_default() as u32,
        prompt_tokens: request.turns.get(turn).map_or(0, Vec::len) as u32,
        generated_tokens: 0,
        queue_ns: if turn == 0 { served.queue_ns } else { 0 },
        prefill_ns: 0,
        ttft_ns: 0,
        decode_ns: 0,
        e2e_ns: served.queue_ns,
        reset_ns: if turn == 0 { served.reset_ns } else { 0 },
        status: served.outcome.as_str().into(),
        priority: served.priority.as_str().into(),
        sent_ns: served.arrived_ns,
        output_sha256: token_digest(&[]),
        output_text: String::new(),
        token_latencies_ns: Vec::new(),
    };
    if served.turns.is_empty() {
        return Ok(vec![base(0)]);
    }
    served
        .turns
        .iter()
        .enumerate()
        .map(|(turn, t)| {
            let text = vocabulary.detokenize(visible_tokens(vocabulary, &t.tokens))?;
            Ok(RequestRow {
                generated_tokens: t.tokens.len() as u32,
                prefill_ns: t.prefill_ns,
                ttft_ns: t.first_token_ns - t.sent_ns,
                decode_ns: t.end_ns - t.first_token_ns,
                e2e_ns: t.end_ns - t.sent_ns,
                sent_ns: t.sent_ns,
                output_sha256: token_digest(&t.tokens),
                output_text: text,
                token_latencies_ns: t.token_gaps_ns.clone(),
                ..base(turn)
            })
        })
        .collect()
}

/// Per-metric summaries of a run's measured samples.
fn metric_rows(rows: &[RequestRow], steps: &[StepTotals], seed: u64) -> Vec<MetricRow> {
    let measured: Vec<&RequestRow> = rows.iter().filter(|r| !r.warmup).collect();
    let completed: Vec<&RequestRow> = measured
        .iter()
        .copied()
        .filter(|r| r.status == "completed")
        .collect();
    let ms = |ns: u64| ns as f64 / 1e6;
    let per_repetition = |f: fn(&StepTotals) -> f64| steps.iter().map(f).collect::<Vec<_>>();
    let series: Vec<(&'static str, &'static str, Vec<f64>)> = vec![
        (
            "generation_tokens_per_s",
            "tokens/s",
            per_repetition(|t| rate(t.decode_tokens, t.decode_ns)),
        ),
        (
            "prefill_tokens_per_s",
            "tokens/s",
            per_repetition(|t| rate(t.prefill_tokens, t.prefill_ns)),
        ),
        (
            "throughput_tokens_per_s",
            "tokens/s",
            steps
                .iter()
                .map(|t| rate(t.decode_tokens + t.prefill_sequences, t.wall_ns))
                .collect(),
        ),
        (
            "ttft_ms",
            "ms",
            completed.iter().map(|r| ms(r.ttft_ns)).collect(),
        ),
        (
            "e2e_ms",
            "ms",
            completed.iter().map(|r| ms(r.e2e_ns)).collect(),
        ),
        (
            "tpot_ms",
            "ms",
            completed
                .iter()
                .flat_map(|r| r.token_latencies_ns.iter().map(|&ns| ms(ns)))
                .collect(),
        ),
        (
            "request_generation_tokens_per_s",
            "tokens/s",
            completed
                .iter()
                .filter(|r| r.generated_tokens > 1)
                .map(|r| rate(u64::from(r.generated_tokens - 1), r.decode_ns))
                .collect(),
        ),
        (
            "queue_wait_ms",
            "ms",
            measured
                .iter()
                .filter(|r| r.turn == 0)
                .map(|r| ms(r.queue_ns))
                .collect(),
        ),
        (
            "reset_us",
            "µs",
            completed
                .iter()
                .filter(|r| r.turn == 0)
                .map(|r| r.reset_ns as f64 / 1e3)
                .collect(),
        ),
    ];
    series
        .into_iter()
        .enumerate()
        .filter_map(|(i, (metric, unit, samples))| {
            let m = measure::summarize_metric(metric, unit, &samples, seed.wrapping_add(i as u64))?;
            Some(MetricRow::from_summary(&m))
        })
        .collect()
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
