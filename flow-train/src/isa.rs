//! Run-time selection of the vector instruction set for the hot loops.
//!
//! The default x86-64 target only guarantees SSE2. The engine's loops are written so that LLVM
//! vectorizes them for whatever instruction set they are compiled for; `Isa::run` compiles
//! a closure's (fully inlined) body once per instruction set via `#[target_feature]` and picks
//! the best one the CPU has, detected at run time. The measured effect is in the crate docs.

/// An instruction-set level for the engine's kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Whatever the compile target guarantees (SSE2 on x86-64), no FMA.
    Baseline,
    /// x86-64 AVX2 + FMA (256-bit vectors).
    Avx2,
    /// x86-64 AVX-512 (F, VL, BW, DQ) + FMA (512-bit vectors).
    Avx512,
}

impl Isa {
    /// The best level this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("avx2")
            {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    /// The name the command line uses: `portable`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run `self`.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Baseline => true,
            Isa::Avx2 => matches!(Isa::detect(), Isa::Avx2 | Isa::Avx512),
            Isa::Avx512 => Isa::detect() == Isa::Avx512,
        }
    }

    /// `self` if the CPU supports it, else the best supported level below it.
    pub fn or_supported(self) -> Isa {
        match (self, Isa::detect()) {
            (Isa::Avx512, d) => d,
            (Isa::Avx2, Isa::Avx512) => Isa::Avx2,
            (Isa::Avx2, d) => d,
            (Isa::Baseline, _) => Isa::Baseline,
        }
    }

    /// Runs `f` compiled for this instruction set. `f` and everything it calls in its hot
    /// loops must be `#[inline(always)]` so that they are compiled inside the wrapper.
    ///
    /// A level the CPU lacks falls back to [`Isa::Baseline`].
    #[inline(always)]
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,fma")]
            fn avx2<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
            fn avx512<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            match self {
                Isa::Avx512 if self.is_supported() => {
                    // SAFETY: the CPU has every feature `avx512` enables (checked just above).
                    #[allow(unsafe_code)]
                    return unsafe { avx512(f) };
                }
                Isa::Avx2 if self.is_supported() => {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    #[allow(unsafe_code)]
                    return unsafe { avx2(f) };
                }
                _ => {}
            }
        }
        f()
    }
}
