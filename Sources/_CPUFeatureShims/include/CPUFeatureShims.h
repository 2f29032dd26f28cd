#ifndef CPU_FEATURE_SHIMS_H
#define CPU_FEATURE_SHIMS_H

#include <stdint.h>

/// Bits of `fa_cpu_feature_bits()`. Compiled for the baseline ISA (no -march), so calling the
/// probe can never itself execute an instruction the CPU lacks.
enum {
  FA_CPU_SSE42 = 1u << 0,
  FA_CPU_AVX = 1u << 1,
  FA_CPU_AVX2 = 1u << 2,
  FA_CPU_FMA = 1u << 3,
  FA_CPU_F16C = 1u << 4,
  FA_CPU_BMI1 = 1u << 5,
  FA_CPU_BMI2 = 1u << 6,
  FA_CPU_LZCNT = 1u << 7,
  FA_CPU_MOVBE = 1u << 8,
  FA_CPU_AVX512F = 1u << 9,
  FA_CPU_AVX512BW = 1u << 10,
  FA_CPU_AVX512DQ = 1u << 11,
  FA_CPU_AVX512VL = 1u << 12,
  FA_CPU_OS_YMM = 1u << 13,
  FA_CPU_OS_ZMM = 1u << 14,
  FA_CPU_AVX512CD = 1u << 15,
  FA_CPU_X86 = 1u << 31,
};

/// The features of the running CPU that the kernels may use, as `FA_CPU_*` bits; AVX and
/// AVX-512 bits are set only when the OS saves the wider registers (XGETBV).
uint32_t fa_cpu_feature_bits(void);

/// NULL when the CPU can run x86-64-v3 code (AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE, with OS
/// support for ymm state; always on non-x86 machines), else a static string naming what it lacks
/// ("avx2, fma"). Lets the caller refuse without running any code built for x86-64-v3.
const char *fa_cpu_missing_x86_64_v3(void);

/// NULL when the CPU can run x86-64-v3 code, else the sentence that says why the CPU kernels
/// refuse to run ("the CPU kernels are built for x86-64-v3 but this CPU lacks avx2, fma").
const char *fa_cpu_refusal_reason(void);

/// 1 when the CPU can run x86-64-v4 code (x86-64-v3 plus AVX-512 F, BW, CD, DQ, VL with OS
/// support for zmm state), else 0: whether the AVX-512 build of the kernels may run.
int fa_cpu_has_x86_64_v4(void);

/// CPUs this process may run on (its affinity mask, which containers narrow); 0 if unknown.
int fa_cpu_affinity_count(void);

/// A spin-wait hint (`pause` on x86), for the worker pool's wait loops.
static inline void fa_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ volatile("pause");
#endif
}

/// Asks for the cache line holding `address` to be brought into L2 (`prefetcht2` on x86): a
/// hint that never faults and changes no result. L2 rather than L1 so that the tile in use stays
/// in L1 while the next one arrives.
static inline void fa_prefetch_l2(const void *address) {
  __builtin_prefetch(address, 0, 1);
}

/// Sets this thread's flush-to-zero and denormals-are-zero modes (MXCSR bits 15 and 6) and
/// returns the previous MXCSR for `fa_restore_float_modes`. Elsewhere a no-op returning 0.
static inline uint32_t fa_enter_flush_to_zero(void) {
#if defined(__x86_64__)
  uint32_t saved;
  __asm__ volatile("stmxcsr %0" : "=m"(saved));
  uint32_t flushing = saved | 0x8040u;
  __asm__ volatile("ldmxcsr %0" : : "m"(flushing));
  return saved;
#else
  return 0;
#endif
}

/// Restores the MXCSR `fa_enter_flush_to_zero` returned.
static inline void fa_restore_float_modes(uint32_t saved) {
#if defined(__x86_64__)
  __asm__ volatile("ldmxcsr %0" : : "m"(saved));
#else
  (void)saved;
#endif
}

#endif
