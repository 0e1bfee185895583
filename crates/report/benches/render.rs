//! Report rendering from a device lab's history: a generated database of 1,000 runs holding 10⁶
//! raw samples (token latencies), loaded, built and written as `cargo xtask report` does
//! (`cargo bench -p edgebench-report`). Goal: ≤ 2 s on a 2-core machine, from SQLite and, when
//! PostgreSQL's server binaries are installed, from a throwaway PostgreSQL server holding the
//! same runs (ingested through `PgStore`, as `nightly` does).

#[path = "../../store/tests/lab/cluster.rs"]
mod cluster;

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use edgebench_report::{Inputs, Selection, write_report};
use edgebench_store::Store;
use edgebench_store::synthetic::{HistorySpec, write_history};

fn inputs() -> Inputs {
    Inputs::parse(
        ("models.toml", include_str!("../../../models.toml")),
        (
            "datasets/claims.toml",
            include_str!("../../../datasets/claims.toml"),
        ),
        (
            "datasets/roi.toml",
            include_str!("../../../datasets/roi.toml"),
        ),
    )
    .expect("shipped inputs parse")
}

fn render(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("lab.sqlite");
    let spec = HistorySpec::LAB;
    let built = Instant::now();
    let mut store = Store::open(&db).expect("open");
    let samples = write_history(&mut store, &spec).expect("generate");
    drop(store);
    assert_eq!(samples, 1_000_000);
    eprintln!(
        "fixture: {} runs, {samples} raw samples, {:.1} MB, generated in {:.1} s",
        spec.runs,
        std::fs::metadata(&db).map_or(0, |m| m.len()) as f64 / 1e6,
        built.elapsed().as_secs_f64()
    );
    let inputs = inputs();
    let out = dir.path().join("report");
    let mut g = c.benchmark_group("report");
    g.sample_size(10);
    g.bench_function("1,000 runs / 10^6 samples: load + build + write", |b| {
        b.iter(|| {
            write_report(
                &db,
                &out,
                &inputs,
                &Selection::default(),
                "2026-01-01T00:00:00Z",
            )
            .expect("report")
        });
    });
    let dataset = edgebench_report::data::load(&db).expect("load");
    g.bench_function("1,000 runs / 10^6 samples: load only", |b| {
        b.iter(|| edgebench_report::data::load(&db).expect("load").runs.len());
    });
    g.bench_function("1,000 runs / 10^6 samples: build context only", |b| {
        b.iter(|| {
            edgebench_report::build_context(
                &dataset,
                &inputs,
                &Selection::default(),
                "lab.sqlite",
                "2026-01-01T00:00:00Z",
            )
            .expect("context")
            .measured_runs
        });
    });
    if let Some(server) = cluster::Cluster::start() {
        let conninfo = server.create_database("lab");
        let target: edgebench_store::postgres::PgTarget = conninfo.parse().expect("conninfo");
        let ingest = Instant::now();
        let mut pg = edgebench_store::postgres::PgStore::connect(&target).expect("connect");
        pg.ingest(&db).expect("ingest into PostgreSQL");
        eprintln!(
            "ingested the fixture into PostgreSQL in {:.1} s (one writer)",
            ingest.elapsed().as_secs_f64()
        );
        let location = edgebench_store::Location::Postgres(Box::new(target));
        g.bench_function("from PostgreSQL, 10^6 samples: load + build + write", |b| {
            b.iter(|| {
                edgebench_report::write_report_at(
                    &location,
                    &out,
                    &inputs,
                    &Selection::default(),
                    "2026-01-01T00:00:00Z",
                )
                .expect("report")
            });
        });
        g.bench_function("from PostgreSQL, 10^6 samples: load only", |b| {
            b.iter(|| {
                edgebench_report::data::load_from(&location)
                    .expect("load")
                    .runs
                    .len()
            });
        });
    }
    g.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
