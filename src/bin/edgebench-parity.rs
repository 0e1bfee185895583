//! Cross-backend parity for `cargo xtask bench`: candle against llama.cpp (the reference) on the
//! named models, written to the results database's `parity` table (`EDGEBENCH_DB`), the table
//! the report's Backends section shows. The same comparison as `cargo test --test it -- parity`,
//! without its tolerances: this measures, the test judges.
//!
//! `edgebench-parity [--prompts-per-set N] MODEL:QUANT...`; a model whose file is absent is
//! skipped with the reason.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use edgebench::backend::BackendKind;
use edgebench::parity;
use edgebench::runner::Runner;
use edgebench::{catalog, engines, paths};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut prompts_per_set = None;
    let mut models = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--prompts-per-set" {
            let n = args.next().context("--prompts-per-set needs a number")?;
            prompts_per_set = Some(
                n.parse()
                    .with_context(|| format!("--prompts-per-set {n}"))?,
            );
        } else if let Some((id, quant)) = arg.split_once(':') {
            models.push((id.to_owned(), quant.to_owned()));
        } else {
            bail!("usage: edgebench-parity [--prompts-per-set N] MODEL:QUANT...; got `{arg}`");
        }
    }
    let root = paths::root();
    let registry = catalog::load_registry(&root)?;
    let models_dir = paths::models_dir(&root);
    let db = paths::database(&root);
    let mut runner = Runner::open(&root, &models_dir, &db)?;
    let plan = parity::standard_plan(&root, prompts_per_set)?;
    let reference = engines::engine(BackendKind::LlamaCpp).map_err(anyhow::Error::msg)?;
    let candidate = engines::engine(BackendKind::Candle).map_err(anyhow::Error::msg)?;
    for (id, quant) in models {
        let entry = registry
            .get(&id)
            .with_context(|| format!("model `{id}` is not in models.toml"))?;
        let quant: edgebench_core::quant::Quant = quant
            .parse()
            .map_err(|e| anyhow::anyhow!("model `{id}`: {e}"))?;
        let file = entry
            .file(quant)
            .with_context(|| format!("model `{id}` has no {quant} file in models.toml"))?;
        let path = models_dir.join(&file.path);
        if !path.is_file() {
            eprintln!("parity {id} {quant}: skipped, {} is absent", path.display());
            continue;
        }
        let p = parity::compare(
            &mut runner,
            entry,
            quant,
            &path,
            reference,
            candidate,
            &plan,
        )?;
        eprintln!(
            "parity {} {quant}: first token {}/{}, teacher-forced top-1 {}/{}, max |Δ log-prob| top 10 {:.3} → {}",
            entry.label(),
            p.first_token_matches,
            p.prompts,
            p.forced_matches,
            p.forced_compared,
            p.top10_abs_logprob_diff,
            db.display()
        );
    }
    Ok(())
}
