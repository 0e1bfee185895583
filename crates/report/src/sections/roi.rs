//! Cost per 1M tokens on device against cloud APIs, with break-even volumes.

use super::prelude::*;

/// Energy per generated token over `runs`, and whether it was measured or estimated.
pub(crate) fn joules_per_token(runs: &[&Run]) -> Option<(f64, Provenance, String)> {
    let (mut joules, mut tokens, mut estimated) = (0.0, 0u64, false);
    let mut source = String::new();
    for r in runs {
        if let Some(j) = r.energy_j {
            joules += j;
            tokens += r.samples.generated_tokens;
            estimated |= matches!(r.energy_source, Some(EnergySource::Estimate { .. }));
            source = r
                .energy_source
                .as_ref()
                .map_or_else(String::new, ToString::to_string);
        }
    }
    (tokens > 0).then(|| {
        let jpt = joules / tokens as f64;
        if estimated {
            (
                jpt,
                Provenance::Estimated,
                format!("{source}; {tokens} tokens"),
            )
        } else {
            (
                jpt,
                Provenance::Measured,
                format!("RAPL over {tokens} tokens in {} runs", runs.len()),
            )
        }
    })
}

pub fn roi(runs: &[&Run], inputs: &RoiFile, registry: &Registry) -> (RoiSection, Option<f64>) {
    let columns = model_columns(runs);
    let mut rows = Vec::new();
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut best: Option<f64> = None;
    let volumes: Vec<f64> = (0..=50)
        .map(|i| 10f64.powf(4.0 + f64::from(i) * 0.1))
        .collect();
    let device = |tps: f64, jpt: f64| DeviceCost {
        price_usd: inputs.device.price_usd,
        lifetime_months: inputs.device.lifetime_months,
        active_hours_per_day: inputs.device.active_hours_per_day,
        electricity_usd_per_kwh: inputs.electricity_usd_per_kwh,
        tokens_per_s: tps,
        joules_per_token: jpt,
    };
    let mut add_row = |label: String,
                       tps_cell: Cell,
                       tps: f64,
                       jpt_cell: Cell,
                       jpt: f64,
                       provenance: Provenance,
                       rows: &mut Vec<RoiRow>,
                       lines: &mut Vec<(String, Vec<(f64, f64)>)>| {
        let d = device(tps, jpt);
        let per_million = d.usd_per_million_at_capacity();
        if provenance != Provenance::Projected {
            best = Some(best.map_or(per_million, |b: f64| b.min(per_million)));
        }
        let capacity = d.capacity_tokens_per_month();
        rows.push(RoiRow {
            model: label.clone(),
            tokens_per_s: tps_cell,
            joules_per_token: jpt_cell,
            usd_per_million: Cell {
                text: format!("${per_million:.2}"),
                provenance,
                detail: format!(
                    "device ${:.2}/month ÷ {} tokens/month at capacity + energy ${:.4}/1M",
                    d.fixed_usd_per_month(),
                    num(capacity),
                    d.energy_usd_per_million()
                ),
                ..Cell::default()
            },
            capacity_per_month: format!("{:.1} M tokens", capacity / 1e6),
            break_even: inputs
                .cloud
                .iter()
                .map(|c| match d.break_even_tokens_per_month(c.usd_per_million) {
                    Some(v) if v <= capacity => {
                        format!("{}: {:.2} M tokens/month", c.name, v / 1e6)
                    }
                    Some(v) => format!(
                        "{}: {:.1} M tokens/month (beyond one device's capacity)",
                        c.name,
                        v / 1e6
                    ),
                    None => format!("{}: never (cloud cheaper than the electricity)", c.name),
                })
                .collect(),
        });
        lines.push((
            format!("on device: {label}"),
            volumes
                .iter()
                .filter(|v| **v <= capacity)
                .map(|v| (*v, d.usd_per_month(*v)))
                .collect(),
        ));
    };
    for (id, col) in &columns {
        let refs = reference_runs(runs, id);
        let tps_samples = pooled(&refs, |s| &s.generation_tokens_per_s);
        let (Some(tps), Some((jpt, prov, detail))) =
            (median_of(&tps_samples), joules_per_token(&refs))
        else {
            continue;
        };
        add_row(
            format!("{} (speed and energy from this lab's host)", col.label),
            measured(&tps_samples, "t/s", "requests"),
            tps,
            Cell {
                text: format!("{jpt:.4} J"),
                provenance: prov,
                detail,
                ..Cell::default()
            },
            jpt,
            prov,
            &mut rows,
            &mut lines,
        );
    }
    // The real models on the seed's phone, at their bandwidth roofline: the cheapest they could be.
    let phone_watts = 5.0;
    if let Some(s24) = device_profile::find("galaxy-s24") {
        for id in ["mimo-7b", "phi-4-mini"] {
            let Some(entry) = registry.get(id) else {
                continue;
            };
            let params = twin::parameter_count(&entry.arch);
            let weights = projection::weight_bytes(params, Quant::Q4KM).unwrap_or(1) as f64;
            let tps = projection::roofline_tokens_per_s(
                weights,
                s24.bandwidth_bytes_per_s.unwrap_or(77e9),
            );
            let jpt = phone_watts / tps;
            add_row(
                format!(
                    "{} Q4_K_M on {} (projected upper bound)",
                    entry.name, s24.label
                ),
                Cell {
                    text: format!("{} t/s", num(tps)),
                    provenance: Provenance::Projected,
                    detail: format!(
                        "bandwidth ÷ weights = {} GB/s ÷ {:.2} GB",
                        num(s24.bandwidth_bytes_per_s.unwrap_or(0.0) / GB),
                        weights / GB
                    ),
                    ..Cell::default()
                },
                tps,
                Cell {
                    text: format!("{jpt:.3} J"),
                    provenance: Provenance::Estimated,
                    detail: format!("{phone_watts} W SoC power (assumed) ÷ tokens/s"),
                    ..Cell::default()
                },
                jpt,
                Provenance::Projected,
                &mut rows,
                &mut lines,
            );
        }
    }
    for c in &inputs.cloud {
        lines.push((
            format!("cloud: {}", c.name),
            volumes
                .iter()
                .map(|v| (*v, v / 1e6 * c.usd_per_million))
                .collect(),
        ));
    }
    let inputs_rows = vec![
        RoiInput {
            name: "device".into(),
            value: inputs.device.name.clone(),
            source: String::new(),
        },
        RoiInput {
            name: "device price".into(),
            value: format!("${:.2}", inputs.device.price_usd),
            source: inputs.device.price_source.clone(),
        },
        RoiInput {
            name: "lifetime".into(),
            value: format!("{} months", num(inputs.device.lifetime_months)),
            source: inputs.device.usage_source.clone(),
        },
        RoiInput {
            name: "active generation".into(),
            value: format!("{} h/day", num(inputs.device.active_hours_per_day)),
            source: inputs.device.usage_source.clone(),
        },
        RoiInput {
            name: "electricity".into(),
            value: format!("${}/kWh", inputs.electricity_usd_per_kwh),
            source: inputs.electricity_source.clone(),
        },
    ];
    let clouds = inputs
        .cloud
        .iter()
        .map(|c| RoiInput {
            name: c.name.clone(),
            value: format!("${:.2} per 1M tokens", c.usd_per_million),
            source: format!("{} ({})", c.source, c.date),
        })
        .collect();
    (
        RoiSection {
            inputs: inputs_rows,
            clouds,
            rows,
            formula: "cost per 1M tokens at capacity = (price ÷ lifetime months) ÷ (tokens/s × active hours × 3600 × 30.44) × 10⁶ + joules/token × 10⁶ ÷ 3.6×10⁶ × $/kWh; break-even volume = (price ÷ lifetime months) ÷ (cloud $/1M − energy $/1M) × 10⁶".into(),
            plot_svg: plots::lines("Monthly cost vs monthly tokens (break-even where lines cross)", "tokens per month (log)", "USD per month (log)", &lines),
        },
        best,
    )
}
