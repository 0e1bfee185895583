//! The sections a device lab reads beside the comparison: the regression section's
//! calibration table (what `cargo xtask calibrate` stored), sustained decode and goodput.

use edgebench_report::{Selection, build_context, data};
use edgebench_store::{
    CalibrationRow, CaseRow, GoodputRow, NewRunRow, RunEndRow, RunStatus, Store, SustainedRow,
};

#[test]
fn calibrations_are_shown_latest_first_for_the_reported_devices() {
    let (_dir, db) = super::fixture();
    let store = Store::open(&db).expect("open");
    let device_id: i64 = store
        .connection()
        .query_row("SELECT MIN(device_id) FROM runs", [], |r| r.get(0))
        .expect("device");
    let row = |at: i64, spread: f64, runs: u32| CalibrationRow {
        device_id,
        case_key: "k".into(),
        case_name: "code_generation::gemma3-270m::Q4_K_M::llama_cpp::c1".into(),
        model_sha256: None,
        metric: "generation tokens/s".into(),
        calibrated_at_ms: at,
        runs,
        median: 100.0,
        robust_spread: spread,
        cv: 0.05,
        min: 90.0,
        max: 104.0,
        false_alerts_per_100: Some(0.25),
        detected_within_3: Some(0.955),
        details: "{}".into(),
    };
    store
        .insert_calibration(&row(1_764_547_200_000, 0.08, 5))
        .expect("old");
    store
        .insert_calibration(&row(1_764_633_600_000, 0.021, 10))
        .expect("new");
    // The same key twice is refused: a calibration is stored once.
    assert!(
        store
            .insert_calibration(&row(1_764_633_600_000, 0.5, 3))
            .is_err()
    );
    // Night sizes simulated: the fewest that met the targets, or none of them did.
    let sized = |metric: &str, needed: &str| CalibrationRow {
        metric: metric.into(),
        details: format!(
            r#"{{"per_night": [{{"processes": 1}}, {{"processes": 3}}], "processes_per_night": {needed}}}"#
        ),
        ..row(1_764_633_600_000, 0.03, 12)
    };
    store
        .insert_calibration(&sized("ttft ms", "3"))
        .expect("sized");
    store
        .insert_calibration(&sized("ms per token", "null"))
        .expect("none met");
    drop(store);

    let dataset = data::load(&db).expect("load");
    let ctx = build_context(
        &dataset,
        &super::common::inputs(),
        &Selection::default(),
        "x",
        "t",
    )
    .expect("context");
    let rows = &ctx.regressions.calibrations;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let per_night = |metric: &str| {
        rows.iter()
            .find(|c| c.metric == metric)
            .map(|c| c.processes_per_night.as_str())
    };
    assert_eq!(per_night("generation tokens/s"), Some("—"));
    assert_eq!(per_night("ttft ms"), Some("3"));
    assert_eq!(
        per_night("ms per token"),
        Some("more than simulated (1, 3)")
    );
    let c = rows
        .iter()
        .find(|c| c.metric == "generation tokens/s")
        .expect("speed");
    assert_eq!((c.robust_spread_pct, c.cv_pct), (2.1, 5.0));
    assert_eq!(c.calibrated_on, "2025-12-02");
    assert_eq!(c.median.spread, "±2.1%");
    assert!(c.median.detail.contains("10 run medians"), "{:?}", c.median);
    assert_eq!(c.false_alerts_per_100, Some(0.25));
    assert_eq!(c.detected_within_3_pct, Some(95.5));
    let html = edgebench_report::render::html(&ctx).expect("html");
    assert!(html.contains("id=\"calibrations-table\""));

    // A report of another device leaves it out.
    let elsewhere = Selection {
        device: Some("no-such-device".into()),
        ..Selection::default()
    };
    let ctx =
        build_context(&dataset, &super::common::inputs(), &elsewhere, "x", "t").expect("context");
    assert!(ctx.regressions.calibrations.is_empty());
}

/// Adds a passed measured run of case `name` on the fixture's first device and Phi twin.
fn add_run(store: &mut Store, name: &str, end: RunEndRow) {
    let model_id: i64 = store
        .connection()
        .query_row(
            "SELECT id FROM models WHERE registry_id = 'phi-4-mini-twin16'",
            [],
            |r| r.get(0),
        )
        .expect("model");
    let device_id: i64 = store
        .connection()
        .query_row("SELECT MIN(device_id) FROM runs", [], |r| r.get(0))
        .expect("device");
    let case_id = store
        .upsert_case(&CaseRow {
            case_key: format!("{name}-key"),
            category: "code_generation".into(),
            model: "phi-4-mini-twin16".into(),
            quant: "Q4_0".into(),
            backend: "llama_cpp".into(),
            concurrency: 1,
            generate_tokens: 448,
            ..CaseRow::named(name)
        })
        .expect("case");
    let id = format!("{name}-run");
    store
        .begin_run(&NewRunRow {
            id: id.clone(),
            invocation: format!("{name}-invocation"),
            case_id,
            device_id,
            model_id: Some(model_id),
            started_at_ms: 1_764_633_600_000,
            tool_version: "t".into(),
            git_commit: "t".into(),
            scenario_file: "scenarios/x.toml".into(),
            scenario_sha256: "00".into(),
            seed: 1,
            warmup: 0,
            repetitions: 1,
            host: "lab-host".into(),
            pid: 1,
            mode: "measure".into(),
        })
        .expect("begin");
    store.finish_run(&id, &end, &[]).expect("finish");
}

fn end_row() -> RunEndRow {
    RunEndRow {
        stop_reason: Some("time_budget".into()),
        ..RunEndRow::new(RunStatus::Passed, 1_764_633_700_000)
    }
}

#[test]
fn sustained_and_goodput_runs_render_their_sections_with_curves() {
    let (_dir, db) = super::fixture();
    let mut store = Store::open(&db).expect("open");
    // 30 s at 100 t/s, 20% slower from 15 s on; the detector's figures as the harness stores
    // them.
    let rates: Vec<f64> = (0..30).map(|t| if t < 15 { 100.0 } else { 80.0 }).collect();
    let throttle = edgebench_core::throttle::analyze(&rates, 1.0);
    let samples: Vec<serde_json::Value> = rates
        .iter()
        .enumerate()
        .map(|(t, r)| {
            serde_json::json!({"t_s": t as f64 + 1.0, "tokens_per_s": r, "cpu_mhz": null,
                "temps_c": {"x86_pkg_temp": 40.0 + t as f64 / 2.0}})
        })
        .collect();
    let series = serde_json::json!({"format": 1, "interval_s": 1.0, "seconds": 30,
        "decoded_tokens": 2700, "baseline_window_s": throttle.baseline_window_s,
        "rolling_window_s": throttle.rolling_window_s, "samples": samples});
    add_run(
        &mut store,
        "sustained_decode::phi-4-mini-twin16::Q4_0::llama_cpp::c1",
        RunEndRow {
            sustained: Some(SustainedRow {
                series: series.to_string(),
                throttle_onset_s: throttle.onset_s,
                steady_state_ratio: throttle.steady_state_ratio,
                cooldown: Some(r#"{"skipped":"no thermal zone readable"}"#.into()),
            }),
            ..end_row()
        },
    );
    let point = |rate: f64, met: f64, passed: bool| {
        serde_json::json!({"rate_per_s": rate, "requests": 24, "met_share": met, "passed": passed,
            "ttft_p50_ms": 3.0 * rate, "ttft_p90_ms": 5.0 * rate, "tpot_p50_ms": 0.2, "tpot_p90_ms": 0.3})
    };
    let sweep = serde_json::json!({"format": 1, "preset": "interactive",
        "targets": {"ttft_ms": 500.0, "tpot_ms": 30.0, "share": 0.9}, "end": "resolved",
        "points": [point(8.0, 1.0, true), point(16.0, 1.0, true), point(32.0, 0.5, false), point(22.6, 0.95, true)]});
    add_run(
        &mut store,
        "goodput::phi-4-mini-twin16::Q4_0::llama_cpp::c4",
        RunEndRow {
            goodput: Some(GoodputRow {
                sweep: sweep.to_string(),
                goodput_per_s: Some(22.6),
            }),
            ..end_row()
        },
    );
    drop(store);

    let dataset = data::load(&db).expect("load");
    let ctx = build_context(
        &dataset,
        &super::common::inputs(),
        &Selection::default(),
        "x",
        "t",
    )
    .expect("context");
    let s = &ctx.sustained.rows;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(
        s[0].onset,
        format!("{:.0} s", throttle.onset_s.expect("onset"))
    );
    assert_eq!(s[0].steady_state_ratio, Some(0.8));
    assert_eq!(s[0].hottest_c, "40.0 – 54.5 °C");
    assert!(s[0].cooldown.starts_with("skipped"), "{}", s[0].cooldown);
    assert!(s[0].plot_svg.starts_with("<svg") && s[0].plot_svg.contains("#D62728"));
    let g = &ctx.goodput.rows;
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(g[0].goodput.text, "22.6 req/s");
    assert!(
        g[0].targets.starts_with("interactive: TTFT ≤ 500 ms"),
        "{}",
        g[0].targets
    );
    // The points by rate, the failing one last.
    let rates: Vec<&str> = g[0].points.iter().map(|p| p.rate_per_s.as_str()).collect();
    assert_eq!(rates, ["8.00", "16.0", "22.6", "32.0"]);
    assert!(g[0].plot_svg.starts_with("<svg"));
    let html = edgebench_report::render::html(&ctx).expect("html");
    assert!(html.contains("id=\"sustained-table\"") && html.contains("goodput-points"));
}
