//! Hot paths of the pure core: expanding a 10,000-case scenario matrix, and the confidence
//! interval of a median over 10⁶ samples (`cargo bench -p edgebench-core`).

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use edgebench_core::stats::{self, SplitMix64};
use edgebench_core::{Registry, Scenario};

const MODELS: usize = 10;

fn registry() -> Registry {
    let mut text = String::from("format = 1\n");
    for m in 0..MODELS {
        write!(
            text,
            r#"
[[model]]
id = "model-{m}"
name = "Model {m}"
family = "llama"
origin = "real"
obtain = "generated"
arch = {{ gguf_arch = "llama", layers = 2, hidden = 64, ffn = 128, heads = 4, kv_heads = 2, head_dim = 16, vocab = 256, context = 8192, rope_theta = 10000.0 }}
file = [{{ quant = "Q4_0", path = "m{m}-q4_0.gguf" }}, {{ quant = "Q8_0", path = "m{m}-q8_0.gguf" }}]
"#
        )
        .expect("write to a String");
    }
    Registry::parse("models.toml", &text).expect("generated registry is valid")
}

/// 10 models × 2 quantizations × 2 engines × 10 concurrency levels × 5 thread counts × 5 KV
/// variants = 10,000 cases.
fn scenario_text() -> String {
    let models: Vec<String> = (0..MODELS).map(|m| format!("\"model-{m}\"")).collect();
    format!(
        r#"format = 1
name = "matrix"
category = "code_generation"
dataset = "datasets/code_generation.jsonl"
models = [{}]
quantizations = ["Q4_0", "Q8_0"]
backends = ["llama_cpp", "candle"]
context = 4096
prompt_tokens = 128
generate_tokens = 32
concurrency = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
threads = [1, 2, 3, 4, 5]
seed = 7
repetitions = 3

[[kv]]
name = "baseline"
baseline = true

[[kv]]
name = "f16-fa"
flash_attention = true

[[kv]]
name = "q8_0-fa"
type_k = "q8_0"
type_v = "q8_0"
flash_attention = true

[[kv]]
name = "q4_0-fa"
type_k = "q4_0"
type_v = "q4_0"
flash_attention = true

[[kv]]
name = "no-mmap"
mmap = false
"#,
        models.join(", ")
    )
}

fn expansion(c: &mut Criterion) {
    let registry = registry();
    let text = scenario_text();
    let scenario = Scenario::parse("scenarios/matrix.toml", &text, &registry).expect("valid");
    assert_eq!(scenario.clone().expand().len(), 10_000);
    let mut g = c.benchmark_group("scenario");
    g.bench_function("expand 10k cases", |b| {
        b.iter(|| black_box(scenario.clone().expand()).len());
    });
    g.bench_function("parse + expand 10k cases", |b| {
        b.iter(|| {
            Scenario::parse("scenarios/matrix.toml", black_box(&text), &registry)
                .map(|s| s.expand().len())
        });
    });
    g.finish();
}

/// Token-latency-like samples: a lognormal-ish spread around 14 ms.
fn samples(n: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(42);
    (0..n)
        .map(|_| {
            let u = (rng.below(1 << 30) as f64 + 0.5) / f64::from(1u32 << 30);
            14.0 * (0.2 * stats::normal_quantile(u)).exp()
        })
        .collect()
}

fn confidence_intervals(c: &mut Criterion) {
    let mut g = c.benchmark_group("median CI");
    g.sample_size(10);
    let big = samples(1_000_000);
    g.bench_function("10^6 samples (order statistics)", |b| {
        b.iter(|| stats::bootstrap_median_ci(black_box(&big), 0.95, 2000, 1));
    });
    let limit = samples(stats::RESAMPLING_LIMIT);
    g.bench_function("10^4 samples (2000 bootstrap resamples)", |b| {
        b.iter(|| stats::bootstrap_median_ci(black_box(&limit), 0.95, 2000, 1));
    });
    g.bench_function("10^6 samples summary (n, median, percentiles)", |b| {
        b.iter(|| stats::summarize(black_box(&big)));
    });
    g.finish();
}

criterion_group!(benches, expansion, confidence_intervals);
criterion_main!(benches);
