//! The hybrid engine's figures, as the seed reports them: on-device success rate, cloud
//! fallback latency, and cost per million tokens against pure cloud and pure on-device.
//! Pure arithmetic over the stored requests.

use crate::stats;

/// One stored request of a hybrid run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Served {
    pub on_device: bool,
    /// Answered by the cloud.
    pub cloud: bool,
    /// From the decision to fall back to the cloud's first token.
    pub fallback_ms: Option<f64>,
    /// Prompt and generated tokens of the answer.
    pub tokens: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub requests: usize,
    pub on_device: usize,
    pub cloud: usize,
    pub unanswered: usize,
    /// Fallback latencies that were measured (cloud answers).
    pub fallback_ms: Vec<f64>,
    pub fallback_p50_ms: Option<f64>,
    pub fallback_p95_ms: Option<f64>,
    /// What the answered tokens cost, per million of them, as served.
    pub hybrid_usd_per_million: Option<f64>,
    /// Savings against sending every answered token to the cloud at `cloud_usd_per_million`.
    pub savings_vs_cloud: Option<f64>,
}

impl Summary {
    /// Share of requests answered on the device.
    #[must_use]
    pub fn on_device_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.on_device as f64 / self.requests as f64)
    }

    /// Share of requests answered by either side.
    #[must_use]
    pub fn answered_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| (self.on_device + self.cloud) as f64 / self.requests as f64)
    }
}

/// Summarises `served` at the route's price. The on-device side costs nothing per token here
/// (its device cost is the ROI section's); pure cloud is every answered token at the price.
#[must_use]
pub fn summarize(served: &[Served], cloud_usd_per_million: f64) -> Summary {
    let on_device = served.iter().filter(|s| s.on_device).count();
    let cloud = served.iter().filter(|s| s.cloud).count();
    let fallback_ms: Vec<f64> = served
        .iter()
        .filter(|s| s.cloud)
        .filter_map(|s| s.fallback_ms)
        .collect();
    let answered_tokens: u64 = served
        .iter()
        .filter(|s| s.on_device || s.cloud)
        .map(|s| s.tokens)
        .sum();
    let cost: f64 = served.iter().map(|s| s.cost_usd).sum();
    let hybrid = (answered_tokens > 0).then(|| cost / answered_tokens as f64 * 1e6);
    let mut sorted = fallback_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let quantile = |q: f64| (!sorted.is_empty()).then(|| stats::percentile_sorted(&sorted, q));
    Summary {
        requests: served.len(),
        on_device,
        cloud,
        unanswered: served.len() - on_device - cloud,
        fallback_p50_ms: quantile(50.0),
        fallback_p95_ms: quantile(95.0),
        fallback_ms,
        savings_vs_cloud: hybrid
            .filter(|_| cloud_usd_per_million > 0.0)
            .map(|h| 1.0 - h / cloud_usd_per_million),
        hybrid_usd_per_million: hybrid,
    }
}

#[cfg(test)]
mod tests {
    use super::{Served, summarize};

    #[test]
    fn rates_latencies_and_savings_by_hand() {
        let device = Served {
            on_device: true,
            cloud: false,
            fallback_ms: None,
            tokens: 100,
            cost_usd: 0.0,
        };
        let cloud = |ms: f64| Served {
            on_device: false,
            cloud: true,
            fallback_ms: Some(ms),
            tokens: 100,
            cost_usd: 100.0 * 0.35 / 1e6,
        };
        let lost = Served {
            on_device: false,
            cloud: false,
            fallback_ms: None,
            tokens: 0,
            cost_usd: 0.0,
        };
        let s = summarize(
            &[device, device, device, cloud(40.0), cloud(60.0), lost],
            0.35,
        );
        assert_eq!(
            (s.requests, s.on_device, s.cloud, s.unanswered),
            (6, 3, 2, 1)
        );
        assert_eq!(s.on_device_rate(), Some(0.5));
        assert!((s.answered_rate().unwrap_or(0.0) - 5.0 / 6.0).abs() < 1e-12);
        // 2 of 5 answered requests' tokens paid: 40% of pure cloud, 60% saved.
        assert!((s.hybrid_usd_per_million.unwrap_or(0.0) - 0.14).abs() < 1e-12);
        assert!((s.savings_vs_cloud.unwrap_or(0.0) - 0.6).abs() < 1e-12);
        assert_eq!(s.fallback_p50_ms, Some(50.0));
        let none = summarize(&[], 0.35);
        assert_eq!(
            (none.on_device_rate(), none.hybrid_usd_per_million),
            (None, None)
        );
    }
}
