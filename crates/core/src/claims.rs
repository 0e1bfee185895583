//! Published claims checked against physics: the bytes a claimed number implies against the
//! memory bandwidth and capacity of the named device. Pure; the verdicts carry their arithmetic.

use crate::projection;
use crate::quant::Quant;
use crate::registry::Architecture;
use crate::scenario::KvType;

/// What the physics says about a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Physics {
    /// The claim needs more than the device can do (bandwidth or bytes), whatever the software.
    Impossible,
    /// Within the physical bound (which says nothing about whether it is true).
    Possible,
}

impl Physics {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Impossible => "physically impossible",
            Self::Possible => "physically possible",
        }
    }
}

/// A checked bound: the limit physics sets, the verdict, and how it was computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub limit: f64,
    pub physics: Physics,
    pub arithmetic: String,
}

const GB: f64 = 1e9;

/// Upper bound on the per-sequence decode rate of `concurrency` sequences each attending to
/// `context` positions: every step reads all weights once and every sequence's KV cache, so
/// steps/s ≤ bandwidth ÷ (weights + concurrency × KV(context)). A claim above it is impossible.
#[must_use]
pub fn decode_rate_bound(
    claimed_tokens_per_s: f64,
    weights_bytes: f64,
    arch: &Architecture,
    context: u32,
    concurrency: u32,
    bandwidth_bytes_per_s: f64,
) -> Bound {
    let kv = projection::kv_bytes_per_token(arch, KvType::F16, KvType::F16) * f64::from(context);
    let per_step = weights_bytes + f64::from(concurrency) * kv;
    let limit = projection::roofline_tokens_per_s(per_step, bandwidth_bytes_per_s);
    let physics = if claimed_tokens_per_s > limit {
        Physics::Impossible
    } else {
        Physics::Possible
    };
    Bound {
        limit,
        physics,
        arithmetic: format!(
            "each decode step reads the weights ({:.2} GB) + {concurrency} × KV at {context} positions, f16 ({:.2} GB each) = {:.2} GB; {:.1} GB/s ÷ {:.2} GB = {:.1} tokens/s per sequence at most; claimed {:.1}",
            weights_bytes / GB,
            kv / GB,
            per_step / GB,
            bandwidth_bytes_per_s / GB,
            per_step / GB,
            limit,
            claimed_tokens_per_s
        ),
    }
}

/// Lower bound on the memory a model occupies while generating: its weights at `precision` (every
/// weight is read for every token, so all of it is resident). A claimed footprint below it is
/// impossible.
#[must_use]
pub fn footprint_bound(claimed_bytes: f64, params: u64, precision: Quant) -> Option<Bound> {
    let weights = projection::weight_bytes(params, precision)? as f64;
    let bits = precision.bits_per_weight()?;
    Some(Bound {
        limit: weights,
        physics: if claimed_bytes < weights {
            Physics::Impossible
        } else {
            Physics::Possible
        },
        arithmetic: format!(
            "{:.2} B parameters × {bits} bits ÷ 8 = {:.2} GB of weights at {precision}, all read for every token; claimed {:.2} GB",
            params as f64 / GB,
            weights / GB,
            claimed_bytes / GB
        ),
    })
}

/// The smallest f16 KV cache (in tokens) that a claimed memory saving from quantizing the cache
/// needs, with the best cache type edgebench knows (q4_0, 72% smaller): a saving larger than the
/// whole cache is impossible, and a claimed total below the weights is too.
#[must_use]
pub fn kv_saving_bound(
    before_bytes: f64,
    after_bytes: f64,
    weights_bytes: f64,
    arch: &Architecture,
) -> Bound {
    let per_token_f16 = projection::kv_bytes_per_token(arch, KvType::F16, KvType::F16);
    let per_token_q4 = projection::kv_bytes_per_token(arch, KvType::Q4_0, KvType::Q4_0);
    let best_fraction = 1.0 - per_token_q4 / per_token_f16;
    let saving = before_bytes - after_bytes;
    let cache_needed = saving / best_fraction;
    let tokens_needed = cache_needed / per_token_f16;
    let impossible_total = after_bytes < weights_bytes;
    let impossible_cache = before_bytes - weights_bytes < cache_needed;
    Bound {
        limit: tokens_needed,
        physics: if impossible_total || impossible_cache {
            Physics::Impossible
        } else {
            Physics::Possible
        },
        arithmetic: format!(
            "saving {:.2} GB by quantizing the cache needs an f16 cache of ≥ {:.2} GB (q4_0 saves at most {:.0}%), i.e. ≥ {:.0} tokens at {:.0} B per token; the weights alone are {:.2} GB, leaving {:.2} GB of the claimed {:.2} GB for the cache{}",
            saving / GB,
            cache_needed / GB,
            best_fraction * 100.0,
            tokens_needed,
            per_token_f16,
            weights_bytes / GB,
            (before_bytes - weights_bytes) / GB,
            before_bytes / GB,
            if impossible_total {
                format!(
                    "; the claimed {:.2} GB after is below the weights",
                    after_bytes / GB
                )
            } else {
                String::new()
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::mimo_7b as mimo;

    #[test]
    fn the_seed_phone_claim_is_impossible() {
        // 4.5 GB of weights + 512 positions × 147 456 B ≈ 4.575 GB per step over 77 GB/s ≈ 16.8 t/s.
        let b = decode_rate_bound(20.0, 4.5e9, &mimo(), 512, 1, 77e9);
        assert_eq!(b.physics, Physics::Impossible, "{}", b.arithmetic);
        assert!((b.limit - 16.83).abs() < 0.05, "{}", b.limit);
        let b = decode_rate_bound(12.0, 4.5e9, &mimo(), 512, 1, 77e9);
        assert_eq!(b.physics, Physics::Possible);
        // 32 sequences share one read of the weights: 6 t/s each fits.
        let b = decode_rate_bound(6.1, 4.5e9, &mimo(), 512, 32, 77e9);
        assert_eq!(b.physics, Physics::Possible, "{}", b.arithmetic);
    }

    #[test]
    fn fp16_footprint_below_the_weights_is_impossible() {
        // 7.6 B parameters at F16 = 15.2 GB: "4.2 GB (FP16)" can't hold them.
        let b = footprint_bound(4.2e9, 7_600_000_000, Quant::F16).expect("known precision");
        assert_eq!(b.physics, Physics::Impossible);
        assert!((b.limit - 15.2e9).abs() < 1.0);
        assert!(
            footprint_bound(1.0, 1, Quant::Iq2Xs).is_none(),
            "no projected bits"
        );
    }

    #[test]
    fn kv_saving_needs_a_big_enough_cache() {
        // Saving 1.4 GB needs ≥ 1.4 / 0.71875 = 1.948 GB of f16 cache = 13 210 tokens of MiMo.
        let b = kv_saving_bound(4.2e9, 2.8e9, 2.0e9, &mimo());
        assert_eq!(b.physics, Physics::Possible, "{}", b.arithmetic);
        assert!((b.limit - 13_210.0).abs() < 5.0, "{}", b.limit);
        // After-total below the weights: impossible.
        let b = kv_saving_bound(2.1e9, 1.4e9, 2.3e9, &mimo());
        assert_eq!(b.physics, Physics::Impossible);
    }
}
