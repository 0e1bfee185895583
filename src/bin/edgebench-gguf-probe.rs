//! `edgebench-gguf-probe FILE`: llama.cpp's own loader on FILE, with no validation of ours in
//! front of it, for the differential test of the GGUF validator (`tests/it/differential.rs`).
//! Exit 0: llama.cpp loaded the file. Exit 3: it refused it (its reason on stderr). An abort or
//! any other signal is llama.cpp crashing on the file; the parent contains it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: edgebench-gguf-probe FILE");
        return ExitCode::from(2);
    };
    match edgebench::engines::reference_loader(std::path::Path::new(&path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("refused: {e}");
            ExitCode::from(3)
        }
    }
}
