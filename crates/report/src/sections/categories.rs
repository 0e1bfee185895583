//! Tokens/s per prompt category with the Phi-4 ÷ MiMo ratio.

use super::prelude::*;

/// MiMo vs Phi-4 at their real dimensions per category (1/16 twins are test fixtures).
pub fn categories(runs: &[&Run], registry: &Registry) -> CategorySection {
    let columns = headline_columns(runs, registry);
    let cats: BTreeSet<&str> = runs.iter().map(|r| r.case.category.as_str()).collect();
    let pairs = seed_pairs(&columns);
    let mut rows = Vec::new();
    let mut plot_series: Vec<(String, Vec<Option<f64>>)> = columns
        .iter()
        .map(|(_, c)| (c.label.clone(), Vec::new()))
        .collect();
    for cat in &cats {
        let samples: Vec<Vec<f64>> = columns
            .iter()
            .map(|(id, _)| {
                let in_cat: Vec<&Run> = runs
                    .iter()
                    .copied()
                    .filter(|r| {
                        model_id(r) == id
                            && r.case.category == *cat
                            && r.case.backend == BackendKind::LlamaCpp
                            && r.case.kv_baseline
                    })
                    .collect();
                // The seed's "Batch 32 concurrent" row is per request at the highest load.
                let level = if *cat == "batch_concurrent" {
                    in_cat.iter().map(|r| r.case.concurrency).max()
                } else {
                    in_cat.iter().map(|r| r.case.concurrency).min()
                };
                let chosen: Vec<&Run> = in_cat
                    .into_iter()
                    .filter(|r| Some(r.case.concurrency) == level)
                    .collect();
                pooled(&chosen, |s| &s.generation_tokens_per_s)
            })
            .collect();
        for (i, s) in samples.iter().enumerate() {
            plot_series[i].1.push(median_of(s));
        }
        let difference = match pairs.first() {
            Some((m, p, _)) => ratio_cell(&samples[*m], &samples[*p], "requests"),
            None => Cell::none("MiMo and Phi-4 of the same origin are not both present"),
        };
        rows.push(CategoryRow {
            category: (*cat).to_string(),
            cells: samples
                .iter()
                .map(|s| measured(s, "t/s", "requests"))
                .collect(),
            difference,
        });
    }
    let comparison = match pairs.first() {
        Some((m, p, origin)) => format!(
            "Difference: {} ÷ {} ({origin}), ratio of medians with a 95% bootstrap CI",
            columns[*p].1.label, columns[*m].1.label
        ),
        None => "No MiMo/Phi-4 pair of the same origin in the selection.".into(),
    };
    let cat_names: Vec<String> = cats.iter().map(|c| (*c).to_string()).collect();
    CategorySection {
        plot_svg: plots::grouped_bars(
            "Generation tokens/s per prompt category (llama.cpp, median)",
            &cat_names,
            &plot_series,
            "tokens/s (log)",
        ),
        columns: columns.into_iter().map(|(_, c)| c).collect(),
        rows,
        comparison,
    }
}

/// Percentile `p` of `samples`; a tail percentile (p90 and above) reads `n < N` when fewer
/// samples than bound it were taken (`stats::percentile_min_samples`, LoadGen's
/// early-stopping count).
pub(crate) fn percentile(samples: &[f64], p: f64) -> String {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let needed = if p >= 90.0 {
        stats::percentile_min_samples(p)
    } else {
        1
    };
    if s.is_empty() {
        "—".into()
    } else if s.len() < needed {
        format!("n < {needed}")
    } else {
        num(stats::percentile_sorted(&s, p))
    }
}
