//! The random bits behind `random`, `normal` and `integers`: eight xoshiro256++ generators
//! advanced in lockstep, one stream of draws per chunk.
//!
//! One xoshiro256++ stream makes a draw about every nanosecond: a long chain of dependent
//! shifts, rotations and additions. Eight independent streams stepped together are eight
//! lanes of the same instructions — two AVX2 registers, written out with pulp's operations
//! on x86-64 (the `avx2` module), the compiler's vectorization elsewhere — so a chunk fills
//! several times faster. (`rand_xoshiro` steps one stream at a time; no
//! maintained crate steps several in SIMD lanes, so the few lines are here.) Draw `8k + l` of
//! a chunk is the `k`-th output of lane `l`; the lanes start from consecutive SplitMix64
//! outputs of the chunk's seed, as `seed_from_u64` seeds a single stream. The values depend
//! on the seed and the chunk's number only, so they are the same locally and on a cluster.

use crate::fold::vectorized;

/// Streams stepped together: two 256-bit registers of 64-bit lanes.
const LANES: usize = 8;

/// The draws of one chunk.
pub(crate) struct Draws {
    /// `state[w][l]`: word `w` of lane `l`'s xoshiro256++ state.
    state: [[u64; LANES]; 4],
    /// The last step's outputs, handed out one at a time by `next_u64`.
    buffered: [u64; LANES],
    /// How many of `buffered` are taken.
    taken: usize,
}

impl Draws {
    /// The stream of block `block` of an array made with `seed`: the two mixed (SplitMix64's
    /// finalizer) so neighbouring chunks get unrelated streams.
    pub(crate) fn for_chunk(seed: u64, block: u32) -> Self {
        let z = seed ^ (u64::from(block).wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self::seeded(mix(z))
    }

    /// Lanes seeded from consecutive SplitMix64 outputs (never all zero: SplitMix64 is a
    /// bijection of its counter, so at most one of a lane's four words is zero).
    fn seeded(seed: u64) -> Self {
        let mut counter = seed;
        let mut state = [[0u64; LANES]; 4];
        for lane in 0..LANES {
            for word in &mut state {
                counter = counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
                word[lane] = mix(counter);
            }
        }
        Draws { state, buffered: [0; LANES], taken: LANES }
    }

    /// The next draw, for the fills that take a varying number of draws per value.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        if self.taken == LANES {
            self.buffered = step(&mut self.state);
            self.taken = 0;
        }
        self.taken += 1;
        self.buffered[self.taken - 1]
    }

    /// A uniform `f64` in `[0, 1)` from the next draw's top 53 bits.
    #[inline]
    pub(crate) fn next_unit(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// The next `len` uniform values in `[0, 1)`, equal to as many `next_unit` calls.
    pub(crate) fn units(&mut self, len: usize) -> Vec<f64> {
        let mut out = self.collect::<Units>(len).into_flattened();
        out.truncate(len);
        out
    }

    /// The little-endian bytes of the next draws, `len` of them, as `next_u64` calls would
    /// give them (whole bytes of a full range: uint8 images).
    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = self.collect::<Bytes>(len.div_ceil(8)).into_flattened().into_flattened();
        out.truncate(len);
        out
    }

    /// `len` values made from the next `len` draws, in blocks of one step's outputs, the last
    /// block padded.
    ///
    /// The blocks are pushed into reserved space, so the chunk is written once (a zero-filled
    /// vector would cost a pass more).
    fn collect<V: Values>(&mut self, len: usize) -> Vec<V::Block> {
        let mut out = Vec::with_capacity(len.div_ceil(LANES));
        if self.taken == LANES {
            self.state = fill_steps::<V>(self.state, len / LANES, &mut out);
        }
        // The tail, or every value of a stream part-way through a step: a draw at a time.
        while out.len() * LANES < len {
            let mut last = V::Block::default();
            let missing = len - out.len() * LANES;
            for slot in last.as_mut().iter_mut().take(missing) {
                *slot = V::one(self.next_u64());
            }
            out.push(last);
        }
        out
    }
}

/// What a fill makes of the draws: one value per draw, in blocks of one step's eight.
trait Values {
    /// The value of one draw.
    type One: Copy + Default;
    /// The values of one step.
    type Block: AsMut<[Self::One]> + Default + Copy;
    fn one(draw: u64) -> Self::One;
    fn block(draws: [u64; LANES]) -> Self::Block;
    /// The same block from the draws in two AVX2 registers (lanes 0–3 and 4–7).
    #[cfg(target_arch = "x86_64")]
    fn block_avx2(simd: pulp::x86::V3, low: pulp::u64x4, high: pulp::u64x4) -> Self::Block;
}

/// Uniform `f64`s in `[0, 1)`.
struct Units;

impl Values for Units {
    type One = f64;
    type Block = [f64; LANES];
    fn one(draw: u64) -> f64 {
        unit(draw)
    }
    fn block(draws: [u64; LANES]) -> [f64; LANES] {
        draws.map(unit)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn block_avx2(simd: pulp::x86::V3, low: pulp::u64x4, high: pulp::u64x4) -> [f64; LANES] {
        pulp::bytemuck::cast([avx2::unit(simd, low), avx2::unit(simd, high)])
    }
}

/// The draws' little-endian bytes.
struct Bytes;

impl Values for Bytes {
    type One = [u8; 8];
    type Block = [[u8; 8]; LANES];
    fn one(draw: u64) -> [u8; 8] {
        draw.to_le_bytes()
    }
    fn block(draws: [u64; LANES]) -> [[u8; 8]; LANES] {
        draws.map(u64::to_le_bytes)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn block_avx2(_: pulp::x86::V3, low: pulp::u64x4, high: pulp::u64x4) -> [[u8; 8]; LANES] {
        // x86 is little-endian: a register's bytes are its lanes' little-endian bytes.
        pulp::bytemuck::cast([low, high])
    }
}

/// `steps` steps of every lane, their blocks pushed onto `out`; the state after them.
fn fill_steps<V: Values>(
    state: [[u64; LANES]; 4],
    steps: usize,
    out: &mut Vec<V::Block>,
) -> [[u64; LANES]; 4] {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return avx2::fill_steps::<V>(simd, state, steps, out);
    }
    fill_steps_portable::<V>(state, steps, out)
}

/// [`fill_steps`] for any processor, left to the compiler to vectorize.
fn fill_steps_portable<V: Values>(
    state: [[u64; LANES]; 4],
    steps: usize,
    out: &mut Vec<V::Block>,
) -> [[u64; LANES]; 4] {
    vectorized(
        #[inline(always)]
        move || {
            let mut state = state;
            for _ in 0..steps {
                out.push(V::block(step(&mut state)));
            }
            state
        },
    )
}

/// The lockstep streams in AVX2 registers, written out: left to the compiler, the loop above
/// kept part of the state in general registers and rotated it there (about four cycles a
/// draw; the explicit form is several times faster). AVX2 has no 64-bit rotation or integer
/// to float conversion: both are shifts and masks here, bit for bit as the portable code.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use pulp::x86::V3;
    use pulp::{bytemuck::cast, f64x4, u64x4};

    use super::{Values, LANES};

    /// One xoshiro256++ stream per lane: the state's four words.
    type State = [u64x4; 4];

    pub(super) fn fill_steps<V: Values>(
        simd: V3,
        state: [[u64; LANES]; 4],
        steps: usize,
        out: &mut Vec<V::Block>,
    ) -> [[u64; LANES]; 4] {
        simd.vectorize(
            #[inline(always)]
            move || {
                let halves: [[u64x4; 2]; 4] = cast(state);
                let mut low: State = halves.map(|h| h[0]);
                let mut high: State = halves.map(|h| h[1]);
                for _ in 0..steps {
                    let a = step(simd, &mut low);
                    let b = step(simd, &mut high);
                    out.push(V::block_avx2(simd, a, b));
                }
                cast([0, 1, 2, 3].map(|w| [low[w], high[w]]))
            },
        )
    }

    #[inline(always)]
    fn rotate_left<const LEFT: i32, const RIGHT: i32>(simd: V3, x: u64x4) -> u64x4 {
        simd.or_u64x4(simd.shl_const_u64x4::<LEFT>(x), simd.shr_const_u64x4::<RIGHT>(x))
    }

    /// [`super::step`] on four lanes.
    #[inline(always)]
    fn step(simd: V3, state: &mut State) -> u64x4 {
        let [s0, s1, s2, s3] = *state;
        let sum = simd.wrapping_add_u64x4(s0, s3);
        let out = simd.wrapping_add_u64x4(rotate_left::<23, 41>(simd, sum), s0);
        let t = simd.shl_const_u64x4::<17>(s1);
        let s2 = simd.xor_u64x4(s2, s0);
        let s3 = simd.xor_u64x4(s3, s1);
        let s1 = simd.xor_u64x4(s1, s2);
        let s0 = simd.xor_u64x4(s0, s3);
        let s2 = simd.xor_u64x4(s2, t);
        let s3 = rotate_left::<45, 19>(simd, s3);
        *state = [s0, s1, s2, s3];
        out
    }

    /// [`super::unit`] on four lanes.
    #[inline(always)]
    pub(super) fn unit(simd: V3, draws: u64x4) -> f64x4 {
        let mantissa = simd.shr_const_u64x4::<12>(draws);
        let one_to_two: f64x4 = cast(simd.or_u64x4(mantissa, simd.splat_u64x4(ONE)));
        let top = simd.sub_f64x4(one_to_two, simd.splat_f64x4(1.0));
        let bit = simd.splat_u64x4(1 << 11);
        let set = simd.cmp_eq_u64x4(simd.and_u64x4(draws, bit), bit);
        let half_ulp: f64x4 = cast(simd.and_u64x4(cast(set), simd.splat_u64x4(HALF_ULP)));
        simd.add_f64x4(top, half_ulp)
    }

    const ONE: u64 = 0x3FF0_0000_0000_0000;
    const HALF_ULP: u64 = (0.5 * f64::EPSILON).to_bits();
}

/// One output of every lane of `state` (xoshiro256++), the state stepped once.
#[inline(always)]
fn step(state: &mut [[u64; LANES]; 4]) -> [u64; LANES] {
    let [s0, s1, s2, s3] = state;
    let mut out = [0u64; LANES];
    for l in 0..LANES {
        out[l] = s0[l].wrapping_add(s3[l]).rotate_left(23).wrapping_add(s0[l]);
        let t = s1[l] << 17;
        s2[l] ^= s0[l];
        s3[l] ^= s1[l];
        s1[l] ^= s2[l];
        s0[l] ^= s3[l];
        s2[l] ^= t;
        s3[l] = s3[l].rotate_left(45);
    }
    out
}

/// SplitMix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `(draw >> 11) · 2⁻⁵³`, exactly, in operations AVX2 has (it has no 64-bit integer to float
/// conversion): the top 52 bits as the mantissa of a number in `[1, 2)` minus one, plus the
/// 53rd bit's `2⁻⁵³` selected by a mask. Both steps are exact.
#[inline(always)]
fn unit(draw: u64) -> f64 {
    let top = f64::from_bits(0x3FF0_0000_0000_0000 | (draw >> 12)) - 1.0;
    let half_ulp =
        f64::from_bits(((draw >> 11) & 1).wrapping_neg() & (0.5 * f64::EPSILON).to_bits());
    top + half_ulp
}

#[cfg(test)]
mod tests {
    use rand_core::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::*;

    /// Every lane is the reference xoshiro256++ from the same state.
    #[test]
    fn lanes_are_xoshiro256plusplus() {
        let draws = Draws::for_chunk(42, 3);
        for lane in 0..LANES {
            let mut seed = [0u8; 32];
            for (w, bytes) in seed.chunks_exact_mut(8).enumerate() {
                bytes.copy_from_slice(&draws.state[w][lane].to_le_bytes());
            }
            let mut reference = Xoshiro256PlusPlus::from_seed(seed);
            let mut ours = Draws::for_chunk(42, 3);
            for _ in 0..50 {
                assert_eq!(step(&mut ours.state)[lane], reference.next_u64());
            }
        }
    }

    #[test]
    fn the_unit_conversion_is_the_top_53_bits() {
        for draw in [0, 1 << 11, u64::MAX, 0x8000_0000_0000_0000, 0x1234_5678_9abc_def0] {
            assert_eq!(unit(draw), (draw >> 11) as f64 * (1.0 / (1u64 << 53) as f64));
        }
        assert!(unit(u64::MAX) < 1.0);
    }

    /// The lockstep fills hand out exactly the draws `next_u64` would, tails included.
    #[test]
    fn fills_equal_draws_one_at_a_time() {
        for len in [0, 1, 7, 8, 9, 64, 100, 1003] {
            let mut one_by_one = Draws::for_chunk(7, 1);
            let want: Vec<f64> = (0..len).map(|_| one_by_one.next_unit()).collect();
            assert_eq!(Draws::for_chunk(7, 1).units(len), want, "{len} values");

            let mut one_by_one = Draws::for_chunk(7, 2);
            let mut want = Vec::new();
            while want.len() < len {
                want.extend_from_slice(&one_by_one.next_u64().to_le_bytes());
            }
            want.truncate(len);
            assert_eq!(Draws::for_chunk(7, 2).bytes(len), want, "{len} bytes");
        }
        // A stream part-way through a step continues where it was.
        let mut a = Draws::for_chunk(1, 0);
        a.next_u64();
        let got = a.units(20);
        let mut b = Draws::for_chunk(1, 0);
        b.next_u64();
        assert_eq!(got, (0..20).map(|_| b.next_unit()).collect::<Vec<_>>());
    }

    /// The AVX2 fill and the portable one give the same values (on a processor without AVX2
    /// both are the portable fill, and this holds trivially).
    #[test]
    fn every_fill_path_gives_the_same_draws() {
        let start = Draws::for_chunk(9, 4).state;
        let (mut simd, mut portable) = (Vec::new(), Vec::new());
        let after_simd = fill_steps::<Units>(start, 37, &mut simd);
        let after_portable = fill_steps_portable::<Units>(start, 37, &mut portable);
        assert_eq!((after_simd, simd), (after_portable, portable));
        let (mut simd, mut portable) = (Vec::new(), Vec::new());
        fill_steps::<Bytes>(start, 5, &mut simd);
        fill_steps_portable::<Bytes>(start, 5, &mut portable);
        assert_eq!(simd, portable);
    }

    #[test]
    fn chunks_get_unrelated_streams() {
        let first: Vec<u64> = (0..4).map(|block| Draws::for_chunk(5, block).next_u64()).collect();
        let mut unique = first.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), first.len());
    }
}
