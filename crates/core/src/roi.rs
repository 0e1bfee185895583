//! Cost of tokens on a device against cloud APIs. Pure arithmetic over stated inputs; reports
//! show the inputs beside the results.

/// What running on a device costs, and how fast it goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceCost {
    /// Purchase price, amortised linearly over `lifetime_months`.
    pub price_usd: f64,
    pub lifetime_months: f64,
    /// Hours per day the device may spend generating.
    pub active_hours_per_day: f64,
    pub electricity_usd_per_kwh: f64,
    /// Generation speed (tokens/s) the device sustains.
    pub tokens_per_s: f64,
    /// Energy per generated token, joules.
    pub joules_per_token: f64,
}

const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

impl DeviceCost {
    /// The amortised device cost per month, paid whether or not it generates.
    #[must_use]
    pub fn fixed_usd_per_month(&self) -> f64 {
        self.price_usd / self.lifetime_months
    }

    /// Energy cost of one million tokens.
    #[must_use]
    pub fn energy_usd_per_million(&self) -> f64 {
        self.joules_per_token * 1e6 / 3.6e6 * self.electricity_usd_per_kwh
    }

    /// Most tokens one device can generate in a month at its active hours.
    #[must_use]
    pub fn capacity_tokens_per_month(&self) -> f64 {
        self.tokens_per_s * self.active_hours_per_day * 3600.0 * DAYS_PER_MONTH
    }

    /// Monthly cost at `tokens` per month (one device; beyond its capacity it can't serve).
    #[must_use]
    pub fn usd_per_month(&self, tokens: f64) -> f64 {
        self.fixed_usd_per_month() + tokens / 1e6 * self.energy_usd_per_million()
    }

    /// Cost per million tokens when the device runs at full capacity: the best case.
    #[must_use]
    pub fn usd_per_million_at_capacity(&self) -> f64 {
        let capacity = self.capacity_tokens_per_month();
        if capacity <= 0.0 {
            return f64::INFINITY;
        }
        self.fixed_usd_per_month() / capacity * 1e6 + self.energy_usd_per_million()
    }

    /// Monthly volume above which the device is cheaper than a cloud API at
    /// `cloud_usd_per_million`: `None` when the cloud is cheaper per token than the energy alone.
    /// The volume may exceed one device's capacity; callers compare with
    /// [`Self::capacity_tokens_per_month`].
    #[must_use]
    pub fn break_even_tokens_per_month(&self, cloud_usd_per_million: f64) -> Option<f64> {
        let margin = cloud_usd_per_million - self.energy_usd_per_million();
        (margin > 0.0).then(|| self.fixed_usd_per_month() / margin * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> DeviceCost {
        DeviceCost {
            price_usd: 400.0,
            lifetime_months: 24.0,
            active_hours_per_day: 2.0,
            electricity_usd_per_kwh: 0.15,
            tokens_per_s: 10.0,
            joules_per_token: 0.5,
        }
    }

    #[test]
    fn hand_computed_costs() {
        let p = phone();
        // 400 / 24 = 16.667 $/month.
        assert!((p.fixed_usd_per_month() - 16.666_666).abs() < 1e-3);
        // 0.5 J × 1e6 = 5e5 J = 0.1389 kWh → $0.02083.
        assert!((p.energy_usd_per_million() - 0.020_833).abs() < 1e-5);
        // 10 t/s × 7200 s × 30.4375 days = 2 191 500 tokens.
        assert!((p.capacity_tokens_per_month() - 2_191_500.0).abs() < 1.0);
        // At capacity: 16.667 / 2.1915 + 0.0208 = 7.626 $/M.
        assert!((p.usd_per_million_at_capacity() - 7.626).abs() < 0.01);
        // Against $8/M: 16.667 / (8 − 0.0208) × 1e6 = 2.089 M tokens/month.
        let v = p.break_even_tokens_per_month(8.0).expect("break-even");
        assert!((v - 2_088_860.0).abs() < 100.0, "{v}");
        // The device's cost at that volume equals the cloud's.
        assert!((p.usd_per_month(v) - v / 1e6 * 8.0).abs() < 1e-6);
        // Cheaper per token than the electricity: never breaks even.
        assert!(p.break_even_tokens_per_month(0.01).is_none());
    }
}
