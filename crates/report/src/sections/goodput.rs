//! Goodput under latency targets: the highest arrival rate at which the target share of
//! requests met both the TTFT and the TPOT target, with the latency curves against rate.

use super::prelude::*;

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), num)
}

pub fn goodput(runs: &[&Run]) -> GoodputSection {
    let rows = runs
        .iter()
        .filter_map(|r| r.goodput.as_ref().map(|g| (r, g)))
        .map(|(r, g)| {
            let mut points = g.points.clone();
            points.sort_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
            let per_rate = points.first().map_or(0, |p| p.requests);
            let curve = |f: fn(&crate::data::GoodputPoint) -> Option<f64>| {
                points
                    .iter()
                    .filter_map(|p| f(p).map(|v| (p.rate_per_s, v)))
                    .collect::<Vec<_>>()
            };
            GoodputRunRow {
                case: r.case.name.clone(),
                model: r
                    .model
                    .as_ref()
                    .map_or_else(|| r.case.model.clone(), |m| format!("{} {}", m.label, m.quant)),
                targets: format!(
                    "{}TTFT ≤ {} ms and TPOT ≤ {} ms for {:.0}% of requests",
                    g.preset.as_ref().map_or(String::new(), |p| format!("{p}: ")),
                    num(g.ttft_ms),
                    num(g.tpot_ms),
                    100.0 * g.share
                ),
                goodput: match g.goodput_per_s {
                    Some(rate) => Cell {
                        text: format!("{} req/s", num(rate)),
                        spread: String::new(),
                        provenance: Provenance::Measured,
                        detail: format!(
                            "the highest swept rate below every failing one at which the targets held; {} rates of {per_rate} requests each (seeded Poisson arrivals)",
                            points.len()
                        ),
                    },
                    None => Cell::none("no swept rate met the targets"),
                },
                end: g.end.as_str().replace('_', " "),
                plot_svg: crate::plots::lines(
                    &format!("{}: latency against arrival rate", r.case.name),
                    "arrival rate (requests/s)",
                    "ms",
                    &[
                        ("TTFT p50".into(), curve(|p| p.ttft_p50_ms)),
                        ("TTFT p90".into(), curve(|p| p.ttft_p90_ms)),
                        ("TPOT p50".into(), curve(|p| p.tpot_p50_ms)),
                        ("TPOT p90".into(), curve(|p| p.tpot_p90_ms)),
                    ],
                ),
                points: points
                    .iter()
                    .map(|p| GoodputPointRow {
                        rate_per_s: num(p.rate_per_s),
                        requests: p.requests,
                        met_pct: (1000.0 * p.met_share).round() / 10.0,
                        passed: p.passed,
                        ttft_p50_ms: ms(p.ttft_p50_ms),
                        ttft_p90_ms: ms(p.ttft_p90_ms),
                        tpot_p50_ms: ms(p.tpot_p50_ms),
                        tpot_p90_ms: ms(p.tpot_p90_ms),
                    })
                    .collect(),
            }
        })
        .collect();
    GoodputSection {
        rule: "a request meets the targets when it completed, its time to first token (from arrival, queue included) is within the TTFT target and its mean time per output token within the TPOT target; a rate passes when the target share of its requests does. The sweep starts at the scenario's rate, doubles it while it passes, then bisects between the highest passing and the lowest failing rate until they are within 20%, at most max_steps rates and max_seconds of sweeping. Goodput is the highest passing rate below every failing one.".into(),
        rows,
    }
}
