use super::*;
use crate::registry::Registry;

const REGISTRY: &str = r#"
format = 1
[[model]]
id = "small-a"
name = "A"
family = "llama"
origin = "real"
obtain = "fetch"
arch = { gguf_arch = "llama", layers = 2, hidden = 64, ffn = 128, heads = 4, kv_heads = 2, head_dim = 16, vocab = 256, context = 8192, rope_theta = 10000.0 }
file = [{ quant = "Q4_0", path = "a-q4_0.gguf" }, { quant = "Q8_0", path = "a-q8_0.gguf" }]

[[model]]
id = "phi-b"
name = "B"
family = "phi3"
origin = "real"
obtain = "fetch"
arch = { gguf_arch = "phi3", layers = 2, hidden = 64, ffn = 128, heads = 4, kv_heads = 2, head_dim = 16, vocab = 256, context = 4096, rope_theta = 10000.0 }
file = [{ quant = "Q4_K_M", path = "b.gguf" }]
"#;

const BASE: &str = r#"format = 1
name = "demo"
category = "code_generation"
dataset = "datasets/code_generation.jsonl"
models = ["small-a", "phi-b"]
backends = ["llama_cpp"]
context = 1024
prompt_tokens = 128
generate_tokens = 32
concurrency = [1, 4]
threads = [2]
seed = 7
repetitions = 3
"#;

fn registry() -> Registry {
    Registry::parse("models.toml", REGISTRY).expect("test registry is valid")
}

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse("scenarios/demo.toml", text, &registry())
}

fn names(text: &str) -> Vec<String> {
    parse(text)
        .expect("valid scenario")
        .expand()
        .into_iter()
        .map(|c| c.name)
        .collect()
}

#[test]
fn expansion_names_every_combination() {
    let table: &[(&str, &[&str])] = &[
        (
            BASE,
            &[
                "demo::small-a::Q4_0::llama_cpp::c1",
                "demo::small-a::Q4_0::llama_cpp::c4",
                "demo::small-a::Q8_0::llama_cpp::c1",
                "demo::small-a::Q8_0::llama_cpp::c4",
                "demo::phi-b::Q4_K_M::llama_cpp::c1",
                "demo::phi-b::Q4_K_M::llama_cpp::c4",
            ],
        ),
        (
            &BASE
                .replace("concurrency = [1, 4]", "concurrency = [1]")
                .replace(
                    "models = [\"small-a\", \"phi-b\"]",
                    "models = [\"small-a\"]\nquantizations = [\"q8_0\"]",
                ),
            &["demo::small-a::Q8_0::llama_cpp::c1"],
        ),
        (
            &format!(
                "{}\n[[kv]]\nname = \"baseline\"\n[[kv]]\nname = \"q8-fa\"\ntype_k = \"q8_0\"\ntype_v = \"q8_0\"\nflash_attention = true\n",
                BASE.replace("concurrency = [1, 4]", "concurrency = [1]")
                    .replace("models = [\"small-a\", \"phi-b\"]", "models = [\"phi-b\"]")
                    .replace("threads = [2]", "threads = [1, 2]")
            ),
            &[
                "demo::phi-b::Q4_K_M::llama_cpp::c1::baseline+t1",
                "demo::phi-b::Q4_K_M::llama_cpp::c1::q8-fa+t1",
                "demo::phi-b::Q4_K_M::llama_cpp::c1::baseline+t2",
                "demo::phi-b::Q4_K_M::llama_cpp::c1::q8-fa+t2",
            ],
        ),
    ];
    for (text, expected) in table {
        assert_eq!(names(text), *expected, "scenario:\n{text}");
    }
}

#[test]
fn defaults_and_keys() {
    let s = parse(BASE).expect("valid");
    assert_eq!(s.warmup, 1);
    assert_eq!(s.batch, 512);
    assert_eq!(s.device, Device::Cpu);
    assert_eq!(s.sampling, Sampling::Greedy);
    assert_eq!(s.kv.len(), 1);
    assert!(s.kv[0].baseline);
    assert_eq!(s.source.sha256.len(), 64);
    let cases = s.expand();
    // Distinct configurations get distinct keys; the same configuration parses to the same key.
    let keys: std::collections::BTreeSet<_> = cases.iter().map(Case::key).collect();
    assert_eq!(keys.len(), cases.len());
    let again = parse(BASE).expect("valid").expand();
    assert_eq!(cases[0].key(), again[0].key());
}

#[test]
fn serving_stopping_and_device_profile() {
    let s = parse(BASE).expect("valid");
    assert_eq!(s.serving, Serving::default());
    assert_eq!(s.stopping, None);
    let default_keys: Vec<_> = s.expand().iter().map(Case::key).collect();

    let text = format!(
        "device_profile = \"phone-4gb\"\nmemory_budget = \"6 GiB\"\n{BASE}[serving]\nslots = 2\nqueue_capacity = 8\nadmission_timeout_ms = 500\narrival_rate_per_s = 3.5\ncancel_after_ms = 9000\npriorities = {{ realtime = 1, batch = 3 }}\n[stopping]\ntarget_relative_ci = 0.02\nmax_repetitions = 20\nmax_seconds = 60\n"
    );
    let s = parse(&text).expect("valid");
    // The smaller of the budget and the profile's RAM wins, and the message says which.
    assert_eq!(s.memory_budget, Some(4 << 30));
    assert!(
        s.memory_budget_source.contains("phone-4gb"),
        "{}",
        s.memory_budget_source
    );
    assert_eq!(
        s.serving,
        Serving {
            slots: Some(2),
            queue_capacity: Some(8),
            admission_timeout_ms: Some(500),
            arrival_rate_per_s: Some(3.5),
            cancel_after_ms: Some(9000),
            priorities: [1, 0, 3],
        }
    );
    assert_eq!(
        s.stopping,
        Some(Stopping {
            target_relative_ci: 0.02,
            max_repetitions: 20,
            max_seconds: Some(60.0),
        })
    );
    let cases = s.expand();
    assert_eq!(cases[1].concurrency, 4);
    assert_eq!(cases[1].slots(), 2);
    // Serving settings change what is measured, so they change the case key.
    assert_ne!(cases[0].key(), default_keys[0]);
}

#[test]
fn context_cap_applies_per_variant() {
    let text = format!(
        "{}\n[[kv]]\nname = \"full\"\n[[kv]]\nname = \"capped\"\ncontext_cap = 512\n",
        BASE.replace("models = [\"small-a\", \"phi-b\"]", "models = [\"phi-b\"]")
    );
    let cases = parse(&text).expect("valid").expand();
    let contexts: Vec<u32> = cases.iter().map(Case::context).collect();
    assert_eq!(contexts, vec![1024, 512, 1024, 512]);
    assert!(cases[0].kv.baseline, "first variant becomes the baseline");
}

#[test]
fn variants_record_which_settings_they_pin() {
    let text = format!(
        "{BASE}\n[[kv]]\nname = \"defaults\"\n[[kv]]\nname = \"f16\"\ntype_k = \"f16\"\n[[kv]]\nname = \"fa\"\nflash_attention = true\n[[kv]]\nname = \"no-mmap\"\nmmap = false\n"
    );
    let s = parse(&text).expect("valid");
    let pinned: Vec<Pinned> = s.kv.iter().map(|k| k.pinned).collect();
    assert_eq!(
        pinned[0],
        Pinned::default(),
        "unset keys are the engine's defaults"
    );
    assert!(
        pinned[1].cache_types && !pinned[1].flash_attention,
        "naming f16 pins it"
    );
    assert!(pinned[2].flash_attention && !pinned[2].cache_types);
    assert!(pinned[3].mmap && !s.kv[3].mmap);
    // Pinning f16 explicitly is a different case from leaving it to the engine.
    assert_ne!(s.kv[0].type_k, KvType::Q8_0);
    let cases = s.expand();
    assert_ne!(cases[0].key(), cases[1].key());
}

/// Broken scenarios, one file each (`crates/core/tests/broken_scenarios/*.toml`, against this
/// module's registry; the harness's corpus in `tests/data/broken_scenarios` is read against
/// `models.toml`), each with its header (`crate::broken_input`): what it breaks, where the error
/// must point (line and column in the file as it is, header included) and what it must say.
#[test]
fn broken_scenarios_name_file_line_and_key() {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("tests/broken_scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 58,
        "the corpus shrank to {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .strip_prefix(manifest)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).expect("read");
        let kept = crate::broken_input::Promise::read(&text)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|promise| {
                let outcome = Scenario::parse(&name, &text, &registry()).map(|_| ());
                promise.check(&name, outcome.map_err(|e| e.to_string()))
            });
        if let Err(why) = kept {
            failures.push(why);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_quantized_v_cache_without_flash_attention_is_for_the_engine_to_refuse() {
    // llama.cpp's limit, not the format's: the case is ignored by llama.cpp's `refuses`.
    let s =
        parse(&format!("{BASE}[[kv]]\nname = \"q4\"\ntype_v = \"q4_0\"\n")).expect("a valid file");
    assert_eq!(s.kv[0].type_v, KvType::Q4_0);
    assert!(!s.kv[0].flash_attention);
}

#[test]
fn parse_bytes_accepts_common_units() {
    assert_eq!(parse_bytes("4 GiB"), Some(4 << 30));
    assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
    assert_eq!(parse_bytes("8 GB"), Some(8_000_000_000));
    assert_eq!(parse_bytes("1.5 GiB"), Some(3 << 29));
    assert_eq!(parse_bytes("12 parsecs"), None);
    assert_eq!(parse_bytes("0"), None);
    // Whole byte counts are exact past 2^53, and overflow is refused, never saturated.
    assert_eq!(parse_bytes("9007199254740993"), Some(9_007_199_254_740_993));
    assert_eq!(parse_bytes("18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_bytes("18446744073709551616"), None);
    assert_eq!(parse_bytes("17179869184 GiB"), None);
}

/// A scenario with every table, for mutations to break.
fn rich() -> String {
    format!(
        "{BASE}prompts = 2\nmemory_budget = \"4 GiB\"\n\n[sampling]\ntemperature = 0.5\n\n[serving]\nqueue_capacity = 4\narrival_rate_per_s = 3.0\npriorities = {{ realtime = 1, normal = 2 }}\n\n[stopping]\ntarget_relative_ci = 0.05\nmax_repetitions = 6\n\n[[kv]]\nname = \"base\"\nbaseline = true\n\n[[kv]]\nname = \"q8\"\ntype_k = \"q8_0\"\ntype_v = \"q8_0\"\nflash_attention = true\n"
    )
}

#[test]
fn random_mutations_never_panic_and_every_error_is_located_inside_the_file() {
    let registry = registry();
    let original = rich();
    parse(&original).expect("the unmutated scenario is valid");
    let pieces = [
        "=",
        "[",
        "]",
        "{",
        "}",
        "\"",
        ",",
        "\n",
        "#",
        "0",
        "-1",
        "1e99",
        "4294967296",
        "true",
        "[[kv]]",
        "[serving]",
        "concurrency",
        "contxt",
        ".",
        " ",
        "\u{feff}",
        "é",
        "\t",
    ];
    // SplitMix64, seeded: the same mutations every run.
    let mut state = 0x5CE7_A210_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let (mut valid, mut refused) = (0, 0);
    for _ in 0..4000 {
        let mut text: Vec<char> = original.chars().collect();
        for _ in 0..1 + next() % 3 {
            let at = (next() % (text.len() as u64 + 1)) as usize;
            match next() % 4 {
                0 if at < text.len() => {
                    text.remove(at);
                }
                1 => {
                    let piece = pieces[(next() % pieces.len() as u64) as usize];
                    for (i, c) in piece.chars().enumerate() {
                        text.insert((at + i).min(text.len()), c);
                    }
                }
                2 if at < text.len() => {
                    // Swap two lines' worth: cut a span and paste it elsewhere.
                    let end = (at + 1 + (next() % 40) as usize).min(text.len());
                    let span: Vec<char> = text.drain(at..end).collect();
                    let to = (next() % (text.len() as u64 + 1)) as usize;
                    for (i, c) in span.into_iter().enumerate() {
                        text.insert(to + i, c);
                    }
                }
                _ if at < text.len() => {
                    text[at] = pieces[(next() % pieces.len() as u64) as usize]
                        .chars()
                        .next()
                        .unwrap_or('x');
                }
                _ => {}
            }
        }
        let text: String = text.into_iter().collect();
        let lines = text.lines().count().max(1);
        let result = std::panic::catch_unwind(|| Scenario::parse("m.toml", &text, &registry));
        match result {
            Err(_) => panic!("parsing panicked on:\n{text}"),
            Ok(Ok(s)) => {
                valid += 1;
                let _ = s.expand();
            }
            Ok(Err(e)) => {
                refused += 1;
                let loc = e.location();
                assert!(
                    loc.file == "m.toml" && (1..=lines + 1).contains(&loc.line) && loc.col >= 1,
                    "{e} is not located inside the file:\n{text}"
                );
            }
        }
    }
    assert!(
        valid > 0 && refused > 1000,
        "valid {valid}, refused {refused}"
    );
}

#[test]
fn endpoints_and_hybrid_tables_read_back() {
    let http = BASE.replace(
        r#"backends = ["llama_cpp"]"#,
        r#"backends = ["llama_cpp", "http"]"#,
    );
    let ok = format!(
        "{http}\n[endpoint]\nurl = \"http://192.168.1.20:8080/v1/\"\napi = \"chat\"\napi_key_env = \"PHONE_KEY\"\ndevice_profile = \"galaxy-s24\"\n"
    );
    let s = parse(&ok).expect("valid");
    let e = s.endpoint.as_ref().expect("endpoint");
    assert_eq!(
        e.target,
        EndpointTarget::Url("http://192.168.1.20:8080/v1".into())
    );
    assert_eq!((e.api, e.stream, e.ignore_eos), (Api::Chat, true, true));
    assert!(names(&ok).iter().any(|n| n.contains("::http::c4")));
    // Written back, it reads the same.
    assert_eq!(
        parse(&s.to_toml(&registry())).expect("round trip").endpoint,
        s.endpoint
    );
    let hybrid = BASE.replace(r#"backends = ["llama_cpp"]"#, r#"backends = ["hybrid"]"#);
    let endpoint = "\n[endpoint]\nlaunch = true\n";
    let cloud = "[[hybrid.cloud]]\npriority = \"quality\"\nmodel = \"gpt\"\nprice = \"OpenAI GPT-4.1\"\n[[hybrid.cloud]]\npriority = \"cost\"\nmodel = \"ds\"\nprice = \"DeepSeek V3.2\"\n";
    let h = parse(&format!(
        "{hybrid}{endpoint}\n[hybrid]\npriority = \"speed\"\nttft_budget_ms = 500\n{cloud}"
    ))
    .expect("valid")
    .hybrid
    .expect("hybrid");
    // No speed route: the cost route, as the seed's getCloudModel falls back to its cheapest.
    assert_eq!(h.route().map(|r| r.model.as_str()), Some("ds"));
}

#[test]
fn a_quality_table_validates_defaults_and_round_trips() {
    let s = parse(&format!(
        "{BASE}[quality]\ncorpus = \"datasets/quality_corpus.txt\"\nchunks = 3\n"
    ))
    .expect("valid");
    let q = s.quality.clone().expect("quality");
    assert_eq!(
        q,
        crate::scenario::Quality {
            corpus: "datasets/quality_corpus.txt".into(),
            context: crate::scenario::QUALITY_DEFAULT_CONTEXT,
            chunks: Some(3),
            reference_quant: None,
        }
    );
    assert_eq!(
        parse(&s.to_toml(&registry())).expect("round trip").quality,
        s.quality
    );
    let plain = parse(BASE).expect("valid");
    assert_eq!(
        s.expand()[0].key(),
        plain.expand()[0].key(),
        "the quality pass runs after the timed repetitions: speed stays comparable"
    );
}
