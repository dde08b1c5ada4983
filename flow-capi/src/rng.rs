//! `flow_rng`: the C API's random generator, rand_pcg's `Pcg64` in caller memory, seeded as
//! `Pcg64::seed_from_u64` is.

use core::mem::{align_of, size_of};
use core::ptr;

use rand_core::RngCore;

/// `flow_rng`: a PCG-64 generator (PCG XSL-RR 128/64, rand_pcg's `Pcg64`) in caller memory.
///
/// Its two `u128` words (state, increment) are kept as four `u64` words, low half first:
/// C99 cannot declare the 16-byte alignment a `u128` has on some targets, so the caller's
/// memory holds `u64`s and each step reassembles the `u128`s in registers.
#[repr(C)]
pub struct flow_rng {
    opaque: [u64; 4],
}

const _: () = assert!(size_of::<flow_rng>() == 32);
const _: () = assert!(align_of::<flow_rng>() == 8);
/// rand_pcg's `Lcg128Xsl64` multiplier.
const PCG64_MUL: u128 = 0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645;

impl flow_rng {
    fn state(&self) -> u128 {
        u128::from(self.opaque[0]) | u128::from(self.opaque[1]) << 64
    }

    fn increment(&self) -> u128 {
        u128::from(self.opaque[2]) | u128::from(self.opaque[3]) << 64
    }

    fn set_state(&mut self, s: u128) {
        self.opaque[0] = s as u64;
        self.opaque[1] = (s >> 64) as u64;
    }

    /// One LCG step: `state = state * MUL + increment` (mod 2^128).
    fn step(&mut self) {
        self.set_state(
            self.state()
                .wrapping_mul(PCG64_MUL)
                .wrapping_add(self.increment()),
        );
    }
}

/// As rand_pcg's `Lcg128Xsl64`: `next_u32` is the low half of `next_u64`, `fill_bytes` goes
/// through rand_core's `fill_bytes_via_next`, so flow-core's sampler draws the same bits.
impl RngCore for flow_rng {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.step();
        // XSL-RR output.
        let s = self.state();
        let rot = (s >> 122) as u32;
        (((s >> 64) as u64) ^ (s as u64)).rotate_right(rot)
    }

    #[inline]
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }
}

/// `void flow_rng_seed(flow_rng *r, uint64_t seed)`: `Pcg64::seed_from_u64(seed)`.
///
/// # Safety
/// `r` is NULL (nothing happens) or points to writable `flow_rng` memory.
#[no_mangle]
pub unsafe extern "C" fn flow_rng_seed(r: *mut flow_rng, seed: u64) {
    if !r.is_null() {
        // SAFETY: `r` is writable `flow_rng` memory (contract); any bits are a valid
        // `flow_rng`, and `ptr::write` reads none of the old ones.
        unsafe { ptr::write(r, pcg64_seeded(seed)) };
    }
}

/// `Pcg64::seed_from_u64(seed)`, computed here: rand_core's default `seed_from_u64` copies
/// each 4-byte step into its seed with `copy_from_slice`, whose length check stays out of
/// line at opt-level "s", a panic path the no-panic check rejects. rand_core expands the
/// `u64` into 32 seed bytes with a PCG32 step of its own (each step's `u32` little-endian);
/// `Pcg64::from_seed` reads them as four little-endian `u64`s, takes 0..16 as the state and
/// 16..32 as the increment (made odd), adds the increment to the state and steps once.
/// A test checks it against `seed_from_u64`.
fn pcg64_seeded(mut s: u64) -> flow_rng {
    const MUL: u64 = 6_364_136_223_846_793_005;
    const INC: u64 = 11_634_580_027_462_260_723;
    let mut step = || {
        s = s.wrapping_mul(MUL).wrapping_add(INC);
        u64::from(((((s >> 18) ^ s) >> 27) as u32).rotate_right((s >> 59) as u32))
    };
    let mut words = [0u64; 4];
    for w in &mut words {
        *w = step() | step() << 32;
    }
    words[2] |= 1;
    let mut r = flow_rng { opaque: words };
    r.set_state(r.state().wrapping_add(r.increment()));
    r.step();
    r
}

#[cfg(test)]
mod tests {
    use rand_core::{RngCore, SeedableRng};
    use rand_pcg::Pcg64;

    const SEEDS: [u64; 7] = [
        0,
        1,
        42,
        0xF10F_C0DE,
        0xC0DE_CA11,
        u64::MAX,
        0x8000_0000_0000_0000,
    ];

    /// `flow_rng_seed` then `next_u64`, `next_u32` and `fill_bytes` (every length 0..=17,
    /// so each of `fill_bytes_via_next`'s tails) give `Pcg64::seed_from_u64`'s outputs, for
    /// several seeds and thousands of draws.
    #[test]
    fn flow_rng_is_pcg64_seed_from_u64() {
        for seed in SEEDS {
            let mut ours = super::flow_rng { opaque: [0xA5; 4] };
            // SAFETY: `ours` is a writable `flow_rng`.
            unsafe { super::flow_rng_seed(&mut ours, seed) };
            let mut theirs = Pcg64::seed_from_u64(seed);
            for i in 0..2000 {
                assert_eq!(
                    ours.next_u64(),
                    theirs.next_u64(),
                    "seed {seed:#x}, u64 {i}"
                );
                assert_eq!(
                    ours.next_u32(),
                    theirs.next_u32(),
                    "seed {seed:#x}, u32 {i}"
                );
            }
            for n in 0..=17 {
                let (mut a, mut b) = ([0u8; 17], [0u8; 17]);
                ours.fill_bytes(&mut a[..n]);
                theirs.fill_bytes(&mut b[..n]);
                assert_eq!(a, b, "seed {seed:#x}, fill_bytes of {n}");
            }
            assert_eq!(ours.next_u64(), theirs.next_u64(), "seed {seed:#x}, last");
        }
    }

    /// The seeding alone (first output after `seed_from_u64`), for every seed.
    #[test]
    fn pcg64_seeded_is_seed_from_u64() {
        for seed in SEEDS.into_iter().chain((0..64).map(|k| 1u64 << k)) {
            let mut ours = super::pcg64_seeded(seed);
            let mut theirs = Pcg64::seed_from_u64(seed);
            assert_eq!(ours.next_u64(), theirs.next_u64(), "seed {seed:#x}");
            assert_eq!(ours.next_u64(), theirs.next_u64(), "seed {seed:#x}");
        }
    }

    /// A NULL generator is ignored.
    #[test]
    fn seeding_null_does_nothing() {
        // SAFETY: NULL is allowed.
        unsafe { super::flow_rng_seed(core::ptr::null_mut(), 7) };
    }
}
