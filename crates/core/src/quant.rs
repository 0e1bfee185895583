//! Weight quantizations of GGUF files: llama.cpp's `llama_ftype`s (`general.file_type`), by the
//! names `llama-quantize` and models.toml use. Parsed once, here: projections, twins, imports
//! and the registry all read a [`Quant`].

/// A GGUF file's weight type (its `general.file_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quant {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q6K,
    Q5KM,
    Q5KS,
    Q5_1,
    Q5_0,
    Q4KM,
    Q4KS,
    Q4_1,
    Q4_0,
    Iq4Xs,
    Iq4Nl,
    Q3KL,
    Q3KM,
    Q3KS,
    Iq3M,
    Iq3S,
    Iq3Xs,
    Iq3Xxs,
    Q2K,
    Q2KS,
    Iq2M,
    Iq2S,
    Iq2Xs,
    Iq2Xxs,
    Iq1M,
    Iq1S,
}

/// (value, name, `general.file_type`, llama.cpp's description as `llama_model_ftype_name`
/// prints it and llama-bench's `model_type` ends with).
const TABLE: &[(Quant, &str, u32, &str)] = &[
    (Quant::F32, "F32", 0, "all F32"),
    (Quant::F16, "F16", 1, "F16"),
    (Quant::Q4_0, "Q4_0", 2, "Q4_0"),
    (Quant::Q4_1, "Q4_1", 3, "Q4_1"),
    (Quant::Q8_0, "Q8_0", 7, "Q8_0"),
    (Quant::Q5_0, "Q5_0", 8, "Q5_0"),
    (Quant::Q5_1, "Q5_1", 9, "Q5_1"),
    (Quant::Q2K, "Q2_K", 10, "Q2_K - Medium"),
    (Quant::Q3KS, "Q3_K_S", 11, "Q3_K - Small"),
    (Quant::Q3KM, "Q3_K_M", 12, "Q3_K - Medium"),
    (Quant::Q3KL, "Q3_K_L", 13, "Q3_K - Large"),
    (Quant::Q4KS, "Q4_K_S", 14, "Q4_K - Small"),
    (Quant::Q4KM, "Q4_K_M", 15, "Q4_K - Medium"),
    (Quant::Q5KS, "Q5_K_S", 16, "Q5_K - Small"),
    (Quant::Q5KM, "Q5_K_M", 17, "Q5_K - Medium"),
    (Quant::Q6K, "Q6_K", 18, "Q6_K"),
    (Quant::Iq2Xxs, "IQ2_XXS", 19, "IQ2_XXS - 2.0625 bpw"),
    (Quant::Iq2Xs, "IQ2_XS", 20, "IQ2_XS - 2.3125 bpw"),
    (Quant::Q2KS, "Q2_K_S", 21, "Q2_K - Small"),
    (Quant::Iq3Xs, "IQ3_XS", 22, "IQ3_XS - 3.3 bpw"),
    (Quant::Iq3Xxs, "IQ3_XXS", 23, "IQ3_XXS - 3.0625 bpw"),
    (Quant::Iq1S, "IQ1_S", 24, "IQ1_S - 1.5625 bpw"),
    (Quant::Iq4Nl, "IQ4_NL", 25, "IQ4_NL - 4.5 bpw"),
    (Quant::Iq3S, "IQ3_S", 26, "IQ3_S - 3.4375 bpw"),
    (Quant::Iq3M, "IQ3_M", 27, "IQ3_S mix - 3.66 bpw"),
    (Quant::Iq2S, "IQ2_S", 28, "IQ2_S - 2.5 bpw"),
    (Quant::Iq2M, "IQ2_M", 29, "IQ2_M - 2.7 bpw"),
    (Quant::Iq4Xs, "IQ4_XS", 30, "IQ4_XS - 4.25 bpw"),
    (Quant::Iq1M, "IQ1_M", 31, "IQ1_M - 1.75 bpw"),
    (Quant::Bf16, "BF16", 32, "BF16"),
];

impl Quant {
    fn row(self) -> &'static (Quant, &'static str, u32, &'static str) {
        TABLE.iter().find(|r| r.0 == self).unwrap_or(&TABLE[0])
    }

    /// The name models.toml and `llama-quantize` use (`Q4_K_M`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.row().1
    }

    /// `general.file_type`.
    #[must_use]
    pub fn file_type(self) -> u32 {
        self.row().2
    }

    /// The quantization a file's `general.file_type` names.
    #[must_use]
    pub fn from_file_type(file_type: u64) -> Option<Self> {
        TABLE
            .iter()
            .find(|r| u64::from(r.2) == file_type)
            .map(|r| r.0)
    }

    /// The quantization llama.cpp describes as `description` (llama-bench's `model_type` ends
    /// with it: `qwen2 7B Q4_K - Medium`).
    #[must_use]
    pub fn from_description(description: &str) -> Option<Self> {
        let description = description.trim();
        // llama.cpp marks a type it inferred from the tensors rather than read.
        let description = description
            .strip_prefix("(guessed) ")
            .unwrap_or(description);
        TABLE
            .iter()
            .find(|r| r.3 == description || (r.3 != "all F32" && r.1 == description))
            .map(|r| r.0)
    }

    /// Bits per weight, counting block scales (llama.cpp's layouts: Q4_0 = 18 bytes per 32
    /// weights, Q8_0 = 34 per 32, Q4_K = 144 per 256, Q6_K = 210 per 256). The k-quant mixes
    /// are llama.cpp's reported averages for 7B models (`Q4_K_M` mixes Q4_K and Q6_K tensors:
    /// 4.85); `None` for the i-quants, whose mixes this tool does not project.
    #[must_use]
    pub fn bits_per_weight(self) -> Option<f64> {
        Some(match self {
            Self::F32 => 32.0,
            Self::F16 | Self::Bf16 => 16.0,
            Self::Q8_0 => 8.5,
            Self::Q6K => 6.5625,
            Self::Q5_1 => 6.0,
            Self::Q5_0 => 5.5,
            Self::Q5KM => 5.69,
            Self::Q5KS => 5.54,
            Self::Q4_1 => 5.0,
            Self::Q4_0 | Self::Q4KS => 4.5,
            Self::Q4KM => 4.85,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Quant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Quant {
    type Err = crate::names::UnknownName;

    /// A name as models.toml spells it, in either case (`Q4_K_M`, `q4_k_m`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TABLE
            .iter()
            .find(|r| r.1.eq_ignore_ascii_case(s))
            .map(|r| r.0)
            .ok_or_else(|| crate::names::UnknownName {
                what: "quantization",
                name: s.to_owned(),
                known: TABLE.iter().map(|r| r.1).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::Quant;

    #[test]
    fn every_quantization_reads_back_from_its_name_file_type_and_description() {
        for &(q, name, file_type, description) in super::TABLE {
            assert_eq!(name.parse::<Quant>(), Ok(q));
            assert_eq!(name.to_ascii_lowercase().parse::<Quant>(), Ok(q));
            assert_eq!(q.to_string(), name);
            assert_eq!(Quant::from_file_type(u64::from(file_type)), Some(q));
            assert_eq!(
                Quant::from_description(description),
                Some(q),
                "{description}"
            );
        }
        let names: std::collections::BTreeSet<_> = super::TABLE.iter().map(|r| r.1).collect();
        assert_eq!(names.len(), super::TABLE.len(), "one row per name");
        assert_eq!(
            "Q4_K".parse::<Quant>().map_err(|e| e.name),
            Err("Q4_K".to_owned()),
            "Q4_K is a block type, not a file type"
        );
        assert_eq!(Quant::from_description("Q4_K - Medium"), Some(Quant::Q4KM));
        assert_eq!(Quant::from_file_type(99), None);
        assert_eq!(Quant::Q4KM.bits_per_weight(), Some(4.85));
        assert_eq!(Quant::Iq4Xs.bits_per_weight(), None);
    }
}
