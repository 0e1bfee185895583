//! Phone projections fitted on published measurements, and checked against them.
//!
//! A device class's decode efficiency is what share of its peak DRAM bandwidth llama.cpp turned
//! into weight reads in published runs: tokens/s × bytes read per token ÷ bandwidth. A model
//! file of S bytes then projects to efficiency × bandwidth ÷ S on each profile of the class.
//! Every published measurement is also projected from the *other* measurements of its class
//! (leave-one-out), so the check never compares a fit with the figure it was fitted on.

use super::prelude::*;
use crate::inputs::{DeviceClassFile, PublishedMeasurementFile};

/// The largest projection ÷ published ratio error the report calls "within" (issue goal).
pub const CHECK_TOLERANCE: f64 = 0.25;

/// A class's efficiency: the envelope of its measurements' intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct Efficiency {
    pub low: f64,
    pub high: f64,
    /// The measurements it was fitted on (ids).
    pub from: Vec<String>,
}

impl Efficiency {
    /// The geometric middle of the interval: ratios are symmetric around it.
    #[must_use]
    pub fn mid(&self) -> f64 {
        (self.low * self.high).sqrt()
    }

    /// The projected decode rate, with its interval, for `weights` bytes at `bandwidth` B/s.
    #[must_use]
    pub fn project(&self, bandwidth: f64, weights: f64) -> (f64, f64, f64) {
        let at = |e: f64| e * bandwidth / weights;
        (at(self.mid()), at(self.low), at(self.high))
    }
}

/// One measurement's efficiency interval: the slowest rate on the fastest memory, the fastest on
/// the slowest.
fn efficiency_of(m: &PublishedMeasurementFile) -> (f64, f64) {
    let w = m.weights_gb * GB;
    let [tps_lo, tps_hi] = m.generation_tokens_per_s;
    let [bw_lo, bw_hi] = m.bandwidth_gb_s;
    (tps_lo * w / (bw_hi * GB), tps_hi * w / (bw_lo * GB))
}

/// The class of a device profile, if the claims file puts it in one.
#[must_use]
pub fn class_of<'a>(claims: &'a ClaimsFile, profile: &str) -> Option<&'a DeviceClassFile> {
    claims
        .device_class
        .iter()
        .find(|c| c.profiles.iter().any(|p| p == profile))
}

/// The efficiency of `class` fitted on its measurements, leaving out `excluding`.
#[must_use]
pub fn class_efficiency(
    claims: &ClaimsFile,
    class: &str,
    excluding: Option<&str>,
) -> Option<Efficiency> {
    let mut fit: Option<Efficiency> = None;
    for m in claims
        .measurement
        .iter()
        .filter(|m| m.device_class == class && Some(m.id.as_str()) != excluding)
    {
        let (lo, hi) = efficiency_of(m);
        let f = fit.get_or_insert_with(|| Efficiency {
            low: lo,
            high: hi,
            from: Vec::new(),
        });
        f.low = f.low.min(lo);
        f.high = f.high.max(hi);
        f.from.push(m.id.clone());
    }
    fit
}

/// A published measurement projected from its class's other measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub measurement: String,
    /// Projection ÷ published, both at their middles; `None` when the class has no other
    /// measurement to fit on.
    pub ratio: Option<f64>,
    pub projected: Option<(f64, f64, f64)>,
    pub published_mid: f64,
    pub fitted_on: Vec<String>,
}

impl Check {
    #[must_use]
    pub fn within_tolerance(&self) -> Option<bool> {
        self.ratio.map(|r| (r - 1.0).abs() <= CHECK_TOLERANCE)
    }
}

#[must_use]
pub fn check(claims: &ClaimsFile, m: &PublishedMeasurementFile) -> Check {
    let [lo, hi] = m.generation_tokens_per_s;
    let published_mid = (lo * hi).sqrt();
    let fit = class_efficiency(claims, &m.device_class, Some(&m.id));
    let projected = fit.as_ref().map(|f| {
        let [bw_lo, bw_hi] = m.bandwidth_gb_s;
        f.project((bw_lo * bw_hi).sqrt() * GB, m.weights_gb * GB)
    });
    Check {
        measurement: m.id.clone(),
        ratio: projected.map(|(mid, _, _)| mid / published_mid),
        projected,
        published_mid,
        fitted_on: fit.map(|f| f.from).unwrap_or_default(),
    }
}

/// The checks that bear on a projection of `model` (a real model's id, e.g. `phi-4-mini`) to
/// a profile of `class`: the published measurements of that model in that class.
#[must_use]
pub fn checks_for(claims: &ClaimsFile, class: &str, model: &str) -> Vec<Check> {
    claims
        .measurement
        .iter()
        .filter(|m| m.device_class == class && m.model == model)
        .map(|m| check(claims, m))
        .collect()
}

/// The section: every published measurement beside its leave-one-out projection.
#[must_use]
pub fn projection_checks(claims: &ClaimsFile) -> ProjectionCheckSection {
    let rows = claims
        .measurement
        .iter()
        .map(|m| {
            let c = check(claims, m);
            let source = claims
                .source
                .iter()
                .find(|s| s.id == m.source)
                .map_or(m.source.clone(), |s| format!("{} ({})", s.title, s.location));
            let [lo, hi] = m.generation_tokens_per_s;
            let published = Cell {
                text: if lo == hi {
                    format!("{lo:.1} t/s")
                } else {
                    format!("{lo:.1}–{hi:.1} t/s")
                },
                provenance: Provenance::Claimed,
                detail: format!("{source}: {}", m.location),
                ..Cell::default()
            };
            let projected = match c.projected {
                Some((mid, low, high)) => Cell {
                    text: format!("{mid:.1} t/s"),
                    spread: format!("{low:.1}–{high:.1}"),
                    provenance: Provenance::Projected,
                    detail: format!(
                        "efficiency fitted on {} (not on this measurement) × {}–{} GB/s ÷ {} GB read per token",
                        c.fitted_on.join(", "),
                        num(m.bandwidth_gb_s[0]),
                        num(m.bandwidth_gb_s[1]),
                        num(m.weights_gb)
                    ),
                },
                None => Cell::none(
                    "no other published measurement in this device class to fit on: this one is the class's only fit, so it checks nothing",
                ),
            };
            let verdict = match (c.ratio, c.within_tolerance()) {
                (Some(r), Some(true)) => format!("projection ÷ published = {r:.2}: within 25%"),
                (Some(r), _) => format!("projection ÷ published = {r:.2}: off by more than 25%"),
                (None, _) => "not checkable (only measurement of its class)".into(),
            };
            ProjectionCheckRow {
                measurement: m.id.clone(),
                device: m.device.clone(),
                model: format!("{} {}", m.model, m.quant),
                published,
                projected,
                ratio: c.ratio,
                verdict,
            }
        })
        .collect::<Vec<_>>();
    let fits = claims
        .device_class
        .iter()
        .map(|class| {
            let fit = class_efficiency(claims, &class.id, None);
            ClassFitRow {
                class: class.label.clone(),
                profiles: class.profiles.join(", "),
                efficiency: match fit {
                    Some(f) => Cell {
                        text: format!("{:.0}%", 100.0 * f.mid()),
                        spread: format!("{:.0}–{:.0}%", 100.0 * f.low, 100.0 * f.high),
                        provenance: Provenance::Projected,
                        detail: format!(
                            "tokens/s × bytes per token ÷ peak bandwidth of {}; the interval's envelope, its geometric middle shown",
                            f.from.join(", ")
                        ),
                    },
                    None => Cell::none("no published measurement in this class"),
                },
            }
        })
        .collect();
    let checked = rows.iter().filter(|r| r.ratio.is_some()).count();
    let within = rows
        .iter()
        .filter_map(|r| r.ratio)
        .filter(|r| (r - 1.0).abs() <= CHECK_TOLERANCE)
        .count();
    ProjectionCheckSection {
        summary: format!(
            "{checked} of {} published measurements could be checked (their class has another measurement to fit on); {within} of those are within 25% of the projection.",
            rows.len()
        ),
        rows,
        fits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(measurements: &str) -> ClaimsFile {
        let text = format!(
            "format = 1\n[[source]]\nid = \"s\"\ntitle = \"t\"\nwhere = \"w\"\n[[device_class]]\nid = \"phones\"\nlabel = \"Phones\"\nprofiles = [\"galaxy-s24\"]\n{measurements}"
        );
        crate::inputs::parse_claims("claims.toml", &text).expect("valid")
    }

    fn measurement(id: &str, weights_gb: f64, tps: f64) -> String {
        format!(
            "[[measurement]]\nid = \"{id}\"\nsource = \"s\"\nwhere = \"x\"\ndevice_class = \"phones\"\ndevice = \"d\"\nmodel = \"{id}\"\nquant = \"Q4_0\"\nweights_gb = {weights_gb}\nbandwidth_gb_s = [80.0, 80.0]\ngeneration_tokens_per_s = [{tps}, {tps}]\n"
        )
    }

    #[test]
    fn a_class_is_fitted_on_its_measurements_and_projects_by_bytes_per_token() {
        // 10 t/s × 2 GB ÷ 80 GB/s = 25% efficiency; twice the bytes, half the rate.
        let c = claims(&measurement("a", 2.0, 10.0));
        let fit = class_efficiency(&c, "phones", None).expect("fit");
        assert!((fit.mid() - 0.25).abs() < 1e-12, "{fit:?}");
        let (mid, lo, hi) = fit.project(80e9, 4e9);
        assert!((mid - 5.0).abs() < 1e-9 && lo == hi, "{mid} {lo} {hi}");
        assert_eq!(
            class_of(&c, "galaxy-s24").map(|k| k.id.as_str()),
            Some("phones")
        );
        assert!(class_of(&c, "m2-max").is_none());
    }

    #[test]
    fn a_check_never_uses_the_measurement_it_checks() {
        // Alone in its class: nothing to check with.
        let alone = claims(&measurement("a", 2.0, 10.0));
        let c = check(&alone, &alone.measurement[0]);
        assert_eq!((c.ratio, c.within_tolerance()), (None, None));
        // b at 30% efficiency projects a (25%) 20% high: within 25%; a far slower third
        // measurement is flagged, and no check was fitted on itself.
        let three = claims(&format!(
            "{}{}{}",
            measurement("a", 2.0, 10.0),
            measurement("b", 2.0, 12.0),
            measurement("slow", 2.0, 2.0)
        ));
        let a = check(&three, &three.measurement[0]);
        assert!(!a.fitted_on.contains(&"a".to_string()), "{a:?}");
        let slow = check(&three, &three.measurement[2]);
        assert_eq!(slow.within_tolerance(), Some(false), "{slow:?}");
        let two = claims(&format!(
            "{}{}",
            measurement("a", 2.0, 10.0),
            measurement("b", 2.0, 12.0)
        ));
        let a = check(&two, &two.measurement[0]);
        let r = a.ratio.expect("checked");
        assert!(
            (r - 1.2).abs() < 1e-9 && a.within_tolerance() == Some(true),
            "{a:?}"
        );
        let section = projection_checks(&two);
        assert_eq!(section.rows.len(), 2);
        assert!(section.summary.starts_with("2 of 2"), "{}", section.summary);
    }
}
