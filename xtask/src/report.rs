//! `cargo xtask report`: renders the results database (see crates/report).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use edgebench_report::{Baseline, Inputs, Selection};

pub const USAGE: &str = "cargo xtask report [--db PATH] [--out DIR] [--baseline RUN|--since YYYY-MM-DD] [--device HOST] [--fail-on-regression PCT]";

/// Exit code when `--fail-on-regression` finds regressions (errors exit 1).
pub const REGRESSION_EXIT: i32 = 2;

#[derive(Debug)]
pub struct Args {
    pub db: PathBuf,
    pub out: PathBuf,
    pub selection: Selection,
}

pub fn parse_args(root: &Path, args: &[String]) -> Result<Args> {
    let mut parsed = Args {
        db: crate::database(root),
        out: root.join("results/report"),
        selection: Selection::default(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{flag} needs a value\nusage: {USAGE}"))
        };
        match flag.as_str() {
            "--db" => parsed.db = PathBuf::from(value()?),
            "--out" => parsed.out = PathBuf::from(value()?),
            "--baseline" => parsed.selection.baseline = Baseline::Run(value()?),
            "--since" => {
                let v = value()?;
                parsed.selection.baseline = Baseline::Since(
                    date_to_ms(&v)
                        .with_context(|| format!("--since `{v}`: expected YYYY-MM-DD"))?,
                );
            }
            "--device" => parsed.selection.device = Some(value()?),
            "--fail-on-regression" => {
                let v = value()?;
                let pct: f64 = v
                    .parse()
                    .ok()
                    .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                    .with_context(|| {
                        format!("--fail-on-regression `{v}`: expected a percentage ≥ 0")
                    })?;
                parsed.selection.fail_on_regression_pct = Some(pct);
            }
            other => bail!("unknown argument `{other}`\nusage: {USAGE}"),
        }
    }
    Ok(parsed)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn date_to_ms(s: &str) -> Option<i64> {
    let mut parts = s.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400_000)
}

/// Now as `YYYY-MM-DD HH:MM UTC`.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn read(root: &Path, rel: &str) -> Result<(String, String)> {
    let path = root.join(rel);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok((rel.to_string(), text))
}

/// Writes the report; returns how many regressions exceed the threshold (0 without one).
pub fn report(root: &Path, args: &Args) -> Result<usize> {
    let (rf, rt) = read(root, "models.toml")?;
    let (cf, ct) = read(root, "datasets/claims.toml")?;
    let (of, ot) = read(root, "datasets/roi.toml")?;
    let inputs = Inputs::parse((&rf, &rt), (&cf, &ct), (&of, &ot))?;
    let written =
        edgebench_report::write_report(&args.db, &args.out, &inputs, &args.selection, &now_utc())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_to_ms("1970-01-01"), Some(0));
        assert_eq!(date_to_ms("2026-11-25"), Some(1_795_564_800_000));
        assert_eq!(date_to_ms("2026-13-01"), None);
        assert_eq!(date_to_ms("yesterday"), None);
    }
}
