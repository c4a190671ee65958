//! A small deterministic generator for what the emulator draws from a seed (generated worlds, fault draws): SplitMix64,
//! written out so the sequence for a seed never changes with a dependency's version.

/// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state, a full-period step, a bijective finaliser.
#[derive(Debug, Clone)]
pub(crate) struct Seeded {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl Seeded {
    pub(crate) fn new(seed: u64) -> Seeded {
        Seeded { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// Uniform in `[0, 1)`: the top 53 bits, as many as an `f64` holds exactly.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// SplitMix64's finaliser: a bijection of `u64`, so distinct inputs give distinct outputs (generated appids rely on
/// it to be unique).
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_splitmix64s() {
        // The reference values of SplitMix64 seeded with 0.
        let mut r = Seeded::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let f = Seeded::new(7).next_f64();
        assert!((0.0..1.0).contains(&f));
    }
}
