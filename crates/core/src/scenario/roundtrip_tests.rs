//! Property: any valid scenario, written in any of TOML's forms (tables, inline tables,
//! dotted keys, arrays of tables), parses; written back by [`Scenario::to_toml`] it parses to
//! the same scenario and expands to the same cases, with the same keys.

use proptest::prelude::*;

use super::Scenario;
use crate::registry::Registry;

/// Three models whose quantizations overlap in different orders, so one `quantizations` list
/// gives each a different subset.
const REGISTRY: &str = r#"
format = 1
[[model]]
id = "small-a"
name = "A"
family = "llama"
origin = "real"
obtain = "fetch"
arch = { gguf_arch = "llama", layers = 2, hidden = 64, ffn = 128, heads = 4, kv_heads = 2, head_dim = 16, vocab = 256, context = 8192, rope_theta = 10000.0 }
file = [{ quant = "Q4_0", path = "a-q4_0.gguf" }, { quant = "Q8_0", path = "a-q8_0.gguf" }, { quant = "F16", path = "a-f16.gguf" }]

[[model]]
id = "phi-b"
name = "B"
family = "phi3"
origin = "real"
obtain = "fetch"
arch = { gguf_arch = "phi3", layers = 2, hidden = 64, ffn = 128, heads = 4, kv_heads = 2, head_dim = 16, vocab = 256, context = 4096, rope_theta = 10000.0 }
file = [{ quant = "F16", path = "b-f16.gguf" }, { quant = "Q4_K_M", path = "b.gguf" }, { quant = "Q4_0", path = "b-q4_0.gguf" }]

[[model]]
id = "qwen-c"
name = "C"
family = "qwen2"
origin = "real"
obtain = "fetch"
arch = { gguf_arch = "qwen2", layers = 2, hidden = 64, ffn = 128, heads = 4, kv_heads = 2, head_dim = 16, vocab = 256, context = 4096, rope_theta = 10000.0 }
file = [{ quant = "Q8_0", path = "c-q8_0.gguf" }]
"#;

const MODELS: [(&str, &[&str]); 3] = [
    ("small-a", &["Q4_0", "Q8_0", "F16"]),
    ("phi-b", &["F16", "Q4_K_M", "Q4_0"]),
    ("qwen-c", &["Q8_0"]),
];
const QUANTS: [&str; 4] = ["Q4_0", "Q8_0", "F16", "Q4_K_M"];
const CATEGORIES: [&str; 7] = [
    "code_generation",
    "math_reasoning",
    "long_context",
    "multi_turn",
    "batch_concurrent",
    "kv_cache",
    "accuracy",
];

/// How a table is written.
#[derive(Debug, Clone, Copy)]
enum Form {
    Header,
    Inline,
    Dotted,
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![Just(Form::Header), Just(Form::Inline), Just(Form::Dotted)]
}

/// A TOML string, escaped by the `toml` crate (not by the writer under test).
fn string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `(key, value)` pairs of one table written in `form`: text for the top level, text after.
fn table(name: &str, pairs: &[(String, String)], form: Form) -> (String, String) {
    match form {
        Form::Header => {
            let body: String = pairs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
            (String::new(), format!("\n[ {name} ]\n{body}"))
        }
        Form::Inline => {
            let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            (
                format!("{name} = {{ {} }}\n", inner.join(", ")),
                String::new(),
            )
        }
        Form::Dotted => (
            pairs
                .iter()
                .map(|(k, v)| format!("{name}.{k} = {v}\n"))
                .collect(),
            String::new(),
        ),
    }
}

fn list<T: ToString>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Distinct values from `range`, 1 to `max` of them, in random order.
fn distinct(range: std::ops::RangeInclusive<u32>, max: usize) -> impl Strategy<Value = Vec<u32>> {
    prop::collection::btree_set(range, 1..=max)
        .prop_map(|s| s.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
}

/// The optional tables of a scenario, as `(pairs, form)`.
type Tables = Vec<(String, Vec<(String, String)>, Form)>;

fn serving() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        prop::option::of(1u32..=256),
        prop::option::of(0u32..=1000),
        prop::option::of(1u64..=100_000),
        prop::option::of(0.01f64..500.0),
        prop::option::of(1u64..=100_000),
        prop::option::of((0u32..5, 0u32..5, 1u32..5)),
    )
        .prop_map(|(slots, queue, admission, rate, cancel, priorities)| {
            let mut pairs = Vec::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    pairs.push((k.to_owned(), v));
                }
            };
            put("slots", slots.map(|v| v.to_string()));
            put("queue_capacity", queue.map(|v| v.to_string()));
            put("admission_timeout_ms", admission.map(|v| v.to_string()));
            put("arrival_rate_per_s", rate.map(|v| format!("{v:?}")));
            put("cancel_after_ms", cancel.map(|v| v.to_string()));
            put(
                "priorities",
                priorities
                    .map(|(r, n, b)| format!("{{ realtime = {r}, normal = {n}, batch = {b} }}")),
            );
            pairs
        })
}

/// A valid scenario file, in random forms.
fn scenario_text() -> impl Strategy<Value = String> {
    let models = prop::sample::subsequence(vec![0usize, 1, 2], 1..=3).prop_shuffle();
    let quants = prop::option::of(prop::sample::subsequence(QUANTS.to_vec(), 1..=4).prop_shuffle());
    let lengths =
        (64u32..=4096).prop_flat_map(|context| (Just(context), 1..=context / 2, 1..=context / 2));
    let head = (
        "[a-z][a-z0-9_]{0,12}",
        any::<String>(),
        0usize..CATEGORIES.len(),
        prop::option::of(1u32..=500),
        models,
        quants,
        prop::sample::subsequence(vec!["llama_cpp", "candle"], 1..=2).prop_shuffle(),
        prop::option::of(prop::sample::select(vec!["cpu", "cuda", "metal", "vulkan"])),
        lengths,
    );
    let matrix = (
        distinct(1..=256, 4),
        distinct(1..=64, 3),
        prop::option::of(1u32..=4096),
        any::<u64>(),
        prop::option::of(0u32..=10),
        1u32..=50,
        prop::option::of((
            1u64..=64,
            prop::sample::select(vec!["GiB", "MiB", "GB", ""]),
        )),
        prop::option::of(prop::sample::select(
            crate::device_profile::PROFILES
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>(),
        )),
        prop::option::of(prop::bool::ANY),
    );
    let tables = (
        prop::option::of((0.0f32..2.0, 0u32..100, form())),
        prop::option::of((serving(), form())),
        prop::option::of((
            0.001f64..0.5,
            0u32..50,
            prop::option::of(super::MIN_MEASURED_SECONDS..600.0),
            form(),
        )),
        prop::option::of((
            0u32..5,
            prop::option::of(prop::collection::vec("[a-z_]{1,12}", 1..4)),
            prop::option::of(1u32..100),
            form(),
        )),
        prop::collection::vec(
            (
                prop::option::of(prop::bool::ANY),
                prop::option::of((
                    prop::sample::select(vec!["f16", "q8_0", "q4_0"]),
                    prop::option::of(prop::sample::select(vec!["f16", "q8_0", "q4_0"])),
                )),
                prop::option::of(prop::bool::ANY),
                prop::option::of(prop::bool::ANY),
                prop::option::of(0u32..=4096),
            ),
            0..4,
        ),
        prop::bool::ANY,
    );
    (head, matrix, tables).prop_map(|(head, matrix, tables)| {
        let (name, description, category, prompts, models, quants, backends, device, lengths) = head;
        let (concurrency, threads, batch, seed, warmup, repetitions, budget, profile, chat) = matrix;
        let (sampling, serving, stopping, accuracy, kv, kv_inline) = tables;
        let (context, prompt_tokens, generate_tokens) = lengths;
        let category = CATEGORIES[category];
        let ids: Vec<&str> = models.iter().map(|&m| MODELS[m].0).collect();
        // Only quantizations some chosen model has, and at least one for each.
        let quants = quants.map(|mut qs| {
            qs.retain(|q| models.iter().any(|&m| MODELS[m].1.contains(q)));
            for &m in &models {
                if !qs.iter().any(|q| MODELS[m].1.contains(q)) {
                    qs.push(MODELS[m].1[0]);
                }
            }
            qs
        });
        // The context no chosen model's window is shorter than.
        let window = models.iter().map(|&m| if m == 0 { 8192 } else { 4096 }).min().unwrap_or(4096);
        let context = context.min(window);
        let (prompt_tokens, generate_tokens) = (prompt_tokens.min(context / 2), generate_tokens.min(context / 2));
        let mut top = format!(
            "format = 1\nname = {}\ndescription = {}\ncategory = \"{category}\"\ndataset = \"datasets/set.jsonl\"\nmodels = {}\nbackends = {}\ncontext = {context}\nprompt_tokens = {prompt_tokens}\ngenerate_tokens = {generate_tokens}\nconcurrency = {}\nthreads = {}\nseed = {seed}\nrepetitions = {repetitions}\n",
            string(&name),
            string(&description),
            list(&ids.iter().map(|s| string(s)).collect::<Vec<_>>()),
            list(&backends.iter().map(|s| string(s)).collect::<Vec<_>>()),
            list(&concurrency),
            list(&threads),
        );
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                top.push_str(&format!("{k} = {v}\n"));
            }
        };
        add("prompts", prompts.map(|p| p.to_string()));
        add("quantizations", quants.map(|qs| list(&qs.iter().map(|q| string(q)).collect::<Vec<_>>())));
        add("device", device.map(string));
        add("batch", batch.map(|b| b.to_string()));
        add("warmup", warmup.map(|w| w.to_string()));
        add("memory_budget", budget.map(|(n, unit)| string(&format!("{n} {unit}"))));
        add("device_profile", profile.map(string));
        let accuracy_category = category == "accuracy";
        add(
            "prompt_format",
            chat.map(|chat| string(if chat && !accuracy_category { "chat" } else { "raw" })),
        );
        let mut tables: Tables = Vec::new();
        if let Some((temperature, top_k, form)) = sampling {
            tables.push((
                "sampling".into(),
                vec![
                    ("temperature".into(), format!("{:?}", f64::from(temperature))),
                    ("top_k".into(), top_k.to_string()),
                ],
                form,
            ));
        }
        if let Some((pairs, form)) = serving
            && !pairs.is_empty()
        {
            tables.push(("serving".into(), pairs, form));
        }
        if let Some((target, extra, seconds, form)) = stopping {
            let mut pairs = vec![
                ("target_relative_ci".into(), format!("{target:?}")),
                ("max_repetitions".into(), (repetitions + extra).to_string()),
            ];
            if let Some(s) = seconds {
                pairs.push(("max_seconds".into(), format!("{s:?}")));
            }
            tables.push(("stopping".into(), pairs, form));
        }
        if accuracy_category
            && let Some((few_shot, subjects, per_subject, form)) = accuracy
        {
            let mut pairs = vec![("few_shot".into(), few_shot.to_string())];
            if let Some(subjects) = subjects {
                pairs.push(("subjects".into(), list(&subjects.iter().map(|s| string(s)).collect::<Vec<_>>())));
            }
            if let Some(n) = per_subject {
                pairs.push(("questions_per_subject".into(), n.to_string()));
            }
            tables.push(("accuracy".into(), pairs, form));
        }
        let mut after = String::new();
        for (name, pairs, form) in &tables {
            let (t, a) = table(name, pairs, *form);
            top.push_str(&t);
            after.push_str(&a);
        }
        // KV variants: the first `baseline = true` only (two would be an error).
        let mut baseline_taken = false;
        let variants: Vec<Vec<(String, String)>> = kv
            .iter()
            .enumerate()
            .map(|(i, (baseline, types, flash, mmap, cap))| {
                let mut pairs = vec![("name".to_owned(), string(&format!("v{i}-x")))];
                if let Some(b) = baseline {
                    let b = *b && !baseline_taken;
                    baseline_taken |= b;
                    pairs.push(("baseline".into(), b.to_string()));
                }
                if let Some((k, v)) = types {
                    pairs.push(("type_k".into(), string(k)));
                    if let Some(v) = v {
                        pairs.push(("type_v".into(), string(v)));
                    }
                }
                if let Some(f) = flash {
                    pairs.push(("flash_attention".into(), f.to_string()));
                }
                if let Some(m) = mmap {
                    pairs.push(("mmap".into(), m.to_string()));
                }
                if let Some(cap) = cap {
                    let cap = (*cap).max(prompt_tokens + generate_tokens);
                    pairs.push(("context_cap".into(), cap.to_string()));
                }
                pairs
            })
            .collect();
        if kv_inline && !variants.is_empty() {
            let inline: Vec<String> = variants
                .iter()
                .map(|pairs| {
                    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{{ {} }}", inner.join(", "))
                })
                .collect();
            top.push_str(&format!("kv = [{}]\n", inline.join(", ")));
        } else {
            for pairs in &variants {
                after.push_str("\n[[kv]]\n");
                for (k, v) in pairs {
                    after.push_str(&format!("{k} = {v}\n"));
                }
            }
        }
        top + &after
    })
}

fn registry() -> Registry {
    Registry::parse("models.toml", REGISTRY).expect("test registry is valid")
}

/// The scenario with where it came from set aside (the text differs, the scenario does not).
fn without_source(mut s: Scenario) -> Scenario {
    s.source.file.clear();
    s.source.sha256.clear();
    s.dataset_location = crate::text_pos::Location::new("", "", 0);
    s
}

fn cases(s: Scenario) -> Vec<(String, String)> {
    s.expand()
        .into_iter()
        .map(|c| (c.name.clone(), c.key()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_valid_scenario_written_back_parses_to_the_same_cases(text in scenario_text()) {
        let registry = registry();
        let first = Scenario::parse("scenarios/generated.toml", &text, &registry)
            .map_err(|e| TestCaseError::fail(format!("generated file refused: {e}\n{text}")))?;
        let written = first.to_toml(&registry);
        let second = Scenario::parse("scenarios/written.toml", &written, &registry)
            .map_err(|e| TestCaseError::fail(format!("written file refused: {e}\n{written}")))?;
        prop_assert_eq!(second.to_toml(&registry), written.clone(), "writing is not stable");
        prop_assert_eq!(cases(first.clone()), cases(second.clone()));
        prop_assert_eq!(without_source(first), without_source(second), "{}", written);
    }
}

/// The shipped scenarios, against the shipped registry, round-trip too.
#[test]
fn every_shipped_scenario_written_back_parses_to_the_same_cases() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let registry_text = std::fs::read_to_string(root.join("models.toml")).expect("models.toml");
    let registry = Registry::parse("models.toml", &registry_text).expect("shipped registry");
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("scenarios")).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let file = path.display().to_string();
        let first = Scenario::parse(&file, &text, &registry).unwrap_or_else(|e| panic!("{e}"));
        let written = first.to_toml(&registry);
        let second = Scenario::parse(&file, &written, &registry)
            .unwrap_or_else(|e| panic!("{file} written back: {e}\n{written}"));
        assert_eq!(cases(first.clone()), cases(second.clone()), "{file}");
        assert_eq!(without_source(first), without_source(second), "{file}");
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} shipped scenarios");
}
