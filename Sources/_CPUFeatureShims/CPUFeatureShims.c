#define _GNU_SOURCE
#include "CPUFeatureShims.h"

#if defined(__linux__)
#include <sched.h>

int fa_cpu_affinity_count(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return CPU_COUNT(&set);
}
#else
int fa_cpu_affinity_count(void) { return 0; }
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
  uint32_t eax, edx;
  // xgetbv with ecx = 0, spelled as bytes so no -mxsave is needed.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((uint64_t)edx << 32) | eax;
}

uint32_t fa_cpu_feature_bits(void) {
  uint32_t bits = FA_CPU_X86;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return bits;
  if (c & (1u << 20)) bits |= FA_CPU_SSE42;
  if (c & (1u << 22)) bits |= FA_CPU_MOVBE;
  if (c & (1u << 29)) bits |= FA_CPU_F16C;
  int osxsave = (c & (1u << 27)) != 0;
  int avx = (c & (1u << 28)) != 0;
  int fma = (c & (1u << 12)) != 0;
  uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  int osYMM = (xcr0 & 0x6) == 0x6;
  int osZMM = (xcr0 & 0xe6) == 0xe6;
  if (osYMM) bits |= FA_CPU_OS_YMM;
  if (osZMM) bits |= FA_CPU_OS_ZMM;
  if (avx && osYMM) bits |= FA_CPU_AVX;
  if (fma && osYMM) bits |= FA_CPU_FMA;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    if (b & (1u << 3)) bits |= FA_CPU_BMI1;
    if (b & (1u << 8)) bits |= FA_CPU_BMI2;
    if ((b & (1u << 5)) && osYMM) bits |= FA_CPU_AVX2;
    if (osZMM) {
      if (b & (1u << 16)) bits |= FA_CPU_AVX512F;
      if (b & (1u << 17)) bits |= FA_CPU_AVX512DQ;
      if (b & (1u << 30)) bits |= FA_CPU_AVX512BW;
      if (b & (1u << 31)) bits |= FA_CPU_AVX512VL;
    }
  }
  if (__get_cpuid(0x80000001, &a, &b, &c, &d)) {
    if (c & (1u << 5)) bits |= FA_CPU_LZCNT;
  }
  return bits;
}

int fa_cpu_supports_x86_64_v3(void) {
  const uint32_t need = FA_CPU_SSE42 | FA_CPU_AVX | FA_CPU_AVX2 | FA_CPU_FMA | FA_CPU_F16C |
                        FA_CPU_BMI1 | FA_CPU_BMI2 | FA_CPU_LZCNT | FA_CPU_MOVBE;
  return (fa_cpu_feature_bits() & need) == need;
}

#else

uint32_t fa_cpu_feature_bits(void) { return 0; }
int fa_cpu_supports_x86_64_v3(void) { return 1; }

#endif
