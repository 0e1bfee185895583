//! The device lab: `ingest`, `export`, `import-llama-bench` and `nightly` (see README, "Device
//! lab", and docs/formats.md for the file formats).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use edgebench_report::{Baseline, Selection as ReportSelection};
use edgebench_store::Store;
use edgebench_store::exchange::{self, Selection};

pub const INGEST_USAGE: &str =
    "cargo xtask ingest [--db SHARED] SOURCE... (databases or .jsonl exports)";
pub const EXPORT_USAGE: &str = "cargo xtask export --format jsonl|csv|md [--db PATH] [--run ID] [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--out FILE]";
pub const IMPORT_USAGE: &str =
    "cargo xtask import-llama-bench [--db PATH] [--host NAME] FILE... (llama-bench -o json|jsonl)";
pub const NIGHTLY_USAGE: &str = "cargo xtask nightly --db SHARED [--scenarios GLOB[,GLOB]] [--fail-on-regression PCT] [--results-from LOCAL_DB] [--out DIR]";

/// Pulls `--flag value` pairs and positional arguments out of `args`.
struct Flags {
    pairs: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Flags {
    fn parse(args: &[String], known: &[&str], usage: &str) -> Result<Self> {
        let mut flags = Self {
            pairs: Vec::new(),
            positional: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                if !known.contains(&name) {
                    bail!("unknown option `{a}`\nusage: {usage}");
                }
                let value = it
                    .next()
                    .with_context(|| format!("{a} needs a value\nusage: {usage}"))?;
                flags.pairs.push((name.to_owned(), value.clone()));
            } else {
                flags.positional.push(a.clone());
            }
        }
        Ok(flags)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn database_flag(root: &Path, flags: &Flags) -> PathBuf {
    flags
        .get("db")
        .map_or_else(|| crate::database(root), PathBuf::from)
}

fn date_flag(flags: &Flags, name: &str) -> Result<Option<i64>> {
    flags
        .get(name)
        .map(|v| {
            crate::report::date_to_ms(v)
                .with_context(|| format!("--{name} `{v}`: expected YYYY-MM-DD"))
        })
        .transpose()
}

/// `cargo xtask ingest`: merges databases or exports into the shared database.
pub fn ingest(root: &Path, args: &[String]) -> Result<()> {
    let flags = Flags::parse(args, &["db"], INGEST_USAGE)?;
    if flags.positional.is_empty() {
        bail!("nothing to ingest\nusage: {INGEST_USAGE}");
    }
    let db = database_flag(root, &flags);
    let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    for source in &as_paths(&flags.positional) {
        let summary = store
            .ingest(source)
            .with_context(|| format!("ingesting {} into {}", source.display(), db.display()))?;
        println!("{}: {summary}", source.display());
    }
    Ok(())
}

fn as_paths(paths: &[String]) -> Vec<PathBuf> {
    paths.iter().map(PathBuf::from).collect()
}

/// `cargo xtask export`: runs as JSON lines (re-ingestable), CSV or Markdown.
pub fn export(root: &Path, args: &[String]) -> Result<()> {
    let flags = Flags::parse(
        args,
        &["db", "format", "run", "since", "until", "out"],
        EXPORT_USAGE,
    )?;
    if let Some(extra) = flags.positional.first() {
        bail!("unexpected argument `{extra}`\nusage: {EXPORT_USAGE}");
    }
    let db = database_flag(root, &flags);
    if !db.exists() {
        bail!("no results database at {}", db.display());
    }
    let selection = Selection {
        run_id: flags.get("run").map(str::to_owned),
        since_ms: date_flag(&flags, "since")?,
        // --until is inclusive of its day.
        until_ms: date_flag(&flags, "until")?.map(|ms| ms + 86_400_000),
    };
    let records = exchange::read_database(&db, &selection)?;
    let runs = records
        .iter()
        .filter(|r| matches!(r, exchange::Record::Run(_)))
        .count();
    if runs == 0 && selection.run_id.is_some() {
        bail!(
            "run `{}` is not in {}",
            selection.run_id.unwrap_or_default(),
            db.display()
        );
    }
    let mut out: Box<dyn std::io::Write> = match flags.get("out") {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {path}"))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    match flags.get("format").unwrap_or("jsonl") {
        "jsonl" => exchange::write_jsonl(&records, &mut out)?,
        "csv" => exchange::write_csv(&records, &mut out)?,
        "md" => exchange::write_markdown(&records, &mut out)?,
        other => bail!("--format `{other}`: expected jsonl, csv or md"),
    }
    eprintln!("exported {runs} run(s) from {}", db.display());
    Ok(())
}

/// `cargo xtask import-llama-bench`: llama-bench JSON output into the database, as imported runs.
pub fn import_llama_bench(root: &Path, args: &[String]) -> Result<()> {
    let flags = Flags::parse(args, &["db", "host"], IMPORT_USAGE)?;
    if flags.positional.is_empty() {
        bail!("nothing to import\nusage: {IMPORT_USAGE}");
    }
    let db = database_flag(root, &flags);
    let host = flags
        .get("host")
        .map_or_else(edgebench_store::local_host, str::to_owned);
    let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    for source in as_paths(&flags.positional) {
        let records = edgebench_store::llama_bench::read(&source, &host)?;
        let summary = store
            .ingest_records(&source, &records)
            .with_context(|| format!("importing {} into {}", source.display(), db.display()))?;
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

/// `cargo xtask nightly`: run the suite into a local database, ingest it into the shared one,
/// compare with the previous night on this device.
pub fn nightly(root: &Path, args: &[String]) -> Result<NightlyOutcome> {
    let flags = Flags::parse(
        args,
        &[
            "db",
            "scenarios",
            "fail-on-regression",
            "results-from",
            "out",
        ],
        NIGHTLY_USAGE,
    )?;
    if let Some(extra) = flags.positional.first() {
        bail!("unexpected argument `{extra}`\nusage: {NIGHTLY_USAGE}");
    }
    let shared = PathBuf::from(
        flags
            .get("db")
            .with_context(|| format!("--db is required\nusage: {NIGHTLY_USAGE}"))?,
    );
    let threshold = flags
        .get("fail-on-regression")
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|p| p.is_finite() && *p >= 0.0)
                .with_context(|| format!("--fail-on-regression `{v}`: expected a percentage ≥ 0"))
        })
        .transpose()?;
    let stamp = format!(
        "{}-{}-{}",
        edgebench_store::local_host(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        std::process::id()
    );
    let out_root = flags
        .get("out")
        .map_or_else(|| root.join("results/nightly"), PathBuf::from);
    let (local, suite_ok) = match flags.get("results-from") {
        // Runs already measured (e.g. by `cargo xtask bench` or an earlier nightly whose
        // ingest failed): only ingest and compare.
        Some(path) => (PathBuf::from(path), true),
        None => {
            crate::setup::ensure_build_tools()?;
            crate::models::fetch_all(root)?;
            crate::models::twins(root)?;
            // The suite always writes locally first: a shared database that is down, locked
            // or full cannot lose a night's measurements.
            std::fs::create_dir_all(&out_root)
                .with_context(|| format!("creating {}", out_root.display()))?;
            let local = out_root.join(format!("{stamp}.sqlite"));
            let mut cmd = crate::cargo();
            cmd.current_dir(root)
                .args(["test", "--test", "scenarios"])
                .env("EDGEBENCH_DB", &local)
                .env("EDGEBENCH_CASES", flags.get("scenarios").unwrap_or(""));
            let ok = crate::run(&mut cmd).is_ok();
            (local, ok)
        }
    };
    if !local.exists() {
        bail!(
            "no local results at {} (did any case run?)",
            local.display()
        );
    }
    let summary = Store::open(&shared)
        .map_err(anyhow::Error::from)
        .and_then(|store| Ok(store.ingest(&local)?))
        .with_context(|| {
            format!(
                "ingesting into the shared database {}; tonight's results are kept in {} \
                 (retry with `cargo xtask ingest --db {} {}`)",
                shared.display(),
                local.display(),
                shared.display(),
                local.display()
            )
        })?;
    println!(
        "ingested {} into {}: {summary}",
        local.display(),
        shared.display()
    );

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
