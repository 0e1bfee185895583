//! The validator against real GGUF files and ≥ 100 corruptions of them: truncations at seeded
//! random offsets and flipped bytes in the header and tensor table. Nothing may panic; every
//! truncation that cuts into a tensor must be an error naming a byte offset inside the file.

use std::io::Read;
use std::path::PathBuf;

use edgebench_gguf::{validate, validate_file};

fn models_dir() -> PathBuf {
    std::env::var_os("EDGEBENCH_MODELS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
        PathBuf::from,
    )
}

/// The real files present (the twins are written by `cargo xtask models twins`; the small
/// models by `cargo xtask models fetch`). Missing files fail under `cargo xtask test`.
fn real_files() -> Vec<PathBuf> {
    let dir = models_dir();
    let files: Vec<PathBuf> = [
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gemma-3-270m-q4_k_m.gguf",
        "twins/mimo-7b-twin16-Q4_0.gguf",
        "twins/phi-4-mini-twin16-F16.gguf",
    ]
    .iter()
    .map(|f| dir.join(f))
    .filter(|p| p.is_file())
    .collect();
    // A test that corrupts no file proves nothing: the files must be there.
    assert_eq!(
        files.len(),
        4,
        "models missing under {}: run `cargo xtask models fetch` and `cargo xtask models twins`",
        dir.display()
    );
    files
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn real_files_validate() {
    for path in real_files() {
        let s = validate_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let len = std::fs::metadata(&path).expect("metadata").len();
        assert!(
            s.tensor_count > 0 && s.data_offset + s.data_bytes <= len,
            "{}: {s:?}",
            path.display()
        );
        assert!(s.architecture.is_some());
    }
}

#[test]
fn a_hundred_corruptions_per_file_are_errors_not_crashes() {
    for path in real_files() {
        let summary = validate_file(&path).expect("valid original");
        let len = std::fs::metadata(&path).expect("metadata").len();
        // The header and tables are all the validator reads; keep them in memory.
        let mut header = Vec::new();
        std::fs::File::open(&path)
            .expect("open")
            .take(summary.data_offset)
            .read_to_end(&mut header)
            .expect("read header");
        let tables_end = header.len() as u64;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ len);
        let mut errors = 0;

        // 60 truncations: half inside the header and tables, half inside the tensor data.
        for i in 0..60 {
            let cut = if i % 2 == 0 {
                rng.below(tables_end)
            } else {
                tables_end + rng.below(len - tables_end)
            };
            let visible = &header[..(cut.min(tables_end)) as usize];
            match validate(visible, cut) {
                Err(d) => {
                    assert!(
                        d.offset <= cut,
                        "{}: cut {cut}: offset {} beyond the file",
                        path.display(),
                        d.offset
                    );
                    errors += 1;
                }
                Ok(s) => assert!(
                    s.data_offset + s.data_bytes <= cut,
                    "{}: truncated at {cut} but validated: {s:?}",
                    path.display()
                ),
            }
            if cut < summary.data_offset + summary.data_bytes {
                assert!(
                    validate(visible, cut).is_err(),
                    "{}: a cut at {cut} into tensor data passed",
                    path.display()
                );
            }
        }
        assert!(
            errors >= 30,
            "{}: only {errors} of 60 truncations were caught",
            path.display()
        );
        // 60 flipped bits: the first 64 bytes (magic, version, counts) and the tables.
        let mut flips_caught = 0;
        for i in 0..60 {
            let at = if i % 3 == 0 {
                rng.below(64.min(tables_end))
            } else {
                rng.below(tables_end)
            } as usize;
            let bit = rng.below(8);
            let mut bad = header.clone();
            bad[at] ^= 1 << bit;
            let result = validate(&bad[..], len);
            if let Err(d) = &result {
                assert!(d.offset <= len, "{d:?}");
                assert!(!d.problem.is_empty());
                flips_caught += 1;
            }
            // Flips that can only give a file no loader may take: the magic; the version
            // (except 3 → 2, a layout llama.cpp still reads); the high half of the tensor or
            // metadata count (≥ 2³² entries can't fit in any file here).
            let version_3_to_2 = at == 4 && bit == 0;
            let must_fail = at < 4
                || ((4..8).contains(&at) && !version_3_to_2)
                || (12..16).contains(&at)
                || (20..24).contains(&at);
            assert!(
                !must_fail || result.is_err(),
                "{}: bit {bit} of byte {at} flipped, still valid: {result:?}",
                path.display()
            );
            // A flip inside a string or a float may leave a valid file: that is fine, as long
            // as nothing panicked.
        }
        assert!(
            flips_caught >= 25,
            "{}: only {flips_caught} of 60 bit flips were caught",
            path.display()
        );
    }
}

#[test]
fn a_truncated_file_on_disk_names_the_file_and_offset() {
    let Some(path) = real_files()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("twin"))
    else {
        return;
    };
    let bytes = std::fs::read(&path).expect("read");
    let dir = tempfile_dir();
    let cut = dir.join("truncated.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let err = validate_file(&cut).expect_err("truncated").to_string();
    assert!(
        err.contains("truncated.gguf") && err.contains("byte offset"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgebench-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Counts the bytes a reader hands out.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[test]
fn validation_of_a_250_mb_file_reads_only_its_header() {
    let tensors: Vec<(String, u64)> = (0..250)
        .map(|i| (format!("blk.{i}.ffn_up.weight"), 262_144))
        .collect();
    let (header, data) = edgebench_gguf::synthetic::f32_header("gpt2", &tensors);
    assert!(data >= 250 << 20);
    let dir = tempfile_dir();
    let path = dir.join("sparse-250mb.gguf");
    std::fs::write(&path, &header).expect("write header");
    // A hole, not 250 MB of writes: the data region exists only as a length.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(header.len() as u64 + data))
        .expect("extend");
    let len = std::fs::metadata(&path).expect("metadata").len();
    let mut reader = Counting {
        inner: std::fs::File::open(&path).expect("open"),
        read: 0,
    };
    let summary = validate(&mut reader, len).expect("valid");
    assert_eq!((summary.tensor_count, summary.data_bytes), (250, data));
    assert!(
        reader.read <= header.len() as u64,
        "read {} bytes of a {}-byte header: validation touched tensor data",
        reader.read,
        header.len()
    );
    assert!(validate_file(&path).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}
