//! Validation of a parsed scenario file, one function per table or group of keys, each
//! pointing its errors at the offending key's line and column.

use super::file::{self, BackendName, DeviceName, KvTypeName, PromptFormatName, ScenarioFile};
use super::workloads::{accuracy, goodput, quality, sustained};
use super::{
    BackendKind, Category, Ctx, Device, KvType, KvVariant, Pinned, PromptFormat, Sampling,
    Scenario, ScenarioError, ScenarioSource, Serving, Stopping, Workload, non_empty, parse_bytes,
    positive, valid_name, valid_variant_name,
};
use crate::quant::Quant;
use crate::registry::Registry;
use crate::text_pos::Location;

/// The longest context a scenario may ask for (no GGUF model has a longer window).
pub(super) const MAX_CONTEXT: u32 = 1 << 20;
/// llama.cpp's `LLAMA_MAX_SEQ`: sequences one context can hold.
pub(super) const MAX_SEQUENCES: u32 = 256;
pub(super) const MAX_THREADS: u32 = 1024;
/// More repetitions than this can only be a typo (and would run for days).
pub(super) const MAX_REPETITIONS: u32 = 100_000;

/// A matrix axis listing a value twice would expand into two cases of the same name.
fn no_repeats(cx: &Ctx<'_>, key: &str, v: &toml::Spanned<Vec<u32>>) -> Result<(), ScenarioError> {
    let list = v.get_ref();
    if let Some((i, x)) = list
        .iter()
        .enumerate()
        .find(|(i, x)| list[..*i].contains(x))
    {
        return Err(cx.at(
            key,
            v,
            format!(
                "{x} is listed twice (entries {} and {}): both would be the same case",
                list.iter().position(|y| y == x).unwrap_or(0) + 1,
                i + 1
            ),
        ));
    }
    Ok(())
}

/// `v` at most `max`, else an error at its position.
fn at_most(
    cx: &Ctx<'_>,
    key: &str,
    v: &toml::Spanned<u32>,
    max: u32,
    unit: &str,
) -> Result<(), ScenarioError> {
    if *v.get_ref() > max {
        return Err(cx.at(
            key,
            v,
            format!("{} is more than the limit of {max} {unit}", v.get_ref()),
        ));
    }
    Ok(())
}

/// The lengths and counts of the matrix.
struct Lengths {
    context: u32,
    prompt_tokens: u32,
    generate_tokens: u32,
    batch: u32,
    repetitions: u32,
    prompts: Option<u32>,
}

pub(super) fn validate(
    cx: &Ctx<'_>,
    raw: ScenarioFile,
    registry: &Registry,
) -> Result<Scenario, ScenarioError> {
    header(cx, &raw)?;
    let models = models(cx, &raw, registry)?;
    let backends = backends(cx, &raw)?;
    let Lengths {
        context,
        prompt_tokens,
        generate_tokens,
        batch,
        repetitions,
        prompts,
    } = lengths(cx, &raw)?;
    let (memory_budget, memory_budget_source) = memory(cx, &raw)?;
    let serving = serving(cx, raw.serving.as_ref())?;
    let stopping = stopping(cx, raw.stopping.as_ref(), repetitions)?;
    // Each refuses the others' tables, so at most one is set.
    let workload = match (
        accuracy(cx, &raw)?,
        sustained(cx, &raw)?,
        goodput(cx, &raw)?,
    ) {
        (Some(a), _, _) => Workload::Accuracy(a),
        (None, Some(s), _) => Workload::Sustained(s),
        (None, None, Some(g)) => Workload::Goodput(g),
        (None, None, None) => Workload::Timed,
    };
    let quality = quality(cx, &raw, context, &models, registry)?;
    let endpoint = super::remote::endpoint(cx, &raw, &backends)?;
    let hybrid = super::remote::hybrid(cx, &raw, &backends)?;
    let prompt_format = prompt_format(cx, &raw)?;
    let sampling = sampling(cx, raw.sampling.as_ref())?;
    let kv_declared = !raw.kv.is_empty();
    let kv = kv(cx, &raw.kv, prompt_tokens, generate_tokens)?;
    let device = match raw.device {
        DeviceName::Cpu => Device::Cpu,
        DeviceName::Cuda => Device::Cuda,
        DeviceName::Metal => Device::Metal,
        DeviceName::Vulkan => Device::Vulkan,
    };

    Ok(Scenario {
        name: raw.name.into_inner(),
        description: raw.description,
        category: raw.category,
        dataset_location: Location::new(cx.file, cx.text, raw.dataset.span().start),
        dataset: raw.dataset.into_inner(),
        prompts,
        models,
        backends,
        device,
        context,
        prompt_tokens,
        generate_tokens,
        concurrency: raw.concurrency.into_inner(),
        threads: raw.threads.into_inner(),
        batch,
        seed: raw.seed,
        warmup: raw.warmup.as_ref().map_or(1, |w| *w.get_ref()),
        repetitions,
        memory_budget,
        memory_budget_source,
        prompt_format,
        sampling,
        serving,
        stopping,
        kv,
        kv_declared,
        workload,
        quality,
        endpoint,
        hybrid,
        source: ScenarioSource {
            file: cx.file.to_owned(),
            sha256: crate::sha256_hex(cx.text.as_bytes()),
        },
    })
}

/// `format`, `name` and `dataset`.
fn header(cx: &Ctx<'_>, raw: &ScenarioFile) -> Result<(), ScenarioError> {
    if *raw.format.get_ref() != file::SCENARIO_FORMAT {
        return Err(cx.at(
            "format",
            &raw.format,
            format!(
                "scenario format {} is not supported (this build reads format {})",
                raw.format.get_ref(),
                file::SCENARIO_FORMAT
            ),
        ));
    }
    if !valid_name(raw.name.get_ref()) {
        return Err(cx.at(
            "name",
            &raw.name,
            "use lowercase letters, digits and `_` only",
        ));
    }
    if raw.dataset.get_ref().trim().is_empty() {
        return Err(cx.at("dataset", &raw.dataset, "no dataset file named"));
    }

    Ok(())
}

/// `models` and `quantizations`, against the registry.
fn models(
    cx: &Ctx<'_>,
    raw: &ScenarioFile,
    registry: &Registry,
) -> Result<Vec<(String, Vec<Quant>)>, ScenarioError> {
    non_empty(cx, "models", &raw.models)?;
    let mut models: Vec<(String, Vec<Quant>)> = Vec::new();
    for m in raw.models.get_ref() {
        let id = m.get_ref();
        let Some(entry) = registry.get(id) else {
            return Err(cx.at(
                "models",
                m,
                format!(
                    "unknown model `{id}`;{} models.toml knows: {}",
                    super::closest(id, registry.ids())
                        .map_or(String::new(), |c| format!(" did you mean `{c}`?")),
                    registry.ids().join(", ")
                ),
            ));
        };
        if models.iter().any(|(have, _)| have == id) {
            return Err(cx.at("models", m, format!("model `{id}` is listed twice")));
        }
        let quants: Vec<Quant> = match &raw.quantizations {
            None => entry.files.iter().map(|f| f.quant).collect(),
            Some(qs) => qs
                .get_ref()
                .iter()
                .filter_map(|q| q.get_ref().parse().ok())
                .filter_map(|q| entry.file(q).map(|f| f.quant))
                .collect(),
        };
        if quants.is_empty() {
            let have: Vec<_> = entry.files.iter().map(|f| f.quant.as_str()).collect();
            let message = format!(
                "model `{id}` has none of the listed quantizations (it has: {})",
                have.join(", ")
            );
            // Point at the list that names none of them (the model's files when there is none).
            return Err(match &raw.quantizations {
                Some(listed) => cx.at("quantizations", listed, message),
                None => cx.at("quantizations", m, message),
            });
        }
        if *raw.context.get_ref() > entry.arch.context {
            return Err(cx.at(
                "context",
                &raw.context,
                format!(
                    "context {} exceeds the {} tokens model `{id}` was trained for",
                    raw.context.get_ref(),
                    entry.arch.context
                ),
            ));
        }
        models.push((id.clone(), quants));
    }
    if let Some(qs) = &raw.quantizations {
        non_empty(cx, "quantizations", qs)?;
        for (i, q) in qs.get_ref().iter().enumerate() {
            let Ok(quant) = q.get_ref().parse::<Quant>() else {
                return Err(cx.at(
                    "quantizations",
                    q,
                    format!("unknown quantization `{}`", q.get_ref()),
                ));
            };
            if qs.get_ref()[..i]
                .iter()
                .any(|p| p.get_ref().eq_ignore_ascii_case(q.get_ref()))
            {
                return Err(cx.at(
                    "quantizations",
                    q,
                    format!(
                        "`{}` is listed twice: both would be the same case",
                        q.get_ref()
                    ),
                ));
            }
            let used = models.iter().any(|(_, have)| have.contains(&quant));
            if !used {
                return Err(cx.at(
                    "quantizations",
                    q,
                    format!("no listed model has a `{}` file", q.get_ref()),
                ));
            }
        }
    }

    Ok(models)
}

/// `backends`.
fn backends(cx: &Ctx<'_>, raw: &ScenarioFile) -> Result<Vec<BackendKind>, ScenarioError> {
    non_empty(cx, "backends", &raw.backends)?;
    let mut backends = Vec::new();
    for b in raw.backends.get_ref() {
        let kind = match b {
            BackendName::LlamaCpp => BackendKind::LlamaCpp,
            BackendName::Candle => BackendKind::Candle,
            BackendName::Http => BackendKind::Http,
            BackendName::Hybrid => BackendKind::Hybrid,
        };
        if backends.contains(&kind) {
            return Err(cx.at(
                "backends",
                &raw.backends,
                format!("backend `{kind}` is listed twice"),
            ));
        }
        backends.push(kind);
    }

    Ok(backends)
}

/// `context`, `prompt_tokens`, `generate_tokens`, `concurrency`, `threads`, `batch`,
/// `repetitions` and `prompts`.
fn lengths(cx: &Ctx<'_>, raw: &ScenarioFile) -> Result<Lengths, ScenarioError> {
    let context = positive(cx, "context", &raw.context)?;
    at_most(
        cx,
        "context",
        &raw.context,
        MAX_CONTEXT,
        "tokens (1M: no GGUF model has a longer window)",
    )?;
    let prompt_tokens = positive(cx, "prompt_tokens", &raw.prompt_tokens)?;
    let generate_tokens = positive(cx, "generate_tokens", &raw.generate_tokens)?;
    if u64::from(prompt_tokens) + u64::from(generate_tokens) > u64::from(context) {
        return Err(cx.at(
            "prompt_tokens",
            &raw.prompt_tokens,
            format!(
                "prompt_tokens ({prompt_tokens}) + generate_tokens ({generate_tokens}) exceed the context ({context})"
            ),
        ));
    }
    non_empty(cx, "concurrency", &raw.concurrency)?;
    if raw.concurrency.get_ref().contains(&0) {
        return Err(cx.at(
            "concurrency",
            &raw.concurrency,
            "every concurrency must be at least 1",
        ));
    }
    no_repeats(cx, "concurrency", &raw.concurrency)?;
    if let Some(&c) = raw
        .concurrency
        .get_ref()
        .iter()
        .find(|&&c| c > MAX_SEQUENCES)
    {
        return Err(cx.at(
            "concurrency",
            &raw.concurrency,
            format!("{c} is more than {MAX_SEQUENCES} simultaneous sequences (llama.cpp's LLAMA_MAX_SEQ)"),
        ));
    }
    non_empty(cx, "threads", &raw.threads)?;
    if raw.threads.get_ref().contains(&0) {
        return Err(cx.at(
            "threads",
            &raw.threads,
            "every thread count must be at least 1",
        ));
    }
    no_repeats(cx, "threads", &raw.threads)?;
    if let Some(&t) = raw.threads.get_ref().iter().find(|&&t| t > MAX_THREADS) {
        return Err(cx.at(
            "threads",
            &raw.threads,
            format!("{t} threads is more than {MAX_THREADS}"),
        ));
    }
    let batch = match &raw.batch {
        Some(b) => {
            at_most(cx, "batch", b, MAX_CONTEXT, "tokens")?;
            positive(cx, "batch", b)?
        }
        None => 512,
    };
    let repetitions = positive(cx, "repetitions", &raw.repetitions)?;
    at_most(
        cx,
        "repetitions",
        &raw.repetitions,
        MAX_REPETITIONS,
        "repetitions",
    )?;
    if let Some(w) = &raw.warmup {
        at_most(cx, "warmup", w, MAX_REPETITIONS, "warmup repetitions")?;
    }
    let prompts = match &raw.prompts {
        Some(p) => Some(positive(cx, "prompts", p)?),
        None => None,
    };
    Ok(Lengths {
        context,
        prompt_tokens,
        generate_tokens,
        batch,
        repetitions,
        prompts,
    })
}

/// `memory_budget` and `device_profile`: the smaller budget wins, and says where it came from.
fn memory(cx: &Ctx<'_>, raw: &ScenarioFile) -> Result<(Option<u64>, String), ScenarioError> {
    let memory_budget = match &raw.memory_budget {
        None => None,
        Some(b) => Some(parse_bytes(b.get_ref()).ok_or_else(|| {
            cx.at(
                "memory_budget",
                b,
                format!(
                    "`{}` is not a size like \"4 GiB\" or \"512 MiB\" (below 16 EiB)",
                    b.get_ref().chars().take(40).collect::<String>()
                ),
            )
        })?),
    };
    let mut memory_budget_source = "memory_budget".to_owned();
    let memory_budget = match &raw.device_profile {
        None => memory_budget,
        Some(name) => {
            let Some(profile) = crate::device_profile::find(name.get_ref()) else {
                return Err(cx.at(
                    "device_profile",
                    name,
                    format!(
                        "unknown device profile `{}`; known: {}",
                        name.get_ref(),
                        crate::device_profile::PROFILES
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            if memory_budget.is_some_and(|b| b <= profile.ram_bytes) {
                memory_budget
            } else {
                memory_budget_source = format!(
                    "the RAM of device profile `{}` ({})",
                    profile.name, profile.label
                );
                Some(profile.ram_bytes)
            }
        }
    };
    Ok((memory_budget, memory_budget_source))
}

/// The `[serving]` table.
fn serving(cx: &Ctx<'_>, table: Option<&file::ServingFile>) -> Result<Serving, ScenarioError> {
    Ok(match table {
        None => Serving::default(),
        Some(f) => {
            let slots = match &f.slots {
                Some(v) => {
                    at_most(
                        cx,
                        "serving.slots",
                        v,
                        MAX_SEQUENCES,
                        "sequences (llama.cpp's LLAMA_MAX_SEQ)",
                    )?;
                    Some(positive(cx, "serving.slots", v)?)
                }
                None => None,
            };
            if let Some(rate) = &f.arrival_rate_per_s
                && !(rate.get_ref().is_finite() && *rate.get_ref() > 0.0)
            {
                return Err(cx.at(
                    "serving.arrival_rate_per_s",
                    rate,
                    format!(
                        "{} must be a positive number of requests per second",
                        rate.get_ref()
                    ),
                ));
            }
            let priorities = f.priorities.as_ref().map_or([0, 1, 0], |p| {
                let p = p.get_ref();
                [p.realtime, p.normal, p.batch]
            });
            if priorities == [0, 0, 0]
                && let Some(table) = &f.priorities
            {
                return Err(cx.at(
                    "serving.priorities",
                    table,
                    "at least one priority class needs a weight above 0",
                ));
            }
            Serving {
                slots,
                queue_capacity: f.queue_capacity,
                admission_timeout_ms: f.admission_timeout_ms,
                arrival_rate_per_s: f.arrival_rate_per_s.as_ref().map(|r| *r.get_ref()),
                cancel_after_ms: f.cancel_after_ms,
                priorities,
            }
        }
    })
}

/// The `[stopping]` table (adaptive stopping), against the scenario's `repetitions`.
fn stopping(
    cx: &Ctx<'_>,
    table: Option<&file::StoppingFile>,
    repetitions: u32,
) -> Result<Option<Stopping>, ScenarioError> {
    Ok(match table {
        None => None,
        Some(f) => {
            let target = *f.target_relative_ci.get_ref();
            if !(target.is_finite() && target > 0.0) {
                return Err(cx.at(
                    "stopping.target_relative_ci",
                    &f.target_relative_ci,
                    format!("{target} must be a positive fraction such as 0.01"),
                ));
            }
            at_most(
                cx,
                "stopping.max_repetitions",
                &f.max_repetitions,
                MAX_REPETITIONS,
                "repetitions",
            )?;
            let max_repetitions = *f.max_repetitions.get_ref();
            if max_repetitions < repetitions {
                return Err(cx.at(
                    "stopping.max_repetitions",
                    &f.max_repetitions,
                    format!(
                        "max_repetitions ({max_repetitions}) is below repetitions ({repetitions})"
                    ),
                ));
            }
            if let Some(s) = &f.max_seconds
                && !(s.get_ref().is_finite() && *s.get_ref() > 0.0)
            {
                return Err(cx.at(
                    "stopping.max_seconds",
                    s,
                    format!("{} must be a positive number of seconds", s.get_ref()),
                ));
            }
            if let Some(s) = &f.max_seconds
                && *s.get_ref() < super::MIN_MEASURED_SECONDS
            {
                return Err(cx.at(
                    "stopping.max_seconds",
                    s,
                    format!(
                        "{} s is below the minimum measured duration ({} s): a measured run never stops sooner",
                        s.get_ref(),
                        super::MIN_MEASURED_SECONDS
                    ),
                ));
            }
            Some(Stopping {
                target_relative_ci: target,
                max_repetitions,
                max_seconds: f.max_seconds.as_ref().map(|s| *s.get_ref()),
            })
        }
    })
}

/// `prompt_format`: accuracy scenarios score MMLU's raw prompt, so only `raw` fits them.
fn prompt_format(cx: &Ctx<'_>, raw: &ScenarioFile) -> Result<Option<PromptFormat>, ScenarioError> {
    let Some(declared) = &raw.prompt_format else {
        return Ok(None);
    };
    let format = match declared.get_ref() {
        PromptFormatName::Chat => PromptFormat::Chat,
        PromptFormatName::Raw => PromptFormat::Raw,
    };
    if format == PromptFormat::Chat && raw.category == Category::Accuracy {
        return Err(cx.at(
            "prompt_format",
            declared,
            "accuracy scenarios score lm-evaluation-harness's raw MMLU prompt; use \"raw\" or leave it out",
        ));
    }
    Ok(Some(format))
}

/// The `[sampling]` table.
fn sampling(cx: &Ctx<'_>, table: Option<&file::SamplingFile>) -> Result<Sampling, ScenarioError> {
    Ok(match table {
        None => Sampling::Greedy,
        Some(s) => match *s.temperature.get_ref() {
            0.0 => Sampling::Greedy,
            t if t > 0.0 && t.is_finite() => Sampling::Temperature {
                temperature: t,
                top_k: s.top_k,
            },
            t => {
                return Err(cx.at(
                    "sampling.temperature",
                    &s.temperature,
                    format!("temperature {t} must be a finite number ≥ 0"),
                ));
            }
        },
    })
}

/// The `[[kv]]` variants (the engine default when there is none).
fn kv(
    cx: &Ctx<'_>,
    variants: &[file::KvVariantFile],
    prompt_tokens: u32,
    generate_tokens: u32,
) -> Result<Vec<KvVariant>, ScenarioError> {
    let mut kv = Vec::new();
    for v in variants {
        let name = v.name.get_ref();
        if !valid_variant_name(name) {
            return Err(cx.at(
                "kv.name",
                &v.name,
                "use lowercase letters, digits, `_` and `-` only",
            ));
        }
        if kv.iter().any(|k: &KvVariant| &k.name == name) {
            return Err(cx.at(
                "kv.name",
                &v.name,
                format!("variant `{name}` is declared twice"),
            ));
        }
        let kv_type = |t: KvTypeName| match t {
            KvTypeName::F16 => KvType::F16,
            KvTypeName::Q8_0 => KvType::Q8_0,
            KvTypeName::Q4_0 => KvType::Q4_0,
        };
        let variant = KvVariant {
            name: name.clone(),
            baseline: v.baseline.as_ref().is_some_and(|b| *b.get_ref()),
            type_k: kv_type(v.type_k.unwrap_or_default()),
            type_v: kv_type(v.type_v.unwrap_or_default()),
            flash_attention: v.flash_attention.unwrap_or(false),
            mmap: v.mmap.unwrap_or(true),
            context_cap: v.context_cap,
            pinned: Pinned {
                cache_types: v.type_k.is_some() || v.type_v.is_some(),
                flash_attention: v.flash_attention.is_some(),
                mmap: v.mmap.is_some(),
            },
        };
        // A quantized V cache without flash attention is llama.cpp's limit, not the format's:
        // its engine refuses such a case (`Backend::refuses`), the file itself is valid.
        if let Some(cap) = v.context_cap
            && (cap == 0 || u64::from(prompt_tokens) + u64::from(generate_tokens) > u64::from(cap))
        {
            return Err(cx.at(
                "kv.context_cap",
                &v.name,
                format!("variant `{name}`: context_cap {cap} leaves no room for prompt_tokens + generate_tokens"),
            ));
        }
        kv.push(variant);
    }
    match kv.iter().filter(|k| k.baseline).count() {
        0 if !kv.is_empty() => kv[0].baseline = true,
        0 | 1 => {}
        _ => {
            // Points at the second `baseline = true`.
            let second = variants
                .iter()
                .filter_map(|v| v.baseline.as_ref().filter(|b| *b.get_ref()))
                .nth(1)
                .map_or(0, |b| b.span().start);
            return Err(cx.invalid(
                "kv.baseline",
                second,
                "more than one variant is marked baseline",
            ));
        }
    }
    if kv.is_empty() {
        kv.push(KvVariant::default_variant());
    }

    Ok(kv)
}
