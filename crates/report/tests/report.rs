//! The report over a real SQLite database written by the real store.

mod common;
mod lab;

use edgebench_report::{Baseline, Selection, build_context, data, write_report};

fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    common::write_fixture(&db);
    (dir, db)
}

/// The context as JSON with the SVG plots replaced by their size (they are checked elsewhere).
fn snapshot_value(ctx: &edgebench_report::context::ReportContext) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if k.ends_with("svg") {
                        let n = v.as_str().map_or(0, str::len);
                        *v = serde_json::Value::String(if n > 0 {
                            "<svg>".into()
                        } else {
                            String::new()
                        });
                    } else {
                        strip(v);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(ctx).expect("serializable");
    strip(&mut v);
    v
}

#[test]
fn context_snapshot() {
    let (_dir, db) = fixture();
    let dataset = data::load(&db).expect("load");
    let ctx = build_context(
        &dataset,
        &common::inputs(),
        &Selection::default(),
        "fixture.sqlite",
        "2026-11-25 00:00 UTC",
    )
    .expect("context");
    insta::assert_json_snapshot!("context", snapshot_value(&ctx));
}

#[test]
fn sections_hold_what_the_database_holds() {
    let (_dir, db) = fixture();
    let dataset = data::load(&db).expect("load");
    let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context");
    // Overview: MiMo and Phi-4 at their real dimensions only; the 1/16 twins are fixtures.
    let labels: Vec<&str> = ctx
        .overview
        .columns
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "mimo-7b (full-size twin, random weights)",
            "phi-4-mini (full-size twin, random weights)"
        ]
    );
    assert!(ctx.overview.note.is_empty(), "{}", ctx.overview.note);
    // The real small models have their own table (no twin there either).
    let small: Vec<&str> = ctx
        .small_models
        .columns
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(
        small,
        [common::EVIL, "gemma3-270m"],
        "ordered by registry id"
    );
    // Phi's full-size twin decodes at 8.8 t/s, MiMo's at 5.
    let speed = &ctx.overview.rows[0];
    let phi: f64 = speed.cells[1]
        .text
        .trim_end_matches(" t/s")
        .parse()
        .expect("number");
    assert!((8.0..9.6).contains(&phi), "{:?}", speed.cells[1]);
    // The provenance is a badge of its own; the detail says the rest, without repeating it.
    assert_eq!(
        speed.cells[1].provenance,
        edgebench_report::context::Provenance::Measured
    );
    assert!(
        speed.cells[1].detail.starts_with("median of n="),
        "{:?}",
        speed.cells[1]
    );
    // The compact spread beside the value: half the 95% CI of the median.
    assert!(
        speed.cells[1].spread.starts_with('±'),
        "{:?}",
        speed.cells[1]
    );
    for row in ctx.overview.rows.iter().chain(&ctx.small_models.rows) {
        for cell in &row.cells {
            for word in ["measured", "projected", "claimed", "estimated"] {
                assert!(
                    !cell.detail.starts_with(&format!("{word}:")),
                    "{}: the detail repeats the badge: {:?}",
                    row.metric,
                    cell
                );
            }
        }
    }
    assert_eq!(speed.winner, "phi-4-mini (full-size twin, random weights)");
    let row = |metric: &str| {
        ctx.overview
            .rows
            .iter()
            .find(|r| r.metric.starts_with(metric))
            .unwrap_or_else(|| panic!("row {metric}"))
    };
    // Phone projections come from the device class's published fit, with an interval and the
    // check against Phi-4-mini's own published measurement, which the fit cannot check
    // independently (it is the class's only one); MiMo's cell says it has none.
    let s24 = row("Projected t/s, Galaxy S24");
    assert_eq!(
        s24.cells[1].provenance,
        edgebench_report::context::Provenance::Projected
    );
    assert!(s24.cells[1].spread.contains('–'), "{:?}", s24.cells[1]);
    assert!(
        s24.cells[1]
            .detail
            .contains("fitted on phi4-mini-q4_0-android")
            && s24.cells[1]
                .detail
                .contains("nothing independent checks it"),
        "{:?}",
        s24.cells[1]
    );
    assert!(
        s24.cells[0]
            .detail
            .contains("no published measurement of mimo-7b"),
        "{:?}",
        s24.cells[0]
    );
    // 77 GB/s × a 26–40% efficiency ÷ 2.49 GB: 8–12 t/s, not the seed's 35–42.
    let projected: f64 = s24.cells[1]
        .text
        .trim_end_matches(" t/s")
        .parse()
        .expect("number");
    assert!((8.0..12.5).contains(&projected), "{:?}", s24.cells[1]);
    // Fit verdicts: MiMo fits a Galaxy S24 at 4K, not at 128K (beyond its 32K context).
    let fits = row("Fits Galaxy S24");
    assert!(
        fits.cells[0].text.starts_with("4K ✓") && fits.cells[0].text.contains("128K n/a"),
        "{:?}",
        fits.cells[0]
    );
    assert!(fits.cells[1].text.contains("128K"), "{:?}", fits.cells[1]);
    // No accuracy for random weights, and so no winner.
    let accuracy = row("Accuracy (MMLU)");
    assert!(
        accuracy
            .cells
            .iter()
            .all(|c| c.text == "n/a (random weights)"),
        "{:?}",
        accuracy.cells
    );
    assert_eq!(accuracy.winner, "—");
    // The projection checks: the Apple class has two measurements, each checked against the
    // other's fit; the Android one has only itself.
    let checks = &ctx.projection_checks;
    assert_eq!(checks.rows.len(), 3, "{:?}", checks.rows);
    assert!(
        checks
            .rows
            .iter()
            .filter(|r| r.measurement.contains("m2max"))
            .all(|r| r.ratio.is_some())
    );
    assert!(
        checks
            .rows
            .iter()
            .any(|r| r.measurement == "phi4-mini-q4_0-android" && r.ratio.is_none())
    );
    // The seed's two tables, every row for both models, each answered.
    let seed = &ctx.seed_tables.rows;
    assert_eq!(seed.len(), 32, "8 + 8 rows × 2 models: {seed:#?}");
    assert_eq!(seed.iter().filter(|r| r.table == "Overview").count(), 16);
    for r in seed {
        assert_ne!(r.answer.text, "", "{r:?}");
        assert_eq!(
            r.claimed.provenance,
            edgebench_report::context::Provenance::Claimed
        );
    }
    let seed_row = |row: &str, model: &str| {
        seed.iter()
            .find(|r| r.row.starts_with(row) && r.model == model)
            .unwrap_or_else(|| panic!("{row} {model}"))
    };
    let code = seed_row("Code Generation, Galaxy S24", "phi-4-mini");
    assert_eq!(code.verdict, "physically impossible", "{code:?}");
    assert_eq!(
        code.answer.provenance,
        edgebench_report::context::Provenance::Projected
    );
    assert!(
        code.answer
            .detail
            .contains("measured here on this category at full size"),
        "{code:?}"
    );
    assert_eq!(
        seed_row("Accuracy", "mimo-7b").answer.text,
        "n/a (random weights)"
    );
    let turn = seed_row("Multi-turn", "phi-4-mini");
    assert_eq!(
        turn.answer.provenance,
        edgebench_report::context::Provenance::Measured,
        "{turn:?}"
    );
    assert!(
        seed_row("Quantization support", "phi-4-mini")
            .arithmetic
            .contains("GPTQ is not a format llama.cpp reads")
    );
    // Twins vs real weights: Gemma's copy decodes 1% slower than the real file, within 2%.
    let fidelity = &ctx.fidelity.rows;
    assert_eq!(fidelity.len(), 1, "{fidelity:?}");
    assert_eq!(fidelity[0].model, "gemma3-270m Q4_K_M");
    let g: f64 = fidelity[0].generation.text.parse().expect("ratio");
    assert!((0.975..1.0).contains(&g), "{:?}", fidelity[0]);
    assert_eq!(fidelity[0].verdict, "within 2%", "{:?}", fidelity[0]);
    // The copy is a twin: it is in no model table.
    assert!(
        !ctx.small_models
            .columns
            .iter()
            .any(|c| c.label.contains("twin"))
    );
    // KV: the q8_0 variant halves the measured cache and is ~8% faster, with a verdict.
    let kv = ctx
        .kv
        .measured
        .iter()
        .find(|r| r.group.contains("mimo"))
        .expect("kv row");
    assert!(kv.kv_memory.text.contains("-47%"), "{:?}", kv.kv_memory);
    assert!(
        kv.tokens_per_s.detail.contains("higher"),
        "{:?}",
        kv.tokens_per_s
    );
    // Quality beside speed: a twin's KLD means nothing; a real model's is banded.
    assert_eq!(kv.mean_kld.text, "n/a (random weights)");
    let real = ctx
        .kv
        .measured
        .iter()
        .find(|r| r.group.contains("gemma3-270m ·") || r.group.contains("gemma3"))
        .filter(|r| !r.group.contains("twin"))
        .expect("a real model's kv row");
    assert_eq!(real.mean_kld.text, "0.0042 (above q8_0-level)");
    assert!(
        real.mean_kld.detail.contains("4080 positions"),
        "{:?}",
        real.mean_kld
    );
    assert_eq!(real.same_top1.text, "94.5%");
    assert!(!real.prefill.text.is_empty() && real.prefill.text != "—");
    assert!(
        ctx.overview.kv_quality.contains("mean KLD of 0.0042")
            && ctx.overview.kv_quality.contains("gemma3"),
        "the overview names the fastest variant's quality cost: {}",
        ctx.overview.kv_quality
    );
    assert!(
        ctx.kv.quality_svg.contains("<svg"),
        "the speed-against-KLD plot is drawn"
    );
    assert!(
        ctx.kv
            .projected
            .iter()
            .any(|p| p.model.starts_with("mimo-7b (real size"))
    );
    // Concurrency: three levels for each model, with the rejected request counted.
    let series = ctx
        .concurrency
        .series
        .iter()
        .find(|s| s.label.contains("gemma3"))
        .expect("series");
    assert_eq!(
        series
            .rows
            .iter()
            .map(|r| r.concurrency)
            .collect::<Vec<_>>(),
        [1, 4, 16]
    );
    assert_eq!(series.rows[1].rejected, 1);
    // Claims: the seed's phone speeds are impossible at 77 GB/s.
    let claim = ctx
        .claims
        .rows
        .iter()
        .find(|c| c.id == "mimo-s8g3-tps")
        .expect("claim");
    assert_eq!(
        claim.verdict, "physically impossible",
        "{}",
        claim.arithmetic
    );
    let context = ctx
        .claims
        .rows
        .iter()
        .find(|c| c.id == "phi4-context")
        .expect("claim");
    assert!(context.verdict.starts_with("reproduced"));
    assert!(
        ctx.claims
            .devices
            .iter()
            .any(|d| d.device.contains("this lab") && d.bandwidth.text == "20.0 GB/s")
    );
    // ROI: measured models, and energy labelled as an estimate.
    let roi = ctx
        .roi
        .rows
        .iter()
        .find(|r| r.model.starts_with("gemma3"))
        .expect("roi row");
    assert_eq!(
        roi.joules_per_token.provenance,
        edgebench_report::context::Provenance::Estimated
    );
    assert!(!ctx.roi.plot_svg.is_empty());
    // Devices: the aborted run is listed with its stderr.
    assert!(
        ctx.devices
            .failures
            .iter()
            .any(|f| f.stderr_tail.contains("boom"))
    );
    // Backends: llama.cpp and candle on the same case, and the parity row.
    assert!(
        ctx.backends
            .rows
            .iter()
            .any(|r| r.case.contains("gemma3-270m"))
    );
    assert_eq!(ctx.backends.parity[0].teacher_forced, "31/32 (96.9%)");
    // Beside it, the same engines as a quality pass measures them.
    assert_eq!(
        ctx.backends.parity[0].mean_kld.text,
        "0.0042 (above q8_0-level)"
    );
    assert_eq!(ctx.backends.parity[0].same_top1.text, "94.5%");
}

#[test]
fn regressions_use_the_ratio_ci_and_the_threshold() {
    let (_dir, db) = fixture();
    let dataset = data::load(&db).expect("load");
    let inputs = common::inputs();
    let with = |pct| {
        let sel = Selection {
            fail_on_regression_pct: Some(pct),
            ..Selection::default()
        };
        build_context(&dataset, &inputs, &sel, "x", "t")
            .expect("context")
            .regressions
    };
    let r = with(10.0);
    let speed = r
        .rows
        .iter()
        .find(|r| r.metric == "generation tokens/s")
        .expect("row");
    assert_eq!(speed.verdict, "regressed");
    assert!(
        (speed.change_pct + 30.0).abs() < 5.0,
        "{}",
        speed.change_pct
    );
    assert!(r.regressed_beyond_threshold >= 1);
    assert_eq!(
        with(60.0).regressed_beyond_threshold,
        0,
        "a 30% slowdown is within 60%"
    );
    // An explicit baseline invocation gives the same pair; an unknown one is an error.
    let sel = Selection {
        baseline: Baseline::Run("inv-1".into()),
        ..Selection::default()
    };
    let ctx = build_context(&dataset, &inputs, &sel, "x", "t").expect("context");
    assert!(
        ctx.regressions
            .rows
            .iter()
            .any(|r| r.verdict == "regressed")
    );
    let sel = Selection {
        baseline: Baseline::Run("nope".into()),
        ..Selection::default()
    };
    let err = build_context(&dataset, &inputs, &sel, "x", "t").expect_err("unknown");
    assert!(err.to_string().contains("`nope`"), "{err}");
}

#[test]
fn every_database_string_is_escaped() {
    let (dir, db) = fixture();
    let out = dir.path().join("report");
    let written =
        write_report(&db, &out, &common::inputs(), &Selection::default(), "t").expect("report");
    let html = std::fs::read_to_string(&written.index).expect("html");
    assert!(
        !html.contains(common::EVIL),
        "a model label reached the page unescaped"
    );
    assert!(
        !html.contains("<b>boom</b>"),
        "stderr reached the page unescaped"
    );
    // minijinja escapes `/` too (`&#x2f;`).
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;"),
        "the label is shown, escaped"
    );
    assert!(html.contains("&lt;b&gt;boom&lt;"));
    // The only <script> is our own table sorter.
    assert_eq!(html.matches("<script").count(), 1);
    let csv = std::fs::read_to_string(&written.csv).expect("csv");
    assert!(csv.lines().count() > 10 && csv.starts_with("run_id,case,model"));
    let md = std::fs::read_to_string(&written.markdown).expect("md");
    assert!(md.contains("| Generation tokens/s"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written.json).expect("json"))
            .expect("valid json");
    assert_eq!(
        json["format"],
        edgebench_report::context::REPORT_CONTEXT_VERSION
    );
}

#[test]
fn an_empty_database_renders_no_data_sections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("empty.sqlite");
    edgebench_store::Store::open(&db).expect("create");
    let written = write_report(
        &db,
        &dir.path().join("out"),
        &common::inputs(),
        &Selection::default(),
        "t",
    )
    .expect("report");
    let html = std::fs::read_to_string(&written.index).expect("html");
    assert!(html.matches("No data:").count() >= 7, "{html}");
    // Claims are still checked against physics without any measurement.
    assert!(html.contains("physically impossible"));
    let md = std::fs::read_to_string(&written.markdown).expect("md");
    assert!(md.contains("no data"), "{md}");
}

#[test]
fn a_missing_database_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("nowhere.sqlite");
    let err = write_report(
        &db,
        dir.path(),
        &common::inputs(),
        &Selection::default(),
        "t",
    )
    .expect_err("missing");
    assert!(err.to_string().contains("nowhere.sqlite"), "{err}");
    assert!(!db.exists(), "a report never creates a database");
}

/// Stores a passed MMLU run of `registry_id` (31.25% of 96 questions) in the database at `db`.
fn insert_accuracy_run(db: &std::path::Path, registry_id: &str) {
    use edgebench_store::{CaseRow, MetricRow, NewRunRow, RunEndRow, RunStatus, Store};
    let mut store = Store::open(db).expect("open");
    let model_id = store
        .connection()
        .query_row(
            "SELECT id FROM models WHERE registry_id = ?1",
            [registry_id],
            |r| r.get(0),
        )
        .expect("model");
    let run_id = format!("accuracy-run-{registry_id}");
    let device_id = store
        .connection()
        .query_row("SELECT id FROM devices LIMIT 1", [], |r| r.get(0))
        .expect("device");
    let case_id = store
        .upsert_case(&CaseRow {
            case_key: format!("mmlu-case-{registry_id}"),
            category: "accuracy".into(),
            context: 2048,
            prompt_tokens: 2000,
            generate_tokens: 1,
            ..CaseRow::named(&format!("mmlu::{registry_id}::Q4_0::llama_cpp::c1"))
        })
        .expect("case");
    store
        .begin_run(&NewRunRow {
            id: run_id.clone(),
            invocation: "acc".into(),
            case_id,
            device_id,
            model_id: Some(model_id),
            started_at_ms: 10,
            tool_version: "t".into(),
            git_commit: "t".into(),
            scenario_file: "scenarios/mmlu.toml".into(),
            scenario_sha256: "00".into(),
            seed: 1,
            warmup: 0,
            repetitions: 1,
            host: "lab-host".into(),
            pid: 1,
            mode: "measure".into(),
        })
        .expect("begin");
    let acc = MetricRow {
        metric: "mmlu_acc".into(),
        unit: "fraction".into(),
        n: 96,
        mean: 0.3125,
        median: 0.3125,
        stddev: 0.466,
        cv: 1.5,
        min: 0.0,
        max: 1.0,
        p90: 1.0,
        p95: 1.0,
        p99: 1.0,
        ci: Some((0.3125 - 1.96 * 0.0476, 0.3125 + 1.96 * 0.0476, 0.95)),
        outliers_low: 0,
        outliers_high: 0,
    };
    store
        .finish_run(
            &run_id,
            &RunEndRow {
                stop_reason: Some("fixed".into()),
                metrics: vec![acc],
                ..RunEndRow::new(RunStatus::Passed, 20)
            },
            &[],
        )
        .expect("finish");
}

#[test]
fn an_accuracy_run_fills_a_real_models_accuracy_cell_and_a_twins_stays_n_a() {
    let (_dir, db) = fixture();
    insert_accuracy_run(&db, "gemma3-270m");
    // A database may hold a twin's score (an older build scored twins): never shown.
    insert_accuracy_run(&db, "phi-4-mini-full-twin");
    let dataset = data::load(&db).expect("load");
    let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context");
    let accuracy = |section: &edgebench_report::context::OverviewSection| {
        section
            .rows
            .iter()
            .find(|r| r.metric == "Accuracy (MMLU)")
            .expect("accuracy row")
            .clone()
    };
    let small = accuracy(&ctx.small_models);
    let gemma = ctx
        .small_models
        .columns
        .iter()
        .position(|c| c.label == "gemma3-270m")
        .expect("gemma column");
    let cell = serde_json::to_value(&small.cells[gemma]).expect("json");
    assert_eq!(
        (&cell["text"], &cell["spread"]),
        (&"31.2%".into(), &"±4.8".into()),
        "{cell}"
    );
    assert!(cell.to_string().contains("96 questions"), "{cell}");
    assert!(
        cell.to_string().to_lowercase().contains("measured"),
        "{cell}"
    );
    let empty = serde_json::to_value(&small.cells[1 - gemma]).expect("json");
    assert!(empty.to_string().contains("no accuracy runs"), "{empty}");
    let headline = accuracy(&ctx.overview);
    let phi = ctx
        .overview
        .columns
        .iter()
        .position(|c| c.label.starts_with("phi-4-mini (full-size twin"))
        .expect("phi column");
    assert_eq!(headline.cells[phi].text, "n/a (random weights)");
    assert!(
        headline.cells[phi].detail.contains("phi-4-mini-full-twin"),
        "{:?}",
        headline.cells[phi]
    );
    assert_eq!(headline.winner, "—");
}

#[test]
fn every_run_shows_its_roofline_share_and_harness_overhead() {
    let (_dir, db) = fixture();
    let dataset = data::load(&db).expect("load");
    let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context");
    let rows = &ctx.runs.rows;
    assert!(!rows.is_empty());
    // Every generation row carries the roofline share: the fixture stores one for every run.
    for r in rows {
        assert!(
            r.roofline.text.ends_with('%'),
            "{}: {:?}",
            r.case,
            r.roofline
        );
    }
    let gemma = rows
        .iter()
        .find(|r| {
            r.case
                .starts_with("code_generation::gemma3-270m::Q4_K_M::llama_cpp::c1")
        })
        .expect("gemma llama.cpp row");
    assert_eq!(gemma.roofline.text, "50%");
    assert!(
        gemma.roofline.detail.contains("bound ≈"),
        "{:?}",
        gemma.roofline
    );
    // Harness 2.010 s vs engine 2.000 s for the same tokens: 0.9950, with n and spread.
    assert_eq!(gemma.overhead_generation.text, "0.9950");
    assert!(
        gemma.overhead_generation.detail.contains("n=3"),
        "{:?}",
        gemma.overhead_generation
    );
    // Prefill 1.005–1.007 s vs 1.000 s: median 1/1.006.
    assert_eq!(gemma.overhead_prefill.text, format!("{:.4}", 1.0 / 1.006));
    // candle keeps no counters; twins above 100% are explained.
    let candle = rows
        .iter()
        .find(|r| r.case.contains("::candle::"))
        .expect("candle row");
    assert!(
        candle
            .overhead_generation
            .detail
            .contains("keeps no counters")
    );
    let twin = rows
        .iter()
        .find(|r| r.model.contains("twin") && r.roofline.text == "130%")
        .expect("twin row");
    assert!(twin.note.contains("cache"), "{}", twin.note);
    // The probe beside each run: its spread next to the share, too wide on the twins' runs.
    assert_eq!(gemma.roofline.spread, "probe ±5%");
    assert!(
        gemma.roofline.detail.contains("6 repetitions"),
        "{:?}",
        gemma.roofline
    );
    assert!(!gemma.note.contains("probe spread"), "{}", gemma.note);
    assert_eq!(twin.roofline.spread, "probe ±20%");
    assert!(twin.note.contains("probe spread 40%"), "{}", twin.note);
    let html = edgebench_report::render::html(&ctx).expect("html");
    assert!(html.contains("id=\"runs-table\"") && html.contains("0.9950"));
}

#[test]
fn a_generated_lab_history_renders() {
    // The bench's generator at 1/100 scale: 10 runs of 10,000 samples.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("lab.sqlite");
    let spec = edgebench_store::synthetic::HistorySpec {
        runs: 20,
        cases: 10,
        requests_per_run: 5,
        latencies_per_request: 100,
        seed: 9,
    };
    let mut store = edgebench_store::Store::open(&db).expect("open");
    let samples = edgebench_store::synthetic::write_history(&mut store, &spec).expect("write");
    drop(store);
    assert_eq!(samples, spec.samples());
    let dataset = data::load(&db).expect("load");
    assert_eq!(dataset.runs.len(), 20);
    let stored: usize = dataset.runs.iter().map(|r| r.samples.tpot_ms.len()).sum();
    assert_eq!(stored, samples);
    let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context");
    // Ten cases, two nights: ten current runs, each compared with the night before.
    assert_eq!(ctx.measured_runs, 10);
    assert_eq!(ctx.runs.rows.len(), 10);
    assert!(ctx.regressions.rows.len() >= 10);
    assert!(ctx.runs.rows.iter().all(|r| r.model.contains("synthetic")));
}

#[test]
fn an_older_database_is_read_through_a_private_copy_and_never_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old-v5.sqlite");
    // A database as schema version 5 wrote it, with one passed run and a `running` one whose
    // process is long gone (opening it with the store would mark that run aborted).
    edgebench_store::synthetic::schema_v5_database(&old, &edgebench_store::local_host())
        .expect("old database");
    let before = std::fs::read(&old).expect("read");
    let dataset = data::load(&old).expect("an older database loads");
    let statuses: Vec<(&str, &str)> = dataset
        .runs
        .iter()
        .map(|r| (r.id.as_str(), r.status.as_str()))
        .collect();
    assert!(statuses.contains(&("old-run", "passed")), "{statuses:?}");
    // Read as it is: whether the stale run died is for its own host's writer to decide.
    assert!(statuses.contains(&("stale-run", "running")), "{statuses:?}");
    assert_eq!(
        std::fs::read(&old).expect("read"),
        before,
        "the report wrote to the database it reads"
    );
    for suffix in ["-wal", "-shm"] {
        assert!(!dir.path().join(format!("old-v5.sqlite{suffix}")).exists());
    }
}

#[test]
fn the_terminal_overview_is_an_aligned_table_with_value_spread_and_provenance() {
    let (_dir, db) = fixture();
    let out = tempfile::tempdir().expect("tempdir");
    let written = write_report(
        &db,
        out.path(),
        &common::inputs(),
        &Selection::default(),
        "t",
    )
    .expect("report");
    let text = &written.overview_text;
    let (headline, small) = text
        .split_once("Real small models, like for like:")
        .expect("the small models' table follows the overview");
    let lines: Vec<&str> = headline.lines().filter(|l| l.starts_with('|')).collect();
    assert!(lines.len() >= 7, "header, rule and rows: {text}");
    // Aligned: every table line has the same width in characters.
    let width = lines[0].chars().count();
    assert!(
        lines.iter().all(|l| l.chars().count() == width),
        "columns are padded to one width:\n{text}"
    );
    assert!(
        lines[0].contains("mimo-7b (full-size twin, random weights)")
            && lines[0].contains("winner")
    );
    assert!(
        !text.contains("twin 1/16"),
        "1/16 twins are fixtures: {text}"
    );
    assert!(small.contains("gemma3-270m"), "{small}");
    let speed = lines
        .iter()
        .find(|l| l.contains("Generation tokens/s"))
        .expect("speed row");
    assert!(
        speed.contains(" t/s ±") && speed.contains("(m)"),
        "value, spread and provenance tag: {speed}"
    );
    assert!(
        text.contains("Twins are synthetic models with random weights"),
        "{text}"
    );
}

#[test]
fn compare_pairs_two_invocations_by_case_and_judges_with_the_ratio_ci() {
    let (_dir, db) = fixture();
    let dataset = data::load(&db).expect("load");
    let c =
        edgebench_report::comparison::compare(&dataset, "inv-1", "inv-2", edgebench_report::SEED)
            .expect("compare");
    assert!(c.a.starts_with("invocation inv-1") && c.b.starts_with("invocation inv-2"));
    // inv-2 holds one case, Phi-4's twin on code generation, 30% slower.
    let speed = c
        .rows
        .iter()
        .find(|r| r.metric == "generation t/s")
        .expect("speed row");
    assert!(
        speed.case.starts_with("code_generation::phi-4-mini-twin16"),
        "{speed:?}"
    );
    assert!((speed.ratio - 0.7).abs() < 0.05, "{speed:?}");
    assert_eq!(speed.verdict, "slower");
    let (lo, hi) = speed.ci.expect("an interval");
    assert!(
        lo <= speed.ratio && speed.ratio <= hi && hi < 1.0,
        "{speed:?}"
    );
    assert!(
        c.rows.iter().all(|r| r.case == speed.case),
        "only the case both invocations measured is compared"
    );
    assert!(
        !c.unpaired.is_empty(),
        "inv-1's other cases are listed as unpaired"
    );
    // The same run against itself: no change, ratio 1.
    let run = dataset
        .runs
        .iter()
        .find(|r| r.invocation == "inv-2")
        .expect("run");
    let same =
        edgebench_report::comparison::compare(&dataset, &run.id, &run.id, 1).expect("compare");
    assert!(
        same.rows
            .iter()
            .all(|r| (r.ratio - 1.0).abs() < 1e-12 && r.verdict == "no change")
    );
    // An id that names nothing is an error naming it.
    let err =
        edgebench_report::comparison::compare(&dataset, "nope", "inv-2", 1).expect_err("unknown");
    assert!(err.to_string().contains("`nope`"), "{err}");
}

#[test]
fn a_first_run_of_a_case_is_listed_as_the_baseline_of_the_next() {
    let (_dir, db) = fixture();
    let dataset = data::load(&db).expect("load");
    let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context");
    let r = &ctx.regressions;
    // Only Phi-4's twin's code-generation case ran twice; every other case is a first run.
    assert!(
        r.rows
            .iter()
            .all(|row| row.case.starts_with("code_generation::phi-4-mini-twin16"))
    );
    assert!(!r.first_runs.is_empty());
    assert!(
        r.first_runs.iter().all(|f| !f
            .case
            .starts_with("code_generation::phi-4-mini-twin16::Q4_0::llama_cpp::c1")),
        "a compared case is no first run"
    );
    assert!(
        r.first_runs
            .iter()
            .all(|f| f.generation.text.ends_with("t/s"))
    );
}

/// `nights` nights of 5 cases from the lab generator (seed 4).
fn five_case_history(nights: usize) -> edgebench_store::synthetic::HistorySpec {
    edgebench_store::synthetic::HistorySpec {
        runs: 5 * nights,
        cases: 5,
        requests_per_run: 5,
        latencies_per_request: 40,
        seed: 4,
    }
}

/// Every decode step of `run` a quarter longer (tokens/s 20% lower).
fn slow_decode_by_a_quarter(run: &mut edgebench_store::synthetic::GeneratedRun) {
    for row in &mut run.rows {
        row.decode_ns = row.decode_ns * 5 / 4;
    }
}

#[test]
fn with_enough_history_generation_speed_is_judged_against_it_and_a_real_step_is_flagged() {
    // 40 nights of 5 cases, each night's speed drifting 0–4% (the generator's sawtooth): the
    // two-run test sees the drift; the history calls it noise. Then case 0 slows by 20% for
    // its last 3 nights: the history flags it.
    let spec = five_case_history(40);
    let steady = edgebench_store::synthetic::generate(&spec);
    let r = regressions_of(&steady);
    let speed: Vec<_> = r
        .rows
        .iter()
        .filter(|r| r.metric == "generation tokens/s")
        .collect();
    assert!(!speed.is_empty());
    for row in &speed {
        assert!(row.basis.starts_with("history of "), "{row:?}");
        assert_ne!(row.verdict, "regressed", "{row:?}");
    }
    assert!(r.history_test.contains("CUSUM"));
    let last_night = steady.iter().map(|g| g.night).max().expect("nights");
    let mut stepped = steady.clone();
    for run in stepped
        .iter_mut()
        .filter(|g| g.case == 0 && g.night > last_night - 3)
    {
        slow_decode_by_a_quarter(run);
    }
    let r = regressions_of(&stepped);
    let flagged: Vec<_> = r
        .rows
        .iter()
        .filter(|r| r.metric == "generation tokens/s" && r.verdict == "regressed")
        .collect();
    assert_eq!(flagged.len(), 1, "{:#?}", r.rows);
    assert!(flagged[0].change_pct < -15.0, "{:?}", flagged[0]);
    assert!(
        flagged[0].basis.starts_with("history of "),
        "{:?}",
        flagged[0]
    );
    // Its baseline column is the reference the change is measured against, not one run.
    assert!(
        flagged[0].baseline.contains("(reference of "),
        "{:?}",
        flagged[0]
    );
    // Flagged, so plotted: the runs as points, the band, the change point in red.
    let svg = &flagged[0].history_svg;
    assert!(
        svg.starts_with("<svg") && svg.contains("since run"),
        "{svg}"
    );
    assert!(svg.contains("#D62728"), "the change is drawn in red");
    assert!(
        r.rows
            .iter()
            .filter(|r| r.verdict == "noise")
            .all(|r| r.history_svg.is_empty())
    );
}

#[test]
fn a_full_size_twins_kv_delta_is_projected_to_every_device_profile_at_the_shares_measured_here() {
    let (_dir, db) = fixture();
    common::write_full_size_kv(&db);
    let dataset = data::load(&db).expect("load");
    let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context");
    let profiles: Vec<_> = edgebench_core::device_profile::PROFILES
        .iter()
        .filter(|p| p.bandwidth_bytes_per_s.is_some())
        .collect();
    let full: Vec<_> = ctx
        .kv
        .projected
        .iter()
        .filter(|r| {
            r.model.starts_with("phi-4-mini ") && r.variant.starts_with("f16/f16 → q8_0/q8_0")
        })
        .filter(|r| r.context == 512)
        .collect();
    assert_eq!(
        full.len(),
        profiles.len(),
        "one row per device profile: {full:#?}"
    );
    for (row, profile) in full.iter().zip(&profiles) {
        assert!(row.device.starts_with(profile.label), "{row:?}");
        let cell = &row.at_measured_share;
        assert_eq!(
            cell.provenance,
            edgebench_report::context::Provenance::Projected,
            "{cell:?}"
        );
        // 60% and 45% of the roofline beside it: the variant ÷ baseline is 0.75 × the
        // roofline ratio, which for q8_0 at 512 positions is a little above 1.
        let speeds = |text: &str| -> Vec<f64> {
            text.split(" t/s")
                .next()
                .expect("speeds")
                .split(" → ")
                .map(|v| v.replace(',', "").parse().expect("a speed"))
                .collect()
        };
        let (measured, roofline) = (speeds(&cell.text), speeds(&row.decode_roofline));
        let (base, var) = (measured[0], measured[1]);
        assert!((base / roofline[0] - 0.6).abs() < 0.02, "{row:?}");
        assert!((var / roofline[1] - 0.45).abs() < 0.02, "{row:?}");
        assert!(
            cell.detail.contains("60%") && cell.detail.contains("45%"),
            "{cell:?}"
        );
    }
    // A 1/16 twin's KV rows are projected too, but say why no measured share applies.
    let twin = ctx
        .kv
        .projected
        .iter()
        .find(|r| r.context == 4096)
        .expect("the 1/16 twins' KV rows");
    assert_eq!(
        twin.at_measured_share.provenance,
        edgebench_report::context::Provenance::None,
        "{twin:?}"
    );
}

/// `spec`'s runs, each night measured by `processes` harness processes under the night's one
/// invocation (as `nightly --processes K` stores them); process `k` of night `n` has an id
/// starting `n{n:03}p{k}`.
fn nights_of_processes(
    spec: &edgebench_store::synthetic::HistorySpec,
    processes: usize,
) -> Vec<edgebench_store::synthetic::GeneratedRun> {
    edgebench_store::synthetic::generate(spec)
        .into_iter()
        .flat_map(|run| {
            (0..processes).map(move |k| {
                let mut copy = run.clone();
                copy.id = format!("n{:03}p{k}-{}", run.night, run.id);
                let shift = 1_000 * k as i64;
                copy.started_at_ms += shift;
                copy.end.ended_at_ms += shift;
                copy
            })
        })
        .collect()
}

fn regressions_of(
    runs: &[edgebench_store::synthetic::GeneratedRun],
) -> edgebench_report::context::RegressionSection {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("lab.sqlite");
    let mut store = edgebench_store::Store::open(&db).expect("open");
    edgebench_store::synthetic::write_runs(&mut store, runs).expect("write");
    drop(store);
    let dataset = data::load(&db).expect("load");
    build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context")
        .regressions
}

#[test]
fn a_nights_runs_count_as_their_median_so_one_disturbed_process_is_no_regression() {
    let spec = five_case_history(40);
    let steady = nights_of_processes(&spec, 3);
    let last_night = steady.iter().map(|g| g.night).max().expect("nights");
    // Case 0's last 3 nights slowed by 20% in `slowed` of their 3 processes.
    let slow = |slowed: usize| {
        let mut runs = steady.clone();
        for run in runs.iter_mut().filter(|g| {
            g.case == 0
                && g.night > last_night - 3
                && (0..slowed).any(|k| g.id.starts_with(&format!("n{:03}p{k}", g.night)))
        }) {
            slow_decode_by_a_quarter(run);
        }
        regressions_of(&runs)
    };
    let speed_rows = |r: &edgebench_report::context::RegressionSection| -> Vec<_> {
        r.rows
            .iter()
            .filter(|row| row.metric == "generation tokens/s")
            .cloned()
            .collect()
    };

    let r = regressions_of(&steady);
    let speed = speed_rows(&r);
    assert_eq!(speed.len(), 5, "{:#?}", r.rows);
    for row in &speed {
        assert!(
            row.basis.starts_with("history of 40 nights (120 runs)"),
            "{row:?}"
        );
        assert_ne!(row.verdict, "regressed", "{row:?}");
    }
    assert!(r.history_test.contains("one invocation"));

    // One process of three disturbed each night: the nights' medians did not move.
    let one = slow(1);
    assert!(
        speed_rows(&one)
            .iter()
            .all(|row| row.verdict != "regressed"),
        "{:#?}",
        one.rows
    );
    // The whole night slower: flagged.
    let all = slow(3);
    let flagged: Vec<_> = speed_rows(&all)
        .into_iter()
        .filter(|row| row.verdict == "regressed")
        .collect();
    assert_eq!(flagged.len(), 1, "{:#?}", all.rows);
    assert!(flagged[0].change_pct < -15.0, "{:?}", flagged[0]);
}

#[test]
fn the_two_run_baseline_is_the_previous_nights_run_not_another_process_of_the_same_night() {
    // 3 nights: too short a history, so every case is judged by the two-run test.
    let spec = five_case_history(3);
    let r = regressions_of(&nights_of_processes(&spec, 3));
    let speed: Vec<_> = r
        .rows
        .iter()
        .filter(|row| row.metric == "generation tokens/s")
        .collect();
    assert_eq!(speed.len(), 5, "{:#?}", r.rows);
    for row in speed {
        assert!(row.current.contains("(run n002p2-"), "{row:?}");
        assert!(row.baseline.contains("(run n001p2-"), "{row:?}");
        assert!(!row.basis.starts_with("history of"), "{row:?}");
    }
    assert!(
        r.baseline.contains("from another invocation"),
        "{}",
        r.baseline
    );
}

#[test]
fn weight_quantizations_sit_beside_their_reference_file_with_size_speed_and_kld() {
    let (_dir, db) = fixture();
    common::write_quantization(&db);
    let dataset = data::load(&db).expect("load");
    let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context");
    let rows = &ctx.quantization.rows;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let q8 = &rows[0];
    assert_eq!(q8.quant, "F16 → Q8_0");
    assert!(q8.file_size.text.contains("-47%"), "{:?}", q8.file_size);
    assert!(
        q8.tokens_per_s.text.starts_with('+'),
        "{:?}",
        q8.tokens_per_s
    );
    assert_eq!(q8.mean_kld.text, "0.0050 (above q8_0-level)");
    assert!(q8.mean_kld.detail.contains("F16 file"), "{:?}", q8.mean_kld);
    assert_eq!(q8.same_top1.text, "95.0%");
}

#[test]
fn a_run_whose_output_failed_integrity_is_shown_marked_and_never_compared() {
    let (_dir, db) = fixture();
    let verdict = "fail: first token differs between repetitions for p1#0";
    {
        let store = edgebench_store::Store::open(&db).expect("open");
        let changed = store
            .connection()
            .execute(
                "UPDATE runs SET integrity = ?1, integrity_passed = 0
                 WHERE case_id IN (SELECT id FROM cases WHERE name LIKE 'code_generation::gemma3-270m::%::llama_cpp::c1::%')",
                [serde_json::json!({ "format": 1, "verdict": verdict }).to_string()],
            )
            .expect("update");
        assert!(changed > 0);
    }
    let dataset = data::load(&db).expect("load");
    let failed: Vec<_> = dataset
        .runs
        .iter()
        .filter(|r| r.integrity.as_ref().map(ToString::to_string).as_deref() == Some(verdict))
        .collect();
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|r| !edgebench_report::comparable(r)));
    let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context");
    let row = ctx
        .runs
        .rows
        .iter()
        .find(|r| {
            r.case.starts_with("code_generation::gemma3-270m::") && r.case.contains("llama_cpp")
        })
        .expect("the run is still shown");
    assert_eq!(row.integrity, "fail");
    assert!(row.note.contains(verdict), "{}", row.note);
    assert!(
        ctx.runs.rows.iter().any(|r| r.integrity == "pass"),
        "the others passed"
    );
}

#[test]
fn a_replicated_case_shows_whether_its_tries_agree_within_five_percent() {
    let verdict_of = |factors: &[f64]| {
        let (_dir, db) = fixture();
        common::write_replication(&db, "replicate-1700000000", factors);
        let dataset = data::load(&db).expect("load");
        let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
            .expect("context");
        ctx.runs
            .rows
            .iter()
            .find(|r| {
                r.case.starts_with("code_generation::gemma3-270m::")
                    && r.case.contains("::llama_cpp::")
            })
            .expect("the case's row")
            .replication
            .clone()
    };
    let agree = verdict_of(&[1.0, 1.01, 0.99, 1.0, 1.02]);
    assert!(agree.starts_with("replicates: 5 tries"), "{agree}");
    let apart = verdict_of(&[1.0, 1.01, 0.85, 1.0, 1.02]);
    assert!(apart.starts_with("does not replicate: 5 tries"), "{apart}");
    // Runs outside a replication carry no verdict.
    let (_dir, db) = fixture();
    let dataset = data::load(&db).expect("load");
    let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context");
    assert!(ctx.runs.rows.iter().all(|r| r.replication.is_empty()));
}

/// A twin-vs-real pair where a run shared the machine is never judged: the fixture's only
/// pair, its twin's run marked contended, leaves the fidelity table empty (the every-run table
/// still shows the run, marked).
#[test]
fn a_contended_fidelity_pair_is_not_judged() {
    let (_dir, db) = fixture();
    common::mark_contended(&db, "twin_fidelity", "gemma3-270m-twin", 0.5);
    let dataset = data::load(&db).expect("load");
    let ctx = build_context(&dataset, &common::inputs(), &Selection::default(), "x", "t")
        .expect("context");
    assert!(ctx.fidelity.rows.is_empty(), "{:?}", ctx.fidelity.rows);
    assert!(
        ctx.runs
            .rows
            .iter()
            .any(|r| r.case.starts_with("twin_fidelity::gemma3-270m-twin")
                && r.note.contains("contended")),
        "the run is shown, marked"
    );
}
