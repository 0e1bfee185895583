//! Output integrity of a measured run, in the spirit of MLPerf's TEST06 for LLMs: a speed
//! figure only counts when the engine produced what was asked. For greedy sampling every
//! prompt's first generated token must be the same in every repetition (the engine computed
//! the same thing each time); every completed turn must have generated the requested number of
//! tokens (edgebench generates a fixed length, as llama-bench does, so an end-of-generation
//! token does not stop it; the stored text is cut at the first one).

use crate::run_facts::IntegrityVerdict;
use std::collections::BTreeMap;

/// One completed turn as the integrity check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnOutput<'a> {
    pub prompt_id: &'a str,
    pub turn: usize,
    /// The first generated token; `None` when the turn generated nothing.
    pub first_token: Option<i32>,
    pub generated: u64,
}

/// The verdict stored with the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrity {
    /// Turns checked.
    pub turns: usize,
    /// Whether first-token consistency was checked (greedy sampling, one sequence at a time).
    pub greedy: bool,
    /// `prompt#turn` keys whose first token differed between repetitions.
    pub inconsistent_first_tokens: Vec<String>,
    /// Turns that generated a count other than requested.
    pub wrong_counts: usize,
    /// Tokens each turn had to generate; `None`: not checked (a server may stop at its EOS).
    pub expected_tokens: Option<u64>,
}

impl Integrity {
    /// Whether the run passed every check.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.inconsistent_first_tokens.is_empty() && self.wrong_counts == 0
    }

    /// One line: `pass` or what failed.
    #[must_use]
    pub fn verdict(&self) -> IntegrityVerdict {
        if self.passed() {
            return IntegrityVerdict::Pass;
        }
        let mut why = Vec::new();
        if !self.inconsistent_first_tokens.is_empty() {
            why.push(format!(
                "first token differs between repetitions for {}",
                self.inconsistent_first_tokens.join(", ")
            ));
        }
        if let Some(expected) = self.expected_tokens.filter(|_| self.wrong_counts > 0) {
            why.push(format!(
                "{} of {} turns did not generate {expected} tokens",
                self.wrong_counts, self.turns
            ));
        }
        IntegrityVerdict::Fail(why.join("; "))
    }
}

/// Checks the completed turns of every repetition (warmup included) of one run.
#[must_use]
pub fn check(turns: &[TurnOutput<'_>], greedy: bool, expected_tokens: Option<u64>) -> Integrity {
    let mut first: BTreeMap<String, Option<i32>> = BTreeMap::new();
    let mut inconsistent = Vec::new();
    for t in turns {
        let key = format!("{}#{}", t.prompt_id, t.turn);
        match first.get(&key) {
            None => {
                first.insert(key, t.first_token);
            }
            Some(seen) if greedy && *seen != t.first_token && !inconsistent.contains(&key) => {
                inconsistent.push(key);
            }
            Some(_) => {}
        }
    }
    Integrity {
        turns: turns.len(),
        greedy,
        inconsistent_first_tokens: inconsistent,
        wrong_counts: expected_tokens.map_or(0, |expected| {
            turns.iter().filter(|t| t.generated != expected).count()
        }),
        expected_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(prompt_id: &str, first_token: i32, generated: u64) -> TurnOutput<'_> {
        TurnOutput {
            prompt_id,
            turn: 0,
            first_token: Some(first_token),
            generated,
        }
    }

    #[test]
    fn consistent_full_length_greedy_turns_pass() {
        let i = check(
            &[turn("a", 5, 16), turn("b", 7, 16), turn("a", 5, 16)],
            true,
            Some(16),
        );
        assert!(i.passed());
        assert_eq!(i.verdict(), IntegrityVerdict::Pass);
        assert_eq!(i.turns, 3);
    }

    #[test]
    fn a_changed_first_token_fails_greedy_runs_only() {
        let turns = [turn("a", 5, 16), turn("a", 6, 16), turn("a", 6, 16)];
        let greedy = check(&turns, true, Some(16));
        assert_eq!(greedy.inconsistent_first_tokens, ["a#0"]);
        assert_eq!(
            greedy.verdict().to_string(),
            "fail: first token differs between repetitions for a#0"
        );
        // Sampled runs may start differently.
        assert!(check(&turns, false, Some(16)).passed());
    }

    #[test]
    fn a_short_turn_fails_with_the_count() {
        let turns = [turn("a", 5, 16), turn("b", 5, 9)];
        let i = check(&turns, true, Some(16));
        assert_eq!(i.wrong_counts, 1);
        assert_eq!(
            i.verdict().to_string(),
            "fail: 1 of 2 turns did not generate 16 tokens"
        );
        // A server that stops at its EOS: counts are not checked.
        assert!(check(&turns, true, None).passed());
    }
}
