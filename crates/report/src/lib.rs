//! `cargo xtask report`: the results database rendered as a self-contained HTML page with SVG
//! plots, plus `report.json` (the context), `report.csv` (every measured metric) and
//! `summary.md` (for a PR).
//!
//! Data flows one way: [`data::load`] reads SQLite into plain values, [`build`] turns them into
//! the [`context`] (pure), [`render`] fills one template per section from its own context struct.

pub mod comparison;
pub mod context;
/// The store's read API, which the report renders from (it speaks no SQL of its own).
pub use edgebench_store::dataset as data;
pub mod inputs;
pub mod plots;
pub mod render;
pub mod sections;

use std::path::{Path, PathBuf};

use edgebench_core::registry::Registry;
use edgebench_core::run_facts::IntegrityVerdict;
use edgebench_core::scenario::PromptFormat;

use crate::context::{REPORT_CONTEXT_VERSION, ReportContext};
use crate::data::{Dataset, Run};

/// Seed of every bootstrap in a report (and `compare`): the same database gives the same numbers.
pub const SEED: u64 = 0x5EED_2026;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Data(#[from] edgebench_store::dataset::DatasetError),
    #[error("{file}: {message}")]
    Input { file: String, message: String },
    #[error("--baseline `{0}` matches no run or invocation in the database")]
    UnknownBaseline(String),
    #[error(
        "`{0}` matches no measured run or invocation in the database (give a run id or an invocation id, or a unique prefix of one)"
    )]
    UnknownRun(String),
    #[error("rendering template `{template}`: {source}")]
    Template {
        template: String,
        source: Box<minijinja::Error>,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which runs are compared with which for regressions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Baseline {
    /// Each case's latest run against its previous one (same device).
    #[default]
    Previous,
    /// An invocation id or run id (a prefix is enough): its runs are the baseline, the latest
    /// other run of each case is current.
    Run(String),
    /// Runs started before this time (ms since the epoch) are the baseline, later ones current.
    Since(i64),
}

/// Everything a report is made from besides the database.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub registry: Registry,
    pub claims: inputs::ClaimsFile,
    pub roi: inputs::RoiFile,
}

impl Inputs {
    /// Parses the three input files' contents (names for messages).
    pub fn parse(
        registry: (&str, &str),
        claims: (&str, &str),
        roi: (&str, &str),
    ) -> Result<Self, ReportError> {
        Ok(Self {
            registry: Registry::parse(registry.0, registry.1).map_err(|e| ReportError::Input {
                file: registry.0.into(),
                message: e.to_string(),
            })?,
            claims: inputs::parse_claims(claims.0, claims.1)?,
            roi: inputs::parse_roi(roi.0, roi.1)?,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub baseline: Baseline,
    /// Only runs on devices whose hostname or fingerprint starts with this.
    pub device: Option<String>,
    /// `--fail-on-regression PCT`: count regressions worse than this.
    pub fail_on_regression_pct: Option<f64>,
    /// `--window NIGHTS`: runs of the last NIGHTS nights in full, older ones as history from
    /// their summaries (a lab's year). Applies with the default baseline only: `--baseline`
    /// and `--since` may name runs of any age, so they read everything.
    pub window_nights: Option<u32>,
}

impl Selection {
    /// The window the data is read with.
    #[must_use]
    pub fn effective_window(&self) -> Option<u32> {
        match self.baseline {
            Baseline::Previous => self.window_nights,
            Baseline::Run(_) | Baseline::Since(_) => None,
        }
    }
}

/// Whether `r` is a measurement (passed, measured mode, with a model): what reports, nightly
/// verdicts and calibrations are made of.
#[must_use]
pub fn measured(r: &Run) -> bool {
    r.status == edgebench_store::RunStatus::Passed
        && r.mode == edgebench_store::RunMode::Measure
        && r.model.is_some()
}

/// Others' share of the machine's CPU time while `r` measured, when it makes the run contended
/// (`edgebench_core::contention`).
#[must_use]
pub fn contended(r: &Run) -> Option<f64> {
    r.metrics
        .get(edgebench_core::contention::OTHERS_CPU_SHARE_METRIC)
        .map(|m| m.median)
        .filter(|share| edgebench_core::contention::is_contended(*share))
}

/// A measured run that comparisons may use: not contended, and its output integrity not
/// failed. Such runs are shown (the every-run table says why) but never compared or judged.
#[must_use]
pub fn comparable(r: &Run) -> bool {
    measured(r)
        && contended(r).is_none()
        && r.integrity.as_ref().is_none_or(IntegrityVerdict::passed)
}

/// The latest measured run of each case (and device) among `runs`.
fn latest_per_case<'a>(runs: impl Iterator<Item = &'a Run>) -> Vec<&'a Run> {
    // Keyed by fingerprint, not id: the order must not depend on which host ingested first.
    let mut by_case: std::collections::BTreeMap<(String, String), &Run> = Default::default();
    for r in runs {
        let key = (r.case.name.clone(), r.device_fingerprint.clone());
        if by_case
            .get(&key)
            .is_none_or(|old| old.started_at_ms <= r.started_at_ms)
        {
            by_case.insert(key, r);
        }
    }
    by_case.into_values().collect()
}

/// Whether two runs fed their model the same kind of prompt: a chat-template run is never
/// compared with a raw one (runs stored before the format was recorded were raw).
fn same_prompt_format(a: &Run, b: &Run) -> bool {
    let format = |r: &Run| r.prompt_format.unwrap_or(PromptFormat::Raw);
    format(a) == format(b)
}

/// Each current run with the baseline run of the same case on the same device, if any.
fn pair_by_case<'a>(current: &[&'a Run], base: &[&'a Run]) -> Vec<(&'a Run, &'a Run)> {
    current
        .iter()
        .filter_map(|c| {
            base.iter()
                .find(|b| {
                    b.case.name == c.case.name
                        && b.device_id == c.device_id
                        && same_prompt_format(b, c)
                })
                .map(|b| (*c, *b))
        })
        .collect()
}

/// What a report read in full and what as history.
fn window_text(dataset: &Dataset) -> String {
    match &dataset.window {
        None => "every run read in full (raw samples where kept)".into(),
        Some(w) => format!(
            "runs of the last {} nights (since {}) read in full; {} older passed measured runs read as history from their stored summaries",
            w.nights,
            jiff::Timestamp::from_millisecond(w.start_ms).map_or_else(
                |_| w.start_ms.to_string(),
                |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()
            ),
            w.runs_before
        ),
    }
}

/// Builds the whole context. `generated_at` is handed in so the same database gives the same
/// context (snapshot tests).
pub fn build_context(
    dataset: &Dataset,
    inputs: &Inputs,
    selection: &Selection,
    database: &str,
    generated_at: &str,
) -> Result<ReportContext, ReportError> {
    let device_id_ok = |id: i64| match &selection.device {
        None => true,
        Some(d) => dataset.devices.iter().any(|dev| {
            dev.id == id
                && (dev.hostname.starts_with(d.as_str()) || dev.fingerprint.starts_with(d.as_str()))
        }),
    };
    let device_ok = |r: &Run| device_id_ok(r.device_id);
    let all: Vec<&Run> = dataset.runs.iter().filter(|r| device_ok(r)).collect();
    let candidates = all.iter().copied().filter(|r| comparable(r));
    // The every-run table shows contended runs too, marked, where comparisons leave them out.
    let shown = latest_per_case(all.iter().copied().filter(|r| measured(r)));
    let (current, pairs, baseline_text): (Vec<&Run>, Vec<(&Run, &Run)>, String) = match &selection
        .baseline
    {
        Baseline::Previous => {
            let current = latest_per_case(candidates.clone());
            // Each case's runs on each device, newest first: one pass, not one per case (a
            // lab's window holds ~10⁵ runs).
            let mut by_case: std::collections::HashMap<(&str, i64), Vec<&Run>> =
                std::collections::HashMap::new();
            // In reverse, so that among runs started at the same millisecond the stable sort
            // below keeps the last one first, as `latest_per_case` picks.
            for r in candidates.clone().collect::<Vec<_>>().into_iter().rev() {
                by_case
                    .entry((r.case.name.as_str(), r.device_id))
                    .or_default()
                    .push(r);
            }
            for runs in by_case.values_mut() {
                runs.sort_by_key(|r| std::cmp::Reverse(r.started_at_ms));
            }
            let pairs = current
                .iter()
                .filter_map(|c| {
                    // Another night's: `nightly --processes K` stores K runs of a case under
                    // one invocation.
                    by_case
                        .get(&(c.case.name.as_str(), c.device_id))?
                        .iter()
                        .find(|r| {
                            r.invocation != c.invocation
                                && r.started_at_ms < c.started_at_ms
                                && same_prompt_format(r, c)
                        })
                        .map(|b| (*c, *b))
                })
                .collect();
            (
                current,
                pairs,
                "each case's previous measured run on the same device, from another invocation"
                    .into(),
            )
        }
        Baseline::Run(id) => {
            let invocation = dataset
                .runs
                .iter()
                .find(|r| r.invocation.starts_with(id.as_str()) || r.id.starts_with(id.as_str()))
                .map(|r| r.invocation.clone())
                .ok_or_else(|| ReportError::UnknownBaseline(id.clone()))?;
            let base = latest_per_case(candidates.clone().filter(|r| r.invocation == invocation));
            let current =
                latest_per_case(candidates.clone().filter(|r| r.invocation != invocation));
            let pairs = pair_by_case(&current, &base);
            (current, pairs, format!("invocation {invocation}"))
        }
        Baseline::Since(t) => {
            let base = latest_per_case(candidates.clone().filter(|r| r.started_at_ms < *t));
            let current = latest_per_case(candidates.clone().filter(|r| r.started_at_ms >= *t));
            let pairs = pair_by_case(&current, &base);
            (
                current,
                pairs,
                format!("the latest run of each case before {t} ms since the epoch"),
            )
        }
    };
    let candidates: Vec<&Run> = candidates.collect();
    let history = sections::regressions::SeriesHistory::new(
        dataset.history.iter().filter(|p| device_id_ok(p.device_id)),
        &candidates,
    );
    let regressions = sections::regressions(
        &pairs,
        &current,
        &history,
        (&dataset.calibrations, &dataset.devices),
        baseline_text,
        selection.fail_on_regression_pct,
    );
    let lab = sections::lab(
        &current,
        &dataset.devices,
        &regressions,
        window_text(dataset),
    );
    let (roi, roi_best) = sections::roi(&current, &inputs.roi, &inputs.registry);
    let kv = sections::kv(&current, &inputs.registry);
    Ok(ReportContext {
        format: REPORT_CONTEXT_VERSION,
        generated_at: generated_at.into(),
        database: database.into(),
        schema_version: dataset.schema_version,
        selection: format!(
            "the latest passed measured run of each case{}; smoke runs are not measurements and are left out; {}",
            selection
                .device
                .as_ref()
                .map_or(String::new(), |d| format!(" on devices matching `{d}`")),
            window_text(dataset)
        ),
        measured_runs: current.len(),
        overview: sections::overview(&current, &inputs.registry, &inputs.claims)
            .with_kv_quality(&kv),
        small_models: sections::small_models(&current, &inputs.registry, &inputs.claims),
        projection_checks: sections::projection_checks(&inputs.claims),
        seed_tables: sections::seed_tables(&inputs.claims, &inputs.registry, &current, roi_best),
        fidelity: sections::fidelity(&current, &inputs.registry),
        categories: sections::categories(&current, &inputs.registry),
        concurrency: sections::concurrency(&current),
        kv,
        quantization: sections::quantizations(&current, &inputs.registry),
        backends: sections::backends(&current, &dataset.parity),
        runs: sections::runs(
            &shown,
            &dataset.devices,
            &sections::runs::replication_verdicts(&dataset.runs),
        ),
        sustained: sections::sustained(&current),
        goodput: sections::goodput(&current),
        remote: sections::remote(&current),
        claims: sections::claims_section(
            &inputs.claims,
            &inputs.registry,
            roi_best,
            &dataset.devices,
            &current,
        ),
        roi,
        devices: sections::devices(dataset, &all),
        regressions,
        lab,
    })
}

/// Paths of a written report.
#[derive(Debug, Clone)]
pub struct Written {
    pub index: PathBuf,
    pub json: PathBuf,
    pub csv: PathBuf,
    pub markdown: PathBuf,
    pub regressed_beyond_threshold: usize,
    /// One page per flagged series (`series/NNNN.html`).
    pub series_pages: Vec<PathBuf>,
    /// The overview as an aligned text table ([`render::terminal_overview`]).
    pub overview_text: String,
}

/// Loads the SQLite file `db`, builds the context and writes the four files into `out`.
pub fn write_report(
    db: &Path,
    out: &Path,
    inputs: &Inputs,
    selection: &Selection,
    generated_at: &str,
) -> Result<Written, ReportError> {
    write_report_at(
        &edgebench_store::Location::Sqlite(db.to_path_buf()),
        out,
        inputs,
        selection,
        generated_at,
    )
}

/// [`write_report`] from a results database at `db`: a SQLite file or a PostgreSQL database.
pub fn write_report_at(
    db: &edgebench_store::Location,
    out: &Path,
    inputs: &Inputs,
    selection: &Selection,
    generated_at: &str,
) -> Result<Written, ReportError> {
    let dataset = data::load_from_windowed(db, selection.effective_window())?;
    let context = build_context(&dataset, inputs, selection, &db.to_string(), generated_at)?;
    let current: Vec<&Run> = latest_per_case(dataset.runs.iter().filter(|r| measured(r)));
    let write = |name: &str, contents: String| -> Result<PathBuf, ReportError> {
        let path = out.join(name);
        std::fs::write(&path, contents).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    std::fs::create_dir_all(out).map_err(|source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let series_pages = if context.regressions.series_pages.is_empty() {
        Vec::new()
    } else {
        std::fs::create_dir_all(out.join("series")).map_err(|source| ReportError::Write {
            path: out.join("series"),
            source,
        })?;
        context
            .regressions
            .series_pages
            .iter()
            .map(|page| write(&page.path, render::series_page(page)?))
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(Written {
        series_pages,
        index: write("index.html", render::html(&context)?)?,
        json: write(
            "report.json",
            serde_json::to_string_pretty(&context).unwrap_or_default(),
        )?,
        csv: write("report.csv", render::csv(&current))?,
        markdown: write("summary.md", render::markdown(&context))?,
        regressed_beyond_threshold: context.regressions.regressed_beyond_threshold,
        overview_text: render::terminal_overview(&context),
    })
}
