// Hands out the table of an instruction set only where the CPU runs it (the cpuid probe of
// `_CPUFeatureShims`). Compiled for the baseline instruction set.

#include "FlashAttentionCPUKernels.h"
#include "CPUFeatureShims.h"

#if defined(__x86_64__)
const fa_cpu_kernels *fa_cpu_kernels_avx2_table(void);
const fa_cpu_kernels *fa_cpu_kernels_avx512_table(void);

const fa_cpu_kernels *fa_cpu_kernels_for(int32_t isa) {
  if (fa_cpu_missing_x86_64_v3() != 0) return 0;
  switch (isa) {
  case FA_ISA_AVX2: return fa_cpu_kernels_avx2_table();
  case FA_ISA_AVX512: return fa_cpu_has_x86_64_v4() ? fa_cpu_kernels_avx512_table() : 0;
  default: return 0;
  }
}
#else
const fa_cpu_kernels *fa_cpu_kernels_for(int32_t isa) {
  (void)isa;
  return 0;
}
#endif
