//! Validates the GGUF files named on the command line as edgebench does before any engine sees
//! them, printing each verdict (`cargo run -p edgebench-gguf --example validate -- FILE...`).
//! Used to measure the validator's time and memory on real and crafted files.

fn main() {
    let mut failed = false;
    for arg in std::env::args_os().skip(1) {
        let path = std::path::PathBuf::from(arg);
        let started = std::time::Instant::now();
        match edgebench_gguf::validate_file(&path) {
            Ok(summary) => println!(
                "{}: valid ({} tensors, {} metadata entries) in {:.1} ms",
                path.display(),
                summary.tensor_count,
                summary.metadata_count,
                started.elapsed().as_secs_f64() * 1e3
            ),
            Err(e) => {
                failed = true;
                println!("{e} ({:.1} ms)", started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    std::process::exit(i32::from(failed));
}
