//! `cargo xtask anchor`: how far the harness's own numbers are from llama.cpp's.
//!
//! - `counters`: runs the `anchor` scenario (llama-bench's default test: a 512-token prompt, 128
//!   generated tokens, 5 repetitions, at 1 and 2 threads, on the real small models) and prints,
//!   per case, harness tokens/s ÷ llama.cpp's own counters for prefill and generation.
//! - `llama-bench`: runs llama-bench and the same `anchor` case on the same GGUF, alternating
//!   which goes first, imports llama-bench's results into the database, and prints
//!   edgebench ÷ llama-bench per metric with the spread over rounds. Without `--bin`, builds
//!   llama-bench from the llama.cpp sources that the `llama-cpp-python` sdist on PyPI vendors,
//!   under `target/anchor` (never committed).

use edgebench_core::quant::Quant;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cli::AnchorArgs;
use edgebench_core::overhead::{self, Phase};
use edgebench_core::stats;
use edgebench_report::data::{self, Run};

/// The scenario both subcommands run (`scenarios/anchor.toml`).
const SCENARIO: &str = "anchor";

/// The sdist whose `vendor/llama.cpp` holds llama-bench's source (the `llama-cpp-sys-2` crate
/// keeps only its README). Pinned, so every lab builds the same llama-bench.
const SDIST: &str = "llama_cpp_python-0.3.36.tar.gz";
const SDIST_PACKAGE: &str = "llama-cpp-python";
const SDIST_VERSION: &str = "0.3.36";
const SDIST_SHA256: &str = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e";

/// `model`'s first registry file: its quantization and where it lives.
pub(crate) fn model_file(root: &Path, model: &str) -> Result<(Quant, PathBuf)> {
    let registry = crate::models::registry(root)?;
    let file = registry
        .get(model)
        .with_context(|| format!("--models: `{model}` is not in models.toml"))?
        .files
        .first()
        .with_context(|| format!("`{model}` has no file in models.toml"))?;
    Ok((file.quant, crate::models_dir(root).join(&file.path)))
}

/// The anchor case of `model` (quantized `quant`) at `threads` (see `scenarios/anchor.toml`).
fn case_name(model: &str, quant: Quant, threads: u32) -> String {
    format!("{SCENARIO}::{model}::{quant}::llama_cpp::c1::t{threads}")
}

/// Runs the given anchor cases (each `--exact`) through the scenario harness into `db`.
pub(crate) fn run_cases(
    root: &Path,
    db: &Path,
    cases: &[String],
    env: &[(&str, &str)],
) -> Result<()> {
    for case in cases {
        let mut cmd = crate::cargo();
        cmd.current_dir(root)
            .args(["test", "--quiet", "--test", "scenarios", "--", "--exact"])
            .arg(case)
            .env(edgebench_settings::DB_ENV, db)
            .env(edgebench_settings::REQUIRE_MODELS_ENV, "1")
            .envs(env.iter().copied());
        crate::run(&mut cmd)?;
    }
    Ok(())
}

/// The latest passed measured run of `case` in `dataset`.
pub(crate) fn latest<'a>(dataset: &'a data::Dataset, case: &str) -> Option<&'a Run> {
    dataset
        .runs
        .iter()
        .filter(|r| {
            r.case.name == case
                && r.status == edgebench_store::RunStatus::Passed
                && r.mode == edgebench_store::RunMode::Measure
        })
        .max_by_key(|r| r.started_at_ms)
}

/// `median [min, max] (n=N)` of `values`.
pub(crate) fn spread(values: &[f64], digits: usize) -> String {
    match stats::summarize(values) {
        None => "—".into(),
        Some(s) => format!(
            "{:.digits$} [{:.digits$}, {:.digits$}] (n={})",
            s.median, s.min, s.max, s.n
        ),
    }
}

pub fn counters(root: &Path, o: &AnchorArgs) -> Result<()> {
    crate::setup::ensure_build_tools()?;
    crate::models::fetch_all(root)?;
    let db = crate::database(root);
    let mut cases = Vec::new();
    for model in &o.models {
        let (quant, _) = model_file(root, model)?;
        for &t in &o.threads {
            cases.push(case_name(model, quant, t));
        }
    }
    run_cases(root, &db, &cases, &[])?;
    let dataset = data::load(&db)?;
    println!(
        "\nharness tokens/s ÷ llama.cpp counter tokens/s, per measured repetition: median [min, max] (n)\n"
    );
    println!("{:<52} {:>34} {:>34}", "case", "prefill", "generation");
    for case in &cases {
        let run = latest(&dataset, case)
            .with_context(|| format!("no passed run of {case} in {}", db.display()))?;
        let cell = |phase| match overhead::ratios(&run.phases, phase) {
            Ok(r) if !r.is_empty() => spread(&r, 4),
            Ok(_) => "no counters stored".into(),
            Err(e) => e.to_string(),
        };
        println!(
            "{case:<52} {:>34} {:>34}",
            cell(Phase::Prefill),
            cell(Phase::Generation)
        );
    }
    println!("\ngoal: ≥ 0.99 for both phases (docs/methodology.md, \"Harness overhead\")");
    Ok(())
}

/// The ggml version a llama.cpp source tree declares.
fn ggml_version(llama_cpp: &Path) -> Option<String> {
    let text = std::fs::read_to_string(llama_cpp.join("ggml/CMakeLists.txt")).ok()?;
    let part = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("set({name} ")))
            .map(|v| v.trim_end_matches(')').trim().to_owned())
    };
    Some(format!(
        "{}.{}.{}",
        part("GGML_VERSION_MAJOR")?,
        part("GGML_VERSION_MINOR")?,
        part("GGML_VERSION_PATCH")?
    ))
}

/// The llama.cpp version that `llama-cpp-sys-2` links into edgebench, from cargo's metadata.
fn linked_llama_cpp(root: &Path) -> String {
    let metadata = crate::cargo()
        .current_dir(root)
        .args(["metadata", "--format-version", "1"])
        .output()
        .ok()
        .and_then(|out| serde_json::from_slice::<serde_json::Value>(&out.stdout).ok());
    let package = metadata.as_ref().and_then(|m| {
        m["packages"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "llama-cpp-sys-2")
    });
    let Some(package) = package else {
        return "llama-cpp-sys-2 (not found in cargo metadata)".into();
    };
    let ggml = package["manifest_path"]
        .as_str()
        .and_then(|m| Path::new(m).parent().map(|d| d.join("llama.cpp")))
        .and_then(|d| ggml_version(&d))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "llama-cpp-sys-2 {} (ggml {ggml})",
        package["version"].as_str().unwrap_or("?")
    )
}

/// llama-bench: the given binary, or one built from the pinned sdist under `target/anchor`.
fn llama_bench_binary(root: &Path, given: Option<&Path>) -> Result<(PathBuf, String)> {
    llama_cpp_tool(root, given, "llama-bench")
}

/// `tool` (`llama-bench` or `llama-server`): the given binary, or one built from the pinned
/// sdist's vendored llama.cpp under `target/anchor`.
pub(crate) fn llama_cpp_tool(
    root: &Path,
    given: Option<&Path>,
    tool: &str,
) -> Result<(PathBuf, String)> {
    if let Some(bin) = given {
        if !bin.is_file() {
            bail!("--bin {}: no such file", bin.display());
        }
        return Ok((bin.to_owned(), format!("{} (given)", bin.display())));
    }
    let dir = root.join("target/anchor");
    let src = dir.join(format!("llama_cpp_python-{SDIST_VERSION}/vendor/llama.cpp"));
    let build = dir.join("build");
    let bin = build.join("bin").join(tool);
    let described = |src: &Path| {
        format!(
            "{tool} from {SDIST_PACKAGE} {SDIST_VERSION} sdist's vendor/llama.cpp (ggml {}), built at {}",
            ggml_version(src).unwrap_or_else(|| "unknown".into()),
            bin.display()
        )
    };
    if bin.is_file() {
        return Ok((bin.clone(), described(&src)));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let archive = dir.join(SDIST);
    if !archive.is_file() || crate::models::sha256_file(&archive)? != SDIST_SHA256 {
        eprintln!("downloading {SDIST_PACKAGE} {SDIST_VERSION} sdist from PyPI");
        // pip would build the sdist's metadata (a cmake run); the PyPI JSON API names the file.
        // Mirrors may serve only the project-level JSON, with file URLs relative to it.
        let script = format!(
            "import json, urllib.request, urllib.parse, sys\n\
             index = 'https://pypi.org/pypi/{SDIST_PACKAGE}/json'\n\
             meta = json.load(urllib.request.urlopen(index))\n\
             files = meta.get('releases', {{}}).get('{SDIST_VERSION}') or meta['urls']\n\
             url = next(u['url'] for u in files if u['filename'] == '{SDIST}')\n\
             urllib.request.urlretrieve(urllib.parse.urljoin(index, url), sys.argv[1])\n"
        );
        crate::run(Command::new("python3").args(["-c", &script]).arg(&archive))?;
        let digest = crate::models::sha256_file(&archive)?;
        if digest != SDIST_SHA256 {
            bail!(
                "{}: sha256 {digest}, expected {SDIST_SHA256}",
                archive.display()
            );
        }
    }
    if !src.join("tools/llama-bench/llama-bench.cpp").is_file() {
        crate::run(
            Command::new("tar")
                .arg("-xzf")
                .arg(&archive)
                .arg("-C")
                .arg(&dir)
                .arg(format!("llama_cpp_python-{SDIST_VERSION}/vendor/llama.cpp")),
        )?;
    }
    // As llama-cpp-sys-2 configures it by default (GGML_NATIVE off, so ggml's own default
    // instruction sets: AVX, AVX2, FMA, F16C, BMI2), so the two builds differ only in the
    // llama.cpp version.
    crate::run(
        Command::new("cmake")
            .arg("-S")
            .arg(&src)
            .arg("-B")
            .arg(&build)
            .args([
                "-DCMAKE_BUILD_TYPE=Release",
                "-DGGML_NATIVE=OFF",
                "-DLLAMA_CURL=OFF",
                "-DLLAMA_BUILD_TESTS=OFF",
                "-DLLAMA_BUILD_EXAMPLES=OFF",
                // llama-server for `anchor llama-server`; each command builds only its target.
                "-DLLAMA_BUILD_SERVER=ON",
                "-DLLAMA_OPENSSL=OFF",
                "-DBUILD_SHARED_LIBS=OFF",
            ]),
    )?;
    let jobs = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    crate::run(
        Command::new("cmake")
            .arg("--build")
            .arg(&build)
            .args(["--target", tool, "-j"])
            .arg(jobs.to_string()),
    )?;
    if !bin.is_file() {
        bail!("the build finished without {}", bin.display());
    }
    Ok((bin.clone(), described(&src)))
}

/// One llama-bench invocation: its JSON output, saved where it can be imported again.
fn run_llama_bench(bin: &Path, model: &Path, threads: u32, out: &Path) -> Result<()> {
    let output = Command::new(bin)
        .arg("-m")
        .arg(model)
        // Depth 0 and 512: the anchor case's prefill starts from an empty cache, its
        // generation follows its 512-token prompt, so generation is paired with tg128 @ d512.
        .args(["-p", "512", "-n", "128", "-d", "0,512", "-r", "5", "-t"])
        .arg(threads.to_string())
        // edgebench's default KV: f16 without flash attention.
        .args(["-fa", "off", "-o", "json"])
        .output()
        .with_context(|| format!("starting {}", bin.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed with {}:\n{}",
            bin.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::write(out, &output.stdout).with_context(|| format!("writing {}", out.display()))
}

/// llama-bench's median tokens/s for its `pp`/`tg` test in a stored run.
pub(crate) fn metric_median(run: &Run, metric: &str) -> Option<f64> {
    run.metrics.get(metric).map(|m| m.median)
}

/// Model, threads, metric.
type PairKey = (String, u32, &'static str);

pub fn llama_bench(
    root: &Path,
    o: &AnchorArgs,
    bin: Option<&Path>,
    round_count: u32,
) -> Result<()> {
    crate::setup::ensure_build_tools()?;
    crate::models::fetch_all(root)?;
    let (bin, bench_version) = llama_bench_binary(root, bin)?;
    let db = crate::database(root);
    let out_dir = root.join("target/anchor/results");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let host = edgebench_store::local_host();

    // Per (model, threads, metric), per round: edgebench's median, llama-bench's, their ratio.
    let mut rounds: BTreeMap<PairKey, Vec<(f64, f64)>> = BTreeMap::new();
    for round in 0..round_count {
        for model in &o.models {
            let (quant, path) = model_file(root, model)?;
            for &t in &o.threads {
                let case = case_name(model, quant, t);
                let json = out_dir.join(format!("{model}-t{t}-round{round}.json"));
                // Alternate which tool goes first, so drift over the session hits both alike.
                if round % 2 == 0 {
                    run_llama_bench(&bin, &path, t, &json)?;
                    run_cases(root, &db, std::slice::from_ref(&case), &[])?;
                } else {
                    run_cases(root, &db, std::slice::from_ref(&case), &[])?;
                    run_llama_bench(&bin, &path, t, &json)?;
                }
                crate::lab::import_llama_bench(
                    root,
                    &crate::cli::DbArg {
                        db: Some(db.display().to_string()),
                    },
                    Some(host.clone()),
                    std::slice::from_ref(&json),
                )?;
                let dataset = data::load(&db)?;
                let ours = latest(&dataset, &case)
                    .with_context(|| format!("no passed run of {case} in {}", db.display()))?;
                // Equal depth: prefill from an empty cache, generation after 512 tokens.
                for (metric, test) in [
                    ("prefill_tokens_per_s", "pp512"),
                    ("generation_tokens_per_s", "tg128@d512"),
                ] {
                    let theirs = dataset
                        .runs
                        .iter()
                        .filter(|r| {
                            r.origin == edgebench_core::run_facts::RunOrigin::llama_bench()
                                && r.case.scenario == "llama-bench"
                                && r.case.threads == t
                                && r.case.name.contains(&format!("::{test}::"))
                                && r.case.model == stem(&path)
                        })
                        .max_by_key(|r| r.started_at_ms)
                        .and_then(|r| metric_median(r, metric));
                    let (Some(a), Some(b)) = (metric_median(ours, metric), theirs) else {
                        bail!("round {round}: {case}: {metric} missing on one side");
                    };
                    rounds
                        .entry((model.clone(), t, metric))
                        .or_default()
                        .push((a, b));
                }
            }
        }
    }
    println!("\nedgebench: {}", linked_llama_cpp(root));
    println!("llama-bench: {bench_version}");
    println!(
        "edgebench ÷ llama-bench per round ({} rounds, alternating which runs first): median [min, max] (n)\n",
        round_count
    );
    println!(
        "{:<16} {:>3} {:<24} {:>30} {:>30} {:>30}",
        "model", "t", "metric", "edgebench t/s", "llama-bench t/s", "ratio"
    );
    for ((model, t, metric), pairs) in &rounds {
        let ours: Vec<f64> = pairs.iter().map(|p| p.0).collect();
        let theirs: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let ratios: Vec<f64> = pairs.iter().map(|p| p.0 / p.1).collect();
        println!(
            "{model:<16} {t:>3} {metric:<24} {:>30} {:>30} {:>30}",
            spread(&ours, 1),
            spread(&theirs, 1),
            spread(&ratios, 3)
        );
    }
    println!(
        "\nllama-bench results are in {} (origin {}); the report's \"Every run\" table shows them beside edgebench's",
        db.display(),
        edgebench_store::llama_bench::ORIGIN
    );
    Ok(())
}

/// The model name llama-bench's importer keys a file by: its file stem.
fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}
