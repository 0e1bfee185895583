//! `cargo xtask lab simulate`: a seeded year of a device lab written through the real ingest
//! path (`ingest_records`, as `nightly` and `ingest` do), night by night, with the rates a lab
//! operator would ask for: runs/s ingested by 1 or N writers, prune time, database size per
//! device-night. Every number it prints is measured in that one run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use edgebench_store::synthetic::lab::{LabSpec, LabYear};
use edgebench_store::{AnyStore, Location};

use crate::cli::SimulateArgs;

/// Time spent in each phase, summed over the nights.
#[derive(Debug, Default)]
struct Phases {
    generate: Duration,
    ingest: Duration,
    prune: Duration,
}

pub fn simulate(_root: &Path, args: &SimulateArgs) -> Result<()> {
    let location = Location::parse(&args.db)?;
    let spec = LabSpec {
        devices: args.devices,
        nights: args.nights,
        cases: args.cases,
        requests_per_run: args.requests,
        latencies_per_request: args.latencies,
        seed: args.seed,
    };
    let lab = LabYear::new(spec);
    if let Some(path) = &args.truth {
        std::fs::write(path, truth_json(&lab))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut stores = (0..args.writers)
        .map(|_| AnyStore::open(&location).with_context(|| format!("opening {location}")))
        .collect::<Result<Vec<_>>>()?;
    eprintln!(
        "simulating {} devices × {} cases × {} nights = {} runs ({} raw samples each) into {location} with {} writer(s){}",
        spec.devices,
        spec.cases,
        spec.nights,
        spec.runs(),
        spec.samples_per_run(),
        args.writers,
        args.keep_raw.map_or(String::new(), |k| format!(
            ", keeping {k} nights of raw samples"
        )),
    );
    let source = Path::new("simulated lab");
    let mut phases = Phases::default();
    let mut added = 0u64;
    // (runs, time) ingested with raw samples and as summaries only.
    let (mut with_raw, mut summary_only) = ((0u64, Duration::ZERO), (0u64, Duration::ZERO));
    let started = Instant::now();
    for night in 0..spec.nights {
        let t = Instant::now();
        let summaries_only = args
            .raw_nights
            .is_some_and(|keep| night + keep < spec.nights);
        let records = if summaries_only {
            // Stamped as pruned on the night the window left it behind.
            let pruned_at = LabYear::started_at_ms(0, 0, night + args.raw_nights.unwrap_or(0));
            lab.night_pruned(night, Some(pruned_at))
        } else {
            lab.night(night)
        };
        phases.generate += t.elapsed();
        let t = Instant::now();
        let n = ingest(&mut stores, source, &records)
            .with_context(|| format!("ingesting night {night} into {location}"))?;
        added += n;
        let spent = t.elapsed();
        phases.ingest += spent;
        if summaries_only {
            summary_only.0 += n;
            summary_only.1 += spent;
        } else {
            with_raw.0 += n;
            with_raw.1 += spent;
        }
        if let Some(keep) = args.keep_raw {
            let t = Instant::now();
            stores[0]
                .prune_raw(keep)
                .with_context(|| format!("pruning {location} after night {night}"))?;
            phases.prune += t.elapsed();
        }
        if night % 10 == 9 || night + 1 == spec.nights {
            eprintln!(
                "  night {}/{}: {added} runs, ingest {:.0} runs/s so far, {:.0} s elapsed",
                night + 1,
                spec.nights,
                added as f64 / phases.ingest.as_secs_f64().max(1e-9),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let size = stores[0]
        .size_bytes()
        .with_context(|| format!("sizing {location}"))?;
    let runs = added as f64;
    let ingest_s = phases.ingest.as_secs_f64().max(1e-9);
    println!("simulated lab: {} runs added to {location}", added);
    println!(
        "  ingest: {:.1} s for {} runs = {:.0} runs/s, {:.0} raw samples/s ({} writer(s))",
        ingest_s,
        added,
        runs / ingest_s,
        with_raw.0 as f64 * spec.samples_per_run() as f64 / ingest_s,
        args.writers
    );
    for (what, (n, t)) in [
        ("with raw samples", with_raw),
        ("as summaries only (--raw-nights)", summary_only),
    ] {
        if n > 0 && summary_only.0 > 0 {
            println!(
                "    of which {what}: {n} runs in {:.1} s = {:.0} runs/s",
                t.as_secs_f64(),
                n as f64 / t.as_secs_f64().max(1e-9)
            );
        }
    }
    println!(
        "  generation (not ingest): {:.1} s",
        phases.generate.as_secs_f64()
    );
    if args.keep_raw.is_some() {
        println!(
            "  prune after each night: {:.2} s in all, {:.0} ms per night",
            phases.prune.as_secs_f64(),
            1e3 * phases.prune.as_secs_f64() / spec.nights.max(1) as f64
        );
    }
    let device_nights = (spec.devices * spec.nights).max(1) as f64;
    println!(
        "  database size: {:.1} MiB = {:.0} KiB per device-night",
        size as f64 / (1 << 20) as f64,
        size as f64 / 1024.0 / device_nights
    );
    println!(
        "  injected: {} regressions ({} fresh at the end), {} throttling device(s)",
        lab.regressions.len(),
        lab.fresh_regressions().len(),
        lab.throttling.len()
    );
    Ok(())
}

/// Ingests one night's records, split evenly across the writers (each its own connection).
fn ingest(
    stores: &mut [AnyStore],
    source: &Path,
    records: &[edgebench_store::exchange::Record],
) -> Result<u64> {
    let per_writer = records.len().div_ceil(stores.len().max(1)).max(1);
    let results: Vec<Result<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter_mut()
            .zip(records.chunks(per_writer))
            .map(|(store, chunk)| {
                scope.spawn(move || -> Result<u64> {
                    let summary = store.ingest_records(source, chunk)?;
                    Ok(summary.added + summary.completed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a writer thread panicked")))
            })
            .collect()
    });
    results.into_iter().sum()
}

/// The simulation's truth as JSON: what was injected where.
fn truth_json(lab: &LabYear) -> String {
    let regressions: Vec<serde_json::Value> = lab
        .regressions
        .iter()
        .map(|r| {
            serde_json::json!({
                "device": LabYear::hostname(r.device),
                "case": LabYear::case_name(r.case),
                "night": r.night,
                "slowdown": r.slowdown,
                "recovers_at": r.recovers_at,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "seed": lab.spec.seed,
        "regressions": regressions,
        "throttling_devices": lab.throttling.iter().map(|&d| LabYear::hostname(d)).collect::<Vec<_>>(),
    }))
    .unwrap_or_default()
}
