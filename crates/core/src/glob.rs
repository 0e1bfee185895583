//! Case-name globs for `cargo xtask nightly --scenarios` and `EDGEBENCH_CASES`.

/// Whether `name` matches any of the comma-separated `patterns`, where `*` matches any run of
/// characters (including `::`) and `?` one character. An empty pattern list matches everything.
#[must_use]
pub fn matches_any(patterns: &str, name: &str) -> bool {
    let mut any = false;
    for pattern in patterns.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        any = true;
        if matches(pattern, name) {
            return true;
        }
    }
    !any
}

/// Whether `name` matches `pattern` as a whole (see [`matches_any`]).
#[must_use]
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Greedy matching with backtracking to the last `*`: linear in practice, no recursion.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some('?') => {
                pi += 1;
                ni += 1;
            }
            Some(c) if *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_questions_and_lists() {
        let name = "code_generation::mimo-7b-twin16::Q4_0::llama_cpp::c1";
        assert!(matches("code_generation::*", name));
        assert!(matches("*::llama_cpp::*", name));
        assert!(matches("*twin16::Q?_0*", name));
        assert!(matches(name, name));
        assert!(!matches("code_generation", name));
        assert!(!matches("*::candle::*", name));
        assert!(!matches("*::c1x", name));
        assert!(matches_any("long_context::*, code_generation::mimo*", name));
        assert!(!matches_any("long_context::*,*candle*", name));
        assert!(matches_any("", name));
        assert!(matches("a*b*c", "aXXbYYbc"));
        assert!(!matches("a*b*c", "aXXbYYb"));
    }
}
