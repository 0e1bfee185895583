//! The lab overview: every device × case of the selection, coloured by its latest verdict, so
//! a 20-device lab's night reads at a glance; the flagged cells listed with their series pages.

use std::fmt::Write as _;

use super::prelude::*;

/// Verdicts from worst to best; a cell shows the worst over its metrics.
const ORDER: [&str; 5] = [
    "regressed",
    "improved",
    "too few samples",
    "noise",
    "first run",
];

fn colour(verdict: &str) -> &'static str {
    match verdict {
        "regressed" => "#d9534f",
        "improved" => "#5cb85c",
        "too few samples" => "#f0ad4e",
        "noise" => "#dcdcdc",
        _ => "#ffffff",
    }
}

fn rank(verdict: &str) -> usize {
    ORDER
        .iter()
        .position(|v| *v == verdict)
        .unwrap_or(ORDER.len())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The lab section from the current runs and the regression verdicts on them.
pub fn lab(
    current: &[&Run],
    devices: &[Device],
    regressions: &RegressionSection,
    window: String,
) -> LabSection {
    let hostname = |id: i64| hostname(devices, id);
    // (device, case) → (verdict, page of the worst flagged metric)
    let mut cells: BTreeMap<(String, String), (&str, String)> = BTreeMap::new();
    for r in current {
        cells.insert(
            (hostname(r.device_id), r.case.name.clone()),
            ("first run", String::new()),
        );
    }
    for row in &regressions.rows {
        let key = (row.device.clone(), row.case.clone());
        let cell = cells.entry(key).or_insert(("first run", String::new()));
        if cell.0 == "first run" || rank(&row.verdict) < rank(cell.0) {
            let verdict = ORDER
                .iter()
                .find(|v| **v == row.verdict)
                .copied()
                .unwrap_or("noise");
            *cell = (verdict, row.page.clone());
        }
    }
    let hosts: BTreeSet<&str> = cells.keys().map(|(d, _)| d.as_str()).collect();
    let cases: BTreeSet<&str> = cells.keys().map(|(_, c)| c.as_str()).collect();
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for (verdict, _) in cells.values() {
        *counts.entry(rank(verdict)).or_default() += 1;
    }
    let flagged = regressions
        .rows
        .iter()
        .filter(|r| r.verdict == "regressed" || r.verdict == "improved")
        .map(|r| LabFlag {
            device: r.device.clone(),
            case: r.case.clone(),
            metric: r.metric.clone(),
            verdict: r.verdict.clone(),
            change_pct: r.change_pct,
            page: r.page.clone(),
        })
        .collect();
    LabSection {
        devices: hosts.len(),
        cases: cases.len(),
        window,
        counts: counts
            .into_iter()
            .map(|(rank, n)| format!("{}: {n}", ORDER.get(rank).unwrap_or(&"other")))
            .collect(),
        heat_map_svg: if hosts.len() >= 2 {
            heat_map(&hosts, &cases, &cells)
        } else {
            String::new()
        },
        flagged,
    }
}

/// Width of the whole map; cells shrink to fit it (at least 3 px).
const MAP_WIDTH: usize = 1180;
const LABEL_WIDTH: usize = 150;
const ROW_HEIGHT: usize = 14;

/// The heat map as SVG: one row per device, one column per case (in name order), each cell's
/// title naming both and its verdict, flagged cells linking to their series page.
fn heat_map(
    hosts: &BTreeSet<&str>,
    cases: &BTreeSet<&str>,
    cells: &BTreeMap<(String, String), (&str, String)>,
) -> String {
    let cell_w = ((MAP_WIDTH - LABEL_WIDTH) / cases.len().max(1)).clamp(3, 24);
    let width = LABEL_WIDTH + cell_w * cases.len() + 10;
    let height = 8 + ROW_HEIGHT * hosts.len() + 10;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="heat-map" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    for (row, host) in hosts.iter().enumerate() {
        let y = 4 + row * ROW_HEIGHT;
        let _ = write!(
            svg,
            r#"<text x="0" y="{}">{}</text>"#,
            y + ROW_HEIGHT - 3,
            escape(host)
        );
        for (col, case) in cases.iter().enumerate() {
            let x = LABEL_WIDTH + col * cell_w;
            let Some((verdict, page)) = cells.get(&((*host).to_owned(), (*case).to_owned())) else {
                continue;
            };
            let rect = format!(
                r##"<rect x="{x}" y="{y}" width="{}" height="{}" fill="{}" stroke="#fff" stroke-width="0.5"><title>{} · {}: {verdict}</title></rect>"##,
                cell_w,
                ROW_HEIGHT - 1,
                colour(verdict),
                escape(host),
                escape(case)
            );
            if page.is_empty() {
                svg.push_str(&rect);
            } else {
                let _ = write!(svg, r#"<a href="{}">{rect}</a>"#, escape(page));
            }
        }
    }
    svg.push_str("</svg>");
    svg
}
