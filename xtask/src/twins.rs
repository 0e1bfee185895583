//! Writes the synthetic twins the registry lists: the 1/16 twins every job needs (small, always
//! written or reused), and on demand the full-size twins (2–8 GB each: announced, checked
//! against free disk, streamed with a progress bar, reused when their recorded hash matches,
//! removable with `--delete-full-size`).

use edgebench_core::quant::Quant;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use edgebench_core::Registry;
use edgebench_core::registry::{ModelEntry as Model, Origin};
use edgebench_twins::{ByteBpe, Twin, WriteOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::models::registry;

/// Seed every twin is generated from: same seed, same code → byte-identical files.
pub const TWIN_SEED: u64 = 20_261_125;

/// Free space left beside the full-size twins after writing them.
const DISK_MARGIN: u64 = 2 << 30;

fn twin<'a>(model: &'a Model, quant: Quant, label: &'a str, tok: &'a ByteBpe) -> Twin<'a> {
    Twin {
        arch: &model.arch,
        name: label,
        quant,
        seed: TWIN_SEED,
        tokenizer: tok,
    }
}

fn scaled_twins(registry: &Registry) -> impl Iterator<Item = &Model> {
    registry
        .models()
        .filter(|m| m.origin == Origin::Twin && m.twin_scale.is_some_and(|s| s > 1))
}

/// The random-weight copies of real files the registry lists (`copy_of_file`): (copy, its
/// file, the real file it copies), for the real files present.
fn copies_of_files<'a>(
    registry: &'a Registry,
    dir: &Path,
) -> Vec<(&'a Model, &'a edgebench_core::registry::ModelFile, PathBuf)> {
    let mut out = Vec::new();
    for copy in registry.models().filter(|m| m.copy_of_file) {
        let Some(real) = copy.twin_of.as_deref().and_then(|id| registry.get(id)) else {
            continue;
        };
        for file in &copy.files {
            if let Some(source) = real.file(file.quant).map(|f| dir.join(&f.path))
                && source.is_file()
            {
                out.push((copy, file, source));
            }
        }
    }
    out
}

/// Writes (or reuses) a random-weight copy of `source` at `dest`: `cargo xtask models twin-of`.
pub fn twin_of(source: &Path, dest: &Path) -> Result<edgebench_twins::Written> {
    let bar = ProgressBar::new(std::fs::metadata(source).map_or(0, |m| m.len()));
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:24} {bytes}/{total_bytes} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("twin of {}", source.display()));
    let progress = |done: u64, _total: u64| bar.set_position(done);
    let w = edgebench_twins::ensure_twin_of(source, dest, TWIN_SEED, Some(&progress))
        .with_context(|| format!("writing a random-weight copy of {}", source.display()))?;
    bar.finish_and_clear();
    Ok(w)
}

/// Writes (or reuses) every 1/16 twin file the registry lists.
pub fn twins(root: &Path) -> Result<Vec<PathBuf>> {
    let registry = registry(root)?;
    let dir = crate::models_dir(root);
    let tokenizer = edgebench_twins::build_tokenizer(255);
    let mut paths = Vec::new();
    let mut written = 0;
    for model in scaled_twins(&registry) {
        if model.arch.vocab != tokenizer.vocab_size() {
            bail!(
                "models.toml: twin `{}` says vocab {}, the twin tokenizer has {}",
                model.id,
                model.arch.vocab,
                tokenizer.vocab_size()
            );
        }
        let label = model.label();
        for file in &model.files {
            let dest = dir.join(&file.path);
            let w = edgebench_twins::ensure_twin(
                &dest,
                &twin(model, file.quant, &label, &tokenizer),
                &WriteOptions::default(),
            )
            .with_context(|| format!("writing twin {}", dest.display()))?;
            written += usize::from(!w.reused);
            paths.push(dest);
        }
    }
    // The real small models' random-weight copies, for the twin-fidelity cases.
    for (copy, file, source) in copies_of_files(&registry, &dir) {
        let dest = dir.join(&file.path);
        let w = twin_of(&source, &dest).with_context(|| format!("model `{}`", copy.id))?;
        written += usize::from(!w.reused);
        paths.push(dest);
    }
    eprintln!(
        "twins: {} files under {} ({written} written, {} unchanged)",
        paths.len(),
        dir.join("twins").display(),
        paths.len() - written
    );
    Ok(paths)
}

/// The full-size twin files of the registry, optionally only those of `wanted` (model, quant).
fn full_size_files<'a>(
    registry: &'a Registry,
    wanted: Option<&[(String, Quant)]>,
) -> Vec<(&'a Model, Quant, &'a str)> {
    registry
        .models()
        .filter(|m| m.is_full_size_twin())
        .flat_map(|m| m.files.iter().map(move |f| (m, f.quant, f.path.as_str())))
        .filter(|(m, q, _)| {
            wanted.is_none_or(|w| w.iter().any(|(id, quant)| id == &m.id && quant == q))
        })
        .collect()
}

/// Bytes free on the file system holding `dir` (`df`, which every Linux and macOS has).
fn free_bytes(dir: &Path) -> Result<u64> {
    let probe = std::iter::successors(Some(dir), |d| d.parent())
        .find(|d| d.exists())
        .unwrap_or(Path::new("."));
    let out = Command::new("df")
        .arg("-Pk")
        .arg(probe)
        .output()
        .context("running `df` to check free disk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .with_context(|| {
            format!(
                "reading free disk for {} from `df`: {text}",
                probe.display()
            )
        })
}

fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

/// Writes (or reuses) the full-size twins: every one the registry lists, or only `wanted`.
pub fn full_size(root: &Path, wanted: Option<&[(String, Quant)]>) -> Result<Vec<PathBuf>> {
    let registry = registry(root)?;
    let dir = crate::models_dir(root);
    let tokenizer = edgebench_twins::build_tokenizer(255);
    let files = full_size_files(&registry, wanted);
    let mut todo = Vec::new();
    let mut paths = Vec::new();
    for (model, quant, path) in &files {
        let dest = dir.join(path);
        let label = model.label();
        let t = twin(model, *quant, &label, &tokenizer);
        let size = t.file_size()?;
        paths.push(dest.clone());
        let present = edgebench_twins::is_recorded(&dest, &t)?;
        todo.push((*model, *quant, dest, size, present));
    }
    let need: u64 = todo.iter().filter(|t| !t.4).map(|t| t.3).sum();
    let free = free_bytes(&dir)?;
    eprintln!(
        "full-size twins (random weights at the real dimensions): {} files, {} to write \
         ({} already present, checked by sha256), {} free under {}",
        todo.len(),
        gb(need),
        todo.iter().filter(|t| t.4).count(),
        gb(free),
        dir.display()
    );
    if need + DISK_MARGIN > free {
        bail!(
            "not enough free disk for the full-size twins: {} to write + {} margin > {} free \
             under {}; free space or point EDGEBENCH_MODELS elsewhere (`cargo xtask models \
             twins --delete-full-size` removes them)",
            gb(need),
            gb(DISK_MARGIN),
            gb(free),
            dir.display()
        );
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    for (model, quant, dest, size, _) in &todo {
        let label = model.label();
        let t = twin(model, *quant, &label, &tokenizer);
        let bar = ProgressBar::new(*size);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} {bar:24} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(format!("{} {quant}", model.id));
        let progress = |done: u64, _total: u64| bar.set_position(done);
        let opts = WriteOptions {
            threads: Some(threads),
            progress: Some(&progress),
        };
        let w = edgebench_twins::ensure_twin(dest, &t, &opts)
            .with_context(|| format!("writing full-size twin {}", dest.display()))?;
        bar.finish_and_clear();
        eprintln!(
            "{} {quant}: {} {} in {:.1} s ({:.0} MB/s, {threads} threads), sha256 {}",
            model.id,
            if w.reused { "reused" } else { "wrote" },
            gb(w.bytes),
            w.seconds,
            w.bytes as f64 / 1e6 / w.seconds.max(1e-9),
            w.sha256
        );
    }
    if let Some(rss) = peak_rss() {
        eprintln!(
            "peak resident memory while writing: {:.0} MiB",
            rss as f64 / (1 << 20) as f64
        );
    }
    Ok(paths)
}

/// Removes every full-size twin file (and its recorded hash).
pub fn delete_full_size(root: &Path) -> Result<()> {
    let registry = registry(root)?;
    let dir = crate::models_dir(root);
    let mut freed = 0;
    for (_, _, path) in full_size_files(&registry, None) {
        let dest = dir.join(path);
        for p in [edgebench_twins::record_path(&dest), dest] {
            if let Ok(m) = std::fs::metadata(&p) {
                std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
                freed += m.len();
            }
        }
    }
    eprintln!("removed the full-size twins: {} freed", gb(freed));
    Ok(())
}

/// The full-size twin files the cases whose names contain one of `filters` need.
pub fn wanted_by(root: &Path, filters: &[String]) -> Result<Vec<(String, Quant)>> {
    wanted_where(root, |name| {
        filters.iter().any(|f| name.contains(f.as_str()))
    })
}

/// The full-size twin files the cases matching one of the case globs `patterns` need.
pub fn wanted_by_globs(root: &Path, patterns: &[&str]) -> Result<Vec<(String, Quant)>> {
    wanted_where(root, |name| {
        patterns
            .iter()
            .any(|p| edgebench_core::glob::matches(p, name))
    })
}

fn wanted_where(root: &Path, selected: impl Fn(&str) -> bool) -> Result<Vec<(String, Quant)>> {
    let registry = registry(root)?;
    let mut wanted = Vec::new();
    for case in crate::smoke::all_cases(root, &registry)? {
        let full = registry
            .get(&case.model)
            .is_some_and(Model::is_full_size_twin);
        let pair = (case.model.clone(), case.quant);
        if full && selected(&case.name) && !wanted.contains(&pair) {
            wanted.push(pair);
        }
    }
    Ok(wanted)
}
