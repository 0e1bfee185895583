//! Facts of this host and process that every run records: ids, clocks, file hashes, peak RSS.
//! (The device fingerprint is `fingerprint`; bandwidth, CPU time and energy are `device_facts`.)

use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use edgebench_backend::TokenId;
use edgebench_core::Case;

use crate::error::RunError;

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn unique_id(parts: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    edgebench_core::sha256_hex(format!("{parts}|{}|{nanos}|{n}", std::process::id()).as_bytes())
        [..32]
        .to_owned()
}

/// A fresh id for one harness invocation.
#[must_use]
pub fn new_invocation_id() -> String {
    unique_id("invocation")
}

/// The invocation a harness process stores its runs under: `given` (the value of
/// `EDGEBENCH_INVOCATION`, which `nightly --processes K` sets to the night's id for each of its
/// K processes) unless it is missing or blank, else a fresh one.
#[must_use]
pub fn invocation_id(given: Option<String>) -> String {
    given
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(new_invocation_id)
}

/// A fresh, globally unique run id for `case`.
#[must_use]
pub fn new_run_id(case: &Case) -> String {
    unique_id(&case.key())
}

/// Size and sha256 of a model file.
pub fn model_file_hash(path: &Path) -> Result<(u64, String), RunError> {
    use sha2::Digest;
    let err = |source| RunError::ReadModel {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(err)?.len();
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Resets the kernel's peak-RSS counter for this process (Linux), so VmHWM measures one case.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Resident set size of this process now, in bytes (Linux `VmRSS`).
#[must_use]
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`).
#[must_use]
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Digest of generated token ids (little-endian i32s), for bit-for-bit comparison of reruns.
#[must_use]
pub fn token_digest(tokens: &[TokenId]) -> String {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    edgebench_core::sha256_hex(&bytes)
}

/// This host's physical memory (bytes), the memory guard's budget when a scenario sets none.
#[must_use]
pub fn total_memory_bytes() -> Option<u64> {
    use sysinfo::{MemoryRefreshKind, RefreshKind, System};
    static TOTAL: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(|| {
        let sys = System::new_with_specifics(
            RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        sys.ok().map(|s| s.total_memory()).filter(|&b| b > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_invocation_is_kept_and_a_blank_or_missing_one_is_fresh() {
        assert_eq!(invocation_id(Some("night-lab-1".into())), "night-lab-1");
        let fresh = [invocation_id(None), invocation_id(Some("  ".into()))];
        assert!(fresh.iter().all(|id| id.len() == 32), "{fresh:?}");
        assert_ne!(fresh[0], fresh[1]);
    }
}
