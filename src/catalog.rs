//! Reads the model registry and every scenario file, and expands them into cases.

use std::path::{Path, PathBuf};

use edgebench_core::text_pos::Location;
use edgebench_core::{Case, Registry, RegistryError, Scenario, ScenarioError};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(
        "case name `{name}` is produced by both {first} and {second}; rename the scenario (`name = ...`) in one of them"
    )]
    DuplicateCase {
        name: String,
        first: String,
        second: String,
    },
    #[error("{file}:{line}: not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        file: String,
        line: usize,
        offset: usize,
    },
    #[error("{location}: key `dataset`: {message}")]
    Dataset { location: Location, message: String },
}

/// The registry plus every case of every scenario under a root, with the texts they were
/// parsed from (a case's child process receives its scenario's text, not a file to re-read).
#[derive(Debug)]
pub struct Catalog {
    pub root: PathBuf,
    pub registry: Registry,
    pub cases: Vec<Case>,
    /// `models.toml` as read: (name in messages, text).
    pub registry_source: (String, String),
    /// Each scenario file as read, by its name in messages (`Case::scenario.source.file`).
    pub scenario_texts: std::collections::BTreeMap<String, String>,
}

/// The text of `path`, named `shown` in messages.
fn read(path: &Path, shown: &str) -> Result<String, CatalogError> {
    let bytes = std::fs::read(path).map_err(|source| CatalogError::Read {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        CatalogError::NotUtf8 {
            file: shown.to_owned(),
            line: e.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1,
            offset,
        }
    })
}

/// A scenario's dataset must exist when the catalog loads (not only once a model file is
/// present and the case runs), and lie inside `<root>/datasets` unless
/// `EDGEBENCH_EXTERNAL_DATASETS=1` allows others.
fn check_dataset(root: &Path, scenario: &Scenario) -> Result<(), CatalogError> {
    let error = |message: String| CatalogError::Dataset {
        location: scenario.dataset_location.clone(),
        message,
    };
    let named = Path::new(&scenario.dataset);
    let path = root.join(named);
    let Ok(resolved) = std::fs::canonicalize(&path) else {
        return Err(error(format!(
            "`{}` does not exist (resolved against the project root {})",
            short(&scenario.dataset),
            root.display()
        )));
    };
    let datasets = std::fs::canonicalize(crate::paths::datasets_dir(root))
        .unwrap_or_else(|_| crate::paths::datasets_dir(root));
    if !resolved.starts_with(&datasets)
        && !edgebench_settings::env_is(edgebench_settings::EXTERNAL_DATASETS_ENV, "1")
    {
        return Err(error(format!(
            "`{}` leaves the project's datasets directory ({}); set {}=1 to allow datasets elsewhere",
            short(&scenario.dataset),
            datasets.display(),
            edgebench_settings::EXTERNAL_DATASETS_ENV
        )));
    }
    Ok(())
}

/// At most a few dozen characters of a value, for messages.
fn short(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        format!(
            "{}… ({} bytes)",
            s.chars().take(MAX).collect::<String>(),
            s.len()
        )
    }
}

/// Path of `path` relative to `root` for messages, falling back to the full path.
fn display_name(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Loads the registry at `<root>/models.toml`.
pub fn load_registry(root: &Path) -> Result<Registry, CatalogError> {
    let (name, text) = read_registry(root)?;
    Ok(Registry::parse(&name, &text)?)
}

fn read_registry(root: &Path) -> Result<(String, String), CatalogError> {
    let path = crate::paths::registry_file(root);
    let name = display_name(root, &path);
    let text = read(&path, &name)?;
    Ok((name, text))
}

/// Scenario files under `<root>/scenarios`, sorted by name.
pub fn scenario_files(root: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let dir = crate::paths::scenarios_dir(root);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|source| CatalogError::Read {
            path: dir.clone(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Parses one scenario file.
pub fn load_scenario(
    root: &Path,
    path: &Path,
    registry: &Registry,
) -> Result<Scenario, CatalogError> {
    let name = display_name(root, path);
    let scenario = Scenario::parse(&name, &read(path, &name)?, registry)?;
    check_dataset(root, &scenario)?;
    Ok(scenario)
}

impl Catalog {
    /// Loads everything under `root`; the first broken file stops loading with its error.
    pub fn load(root: &Path) -> Result<Self, CatalogError> {
        let registry_source = read_registry(root)?;
        let registry = Registry::parse(&registry_source.0, &registry_source.1)?;
        let mut cases: Vec<Case> = Vec::new();
        let mut scenario_texts = std::collections::BTreeMap::new();
        for path in scenario_files(root)? {
            let name = display_name(root, &path);
            let text = read(&path, &name)?;
            let scenario = Scenario::parse(&name, &text, &registry)?;
            check_dataset(root, &scenario)?;
            scenario_texts.insert(name, text);
            for case in scenario.expand() {
                if let Some(other) = cases.iter().find(|c| c.name == case.name) {
                    return Err(CatalogError::DuplicateCase {
                        name: case.name.clone(),
                        first: other.scenario.source.file.clone(),
                        second: case.scenario.source.file.clone(),
                    });
                }
                cases.push(case);
            }
        }
        Ok(Self {
            root: root.to_owned(),
            registry,
            cases,
            registry_source,
            scenario_texts,
        })
    }
}
