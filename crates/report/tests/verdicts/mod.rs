//! The regression section's calibration table: what `cargo xtask calibrate` stored, shown for
//! the devices in the report.

use edgebench_report::{Selection, build_context, data};
use edgebench_store::{CalibrationRow, Store};

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
    assert_eq!(rows.len(), 1, "{rows:?}");
    let c = &rows[0];
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
