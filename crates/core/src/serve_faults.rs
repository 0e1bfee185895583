//! Which fault `edgebench serve` injects into its `n`-th request: a pure function of the seed,
//! the request number and the shares, so a faulty run replays exactly.

use crate::scenario::ServerFaults;

/// What one request suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 before any token.
    ServerError,
    /// HTTP 429 with `Retry-After`.
    Overloaded,
    /// The stream ends without `[DONE]` after this many tokens.
    Cut { after_tokens: u32 },
    /// The stream stays open and silent after this many tokens.
    Stall { after_tokens: u32 },
    /// An event that is not JSON after this many tokens.
    Malformed { after_tokens: u32 },
}

/// The fault for request `n` (counting from 1), if any. Each request draws one uniform number
/// from a SplitMix64 of `seed` and `n`; the shares are laid end to end on [0, 1).
#[must_use]
pub fn pick(faults: &ServerFaults, seed: u64, n: u64) -> Option<Fault> {
    let u = uniform(seed, n);
    let after_tokens = faults.after_tokens;
    let mut edge = 0.0;
    for (share, fault) in [
        (faults.error_rate, Fault::ServerError),
        (faults.overload_rate, Fault::Overloaded),
        (faults.cut_rate, Fault::Cut { after_tokens }),
        (faults.stall_rate, Fault::Stall { after_tokens }),
        (faults.malformed_rate, Fault::Malformed { after_tokens }),
    ] {
        edge += share;
        if u < edge {
            return Some(fault);
        }
    }
    None
}

fn uniform(seed: u64, n: u64) -> f64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::{Fault, pick};
    use crate::scenario::ServerFaults;

    #[test]
    fn shares_are_honoured_and_replay() {
        let faults = ServerFaults {
            error_rate: 0.1,
            cut_rate: 0.2,
            after_tokens: 3,
            ..ServerFaults::default()
        };
        let picks: Vec<_> = (1..=10_000).map(|n| pick(&faults, 7, n)).collect();
        let errors = picks
            .iter()
            .filter(|p| **p == Some(Fault::ServerError))
            .count();
        let cuts = picks
            .iter()
            .filter(|p| **p == Some(Fault::Cut { after_tokens: 3 }))
            .count();
        assert!((900..1100).contains(&errors), "{errors}");
        assert!((1850..2150).contains(&cuts), "{cuts}");
        assert_eq!(picks.iter().flatten().count(), errors + cuts);
        let again: Vec<_> = (1..=10_000).map(|n| pick(&faults, 7, n)).collect();
        assert_eq!(picks, again);
        assert!((1..=1000).all(|n| pick(&ServerFaults::default(), 7, n).is_none()));
        let all = ServerFaults {
            error_rate: 1.0,
            ..ServerFaults::default()
        };
        assert!((1..=1000).all(|n| pick(&all, 7, n) == Some(Fault::ServerError)));
    }
}
