//! The GGUF validator against llama.cpp's own loader, file by file: seeded corruptions of the
//! real small models and of a twin, each judged by the validator and by llama.cpp's loader in a
//! child process (`edgebench-gguf-probe`; an abort kills the child only). Asserted: no file the
//! validator accepts makes llama.cpp crash, refuse it or hang, loading it or running it (a
//! context, a prefill and a decode step); and the validator accepts some corrupted files and
//! refuses others (one that refused everything would pass otherwise). Files the validator refuses but
//! llama.cpp loads are counted with the validator's reasons (`docs/methodology.md` says why each
//! class is refused).
//! The confusion matrix is printed (and kept in `docs/methodology.md`).
//!
//! `EDGEBENCH_DIFFERENTIAL_N` sets the corruptions per file (default 500; 50 in the CI smoke
//! pass, `EDGEBENCH_SMOKE=1`: every accepted file costs a full llama.cpp load).

use crate::common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What llama.cpp's loader did with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Loader {
    /// Loaded, and (for a file the validator accepts) a context, a prefill and a decode step ran.
    Loaded,
    Refused,
    /// Loaded, but creating a context or decoding failed with an error.
    RunFailed,
    /// Killed by a signal (llama.cpp's `abort()` on a failed assert, a segfault).
    Crashed,
    TimedOut,
}

/// llama.cpp's verdict on `path`, with the last lines of its log.
fn probe(path: &Path) -> (Loader, String) {
    let log = path.with_extension("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgebench-gguf-probe"))
        .arg(path)
        // llama.cpp's own log on stderr: its reason, or the assert it died on.
        .env("EDGEBENCH_ENGINE_LOGS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("probe starts");
    let started = Instant::now();
    let verdict = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break match status.code() {
                Some(0) => Loader::Loaded,
                Some(4) => Loader::RunFailed,
                Some(_) => Loader::Refused,
                None => Loader::Crashed,
            };
        }
        // A hang, not a slow machine: a small model loads and decodes in well under a second.
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break Loader::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: Vec<&str> = said.lines().rev().take(3).collect();
    (
        verdict,
        tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
    )
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Values that break counts, lengths, dimensions, types and offsets.
const INTERESTING: [u64; 10] = [0, 1, 2, 63, 64, 0xFF, 1 << 31, 1 << 32, 1 << 63, u64::MAX];

/// One seeded corruption of a file whose header (everything before the tensor data) is
/// `header`: (what was done, the new header, the file's new length).
fn corrupt(rng: &mut Rng, header: &[u8], len: u64) -> (String, Vec<u8>, u64) {
    let mut h = header.to_vec();
    let n = h.len() as u64;
    // Half of the changes land in the structure-dense parts: the counts and the first
    // metadata entries, and the tensor table at the end of the header.
    let position = |rng: &mut Rng| -> usize {
        match rng.below(4) {
            0 => rng.below(n.min(4096)) as usize,
            1 => (n - 1 - rng.below(n.min(65_536))) as usize,
            _ => rng.below(n) as usize,
        }
    };
    match rng.below(10) {
        0..=3 => {
            let at = position(rng);
            let bit = rng.below(8);
            h[at] ^= 1 << bit;
            (format!("bit {bit} of byte {at} flipped"), h, len)
        }
        4..=5 => {
            let at = position(rng);
            let v = rng.below(256) as u8;
            h[at] = v;
            (format!("byte {at} set to {v}"), h, len)
        }
        6..=8 => {
            let at = position(rng).min(h.len().saturating_sub(8));
            let v = INTERESTING[rng.below(INTERESTING.len() as u64) as usize];
            let width = if rng.below(2) == 0 { 8 } else { 4 };
            h[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            (format!("{width} bytes at {at} set to {v:#x}"), h, len)
        }
        _ => {
            let cut = if rng.below(2) == 0 {
                rng.below(n)
            } else {
                n + rng.below(len - n)
            };
            if cut < n {
                h.truncate(cut as usize);
            }
            (format!("truncated at byte {cut}"), h, cut)
        }
    }
}

#[test]
fn the_validator_accepts_nothing_llama_cpp_refuses_or_crashes_on() {
    let per_file: usize = std::env::var("EDGEBENCH_DIFFERENTIAL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(
            if std::env::var("EDGEBENCH_SMOKE").is_ok_and(|v| v == "1") {
                50
            } else {
                500
            },
        );
    let files: Vec<(String, PathBuf)> = [
        ("smollm2-135m", "Q4_1"),
        ("gemma3-270m", "Q4_K_M"),
        ("mimo-7b-twin16", "Q4_0"),
    ]
    .iter()
    .map(|&(id, quant)| (format!("{id} {quant}"), common::model(id, quant)))
    .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut matrix: BTreeMap<(String, bool, Loader), usize> = BTreeMap::new();
    let mut stricter: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (label, path) in &files {
        let summary = edgebench_gguf::validate_file(path).expect("the original is valid");
        assert_eq!(
            probe(path).0,
            Loader::Loaded,
            "{label}: llama.cpp loads the original"
        );
        let len = std::fs::metadata(path).expect("metadata").len();
        let mut header = Vec::new();
        std::fs::File::open(path)
            .expect("open")
            .take(summary.data_offset)
            .read_to_end(&mut header)
            .expect("header");
        let mut rng = Rng(0xD1FF_0000 ^ len);
        let file = dir.path().join("corrupt.gguf");
        for i in 0..per_file {
            let (what, bytes, new_len) = corrupt(&mut rng, &header, len);
            // The header as corrupted; the tensor data as zeros (sparse: nothing is written),
            // so each file costs its header only. llama.cpp loads zeros as happily as weights.
            {
                let mut f = std::fs::File::create(&file).expect("create");
                f.write_all(&bytes).expect("write");
                f.set_len(new_len).expect("length");
            }
            let verdict = edgebench_gguf::validate_file(&file);
            let (loader, said) = probe(&file);
            *matrix
                .entry((label.clone(), verdict.is_ok(), loader))
                .or_default() += 1;
            match (&verdict, loader) {
                (Ok(_), Loader::Loaded) => {}
                (Ok(_), other) => failures.push(format!(
                    "{label} #{i} ({what}): the validator accepts it, llama.cpp {other:?}: {said}"
                )),
                (Err(e), Loader::Loaded) => {
                    // The reason, without the file name and offset: its class.
                    let reason = e.to_string();
                    let class = reason
                        .split_once(": ")
                        .map_or(reason.as_str(), |(_, r)| r)
                        .split(" at byte offset")
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .filter(|c| !c.is_ascii_digit())
                        .collect::<String>();
                    *stricter.entry(class).or_default() += 1;
                }
                (Err(_), _) => {}
            }
        }
    }
    println!(
        "| file | validator | llama.cpp loaded (and ran) | refused | ran with an error | crashed | timed out |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, _) in &files {
        for accepts in [true, false] {
            let n = |l: Loader| {
                matrix
                    .get(&(label.clone(), accepts, l))
                    .copied()
                    .unwrap_or(0)
            };
            println!(
                "| {label} | {} | {} | {} | {} | {} | {} |",
                if accepts { "accepts" } else { "refuses" },
                n(Loader::Loaded),
                n(Loader::Refused),
                n(Loader::RunFailed),
                n(Loader::Crashed),
                n(Loader::TimedOut)
            );
        }
    }
    println!("\nrefused by the validator, loaded by llama.cpp, by reason:");
    for (reason, n) in &stricter {
        println!("- {n} × {reason}");
    }
    assert!(
        !files.is_empty() || std::env::var("EDGEBENCH_REQUIRE_MODELS").is_err(),
        "no model file to corrupt"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Both verdicts occurred on every file: the test compared something.
    for (label, _) in &files {
        let judged = |accepts: bool| {
            matrix
                .iter()
                .filter(|((l, a, _), _)| l == label && *a == accepts)
                .map(|(_, n)| n)
                .sum::<usize>()
        };
        assert!(
            judged(true) > 0 && judged(false) > 0,
            "{label}: the validator accepted {} and refused {} of {per_file} corruptions",
            judged(true),
            judged(false)
        );
    }
}
