//! The device lab: `ingest`, `export`, `import-llama-bench` and `nightly` (see README, "Device
//! lab", and docs/formats.md for the file formats).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cli::{DbArg, ExportArgs, ExportFormat, NightlyArgs, day_start_ms};
use edgebench_report::{Baseline, Selection as ReportSelection};
use edgebench_store::exchange::{self, Selection};
use edgebench_store::postgres::PgStore;
use edgebench_store::{AnyStore, Location, Store};

/// `cargo xtask ingest`: merges databases or exports into the shared database.
pub fn ingest(root: &Path, db: &DbArg, sources: &[PathBuf]) -> Result<()> {
    let location = db.location(root)?;
    let mut store = AnyStore::open(&location).with_context(|| format!("opening {location}"))?;
    for source in sources {
        let summary = store
            .ingest(source)
            .with_context(|| format!("ingesting {} into {location}", source.display()))?;
        println!("{}: {summary}", source.display());
    }
    Ok(())
}

/// `cargo xtask export`: runs as JSON lines (re-ingestable), CSV or Markdown.
pub fn export(root: &Path, args: &ExportArgs) -> Result<()> {
    let db = args.db.location(root)?;
    if let Location::Sqlite(path) = &db
        && !path.exists()
    {
        bail!("no results database at {}", path.display());
    }
    let selection = Selection {
        run_id: args.run.clone(),
        since_ms: args.since.map(day_start_ms),
        // --until is inclusive of its day.
        until_ms: args.until.map(|day| day_start_ms(day) + 86_400_000),
    };
    let records = match &db {
        Location::Sqlite(path) => exchange::read_database(path, &selection)?,
        Location::Postgres(target) => PgStore::connect_read_only(target)?.export(&selection)?,
    };
    let runs = records
        .iter()
        .filter(|r| matches!(r, exchange::Record::Run(_)))
        .count();
    if runs == 0 && selection.run_id.is_some() {
        bail!(
            "run `{}` is not in {db}",
            selection.run_id.unwrap_or_default(),
        );
    }
    let mut out: Box<dyn std::io::Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    match args.format {
        ExportFormat::Jsonl => exchange::write_jsonl(&records, &mut out)?,
        ExportFormat::Csv => exchange::write_csv(&records, &mut out)?,
        ExportFormat::Md => exchange::write_markdown(&records, &mut out)?,
    }
    eprintln!("exported {runs} run(s) from {db}");
    Ok(())
}

/// `cargo xtask import-llama-bench`: llama-bench JSON output into the database, as imported runs.
pub fn import_llama_bench(
    root: &Path,
    db: &DbArg,
    host: Option<String>,
    files: &[PathBuf],
) -> Result<()> {
    let db = db.location(root)?;
    let host = host.unwrap_or_else(edgebench_store::local_host);
    let mut store = AnyStore::open(&db).with_context(|| format!("opening {db}"))?;
    for source in files {
        let records = edgebench_store::llama_bench::read(source, &host)?;
        let summary = store
            .ingest_records(source, &records)
            .with_context(|| format!("importing {} into {db}", source.display()))?;
        println!(
            "{}: {summary} (origin {})",
            source.display(),
            edgebench_store::llama_bench::ORIGIN
        );
    }
    Ok(())
}

/// What `nightly` ended with; mapped to the exit code by `main`.
#[derive(Debug, PartialEq, Eq)]
pub enum NightlyOutcome {
    Clean,
    /// Metrics regressed beyond the threshold (exit 2, like `report --fail-on-regression`).
    Regressed(usize),
    /// Some cases failed; what ran was still ingested and compared (exit 1).
    CasesFailed,
}

/// The night's harness processes, `args.processes` of them, each writing into `local`. Every
/// one stores its runs under the night's one invocation, so the verdicts take a case's runs of
/// one night together (the median of K processes; a process's level is what varies most
/// between runs here, docs/methodology.md "History verdicts").
fn night_rounds(root: &Path, args: &NightlyArgs, local: &Path, stamp: &str) -> Vec<Command> {
    let night = format!("night-{stamp}");
    (0..args.processes)
        .map(|_| {
            let mut cmd = crate::cargo();
            cmd.current_dir(root)
                .args(["test", "--test", "scenarios"])
                .env(edgebench_settings::DB_ENV, local)
                .env(edgebench_settings::INVOCATION_ENV, &night)
                .env(
                    edgebench_settings::CASES_ENV,
                    args.scenarios.as_deref().unwrap_or(""),
                );
            cmd
        })
        .collect()
}

/// `cargo xtask nightly`: run the suite into a local database, ingest it into the shared one,
/// compare with the previous night on this device.
pub fn nightly(root: &Path, args: &NightlyArgs) -> Result<NightlyOutcome> {
    let shared = Location::parse(&args.db)?;
    let threshold = args.fail_on_regression;
    let stamp = format!(
        "{}-{}-{}",
        edgebench_store::local_host(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        std::process::id()
    );
    let out_root = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("results/nightly"));
    let (local, suite_ok) = match &args.results_from {
        // Runs already measured (e.g. by `cargo xtask bench` or an earlier nightly whose
        // ingest failed): only ingest and compare.
        Some(path) => (path.clone(), true),
        None => {
            crate::setup::ensure_build_tools()?;
            crate::models::fetch_all(root)?;
            crate::twins::twins(root)?;
            // The suite always writes locally first: a shared database that is down, locked
            // or full cannot lose a night's measurements.
            std::fs::create_dir_all(&out_root)
                .with_context(|| format!("creating {}", out_root.display()))?;
            let local = out_root.join(format!("{stamp}.sqlite"));
            let rounds = night_rounds(root, args, &local, &stamp);
            let mut ok = true;
            for (round, mut cmd) in rounds.into_iter().enumerate() {
                if args.processes > 1 {
                    eprintln!(
                        "nightly: round {}/{} of night-{stamp}",
                        round + 1,
                        args.processes
                    );
                }
                ok &= crate::run(&mut cmd).is_ok();
            }
            (local, ok)
        }
    };
    if !local.exists() {
        bail!(
            "no local results at {} (did any case run?)",
            local.display()
        );
    }
    let summary = AnyStore::open(&shared)
        .map_err(anyhow::Error::from)
        .and_then(|mut store| Ok(store.ingest(&local)?))
        .with_context(|| {
            format!(
                "ingesting into the shared database {shared}; tonight's results are kept in {} \
                 (retry with `cargo xtask ingest --db <the same> {}`)",
                local.display(),
                local.display()
            )
        })?;
    println!("ingested {} into {shared}: {summary}", local.display());

    // Compare each case's newest run with its previous one on this device (the report's
    // statistics: ratio of medians with a bootstrap CI).
    let fingerprints = {
        let store = Store::open(&local)?;
        let mut stmt = store.connection().prepare(
            "SELECT DISTINCT d.fingerprint FROM runs r JOIN devices d ON d.id = r.device_id",
        )?;
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut regressed = 0;
    for fingerprint in fingerprints {
        let args = crate::report::Args {
            db: shared.clone(),
            out: out_root.join(format!(
                "report-{stamp}-{}",
                &fingerprint[..fingerprint.len().min(12)]
            )),
            selection: ReportSelection {
                baseline: Baseline::Previous,
                device: Some(fingerprint),
                fail_on_regression_pct: threshold,
                window_nights: Some(crate::cli::DEFAULT_WINDOW_NIGHTS),
            },
        };
        regressed += crate::report::report(root, &args)?;
    }
    Ok(if threshold.is_some() && regressed > 0 {
        eprintln!(
            "{regressed} metric(s) regressed by more than {}% since the previous night",
            threshold.unwrap_or_default()
        );
        NightlyOutcome::Regressed(regressed)
    } else if suite_ok {
        NightlyOutcome::Clean
    } else {
        NightlyOutcome::CasesFailed
    })
}

/// `cargo xtask db migrate|roles`: the lab's PostgreSQL database, as its owner.
pub fn db(root: &Path, which: crate::cli::DbCommand) -> Result<()> {
    use crate::cli::DbCommand as D;
    let target = |text: &str| -> Result<edgebench_store::postgres::PgTarget> {
        match Location::parse(text)? {
            Location::Postgres(target) => Ok(*target),
            Location::Sqlite(path) => bail!(
                "{} is not a PostgreSQL connection string (a SQLite file migrates when opened)",
                path.display()
            ),
        }
    };
    match which {
        D::Prune { db, keep_raw } => {
            let location = db.location(root)?;
            let mut store =
                AnyStore::open(&location).with_context(|| format!("opening {location}"))?;
            let started = std::time::Instant::now();
            let summary = store
                .prune_raw(keep_raw)
                .with_context(|| format!("pruning {location}"))?;
            println!(
                "{location}: {summary} in {:.2} s",
                started.elapsed().as_secs_f64()
            );
        }
        D::Migrate { db } => {
            let target = target(&db)?;
            let mut store = PgStore::connect(&target)?;
            println!("{target}: schema version {}", store.schema_version()?);
        }
        D::Roles {
            db,
            writer,
            reporter,
        } => {
            let target = target(&db)?;
            PgStore::connect(&target)?.create_roles(&writer, &reporter)?;
            println!(
                "{target}: roles {writer} (insert runs; no update or delete) and {reporter} \
                 (read only) ready; set their passwords with psql: \\password {writer}"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_night_of_three_processes_is_three_harness_runs_under_one_invocation() {
        let args = NightlyArgs {
            db: "lab.sqlite".into(),
            scenarios: Some("code_generation::*".into()),
            fail_on_regression: None,
            results_from: None,
            out: None,
            processes: 3,
        };
        let local = Path::new("/tmp/night.sqlite");
        let rounds = night_rounds(Path::new("."), &args, local, "lab-1-2");
        assert_eq!(rounds.len(), 3);
        let env = |cmd: &Command, key: &str| {
            cmd.get_envs()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v)
                .map(|v| v.to_string_lossy().into_owned())
        };
        for cmd in &rounds {
            let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
            assert_eq!(args, ["test", "--test", "scenarios"]);
            assert_eq!(
                env(cmd, edgebench_settings::INVOCATION_ENV).as_deref(),
                Some("night-lab-1-2")
            );
            assert_eq!(
                env(cmd, edgebench_settings::DB_ENV).as_deref(),
                Some("/tmp/night.sqlite")
            );
            assert_eq!(
                env(cmd, edgebench_settings::CASES_ENV).as_deref(),
                Some("code_generation::*")
            );
        }
    }
}
