//! Quantized blocks generated directly instead of quantized from floats.
//!
//! candle's k-quant quantizers search for the best scales block by block (about 3 MB/s here:
//! 25 minutes for one 7B Q4_K_M file), and even its Q4_0/Q8_0 quantizers wrote 36 MB/s. Random
//! weights need no search: a block of uniformly random quants with one fixed scale (and min)
//! dequantizes to uniformly distributed values of the intended mean 0 and spread, and decode
//! reads and multiplies exactly the bytes a quantized real model's block holds. Layouts are
//! ggml's `block_q4_0`, `block_q8_0` (32 values per block), `block_q4_K`, `block_q5_K` and
//! `block_q6_K` (256 values per block).

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

/// The packed 6-bit sub-block scales and mins of Q4_K/Q5_K with every scale and min 1.
const UNIT_SCALES: [u8; 12] = [1, 1, 1, 1, 1, 1, 1, 1, 0x11, 0x11, 0x11, 0x11];

/// `blocks` blocks of `dtype` whose dequantized values have mean ≈ 0 and standard deviation
/// `std`.
pub(crate) fn blocks(dtype: GgmlDType, blocks: usize, std: f32, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(blocks * dtype.type_size());
    for _ in 0..blocks {
        match dtype {
            // value = d·(q − 8), q uniform on 0..16 (16 bytes of nibbles). q − 8 averages −½, so
            // d's sign is random per block, as in real files (ggml divides by the signed extreme).
            GgmlDType::Q4_0 => {
                let d = signed(rng, std / uniform_std(16));
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                random_bytes(rng, &mut out, 16);
            }
            // value = d·q + m, q uniform on 0..16: m centres the values on 0.
            GgmlDType::Q4_1 => {
                let d = std / uniform_std(16);
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(-7.5 * d).to_le_bytes());
                random_bytes(rng, &mut out, 16);
            }
            // value = d·(q − 16), q uniform on 0..32 (qh[4] holds the fifth bits), sign random
            // per block as for Q4_0.
            GgmlDType::Q5_0 => {
                let d = signed(rng, std / uniform_std(32));
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                random_bytes(rng, &mut out, 4 + 16);
            }
            // value = d·q + m, q uniform on 0..32.
            GgmlDType::Q5_1 => {
                let d = std / uniform_std(32);
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(-15.5 * d).to_le_bytes());
                random_bytes(rng, &mut out, 4 + 16);
            }
            // value = d·q, q uniform on −127..=127 (a byte, −128 folded onto −127 as ggml never
            // writes it).
            GgmlDType::Q8_0 => {
                let d = std / uniform_std(255);
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
                let d = std / uniform_std(levels);
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
                let d = signed(rng, std / uniform_std(64));
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
            }
            _ => unreachable!("only the types `generated` names are generated"),
        }
    }
    debug_assert_eq!(out.len(), blocks * dtype.type_size());
    out
}
