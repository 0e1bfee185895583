//! Writing: devices, models and cases by their natural keys, a run begun as `running` and finished
//! whole in one transaction, device measurements and parity rows.

use rusqlite::params;

use crate::*;

impl Store {
    /// Inserts the device if its fingerprint is new; returns its id either way.
    pub fn upsert_device(&self, d: &DeviceRow) -> Result<i64, StoreError> {
        self.with_retry(|s| s.upsert_device_once(d))
    }

    pub(crate) fn upsert_device_once(&self, d: &DeviceRow) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO devices (fingerprint, hostname, cpu_model, cpu_features, cores_physical, cores_logical,
                     ram_bytes, os, kernel, engine_builds, build_profile, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (fingerprint) DO NOTHING",
                params![
                    d.fingerprint, d.hostname, d.cpu_model, d.cpu_features, d.cores_physical, d.cores_logical,
                    to_i64(d.ram_bytes), d.os, d.kernel, d.engine_builds, d.build_profile, d.details
                ],
            )
            .map_err(self.query_err("insert a device"))?;
        self.conn
            .query_row(
                "SELECT id FROM devices WHERE fingerprint = ?1",
                [&d.fingerprint],
                |r| r.get(0),
            )
            .map_err(self.query_err("look up a device"))
    }

    /// Inserts the model if its sha256 is new; returns its id either way.
    pub fn upsert_model(&self, m: &ModelRow) -> Result<i64, StoreError> {
        self.with_retry(|s| s.upsert_model_once(m))
    }

    pub(crate) fn upsert_model_once(&self, m: &ModelRow) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO models (sha256, registry_id, label, origin, quant, gguf_arch, size_bytes, path)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (sha256) DO NOTHING",
                params![m.sha256, m.registry_id, m.label, m.origin, m.quant, m.gguf_arch, to_i64(m.size_bytes), m.path],
            )
            .map_err(self.query_err("insert a model"))?;
        self.conn
            .query_row(
                "SELECT id FROM models WHERE sha256 = ?1",
                [&m.sha256],
                |r| r.get(0),
            )
            .map_err(self.query_err("look up a model"))
    }

    /// Inserts the case if its key is new; returns its id either way.
    pub fn upsert_case(&self, c: &CaseRow) -> Result<i64, StoreError> {
        self.with_retry(|s| s.upsert_case_once(c))
    }

    pub(crate) fn upsert_case_once(&self, c: &CaseRow) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO cases (case_key, name, scenario, category, model, quant, backend, device, concurrency,
                     threads, context, prompt_tokens, generate_tokens, batch, kv_variant, kv_baseline, type_k, type_v,
                     flash_attention, mmap, sampling)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)
                 ON CONFLICT (case_key) DO NOTHING",
                params![
                    c.case_key, c.name, c.scenario, c.category, c.model, c.quant, c.backend, c.device, c.concurrency,
                    c.threads, c.context, c.prompt_tokens, c.generate_tokens, c.batch, c.kv_variant, c.kv_baseline,
                    c.type_k, c.type_v, c.flash_attention, c.mmap, c.sampling
                ],
            )
            .map_err(self.query_err("insert a case"))?;
        self.conn
            .query_row(
                "SELECT id FROM cases WHERE case_key = ?1",
                [&c.case_key],
                |r| r.get(0),
            )
            .map_err(self.query_err("look up a case"))
    }

    /// Records a run as `running`, before any measurement, so a crash leaves a visible trace.
    pub fn begin_run(&self, r: &NewRunRow) -> Result<(), StoreError> {
        self.with_retry(|s| s.begin_run_once(r))
    }

    pub(crate) fn begin_run_once(&self, r: &NewRunRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO runs (id, invocation, case_id, device_id, model_id, status, started_at_ms, tool_version,
                     git_commit, scenario_file, scenario_sha256, seed, warmup, repetitions, host, pid, mode)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    r.id, r.invocation, r.case_id, r.device_id, r.model_id, r.started_at_ms, r.tool_version,
                    r.git_commit, r.scenario_file, r.scenario_sha256, to_i64(r.seed), r.warmup, r.repetitions, r.host,
                    r.pid,
                    r.mode
                ],
            )
            .map_err(self.query_err("record the start of a run"))?;
        Ok(())
    }

    /// Stores every request of a run and its outcome in one transaction: either all of it lands
    /// or none, so a run is never half-written.
    /// Another writer holding the lock is waited for and retried (see [`OpenOptions`]).
    pub fn finish_run(
        &mut self,
        run_id: &str,
        end: &RunEndRow,
        requests: &[RequestRow],
    ) -> Result<(), StoreError> {
        self.finish_run_with_answers(run_id, end, requests, &[])
    }

    /// [`Self::finish_run`] for a multiple-choice evaluation: its scored questions land in the
    /// same transaction.
    pub fn finish_run_with_answers(
        &mut self,
        run_id: &str,
        end: &RunEndRow,
        requests: &[RequestRow],
        answers: &[AnswerRow],
    ) -> Result<(), StoreError> {
        self.with_retry(|s| s.finish_run_once(run_id, end, requests, answers))
    }

    pub(crate) fn finish_run_once(
        &self,
        run_id: &str,
        end: &RunEndRow,
        requests: &[RequestRow],
        answers: &[AnswerRow],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let waited = self.options.busy_timeout;
        let err = |action: &'static str| {
            let path = path.clone();
            move |source: rusqlite::Error| lock_or(&path, waited, source, action)
        };
        if self.run_status(run_id)?.is_none() {
            return Err(StoreError::UnknownRun {
                path: self.path.clone(),
                run_id: run_id.to_owned(),
            });
        }
        // IMMEDIATE takes the write lock up front: a deferred transaction that starts by reading
        // can fail to upgrade without waiting when another writer got in first.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(err("begin a transaction"))?;
        {
            let mut insert_request = tx
                .prepare(
                    "INSERT INTO requests (run_id, repetition, warmup, request_index, prompt_id, turn, seq,
                         prompt_tokens, generated_tokens, queue_ns, prefill_ns, ttft_ns, decode_ns, e2e_ns,
                         output_sha256, output_text, reset_ns, status, priority, sent_ns,
                         source, fallback_reason, fallback_ns, cost_usd, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                             ?21, ?22, ?23, ?24, ?25)",
                )
                .map_err(err("prepare request insert"))?;
            let mut insert_latency = tx
                .prepare("INSERT INTO token_latencies (request_id, idx, ns) VALUES (?1, ?2, ?3)")
                .map_err(err("prepare latency insert"))?;
            for q in requests {
                insert_request
                    .execute(params![
                        run_id,
                        q.repetition,
                        q.warmup,
                        q.request_index,
                        q.prompt_id,
                        q.turn,
                        q.seq,
                        q.prompt_tokens,
                        q.generated_tokens,
                        to_i64(q.queue_ns),
                        to_i64(q.prefill_ns),
                        to_i64(q.ttft_ns),
                        to_i64(q.decode_ns),
                        to_i64(q.e2e_ns),
                        q.output_sha256,
                        q.output_text,
                        to_i64(q.reset_ns),
                        q.status,
                        q.priority,
                        to_i64(q.sent_ns),
                        q.source,
                        q.fallback_reason,
                        q.fallback_ns.map(to_i64),
                        q.cost_usd,
                        q.error
                    ])
                    .map_err(err("insert a request"))?;
                let request_id = tx.last_insert_rowid();
                for (idx, ns) in q.token_latencies_ns.iter().enumerate() {
                    insert_latency
                        .execute(params![request_id, idx as i64, to_i64(*ns)])
                        .map_err(err("insert a token latency"))?;
                }
            }
            let updated = tx
                .execute(
                    "UPDATE runs SET status = ?2, ended_at_ms = ?3, error = ?4, load_ms = ?5, kv_cache_bytes = ?6,
                         weights_bytes = ?7, peak_rss_bytes = ?8, engine_counters = ?9,
                         kv_storage = ?10, weights_loading = ?11, scheduling = ?12, flash_attention_used = ?13,
                         estimated_peak_bytes = ?14, cpu_time_ms = ?15, energy_j = ?16, energy_source = ?17,
                         stop_reason = ?18, decode_bytes_read = ?19, decode_steps_ns = ?20,
                         bandwidth_bytes_per_s = ?21, roofline_fraction = ?22, phase_timings = ?23,
                         prompt_format = ?24, bandwidth_probe_n = ?25, bandwidth_probe_min = ?26,
                         bandwidth_probe_max = ?27, sustained = ?28, throttle_onset_s = ?29,
                         steady_state_ratio = ?30, cooldown = ?31, goodput = ?32, goodput_per_s = ?33,
                         endpoint = ?34, quality = ?35, kld_mean = ?36, same_top1 = ?37,
                         integrity = ?38, integrity_passed = ?39
                     WHERE id = ?1",
                    params![
                        run_id,
                        end.status.as_str(),
                        end.ended_at_ms,
                        end.error,
                        end.load_ms,
                        end.kv_cache_bytes.map(to_i64),
                        end.weights_bytes.map(to_i64),
                        end.peak_rss_bytes.map(to_i64),
                        end.engine_counters,
                        end.effective.as_ref().map(|e| e.kv_storage.clone()),
                        end.effective.as_ref().map(|e| e.weights_loading.clone()),
                        end.effective.as_ref().map(|e| e.scheduling.clone()),
                        end.effective.as_ref().map(|e| e.flash_attention),
                        end.estimated_peak_bytes.map(to_i64),
                        end.cpu_time_ms,
                        end.energy.as_ref().map(|e| e.0),
                        end.energy.as_ref().map(|e| e.1.clone()),
                        end.stop_reason,
                        end.roofline.map(|r| to_i64(r.decode_bytes_read)),
                        end.roofline.map(|r| to_i64(r.decode_steps_ns)),
                        end.roofline.map(|r| r.bandwidth_bytes_per_s),
                        end.roofline.map(|r| r.fraction),
                        end.phase_timings,
                        end.effective.as_ref().and_then(|e| e.prompt_format.clone()),
                        end.roofline.and_then(|r| r.probe).map(|p| p.n),
                        end.roofline.and_then(|r| r.probe).map(|p| p.min_bytes_per_s),
                        end.roofline.and_then(|r| r.probe).map(|p| p.max_bytes_per_s),
                        end.sustained.as_ref().map(|s| s.series.clone()),
                        end.sustained.as_ref().and_then(|s| s.throttle_onset_s),
                        end.sustained.as_ref().and_then(|s| s.steady_state_ratio),
                        end.sustained.as_ref().and_then(|s| s.cooldown.clone()),
                        end.goodput.as_ref().map(|g| g.sweep.clone()),
                        end.goodput.as_ref().and_then(|g| g.goodput_per_s),
                        end.endpoint,
                        end.quality.as_ref().map(|q| q.json.clone()),
                        end.quality.as_ref().map(|q| q.mean_kld),
                        end.quality.as_ref().map(|q| q.same_top1),
                        end.integrity.as_ref().map(|i| i.0.clone()),
                        end.integrity.as_ref().map(|i| i.1)
                    ],
                )
                .map_err(err("record the end of a run"))?;
            if updated != 1 {
                return Err(StoreError::UnknownRun {
                    path: self.path.clone(),
                    run_id: run_id.to_owned(),
                });
            }
        }
        {
            let mut insert_metric = tx
                .prepare(
                    "INSERT INTO run_metrics (run_id, metric, unit, n, mean, median, stddev, cv, min, max,
                         p90, p95, p99, ci_low, ci_high, ci_level, outliers_low, outliers_high)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )
                .map_err(err("prepare metric insert"))?;
            for m in &end.metrics {
                insert_metric
                    .execute(params![
                        run_id,
                        m.metric,
                        m.unit,
                        m.n,
                        m.mean,
                        m.median,
                        m.stddev,
                        m.cv,
                        m.min,
                        m.max,
                        m.p90,
                        m.p95,
                        m.p99,
                        m.ci.map(|c| c.0),
                        m.ci.map(|c| c.1),
                        m.ci.map(|c| c.2),
                        m.outliers_low,
                        m.outliers_high
                    ])
                    .map_err(err("insert a metric summary"))?;
            }
        }
        {
            let mut insert_answer = tx
                .prepare(
                    "INSERT INTO answers (run_id, subject, question_index, question_sha256, answer, predicted,
                         predicted_norm, logprobs, continuation_bytes, few_shot, prompt_tokens)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(err("prepare answer insert"))?;
            for a in answers {
                insert_answer
                    .execute(params![
                        run_id,
                        a.subject,
                        a.question_index,
                        a.question_sha256,
                        a.answer,
                        a.predicted,
                        a.predicted_norm,
                        serde_json::to_string(&a.logprobs).unwrap_or_default(),
                        serde_json::to_string(&a.continuation_bytes).unwrap_or_default(),
                        a.few_shot,
                        a.prompt_tokens
                    ])
                    .map_err(err("insert an answer"))?;
            }
        }
        tx.commit().map_err(err("commit a run"))?;
        Ok(())
    }

    /// Writes a whole run, with the device, model and case rows it refers to (their ids in
    /// `whole.run` are replaced by this database's): how a run refused by one database lands in
    /// another.
    pub fn record_whole_run(&mut self, whole: &WholeRun<'_>) -> Result<(), StoreError> {
        let run = NewRunRow {
            device_id: self.upsert_device(whole.device)?,
            model_id: whole.model.map(|m| self.upsert_model(m)).transpose()?,
            case_id: self.upsert_case(whole.case)?,
            ..whole.run.clone()
        };
        if self.run_status(&run.id)?.is_none() {
            self.begin_run(&run)?;
        }
        self.finish_run_with_answers(&run.id, whole.end, whole.requests, whole.answers)
    }

    pub fn insert_device_measurement(&self, m: &DeviceMeasurementRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO device_measurements (device_id, kind, value, median, n, details, measured_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![m.device_id, m.kind, m.value, m.median, m.n, m.details, m.measured_at_ms],
            )
            .map(|_| ())
            .map_err(self.query_err("insert a device measurement"))
    }

    /// Records one calibration (a case's between-run spread of one metric).
    pub fn insert_calibration(&self, c: &CalibrationRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO calibrations (device_id, case_key, case_name, model_sha256, metric,
                     calibrated_at_ms, runs, median, robust_spread, cv, min, max,
                     false_alerts_per_100, detected_within_3, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    c.device_id,
                    c.case_key,
                    c.case_name,
                    c.model_sha256,
                    c.metric,
                    c.calibrated_at_ms,
                    c.runs,
                    c.median,
                    c.robust_spread,
                    c.cv,
                    c.min,
                    c.max,
                    c.false_alerts_per_100,
                    c.detected_within_3,
                    c.details
                ],
            )
            .map(|_| ())
            .map_err(self.query_err("insert a calibration"))
    }

    /// Records one parity comparison.
    pub fn insert_parity(&self, row: &ParityRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO parity (invocation, model_id, reference_backend, candidate_backend, prompt_set,
                     prompt_id, prompt_tokens, first_token_match, compared_tokens, agreeing_tokens,
                     max_abs_logprob_diff, top10_abs_logprob_diff, reference_top1, candidate_top1, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    row.invocation,
                    row.model_id,
                    row.reference_backend,
                    row.candidate_backend,
                    row.prompt_set,
                    row.prompt_id,
                    row.prompt_tokens,
                    row.first_token_match,
                    row.compared_tokens,
                    row.agreeing_tokens,
                    row.max_abs_logprob_diff,
                    row.top10_abs_logprob_diff,
                    row.reference_top1,
                    row.candidate_top1,
                    row.created_at_ms
                ],
            )
            .map(|_| ())
            .map_err(self.query_err("insert a parity row"))
    }
}
