//! The devices the runs come from, with their fingerprints and engine builds.

use super::prelude::*;

pub fn devices(dataset: &Dataset, runs_all: &[&Run]) -> DeviceSection {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in runs_all {
        *counts
            .entry((r.mode.to_string(), r.status.to_string()))
            .or_default() += 1;
    }
    DeviceSection {
        devices: dataset
            .devices
            .iter()
            .map(|d| DeviceRow {
                hostname: d.hostname.clone(),
                fingerprint: d.fingerprint.chars().take(12).collect(),
                cpu: format!("{} ({} logical cores)", d.cpu_model, d.cores_logical),
                ram: bytes(d.ram_bytes as f64),
                os: format!("{} / {}", d.os, d.kernel),
                build_profile: d.build_profile.clone(),
                engines: engine_versions(&d.engine_builds),
                bandwidth: match d.triad_bytes_per_s {
                    Some(b) => Cell {
                        text: format!("{} GB/s", num(b / GB)),
                        provenance: Provenance::Measured,
                        detail: "triad, best of 5".into(),
                        ..Cell::default()
                    },
                    None => Cell::none("not measured"),
                },
            })
            .collect(),
        run_counts: counts
            .into_iter()
            .map(|((mode, status), n)| RunCount { mode, status, n })
            .collect(),
        failures: runs_all
            .iter()
            .filter(|r| matches!(r.status, RunStatus::Failed | RunStatus::Aborted))
            .map(|r| FailureRow {
                case: r.case.name.clone(),
                status: r.status.to_string(),
                error: r.error.clone().unwrap_or_default(),
                stderr_tail: r.stderr_tail.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

pub(crate) fn engine_versions(json: &str) -> String {
    serde_json::from_str::<Vec<serde_json::Value>>(json)
        .map(|v| {
            v.iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["engine"].as_str().unwrap_or("?"),
                        e["version"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|_| json.to_string())
}
