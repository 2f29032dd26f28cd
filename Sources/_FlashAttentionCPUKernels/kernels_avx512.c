// The x86-64-v4 build of the kernels (AVX-512 F, BW, CD, DQ, VL on top of x86-64-v3): the same
// kernel_body.h as kernels_avx2.c with zmm vectors. Nothing here runs unless
// `fa_cpu_kernels_for` found x86-64-v4 on this CPU.

#include "FlashAttentionCPUKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2,lzcnt,movbe"))), apply_to = function)
#define FA_ISA_NAME "avx512"
#define FA_PROBE_CHAINS 24
#include "vector_avx512.h"
#include "kernel_body.h"
#pragma clang attribute pop

const fa_cpu_kernels *fa_cpu_kernels_avx512_table(void) { return &fa_kernels_avx512; }
#endif
