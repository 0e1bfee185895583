//! Prompt sets: JSONL files, one prompt (or one multi-turn conversation) per line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One line of a dataset file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptLine {
    id: String,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    turns: Option<Vec<String>>,
    #[serde(default)]
    note: Option<String>,
}

/// A prompt: one turn for single-shot prompts, several for conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub id: String,
    pub turns: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read dataset {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("dataset {} holds no prompts", path.display())]
    Empty { path: PathBuf },
}

/// Reads and checks a JSONL prompt set.
pub fn load(path: &Path) -> Result<Vec<Prompt>, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parses dataset `text` read from `path` (used in messages).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Prompt>, DatasetError> {
    let mut prompts: Vec<Prompt> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| DatasetError::Line {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let raw: PromptLine = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        let turns = match (raw.prompt, raw.turns) {
            (Some(p), None) => vec![p],
            (None, Some(t)) if !t.is_empty() => t,
            _ => {
                return Err(err(format!(
                    "prompt `{}` needs exactly one of `prompt` or a non-empty `turns`",
                    raw.id
                )));
            }
        };
        if turns.iter().any(|t| t.trim().is_empty()) {
            return Err(err(format!("prompt `{}` has an empty turn", raw.id)));
        }
        if prompts.iter().any(|p| p.id == raw.id) {
            return Err(err(format!("prompt id `{}` is used twice", raw.id)));
        }
        let _ = raw.note;
        prompts.push(Prompt { id: raw.id, turns });
    }
    if prompts.is_empty() {
        return Err(DatasetError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prompts_and_turns() {
        let p = parse(
            Path::new("d.jsonl"),
            "{\"id\":\"a\",\"prompt\":\"x\"}\n\n{\"id\":\"b\",\"turns\":[\"1\",\"2\"]}\n",
        )
        .expect("ok");
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].turns, vec!["1", "2"]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "{\"id\":\"a\",\"prompt\":\"x\"}\n{\"id\":\"a\",\"prompt\":\"y\"}",
                "d.jsonl:2: prompt id `a` is used twice",
            ),
            ("{\"id\":\"a\"}", "d.jsonl:1: prompt `a` needs exactly one"),
            (
                "{\"id\":\"a\",\"prompt\":\"x\",\"extra\":1}",
                "d.jsonl:1: unknown field `extra`",
            ),
            ("", "holds no prompts"),
        ];
        for (text, expected) in cases {
            let e = parse(Path::new("d.jsonl"), text)
                .expect_err(text)
                .to_string();
            assert!(e.contains(expected), "{e}");
        }
    }
}
