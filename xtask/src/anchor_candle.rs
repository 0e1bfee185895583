//! `cargo xtask anchor candle`: edgebench's candle engine held to candle itself. Each real small
//! model runs through candle-transformers' own quantized model as it ships and through our
//! candle engine, in one `edgebench paired` process, alternating every round (same file, threads,
//! prompt and token count); then through llama.cpp and our candle engine the same way; and a
//! matmul profile says how much of a candle decode step is candle's kernels on each storage type.

use std::path::Path;

use anyhow::Result;

use crate::anchor::model_file;
use crate::fidelity::{contention_note, ratio_cell, run_paired};

/// Repetitions of each weight matrix's multiplication in the profile.
const PROFILE_REPETITIONS: &str = "20";

pub fn candle(
    root: &Path,
    models: &[String],
    threads: u32,
    rounds: u32,
    depths: &[u32],
) -> Result<()> {
    crate::setup::ensure_build_tools()?;
    crate::models::fetch_all(root)?;
    crate::build_announced(root)?;
    let binary = crate::test_build_binary(root, "edgebench");
    println!(
        "\n{rounds} alternating rounds in one process per line, {threads} threads, 64 generated tokens; \
         second ÷ first, median [95% CI]\n"
    );
    println!(
        "{:<14} {:<36} {:>6} {:>12} {:>12} {:>26} {:>26}",
        "model", "first → second", "depth", "first t/s", "second t/s", "generation", "prefill"
    );
    let mut profiles = Vec::new();
    for model in models {
        let (_, path) = model_file(root, model)?;
        for (first, second) in [("candle-transformers", "candle"), ("llama_cpp", "candle")] {
            for &depth in depths {
                let profile = first == "candle-transformers" && depth == depths[0];
                let mut args = vec![
                    "--engine",
                    first,
                    "--second-engine",
                    second,
                    "--generate-tokens",
                    "64",
                ];
                let (threads_arg, depth_arg, rounds_arg) =
                    (threads.to_string(), depth.to_string(), rounds.to_string());
                args.extend([
                    "--threads",
                    &threads_arg,
                    "--prompt-tokens",
                    &depth_arg,
                    "--rounds",
                    &rounds_arg,
                ]);
                if profile {
                    args.extend(["--matmul-profile", PROFILE_REPETITIONS]);
                }
                let json = run_paired(&binary, &[&path, &path], &args)?;
                let rate =
                    |key: &str| json[key].as_f64().map_or("—".into(), |v| format!("{v:.1}"));
                println!(
                    "{model:<14} {:<36} {depth:>6} {:>12} {:>12} {:>26} {:>26}{}",
                    format!("{first} → {second} (ours)"),
                    rate("first_generation_tokens_per_s"),
                    rate("second_generation_tokens_per_s"),
                    ratio_cell(&json, "generation_ratio"),
                    ratio_cell(&json, "prefill_ratio"),
                    contention_note(&json)
                );
                if profile {
                    profiles.push((model.clone(), json));
                }
            }
        }
    }
    println!(
        "\nwhere a candle decode step's time goes: each weight matrix × one token's activations, \
         median of {PROFILE_REPETITIONS}, summed per storage type; share of the engine's own \
         decode step at the first depth\n"
    );
    println!(
        "{:<14} {:<8} {:>8} {:>10} {:>14} {:>10}",
        "model", "storage", "tensors", "MiB", "ms per token", "of step"
    );
    for (model, json) in &profiles {
        let step_ms = json["second_generation_tokens_per_s"]
            .as_f64()
            .map(|rate| 1e3 / rate);
        let mut total_ms = 0.0;
        for share in json["matmul_profile"].as_array().into_iter().flatten() {
            let ms = share["seconds_per_token"].as_f64().unwrap_or(0.0) * 1e3;
            total_ms += ms;
            println!(
                "{model:<14} {:<8} {:>8} {:>10.1} {:>14.2} {:>10}",
                share["storage"].as_str().unwrap_or("?"),
                share["tensors"].as_u64().unwrap_or(0),
                share["bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
                ms,
                share_of(ms, step_ms)
            );
        }
        println!(
            "{model:<14} {:<8} {:>8} {:>10} {:>14.2} {:>10}   (step {})",
            "all",
            "",
            "",
            total_ms,
            share_of(total_ms, step_ms),
            step_ms.map_or("—".into(), |s| format!("{s:.2} ms"))
        );
    }
    println!(
        "\ngoal: ours within 5% of candle-transformers (generation and prefill); docs/methodology.md, \"candle anchor\""
    );
    Ok(())
}

fn share_of(ms: f64, step_ms: Option<f64>) -> String {
    step_ms.map_or("—".into(), |step| format!("{:.0}%", 100.0 * ms / step))
}
