//! Twins vs real weights: each random-weight copy of a real file beside the real file, same case
//! and engine, as twin ÷ real with its bootstrap CI. Every twin number rests on decode speed
//! depending little on weight values; this table is where that is checked (on x86 it did
//! depend on the block scales' values until the writer spread them: docs/methodology.md).

use super::prelude::*;

/// The tolerance the twins are held to (issue goal): twin ÷ real within 2%.
pub const FIDELITY_TOLERANCE: f64 = 0.02;

/// Per-request prefill rates of a run: prompt tokens ÷ time to first token (one stream, so no
/// queueing).
fn prefill_rates(r: &Run) -> Vec<f64> {
    let tokens = f64::from(r.case.prompt_tokens);
    r.samples
        .ttft_ms
        .iter()
        .filter(|ms| **ms > 0.0)
        .map(|ms| tokens / (ms / 1e3))
        .collect()
}

fn ratio(real: &[f64], twin: &[f64], what: &str) -> (Cell, Option<f64>) {
    match compare::measured_ratio(real, twin, SEED) {
        None => (Cell::none(format!("no {what} samples on one side")), None),
        Some(r) => {
            let within = (r.ratio - 1.0).abs() <= FIDELITY_TOLERANCE;
            (
                Cell {
                    text: format!("{:.3}", r.ratio),
                    spread: r
                        .ci
                        .map_or_else(String::new, |ci| format!("[{:.3}, {:.3}]", ci.low, ci.high)),
                    provenance: Provenance::Measured,
                    detail: format!(
                        "twin ÷ real, ratio of medians of n={} vs n={} {what}{}; {} 2%",
                        r.variant.n,
                        r.baseline.n,
                        r.ci.map_or(String::new(), |ci| format!(
                            ", 95% bootstrap CI [{:.3}, {:.3}]",
                            ci.low, ci.high
                        )),
                        if within { "within" } else { "outside" }
                    ),
                },
                Some(r.ratio),
            )
        }
    }
}

pub fn fidelity(runs: &[&Run], registry: &Registry) -> FidelitySection {
    let mut rows = Vec::new();
    for twin in runs.iter().copied() {
        let Some(entry) = registry.get(model_id(twin)).filter(|m| m.copy_of_file) else {
            continue;
        };
        let Some(real_id) = entry.twin_of.as_deref() else {
            continue;
        };
        let Some(real) = runs.iter().copied().find(|r| {
            model_id(r) == real_id
                && r.case.scenario == twin.case.scenario
                && r.case.quant == twin.case.quant
                && r.case.backend == twin.case.backend
                && r.case.concurrency == twin.case.concurrency
                && r.case.threads == twin.case.threads
                && r.case.kv_variant == twin.case.kv_variant
        }) else {
            continue;
        };
        let (generation, g) = ratio(
            &real.samples.generation_tokens_per_s,
            &twin.samples.generation_tokens_per_s,
            "requests' generation tokens/s",
        );
        let (prefill, p) = ratio(
            &prefill_rates(real),
            &prefill_rates(twin),
            "requests' prefill tokens/s (prompt tokens ÷ time to first token)",
        );
        let verdict = match (g, p) {
            (Some(g), Some(p))
                if (g - 1.0).abs() <= FIDELITY_TOLERANCE
                    && (p - 1.0).abs() <= FIDELITY_TOLERANCE =>
            {
                "within 2%".to_string()
            }
            (Some(_), Some(_)) => "outside 2%".to_string(),
            _ => "incomplete".to_string(),
        };
        rows.push(FidelityRow {
            model: format!("{real_id} {}", twin.case.quant),
            engine: twin.case.backend.to_string(),
            case: format!(
                "{} ({} prompt tokens, then {} generated)",
                twin.case.scenario, twin.case.prompt_tokens, twin.case.generate_tokens
            ),
            prefill,
            generation,
            verdict,
        });
    }
    rows.sort_by(|a, b| (&a.model, &a.engine, &a.case).cmp(&(&b.model, &b.engine, &b.case)));
    FidelitySection {
        note: if rows.is_empty() {
            "No twin and real-file pair ran in the selection (scenarios/twin_fidelity*.toml; the copies are written by `cargo xtask models twins` once the real files are fetched).".into()
        } else {
            "Each random-weight copy keeps the real file's header (metadata, tokenizer, tensor names, shapes and storage types) and replaces every tensor's data: the same kernels read the same bytes per token. The full-size MiMo-7B and Phi-4-mini twins are written the same way from the architecture, so their speeds stand or fall with this table.".into()
        },
        rows,
    }
}
