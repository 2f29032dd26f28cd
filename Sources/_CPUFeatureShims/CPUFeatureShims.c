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
      if (b & (1u << 28)) bits |= FA_CPU_AVX512CD;
      if (b & (1u << 30)) bits |= FA_CPU_AVX512BW;
      if (b & (1u << 31)) bits |= FA_CPU_AVX512VL;
    }
  }
  if (__get_cpuid(0x80000001, &a, &b, &c, &d)) {
    if (c & (1u << 5)) bits |= FA_CPU_LZCNT;
  }
  return bits;
}

static const struct {
  uint32_t bit;
  const char *name;
} required_v3[] = {
  {FA_CPU_SSE42, "sse4.2"}, {FA_CPU_AVX, "avx"}, {FA_CPU_AVX2, "avx2"}, {FA_CPU_FMA, "fma"},
  {FA_CPU_F16C, "f16c"}, {FA_CPU_BMI1, "bmi1"}, {FA_CPU_BMI2, "bmi2"}, {FA_CPU_LZCNT, "lzcnt"},
  {FA_CPU_MOVBE, "movbe"},
};

const char *fa_cpu_missing_x86_64_v3(void) {
  static char text[128];
  uint32_t bits = fa_cpu_feature_bits();
  size_t used = 0;
  text[0] = 0;
  for (size_t i = 0; i < sizeof(required_v3) / sizeof(required_v3[0]); i++) {
    if (bits & required_v3[i].bit) continue;
    const char *name = required_v3[i].name;
    if (used > 0 && used + 2 < sizeof(text)) {
      text[used++] = ',';
      text[used++] = ' ';
    }
    while (*name && used + 1 < sizeof(text)) text[used++] = *name++;
    text[used] = 0;
  }
  return used == 0 ? 0 : text;
}

int fa_cpu_has_x86_64_v4(void) {
  const uint32_t v4 = FA_CPU_AVX512F | FA_CPU_AVX512BW | FA_CPU_AVX512CD | FA_CPU_AVX512DQ | FA_CPU_AVX512VL;
  return fa_cpu_missing_x86_64_v3() == 0 && (fa_cpu_feature_bits() & v4) == v4;
}

const char *fa_cpu_refusal_reason(void) {
  static char text[256];
  const char *missing = fa_cpu_missing_x86_64_v3();
  if (missing == 0) return 0;
  const char *prefix = "the CPU kernels are built for x86-64-v3 (AVX2, FMA) but this CPU lacks ";
  size_t used = 0;
  while (*prefix && used + 1 < sizeof(text)) text[used++] = *prefix++;
  while (*missing && used + 1 < sizeof(text)) text[used++] = *missing++;
  text[used] = 0;
  return text;
}

#else

uint32_t fa_cpu_feature_bits(void) { return 0; }
int fa_cpu_has_x86_64_v4(void) { return 0; }
const char *fa_cpu_missing_x86_64_v3(void) { return 0; }
const char *fa_cpu_refusal_reason(void) { return 0; }

#endif
