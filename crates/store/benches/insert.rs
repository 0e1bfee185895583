//! SQLite insert throughput for raw samples: each run's requests and token latencies in one
//! transaction, as the runner writes them (`cargo bench -p edgebench-store`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgebench_store::Store;
use edgebench_store::synthetic::{HistorySpec, generate, write_runs};

fn insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("insert");
    g.sample_size(10);
    // 10 runs × 10 requests × 1,000 token latencies: 100,000 raw samples per iteration.
    let spec = HistorySpec {
        runs: 10,
        cases: 10,
        requests_per_run: 10,
        latencies_per_request: 1_000,
        seed: 1,
    };
    let runs = generate(&spec);
    g.throughput(Throughput::Elements(spec.samples() as u64));
    g.bench_function("runs of 10k raw samples, one transaction each", |b| {
        b.iter_with_setup(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = Store::open(&dir.path().join("bench.sqlite")).expect("open");
                (dir, store)
            },
            |(dir, mut store)| {
                let n = write_runs(&mut store, &runs).expect("write");
                assert_eq!(n, spec.samples());
                drop(store);
                drop(dir);
            },
        );
    });
    g.finish();
}

criterion_group!(benches, insert);
criterion_main!(benches);
