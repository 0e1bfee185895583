//! Project automation: `cargo xtask <command>`. See `cargo xtask help`.

mod anchor;
mod cli;
mod lab;
mod models;
mod report;
mod setup;
mod smoke;

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
            let args = report::Args::from_cli(&root, args);
            let regressed = report::report(&root, &args)?;
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
        C::Anchor { which } => match which {
            cli::AnchorCommand::Counters(args) => anchor::counters(&root, &args),
            cli::AnchorCommand::LlamaBench {
                common,
                bin,
                rounds,
            } => anchor::llama_bench(&root, &common, bin.as_deref(), rounds),
        },
        C::Setup => setup::ensure_build_tools(),
        C::Models { which } => match which {
            cli::ModelsCommand::Fetch => models::fetch_all(&root).map(|_| ()),
            cli::ModelsCommand::Twins => models::twins(&root).map(|_| ()),
            cli::ModelsCommand::List => models::list(&root),
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

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(cmd: &mut Command) -> Result<()> {
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
fn bench(root: &Path, all: bool, filters: &[String]) -> Result<()> {
    setup::ensure_build_tools()?;
    models::fetch_all(root)?;
    models::twins(root)?;
    let db = database(root);
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["test", "--test", "scenarios", "--"])
        .args(filters)
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
    let args = report::Args {
        db,
        out: root.join("results/report"),
        selection: edgebench_report::Selection::default(),
    };
    report::report(root, &args)?;
    outcome
}

/// Every test of the workspace, with the real models required (a missing model fails). The
/// scenario harness runs in smoke mode (each case once: tests check that a case works on each
/// backend; measuring is `bench`'s job), over one case per scenario file × engine × model
/// family × KV variant ([`smoke::selection`]); `--all` runs every case.
fn test(root: &Path, all: bool, extra: &[String]) -> Result<()> {
    setup::ensure_build_tools()?;
    models::fetch_all(root)?;
    models::twins(root)?;
    // Tests write their runs to a scratch database, never to the user's results.
    let db = root.join("target/test-results/edgebench.sqlite");
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["test", "--workspace"])
        .args(extra)
        .env(settings::REQUIRE_MODELS_ENV, "1")
        .env(settings::SMOKE_ENV, "1")
        .env(settings::DB_ENV, &db);
    if !all && std::env::var_os(settings::CASES_ENV).is_none() {
        let registry = models::registry(root)?;
        let cases = smoke::selection(root, &registry, &models_dir(root))?;
        eprintln!(
            "scenario smoke pass: {} cases, one per scenario file × engine × model family × KV \
             variant (`cargo xtask test --all` runs every case)",
            cases.len()
        );
        cmd.env(settings::CASES_ENV, cases.join(","));
    }
    run(&mut cmd)
}
