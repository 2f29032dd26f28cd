// Compiles the kernel ABI header with the host C compiler, so its layout asserts run in every
// build (NVRTC runs them again when it compiles a kernel).
#include "FlashAttentionKernelABI.h"
