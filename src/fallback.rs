//! Where a run goes when the results database refuses it (locked past the busy timeout,
//! read-only, full): whole, with its device, model and case rows, into a database on this
//! machine's own disk, to be merged later with `cargo xtask ingest`.

use std::path::Path;

use edgebench_store::{
    AnswerRow, CaseRow, DeviceRow, ModelRow, NewRunRow, RequestRow, RunEndRow, Store, StoreError,
};

use crate::error::RunError;

/// Tells the user the database refused the results and where they are kept instead.
pub fn warn(e: &StoreError, fallback: &Path) {
    eprintln!(
        "edgebench: {e}\n  results are kept in the fallback database {}; merge them later with \
         `cargo xtask ingest {}`",
        fallback.display(),
        fallback.display()
    );
}

/// A run with everything needed to recreate it in another database.
#[derive(Debug, Clone, Copy)]
pub struct FinishedRun<'a> {
    pub run: &'a NewRunRow,
    pub model: &'a ModelRow,
    pub case: &'a CaseRow,
    pub end: &'a RunEndRow,
    pub requests: &'a [RequestRow],
    pub answers: &'a [AnswerRow],
}

/// Stores a finished run in `store`, or, when that refuses the write, whole in the fallback
/// database at `fallback`. `begun` says whether `store` holds the run's `running` row.
pub fn store_run(
    store: &mut Store,
    fallback: &Path,
    device: &DeviceRow,
    begun: bool,
    run: FinishedRun<'_>,
) -> Result<(), RunError> {
    if begun {
        match store.finish_run_with_answers(&run.run.id, run.end, run.requests, run.answers) {
            Ok(()) => return Ok(()),
            Err(e) if e.is_unwritable() && store.path() != fallback => warn(&e, fallback),
            Err(e) => return Err(e.into()),
        }
    }
    let mut kept = Store::open(fallback)?;
    kept.record_whole_run(&edgebench_store::WholeRun {
        device,
        model: Some(run.model),
        case: run.case,
        run: run.run,
        end: run.end,
        requests: run.requests,
        answers: run.answers,
    })?;
    eprintln!(
        "edgebench: run {} of {} kept in {}",
        run.run.id,
        run.case.name,
        fallback.display()
    );
    Ok(())
}
