//! llama.cpp against candle on the same cases, and the parity table.

use super::prelude::*;

pub fn backends(runs: &[&Run], parity: &[crate::data::Parity]) -> BackendSection {
    let mut pairs: BTreeMap<String, (Vec<&Run>, Vec<&Run>)> = BTreeMap::new();
    for r in runs {
        let key = r
            .case
            .name
            .replace("::llama_cpp::", "::*::")
            .replace("::candle::", "::*::");
        let e = pairs.entry(key).or_default();
        match r.case.backend {
            BackendKind::LlamaCpp => e.0.push(r),
            BackendKind::Candle => e.1.push(r),
            // Paired with in-process llama.cpp in the HTTP section; hybrid runs have their own.
            BackendKind::Http | BackendKind::Hybrid => {}
        }
    }
    let rows = pairs
        .into_iter()
        .filter(|(_, (l, c))| !l.is_empty() && !c.is_empty())
        .map(|(case, (l, c))| {
            let ls = pooled(&l, |s| &s.generation_tokens_per_s);
            let cs = pooled(&c, |s| &s.generation_tokens_per_s);
            BackendRow {
                case,
                llama_cpp: measured(&ls, "t/s", "requests"),
                candle: measured(&cs, "t/s", "requests"),
                ratio: ratio_cell(&ls, &cs, "requests"),
            }
        })
        .collect();
    let parity = parity
        .iter()
        .map(|p| {
            // The same file's quality pass on candle: the engines' distributions as KLD.
            let candle_passes: Vec<&Run> = runs
                .iter()
                .copied()
                .filter(|r| {
                    r.case.backend == BackendKind::Candle
                        && r.case.quant == p.quant
                        && r.model.as_ref().is_some_and(|m| m.label == p.model_label)
                        && r.quality
                            .as_ref()
                            .is_some_and(|q| q.reference_quant.is_none())
                })
                .collect();
            let (mean_kld, same_top1) = super::kv::quality_cells(&candle_passes, false);
            (p, mean_kld, same_top1)
        })
        .map(|(p, mean_kld, same_top1)| ParityRow {
            mean_kld,
            same_top1,
            model: format!("{} {}", p.model_label, p.quant),
            engines: format!("{} vs {}", p.candidate, p.reference),
            first_token: format!("{}/{}", p.first_token_matches, p.first_token_prompts),
            teacher_forced: if p.compared_tokens > 0 {
                format!(
                    "{}/{} ({:.1}%)",
                    p.agreeing_tokens,
                    p.compared_tokens,
                    100.0 * f64::from(p.agreeing_tokens) / f64::from(p.compared_tokens)
                )
            } else {
                "—".into()
            },
            max_top10_diff: p.max_top10_diff.map_or("—".into(), |d| format!("{d:.3}")),
            max_vocab_diff: p.max_vocab_diff.map_or("—".into(), |d| format!("{d:.3}")),
        })
        .collect();
    BackendSection { rows, parity }
}
