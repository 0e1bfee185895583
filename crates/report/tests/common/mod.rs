//! A results database written through the real store, with deterministic samples: three models
//! (two twins, one real), both engines, concurrency levels, KV variants, two invocations (the
//! second slower, for regressions), an aborted run and parity rows. One model's label is a
//! script tag, to test escaping.

#![allow(dead_code)]

use std::path::Path;

use edgebench_core::overhead::RepetitionPhases;
use edgebench_report::Inputs;
use edgebench_store::*;

pub const EVIL: &str = "<script>alert(1)</script>";

struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn inputs() -> Inputs {
    Inputs::parse(
        ("models.toml", include_str!("../../../../models.toml")),
        (
            "datasets/claims.toml",
            include_str!("../../../../datasets/claims.toml"),
        ),
        (
            "datasets/roi.toml",
            include_str!("../../../../datasets/roi.toml"),
        ),
    )
    .expect("shipped inputs parse")
}

struct Model {
    registry_id: &'static str,
    label: &'static str,
    origin: &'static str,
    quant: &'static str,
    tokens_per_s: f64,
    size: u64,
}

const MODELS: [Model; 7] = [
    Model {
        registry_id: "mimo-7b-twin16",
        label: "mimo-7b (twin 1/16)",
        origin: "twin",
        quant: "Q4_0",
        tokens_per_s: 900.0,
        size: 9_000_000,
    },
    Model {
        registry_id: "phi-4-mini-twin16",
        label: "phi-4-mini (twin 1/16)",
        origin: "twin",
        quant: "Q4_0",
        tokens_per_s: 1500.0,
        size: 5_000_000,
    },
    Model {
        registry_id: "gemma3-270m",
        label: "gemma3-270m",
        origin: "real",
        quant: "Q4_K_M",
        tokens_per_s: 50.0,
        size: 253_113_024,
    },
    Model {
        registry_id: "evil",
        label: EVIL,
        origin: "real",
        quant: "Q4_0",
        tokens_per_s: 10.0,
        size: 1_000_000,
    },
    // The headline pair: MiMo-7B and Phi-4-mini at their real dimensions (full-size twins),
    // at this machine's measured speeds.
    Model {
        registry_id: "mimo-7b-full-twin",
        label: "mimo-7b (full-size twin, random weights)",
        origin: "twin",
        quant: "Q4_K_M",
        tokens_per_s: 5.0,
        size: 4_680_000_000,
    },
    Model {
        registry_id: "phi-4-mini-full-twin",
        label: "phi-4-mini (full-size twin, random weights)",
        origin: "twin",
        quant: "Q4_K_M",
        tokens_per_s: 8.8,
        size: 2_490_000_000,
    },
    // Gemma's random-weight copy (same header, random data), 1% slower than the real file.
    Model {
        registry_id: "gemma3-270m-twin",
        label: "gemma3-270m (twin of the real file, random weights)",
        origin: "twin",
        quant: "Q4_K_M",
        tokens_per_s: 49.5,
        size: 253_113_024,
    },
];

#[derive(Clone, Copy)]
struct Spec<'a> {
    scenario: &'a str,
    category: &'a str,
    backend: &'a str,
    concurrency: u32,
    variant: &'a str,
    baseline: bool,
    type_kv: &'a str,
    /// Speed factor relative to the model's base speed.
    factor: f64,
    /// The run's roofline share, when not the fixture's default for the model's origin.
    roofline_fraction: Option<f64>,
}

#[allow(clippy::too_many_arguments)] // a fixture: one call per run, every field spelled out
fn write_run(
    store: &mut Store,
    device_id: i64,
    m: &Model,
    model_id: i64,
    spec: &Spec<'_>,
    invocation: &str,
    started: i64,
    rng: &mut Lcg,
) {
    let name = format!(
        "{}::{}::{}::{}::c{}::{}",
        spec.scenario, m.registry_id, m.quant, spec.backend, spec.concurrency, spec.variant
    );
    let case_id = store
        .upsert_case(&CaseRow {
            scenario: spec.scenario.into(),
            category: spec.category.into(),
            model: m.registry_id.into(),
            quant: m.quant.into(),
            backend: spec.backend.into(),
            concurrency: spec.concurrency,
            kv_variant: spec.variant.into(),
            kv_baseline: spec.baseline,
            type_k: spec.type_kv.into(),
            type_v: spec.type_kv.into(),
            ..CaseRow::named(&name)
        })
        .expect("case");
    let run_id =
        edgebench_core::sha256_hex(format!("{name}/{invocation}").as_bytes())[..32].to_string();
    store
        .begin_run(&NewRunRow {
            id: run_id.clone(),
            invocation: invocation.into(),
            case_id,
            device_id,
            model_id: Some(model_id),
            started_at_ms: started,
            tool_version: "0.1.0".into(),
            git_commit: "fixture".into(),
            scenario_file: format!("scenarios/{}.toml", spec.scenario),
            scenario_sha256: "00".into(),
            seed: 42,
            warmup: 1,
            repetitions: 3,
            host: "lab-host".into(),
            pid: 1,
            mode: "measure".into(),
        })
        .expect("begin");
    let rate = m.tokens_per_s * spec.factor / f64::from(spec.concurrency).sqrt();
    let mut requests = Vec::new();
    let turns = if spec.category == "multi_turn" { 3 } else { 1 };
    for i in 0..(6 * spec.concurrency.min(4)) {
        for turn in 0..turns {
            let gaps: Vec<u64> = (0..15)
                .map(|_| (1e9 / rate * (0.9 + 0.2 * rng.unit())) as u64)
                .collect();
            let decode: u64 = gaps.iter().sum();
            let queue = (f64::from(spec.concurrency - 1) * 2e6 * rng.unit()) as u64;
            let ttft = queue + 3_000_000;
            requests.push(RequestRow {
                repetition: i / 2,
                warmup: false,
                request_index: i,
                prompt_id: format!("p{i}"),
                turn,
                seq: i % spec.concurrency,
                prompt_tokens: 64,
                generated_tokens: 16,
                queue_ns: queue,
                prefill_ns: 3_000_000,
                ttft_ns: ttft,
                decode_ns: decode,
                e2e_ns: ttft + decode,
                reset_ns: 1000,
                status: if spec.concurrency >= 4 && i == 0 {
                    "queue_full".into()
                } else {
                    "completed".into()
                },
                priority: "normal".into(),
                sent_ns: u64::from(i) * 1_000_000,
                output_sha256: "d".into(),
                output_text: format!("output of {}", m.label),
                token_latencies_ns: gaps,
                source: None,
                fallback_reason: None,
                fallback_ns: None,
                cost_usd: None,
                error: None,
            });
        }
    }
    let aggregate = m.tokens_per_s * spec.factor * f64::from(spec.concurrency).sqrt();
    let metric = |name: &str, unit: &str, median: f64| MetricRow {
        metric: name.into(),
        unit: unit.into(),
        n: 3,
        mean: median,
        median,
        stddev: median * 0.02,
        cv: 0.02,
        min: median * 0.97,
        max: median * 1.03,
        p90: median * 1.02,
        p95: median * 1.025,
        p99: median * 1.03,
        ci: Some((median * 0.98, median * 1.02, 0.95)),
        outliers_low: 0,
        outliers_high: 0,
    };
    let kv_bytes = if spec.type_kv == "q8_0" {
        4_456_448
    } else {
        8_388_608
    };
    store
        .finish_run(
            &run_id,
            &RunEndRow {
                // A q8_0 cache's quality pass, stored for every model; the report shows a
                // twin's as n/a (random weights).
                // A candle run's pass is measured against llama.cpp on the same file.
                quality: (spec.type_kv == "q8_0" || spec.backend == "candle").then(|| QualityRow {
                    json: serde_json::json!({
                        "format": 1, "reference": "llama_cpp f16/f16",
                        "corpus": "datasets/quality_corpus.txt", "corpus_sha256": "ab12cd34ef56ab12",
                        "context": 512, "chunks": 16, "tokens": 4080, "mean_kld": 0.0042,
                        "kld_stderr": 0.00013, "kld_ci95": [0.00395, 0.00445], "median_kld": 0.002,
                        "p99_kld": 0.0144, "max_kld": 0.09, "same_top1": 0.945,
                        "same_top1_stderr": 0.0036, "delta_log_ppl": 0.0005,
                        "reference_ppl": 57.6, "candidate_ppl": 57.63, "seconds": 9.0,
                    })
                    .to_string(),
                    mean_kld: 0.0042,
                    same_top1: 0.945,
                }),
                integrity: Some((
                    r#"{"format":1,"turns":6,"greedy":true,"inconsistent_first_tokens":[],"wrong_counts":0,"expected_tokens":16,"verdict":"pass"}"#.into(),
                    true,
                )),
                load_ms: Some(20.0),
                kv_cache_bytes: Some(kv_bytes),
                weights_bytes: Some(m.size),
                peak_rss_bytes: Some(m.size + 60_000_000 + kv_bytes),
                // llama.cpp keeps counters; the harness took 0.5% longer than they say.
                phase_timings: (spec.backend == "llama_cpp" && spec.concurrency == 1).then(|| {
                    serde_json::to_string(
                        &(0..3)
                            .map(|k| RepetitionPhases {
                                harness_prefill_tokens: 384,
                                harness_prefill_ns: 1_005_000_000 + k * 1_000_000,
                                harness_decode_tokens: 90,
                                harness_decode_ns: 2_010_000_000,
                                engine_prefill_tokens: 384,
                                engine_prefill_ms: 1000.0,
                                engine_decode_tokens: 90,
                                engine_decode_ms: 2000.0,
                            })
                            .collect::<Vec<_>>(),
                    )
                    .expect("json")
                }),
                estimated_peak_bytes: Some(m.size + 50_000_000),
                cpu_time_ms: Some(1000.0),
                energy: Some((
                    4.0,
                    "estimate: cpu_time_s × 4 W per busy core (assumed, not measured)".into(),
                )),
                stop_reason: Some("fixed".into()),
                // Twins' weights fit in cache (above 100%); gemma reads from memory.
                roofline: Some(RooflineRow {
                    decode_bytes_read: m.size * 90,
                    decode_steps_ns: 2_000_000_000,
                    bandwidth_bytes_per_s: 20e9,
                    fraction: spec.roofline_fraction.unwrap_or(if m.origin == "twin" {
                        1.3
                    } else {
                        0.5
                    }),
                    // The twins' probe moved 40% around their runs (flagged), the real
                    // models' 10%.
                    probe: Some(edgebench_store::ProbeRow {
                        n: 6,
                        min_bytes_per_s: 19e9,
                        max_bytes_per_s: if m.origin == "twin" { 27e9 } else { 21e9 },
                    }),
                }),
                metrics: vec![
                    metric("generation_tokens_per_s", "tokens/s", aggregate),
                    metric("ttft_ms", "ms", 3.0),
                ],
                ..RunEndRow::new(RunStatus::Passed, started + 10)
            },
            &requests,
        )
        .expect("finish");
}

/// Writes the fixture database at `path`.
pub fn write_fixture(path: &Path) {
    let mut store = Store::open(path).expect("open");
    let device_id = store
        .upsert_device(&DeviceRow {
            fingerprint: "f1ngerpr1nt".into(),
            hostname: "lab-host".into(),
            cpu_model: "Fixture CPU".into(),
            cpu_features: "avx2".into(),
            cores_physical: Some(2),
            cores_logical: 2,
            ram_bytes: 8 << 30,
            os: "Debian 12".into(),
            kernel: "6.1".into(),
            engine_builds: r#"[{"engine":"llama.cpp","version":"llama-cpp-2 0.1.160"},{"engine":"candle","version":"candle-core 0.11.1"}]"#.into(),
            build_profile: "release".into(),
            details: "{}".into(),
        })
        .expect("device");
    store
        .insert_device_measurement(&DeviceMeasurementRow {
            device_id,
            kind: "triad_bandwidth_bytes_per_s".into(),
            value: 20e9,
            median: 19e9,
            n: 5,
            details: "{}".into(),
            measured_at_ms: 1,
        })
        .expect("triad");
    let mut rng = Lcg(7);
    for m in &MODELS {
        let model_id = store
            .upsert_model(&ModelRow {
                sha256: edgebench_core::sha256_hex(m.registry_id.as_bytes()),
                registry_id: m.registry_id.into(),
                label: m.label.into(),
                origin: m.origin.into(),
                quant: m.quant.into(),
                gguf_arch: "qwen2".into(),
                size_bytes: m.size,
                path: format!("models/{}.gguf", m.registry_id),
            })
            .expect("model");
        let base = |scenario, category, backend, concurrency| Spec {
            scenario,
            category,
            backend,
            concurrency,
            variant: "default",
            baseline: true,
            type_kv: "f16",
            factor: 1.0,
            roofline_fraction: None,
        };
        let mut specs = vec![
            base("code_generation", "code_generation", "llama_cpp", 1),
            base("code_generation", "code_generation", "candle", 1),
            base("math_reasoning", "math_reasoning", "llama_cpp", 1),
            base("multi_turn", "multi_turn", "llama_cpp", 1),
            base("batch_concurrent", "batch_concurrent", "llama_cpp", 1),
            base("batch_concurrent", "batch_concurrent", "llama_cpp", 4),
            base("batch_concurrent", "batch_concurrent", "llama_cpp", 16),
            Spec {
                variant: "baseline",
                ..base("kv_cache", "long_context", "llama_cpp", 1)
            },
            Spec {
                variant: "q8_0",
                baseline: false,
                type_kv: "q8_0",
                factor: 1.08,
                ..base("kv_cache", "long_context", "llama_cpp", 1)
            },
        ];
        if m.registry_id == "evil" {
            specs.truncate(1);
        }
        let fidelity = Spec {
            roofline_fraction: Some(0.5),
            ..base("twin_fidelity", "long_context", "llama_cpp", 1)
        };
        if m.registry_id == "gemma3-270m" {
            specs.push(fidelity);
        }
        if m.registry_id == "gemma3-270m-twin" {
            specs = vec![fidelity];
        }
        // The full-size twins run the default suite's short cases, reading DRAM as real
        // weights do (94–99% of the roofline here).
        if m.registry_id.ends_with("-full-twin") {
            specs = [
                ("code_generation", "code_generation"),
                ("math_reasoning", "math_reasoning"),
                ("multi_turn", "multi_turn"),
            ]
            .into_iter()
            .map(|(scenario, category)| Spec {
                roofline_fraction: Some(0.95),
                ..base(scenario, category, "llama_cpp", 1)
            })
            .collect();
        }
        for spec in &specs {
            write_run(
                &mut store, device_id, m, model_id, spec, "inv-1", 1000, &mut rng,
            );
        }
        // A second invocation of one case: Phi-4's twin got 30% slower.
        if m.registry_id == "phi-4-mini-twin16" {
            let slower = Spec {
                factor: 0.7,
                ..base("code_generation", "code_generation", "llama_cpp", 1)
            };
            write_run(
                &mut store, device_id, m, model_id, &slower, "inv-2", 2000, &mut rng,
            );
        }
        if m.registry_id == "gemma3-270m" {
            store
                .insert_parity(&ParityRow {
                    invocation: "parity-1".into(),
                    model_id,
                    reference_backend: "llama_cpp".into(),
                    candidate_backend: "candle".into(),
                    prompt_set: "datasets/code_generation.jsonl".into(),
                    prompt_id: "p1".into(),
                    prompt_tokens: 64,
                    first_token_match: true,
                    compared_tokens: 32,
                    agreeing_tokens: 31,
                    max_abs_logprob_diff: Some(1.03),
                    top10_abs_logprob_diff: Some(0.08),
                    reference_top1: Some(5),
                    candidate_top1: Some(5),
                    created_at_ms: 1,
                })
                .expect("parity");
        }
    }
    // A crashed case: aborted with its stderr tail (which must be escaped too).
    let case_id = store
        .upsert_case(&CaseRow {
            case_key: "crash".into(),
            kv_variant: "crash".into(),
            kv_baseline: false,
            ..CaseRow::named("code_generation::gemma3-270m::Q4_K_M::llama_cpp::c1::crash")
        })
        .expect("case");
    store
        .begin_run(&NewRunRow {
            id: "crashed-run".into(),
            invocation: "inv-2".into(),
            case_id,
            device_id,
            model_id: None,
            started_at_ms: 2000,
            tool_version: "0.1.0".into(),
            git_commit: "fixture".into(),
            scenario_file: "scenarios/code_generation.toml".into(),
            scenario_sha256: "00".into(),
            seed: 42,
            warmup: 1,
            repetitions: 3,
            host: "lab-host".into(),
            pid: 2,
            mode: "measure".into(),
        })
        .expect("begin");
    store
        .abort_run(
            "crashed-run",
            "the case process was killed by signal 6 (SIGABRT)",
            "GGML_ASSERT failed <b>boom</b>",
            2001,
        )
        .expect("abort");
}

/// Adds to the fixture at `path` a full-size twin's KV comparison (Phi-4-mini, Q4_K_M): an f16
/// baseline at roofline share 60% and a q8_0 variant at 45%, 10% slower.
pub fn write_full_size_kv(path: &Path) {
    let mut store = Store::open(path).expect("open");
    let device_id = fixture_device(&store);
    let m = Model {
        registry_id: "phi-4-mini-full-twin",
        label: "Phi-4-mini full-size twin (random weights)",
        origin: "twin",
        quant: "Q4_K_M",
        tokens_per_s: 5.0,
        size: 2_490_000_000,
    };
    let model_id = store
        .upsert_model(&ModelRow {
            sha256: edgebench_core::sha256_hex(m.registry_id.as_bytes()),
            registry_id: m.registry_id.into(),
            label: m.label.into(),
            origin: m.origin.into(),
            quant: m.quant.into(),
            gguf_arch: "phi3".into(),
            size_bytes: m.size,
            path: format!("models/{}.gguf", m.registry_id),
        })
        .expect("model");
    let mut rng = Lcg(11);
    for (variant, baseline, type_kv, factor, share) in [
        ("baseline", true, "f16", 1.0, 0.6),
        ("q8_0-fa", false, "q8_0", 0.9, 0.45),
    ] {
        let spec = Spec {
            scenario: "full_size_kv",
            category: "kv_cache",
            backend: "llama_cpp",
            concurrency: 1,
            variant,
            baseline,
            type_kv,
            factor,
            roofline_fraction: Some(share),
        };
        write_run(
            &mut store, device_id, &m, model_id, &spec, "inv-full", 3000, &mut rng,
        );
    }
}

/// Adds the `quantization` scenario's runs: SmolLM2's weights at F16 (the reference) and Q8_0,
/// the Q8_0 run with a quality pass against the F16 file.
pub fn write_quantization(path: &Path) {
    let mut store = Store::open(path).expect("open");
    let device_id = fixture_device(&store);
    let mut rng = Lcg(12);
    for (quant, size, tokens_per_s) in [("F16", 270_885_952, 20.0), ("Q8_0", 144_811_072, 30.0)] {
        let m = Model {
            registry_id: "smollm2-135m-requant",
            label: "smollm2-135m-requant",
            origin: "real",
            quant,
            tokens_per_s,
            size,
        };
        let model_id = store
            .upsert_model(&ModelRow {
                sha256: edgebench_core::sha256_hex(quant.as_bytes()),
                registry_id: m.registry_id.into(),
                label: m.label.into(),
                origin: m.origin.into(),
                quant: quant.into(),
                gguf_arch: "llama".into(),
                size_bytes: size,
                path: format!("models/quantized/smollm2-{quant}.gguf"),
            })
            .expect("model");
        let spec = Spec {
            scenario: "quantization",
            category: "code_generation",
            backend: "llama_cpp",
            concurrency: 1,
            variant: "default",
            baseline: true,
            type_kv: "f16",
            factor: 1.0,
            roofline_fraction: None,
        };
        write_run(
            &mut store,
            device_id,
            &m,
            model_id,
            &spec,
            "inv-quant",
            4000,
            &mut rng,
        );
    }
    let quality = serde_json::json!({
        "format": 1, "reference": "llama_cpp F16 file, cache f16/f16", "reference_quant": "F16",
        "corpus": "datasets/quality_corpus.txt", "corpus_sha256": "ab12cd34ef56ab12",
        "context": 512, "chunks": 8, "tokens": 2040, "mean_kld": 0.00497,
        "kld_stderr": 0.0001, "kld_ci95": [0.00477, 0.00517], "median_kld": 0.0044,
        "p99_kld": 0.0155, "max_kld": 0.05, "same_top1": 0.95, "same_top1_stderr": 0.005,
        "delta_log_ppl": 0.0004, "reference_ppl": 83.5, "candidate_ppl": 83.6, "seconds": 20.0,
    });
    store
        .connection()
        .execute(
            "UPDATE runs SET quality = ?1, kld_mean = 0.00497, same_top1 = 0.95
             WHERE case_id IN (SELECT id FROM cases WHERE scenario = 'quantization' AND quant = 'Q8_0')",
            [quality.to_string()],
        )
        .expect("quality stored");
}

/// Marks the runs of `scenario` on `registry_id` as contended: other processes held `share` of
/// the cores while they measured (the metric the harness stores).
pub fn mark_contended(path: &Path, scenario: &str, registry_id: &str, share: f64) {
    let store = Store::open(path).expect("open");
    let marked = store
        .connection()
        .execute(
            "INSERT INTO run_metrics (run_id, metric, unit, n, mean, median, stddev, cv, min, max,
                                      p90, p95, p99, outliers_low, outliers_high)
             SELECT r.id, ?1, 'fraction', 1, ?2, ?2, 0, 0, ?2, ?2, ?2, ?2, ?2, 0, 0
             FROM runs r JOIN cases c ON c.id = r.case_id JOIN models m ON m.id = r.model_id
             WHERE c.scenario = ?3 AND m.registry_id = ?4",
            (
                edgebench_core::contention::OTHERS_CPU_SHARE_METRIC,
                share,
                scenario,
                registry_id,
            ),
        )
        .expect("metric stored");
    assert!(marked > 0, "no run of {scenario} on {registry_id}");
}

/// Adds `cargo xtask replicate`'s tries of gemma3-270m's llama.cpp code-generation case: one
/// invocation, one run per speed factor.
pub fn write_replication(path: &Path, invocation: &str, factors: &[f64]) {
    let mut store = Store::open(path).expect("open");
    let device_id = fixture_device(&store);
    let m = &MODELS[2];
    assert_eq!(m.registry_id, "gemma3-270m");
    let model_id = store
        .connection()
        .query_row(
            "SELECT id FROM models WHERE registry_id = 'gemma3-270m'",
            [],
            |r| r.get(0),
        )
        .expect("the fixture's gemma");
    let mut rng = Lcg(13);
    for (k, &factor) in factors.iter().enumerate() {
        let spec = Spec {
            scenario: "code_generation",
            category: "code_generation",
            backend: "llama_cpp",
            concurrency: 1,
            variant: "default",
            baseline: true,
            type_kv: "f16",
            factor,
            roofline_fraction: None,
        };
        write_run(
            &mut store,
            device_id,
            m,
            model_id,
            &spec,
            &format!("{invocation}-try{k}"),
            5000 + 10 * k as i64,
            &mut rng,
        );
    }
    // Run ids are derived from the invocation: written apart, then joined in one invocation,
    // as `cargo xtask replicate` stores its tries.
    store
        .connection()
        .execute(
            "UPDATE runs SET invocation = ?1 WHERE invocation LIKE ?1 || '-try%'",
            [invocation],
        )
        .expect("one invocation");
}

/// The device the fixture's runs were written on.
fn fixture_device(store: &Store) -> i64 {
    store
        .connection()
        .query_row("SELECT id FROM devices LIMIT 1", [], |r| r.get(0))
        .expect("the fixture's device")
}
