// The x86-64-v3 build of the kernels (AVX2, FMA, F16C): kernel_body.h compiled with the target
// attribute below on every function, in a translation unit built for the baseline. Nothing here
// runs unless `fa_cpu_kernels_for` found x86-64-v3 on this CPU.

#include "FlashAttentionCPUKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2,lzcnt,movbe"))), apply_to = function)
#define FA_ISA_NAME "avx2"
#define FA_PROBE_CHAINS 12
#include "vector_avx2.h"
#include "kernel_body.h"
#pragma clang attribute pop

const fa_cpu_kernels *fa_cpu_kernels_avx2_table(void) { return &fa_kernels_avx2; }
#endif
