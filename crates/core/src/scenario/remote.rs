//! Engines beyond this host: the `[endpoint]` an `http` backend drives (any OpenAI-compatible
//! server) and the `[hybrid]` table of the on-device-first engine with its cloud fallback.
//! Validated here; each error points at its key, as in `validate`.

use toml::Spanned;

use super::file::{EndpointFile, HybridFile, ScenarioFile, ServerFaultsFile};
use super::{BackendKind, Category, Ctx, ScenarioError};

/// Which OpenAI API an endpoint is driven through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `/v1/completions`, the prompt as the reference vocabulary's token ids.
    Completion,
    /// `/v1/chat/completions`, the prompt as one user message.
    Chat,
}

impl Api {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completion => "completion",
            Self::Chat => "chat",
        }
    }
}

crate::named_enum!(Api, "api", [Completion, Chat]);

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EndpointTarget {
    /// A base URL (`…/v1`).
    Url(String),
    /// `edgebench serve`, started on 127.0.0.1 for the case, serving this registry model.
    Launch { model: Option<String> },
}

/// Faults `edgebench serve` injects (tests only). Shares are of requests, drawn per request
/// from a sequence seeded by the server's seed ([`crate::serve_faults`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerFaults {
    pub latency_ms: u64,
    pub error_rate: f64,
    pub overload_rate: f64,
    pub cut_rate: f64,
    pub stall_rate: f64,
    pub malformed_rate: f64,
    pub after_tokens: u32,
    pub kill_at_request: Option<u32>,
}

impl ServerFaults {
    /// Whether any fault is asked for.
    #[must_use]
    pub fn any(&self) -> bool {
        *self
            != Self {
                after_tokens: self.after_tokens,
                ..Self::default()
            }
    }
}

/// A validated `[endpoint]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub target: EndpointTarget,
    /// The model id the server is asked for; `None`: the registry id.
    pub model: Option<String>,
    pub api_key_env: Option<String>,
    pub api: Api,
    pub stream: bool,
    pub ignore_eos: bool,
    /// llama-server's `cache_prompt`, sent only when set.
    pub cache_prompt: Option<bool>,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub stall_timeout_ms: u64,
    pub device_profile: Option<String>,
    pub faults: ServerFaults,
}

/// What the hybrid engine optimises when it picks the cloud model (the seed's `priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloudPriority {
    Speed,
    Quality,
    Cost,
}

impl CloudPriority {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Speed => "speed",
            Self::Quality => "quality",
            Self::Cost => "cost",
        }
    }
}

crate::named_enum!(CloudPriority, "priority", [Speed, Quality, Cost]);

/// One cloud model the hybrid engine may fall back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudRoute {
    pub priority: CloudPriority,
    pub model: String,
    /// Name of its `[[cloud]]` price in `datasets/roi.toml`.
    pub price: String,
}

/// A validated `[hybrid]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Hybrid {
    pub ttft_budget_ms: Option<f64>,
    pub priority: CloudPriority,
    pub cloud: Vec<CloudRoute>,
}

impl Hybrid {
    /// The cloud model for this scenario's priority: its own route, else the `cost` route, else
    /// the first (the seed's `getCloudModel` falls back to its cheapest).
    #[must_use]
    pub fn route(&self) -> Option<&CloudRoute> {
        self.cloud
            .iter()
            .find(|r| r.priority == self.priority)
            .or_else(|| {
                self.cloud
                    .iter()
                    .find(|r| r.priority == CloudPriority::Cost)
            })
            .or_else(|| self.cloud.first())
    }
}

pub(super) const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
pub(super) const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 120_000;
pub(super) const DEFAULT_STALL_TIMEOUT_MS: u64 = 30_000;

/// The `[endpoint]` table, which `http` and `hybrid` backends need and nothing else may have.
pub(super) fn endpoint(
    cx: &Ctx<'_>,
    raw: &ScenarioFile,
    backends: &[BackendKind],
) -> Result<Option<Endpoint>, ScenarioError> {
    let remote = backends
        .iter()
        .any(|b| matches!(b, BackendKind::Http | BackendKind::Hybrid));
    let table = match (&raw.endpoint, remote) {
        (None, false) => return Ok(None),
        (None, true) => {
            return Err(cx.at(
                "backends",
                &raw.backends,
                "the `http` and `hybrid` backends need an [endpoint] table (`url = \"http://…/v1\"` or `launch = true`)",
            ));
        }
        (Some(t), false) => {
            return Err(cx.at(
                "endpoint",
                t,
                "an [endpoint] table needs the `http` or `hybrid` backend in `backends`",
            ));
        }
        (Some(t), true) => t,
    };
    let f: &EndpointFile = table.get_ref();
    let target = match (&f.url, f.launch) {
        (Some(url), false) => Endpoint::check_url(cx, url)?,
        (None, true) => EndpointTarget::Launch {
            model: f.launch_model.clone(),
        },
        (Some(url), true) => {
            return Err(cx.at(
                "endpoint.url",
                url,
                "give either `url` or `launch = true`, not both",
            ));
        }
        (None, false) => {
            return Err(cx.at(
                "endpoint",
                table,
                "say where the server is: `url = \"http://…/v1\"`, or `launch = true` to start edgebench serve on 127.0.0.1",
            ));
        }
    };
    if f.launch_model.is_some() && !f.launch {
        return Err(cx.at("endpoint", table, "`launch_model` needs `launch = true`"));
    }
    let api = match &f.api {
        None => Api::Completion,
        Some(a) => a
            .get_ref()
            .parse::<Api>()
            .map_err(|e| cx.at("endpoint.api", a, e.to_string()))?,
    };
    if let Some(var) = &f.api_key_env
        && (var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(cx.at(
            "endpoint",
            table,
            format!("`api_key_env` names an environment variable (letters, digits, `_`), not `{var}`: the key itself never goes in a scenario"),
        ));
    }
    let faults = match &f.faults {
        None => ServerFaults::default(),
        Some(t) if !f.launch => {
            return Err(cx.at(
                "endpoint.faults",
                t,
                "faults are injected by a launched edgebench serve: they need `launch = true`",
            ));
        }
        Some(t) => server_faults(cx, t)?,
    };
    if let Some(name) = &f.device_profile
        && crate::device_profile::find(name).is_none()
    {
        return Err(cx.at(
            "endpoint.device_profile",
            table,
            format!(
                "unknown device profile `{name}`; known: {}",
                crate::device_profile::PROFILES
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if raw.category == Category::MultiTurn || raw.category == Category::Accuracy {
        return Err(cx.at(
            "endpoint",
            table,
            "multi-turn and accuracy scenarios need the engine's own cache and logits; an endpoint serves single prompts",
        ));
    }
    let timeout = |v: Option<u64>, default| v.unwrap_or(default).max(1);
    Ok(Some(Endpoint {
        target,
        model: f.model.clone(),
        api_key_env: f.api_key_env.clone(),
        api,
        stream: f.stream.unwrap_or(true),
        ignore_eos: f.ignore_eos.unwrap_or(true),
        cache_prompt: f.cache_prompt,
        connect_timeout_ms: timeout(f.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT_MS),
        request_timeout_ms: timeout(f.request_timeout_ms, DEFAULT_REQUEST_TIMEOUT_MS),
        stall_timeout_ms: timeout(f.stall_timeout_ms, DEFAULT_STALL_TIMEOUT_MS),
        device_profile: f.device_profile.clone(),
        faults,
    }))
}

impl Endpoint {
    fn check_url(cx: &Ctx<'_>, url: &Spanned<String>) -> Result<EndpointTarget, ScenarioError> {
        let u = url.get_ref();
        let rest = u
            .strip_prefix("http://")
            .or_else(|| u.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.starts_with('/') => {}
            _ => {
                return Err(cx.at(
                    "endpoint.url",
                    url,
                    format!(
                        "`{u}` is not an http:// or https:// URL (e.g. http://192.168.1.20:8080/v1)"
                    ),
                ));
            }
        }
        if rest.is_some_and(|h| h.split('/').next().is_some_and(|a| a.contains('@'))) {
            return Err(cx.at(
                "endpoint.url",
                url,
                "credentials don't go in the URL: put the key in an environment variable and name it in `api_key_env`",
            ));
        }
        Ok(EndpointTarget::Url(u.trim_end_matches('/').to_owned()))
    }

    /// The model id to send: the declared one, else `registry_id`.
    #[must_use]
    pub fn model_id<'a>(&'a self, registry_id: &'a str) -> &'a str {
        self.model.as_deref().unwrap_or(registry_id)
    }
}

fn server_faults(
    cx: &Ctx<'_>,
    t: &Spanned<ServerFaultsFile>,
) -> Result<ServerFaults, ScenarioError> {
    let f = t.get_ref();
    let shares = [
        ("error_rate", f.error_rate),
        ("overload_rate", f.overload_rate),
        ("cut_rate", f.cut_rate),
        ("stall_rate", f.stall_rate),
        ("malformed_rate", f.malformed_rate),
    ];
    for (key, v) in shares {
        if !(0.0..=1.0).contains(&v) {
            return Err(cx.at(
                &format!("endpoint.faults.{key}"),
                t,
                format!("{v} is not a share between 0 and 1"),
            ));
        }
    }
    let total: f64 = shares.iter().map(|(_, v)| v).sum();
    if total > 1.0 + 1e-9 {
        return Err(cx.at(
            "endpoint.faults",
            t,
            format!("the fault shares add up to {total}: more than every request"),
        ));
    }
    Ok(ServerFaults {
        latency_ms: f.latency_ms,
        error_rate: f.error_rate,
        overload_rate: f.overload_rate,
        cut_rate: f.cut_rate,
        stall_rate: f.stall_rate,
        malformed_rate: f.malformed_rate,
        after_tokens: f.after_tokens.unwrap_or(2),
        kill_at_request: f.kill_at_request,
    })
}

/// The `[hybrid]` table, which exactly the `hybrid` backend needs.
pub(super) fn hybrid(
    cx: &Ctx<'_>,
    raw: &ScenarioFile,
    backends: &[BackendKind],
) -> Result<Option<Hybrid>, ScenarioError> {
    let wanted = backends.contains(&BackendKind::Hybrid);
    let table = match (&raw.hybrid, wanted) {
        (None, false) => return Ok(None),
        (None, true) => {
            return Err(cx.at(
                "backends",
                &raw.backends,
                "the `hybrid` backend needs a [hybrid] table naming its cloud models",
            ));
        }
        (Some(t), false) => {
            return Err(cx.at("hybrid", t, "a [hybrid] table needs `hybrid` in `backends`"));
        }
        (Some(t), true) => t,
    };
    let f: &HybridFile = table.get_ref();
    if raw.goodput.is_some() || raw.sustained.is_some() {
        return Err(cx.at(
            "hybrid",
            table,
            "a hybrid scenario serves its prompts one by one; it can't be a goodput or sustained scenario",
        ));
    }
    if let Some(b) = f.ttft_budget_ms
        && !(b.is_finite() && b > 0.0)
    {
        return Err(cx.at(
            "hybrid.ttft_budget_ms",
            table,
            "must be a positive number of ms",
        ));
    }
    let priority = match &f.priority {
        None => CloudPriority::Cost,
        Some(p) => p
            .get_ref()
            .parse::<CloudPriority>()
            .map_err(|e| cx.at("hybrid.priority", p, e.to_string()))?,
    };
    if f.cloud.get_ref().is_empty() {
        return Err(cx.at("hybrid.cloud", &f.cloud, "name at least one cloud model"));
    }
    let mut cloud = Vec::new();
    for route in f.cloud.get_ref() {
        let priority = route
            .priority
            .parse::<CloudPriority>()
            .map_err(|e| cx.at("hybrid.cloud", &f.cloud, e.to_string()))?;
        if cloud.iter().any(|r: &CloudRoute| r.priority == priority) {
            return Err(cx.at(
                "hybrid.cloud",
                &f.cloud,
                format!("priority `{priority}` has two cloud models"),
            ));
        }
        cloud.push(CloudRoute {
            priority,
            model: route.model.clone(),
            price: route.price.clone(),
        });
    }
    Ok(Some(Hybrid {
        ttft_budget_ms: f.ttft_budget_ms,
        priority,
        cloud,
    }))
}
