//! `cargo xtask fidelity`: each real small model beside its random-weight copy (`copy_of_file`
//! in models.toml), run through the scenario harness in ABBA order over rounds so drift over the
//! session hits both alike, then twin ÷ real per metric with its spread over rounds.

use edgebench_core::quant::Quant;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use edgebench_report::data;

use crate::anchor::{latest, metric_median, run_cases, spread};

/// The fidelity scenarios: generation at depth 512 after a 512-token prefill, and at depth ≈0.
const SCENARIOS: [&str; 2] = ["twin_fidelity", "twin_fidelity_short"];
const METRICS: [&str; 2] = ["prefill_tokens_per_s", "generation_tokens_per_s"];

pub fn fidelity(root: &Path, rounds: u32, engines: &[String], paired: bool) -> Result<()> {
    crate::setup::ensure_build_tools()?;
    crate::models::fetch_all(root)?;
    crate::twins::twins(root)?;
    let registry = crate::models::registry(root)?;
    let pairs: Vec<(String, String, Quant)> = registry
        .models()
        .filter(|m| m.copy_of_file)
        .flat_map(|m| {
            m.files
                .iter()
                .filter_map(move |f| m.twin_of.clone().map(|real| (real, m.id.clone(), f.quant)))
        })
        .collect();
    if pairs.is_empty() {
        bail!("models.toml lists no random-weight copy of a real file (`copy_of_file = true`)");
    }
    crate::build_announced(root)?;
    if paired {
        return in_one_process(root, &registry, &pairs, rounds, engines);
    }
    let db = crate::database(root);
    // (real, engine, scenario, metric) → twin ÷ real, one per round.
    let mut ratios: BTreeMap<(String, String, &str, &str), Vec<f64>> = BTreeMap::new();
    let mut left_out = Vec::new();
    for round in 0..rounds {
        for scenario in SCENARIOS {
            for (real, twin, quant) in &pairs {
                for engine in engines {
                    let name = |model: &str| format!("{scenario}::{model}::{quant}::{engine}::c1");
                    let (a, b) = (name(real), name(twin));
                    // Alternate which runs first: ABBA over rounds.
                    let order = if round % 2 == 0 {
                        [a.clone(), b.clone()]
                    } else {
                        [b.clone(), a.clone()]
                    };
                    run_cases(root, &db, &order, &[])?;
                    let dataset = data::load(&db)?;
                    let real_run = latest(&dataset, &a)
                        .with_context(|| format!("no passed run of {a} in {}", db.display()))?;
                    let twin_run = latest(&dataset, &b)
                        .with_context(|| format!("no passed run of {b} in {}", db.display()))?;
                    // A round where either run shared the machine (or failed its integrity
                    // check) says nothing about the weights: left out, and said so.
                    if let Some(bad) = [real_run, twin_run]
                        .into_iter()
                        .find(|r| !edgebench_report::comparable(r))
                    {
                        left_out.push(format!(
                            "round {}: {} on {engine} (not comparable: {})",
                            round + 1,
                            bad.case.name,
                            edgebench_report::contended(bad).map_or_else(
                                || "its integrity check failed".to_owned(),
                                |share| format!("others used {:.0}% of the cores", 100.0 * share)
                            )
                        ));
                        continue;
                    }
                    for metric in METRICS {
                        if let (Some(r), Some(t)) = (
                            metric_median(real_run, metric),
                            metric_median(twin_run, metric),
                        ) {
                            ratios
                                .entry((real.clone(), engine.clone(), scenario, metric))
                                .or_default()
                                .push(t / r);
                        }
                    }
                }
            }
        }
    }
    println!(
        "\ntwin ÷ real per round ({rounds} rounds, ABBA order): median [min, max] (n); goal within 2% on llama.cpp\n"
    );
    println!(
        "{:<16} {:<10} {:<22} {:<24} {:>32}",
        "real model", "engine", "scenario", "metric", "twin ÷ real"
    );
    for ((real, engine, scenario, metric), values) in &ratios {
        println!(
            "{real:<16} {engine:<10} {scenario:<22} {metric:<24} {:>32}",
            spread(values, 3)
        );
    }
    for line in &left_out {
        println!("left out: {line}");
    }
    println!(
        "\nevery run is in {}; `cargo xtask report` shows the latest pair of each case in \"Twins vs real weights\"",
        db.display()
    );
    Ok(())
}

/// `--paired`: each real file and its copy loaded in one `edgebench paired` process and run in
/// alternating rounds, at depth ≈0 and 512 (the fidelity scenarios' depths, 64 generated
/// tokens), twin ÷ real per round with the median's 95% CI.
fn in_one_process(
    root: &Path,
    registry: &edgebench_core::Registry,
    pairs: &[(String, String, Quant)],
    rounds: u32,
    engines: &[String],
) -> Result<()> {
    let binary = crate::test_build_binary(root, "edgebench");
    let path = |model: &str, quant: Quant| -> Result<std::path::PathBuf> {
        let file = registry
            .get(model)
            .and_then(|m| m.file(quant))
            .with_context(|| format!("models.toml has no {model} {quant} file"))?;
        Ok(crate::models_dir(root).join(&file.path))
    };
    println!(
        "\ntwin ÷ real, {rounds} alternating rounds in one process per line: median [95% CI]; goal within 2% on llama.cpp\n"
    );
    println!(
        "{:<16} {:<10} {:<10} {:>28} {:>28}",
        "real model", "engine", "depth", "generation", "prefill"
    );
    for (real, twin, quant) in pairs {
        let (real_path, twin_path) = (path(real, *quant)?, path(twin, *quant)?);
        for engine in engines {
            for (depth, prompt_tokens) in [("≈0", 32), ("512", 512)] {
                let json = run_paired(
                    &binary,
                    &[&real_path, &twin_path],
                    &[
                        "--engine",
                        engine,
                        "--prompt-tokens",
                        &prompt_tokens.to_string(),
                        "--generate-tokens",
                        "64",
                        "--rounds",
                        &rounds.to_string(),
                    ],
                )?;
                let (cell, contended) = (|key| ratio_cell(&json, key), contention_note(&json));
                println!(
                    "{real:<16} {engine:<10} {depth:<10} {:>28} {:>28}{contended}",
                    cell("generation_ratio"),
                    cell("prefill_ratio")
                );
            }
        }
    }
    Ok(())
}

/// Runs `edgebench paired FILES ARGS` and returns the JSON it prints.
pub fn run_paired(binary: &Path, files: &[&Path], args: &[&str]) -> Result<serde_json::Value> {
    let output = std::process::Command::new(binary)
        .arg("paired")
        .args(files)
        .args(args)
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "edgebench paired {} {} failed: {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("edgebench paired printed no JSON")
}

/// `median [low, high]` of one of `edgebench paired`'s ratios, or `—`.
pub fn ratio_cell(json: &serde_json::Value, key: &str) -> String {
    let r = &json[key];
    match (
        r["median"].as_f64(),
        r["ci95"][0].as_f64(),
        r["ci95"][1].as_f64(),
    ) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.3} [{lo:.3}, {hi:.3}]"),
        _ => "—".into(),
    }
}

/// What to print after a contended pair's line (nothing for an uncontended one).
pub fn contention_note(json: &serde_json::Value) -> String {
    if json["contended"].as_bool() == Some(true) {
        format!(
            "  contended: others used {:.0}% of the cores",
            100.0 * json["others_cpu_share"].as_f64().unwrap_or(0.0)
        )
    } else {
        String::new()
    }
}
