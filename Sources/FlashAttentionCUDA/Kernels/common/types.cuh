// Types and constants of every kernel. No CUDA headers anywhere: NVRTC alone compiles the
// kernels, and every hardware operation is inline PTX in the ptx headers.
//
// The host prepends the kernel key's #defines; all kernels take FA_BF16 (1: bf16 storage,
// 0: fp16).
#pragma once
#include "FlashAttentionKernelABI.h"

typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#define FA_INF __int_as_float(0x7f800000)
#define FA_LOG2E 1.4426950408889634f
#define FA_LN2 0.6931471805599453f

// A compile-time flag passed as a value, so that one generic lambda compiles to two copies (a
// masked and an unmasked one, say) chosen by a uniform branch.
template <bool V> struct StaticFlag { static constexpr bool value = V; };
