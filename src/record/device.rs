//! The device row stored with every run (its fingerprint): this host's hardware, OS, engine builds
//! and harness build, or what a remote server says about itself.

use edgebench_backend::EngineBuild;
use edgebench_store::DeviceRow;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// CPU feature flags that matter for inference kernels, as detected at run time.
#[must_use]
pub fn cpu_features() -> Vec<&'static str> {
    let mut f = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! detect {
            ($($name:tt),*) => { $( if std::arch::is_x86_feature_detected!($name) { f.push($name); } )* };
        }
        detect!(
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512vnni",
            "avx512bf16"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! detect {
            ($($name:tt),*) => { $( if std::arch::is_aarch64_feature_detected!($name) { f.push($name); } )* };
        }
        detect!("neon", "dotprod", "i8mm", "sve", "fp16");
    }
    f
}

/// Reads this machine's fingerprint. `engines` are the builds of the engines this harness links.
#[must_use]
pub fn collect(engines: &[EngineBuild]) -> DeviceRow {
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    )
    .ok();
    let cpu_model = sys
        .as_ref()
        .and_then(|s| s.cpus().first().map(|c| c.brand().trim().to_owned()))
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cores_logical = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let ram_bytes = sys.as_ref().map_or(0, System::total_memory);
    let hostname = System::host_name().unwrap_or_else(|_| "unknown".into());
    let os = System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.to_owned());
    let kernel = System::kernel_version().unwrap_or_else(|_| "unknown".into());
    let cores_physical = System::physical_core_count().ok().map(|n| n as u32);
    let features = cpu_features().join(",");
    let engine_builds = serde_json::Value::Array(
        engines
            .iter()
            .map(|e| {
                serde_json::json!({
                    "engine": e.engine, "version": e.version,
                    "compiled_backends": e.compiled_backends, "system_info": e.system_info,
                })
            })
            .collect(),
    )
    .to_string();
    let build_profile = format!("{} ({})", crate::BUILD_PROFILE, std::env::consts::ARCH);
    let details = serde_json::json!({
        "hostname": hostname, "cpu_model": cpu_model, "cpu_features": features,
        "cores_physical": cores_physical, "cores_logical": cores_logical, "ram_bytes": ram_bytes,
        "os": os, "kernel": kernel, "engine_builds": engine_builds, "build_profile": build_profile,
        "tool_version": crate::TOOL_VERSION,
    })
    .to_string();
    DeviceRow {
        fingerprint: edgebench_core::sha256_hex(details.as_bytes()),
        hostname,
        cpu_model,
        cpu_features: features,
        cores_physical,
        cores_logical,
        ram_bytes,
        os,
        kernel,
        engine_builds,
        build_profile,
        details,
    }
}

/// The fingerprint of a remote device: what its server says about itself (llama-server's
/// `/props`, without the chat template) and the declared device profile, keyed with the
/// endpoint's URL (never its credentials). Runs on it are stored against this device, so the
/// report shows "<profile> via <server>" next to local runs.
#[must_use]
pub fn remote(url: &str, server_facts: &str, device_profile: Option<&str>) -> DeviceRow {
    let facts: serde_json::Value = serde_json::from_str(server_facts).unwrap_or_default();
    let props = facts.get("props").cloned().unwrap_or_default();
    let server = props
        .get("server")
        .and_then(|s| s.as_str())
        .map(str::to_owned)
        .or_else(|| {
            props
                .get("build_info")
                .and_then(|b| b.as_str())
                .map(|b| format!("llama-server {b}"))
        })
        .unwrap_or_else(|| "an OpenAI-compatible server".to_owned());
    let profile = device_profile.and_then(edgebench_core::device_profile::find);
    let label = profile.map_or_else(|| "remote device".to_owned(), |p| p.label.to_owned());
    let details = serde_json::json!({
        "url": url, "device_profile": device_profile, "server": server, "props": props,
    })
    .to_string();
    DeviceRow {
        fingerprint: edgebench_core::sha256_hex(details.as_bytes()),
        hostname: format!(
            "{} via {server} at {url}",
            device_profile.unwrap_or("remote")
        ),
        cpu_model: label,
        cpu_features: String::new(),
        cores_physical: None,
        cores_logical: props
            .pointer("/default_generation_settings/n_threads")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0) as u32,
        ram_bytes: profile.map_or(0, |p| p.ram_bytes),
        os: "remote".to_owned(),
        kernel: "remote".to_owned(),
        engine_builds: props.to_string(),
        build_profile: "remote".to_owned(),
        details,
    }
}
