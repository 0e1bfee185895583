//! Records build facts (git commit, profile, opt-level) so every stored run says how the harness
//! was built: a debug-build run must never be compared with a release one unawares.
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    let commit = if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    };
    println!("cargo:rustc-env=EDGEBENCH_GIT_COMMIT={commit}");
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let opt = std::env::var("OPT_LEVEL").unwrap_or_default();
    let debug_assertions = std::env::var("CARGO_CFG_DEBUG_ASSERTIONS").is_ok();
    // llama.cpp's own cmake build type (set in .cargo/config.toml), which moves its speed more
    // than our profile does.
    let llama = std::env::var("LLAMA_LIB_PROFILE").unwrap_or_else(|_| "default".into());
    println!(
        "cargo:rustc-env=EDGEBENCH_BUILD_PROFILE={profile} opt-level={opt} debug-assertions={debug_assertions} llama.cpp={llama}"
    );
    println!("cargo:rerun-if-env-changed=LLAMA_LIB_PROFILE");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
}
