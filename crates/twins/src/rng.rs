//! The random numbers every twin is made of: one generator per (seed, tensor, chunk), so the
//! bytes never depend on the number of threads or on scheduling. Its own module: the writers
//! (`stream`, `twin_of`) and the block generator (`kblocks`) all draw from it.

/// SplitMix64: tiny, fast, and stable across platforms and crate versions.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn for_chunk(seed: u64, tensor: usize, chunk: usize) -> Self {
        let mut mix = Rng(seed ^ ((tensor as u64) << 32 | chunk as u64).rotate_left(17));
        Rng(mix.next_u64() ^ seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Roughly normal (Irwin–Hall: the sum of four 16-bit uniforms from one draw), mean 0,
    /// standard deviation `std`; bounded at ±2√3·std, so no outlier dominates a block's scale.
    pub(crate) fn normal(&mut self, std: f32) -> f32 {
        let r = self.next_u64();
        let s: u64 = (0..4).map(|i| (r >> (16 * i)) & 0xFFFF).sum();
        // Sum of 4 uniforms on [0, 1): mean 2, variance 1/3.
        (s as f32 / 65_536.0 - 2.0) * std * 1.732_050_8
    }
}
