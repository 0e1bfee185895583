//! Two GGUF files decoded in one process, in alternating rounds (A B B A …), for a paired
//! speed ratio. On a shared machine single runs move ±10–20% between minutes (the host's slow
//! phases, invisible to the guest's load and steal counters); rounds a second apart see the same
//! phase, so each round's ratio carries the files' difference and little of the host's. This is
//! how `cargo xtask fidelity --paired` holds a random-weight copy to its real file, and how
//! `cargo xtask anchor candle` holds edgebench's candle engine to candle-transformers' own models
//! on one file.

use std::path::Path;
use std::time::Instant;

use edgebench_backend::{BackendError, BackendKind, LoadOptions, Session, TokenId};

use crate::device_facts;
use crate::engines::{self, reference_vocabulary};

/// What decodes one side of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// One of edgebench's engines, as every case runs it.
    Engine(BackendKind),
    /// candle-transformers' own quantized model for the file's architecture, as it ships.
    CandleTransformers,
}

impl Decoder {
    const CANDLE_TRANSFORMERS: &'static str = "candle-transformers";
}

impl std::str::FromStr for Decoder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == Self::CANDLE_TRANSFORMERS {
            return Ok(Self::CandleTransformers);
        }
        s.parse()
            .map(Self::Engine)
            .map_err(|e| format!("{e} (or `{}`, the stock models)", Self::CANDLE_TRANSFORMERS))
    }
}

impl std::fmt::Display for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Engine(kind) => kind.fmt(f),
            Self::CandleTransformers => f.write_str(Self::CANDLE_TRANSFORMERS),
        }
    }
}

/// What each round runs on both files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairPlan {
    pub threads: u32,
    /// Prompt tokens per round (the depth the generation starts at).
    pub prompt_tokens: usize,
    /// Tokens generated per round, the first one by the prefill (at least 2).
    pub generate_tokens: usize,
    /// Recorded rounds, after one unrecorded warm-up round.
    pub rounds: usize,
}

/// One file's times in one round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundTimes {
    /// Prompt in, first token out.
    pub prefill_s: f64,
    /// Every decode step after the first token.
    pub decode_s: f64,
}

/// Both files' times, round by round: `rounds[r] = [first, second]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    pub plan: PairPlan,
    pub rounds: Vec<[RoundTimes; 2]>,
    /// Other processes' share of the cores over the recorded rounds, as the harness measures
    /// it for every run (`edgebench_core::contention`); `None` where the counters are missing.
    pub others_cpu_share: Option<f64>,
}

impl Paired {
    /// Whether other processes held a meaningful share of the cores: its ratios then say more
    /// about the host than about the files.
    #[must_use]
    pub fn contended(&self) -> bool {
        self.others_cpu_share
            .is_some_and(edgebench_core::contention::is_contended)
    }

    /// The second file's decode speed ÷ the first's, one per round.
    #[must_use]
    pub fn decode_ratios(&self) -> Vec<f64> {
        self.rounds
            .iter()
            .map(|[a, b]| a.decode_s / b.decode_s)
            .collect()
    }

    /// The second file's prefill speed ÷ the first's, one per round.
    #[must_use]
    pub fn prefill_ratios(&self) -> Vec<f64> {
        self.rounds
            .iter()
            .map(|[a, b]| a.prefill_s / b.prefill_s)
            .collect()
    }

    /// Prefill tokens/s of side `which` (0 or 1), one per round.
    #[must_use]
    pub fn prefill_rates(&self, which: usize) -> Vec<f64> {
        let tokens = self.plan.prompt_tokens as f64;
        self.rounds
            .iter()
            .map(|r| tokens / r[which].prefill_s)
            .collect()
    }

    /// Generation tokens/s of file `which` (0 or 1), one per round.
    #[must_use]
    pub fn decode_rates(&self, which: usize) -> Vec<f64> {
        let steps = (self.plan.generate_tokens - 1) as f64;
        self.rounds
            .iter()
            .map(|r| steps / r[which].decode_s)
            .collect()
    }
}

/// Which file goes first in round `round`: A B, B A, B A, A B, then again (each file leads
/// as often as it follows, and drift within a group of four cancels).
#[must_use]
pub fn order(round: usize) -> [usize; 2] {
    if matches!(round % 4, 0 | 3) {
        [0, 1]
    } else {
        [1, 0]
    }
}

/// Why a paired run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("the plan needs at least 1 prompt token, 2 generated tokens and 1 round")]
    Plan,
    #[error("{}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        source: BackendError,
    },
}

/// Runs `plan` on `files[0]` with `decoders[0]` and `files[1]` with `decoders[1]`, both loaded
/// once, the prompt the first file's vocabulary makes of a fixed text (the files are expected to
/// share it: a twin keeps its real file's tokenizer). The same file may be on both sides.
pub fn run(
    files: [&Path; 2],
    decoders: [Decoder; 2],
    plan: &PairPlan,
) -> Result<Paired, PairError> {
    if plan.prompt_tokens == 0 || plan.generate_tokens < 2 || plan.rounds == 0 {
        return Err(PairError::Plan);
    }
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PairError::File {
            path: path.clone(),
            source,
        }
    };
    let prompt = prompt(files[0], plan.prompt_tokens).map_err(at(files[0]))?;
    let positions = (plan.prompt_tokens + plan.generate_tokens + 8) as u32;
    let options = LoadOptions {
        threads: plan.threads,
        context: positions,
        batch: plan.prompt_tokens as u32,
        positions_needed: positions,
        generate_tokens: plan.generate_tokens as u32,
        ..LoadOptions::default()
    };
    let mut sessions: Vec<Box<dyn Session>> = Vec::with_capacity(2);
    for (path, decoder) in files.into_iter().zip(decoders) {
        let session = match decoder {
            Decoder::Engine(kind) => engines::engine(kind).and_then(|e| e.load(path, &options)),
            Decoder::CandleTransformers => engines::stock_candle(path, plan.threads),
        };
        sessions.push(session.map_err(at(path))?);
    }
    let mut rounds = Vec::with_capacity(plan.rounds);
    let mut since = None;
    // Round 0 warms both files' pages and the engine's buffers; it is not recorded.
    for round in 0..=plan.rounds {
        if round == 1 {
            since = Some((
                Instant::now(),
                device_facts::machine_busy_ms(),
                device_facts::process_cpu_ms(),
            ));
        }
        let mut times = [RoundTimes {
            prefill_s: 0.0,
            decode_s: 0.0,
        }; 2];
        for which in order(round) {
            let session = &mut sessions[which];
            let fail = at(files[which]);
            session.reset(0).map_err(&fail)?;
            let start = Instant::now();
            let mut token = first(session.prefill(&[(0, &prompt)]).map_err(&fail)?);
            let prefilled = Instant::now();
            for _ in 1..plan.generate_tokens {
                token = first(session.decode_step(&[(0, token)]).map_err(&fail)?);
            }
            times[which] = RoundTimes {
                prefill_s: (prefilled - start).as_secs_f64(),
                decode_s: prefilled.elapsed().as_secs_f64(),
            };
        }
        if round > 0 {
            rounds.push(times);
        }
    }
    let others_cpu_share = since.and_then(|(start, busy, own)| {
        let busy = device_facts::machine_busy_ms()? - busy?;
        let own = device_facts::process_cpu_ms()? - own?;
        Some(edgebench_core::contention::others_share(
            busy,
            own,
            start.elapsed().as_secs_f64() * 1e3,
            std::thread::available_parallelism().map_or(1, usize::from),
        ))
    });
    Ok(Paired {
        plan: *plan,
        rounds,
        others_cpu_share,
    })
}

fn first(tokens: Vec<TokenId>) -> TokenId {
    tokens.first().copied().unwrap_or(0)
}

/// `tokens` tokens of a fixed English text, repeated as needed, as `path`'s vocabulary reads it.
fn prompt(path: &Path, tokens: usize) -> Result<Vec<TokenId>, BackendError> {
    const TEXT: &str = "The lab keeps its spare key in the drawer under the bench. \
        Every morning the first person in checks the freezer log, writes the temperature \
        down and signs it. ";
    let vocabulary = reference_vocabulary(path)?;
    let once = vocabulary.tokenize(TEXT, false)?;
    let mut out = vocabulary.tokenize("", true)?;
    while out.len() < tokens && !once.is_empty() {
        out.extend(once.iter().take(tokens - out.len()));
    }
    out.truncate(tokens);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_read_back_from_their_names() {
        for name in ["llama_cpp", "candle", "candle-transformers"] {
            let decoder: Decoder = name.parse().unwrap();
            assert_eq!(decoder.to_string(), name);
        }
        assert_eq!(
            "candle".parse::<Decoder>(),
            Ok(Decoder::Engine(BackendKind::Candle))
        );
        let refused = "stock-candle".parse::<Decoder>().unwrap_err();
        assert!(refused.contains("candle-transformers"), "{refused}");
    }

    #[test]
    fn each_file_leads_half_the_rounds_in_groups_of_four() {
        let leads: Vec<usize> = (0..8).map(|r| order(r)[0]).collect();
        assert_eq!(leads, [0, 1, 1, 0, 0, 1, 1, 0]);
        for r in 0..8 {
            let o = order(r);
            assert_ne!(o[0], o[1]);
        }
    }

    #[test]
    fn ratios_are_the_second_files_speed_over_the_firsts() {
        let t = |prefill_s, decode_s| RoundTimes {
            prefill_s,
            decode_s,
        };
        let paired = Paired {
            plan: PairPlan {
                threads: 2,
                prompt_tokens: 32,
                generate_tokens: 11,
                rounds: 2,
            },
            // The second file decodes in 0.8 of the time: 1.25× as fast.
            rounds: vec![[t(0.2, 1.0), t(0.2, 0.8)], [t(0.4, 2.0), t(0.5, 1.6)]],
            others_cpu_share: Some(0.02),
        };
        assert!(!paired.contended());
        assert_eq!(paired.decode_ratios(), [1.25, 1.25]);
        assert_eq!(paired.prefill_ratios(), [1.0, 0.8]);
        assert_eq!(paired.decode_rates(1), [12.5, 6.25]);
        assert_eq!(paired.prefill_rates(0), [160.0, 80.0]);
    }
}
