//! Import of llama.cpp's `llama-bench -o json` (or `-o jsonl`) output, so a lab's existing
//! llama-bench history lands in the same tables as edgebench's own runs.
//!
//! Each llama-bench test (one model, one `pp`/`tg`/`pg` test, one parameter set) becomes one run
//! with `origin = 'imported:llama-bench'`, its samples summarised exactly as edgebench summarises
//! its own (median, spread, bootstrap CI), and no per-request rows (llama-bench keeps none). The
//! run id is the digest of the test's JSON object, so importing the same output twice adds
//! nothing. llama-bench names no model hash: the model row is keyed `unhashed:llama-bench:...`
//! (never mistaken for a file's sha256), and the device is keyed by the digest of llama-bench's
//! `cpu_info`, `gpu_info` and `backends`.

use std::path::{Path, PathBuf};

use edgebench_core::measure::summarize_metric;
use edgebench_core::sha256_hex;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::exchange::{Columns, Record, RunRecord};

/// `runs.origin` of imported llama-bench tests.
pub const ORIGIN: &str = "imported:llama-bench";

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not llama-bench JSON output (`llama-bench -o json` or `-o jsonl`): {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: test {index}: {message}", path.display())]
    BadTest {
        path: PathBuf,
        index: usize,
        message: String,
    },
}

/// The fields of one llama-bench test that edgebench uses; the whole object is kept as well.
#[derive(Debug, Deserialize)]
struct Test {
    #[serde(default)]
    build_commit: String,
    #[serde(default)]
    build_number: i64,
    #[serde(default)]
    cpu_info: String,
    #[serde(default)]
    gpu_info: String,
    #[serde(default)]
    backends: String,
    model_filename: String,
    #[serde(default)]
    model_type: String,
    #[serde(default)]
    model_size: u64,
    #[serde(default)]
    model_n_params: u64,
    #[serde(default)]
    n_batch: u32,
    #[serde(default)]
    n_threads: u32,
    #[serde(default = "f16")]
    type_k: String,
    #[serde(default = "f16")]
    type_v: String,
    #[serde(default)]
    flash_attn: Value,
    #[serde(default)]
    use_mmap: Value,
    n_prompt: u32,
    n_gen: u32,
    #[serde(default)]
    n_depth: u32,
    test_time: String,
    #[serde(default)]
    samples_ts: Vec<f64>,
    #[serde(default)]
    samples_ns: Vec<u64>,
}

fn f16() -> String {
    "f16".to_owned()
}

/// Older llama-bench versions write booleans, newer ones -1/0/1 (auto/off/on).
fn flag(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// Milliseconds since the epoch of an RFC 3339 UTC time as llama-bench writes it
/// (`2025-04-24T11:58:50Z`).
fn parse_utc_ms(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let ss: f64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60) * 1000 + (ss * 1000.0).round() as i64)
}

fn canonical(v: &Value) -> String {
    // serde_json's Map is ordered by key (no `preserve_order`), so this is canonical.
    v.to_string()
}

/// Reads llama-bench output (a JSON array, or one object per line) into import records.
/// `host` names the machine it ran on (llama-bench does not record it).
pub fn read(path: &Path, host: &str) -> Result<Vec<Record>, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let parse_err = |message: String| ImportError::Parse {
        path: path.to_owned(),
        message,
    };
    let objects: Vec<Value> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text).map_err(|e| parse_err(e.to_string()))?
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| parse_err(format!("line {}: {e}", i + 1)))
            })
            .collect::<Result<_, _>>()?
    };
    if objects.is_empty() {
        return Err(parse_err("no tests in the file".to_owned()));
    }
    let file_sha = sha256_hex(text.as_bytes());
    let mut records = Vec::with_capacity(objects.len() + 1);
    records.push(Record::Header(crate::exchange::Header {
        format: crate::exchange::EXCHANGE_FORMAT.to_owned(),
        version: crate::exchange::EXCHANGE_VERSION,
        schema_version: crate::SCHEMA_VERSION,
        exported_at_ms: crate::exchange::now_ms(),
    }));
    for (index, object) in objects.iter().enumerate() {
        let bad = |message: String| ImportError::BadTest {
            path: path.to_owned(),
            index,
            message,
        };
        let test: Test = serde_json::from_value(object.clone()).map_err(|e| bad(e.to_string()))?;
        records.push(Record::Run(Box::new(
            to_run(path, host, &file_sha, object, &test).map_err(bad)?,
        )));
    }
    Ok(records)
}

fn cols(v: Value) -> Columns {
    match v {
        Value::Object(m) => m,
        _ => Columns::new(),
    }
}

fn to_run(
    path: &Path,
    host: &str,
    file_sha: &str,
    object: &Value,
    t: &Test,
) -> Result<RunRecord, String> {
    let started_at_ms = parse_utc_ms(&t.test_time)
        .ok_or_else(|| format!("test_time `{}` is not an RFC 3339 UTC time", t.test_time))?;
    if t.samples_ts.is_empty() {
        return Err("no samples_ts: nothing was measured".to_owned());
    }
    let device_facts = json!({
        "source": "llama-bench", "cpu_info": t.cpu_info, "gpu_info": t.gpu_info, "backends": t.backends,
    });
    let device = cols(json!({
        "fingerprint": sha256_hex(canonical(&device_facts).as_bytes()),
        "hostname": host,
        "cpu_model": t.cpu_info,
        "cpu_features": "",
        "cores_physical": null,
        "cores_logical": 0,
        "ram_bytes": 0,
        "os": "",
        "kernel": "",
        "engine_builds": canonical(&json!({
            "engine": "llama.cpp", "build_commit": t.build_commit, "build_number": t.build_number,
            "backends": t.backends, "gpu_info": t.gpu_info,
        })),
        "build_profile": "llama-bench",
        "details": canonical(&device_facts),
    }));
    let stem = Path::new(&t.model_filename).file_stem().map_or_else(
        || t.model_filename.clone(),
        |s| s.to_string_lossy().into_owned(),
    );
    // model_type is "<arch> <size> <quant description>", e.g. "qwen2 7B Q4_K - Medium".
    let mut type_parts = t.model_type.splitn(3, ' ');
    let arch = type_parts.next().unwrap_or_default().to_owned();
    let description = type_parts.nth(1).unwrap_or_default();
    let quant = edgebench_core::quant::Quant::from_description(description).ok_or_else(|| {
        format!(
            "model_type `{}`: `{description}` is no quantization llama.cpp names",
            t.model_type
        )
    })?;
    let model = cols(json!({
        "sha256": format!("unhashed:llama-bench:{}", &sha256_hex(
            format!("{}|{}|{}", t.model_filename, t.model_size, t.model_n_params).as_bytes())[..32]),
        "registry_id": stem,
        "label": format!("{} (imported from llama-bench)", if t.model_type.is_empty() { &stem } else { &t.model_type }),
        "origin": "real",
        "quant": quant.as_str(),
        "gguf_arch": arch,
        "size_bytes": t.model_size,
        "path": t.model_filename,
    }));
    let (test_name, category, metric) = match (t.n_prompt, t.n_gen) {
        (p, 0) => (format!("pp{p}"), "llama-bench pp", "prefill_tokens_per_s"),
        (0, g) => (
            format!("tg{g}"),
            "llama-bench tg",
            "generation_tokens_per_s",
        ),
        (p, g) => (
            format!("pp{p}+tg{g}"),
            "llama-bench pg",
            "throughput_tokens_per_s",
        ),
    };
    let depth = if t.n_depth > 0 {
        format!("@d{}", t.n_depth)
    } else {
        String::new()
    };
    let device_kind = if t.backends.is_empty() || t.backends.eq_ignore_ascii_case("cpu") {
        "cpu".to_owned()
    } else {
        t.backends.to_lowercase()
    };
    // The read side knows every cache type llama.cpp accepts: refuse another here, by name.
    for (key, name) in [("type_k", &t.type_k), ("type_v", &t.type_v)] {
        name.parse::<edgebench_core::scenario::KvType>()
            .map_err(|e| format!("{key}: {e}"))?;
    }
    let case_params = json!({
        "source": "llama-bench", "model": stem, "model_type": t.model_type, "test": test_name,
        "n_depth": t.n_depth, "n_threads": t.n_threads, "n_batch": t.n_batch, "type_k": t.type_k,
        "type_v": t.type_v, "flash_attn": object.get("flash_attn"), "use_mmap": object.get("use_mmap"),
        "backends": t.backends, "n_gpu_layers": object.get("n_gpu_layers"),
    });
    let case = cols(json!({
        "case_key": sha256_hex(canonical(&case_params).as_bytes()),
        "name": format!("llama-bench::{stem}::{test_name}{depth}::llama_cpp::t{}", t.n_threads),
        "scenario": "llama-bench",
        "category": category,
        "model": stem,
        "quant": quant.as_str(),
        "backend": "llama_cpp",
        "device": device_kind,
        "concurrency": 1,
        "threads": t.n_threads,
        "context": t.n_prompt + t.n_gen + t.n_depth,
        "prompt_tokens": t.n_prompt,
        "generate_tokens": t.n_gen,
        "batch": t.n_batch,
        "kv_variant": "default",
        "kv_baseline": true,
        "type_k": t.type_k,
        "type_v": t.type_v,
        "flash_attention": flag(&t.flash_attn),
        "mmap": flag(&t.use_mmap),
        "sampling": "none (llama-bench times no sampling)",
    }));
    let run_id = sha256_hex(canonical(object).as_bytes())[..32].to_owned();
    let total_ns: u64 = t.samples_ns.iter().sum();
    let run = cols(json!({
        "id": run_id,
        "invocation": format!("llama-bench:{}", &file_sha[..32]),
        "status": "passed",
        "started_at_ms": started_at_ms,
        "ended_at_ms": started_at_ms + i64::try_from(total_ns / 1_000_000).unwrap_or(0),
        "tool_version": format!("llama-bench build {}", t.build_number),
        "git_commit": t.build_commit,
        "scenario_file": path.display().to_string(),
        "scenario_sha256": file_sha,
        "seed": 0,
        "warmup": 0,
        "repetitions": t.samples_ts.len(),
        "host": host,
        "pid": 0,
        "mode": "measure",
        "origin": ORIGIN,
        "stop_reason": "fixed",
        "engine_counters": canonical(&json!({
            "avg_ns": object.get("avg_ns"), "stddev_ns": object.get("stddev_ns"),
            "avg_ts": object.get("avg_ts"), "stddev_ts": object.get("stddev_ts"),
            "samples_ns": t.samples_ns,
        })),
    }));
    let summary = summarize_metric(metric, "tokens/s", &t.samples_ts, 0)
        .ok_or_else(|| "samples_ts holds a value that is not finite".to_owned())?;
    let s = summary.summary;
    let metric_row = cols(json!({
        "metric": metric, "unit": "tokens/s", "n": s.n, "mean": s.mean, "median": s.median,
        "stddev": s.stddev, "cv": s.cv, "min": s.min, "max": s.max, "p90": s.p90, "p95": s.p95,
        "p99": s.p99, "ci_low": summary.ci.map(|c| c.low), "ci_high": summary.ci.map(|c| c.high),
        "ci_level": summary.ci.map(|c| c.level), "outliers_low": summary.outliers_low,
        "outliers_high": summary.outliers_high,
    }));
    Ok(RunRecord {
        device,
        model: Some(model),
        case,
        run,
        requests: Vec::new(),
        metrics: vec![metric_row],
        answers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_utc_ms;

    #[test]
    fn imports_are_stored_under_the_origin_the_read_side_knows() {
        assert_eq!(
            super::ORIGIN.parse(),
            Ok(edgebench_core::run_facts::RunOrigin::llama_bench())
        );
    }

    #[test]
    fn utc_times_convert_to_epoch_milliseconds() {
        assert_eq!(parse_utc_ms("1970-01-01T00:00:00Z"), Some(0));
        // date -d 2025-04-24T11:58:50Z +%s → 1745495930
        assert_eq!(
            parse_utc_ms("2025-04-24T11:58:50Z"),
            Some(1_745_495_930_000)
        );
        assert_eq!(
            parse_utc_ms("2024-02-29T23:59:59Z"),
            Some(1_709_251_199_000)
        );
        assert_eq!(parse_utc_ms("2025-13-01T00:00:00Z"), None);
        assert_eq!(parse_utc_ms("yesterday"), None);
    }
}
