//! A small byte-level BPE vocabulary in GPT-2's format, trained deterministically on the shipped
//! prompt sets, so llama.cpp (`tokenizer.ggml.model = "gpt2"`) tokenizes twins' prompts with real
//! merges instead of one token per byte.

use std::collections::BTreeMap;

use candle_core::quantized::gguf_file::Value;

/// Text the merges are learned from: the project's own prompt sets.
const CORPUS: &[&str] = &[
    include_str!("../../../datasets/code_generation.jsonl"),
    include_str!("../../../datasets/math_reasoning.jsonl"),
    include_str!("../../../datasets/batch_concurrent.jsonl"),
    include_str!("../../../datasets/multi_turn.jsonl"),
];

pub const END_OF_TEXT: &str = "<|endoftext|>";

/// A trained vocabulary: 256 byte tokens, one token per merge, then the special token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteBpe {
    pub tokens: Vec<String>,
    pub merges: Vec<String>,
}

/// GPT-2's reversible byte → printable character map.
fn byte_to_char() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut map = vec![' '; 256];
    for (b, c) in printable.iter().zip(chars) {
        map[*b as usize] = char::from_u32(c).unwrap_or('?');
    }
    map
}

/// Splits like GPT-2's pre-tokenizer, closely enough for learning merges: a word keeps its
/// leading space.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        let boundary = ch == ' '
            || (!ch.is_alphanumeric() && cur.chars().last().is_some_and(char::is_alphanumeric));
        if boundary && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Learns `n_merges` merges from the corpus. Ties go to the lexicographically smallest pair, so
/// the result never depends on hash order.
#[must_use]
pub fn build_tokenizer(n_merges: usize) -> ByteBpe {
    let map = byte_to_char();
    let mut freq: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for text in CORPUS {
        for w in words(text) {
            let symbols: Vec<String> = w.bytes().map(|b| map[b as usize].to_string()).collect();
            *freq.entry(symbols).or_default() += 1;
        }
    }
    let mut tokens: Vec<String> = (0..256).map(|b| map[b].to_string()).collect();
    let mut merges = Vec::new();
    let mut words: Vec<(Vec<String>, u64)> = freq.into_iter().collect();
    for _ in 0..n_merges {
        let mut pairs: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (w, f) in &words {
            for p in w.windows(2) {
                *pairs.entry((p[0].clone(), p[1].clone())).or_default() += f;
            }
        }
        let Some(((a, b), _)) = pairs
            .into_iter()
            .max_by(|x, y| x.1.cmp(&y.1).then_with(|| y.0.cmp(&x.0)))
        else {
            break;
        };
        let joined = format!("{a}{b}");
        for (w, _) in &mut words {
            let mut i = 0;
            while i + 1 < w.len() {
                if w[i] == a && w[i + 1] == b {
                    w[i] = joined.clone();
                    w.remove(i + 1);
                }
                i += 1;
            }
        }
        merges.push(format!("{a} {b}"));
        tokens.push(joined);
    }
    tokens.push(END_OF_TEXT.to_owned());
    ByteBpe { tokens, merges }
}

impl ByteBpe {
    #[must_use]
    pub fn vocab_size(&self) -> u32 {
        self.tokens.len() as u32
    }

    /// The `tokenizer.ggml.*` keys llama.cpp reads, for a model whose vocabulary has `vocab`
    /// rows: a full-size twin keeps the real model's vocabulary width (the output matrix is
    /// what decode reads most), so the trained tokens are followed by unused placeholders that
    /// the tokenizer never produces (token type 5, llama.cpp's `UNUSED`).
    #[must_use]
    pub fn gguf_metadata(&self, vocab: u32) -> Vec<(String, Value)> {
        let eot = self.tokens.len() as u32 - 1;
        let unused = (self.vocab_size()..vocab.max(self.vocab_size()))
            .map(|i| Value::String(format!("<|twin_unused_{i}|>")));
        let types: Vec<Value> = (0..vocab.max(self.vocab_size()))
            .map(|i| {
                Value::I32(match i {
                    i if i == eot => 3,
                    i if i > eot => 5,
                    _ => 1,
                })
            })
            .collect();
        let tokens: Vec<Value> = self
            .tokens
            .iter()
            .cloned()
            .map(Value::String)
            .chain(unused)
            .collect();
        vec![
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String("gpt-2".into())),
            ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
            ("tokenizer.ggml.token_type".into(), Value::Array(types)),
            (
                "tokenizer.ggml.merges".into(),
                Value::Array(self.merges.iter().cloned().map(Value::String).collect()),
            ),
            ("tokenizer.ggml.bos_token_id".into(), Value::U32(eot)),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(eot)),
            ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
        ]
    }
}
