//! Project automation: `cargo xtask <command>`. See `cargo xtask help`.

mod anchor;
mod anchor_candle;
mod anchor_perplexity;
mod anchor_server;
mod calibrate;
mod cli;
mod fidelity;
mod lab;
mod models;
mod models_add;
mod replicate;
mod report;
mod setup;
mod simulate;
mod smoke;
mod tidy;
mod twins;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Parser;
use cli::Cli;
use edgebench_settings as settings;

fn main() -> Result<()> {
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        // Help and version go to stdout with 0; a usage error exits 1, never 2, which means
        // "regressed" (`report --fail-on-regression`, `nightly`).
        let _ = e.print();
        std::process::exit(if e.use_stderr() { 1 } else { 0 });
    });
    let root = project_root();
    use cli::Command as C;
    match cli.command {
        C::Bench { all, filters } => bench(&root, all, &filters),
        C::Test { all, extra } => test(&root, all, &extra),
        C::Report(args) => {
            let args = report::Args::from_cli(&root, args)?;
            let regressed = report::report_with(&root, &args, true)?;
            if regressed > 0 {
                eprintln!(
                    "{regressed} metric(s) regressed by more than {}%",
                    args.selection.fail_on_regression_pct.unwrap_or_default()
                );
                std::process::exit(report::REGRESSION_EXIT);
            }
            Ok(())
        }
        C::Ingest { db, sources } => lab::ingest(&root, &db, &sources),
        C::Export(args) => lab::export(&root, &args),
        C::ImportLlamaBench { db, host, files } => {
            lab::import_llama_bench(&root, &db, host, &files)
        }
        C::Nightly(args) => match lab::nightly(&root, &args)? {
            lab::NightlyOutcome::Clean => Ok(()),
            lab::NightlyOutcome::Regressed(_) => std::process::exit(report::REGRESSION_EXIT),
            lab::NightlyOutcome::CasesFailed => bail!("some cases failed (see above)"),
        },
        C::Calibrate(args) => calibrate::calibrate(&root, &args),
        C::Compare { db, a, b } => report::compare(&db.location(&root)?, &a, &b),
        C::Db { which } => lab::db(&root, which),
        C::Lab { which } => match which {
            cli::LabCommand::Simulate(args) => simulate::simulate(&root, &args),
        },
        C::Anchor { which } => match which {
            cli::AnchorCommand::Counters(args) => anchor::counters(&root, &args),
            cli::AnchorCommand::LlamaBench {
                common,
                bin,
                rounds,
            } => anchor::llama_bench(&root, &common, bin.as_deref(), rounds),
            cli::AnchorCommand::LlamaServer { models, bin } => {
                anchor_server::llama_server(&root, &models, bin.as_deref())
            }
            cli::AnchorCommand::Candle {
                models,
                threads,
                rounds,
                depths,
            } => anchor_candle::candle(&root, &models, threads, rounds, &depths),
            cli::AnchorCommand::LlamaPerplexity {
                models,
                bin,
                chunks,
                threads,
            } => {
                anchor_perplexity::llama_perplexity(&root, &models, bin.as_deref(), chunks, threads)
            }
        },
        C::Fidelity {
            rounds,
            engines,
            paired,
        } => fidelity::fidelity(&root, rounds, &engines, paired),
        C::Replicate {
            case,
            tries,
            pause,
            tolerance,
        } => replicate::replicate(
            &root,
            &case,
            tries,
            std::time::Duration::from_secs(pause),
            tolerance / 100.0,
        ),
        C::Setup => setup::ensure_build_tools(),
        C::Models { which } => match which {
            cli::ModelsCommand::Fetch => {
                models::fetch_all(&root)?;
                models::write_quantized(&root, &edgebench_binary(&root)?)
            }
            cli::ModelsCommand::Twins {
                full_size,
                delete_full_size,
            } => {
                if delete_full_size {
                    twins::delete_full_size(&root)
                } else if full_size {
                    twins::full_size(&root, None).map(|_| ())
                } else {
                    twins::twins(&root).map(|_| ())
                }
            }
            cli::ModelsCommand::Quantize {
                file,
                to,
                out,
                chunks,
            } => models::quantize(&root, &file, &to, out, chunks),
            cli::ModelsCommand::TwinOf { file, out } => {
                let dest = out.unwrap_or_else(|| {
                    models_dir(&root)
                        .join("twins/of")
                        .join(file.file_name().unwrap_or_default())
                });
                let w = twins::twin_of(&file, &dest)?;
                println!(
                    "{} {} ({} bytes, sha256 {}): {}'s header with random weights",
                    if w.reused { "reused" } else { "wrote" },
                    dest.display(),
                    w.bytes,
                    w.sha256,
                    file.display()
                );
                Ok(())
            }
            cli::ModelsCommand::List => models::list(&root),
            cli::ModelsCommand::Add { file, id, quant } => {
                let added = models_add::add(
                    &root.join("models.toml"),
                    &models_dir(&root),
                    &file,
                    id.as_deref(),
                    quant.as_deref(),
                )?;
                println!(
                    "added `{}` ({}) to {}; name it in a scenario: models = [\"{}\"], quantizations = [\"{}\"]",
                    added.id,
                    added.quant,
                    added.registry.display(),
                    added.id,
                    added.quant
                );
                Ok(())
            }
        },
        C::Schema => schema(&root),
    }
}

pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

pub(crate) use edgebench_settings::{database, models_dir};

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `cmd` and returns its stdout (stderr passes through).
pub(crate) fn run_capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed with {}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    // The command, not its environment (a case list can be kilobytes long).
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    eprintln!(
        "$ {} {}",
        cmd.get_program().to_string_lossy(),
        args.join(" ")
    );
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn schema(root: &Path) -> Result<()> {
    let path = root.join("scenarios/schema.json");
    std::fs::write(&path, edgebench_core::scenario::file::json_schema())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The default bench suite, chosen so that every section of the report has data within about
/// 12 minutes of measuring on 2 cores after a warm build. The headline: MiMo-7B and Phi-4-mini
/// at their real size (full-size twins, Q4_K_M: math and multi-turn, short prompts, adaptive
/// stopping; written once, about 7 GB). Beside it: code generation and multi-turn on the real
/// small models, concurrency 1 and 4 and a goodput sweep on the 1/16 twins (fixtures, kept out of the
/// overview), a KV baseline and a quantized-cache variant on a real small model, one model on
/// both engines (with parity rows, [`PARITY_MODELS`]), one weight quantization beside its F16
/// source, MMLU on a subset (real models only: a twin is refused), a short sustained-decode run, the HTTP and hybrid engines and the
/// llama-bench anchor at 2 threads. `bench --all` runs every scenario case.
pub(crate) const DEFAULT_SUITE: &[&str] = &[
    "full_size_math::*::Q4_K_M::llama_cpp::*",
    "full_size_multi_turn::*::Q4_K_M::llama_cpp::*",
    "anchor::*::t2",
    "code_generation::gemma3-270m::*::llama_cpp::*",
    "code_generation::smollm2-135m::*::llama_cpp::*",
    "multi_turn::gemma3-270m::*::llama_cpp::*",
    "multi_turn::smollm2-135m::*::llama_cpp::*",
    "batch_concurrent::*twin16::*::llama_cpp::c1",
    "batch_concurrent::*twin16::*::llama_cpp::c4",
    "kv_cache::smollm2-135m::*::llama_cpp::c1::baseline",
    "kv_cache::smollm2-135m::*::llama_cpp::c1::q8_0-fa",
    // The quantization table: SmolLM2 requantized to Q4_0 beside the F16 file it was written
    // from (speed, size, and Q4_0's KLD against F16; `cargo xtask models fetch` writes both).
    "quantization::smollm2-135m-requant::F16::llama_cpp::*",
    "quantization::smollm2-135m-requant::Q4_0::llama_cpp::*",
    // SmolLM2 on candle beside the same llama.cpp case: the Backends section's pair (a short
    // one; code generation on candle took 97 s).
    "twin_fidelity_short::smollm2-135m::*::candle::*",
    "mmlu_quick::gemma3-270m::*",
    "mmlu_quick::smollm2-135m::*",
    // About 20 s: the report's goodput section.
    "goodput::mimo-7b-twin16::*",
    // About 40 s: the HTTP section (SmolLM2 in process and over HTTP to edgebench serve on
    // loopback, 1 and 4 clients) and the hybrid section (both cases of scenarios/hybrid.toml).
    "http::smollm2-135m::*",
    "hybrid::*",
    // About 2 min: the twins-vs-real-weights table (each real small model beside its
    // random-weight copy, llama.cpp, at depth 512 and ≈0; `cargo xtask fidelity` alternates
    // them over rounds on both engines).
    "twin_fidelity::*::llama_cpp::*",
    "twin_fidelity_short::*::llama_cpp::*",
    // About 40 s: the sustained section (30 s of decode; the 10-minute run is `cargo xtask bench
    // sustained_decode`).
    "sustained_quick::*",
];

/// The models the default suite compares across engines (`edgebench-parity`): the one it
/// also measures on candle.
pub(crate) const PARITY_MODELS: &[&str] = &["smollm2-135m:Q4_1"];

/// Why EDGEBENCH_DB can't name PostgreSQL for commands that run cases.
pub(crate) const CASES_WRITE_LOCALLY: &str = "cases write to a local SQLite file (unset \
     EDGEBENCH_DB or point it at a file); `cargo xtask nightly --db <conninfo>` or `cargo xtask \
     ingest --db <conninfo> FILE` moves the runs into PostgreSQL";

/// The main job on the embedded defaults: the default suite (or every case with `--all`, or
/// the cases matching FILTER) on every model present, synthetic or real, written to the
/// results database, then the report.
fn bench(root: &Path, all: bool, filters: &[String]) -> Result<()> {
    setup::ensure_build_tools()?;
    models::fetch_all(root)?;
    twins::twins(root)?;
    if !filters.is_empty() {
        // Full-size twins are written on demand, for the cases a filter names.
        let wanted = twins::wanted_by(root, filters)?;
        if !wanted.is_empty() {
            twins::full_size(root, Some(&wanted))?;
        }
    }
    let db = cli::DbArg { db: None }
        .location(root)?
        .sqlite(CASES_WRITE_LOCALLY)?
        .to_path_buf();
    let default_suite =
        !all && filters.is_empty() && std::env::var_os(settings::CASES_ENV).is_none();
    if default_suite {
        // The headline pair at full size, written once. Refused (disk), the rest still runs
        // and the overview says why it has no columns.
        let wanted = twins::wanted_by_globs(root, DEFAULT_SUITE)?;
        if let Err(e) = twins::full_size(root, Some(&wanted)) {
            eprintln!(
                "the headline (MiMo-7B vs Phi-4-mini at full size) will be missing from the overview: {e:#}"
            );
        }
    }
    build_announced(root)?;
    models::write_quantized(root, &test_build_binary(root, "edgebench"))?;
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["test", "--test", "scenarios"])
        .env(settings::DB_ENV, &db);
    if !filters.is_empty() {
        cmd.env(settings::CASES_ENV, containing_any(filters));
    }
    if default_suite {
        eprintln!(
            "default suite: {} (`cargo xtask bench --all` runs every case)",
            DEFAULT_SUITE.join(", ")
        );
        cmd.env(settings::CASES_ENV, DEFAULT_SUITE.join(","));
    }
    let started = std::time::Instant::now();
    // A failed case fails the bench, but the report of what did run is written first.
    let mut outcome = run(&mut cmd);
    if default_suite {
        // The Backends section's parity rows: candle against llama.cpp on the model both ran.
        // The binary the test build made (`cargo run` would build everything again in the dev
        // profile, llama.cpp included).
        let mut parity = Command::new(test_build_binary(root, "edgebench-parity"));
        parity
            .current_dir(root)
            .args(["--prompts-per-set", "4"])
            .args(PARITY_MODELS)
            .env(settings::DB_ENV, &db);
        outcome = outcome.and(run(&mut parity));
    }
    println!(
        "\nresults: {} (cases ran for {:.1} min)",
        db.display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    let args = report::Args {
        db: edgebench_store::Location::Sqlite(db),
        out: root.join("results/report"),
        selection: edgebench_report::Selection::default(),
    };
    report::report_with(root, &args, true)?;
    outcome
}

/// Case globs (`EDGEBENCH_CASES`) for the cases whose name contains one of `filters`: libtest
/// takes a single filter, the globs any number.
pub(crate) fn containing_any(filters: &[String]) -> String {
    filters
        .iter()
        .map(|f| format!("*{f}*"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `edgebench` binary (built now, as the test build builds it): the commands that need
/// llama.cpp (`quantize`, `quality`) run through it, since xtask never links it.
pub(crate) fn edgebench_binary(root: &Path) -> Result<PathBuf> {
    run(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(root)
            .args(["build", "--quiet", "--bin", "edgebench"]),
    )?;
    Ok(test_build_binary(root, "edgebench"))
}

/// A binary of the root package as `cargo test` builds it for the integration tests.
fn test_build_binary(root: &Path, name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("debug")
        .join(name)
}

/// Builds the scenario harness (and the binaries it runs) before running it, saying so: the
/// first build compiles llama.cpp and candle and is silent for minutes inside their build
/// scripts. Cargo's own output goes to a log file, named on failure.
pub(crate) fn build_announced(root: &Path) -> Result<()> {
    build_announced_of(root, &["--test", "scenarios"])
}

/// [`build_announced`] for the test targets `selection` names: it must be the selection the
/// command then runs, or cargo resolves other features and builds llama.cpp a second time
/// (`--workspace` turns on features `--test scenarios` does not).
pub(crate) fn build_announced_of(root: &Path, selection: &[&str]) -> Result<()> {
    let log = setup::log_file("build")?;
    let fresh = !test_build_binary(root, "edgebench-case").exists();
    eprintln!(
        "building the harness{} (log: {})",
        if fresh {
            ": the first build compiles llama.cpp and candle, about 15 min on 2 cores"
        } else {
            ""
        },
        log.display()
    );
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} building")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    let ok = setup::quiet(
        cargo()
            .current_dir(root)
            // Integration tests build the package's binaries too (edgebench-case,
            // edgebench-parity).
            .args(["test", "--no-run"])
            .args(selection),
        &log,
    )?;
    bar.finish_and_clear();
    if !ok {
        bail!(
            "the build failed; its output is in {}:\n{}",
            log.display(),
            setup::tail(&log, 30)
        );
    }
    Ok(())
}

/// Every test of the workspace, with the real models required (a missing model fails). The
/// scenario harness runs in smoke mode (each case once: tests check that a case works on each
/// backend; measuring is `bench`'s job), over one case per scenario file × engine × model
/// family, and each further KV variant once per file × engine ([`smoke::selection`]); `--all`
/// runs every case.
fn test(root: &Path, all: bool, extra: &[String]) -> Result<()> {
    // Text-only checks first: they fail in seconds, before anything heavy compiles.
    let problems = tidy::problems(root);
    if !problems.is_empty() {
        bail!("tidy: {}", problems.join("\n"));
    }
    eprintln!("tidy: no import circle, one build (every member on the workspace-hack)");
    setup::ensure_build_tools()?;
    models::fetch_all(root)?;
    twins::twins(root)?;
    setup::ensure_openai_client(root)?;
    // Every test target first, as the run below selects them (it builds the `edgebench`
    // binary), so the requantized files exist before any test needs them.
    build_announced_of(root, &["--workspace"])?;
    models::write_quantized(root, &test_build_binary(root, "edgebench"))?;
    // The HTTP engine is also tested against a server edgebench did not write: llama.cpp's own
    // llama-server, from the same pinned sdist as the anchors (built once, kept under target/).
    eprintln!(
        "llama-server for the HTTP engine's test: from the pinned llama-cpp-python sdist, built \
         once under target/anchor (log: cmake's own output)"
    );
    let (llama_server, _) = anchor::llama_cpp_tool(root, None, "llama-server")?;
    // Tests write their runs to a scratch database, never to the user's results.
    let db = root.join("target/test-results/edgebench.sqlite");
    let mut cmd = cargo();
    cmd.current_dir(root)
        // Every test binary runs even when one fails (cargo stops at the first otherwise, and
        // a failure in tests/it hid every binary after it); the failures are listed at the end.
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .env(settings::REQUIRE_MODELS_ENV, "1")
        .env(settings::SMOKE_ENV, "1")
        .env(settings::DB_ENV, &db)
        .env(settings::LLAMA_SERVER_ENV, &llama_server);
    if !all && std::env::var_os(settings::CASES_ENV).is_none() {
        let registry = models::registry(root)?;
        let cases = smoke::selection(root, &registry, &models_dir(root))?;
        eprintln!(
            "scenario smoke pass: {} cases, one per scenario file × engine × model family, each \
             further KV variant once per file × engine (`cargo xtask test --all` runs every case)",
            cases.len()
        );
        cmd.env(settings::CASES_ENV, cases.join(","));
    }
    run(&mut cmd)
}
