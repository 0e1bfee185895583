//! Helpers shared by the integration tests.

use edgebench::backend::Session;

/// Greedy tokens for `prompt` on sequence 0 after a reset: the first from prefill, then decode steps.
pub fn greedy(session: &mut dyn Session, prompt: &[i32], n: usize) -> Vec<i32> {
    session.reset(0).expect("reset");
    let mut out = session.prefill(&[(0, prompt)]).expect("prefill");
    while out.len() < n {
        let last = *out.last().expect("one token");
        out.extend(session.decode_step(&[(0, last)]).expect("decode"));
    }
    out
}
