//! GGUF validation of a 250 MB file: the header and tensor table only, never the tensor data
//! (`cargo bench -p edgebench-gguf`). The synthetic file is sparse (its data region is a hole);
//! the real Gemma 3 270M file (253 MB) is benched too when `models/` holds it.

use std::hint::black_box;
use std::io::Write as _;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use edgebench_gguf::{synthetic, validate_file};

fn validation(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.gguf");
    // 250 tensors of 1 MB each, as a 250 MB model's table would list.
    let tensors: Vec<(String, u64)> = (0..250)
        .map(|i| (format!("blk.{i}.ffn_up.weight"), 262_144))
        .collect();
    let (header, data) = synthetic::f32_header("gpt2", &tensors);
    let mut file = std::fs::File::create(&path).expect("create");
    file.write_all(&header).expect("write header");
    file.set_len(header.len() as u64 + data).expect("extend");
    drop(file);
    let mut g = c.benchmark_group("gguf");
    g.bench_function("validate 250 MB synthetic (250 tensors)", |b| {
        b.iter(|| validate_file(black_box(&path)).expect("valid"));
    });
    let models = std::env::var_os("EDGEBENCH_MODELS")
        .map_or_else(|| PathBuf::from("../../models"), PathBuf::from);
    let gemma = models.join("gemma-3-270m-q4_k_m.gguf");
    if gemma.is_file() {
        g.bench_function("validate gemma-3-270m-q4_k_m.gguf (253 MB)", |b| {
            b.iter(|| validate_file(black_box(&gemma)).expect("valid"));
        });
    } else {
        eprintln!("{} absent: real-file bench skipped", gemma.display());
    }
    g.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
