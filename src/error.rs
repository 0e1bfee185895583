//! The error every stage of the run pipeline returns.

use std::path::PathBuf;

use edgebench_backend::BackendError;
use edgebench_store::StoreError;

use crate::prompt_set::DatasetError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("cannot read model file {}: {source}", path.display())]
    ReadModel {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "model file {} has sha256 {actual}, but models.toml expects {expected}; delete it and run `cargo xtask models fetch`",
        path.display()
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("case {case}: {message}")]
    Case { case: String, message: String },
    /// A prompt that the model's chat template can't render as asked.
    #[error("chat template: {0}")]
    ChatTemplate(String),
}
