//! Before a case runs: can it run here (device, engine, model file, memory budget, the file's
//! validity, the engine's own refusals), and how its engine is asked to load the model. Nothing
//! is loaded; engines are asked through the `Backend` trait only.

use std::path::{Path, PathBuf};

use edgebench_backend::{Backend, LoadOptions};
use edgebench_core::scenario::{Category, Workload};
use edgebench_core::{Case, ModelEntry, Registry, projection};

use crate::engines;

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
        generate_tokens: s.generate_tokens,
        // The model id a server is asked for defaults to the registry id.
        endpoint: s.endpoint.clone().map(|mut e| {
            e.model.get_or_insert_with(|| case.model.clone());
            e
        }),
    }
}

/// Checks device, engine, model file and memory budget, without loading anything.
#[must_use]
pub fn readiness(case: &Case, registry: &Registry, models_dir: &Path) -> Readiness {
    let s = &case.scenario;
    let backend = match engines::engine(case.backend) {
        Ok(b) => b,
        Err(unavailable) => return Readiness::Skip(unavailable.to_string()),
    };
    if let Err(unsupported) = backend.supports_device(s.device) {
        return Readiness::Skip(unsupported.to_string());
    }
    let Some(entry) = registry.get(&case.model) else {
        return Readiness::Skip(format!("model `{}` is not in models.toml", case.model));
    };
    if matches!(s.workload, Workload::Accuracy(_))
        && let Some(reason) = entry.accuracy_refusal()
    {
        return Readiness::Skip(reason);
    }
    let Some(file) = entry.file(case.quant) else {
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
    // The hybrid engine answers a memory-guard refusal with its cloud: it checks the guard
    // itself and records the fallback.
    if case.backend != edgebench_core::scenario::BackendKind::Hybrid
        && let Some(reason) = over_budget(backend, case, entry, &model_path)
    {
        return Readiness::Skip(reason);
    }
    // No engine, not even the refusal check that reads metadata, sees a malformed file.
    // (Validated once per process while the file is unchanged: the harness checks each
    // model once, not once per case.)
    if let Err(e) = edgebench_backend::check_model_file(&model_path) {
        return Readiness::Invalid(e.to_string());
    }
    if let Some(reason) = backend.refuses(&model_path, &load_options(case)) {
        return Readiness::Skip(reason);
    }
    if case.backend == edgebench_core::scenario::BackendKind::Http
        && let Some(reason) = s.endpoint.as_ref().and_then(unreachable)
    {
        return Readiness::Skip(reason);
    }
    Readiness::Ready { model_path }
}

/// The memory guard: why `case` would not fit its scenario's budget, with the arithmetic. A
/// scenario without `memory_budget` or `device_profile` is held to this host's memory.
#[must_use]
pub fn over_budget(
    backend: &dyn Backend,
    case: &Case,
    entry: &ModelEntry,
    model_path: &Path,
) -> Option<String> {
    let s = &case.scenario;
    let (budget, source) = match s.memory_budget {
        Some(b) => (b, s.memory_budget_source.clone()),
        // A server elsewhere is not bounded by this host's memory.
        None if backend.is_remote() => return None,
        None => {
            let total = crate::host::total_memory_bytes()?;
            (total, format!("this host's memory ({} MiB)", total >> 20))
        }
    };
    let m = estimated_memory(backend, case, entry, model_path);
    let positions = backend.kv_positions(&load_options(case));
    (m.total() > budget).then(|| {
        format!(
            "estimated memory {} MiB (weights {} MiB + KV {} MiB for {} × {} tokens at {:.0} KiB per token + compute buffers {} MiB + this process {} MiB) exceeds {} MiB, the budget set by {}",
            m.total() >> 20,
            m.weights >> 20,
            m.kv >> 20,
            case.slots(),
            positions,
            m.kv as f64 / (f64::from(positions) * f64::from(case.slots())).max(1.0) / 1024.0,
            m.compute >> 20,
            m.process >> 20,
            budget >> 20,
            source
        )
    })
}

/// Memory a case needs, projected before anything is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The weights file (projected from the parameter count while it is absent), plus what the
    /// engine keeps beside it (`Backend::extra_weight_bytes`: llama.cpp's repacked copies).
    pub weights: u64,
    /// KV cache for `context × slots` tokens at the engine's cache type (candle keeps f32).
    pub kv: u64,
    /// Compute buffers ([`projection::compute_buffer_bytes`]).
    pub compute: u64,
    /// What the process already holds before the model loads (code, allocator, the reference
    /// vocabulary): its resident set when the estimate is made. On a 135M model this is a third
    /// of the peak; leaving it out made small models' estimates 20% low.
    pub process: u64,
}

impl MemoryEstimate {
    #[must_use]
    pub fn total(&self) -> u64 {
        self.weights + self.kv + self.compute + self.process
    }
}

/// The memory guard's estimate for `case`; runs store it beside the measured peak RSS.
#[must_use]
pub fn estimated_memory(
    backend: &dyn Backend,
    case: &Case,
    entry: &ModelEntry,
    model_path: &Path,
) -> MemoryEstimate {
    // The file's size; before a file is here (a refusal that saves a 4 GB download), the
    // projection from the architecture's parameter count at the quantization's bits per weight.
    let weights = std::fs::metadata(model_path).map_or_else(
        |_| {
            let params = entry
                .arch
                .params
                .unwrap_or_else(|| edgebench_core::twin::parameter_count(&entry.arch));
            projection::weight_bytes(params, case.quant).unwrap_or(0)
        },
        |m| m.len(),
    );
    let options = load_options(case);
    let tokens = f64::from(backend.kv_positions(&options)) * f64::from(case.slots());
    let kv_per_token = backend.kv_bytes_per_token(&entry.arch, &options);
    MemoryEstimate {
        weights: weights + backend.extra_weight_bytes(model_path, &load_options(case)),
        kv: (kv_per_token * tokens).round() as u64,
        compute: projection::compute_buffer_bytes(
            &entry.arch,
            case.scenario
                .batch
                .min(case.scenario.prompt_tokens * case.slots()),
            case.context(),
        ),
        process: crate::host::rss_bytes().unwrap_or(0),
    }
}

/// Why nothing answers at an HTTP case's server, if nothing does: a phone that is off, a
/// llama-server not started. A TCP connection is tried (at most 2 s); a launched server is
/// started by the case itself.
fn unreachable(endpoint: &edgebench_core::scenario::Endpoint) -> Option<String> {
    use std::net::ToSocketAddrs;
    let edgebench_core::scenario::EndpointTarget::Url(url) = &endpoint.target else {
        return None;
    };
    let rest = url
        .strip_prefix("http://")
        .map(|r| (r, 80))
        .or_else(|| url.strip_prefix("https://").map(|r| (r, 443)));
    let (rest, default_port) = rest?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let address = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    };
    let timeout = std::time::Duration::from_millis(endpoint.connect_timeout_ms.min(2_000));
    let addresses = match address.to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => return Some(format!("the endpoint {url} does not resolve: {e}")),
    };
    let reached = addresses
        .iter()
        .any(|a| std::net::TcpStream::connect_timeout(a, timeout).is_ok());
    (!reached).then(|| format!("nothing answers at {url} (is the server running?)"))
}
