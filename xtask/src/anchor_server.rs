//! `cargo xtask anchor llama-server`: the HTTP engine measured against a server that is not
//! ours. For each model, llama.cpp's `llama-server` (built from the pinned sdist, see
//! `anchor`) starts on 127.0.0.1:8097 with the scenario's threads, and the model's cases of
//! `scenarios/anchor_server.toml` run: llama.cpp in process and the HTTP engine against that
//! server, one after the other. Prints HTTP tokens/s ÷ in-process tokens/s and the TTFT the
//! HTTP path adds, from the stored runs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use edgebench_report::data;

const SCENARIO: &str = "anchor_server";
/// The port `scenarios/anchor_server.toml` names.
const PORT: u16 = 8097;
const THREADS: u32 = 2;

/// Whether llama-server's `/health` answers 200.
fn healthy() -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", PORT)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

pub fn llama_server(root: &Path, models: &[String], bin: Option<&Path>) -> Result<()> {
    crate::setup::ensure_build_tools()?;
    crate::models::fetch_all(root)?;
    if TcpStream::connect(("127.0.0.1", PORT)).is_ok() {
        bail!("something already listens on 127.0.0.1:{PORT}; stop it first");
    }
    let (server, described) = crate::anchor::llama_cpp_tool(root, bin, "llama-server")?;
    let db = root.join("target/anchor/anchor-server.sqlite");
    let log = crate::setup::log_file("llama-server")?;
    for model in models {
        let (quant, path) = crate::anchor::model_file(root, model)?;
        let mut child = Command::new(&server)
            .arg("-m")
            .arg(&path)
            .args(["--host", "127.0.0.1", "--port", &PORT.to_string()])
            .args(["-t", &THREADS.to_string(), "-tb", &THREADS.to_string()])
            .args(["-c", "1024", "-np", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while !healthy() {
            if Instant::now() > deadline || child.try_wait()?.is_some() {
                let _ = child.kill();
                bail!("llama-server did not come up; its log is {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut cmd = crate::cargo();
        cmd.current_dir(root)
            .args(["test", "--quiet", "--test", "scenarios", "--"])
            .arg(format!("{SCENARIO}::{model}::{quant}::"))
            .env(edgebench_settings::DB_ENV, &db)
            .env(edgebench_settings::REQUIRE_MODELS_ENV, "1");
        let ran = crate::run(&mut cmd);
        let _ = child.kill();
        let _ = child.wait();
        ran?;
    }
    let dataset = data::load(&db)?;
    println!(
        "\n{described}\nHTTP engine against llama-server ÷ llama.cpp in process (medians, one run each):\n"
    );
    println!(
        "{:<28} {:>14} {:>14} {:>8} {:>14} {:>14}",
        "model", "in-process t/s", "HTTP t/s", "ratio", "TTFT local ms", "TTFT HTTP ms"
    );
    for model in models {
        let latest = |backend: &str| {
            dataset
                .runs
                .iter()
                .filter(|r| r.case.scenario == SCENARIO && r.case.model == *model)
                .filter(|r| r.case.backend.as_str() == backend && edgebench_report::measured(r))
                .max_by_key(|r| r.started_at_ms)
        };
        let (Some(local), Some(http)) = (latest("llama_cpp"), latest("http")) else {
            println!("{model:<28} (no pair of runs in {})", db.display());
            continue;
        };
        let median = |r: &data::Run, m: &str| r.metrics.get(m).map_or(f64::NAN, |m| m.median);
        let (l, h) = (
            median(local, "generation_tokens_per_s"),
            median(http, "generation_tokens_per_s"),
        );
        println!(
            "{model:<28} {l:>14.1} {h:>14.1} {:>8.3} {:>14.1} {:>14.1}",
            h / l,
            median(local, "ttft_ms"),
            median(http, "ttft_ms")
        );
    }
    println!("\nruns are in {}", db.display());
    Ok(())
}
