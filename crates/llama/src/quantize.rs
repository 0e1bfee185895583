//! Weight conversion through llama.cpp's own quantizer (`llama_model_quantize`, the code behind
//! `llama-quantize`), for `cargo xtask models quantize` and the registry's requantized files.

use std::path::Path;

use edgebench_backend::BackendError;

use super::{CREATE, ENGINE, LlamaCpp, captured_errors, reset_capture};

/// Weight types `LlamaCpp::quantize` writes, by the names llama.cpp's `llama-quantize` uses.
pub const QUANTIZE_TYPES: &[(&str, llama_cpp_sys_2::llama_ftype)] = &[
    ("F16", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_F16),
    ("BF16", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_BF16),
    ("Q8_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0),
    ("Q6_K", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q6_K),
    ("Q5_K_M", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_K_M),
    ("Q5_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_0),
    ("Q4_K_M", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_K_M),
    ("Q4_K_S", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_K_S),
    ("Q4_1", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_1),
    ("Q4_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_0),
    ("Q3_K_M", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q3_K_M),
    ("Q2_K", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q2_K),
];

impl LlamaCpp {
    /// Writes `output`, a copy of `input` with its weights converted to `to` (a name of
    /// [`QUANTIZE_TYPES`]) by llama.cpp's own quantizer (`llama_model_quantize`, the code
    /// behind `llama-quantize`), requantizing weights that are already quantized (they are
    /// dequantized to f32 first). llama.cpp keeps its own choices per tensor (norms stay f32;
    /// the k-quant mixes pick per layer).
    pub fn quantize(
        &self,
        input: &Path,
        output: &Path,
        to: &str,
        threads: u32,
    ) -> Result<(), BackendError> {
        let fail = |reason: String| BackendError::Step {
            engine: ENGINE,
            step: "quantize",
            reason: format!("{} → {}: {reason}", input.display(), output.display()),
        };
        let ftype = QUANTIZE_TYPES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(to))
            .map(|&(_, t)| t)
            .ok_or_else(|| {
                fail(format!(
                    "unknown type `{to}`; one of: {}",
                    QUANTIZE_TYPES
                        .iter()
                        .map(|t| t.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        edgebench_backend::check_model_file(input)?;
        let c_path = |p: &Path| {
            std::ffi::CString::new(p.to_string_lossy().as_bytes())
                .map_err(|_| fail("the path holds a NUL byte".into()))
        };
        let (c_in, c_out) = (c_path(input)?, c_path(output)?);
        let _guard = CREATE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        reset_capture();
        // SAFETY: plain-data defaults from llama.cpp; the paths are NUL-terminated and outlive
        // the call, and the params struct is read only during it.
        let code = unsafe {
            let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
            params.ftype = ftype;
            params.nthread = i32::try_from(threads).unwrap_or(1);
            params.allow_requantize = true;
            llama_cpp_sys_2::llama_model_quantize(c_in.as_ptr(), c_out.as_ptr(), &raw const params)
        };
        let _ = &self.backend;
        if code == 0 {
            Ok(())
        } else {
            Err(fail(format!(
                "llama_model_quantize returned {code}: {}",
                captured_errors()
            )))
        }
    }
}
