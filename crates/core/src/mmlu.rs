//! MMLU-format multiple-choice evaluation, the pure part: the release's CSV rows, the prompt
//! lm-evaluation-harness builds, and scoring by log-likelihood (`acc`, `acc_norm`, per subject,
//! micro and macro averages, standard errors).
//!
//! The release format (hendrycks/test): one CSV file per subject and split,
//! `<split>/<subject>_<split>.csv`, no header, columns question, A, B, C, D, answer letter.
//! Few-shot examples come from `dev`, scored questions from `test`.

use std::collections::BTreeMap;

/// The four answer letters, in choice order.
pub const LETTERS: [&str; 4] = ["A", "B", "C", "D"];

/// One multiple-choice question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub subject: String,
    /// Row in its file, from 0.
    pub index: usize,
    pub question: String,
    pub choices: [String; 4],
    /// Index of the right choice (0 = A).
    pub answer: usize,
}

impl Question {
    /// Digest of the question and its choices: the same question is recognised across copies
    /// of a set (re-scoring a subset, comparing runs).
    #[must_use]
    pub fn digest(&self) -> String {
        crate::sha256_hex(
            format!(
                "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
                self.question,
                self.choices[0],
                self.choices[1],
                self.choices[2],
                self.choices[3],
                LETTERS[self.answer]
            )
            .as_bytes(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct MmluError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Parses RFC 4180 CSV (quoted fields may hold commas, doubled quotes and newlines) into
/// records, each with the line it starts on.
/// A CSV record and the line it starts on.
type CsvRecord = (usize, Vec<String>);

fn csv_records(text: &str) -> Result<Vec<CsvRecord>, (usize, String)> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut start_line) = (1, 1);
    let mut in_quotes = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => in_quotes = true,
            ',' => fields.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                records.push((start_line, std::mem::take(&mut fields)));
                line += 1;
                start_line = line;
                any = false;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err((start_line, "a quoted field is not closed".to_owned()));
    }
    if any {
        fields.push(field);
        records.push((start_line, fields));
    }
    Ok(records)
}

/// The questions of one subject file. `file` names it in errors.
pub fn parse_subject(file: &str, subject: &str, text: &str) -> Result<Vec<Question>, MmluError> {
    let err = |line, message: String| MmluError {
        file: file.to_owned(),
        line,
        message,
    };
    let records = csv_records(text).map_err(|(line, m)| err(line, m))?;
    let mut questions = Vec::with_capacity(records.len());
    for (line, fields) in records {
        if fields.len() == 1 && fields[0].trim().is_empty() {
            continue;
        }
        let [question, a, b, c, d, answer]: [String; 6] =
            fields.try_into().map_err(|f: Vec<String>| {
                err(
                    line,
                    format!(
                        "expected 6 columns (question, A, B, C, D, answer), found {}",
                        f.len()
                    ),
                )
            })?;
        let answer = LETTERS
            .iter()
            .position(|l| *l == answer.trim())
            .ok_or_else(|| err(line, format!("answer `{answer}` is not one of A, B, C, D")))?;
        questions.push(Question {
            subject: subject.to_owned(),
            index: questions.len(),
            question,
            choices: [a, b, c, d],
            answer,
        });
    }
    if questions.is_empty() {
        return Err(err(1, "no questions".to_owned()));
    }
    Ok(questions)
}

/// `high_school_physics` → `high school physics`, as lm-evaluation-harness writes it.
#[must_use]
pub fn subject_title(subject: &str) -> String {
    subject.replace('_', " ")
}

fn block(q: &Question) -> String {
    let mut s = q.question.trim().to_owned();
    for (letter, choice) in LETTERS.iter().zip(&q.choices) {
        s.push_str(&format!("\n{letter}. {}", choice.trim()));
    }
    s.push_str("\nAnswer:");
    s
}

/// The prompt lm-evaluation-harness's `mmlu` task builds: a header naming the subject, `shots`
/// solved examples, then the question ending in `Answer:`. Each choice is scored as the
/// continuation ` A`, ` B`, ` C`, ` D`.
#[must_use]
pub fn prompt(shots: &[Question], q: &Question) -> String {
    let mut s = format!(
        "The following are multiple choice questions (with answers) about {}.\n\n",
        subject_title(&q.subject)
    );
    for shot in shots {
        s.push_str(&block(shot));
        s.push_str(&format!(" {}\n\n", LETTERS[shot.answer]));
    }
    s.push_str(&block(q));
    s
}

/// The continuation scored for choice `i`.
#[must_use]
pub fn continuation(i: usize) -> String {
    format!(" {}", LETTERS[i])
}

/// A model's log-probabilities for one question's four continuations.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub subject: String,
    pub answer: usize,
    pub logprobs: [f64; 4],
    /// Length in bytes of each continuation (for `acc_norm`).
    pub continuation_bytes: [usize; 4],
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        // Ties go to the earlier choice, as numpy's argmax (lm-evaluation-harness) does.
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

impl Answer {
    /// The choice with the highest log-probability (`acc`).
    #[must_use]
    pub fn predicted(&self) -> usize {
        argmax(self.logprobs.iter().copied())
    }

    /// The choice with the highest log-probability per byte of continuation (`acc_norm`). With
    /// letter continuations (all 2 bytes) it is the same choice as [`Self::predicted`].
    #[must_use]
    pub fn predicted_norm(&self) -> usize {
        argmax(
            self.logprobs
                .iter()
                .zip(self.continuation_bytes)
                .map(|(lp, bytes)| lp / bytes.max(1) as f64),
        )
    }
}

/// Accuracy over a set of questions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub n: usize,
    pub acc: f64,
    /// Standard error of the mean of the 0/1 outcomes (sample standard deviation ÷ √n, as
    /// lm-evaluation-harness reports it).
    pub acc_stderr: f64,
    pub acc_norm: f64,
    pub acc_norm_stderr: f64,
}

fn mean_and_stderr(hits: &[bool]) -> (f64, f64) {
    let n = hits.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let p = hits.iter().filter(|h| **h).count() as f64 / n as f64;
    if n < 2 {
        return (p, 0.0);
    }
    let var = hits
        .iter()
        .map(|h| (f64::from(u8::from(*h)) - p).powi(2))
        .sum::<f64>()
        / (n - 1) as f64;
    (p, (var / n as f64).sqrt())
}

fn score_of(answers: &[&Answer]) -> Score {
    let hits: Vec<bool> = answers.iter().map(|a| a.predicted() == a.answer).collect();
    let hits_norm: Vec<bool> = answers
        .iter()
        .map(|a| a.predicted_norm() == a.answer)
        .collect();
    let (acc, acc_stderr) = mean_and_stderr(&hits);
    let (acc_norm, acc_norm_stderr) = mean_and_stderr(&hits_norm);
    Score {
        n: answers.len(),
        acc,
        acc_stderr,
        acc_norm,
        acc_norm_stderr,
    }
}

/// Scores of a whole evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Every question weighs the same.
    pub micro: Score,
    /// Every subject weighs the same: the mean of the per-subject accuracies.
    pub macro_acc: f64,
    pub macro_acc_norm: f64,
    pub per_subject: BTreeMap<String, Score>,
}

#[must_use]
pub fn score(answers: &[Answer]) -> Scores {
    let mut by_subject: BTreeMap<String, Vec<&Answer>> = BTreeMap::new();
    for a in answers {
        by_subject.entry(a.subject.clone()).or_default().push(a);
    }
    let per_subject: BTreeMap<String, Score> = by_subject
        .iter()
        .map(|(s, list)| (s.clone(), score_of(list)))
        .collect();
    let subjects = per_subject.len().max(1) as f64;
    Scores {
        micro: score_of(&answers.iter().collect::<Vec<_>>()),
        macro_acc: per_subject.values().map(|s| s.acc).sum::<f64>() / subjects,
        macro_acc_norm: per_subject.values().map(|s| s.acc_norm).sum::<f64>() / subjects,
        per_subject,
    }
}

/// Fraction of questions on which two evaluations chose the same letter.
#[must_use]
pub fn agreement(a: &[usize], b: &[usize]) -> Option<f64> {
    if a.is_empty() || a.len() != b.len() {
        return None;
    }
    Some(a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64)
}

/// The widest distance from 25% that a model answering at random would exceed with probability
/// below ~0.3% on `n` questions (3 binomial standard deviations).
#[must_use]
pub fn chance_bound(n: usize) -> f64 {
    3.0 * (0.25 * 0.75 / n.max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_commas_newlines_and_errors_with_lines() {
        let text =
            "\"What is 1,000 + 1?\",1001,\"He said \"\"no\"\"\",\"two\nlines\",0,A\nQ2,a,b,c,d,D\n";
        let qs = parse_subject("x_test.csv", "x", text).expect("parses");
        assert_eq!(qs.len(), 2);
        assert_eq!(qs[0].question, "What is 1,000 + 1?");
        assert_eq!(qs[0].choices[1], "He said \"no\"");
        assert_eq!(qs[0].choices[2], "two\nlines");
        assert_eq!((qs[0].answer, qs[1].answer, qs[1].index), (0, 3, 1));
        let err =
            parse_subject("x_test.csv", "x", "Q,a,b,c,d,A\nQ,a,b,c,d,E\n").expect_err("bad letter");
        assert_eq!(
            err.to_string(),
            "x_test.csv:2: answer `E` is not one of A, B, C, D"
        );
        let err = parse_subject("x_test.csv", "x", "Q,a,b,A\n").expect_err("columns");
        assert!(
            err.to_string()
                .starts_with("x_test.csv:1: expected 6 columns"),
            "{err}"
        );
        let err = parse_subject("x_test.csv", "x", "\"Q,a,b,c,d,A\n").expect_err("open quote");
        assert!(err.to_string().contains("not closed"), "{err}");
    }

    #[test]
    fn prompt_matches_the_lm_evaluation_harness_layout() {
        let q = |i: usize, ans| Question {
            subject: "world_geography".into(),
            index: i,
            question: format!("Q{i}?"),
            choices: ["a".into(), "b".into(), "c".into(), "d".into()],
            answer: ans,
        };
        assert_eq!(
            prompt(&[q(0, 2)], &q(1, 0)),
            "The following are multiple choice questions (with answers) about world geography.\n\n\
             Q0?\nA. a\nB. b\nC. c\nD. d\nAnswer: C\n\n\
             Q1?\nA. a\nB. b\nC. c\nD. d\nAnswer:"
        );
        assert_eq!(continuation(3), " D");
    }

    #[test]
    fn scores_by_hand() {
        let a = |subject: &str, answer, lp: [f64; 4]| Answer {
            subject: subject.into(),
            answer,
            logprobs: lp,
            continuation_bytes: [2, 2, 2, 2],
        };
        let answers = [
            a("s1", 0, [-0.1, -2.0, -3.0, -4.0]), // right
            a("s1", 1, [-0.1, -2.0, -3.0, -4.0]), // wrong
            a("s2", 3, [-5.0, -5.0, -5.0, -1.0]), // right
            a("s2", 2, [-1.0, -1.0, -2.0, -3.0]), // wrong (a tie goes to A)
        ];
        let s = score(&answers);
        assert_eq!(s.micro.n, 4);
        assert!((s.micro.acc - 0.5).abs() < 1e-12);
        // Sample stddev of [1,0,1,0] is sqrt(1/3); ÷ √4.
        assert!((s.micro.acc_stderr - (1.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-12);
        assert!((s.macro_acc - 0.5).abs() < 1e-12);
        assert_eq!(s.micro.acc_norm, s.micro.acc);
        assert_eq!(s.per_subject["s2"].n, 2);
        // acc_norm differs when continuations differ in length.
        let long = Answer {
            subject: "s".into(),
            answer: 1,
            logprobs: [-1.0, -1.5, -9.0, -9.0],
            continuation_bytes: [1, 3, 1, 1],
        };
        assert_eq!((long.predicted(), long.predicted_norm()), (0, 1));
        assert_eq!(agreement(&[0, 1, 2, 3], &[0, 1, 2, 0]), Some(0.75));
        assert!((chance_bound(96) - 0.1326).abs() < 1e-3);
    }
}
