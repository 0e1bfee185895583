//! Filling templates (kept as files under `templates/`, one per section, each rendered from its
//! own context struct) and writing the CSV and markdown forms.

use edgebench_store::table::{self, TableFormat};
use minijinja::{Environment, context};

use crate::ReportError;
use crate::context::{Cell, OverviewSection, Provenance, ReportContext};
use crate::data::Run;

const TEMPLATES: &[(&str, &str)] = &[
    ("macros.html", include_str!("../templates/macros.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("overview.html", include_str!("../templates/overview.html")),
    (
        "small_models.html",
        include_str!("../templates/small_models.html"),
    ),
    (
        "seed_tables.html",
        include_str!("../templates/seed_tables.html"),
    ),
    ("fidelity.html", include_str!("../templates/fidelity.html")),
    (
        "projection_checks.html",
        include_str!("../templates/projection_checks.html"),
    ),
    (
        "categories.html",
        include_str!("../templates/categories.html"),
    ),
    (
        "concurrency.html",
        include_str!("../templates/concurrency.html"),
    ),
    ("kv.html", include_str!("../templates/kv.html")),
    (
        "quantization.html",
        include_str!("../templates/quantization.html"),
    ),
    ("backends.html", include_str!("../templates/backends.html")),
    ("claims.html", include_str!("../templates/claims.html")),
    ("roi.html", include_str!("../templates/roi.html")),
    ("runs.html", include_str!("../templates/runs.html")),
    (
        "sustained.html",
        include_str!("../templates/sustained.html"),
    ),
    ("goodput.html", include_str!("../templates/goodput.html")),
    ("remote.html", include_str!("../templates/remote.html")),
    ("devices.html", include_str!("../templates/devices.html")),
    ("lab.html", include_str!("../templates/lab.html")),
    ("series.html", include_str!("../templates/series.html")),
    (
        "regressions.html",
        include_str!("../templates/regressions.html"),
    ),
];

fn environment() -> Result<Environment<'static>, ReportError> {
    let mut env = Environment::new();
    // Case names wrap at their `::` separators in narrow columns (a zero-width space after each),
    // never inside a word; the text is still escaped when printed.
    env.add_filter("breakable", |name: String| name.replace("::", "::\u{200b}"));
    // Every `.html` template escapes what it prints (minijinja's default for that extension);
    // only our own SVG strings are marked safe.
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|source| ReportError::Template {
                template: (*name).into(),
                source: Box::new(source),
            })?;
    }
    Ok(env)
}

fn section<S: serde::Serialize>(
    env: &Environment<'_>,
    name: &str,
    s: &S,
) -> Result<String, ReportError> {
    env.get_template(name)
        .and_then(|t| t.render(context! { s => s }))
        .map_err(|source| ReportError::Template {
            template: name.into(),
            source: Box::new(source),
        })
}

/// A flagged series' own page (`series/NNNN.html`).
pub fn series_page(page: &crate::context::SeriesPage) -> Result<String, ReportError> {
    environment()?
        .get_template("series.html")
        .and_then(|t| t.render(context! { p => page }))
        .map_err(|source| ReportError::Template {
            template: "series.html".into(),
            source: Box::new(source),
        })
}

/// The whole page.
pub fn html(c: &ReportContext) -> Result<String, ReportError> {
    let env = environment()?;
    let sections = [
        (
            "overview",
            "Overview",
            section(&env, "overview.html", &c.overview)?,
        ),
        (
            "seed_tables",
            "The seed article's tables, answered",
            section(&env, "seed_tables.html", &c.seed_tables)?,
        ),
        (
            "fidelity",
            "Twins vs real weights",
            section(&env, "fidelity.html", &c.fidelity)?,
        ),
        (
            "projection_checks",
            "Projections checked against published measurements",
            section(&env, "projection_checks.html", &c.projection_checks)?,
        ),
        (
            "small_models",
            "Real small models, like for like",
            section(&env, "small_models.html", &c.small_models)?,
        ),
        (
            "categories",
            "Per prompt category",
            section(&env, "categories.html", &c.categories)?,
        ),
        (
            "concurrency",
            "Concurrency",
            section(&env, "concurrency.html", &c.concurrency)?,
        ),
        (
            "kv",
            "KV-cache optimization",
            section(&env, "kv.html", &c.kv)?,
        ),
        (
            "quantization",
            "Weight quantization: speed beside quality",
            section(&env, "quantization.html", &c.quantization)?,
        ),
        (
            "backends",
            "Backends",
            section(&env, "backends.html", &c.backends)?,
        ),
        (
            "runs",
            "Every run: roofline and harness overhead",
            section(&env, "runs.html", &c.runs)?,
        ),
        (
            "goodput",
            "Goodput under latency targets",
            section(&env, "goodput.html", &c.goodput)?,
        ),
        (
            "remote",
            "HTTP and hybrid (on device + cloud)",
            section(&env, "remote.html", &c.remote)?,
        ),
        (
            "sustained",
            "Sustained decode and throttling",
            section(&env, "sustained.html", &c.sustained)?,
        ),
        (
            "claims",
            "Claims vs measurement vs physics",
            section(&env, "claims.html", &c.claims)?,
        ),
        (
            "roi",
            "ROI: on device vs cloud",
            section(&env, "roi.html", &c.roi)?,
        ),
        (
            "devices",
            "Devices",
            section(&env, "devices.html", &c.devices)?,
        ),
        ("lab", "Lab overview", section(&env, "lab.html", &c.lab)?),
        (
            "regressions",
            "Regressions",
            section(&env, "regressions.html", &c.regressions)?,
        ),
    ];
    let sections: Vec<_> = sections
        .into_iter()
        .map(|(id, title, body)| context! { id, title, body => minijinja::Value::from_safe_string(body) })
        .collect();
    env.get_template("index.html")
        .and_then(|t| {
            t.render(context! {
                generated_at => c.generated_at,
                database => c.database,
                schema_version => c.schema_version,
                format => c.format,
                selection => c.selection,
                measured_runs => c.measured_runs,
                sections => sections,
            })
        })
        .map_err(|source| ReportError::Template {
            template: "index.html".into(),
            source: Box::new(source),
        })
}

/// One row per stored metric summary of each selected run.
pub fn csv(runs: &[&Run]) -> String {
    const HEADER: &[&str] = &[
        "run_id",
        "case",
        "model",
        "origin",
        "backend",
        "quant",
        "category",
        "concurrency",
        "kv_variant",
        "metric",
        "unit",
        "n",
        "median",
        "p95",
        "ci_low",
        "ci_high",
        "provenance",
    ];
    let mut rows = Vec::new();
    for r in runs {
        let (label, origin) = r
            .model
            .as_ref()
            .map_or(("", ""), |m| (m.label.as_str(), m.origin.as_str()));
        for (metric, m) in &r.metrics {
            rows.push(vec![
                r.id.clone(),
                r.case.name.clone(),
                label.into(),
                origin.into(),
                r.case.backend.to_string(),
                r.case.quant.to_string(),
                r.case.category.clone(),
                r.case.concurrency.to_string(),
                r.case.kv_variant.clone(),
                metric.clone(),
                m.unit.clone(),
                m.n.to_string(),
                m.median.to_string(),
                m.p95.to_string(),
                m.ci.map_or(String::new(), |c| c.0.to_string()),
                m.ci.map_or(String::new(), |c| c.1.to_string()),
                "measured".into(),
            ]);
        }
    }
    let mut out = Vec::new();
    // Writing to memory cannot fail.
    let _ = table::write_table(TableFormat::Csv, HEADER, rows, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// One cell as text: the value and its compact spread (`42.2 t/s ±1.2`).
fn cell_text(c: &Cell) -> String {
    if c.spread.is_empty() {
        c.text.clone()
    } else {
        format!("{} {}", c.text, c.spread)
    }
}

/// The overview as an aligned table for a terminal (what `cargo xtask bench` prints at the end),
/// in the spirit of llama-bench's markdown output: one row per metric, one column per model,
/// value ± half the 95% CI, the provenance as a one-letter tag (m measured, p projected,
/// c claimed, e estimated).
pub fn terminal_overview(c: &ReportContext) -> String {
    let mut text = aligned_model_table(&c.overview);
    if !c.small_models.columns.is_empty() {
        text.push_str("\nReal small models, like for like:\n");
        text.push_str(&aligned_model_table(&c.small_models));
    }
    text.push_str(
        "(m) measured: median ± half its 95% CI; (p) projected; (c) claimed. Twins are synthetic models with random weights, never the real ones.\n",
    );
    text
}

fn aligned_model_table(s: &OverviewSection) -> String {
    if s.columns.is_empty() {
        let why = if s.note.is_empty() {
            "no measured runs in the selection"
        } else {
            s.note.as_str()
        };
        return format!("overview: {why}\n");
    }
    let tag = |p: Provenance| match p {
        Provenance::Measured => " (m)",
        Provenance::Projected => " (p)",
        Provenance::Claimed => " (c)",
        Provenance::Estimated => " (e)",
        Provenance::None => "",
    };
    let mut header: Vec<&str> = vec!["metric"];
    header.extend(s.columns.iter().map(|m| m.label.as_str()));
    header.push("winner");
    let rows = s.rows.iter().map(|row| {
        let mut cells = vec![row.metric.clone()];
        cells.extend(
            row.cells
                .iter()
                .map(|x| format!("{}{}", cell_text(x), tag(x.provenance))),
        );
        cells.push(row.winner.clone());
        cells
    });
    let mut out = Vec::new();
    let _ = table::write_table(TableFormat::Aligned, &header, rows, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A markdown summary for pasting into a pull request.
pub fn markdown(c: &ReportContext) -> String {
    let mut out = format!(
        "## edgebench report\n\n{} measured runs from `{}` (schema {}), generated {}.\n\n",
        c.measured_runs,
        table::markdown_cell(&c.database),
        c.schema_version,
        c.generated_at
    );
    if c.overview.columns.is_empty() {
        out.push_str("No measured runs: no data.\n\n");
    } else {
        out.push_str("| | ");
        out.push_str(
            &c.overview
                .columns
                .iter()
                .map(|m| table::markdown_cell(&m.label))
                .collect::<Vec<_>>()
                .join(" | "),
        );
        out.push_str(" | winner |\n|---|");
        out.push_str(&"---|".repeat(c.overview.columns.len() + 1));
        out.push('\n');
        for row in &c.overview.rows {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                table::markdown_cell(&row.metric),
                row.cells
                    .iter()
                    .map(|x| table::markdown_cell(&cell_text(x)))
                    .collect::<Vec<_>>()
                    .join(" | "),
                table::markdown_cell(&row.winner)
            ));
        }
        out.push_str("\nTwins are scaled-down synthetic models: their numbers are never the real models'.\n\n");
    }
    out.push_str("### Published claims\n\n");
    for v in &c.claims.counts {
        out.push_str(&format!(
            "- {}: {}\n",
            table::markdown_cell(&v.verdict),
            v.n
        ));
    }
    out.push_str(&format!(
        "\n### Regressions\n\nBaseline: {}. {} comparisons, {} regressed{}.\n",
        table::markdown_cell(&c.regressions.baseline),
        c.regressions.rows.len(),
        c.regressions
            .rows
            .iter()
            .filter(|r| r.verdict == "regressed")
            .count(),
        c.regressions
            .threshold_pct
            .map_or(String::new(), |t| format!(
                ", {} beyond {t}%",
                c.regressions.regressed_beyond_threshold
            ))
    ));
    for r in c
        .regressions
        .rows
        .iter()
        .filter(|r| r.verdict == "regressed")
    {
        out.push_str(&format!(
            "- `{}` {}: {} → {} ({:+.1}%, CI {})\n",
            table::markdown_cell(&r.case),
            r.metric,
            r.baseline,
            r.current,
            r.change_pct,
            r.ci
        ));
    }
    out
}
