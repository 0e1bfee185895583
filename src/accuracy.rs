//! Multiple-choice evaluation (scenario category `accuracy`): reads an MMLU-format directory and
//! scores each question by the log-likelihood of the continuations ` A`…` D` (see
//! `edgebench_core::mmlu` for the prompt and the scoring rules).

use std::path::{Path, PathBuf};
use std::time::Instant;

use edgebench_backend::{BackendError, Session, TokenId, Vocabulary};
use edgebench_core::mmlu::{self, Answer, Question};
use edgebench_core::scenario::Accuracy;

/// Environment variable naming an MMLU-format directory that replaces a scenario's `dataset`
/// (e.g. the full MMLU release's `data/`).
pub const MMLU_ENV: &str = "EDGEBENCH_MMLU";

/// Questions per subject in smoke mode: enough to check the path works end to end.
pub const SMOKE_QUESTIONS_PER_SUBJECT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum AccuracyError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] mmlu::MmluError),
    #[error(
        "{}: no `<subject>_test.csv` files in {} (expected the MMLU release layout: dev/ and test/)",
        dir.display(),
        dir.join("test").display()
    )]
    NoSubjects { dir: PathBuf },
    #[error("subject `{subject}` is not in {} (it has: {})", dir.display(), known.join(", "))]
    UnknownSubject {
        dir: PathBuf,
        subject: String,
        known: Vec<String>,
    },
    #[error("{}: {few_shot} few-shot examples asked for, the file has {available}", path.display())]
    TooFewShots {
        path: PathBuf,
        few_shot: u32,
        available: usize,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The questions of one evaluation, with their few-shot examples.
#[derive(Debug, Clone)]
pub struct QuestionSet {
    pub dir: PathBuf,
    /// Per subject, in name order: its few-shot examples and its scored questions.
    pub subjects: Vec<(String, Vec<Question>, Vec<Question>)>,
}

impl QuestionSet {
    #[must_use]
    pub fn len(&self) -> usize {
        self.subjects.iter().map(|(_, _, q)| q.len()).sum()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The directory to read: `EDGEBENCH_MMLU` if set, else the scenario's `dataset` under `root`.
/// Accepts the release's own top level too (a `data/` holding `dev/` and `test/`).
#[must_use]
pub fn set_dir(root: &Path, dataset: &str) -> PathBuf {
    let dir = std::env::var_os(MMLU_ENV).map_or_else(|| root.join(dataset), PathBuf::from);
    if !dir.join("test").is_dir() && dir.join("data/test").is_dir() {
        return dir.join("data");
    }
    dir
}

fn read(path: &Path) -> Result<String, AccuracyError> {
    std::fs::read_to_string(path).map_err(|source| AccuracyError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads the subjects `settings` select; `limit` caps the questions per subject (smoke mode or
/// `questions_per_subject`, whichever is smaller).
pub fn load(
    dir: &Path,
    settings: &Accuracy,
    limit: Option<usize>,
) -> Result<QuestionSet, AccuracyError> {
    let test_dir = dir.join("test");
    let entries = std::fs::read_dir(&test_dir).map_err(|source| AccuracyError::Read {
        path: test_dir.clone(),
        source,
    })?;
    let mut available: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix("_test.csv"))
                .map(str::to_owned)
        })
        .collect();
    available.sort();
    if available.is_empty() {
        return Err(AccuracyError::NoSubjects {
            dir: dir.to_owned(),
        });
    }
    let chosen: Vec<String> = match &settings.subjects {
        None => available.clone(),
        Some(list) => {
            for s in list {
                if !available.contains(s) {
                    return Err(AccuracyError::UnknownSubject {
                        dir: dir.to_owned(),
                        subject: s.clone(),
                        known: available,
                    });
                }
            }
            list.clone()
        }
    };
    let cap = match (limit, settings.questions_per_subject) {
        (Some(a), Some(b)) => Some(a.min(b as usize)),
        (a, b) => a.or(b.map(|b| b as usize)),
    };
    let mut subjects = Vec::with_capacity(chosen.len());
    for subject in chosen {
        let test_path = test_dir.join(format!("{subject}_test.csv"));
        let mut questions = mmlu::parse_subject(
            &test_path.display().to_string(),
            &subject,
            &read(&test_path)?,
        )?;
        if let Some(cap) = cap {
            questions.truncate(cap);
        }
        let shots = if settings.few_shot == 0 {
            Vec::new()
        } else {
            let dev_path = dir.join("dev").join(format!("{subject}_dev.csv"));
            let dev =
                mmlu::parse_subject(&dev_path.display().to_string(), &subject, &read(&dev_path)?)?;
            if dev.len() < settings.few_shot as usize {
                return Err(AccuracyError::TooFewShots {
                    path: dev_path,
                    few_shot: settings.few_shot,
                    available: dev.len(),
                });
            }
            dev.into_iter().take(settings.few_shot as usize).collect()
        };
        subjects.push((subject, shots, questions));
    }
    Ok(QuestionSet {
        dir: dir.to_owned(),
        subjects,
    })
}

/// The tokens `continuation` adds after `prompt`: the tokens of `prompt + continuation` past
/// those of `prompt` when the prompt's tokens are their prefix (the usual case), else the
/// continuation tokenized alone.
fn continuation_tokens(
    vocabulary: &dyn Vocabulary,
    prompt_tokens: &[TokenId],
    prompt: &str,
    continuation: &str,
) -> Result<Vec<TokenId>, BackendError> {
    let whole = vocabulary.tokenize(&format!("{prompt}{continuation}"), true)?;
    if whole.len() > prompt_tokens.len() && whole.starts_with(prompt_tokens) {
        return Ok(whole[prompt_tokens.len()..].to_vec());
    }
    vocabulary.tokenize(continuation, false)
}

/// One scored question: what the model answered and how long scoring took.
#[derive(Debug, Clone)]
pub struct ScoredQuestion {
    pub answer: Answer,
    /// Position of the question in its subject's file.
    pub index: usize,
    /// Digest of the question and its choices (`Question::digest`).
    pub digest: String,
    pub few_shot: u32,
    /// Prompt tokens after any cut to fit the context.
    pub prompt_tokens: u32,
    /// Wall time of scoring its four continuations (prompt evaluation).
    pub elapsed_ns: u64,
}

/// Scores every question of `set` on `session` (sequence 0). Token ids come from `vocabulary`
/// (the reference tokenizer), so every engine scores the same ids.
pub fn evaluate(
    session: &mut dyn Session,
    vocabulary: &dyn Vocabulary,
    set: &QuestionSet,
    few_shot: u32,
    context: u32,
) -> Result<Vec<ScoredQuestion>, AccuracyError> {
    let mut out = Vec::with_capacity(set.len());
    for (_, shots, questions) in &set.subjects {
        for q in questions {
            let prompt = mmlu::prompt(shots, q);
            let mut prompt_tokens = vocabulary.tokenize(&prompt, true)?;
            let continuations: Vec<Vec<TokenId>> = (0..4)
                .map(|i| {
                    continuation_tokens(vocabulary, &prompt_tokens, &prompt, &mmlu::continuation(i))
                })
                .collect::<Result<_, _>>()?;
            // Keep the question (the end of the prompt) when a long few-shot prompt overflows.
            let longest = continuations.iter().map(Vec::len).max().unwrap_or(0);
            let room = (context as usize).saturating_sub(longest).max(1);
            if prompt_tokens.len() > room {
                prompt_tokens.drain(..prompt_tokens.len() - room);
            }
            let started = Instant::now();
            let logprobs = session.continuation_logprobs(0, &prompt_tokens, &continuations)?;
            let elapsed_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let logprobs: [f64; 4] = [logprobs[0], logprobs[1], logprobs[2], logprobs[3]];
            out.push(ScoredQuestion {
                answer: Answer {
                    subject: q.subject.clone(),
                    answer: q.answer,
                    logprobs,
                    continuation_bytes: [0, 1, 2, 3].map(|i| mmlu::continuation(i).len()),
                },
                index: q.index,
                digest: q.digest(),
                few_shot,
                prompt_tokens: prompt_tokens.len() as u32,
                elapsed_ns,
            });
        }
    }
    Ok(out)
}
