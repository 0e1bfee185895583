//! `cargo xtask report`: renders the results database (see crates/report).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use edgebench_report::{Baseline, Inputs, Selection};

/// Exit code when `--fail-on-regression` finds regressions (errors exit 1).
pub const REGRESSION_EXIT: i32 = 2;

#[derive(Debug)]
pub struct Args {
    pub db: edgebench_store::Location,
    pub out: PathBuf,
    pub selection: Selection,
}

impl Args {
    /// The report's inputs from the command line, with the defaults filled in.
    pub fn from_cli(root: &Path, args: crate::cli::ReportArgs) -> Result<Self> {
        let baseline = match (args.baseline, args.since) {
            (Some(run), _) => Baseline::Run(run),
            (None, Some(day)) => Baseline::Since(crate::cli::day_start_ms(day)),
            (None, None) => Baseline::default(),
        };
        Ok(Self {
            db: args.db.location(root)?,
            out: args.out.unwrap_or_else(|| root.join("results/report")),
            selection: Selection {
                baseline,
                device: args.device,
                fail_on_regression_pct: args.fail_on_regression,
                window_nights: args.window.nights(),
            },
        })
    }
}

/// Now as `YYYY-MM-DD HH:MM UTC`.
fn now_utc() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string()
}

fn read(root: &Path, rel: &str) -> Result<(String, String)> {
    let path = root.join(rel);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok((rel.to_string(), text))
}

/// Writes the report; returns how many regressions exceed the threshold (0 without one).
pub fn report(root: &Path, args: &Args) -> Result<usize> {
    report_with(root, args, false)
}

/// [`report`], printing the overview table in the terminal first when `print_overview`.
pub fn report_with(root: &Path, args: &Args, print_overview: bool) -> Result<usize> {
    let (rf, rt) = read(root, "models.toml")?;
    let (cf, ct) = read(root, "datasets/claims.toml")?;
    let (of, ot) = read(root, "datasets/roi.toml")?;
    let inputs = Inputs::parse((&rf, &rt), (&cf, &ct), (&of, &ot))?;
    let written = edgebench_report::write_report_at(
        &args.db,
        &args.out,
        &inputs,
        &args.selection,
        &now_utc(),
    )?;
    if print_overview {
        println!("\n{}", written.overview_text);
    }
    println!("report: {}", written.index.display());
    println!(
        "also: {}, {}, {}",
        written.json.display(),
        written.csv.display(),
        written.markdown.display()
    );
    Ok(if args.selection.fail_on_regression_pct.is_some() {
        written.regressed_beyond_threshold
    } else {
        0
    })
}

/// `cargo xtask compare A B`: prints B ÷ A per case and metric as an aligned table.
pub fn compare(db: &edgebench_store::Location, a: &str, b: &str) -> Result<()> {
    let dataset = edgebench_report::data::load_from(db)?;
    let c = edgebench_report::comparison::compare(&dataset, a, b, edgebench_report::SEED)?;
    println!("A: {}\nB: {}\n", c.a, c.b);
    if c.rows.is_empty() {
        println!("no case measured on both sides with samples to compare");
    } else {
        let mut out = Vec::new();
        edgebench_store::table::write_table(
            edgebench_store::table::TableFormat::Aligned,
            edgebench_report::comparison::HEADER,
            c.cells(),
            &mut out,
        )?;
        print!("{}", String::from_utf8_lossy(&out));
        println!(
            "\nB ÷ A is the ratio of medians with its 95% bootstrap CI; a change only when the whole interval is on one side of 1."
        );
    }
    if !c.unpaired.is_empty() {
        println!("measured on one side only: {}", c.unpaired.join(", "));
    }
    Ok(())
}
