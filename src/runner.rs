//! Runs one case through the pipeline and stores it: plan → `running` row → execute → record →
//! store (or the fallback database). One `Runner` per process and results database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use edgebench_backend::Backend;
use edgebench_core::quant::Quant;
use edgebench_core::{Case, ModelEntry};
use edgebench_store::{DeviceRow, ModelRow, NewRunRow, Store, StoreError};

use crate::error::RunError;
use crate::fallback::{self, FinishedRun};
use crate::host;
use crate::outcome::CaseReport;
use crate::plan::{self, Mode};
use crate::{device_facts, engines, execute, record};

/// Runs cases and writes them to one store. Open one per harness invocation.
#[derive(Debug)]
pub struct Runner {
    pub root: PathBuf,
    pub models_dir: PathBuf,
    store: Store,
    device: DeviceRow,
    device_id: i64,
    invocation: String,
    host: String,
    hashes: HashMap<PathBuf, (u64, String)>,
    mode: Mode,
    /// Why a hybrid case's device is down (its previous process crashed): every request goes
    /// to the cloud with this reason.
    device_down: Option<String>,
    /// Where runs go when `store` cannot take them (locked, read-only, full).
    fallback: PathBuf,
}

impl Runner {
    /// Opens the store at `db` and records this machine's fingerprint. When `db` cannot take
    /// writes (locked past the busy timeout, read-only, full), the error is printed and the
    /// runner writes to the fallback database instead ([`crate::paths::fallback_database`]).
    pub fn open(root: &Path, models_dir: &Path, db: &Path) -> Result<Self, RunError> {
        let builds: Vec<_> = engines::available()
            .into_iter()
            .map(Backend::build)
            .collect();
        let device = record::device::collect(&builds);
        let fallback = crate::paths::fallback_database(root);
        let (store, device_id) = match Self::open_store(db, &device) {
            Ok(opened) => opened,
            Err(RunError::Store(e)) if e.is_unwritable() && db != fallback => {
                fallback::warn(&e, &fallback);
                Self::open_store(&fallback, &device)?
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            root: root.to_owned(),
            models_dir: models_dir.to_owned(),
            store,
            device,
            device_id,
            invocation: host::new_invocation_id(),
            // Runs are matched to their process by this host name when they are left `running`.
            host: edgebench_store::local_host(),
            hashes: HashMap::new(),
            mode: Mode::default(),
            device_down: None,
            fallback,
        })
    }

    fn open_store(db: &Path, device: &DeviceRow) -> Result<(Store, i64), RunError> {
        let store = Store::open_with(db, &crate::paths::store_options())?;
        let device_id = store.upsert_device(device)?;
        if store
            .device_measurement(device_id, device_facts::TRIAD_KIND)?
            .is_none()
        {
            // Once per device and database: 3 × 96 MiB arrays, best of 5 (seeded).
            let t = device_facts::triad(96 << 20, 5, 20_261_125);
            store.insert_device_measurement(&record::bandwidth_row(device_id, &t))?;
        }
        if let Some(idle) = device_facts::hottest_c()
            && store
                .device_measurement(device_id, device_facts::IDLE_TEMPERATURE_KIND)?
                .is_none()
        {
            store.insert_device_measurement(&record::idle_temperature_row(
                device_id,
                idle,
                &device_facts::temperatures_c(),
            ))?;
        }
        Ok((store, device_id))
    }

    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Groups this runner's runs under `invocation` (a child process joins its parent's).
    pub fn set_invocation(&mut self, invocation: String) {
        self.invocation = invocation;
    }

    /// Identifier of this harness invocation (groups the runs and parity rows it writes).
    #[must_use]
    pub fn invocation(&self) -> &str {
        &self.invocation
    }

    /// How cases run: smoke or measured, adaptive or fixed stopping ([`Mode`]).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// A hybrid case's device is down for `reason` (see [`crate::isolate::CaseRequest`]).
    pub fn set_device_down(&mut self, reason: Option<String>) {
        self.device_down = reason;
    }

    /// Smoke mode: every case runs once, to check that it works (see [`Mode::smoke`]).
    pub fn set_smoke(&mut self, smoke: bool) {
        self.mode.smoke = smoke;
    }

    /// The size and sha256 of a model file, hashed once per path and runner.
    pub fn model_hash(&mut self, path: &Path) -> Result<(u64, String), RunError> {
        if let Some(h) = self.hashes.get(path) {
            return Ok(h.clone());
        }
        let h = host::model_file_hash(path)?;
        self.hashes.insert(path.to_owned(), h.clone());
        Ok(h)
    }

    /// Seeds the model-hash cache, so a child process doesn't hash a file its parent hashed.
    pub fn remember_model_hash(&mut self, path: &Path, size: u64, sha256: String) {
        self.hashes.insert(path.to_owned(), (size, sha256));
    }

    /// Hashes the model file (once per path), checks it against models.toml and records it.
    pub fn register_model(
        &mut self,
        entry: &ModelEntry,
        quant: Quant,
        model_path: &Path,
    ) -> Result<i64, RunError> {
        let row = self.model_row(entry, quant, model_path)?;
        Ok(self.store.upsert_model(&row)?)
    }

    /// The model's storage row: hashes the file (once per path) and checks it against
    /// models.toml.
    fn model_row(
        &mut self,
        entry: &ModelEntry,
        quant: Quant,
        model_path: &Path,
    ) -> Result<ModelRow, RunError> {
        let (size, sha256) = self.model_hash(model_path)?;
        if let Some(expected) = entry.file(quant).and_then(|f| f.sha256.clone())
            && expected != sha256
        {
            return Err(RunError::HashMismatch {
                path: model_path.to_owned(),
                expected,
                actual: sha256,
            });
        }
        Ok(record::model_row(entry, quant, model_path, (size, sha256)))
    }

    fn begin_run(
        &self,
        run: &mut NewRunRow,
        model: &ModelRow,
        case: &edgebench_store::CaseRow,
    ) -> Result<(), StoreError> {
        run.model_id = Some(self.store.upsert_model(model)?);
        run.case_id = self.store.upsert_case(case)?;
        self.store.begin_run(run)
    }

    /// Runs `case` with the model at `model_path` (from [`crate::preflight::readiness`]) and
    /// stores the run.
    pub fn run_case(
        &mut self,
        case: &Case,
        entry: &ModelEntry,
        model_path: &Path,
    ) -> Result<CaseReport, RunError> {
        self.run_case_as(&host::new_run_id(case), case, entry, model_path)
    }

    /// [`Self::run_case`] under a run id chosen by the caller (a parent process that must be
    /// able to mark the run aborted if this process dies).
    pub fn run_case_as(
        &mut self,
        run_id: &str,
        case: &Case,
        entry: &ModelEntry,
        model_path: &Path,
    ) -> Result<CaseReport, RunError> {
        let model_row = self.model_row(entry, case.quant, model_path)?;
        let case_row = record::case_row(case);
        let s = &case.scenario;
        let plan = plan::plan(case, self.mode);
        // A server elsewhere is the run's device (a launched one runs on this host).
        let device_id = match remote_device(case) {
            Some(row) => self.store.upsert_device(&row).unwrap_or(self.device_id),
            None => self.device_id,
        };
        let mut new_run = record::new_run_row(
            run_id,
            &self.invocation,
            device_id,
            case,
            &plan,
            self.mode,
            &self.host,
        );
        // The `running` row goes in before any measurement, so a crash leaves a trace. A
        // database that refuses it does not stop the run: the result goes to the fallback.
        let begun = match self.begin_run(&mut new_run, &model_row, &case_row) {
            Ok(()) => true,
            Err(e) if e.is_unwritable() && self.store.path() != self.fallback => {
                fallback::warn(&e, &self.fallback);
                false
            }
            Err(e) => return Err(e.into()),
        };
        let mut probe = plan
            .probe_bandwidth_beside
            .then(device_facts::ProbeBeside::before);
        let inputs = execute::Inputs {
            root: &self.root,
            device_down: self.device_down.as_deref(),
            mode: self.mode,
            plan,
            bandwidth_bytes_per_s: match &probe {
                Some(p) => Some(p.median()),
                None => self
                    .store
                    .device_measurement(self.device_id, device_facts::TRIAD_KIND)?,
            },
            idle_temperature_c: self
                .store
                .device_measurement(self.device_id, device_facts::IDLE_TEMPERATURE_KIND)?,
        };
        let finished = |end, requests, answers| FinishedRun {
            run: &new_run,
            model: &model_row,
            case: &case_row,
            end,
            requests,
            answers,
        };
        match execute::execute(inputs, case, entry, model_path) {
            Ok(mut outcome) => {
                if let (Some(probe), execute::RunOutcome::Measured(m)) = (&mut probe, &mut outcome)
                {
                    probe.and_after();
                    m.roofline = m.roofline.map(|r| r.against(probe));
                }
                let recorded = record::outcome(outcome, s.seed);
                fallback::store_run(
                    &mut self.store,
                    &self.fallback,
                    &self.device,
                    begun,
                    finished(&recorded.end, &recorded.requests, &recorded.answers),
                )?;
                Ok(CaseReport {
                    run_id: run_id.to_owned(),
                    ..recorded.report
                })
            }
            Err(e) => {
                let estimate = engines::engine(case.backend).ok().map(|backend| {
                    crate::preflight::estimated_memory(backend, case, entry, model_path).total()
                });
                let end = record::failed(e.to_string(), estimate);
                fallback::store_run(
                    &mut self.store,
                    &self.fallback,
                    &self.device,
                    begun,
                    finished(&end, &[], &[]),
                )?;
                Err(e)
            }
        }
    }
}

/// The remote device an HTTP case runs on: its fingerprint from what the server says about
/// itself and the declared profile. `None` for in-process engines, launched servers, and a
/// server that does not answer (the run then fails with the reason).
fn remote_device(case: &Case) -> Option<edgebench_store::DeviceRow> {
    use edgebench_core::scenario::{BackendKind, EndpointTarget};
    let endpoint = case.scenario.endpoint.as_ref()?;
    let (BackendKind::Http, EndpointTarget::Url(url)) = (case.backend, &endpoint.target) else {
        return None;
    };
    let client = crate::engines::cloud::connect(url, endpoint).ok()?;
    let public = crate::engines::cloud::public_url(url);
    Some(record::device::remote(
        &public,
        &client.server_facts(),
        endpoint.device_profile.as_deref(),
    ))
}
