//! SVG plots drawn with plotters into strings (no files, no fonts to load: SVG text is laid out
//! by the browser). An empty input gives an empty string; templates then say "no data".

use plotters::prelude::*;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The log-scale range that holds every value, padded by a factor on both sides.
fn log_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (hi > 0.0).then(|| (lo / 2.0, hi * 2.0))
}

/// Bars of `series` (one colour each) grouped by `groups`, on a log axis.
pub fn grouped_bars(
    title: &str,
    groups: &[String],
    series: &[(String, Vec<Option<f64>>)],
    y_label: &str,
) -> String {
    let Some((lo, hi)) = log_range(series.iter().flat_map(|(_, v)| v.iter().flatten().copied()))
    else {
        return String::new();
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        if root.fill(&WHITE).is_err() {
            return String::new();
        }
        let n = groups.len() as f64;
        let Ok(mut chart) = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..n, (lo..hi).log_scale())
        else {
            return String::new();
        };
        let labels = groups.to_vec();
        let _ = chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups.len().max(1) * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 {
                    labels.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(y_label)
            .draw();
        let width = 0.8 / series.len().max(1) as f64;
        for (s, (name, values)) in series.iter().enumerate() {
            let c = color(s);
            let bars = values.iter().enumerate().filter_map(|(g, v)| {
                let v = (*v)?;
                let x0 = g as f64 + 0.1 + width * s as f64;
                Some(Rectangle::new(
                    [(x0, lo), (x0 + width * 0.95, v)],
                    c.filled(),
                ))
            });
            if let Ok(a) = chart.draw_series(bars) {
                a.label(name.clone()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled())
                });
            }
        }
        let _ = chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw();
        let _ = root.present();
    }
    svg
}

/// Lines of `(x, y)` points, both axes logarithmic.
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    let Some((ylo, yhi)) = log_range(series.iter().flat_map(|(_, p)| p.iter().map(|p| p.1))) else {
        return String::new();
    };
    let Some((xlo, xhi)) = log_range(series.iter().flat_map(|(_, p)| p.iter().map(|p| p.0))) else {
        return String::new();
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 460)).into_drawing_area();
        if root.fill(&WHITE).is_err() {
            return String::new();
        }
        let Ok(mut chart) = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((xlo..xhi).log_scale(), (ylo..yhi).log_scale())
        else {
            return String::new();
        };
        let _ = chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw();
        for (i, (name, points)) in series.iter().enumerate() {
            if points.is_empty() {
                continue;
            }
            let c = color(i);
            if let Ok(a) =
                chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
            {
                a.label(name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2))
                });
            }
            let _ = chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled())));
        }
        let _ = chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw();
        let _ = root.present();
    }
    svg
}

/// A case's nightly history: each night's value, the reference band (median ± `band`
/// spreads, shaded, with the median as a line) and, when the verdict dated one, the night the
/// change began (a vertical line; that night and the later ones drawn in red).
pub fn history(
    title: &str,
    y_label: &str,
    values: &[f64],
    reference: (f64, f64),
    band: f64,
    change_at: Option<usize>,
) -> String {
    let (median, spread) = reference;
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite
        .chain([median - band * spread, median + band * spread])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if values.is_empty() || !(lo.is_finite() && hi.is_finite()) {
        return String::new();
    }
    let pad = ((hi - lo) * 0.1).max(hi.abs() * 1e-3);
    let (lo, hi) = (lo - pad, hi + pad);
    let nights = values.len() as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 240)).into_drawing_area();
        if root.fill(&WHITE).is_err() {
            return String::new();
        }
        let Ok(mut chart) = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..nights - 0.5, lo..hi)
        else {
            return String::new();
        };
        let _ = chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("run (oldest first)")
            .y_desc(y_label)
            .draw();
        let band_color = color(0).mix(0.15);
        let _ = chart.draw_series(std::iter::once(Rectangle::new(
            [
                (-0.5, median - band * spread),
                (nights - 0.5, median + band * spread),
            ],
            band_color.filled(),
        )));
        let _ = chart.draw_series(LineSeries::new(
            [(-0.5, median), (nights - 0.5, median)],
            color(0).stroke_width(1),
        ));
        let _ = chart.draw_series(LineSeries::new(
            values.iter().enumerate().map(|(i, v)| (i as f64, *v)),
            BLACK.mix(0.4).stroke_width(1),
        ));
        let changed = |i: usize| change_at.is_some_and(|c| i >= c);
        let _ = chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            let c = if changed(i) { color(3) } else { BLACK };
            Circle::new((i as f64, *v), 3, c.filled())
        }));
        if let Some(c) = change_at {
            let x = c as f64 - 0.5;
            let _ = chart.draw_series(LineSeries::new(
                [(x, lo), (x, hi)],
                color(3).stroke_width(2),
            ));
        }
        let _ = root.present();
    }
    svg
}

/// A sustained run's tokens/s against time, the onset threshold as a dashed line and the
/// throttle onset, when there was one, as a red vertical line.
pub fn sustained(
    title: &str,
    points: &[(f64, f64)],
    threshold: f64,
    onset_s: Option<f64>,
) -> String {
    let Some(t_max) = points.iter().map(|p| p.0).reduce(f64::max) else {
        return String::new();
    };
    let y_max = points.iter().map(|p| p.1).fold(threshold, f64::max) * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 300)).into_drawing_area();
        if root.fill(&WHITE).is_err() {
            return String::new();
        }
        let Ok(mut chart) = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_max.max(1.0), 0.0..y_max.max(1.0))
        else {
            return String::new();
        };
        let _ = chart
            .configure_mesh()
            .x_desc("seconds decoding")
            .y_desc("tokens/s (1 s windows)")
            .draw();
        let _ = chart.draw_series(LineSeries::new(
            points.iter().copied(),
            color(0).stroke_width(2),
        ));
        let _ = chart.draw_series(DashedLineSeries::new(
            [(0.0, threshold), (t_max, threshold)],
            6,
            4,
            BLACK.mix(0.5).stroke_width(1),
        ));
        if let Some(t) = onset_s {
            let _ = chart.draw_series(LineSeries::new(
                [(t, 0.0), (t, y_max)],
                color(3).stroke_width(2),
            ));
        }
        let _ = root.present();
    }
    svg
}

/// Labelled points on linear axes (x from 0), e.g. speed change against KLD.
pub fn scatter(title: &str, x_label: &str, y_label: &str, points: &[(String, f64, f64)]) -> String {
    let finite: Vec<&(String, f64, f64)> = points
        .iter()
        .filter(|p| p.1.is_finite() && p.2.is_finite())
        .collect();
    if finite.is_empty() {
        return String::new();
    }
    let xmax = finite.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-6) * 1.25;
    let (ylo, yhi) = finite
        .iter()
        .fold((0.0f64, 0.0f64), |(lo, hi), p| (lo.min(p.2), hi.max(p.2)));
    let pad = ((yhi - ylo) * 0.15).max(1.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 440)).into_drawing_area();
        if root.fill(&WHITE).is_err() {
            return String::new();
        }
        let Ok(mut chart) = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..xmax, (ylo - pad)..(yhi + pad))
        else {
            return String::new();
        };
        let _ = chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw();
        for (i, (label, x, y)) in finite.iter().map(|p| (&p.0, p.1, p.2)).enumerate() {
            let c = color(i);
            let _ = chart.draw_series(std::iter::once(Circle::new((x, y), 5, c.filled())));
            let _ = chart.draw_series(std::iter::once(Text::new(
                label.clone(),
                (x, y),
                ("sans-serif", 12).into_font().color(&c),
            )));
        }
        let _ = root.present();
    }
    svg
}
