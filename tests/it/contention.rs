//! A busy host is detected, not averaged in: a real case measured while two CPU burners hold
//! both cores stores others' share of the machine's CPU time, and the report marks the run
//! contended and keeps it out of comparisons.

use crate::common;

use common::{case_request, child_case};
use edgebench::isolate::run_in_child;

const CASE: &str = "twin_fidelity_short::smollm2-135m::Q4_1::llama_cpp::c1";

/// Busy loops in their own processes (a compile job's stand-in), killed when dropped.
struct Burners(Vec<std::process::Child>);

impl Drop for Burners {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_run_with_a_compile_beside_it_is_marked_contended_and_left_out_of_comparisons() {
    common::model("smollm2-135m", "Q4_1");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let measured = edgebench::plan::Mode {
        smoke: false,
        fixed_stopping: false,
        ..edgebench::plan::Mode::default()
    };
    let burners = Burners(
        (0..2)
            .map(|_| {
                std::process::Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .spawn()
                    .expect("a busy loop")
            })
            .collect(),
    );
    let request = case_request(CASE, "contended-run", &db, measured);
    run_in_child(&child_case(&request, &[])).expect("the case passes");
    drop(burners);

    let dataset = edgebench::store::dataset::load(&db).expect("load");
    let run = dataset
        .runs
        .iter()
        .find(|r| r.id == "contended-run")
        .expect("the run");
    let share = run
        .metrics
        .get(edgebench::core::contention::OTHERS_CPU_SHARE_METRIC)
        .expect("others' CPU share stored")
        .median;
    // Two busy loops on two cores: others held far more than the 10% threshold.
    assert!(share > 0.25, "others' share {share}");
    assert!(edgebench_report::contended(run).is_some());
    assert!(!edgebench_report::comparable(run));
    // Shown in the every-run table, marked; in no comparison.
    let inputs = edgebench_report::Inputs::parse(
        (
            "models.toml",
            &std::fs::read_to_string(edgebench::paths::root().join("models.toml"))
                .expect("registry"),
        ),
        (
            "datasets/claims.toml",
            &std::fs::read_to_string(edgebench::paths::root().join("datasets/claims.toml"))
                .expect("claims"),
        ),
        (
            "datasets/roi.toml",
            &std::fs::read_to_string(edgebench::paths::root().join("datasets/roi.toml"))
                .expect("roi"),
        ),
    )
    .expect("inputs");
    let ctx = edgebench_report::build_context(
        &dataset,
        &inputs,
        &edgebench_report::Selection::default(),
        "x",
        "t",
    )
    .expect("context");
    let row = ctx
        .runs
        .rows
        .iter()
        .find(|r| r.case == CASE)
        .expect("the every-run table shows the contended run");
    assert!(row.note.contains("contended"), "{}", row.note);
    // The sections that compare (overview, categories, regressions, fidelity...) are built
    // from comparable runs only: none here.
    assert_eq!(ctx.measured_runs, 0, "a contended run is compared nowhere");
    eprintln!(
        "two busy loops beside the case: others held {:.0}% of the cores",
        100.0 * share
    );
}
