//! The random bits behind `random`, `normal` and `integers`: eight xoshiro256++ generators
//! advanced in lockstep, one stream of draws per chunk.
//!
//! One xoshiro256++ stream makes a draw about every nanosecond: a long chain of dependent
//! shifts, rotations and additions. Eight independent streams stepped together are eight
//! lanes of the same instructions, which the compiler turns into two AVX2 registers, so a
//! chunk fills several times faster. (`rand_xoshiro` steps one stream at a time; no
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
        let mut out = self.collect(len, unit, |draws| draws.map(unit)).into_flattened();
        out.truncate(len);
        out
    }

    /// The little-endian bytes of the next draws, `len` of them, as `next_u64` calls would
    /// give them (whole bytes of a full range: uint8 images).
    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        let bytes = |draw: u64| draw.to_le_bytes();
        let words = self.collect(len.div_ceil(8), bytes, |draws| draws.map(bytes));
        let mut out = words.into_flattened().into_flattened();
        out.truncate(len);
        out
    }

    /// `len` values made from the next `len` draws, in blocks of one step's outputs (`block`
    /// of the `LANES` draws), the last block padded; `one` makes one value of one draw.
    ///
    /// The blocks are pushed into reserved space, so the chunk is written once (a zero-filled
    /// vector would cost a pass more; an `extend` was not inlined into the AVX2 copy), and
    /// the state stays in registers (stored back through `self` after every step, it would
    /// not).
    fn collect<T: Copy + Default, B>(
        &mut self,
        len: usize,
        one: impl Fn(u64) -> T,
        block: impl Fn([u64; LANES]) -> B + Copy,
    ) -> Vec<B>
    where
        B: AsMut<[T]> + Default + Copy,
    {
        let mut out = Vec::with_capacity(len.div_ceil(LANES));
        if self.taken == LANES {
            let state = self.state;
            let (state, blocks) = vectorized(
                #[inline(always)]
                move || {
                    let mut state = state;
                    for _ in 0..len / LANES {
                        out.push(block(step(&mut state)));
                    }
                    (state, out)
                },
            );
            (self.state, out) = (state, blocks);
        }
        // The tail, or every value of a stream part-way through a step: a draw at a time.
        while out.len() * LANES < len {
            let mut last = B::default();
            let missing = len - out.len() * LANES;
            for slot in last.as_mut().iter_mut().take(missing) {
                *slot = one(self.next_u64());
            }
            out.push(last);
        }
        out
    }
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

    #[test]
    fn chunks_get_unrelated_streams() {
        let first: Vec<u64> = (0..4).map(|block| Draws::for_chunk(5, block).next_u64()).collect();
        let mut unique = first.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), first.len());
    }
}
