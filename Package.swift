// swift-tools-version: 6.0
import PackageDescription

// The CPU kernels need a real vector ISA: without one Swift lowers `addingProduct` to `fmaf`
// library calls. x86-64-v3 (AVX2 + FMA) is the floor; `CPUFeatures` checks it at run time so a
// binary refuses with a clear error instead of dying with SIGILL on an older CPU.
let cpuKernelFlags: [SwiftSetting] = [
  .unsafeFlags(["-Xcc", "-march=x86-64-v3", "-Ounchecked"], .when(platforms: [.linux])),
]
// The same kernel sources again for x86-64-v4 (AVX-512): `_FlashAttentionCPUKernelsAVX512` holds
// symbolic links to `_FlashAttentionCPUKernels`' files, and `CPUBackend` runs this copy only
// where `cpuid` reports AVX-512 F/BW/CD/DQ/VL.
let cpuAVX512KernelFlags: [SwiftSetting] = [
  .unsafeFlags(["-Xcc", "-march=x86-64-v4", "-Ounchecked"], .when(platforms: [.linux])),
  .define("FLASH_ATTENTION_AVX512", .when(platforms: [.linux])),
]
// Both builds define some of the same weak symbols (standard-library specializations, value
// witnesses). The linker keeps the first definition it sees; SwiftPM links modules in name
// order, so `_FlashAttentionCPUKernels` (x86-64-v3) always precedes its AVX-512 twin and v3
// code never calls an AVX-512 copy. Keep the twin's name sorting after the v3 module's.

let package = Package(
  name: "flash-attention-swift",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "FlashAttention", targets: ["FlashAttention"]),
    .executable(name: "flash-attention", targets: ["flash-attention"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  targets: [
    .target(name: "FlashAttentionCore"),
    // The CPU-feature probe, compiled for the baseline ISA so it can run on any x86-64 CPU.
    .target(name: "_CPUFeatureShims"),
    // The worker pool both kernel builds run on (plain Swift, no vector code).
    .target(name: "_FlashAttentionCPURuntime", dependencies: ["_CPUFeatureShims"]),
    .target(
      name: "_FlashAttentionCPUKernels",
      dependencies: ["FlashAttentionCore", "_CPUFeatureShims", "_FlashAttentionCPURuntime"],
      swiftSettings: cpuKernelFlags),
    .target(
      name: "_FlashAttentionCPUKernelsAVX512",
      dependencies: ["FlashAttentionCore", "_CPUFeatureShims", "_FlashAttentionCPURuntime"],
      swiftSettings: cpuAVX512KernelFlags),
    // The CPU kernels' vector code in C, one body compiled per instruction set with target
    // attributes (no flags), chosen at run time.
    .target(name: "_FlashAttentionCPUKernelsC", dependencies: ["_CPUFeatureShims"]),
    .target(
      name: "FlashAttentionCPU",
      dependencies: [
        "FlashAttentionCore", "_CPUFeatureShims", "_FlashAttentionCPURuntime", "_FlashAttentionCPUKernels",
        "_FlashAttentionCPUKernelsAVX512", "_FlashAttentionCPUKernelsC",
      ]),
    .target(
      name: "FlashAttentionCUDA", dependencies: ["FlashAttentionCore"],
      // The .cu file is the one source of the Hopper kernel; the binary embeds it through the
      // generated HopperForwardSource.swift (a test keeps the two in sync).
      exclude: ["Hopper/hopper_common.cuh", "Hopper/hopper_forward.cu", "Hopper/hopper_backward.cu", "Hopper/hopper_backward_dq.cu"]),
    .target(
      name: "FlashAttention",
      dependencies: ["FlashAttentionCore", "FlashAttentionCPU", "FlashAttentionCUDA"]),
    .executableTarget(
      name: "flash-attention",
      dependencies: [
        "FlashAttention",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .target(name: "FlashAttentionTestSupport", dependencies: ["FlashAttention"], path: "Tests/Support"),
    .testTarget(
      name: "FlashAttentionCoreTests", dependencies: ["FlashAttentionCore", "FlashAttentionTestSupport"]),
    .testTarget(
      name: "FlashAttentionCPUTests",
      dependencies: [
        "FlashAttentionCPU", "_FlashAttentionCPUKernels", "_FlashAttentionCPURuntime", "FlashAttentionTestSupport",
      ]),
    .testTarget(
      name: "FlashAttentionCUDATests", dependencies: ["FlashAttentionCUDA", "FlashAttentionTestSupport"]),
    .testTarget(
      name: "FlashAttentionTests", dependencies: ["FlashAttention", "FlashAttentionTestSupport"]),
  ],
  swiftLanguageModes: [.v6]
)
