//! `edgebench-gguf-probe FILE`: llama.cpp's own loader on FILE, with no validation of ours in
//! front of it, for the differential test of the GGUF validator (`tests/it/differential.rs`).
//! A file the loader takes and our validator accepts is then run: a context, a two-token
//! prefill and one decode step, as a case would (zeros for weights decode as well as any).
//! Exit 0: loaded (and, when accepted, decoded). Exit 3: llama.cpp refused to load it. Exit 4:
//! it loaded but the context or the decode failed. An abort or any other signal is llama.cpp
//! crashing on the file; the parent contains it.

use std::path::Path;
use std::process::ExitCode;

use edgebench_backend::LoadOptions;
use edgebench_core::scenario::BackendKind;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: edgebench-gguf-probe FILE");
        return ExitCode::from(2);
    };
    let path = Path::new(&path);
    if let Err(e) = edgebench::engines::reference_loader(path) {
        eprintln!("refused: {e}");
        return ExitCode::from(3);
    }
    if edgebench_gguf::validate_file(path).is_err() {
        // Refused by the validator: no case would ever run it.
        return ExitCode::SUCCESS;
    }
    match decode(path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loaded, but running it failed: {e}");
            ExitCode::from(4)
        }
    }
}

/// A small context on `path`, two prompt tokens and one decode step.
fn decode(path: &Path) -> Result<(), edgebench_backend::BackendError> {
    let engine = edgebench::engines::engine(BackendKind::LlamaCpp)?;
    let options = LoadOptions {
        threads: 1,
        context: 64,
        batch: 64,
        positions_needed: 64,
        ..LoadOptions::default()
    };
    let mut session = engine.load(path, &options)?;
    let prompt: [edgebench_backend::TokenId; 2] = [1, 2];
    let first = session.prefill(&[(0, &prompt[..])])?;
    let next = first.first().copied().unwrap_or(0);
    session.decode_step(&[(0, next)])?;
    Ok(())
}
