//! What a file of a broken-input corpus promises, and the check of an error against it. Each
//! corpus file starts with header comments (after a byte-order mark, if it has one):
//!
//! ```toml
//! # broken: a misspelt key
//! # expect-at: 12:1
//! # expect: unknown field `contxt`
//! ```
//!
//! and the error it is refused with must start with `FILE:LINE:COLUMN:` and contain the
//! fragment. The corpus tests read the files (the parser's in this crate, the catalog's in
//! `tests/it`); this module only reads their text.

/// A corpus file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promise {
    /// What the file breaks.
    pub broken: String,
    /// `LINE:COLUMN` the error must point at.
    pub at: String,
    /// Text the error must contain.
    pub fragment: String,
}

impl Promise {
    /// The header of `text`, or which of its lines are missing.
    pub fn read(text: &str) -> Result<Self, String> {
        let header = |key: &str| {
            text.lines()
                .find_map(|l| {
                    l.trim_start_matches('\u{feff}')
                        .strip_prefix(&format!("# {key}: "))
                })
                .map(str::to_owned)
        };
        match (header("broken"), header("expect-at"), header("expect")) {
            (Some(broken), Some(at), Some(fragment)) => Ok(Self {
                broken,
                at,
                fragment,
            }),
            _ => {
                Err("needs `# broken:`, `# expect-at: LINE:COLUMN` and `# expect:` headers".into())
            }
        }
    }

    /// Whether refusing the file named `name` with `outcome` keeps the promise: `Err(why)`
    /// when the file was accepted or the error points elsewhere or says something else.
    pub fn check(&self, name: &str, outcome: Result<(), String>) -> Result<(), String> {
        let err = match outcome {
            Ok(()) => {
                return Err(format!(
                    "{name}: accepted, but it is broken ({})",
                    self.broken
                ));
            }
            Err(e) => e,
        };
        let location = format!("{name}:{}:", self.at);
        if err.starts_with(&location) && err.contains(&self.fragment) {
            Ok(())
        } else {
            Err(format!(
                "{name} ({}): expected `{location}` … `{}`, got: {err}",
                self.broken, self.fragment
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promise_is_kept_only_at_its_exact_location_with_its_text() {
        let promise =
            Promise::read("\u{feff}# broken: zero slots\n# expect-at: 4:1\n# expect: at least 1\n")
                .expect("header");
        assert_eq!(promise.at, "4:1");
        let check = |err: &str| promise.check("x.toml", Err(err.to_owned()));
        assert!(check("x.toml:4:1: key `slots`: must be at least 1").is_ok());
        assert!(
            check("x.toml:4:10: key `slots`: must be at least 1").is_err(),
            "column 10 is not 1"
        );
        assert!(check("x.toml:4:1: key `slots`: must be positive").is_err());
        assert!(promise.check("x.toml", Ok(())).is_err());
        assert!(Promise::read("# broken: no location\n# expect: x\n").is_err());
    }
}
