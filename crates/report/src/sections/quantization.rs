//! Weight quantizations of the same weights side by side: file size and speed against the
//! reference quant's run, and each type's KLD against the reference file (runs whose quality
//! pass named a `reference_quant`).

use super::kv::quality_cells;
use super::prelude::*;

pub fn quantizations(runs: &[&Run], registry: &Registry) -> QuantizationSection {
    // (model, reference quant) → runs of every quant of that scenario.
    let mut groups: BTreeMap<(String, String, Quant), Vec<&Run>> = BTreeMap::new();
    for r in runs {
        let Some(reference) = r.quality.as_ref().and_then(|q| q.reference_quant) else {
            continue;
        };
        groups
            .entry((r.case.scenario.clone(), model_id(r).to_owned(), reference))
            .or_default()
            .push(r);
    }
    let mut rows = Vec::new();
    for ((scenario, model, reference), with_quality) in groups {
        // The reference quant's own runs carry no pass; they are the baseline of the ratios.
        let same =
            |r: &&&Run| r.case.scenario == scenario && model_id(r) == model && r.case.kv_baseline;
        let base_runs: Vec<&Run> = runs
            .iter()
            .filter(same)
            .filter(|r| r.case.quant == reference)
            .copied()
            .collect();
        let twin = registry
            .get(&model)
            .and_then(ModelEntry::accuracy_refusal)
            .is_some();
        let quants: BTreeSet<Quant> = with_quality.iter().map(|r| r.case.quant).collect();
        for quant in quants {
            let var_runs: Vec<&Run> = runs
                .iter()
                .filter(same)
                .filter(|r| r.case.quant == quant)
                .copied()
                .collect();
            let (mean_kld, same_top1) = quality_cells(&var_runs, twin);
            let size = |rs: &[&Run]| {
                rs.iter()
                    .find_map(|r| r.model.as_ref().map(|m| m.size_bytes))
            };
            rows.push(QuantizationRow {
                model: var_runs
                    .first()
                    .and_then(|r| r.model.as_ref())
                    .map_or(model.clone(), |m| m.label.clone()),
                quant: format!("{reference} → {quant}"),
                file_size: bytes_change_cell(
                    size(&base_runs),
                    size(&var_runs),
                    "the GGUF files' sizes",
                    format!("no run of the {reference} file to compare with"),
                ),
                prefill: ratio_cell(
                    &pooled(&base_runs, |s| &s.ttft_ms),
                    &pooled(&var_runs, |s| &s.ttft_ms),
                    "requests' TTFT",
                ),
                tokens_per_s: ratio_cell(
                    &pooled(&base_runs, |s| &s.generation_tokens_per_s),
                    &pooled(&var_runs, |s| &s.generation_tokens_per_s),
                    "requests",
                ),
                mean_kld,
                same_top1,
            });
        }
    }
    QuantizationSection { rows }
}
