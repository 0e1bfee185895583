//! Quantized blocks generated directly instead of quantized from floats.
//!
//! candle's k-quant quantizers search for the best scales block by block (about 3 MB/s here:
//! 25 minutes for one 7B Q4_K_M file), and even its Q4_0/Q8_0 quantizers wrote 36 MB/s. Random
//! weights need no search: a block of uniformly random quants with a random scale (and min)
//! dequantizes to values of the intended mean 0 and spread, and decode reads and multiplies
//! exactly the bytes a quantized real model's block holds. Layouts are ggml's `block_q4_0`,
//! `block_q8_0` (32 values per block), `block_q4_K`, `block_q5_K` and `block_q6_K` (256 values
//! per block).
//!
//! Each block's scale varies as real files' do ([`SCALE_LOG2_STD`]): ggml's x86 kernels turn a
//! block's f16 scale into f32 through a 256 KiB lookup table, so the *values* of the scales set
//! how many cache lines decode touches. With one scale per tensor (writer version 3) the copies
//! of SmolLM2 and Gemma 3 decoded 10–28% faster than the real files; splicing the real file's
//! nibbles under the copy's scales was as fast as the copy, and the reverse as slow as the real
//! file (docs/methodology.md, "Twins vs real weights").

use candle_core::quantized::GgmlDType;
use half::f16;

use crate::rng::Rng;

/// Whether `dtype` is generated here rather than quantized by candle (F16 and F32 are).
pub(crate) fn generated(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_0
            | GgmlDType::Q4_1
            | GgmlDType::Q5_0
            | GgmlDType::Q5_1
            | GgmlDType::Q8_0
            | GgmlDType::Q4K
            | GgmlDType::Q5K
            | GgmlDType::Q6K
    )
}

/// Standard deviation of a uniform integer on 0..levels.
fn uniform_std(levels: u32) -> f32 {
    ((levels * levels - 1) as f32 / 12.0).sqrt()
}

fn random_bytes(rng: &mut Rng, out: &mut Vec<u8>, n: usize) {
    let mut left = n;
    while left > 0 {
        let bytes = rng.next_u64().to_le_bytes();
        let take = left.min(8);
        out.extend_from_slice(&bytes[..take]);
        left -= take;
    }
}

/// `d` or `−d`, even odds.
fn signed(rng: &mut Rng, d: f32) -> f32 {
    if rng.next_u64() & 1 == 0 { d } else { -d }
}

/// The standard deviation of log2 |scale| over a tensor's blocks. Measured on the real files
/// edgebench ships (every quantized tensor of SmolLM2-135M Q4_1 and Gemma 3 270M Q4_K_M, block
/// scales and mins): per-tensor medians 0.29 (Q6_K) to 0.54 (Q5_0), 0.37 for Q4_1's d, 0.42
/// for Q4_K's; about 400–1,300 distinct f16 values per tensor.
pub(crate) const SCALE_LOG2_STD: f32 = 0.4;
/// The same for the token embeddings (also the output matrix when tied): 0.53 in Gemma 3's
/// and 0.60 in SmolLM2's Q8_0 embeddings. In a small model with a large vocabulary the output
/// product is most of a decode step (Gemma 3 270M: 168M of its 268M weights).
pub(crate) const EMBEDDING_SCALE_LOG2_STD: f32 = 0.55;

/// The block-scale spread of the tensor called `name` (GGUF's tensor names).
pub(crate) fn scale_log2_std(name: &str) -> f32 {
    if name.starts_with("token_embd") || name.starts_with("output.") {
        EMBEDDING_SCALE_LOG2_STD
    } else {
        SCALE_LOG2_STD
    }
}

/// Draws a block's scale factor 2^(σ·z), z roughly normal, divided by its root mean square so a
/// tensor's values keep the spread asked for (a larger block scale is more likely to be squared
/// into it).
struct ScaleSpread {
    log2_std: f32,
    rms: f32,
}

impl ScaleSpread {
    fn new(log2_std: f32) -> Self {
        // z is `Rng::normal`'s Irwin–Hall sum: √3·(U₁+U₂+U₃+U₄ − 2), so
        // E[2^(2σz)] = (sinh(a)/a)^4 with a = σ·ln2·√3.
        let a = f64::from(log2_std) * std::f64::consts::LN_2 * 3f64.sqrt();
        let rms = if a == 0.0 {
            1.0
        } else {
            ((a.sinh() / a).powi(4)).sqrt() as f32
        };
        ScaleSpread { log2_std, rms }
    }

    fn draw(&self, rng: &mut Rng, d: f32) -> f32 {
        d * (self.log2_std * rng.normal(1.0)).exp2() / self.rms
    }
}

/// The packed 6-bit sub-block scales and mins of Q4_K/Q5_K with every scale and min 1.
const UNIT_SCALES: [u8; 12] = [1, 1, 1, 1, 1, 1, 1, 1, 0x11, 0x11, 0x11, 0x11];

/// `blocks` blocks of `dtype` whose dequantized values have mean ≈ 0 and standard deviation
/// `std`, the blocks' scales spread by `scale_log2_std` ([`scale_log2_std`]).
pub(crate) fn blocks(
    dtype: GgmlDType,
    blocks: usize,
    std: f32,
    scale_log2_std: f32,
    rng: &mut Rng,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(blocks * dtype.type_size());
    let spread = ScaleSpread::new(scale_log2_std);
    for _ in 0..blocks {
        match dtype {
            // value = d·(q − 8), q uniform on 0..16 (16 bytes of nibbles). q − 8 averages −½, so
            // d's sign is random per block, as in real files (ggml divides by the signed extreme).
            GgmlDType::Q4_0 => {
                let d = spread.draw(rng, std / uniform_std(16));
                let d = signed(rng, d);
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                random_bytes(rng, &mut out, 16);
            }
            // value = d·q + m, q uniform on 0..16: m centres the values on 0.
            GgmlDType::Q4_1 => {
                let d = spread.draw(rng, std / uniform_std(16));
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(-7.5 * d).to_le_bytes());
                random_bytes(rng, &mut out, 16);
            }
            // value = d·(q − 16), q uniform on 0..32 (qh[4] holds the fifth bits), sign random
            // per block as for Q4_0.
            GgmlDType::Q5_0 => {
                let d = spread.draw(rng, std / uniform_std(32));
                let d = signed(rng, d);
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                random_bytes(rng, &mut out, 4 + 16);
            }
            // value = d·q + m, q uniform on 0..32.
            GgmlDType::Q5_1 => {
                let d = spread.draw(rng, std / uniform_std(32));
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(-15.5 * d).to_le_bytes());
                random_bytes(rng, &mut out, 4 + 16);
            }
            // value = d·q, q uniform on −127..=127 (a byte, −128 folded onto −127 as ggml never
            // writes it).
            GgmlDType::Q8_0 => {
                let d = spread.draw(rng, std / uniform_std(255));
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                let start = out.len();
                random_bytes(rng, &mut out, 32);
                for b in &mut out[start..] {
                    if *b == 0x80 {
                        *b = 0x81;
                    }
                }
            }
            // value = d·scale·q − dmin·min with scale = min = 1 and q uniform on 0..2^bits:
            // d = std / σ(q), dmin = d · mean(q).
            GgmlDType::Q4K | GgmlDType::Q5K => {
                let levels = if dtype == GgmlDType::Q4K { 16 } else { 32 };
                let d = spread.draw(rng, std / uniform_std(levels));
                let dmin = d * (levels - 1) as f32 / 2.0;
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(dmin).to_le_bytes());
                out.extend_from_slice(&UNIT_SCALES);
                // Q5_K: qh[32] (the fifth bits) then qs[128]; Q4_K: qs[128].
                let quant_bytes = if dtype == GgmlDType::Q4K {
                    128
                } else {
                    32 + 128
                };
                random_bytes(rng, &mut out, quant_bytes);
            }
            // value = d·scale·(q − 32) with q uniform on 0..64 (ql[128], qh[64]), scales[16] = 1.
            GgmlDType::Q6K => {
                random_bytes(rng, &mut out, 128 + 64);
                out.extend_from_slice(&[1u8; 16]);
                let d = spread.draw(rng, std / uniform_std(64));
                let d = signed(rng, d);
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
            }
            _ => unreachable!("only the types `generated` names are generated"),
        }
    }
    debug_assert_eq!(out.len(), blocks * dtype.type_size());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Q4_1's blocks: `d` at bytes 0..2, `m` at 2..4, 20 bytes a block.
    fn q4_1_scales(bytes: &[u8]) -> Vec<(f32, f32)> {
        bytes
            .chunks_exact(20)
            .map(|b| {
                let half = |i: usize| f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
                (half(0), half(2))
            })
            .collect()
    }

    #[test]
    fn block_scales_spread_as_real_files_do_and_keep_the_tensors_spread() {
        let std = 0.02;
        let mut rng = Rng::for_chunk(7, 0, 0);
        let bytes = blocks(GgmlDType::Q4_1, 20_000, std, SCALE_LOG2_STD, &mut rng);
        let scales = q4_1_scales(&bytes);
        let log2: Vec<f64> = scales.iter().map(|(d, _)| f64::from(d.log2())).collect();
        let mean = log2.iter().sum::<f64>() / log2.len() as f64;
        let sd = (log2.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / log2.len() as f64).sqrt();
        assert!(
            (sd - f64::from(SCALE_LOG2_STD)).abs() < 0.03,
            "std of log2 d {sd}"
        );
        // Real tensors hold hundreds of distinct scales; one per tensor put every f16 → f32
        // lookup on one cache line.
        let distinct: std::collections::BTreeSet<u32> =
            scales.iter().map(|(d, _)| d.to_bits()).collect();
        assert!(distinct.len() > 400, "{} distinct scales", distinct.len());
        // Every block stays centred (m = −7.5·d) and the values keep the asked spread:
        // E[(d·q + m)²] = d²·σ_q² for q uniform on 0..16.
        assert!(scales.iter().all(|(d, m)| (m / d + 7.5).abs() < 0.01));
        let mean_square = scales
            .iter()
            .map(|(d, _)| f64::from(*d).powi(2) * f64::from(uniform_std(16)).powi(2))
            .sum::<f64>()
            / scales.len() as f64;
        let rms = mean_square.sqrt();
        assert!((rms / f64::from(std) - 1.0).abs() < 0.02, "rms {rms}");
    }
}
