//! A validated [`Scenario`] written back as a scenario file: the canonical form (every value
//! the scenario resolved to, one table per section). Parsing it against the same registry
//! gives the same scenario and so the same cases; the round-trip property test holds it to that.

use std::fmt::Write as _;

use super::{KvVariant, Quant, Sampling, Scenario, Serving, Workload};
use crate::registry::Registry;

/// `s` as a TOML basic string: quotes, backslashes and control characters escaped.
#[must_use]
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    let shown: Vec<String> = items.iter().map(show).collect();
    format!("[{}]", shown.join(", "))
}

/// A float as TOML reads it back bit for bit (Rust's shortest round-trip form, always with a
/// decimal point or exponent).
fn float(x: f64) -> String {
    format!("{x:?}")
}

/// One list of quantizations that gives each model, after the registry filters it, exactly
/// its own list in its own order: the per-model lists merged (each is in the order of the one
/// list they came from, so a merge exists), first appearance breaking ties.
fn merged_quantizations(models: &[(String, Vec<Quant>)]) -> Vec<Quant> {
    let mut nodes: Vec<Quant> = Vec::new();
    for (_, quants) in models {
        for &q in quants {
            if !nodes.contains(&q) {
                nodes.push(q);
            }
        }
    }
    let index = |q: Quant| nodes.iter().position(|n| *n == q).unwrap_or(0);
    let mut before: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (_, quants) in models {
        for pair in quants.windows(2) {
            before[index(pair[1])].push(index(pair[0]));
        }
    }
    let mut placed = vec![false; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    while order.len() < nodes.len() {
        let next = (0..nodes.len())
            .find(|&i| !placed[i] && before[i].iter().all(|&b| placed[b]))
            // Contradictory orders cannot come from one list; keep going rather than loop.
            .or_else(|| (0..nodes.len()).find(|&i| !placed[i]))
            .unwrap_or(0);
        placed[next] = true;
        order.push(nodes[next]);
    }
    order
}

fn serving_table(out: &mut String, s: &Serving) {
    out.push_str("\n[serving]\n");
    if let Some(slots) = s.slots {
        let _ = writeln!(out, "slots = {slots}");
    }
    if let Some(capacity) = s.queue_capacity {
        let _ = writeln!(out, "queue_capacity = {capacity}");
    }
    if let Some(ms) = s.admission_timeout_ms {
        let _ = writeln!(out, "admission_timeout_ms = {ms}");
    }
    if let Some(rate) = s.arrival_rate_per_s {
        let _ = writeln!(out, "arrival_rate_per_s = {}", float(rate));
    }
    if let Some(ms) = s.cancel_after_ms {
        let _ = writeln!(out, "cancel_after_ms = {ms}");
    }
    let [realtime, normal, batch] = s.priorities;
    let _ = writeln!(
        out,
        "priorities = {{ realtime = {realtime}, normal = {normal}, batch = {batch} }}"
    );
}

fn kv_table(out: &mut String, k: &KvVariant) {
    out.push_str("\n[[kv]]\n");
    let _ = writeln!(out, "name = {}", toml_string(&k.name));
    if k.baseline {
        out.push_str("baseline = true\n");
    }
    if k.pinned.cache_types {
        let _ = writeln!(out, "type_k = {}", toml_string(k.type_k.as_str()));
        let _ = writeln!(out, "type_v = {}", toml_string(k.type_v.as_str()));
    }
    if k.pinned.flash_attention {
        let _ = writeln!(out, "flash_attention = {}", k.flash_attention);
    }
    if k.pinned.mmap {
        let _ = writeln!(out, "mmap = {}", k.mmap);
    }
    if let Some(cap) = k.context_cap {
        let _ = writeln!(out, "context_cap = {cap}");
    }
}

impl Scenario {
    /// The scenario as a scenario file: [`Scenario::parse`] against the same `registry` reads
    /// it back to an equal scenario, its source aside.
    #[must_use]
    pub fn to_toml(&self, registry: &Registry) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "format = {}", super::file::SCENARIO_FORMAT);
        let _ = writeln!(out, "name = {}", toml_string(&self.name));
        let _ = writeln!(out, "description = {}", toml_string(&self.description));
        let _ = writeln!(out, "category = {}", toml_string(self.category.as_str()));
        let _ = writeln!(out, "dataset = {}", toml_string(&self.dataset));
        if let Some(prompts) = self.prompts {
            let _ = writeln!(out, "prompts = {prompts}");
        }
        let _ = writeln!(
            out,
            "models = {}",
            list(&self.models, |(id, _)| toml_string(id))
        );
        // Every model on all its files, in the registry's order, is what no list says (the
        // models' orders may disagree, which no one list could say).
        let every_file = self.models.iter().all(|(id, quants)| {
            registry.get(id).is_some_and(|entry| {
                entry
                    .files
                    .iter()
                    .map(|f| f.quant)
                    .eq(quants.iter().copied())
            })
        });
        if !every_file {
            let _ = writeln!(
                out,
                "quantizations = {}",
                list(&merged_quantizations(&self.models), |q| toml_string(
                    q.as_str()
                ))
            );
        }
        let _ = writeln!(
            out,
            "backends = {}",
            list(&self.backends, |b| toml_string(b.as_str()))
        );
        let _ = writeln!(out, "device = {}", toml_string(self.device.as_str()));
        let _ = writeln!(out, "context = {}", self.context);
        let _ = writeln!(out, "prompt_tokens = {}", self.prompt_tokens);
        let _ = writeln!(out, "generate_tokens = {}", self.generate_tokens);
        let _ = writeln!(
            out,
            "concurrency = {}",
            list(&self.concurrency, u32::to_string)
        );
        let _ = writeln!(out, "threads = {}", list(&self.threads, u32::to_string));
        let _ = writeln!(out, "batch = {}", self.batch);
        let _ = writeln!(out, "seed = {}", self.seed);
        let _ = writeln!(out, "warmup = {}", self.warmup);
        let _ = writeln!(out, "repetitions = {}", self.repetitions);
        if let Some(bytes) = self.memory_budget {
            // The budget a device profile set is written as the profile, which sets it again
            // (and names itself in skip messages).
            match self
                .memory_budget_source
                .split('`')
                .nth(1)
                .filter(|_| self.memory_budget_source != "memory_budget")
            {
                Some(profile) => {
                    let _ = writeln!(out, "device_profile = {}", toml_string(profile));
                }
                None => {
                    let _ = writeln!(out, "memory_budget = \"{bytes}\"");
                }
            }
        }
        if let Some(format) = self.prompt_format {
            let _ = writeln!(out, "prompt_format = {}", toml_string(format.as_str()));
        }
        if let Sampling::Temperature { temperature, top_k } = self.sampling {
            let _ = writeln!(
                out,
                "\n[sampling]\ntemperature = {}\ntop_k = {top_k}",
                float(f64::from(temperature))
            );
        }
        if self.serving != Serving::default() {
            serving_table(&mut out, &self.serving);
        }
        if let Some(stopping) = &self.stopping {
            let _ = writeln!(
                out,
                "\n[stopping]\ntarget_relative_ci = {}\nmax_repetitions = {}",
                float(stopping.target_relative_ci),
                stopping.max_repetitions
            );
            if let Some(seconds) = stopping.max_seconds {
                let _ = writeln!(out, "max_seconds = {}", float(seconds));
            }
        }
        if let Workload::Goodput(g) = &self.workload {
            let _ = writeln!(out, "\n[goodput]");
            match &g.preset {
                Some(p) => {
                    let _ = writeln!(out, "preset = {}", toml_string(p));
                }
                None => {
                    let _ = writeln!(
                        out,
                        "ttft_ms = {}\ntpot_ms = {}",
                        float(g.targets.ttft_ms),
                        float(g.targets.tpot_ms)
                    );
                }
            }
            let _ = writeln!(
                out,
                "share = {}\nstart_rate_per_s = {}\nrequests_per_rate = {}\nmax_steps = {}\nmax_seconds = {}",
                float(g.targets.share),
                float(g.sweep.start_rate_per_s),
                g.requests_per_rate,
                g.sweep.max_steps,
                float(g.max_seconds)
            );
        }
        if let Workload::Sustained(sustained) = &self.workload {
            let _ = writeln!(out, "\n[sustained]\nseconds = {}", sustained.seconds);
            if let Some(c) = sustained.cooldown {
                let _ = writeln!(
                    out,
                    "cooldown_max_seconds = {}\ncooldown_margin_c = {}",
                    c.max_seconds,
                    float(c.margin_c)
                );
            }
        }
        if let Some(quality) = &self.quality {
            let _ = writeln!(
                out,
                "\n[quality]\ncorpus = {}\ncontext = {}",
                toml_string(&quality.corpus),
                quality.context
            );
            if let Some(chunks) = quality.chunks {
                let _ = writeln!(out, "chunks = {chunks}");
            }
            if let Some(reference) = &quality.reference_quant {
                let _ = writeln!(out, "reference_quant = {}", toml_string(reference.as_str()));
            }
        }
        if let Workload::Accuracy(accuracy) = &self.workload {
            let _ = writeln!(out, "\n[accuracy]\nfew_shot = {}", accuracy.few_shot);
            if let Some(subjects) = &accuracy.subjects {
                let _ = writeln!(out, "subjects = {}", list(subjects, |s| toml_string(s)));
            }
            if let Some(n) = accuracy.questions_per_subject {
                let _ = writeln!(out, "questions_per_subject = {n}");
            }
        }
        if let Some(e) = &self.endpoint {
            endpoint_table(&mut out, e);
        }
        if let Some(h) = &self.hybrid {
            let _ = writeln!(
                out,
                "\n[hybrid]\npriority = {}",
                toml_string(h.priority.as_str())
            );
            if let Some(b) = h.ttft_budget_ms {
                let _ = writeln!(out, "ttft_budget_ms = {}", float(b));
            }
            for r in &h.cloud {
                let _ = writeln!(
                    out,
                    "\n[[hybrid.cloud]]\npriority = {}\nmodel = {}\nprice = {}",
                    toml_string(r.priority.as_str()),
                    toml_string(&r.model),
                    toml_string(&r.price)
                );
            }
        }
        if self.kv_declared {
            for variant in &self.kv {
                kv_table(&mut out, variant);
            }
        }
        out
    }
}

/// `[endpoint]` with every key it resolved to.
fn endpoint_table(out: &mut String, e: &super::Endpoint) {
    use super::EndpointTarget;
    let _ = writeln!(out, "\n[endpoint]");
    match &e.target {
        EndpointTarget::Url(url) => {
            let _ = writeln!(out, "url = {}", toml_string(url));
        }
        EndpointTarget::Launch { model } => {
            let _ = writeln!(out, "launch = true");
            if let Some(m) = model {
                let _ = writeln!(out, "launch_model = {}", toml_string(m));
            }
        }
    }
    if let Some(m) = &e.model {
        let _ = writeln!(out, "model = {}", toml_string(m));
    }
    if let Some(v) = &e.api_key_env {
        let _ = writeln!(out, "api_key_env = {}", toml_string(v));
    }
    if let Some(c) = e.cache_prompt {
        let _ = writeln!(out, "cache_prompt = {c}");
    }
    if let Some(d) = &e.device_profile {
        let _ = writeln!(out, "device_profile = {}", toml_string(d));
    }
    let _ = writeln!(
        out,
        "api = {}\nstream = {}\nignore_eos = {}\nconnect_timeout_ms = {}\nrequest_timeout_ms = {}\nstall_timeout_ms = {}",
        toml_string(e.api.as_str()),
        e.stream,
        e.ignore_eos,
        e.connect_timeout_ms,
        e.request_timeout_ms,
        e.stall_timeout_ms
    );
    let f = &e.faults;
    if f.any() {
        let _ = writeln!(
            out,
            "\n[endpoint.faults]\nlatency_ms = {}\nerror_rate = {}\noverload_rate = {}\ncut_rate = {}\nstall_rate = {}\nmalformed_rate = {}\nafter_tokens = {}",
            f.latency_ms,
            float(f.error_rate),
            float(f.overload_rate),
            float(f.cut_rate),
            float(f.stall_rate),
            float(f.malformed_rate),
            f.after_tokens
        );
        if let Some(k) = f.kill_at_request {
            let _ = writeln!(out, "kill_at_request = {k}");
        }
    }
}
