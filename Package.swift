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
    .target(
      name: "FlashAttentionCPU",
      dependencies: [
        "FlashAttentionCore", "_CPUFeatureShims", "_FlashAttentionCPURuntime", "_FlashAttentionCPUKernels",
        "_FlashAttentionCPUKernelsAVX512",
      ],
      swiftSettings: cpuKernelFlags),
    // The CUDA kernels are .cu/.cuh files under Kernels/, the one copy of each; the
    // EmbedKernelSources plugin compiles them into the binary as string constants for NVRTC.
    // The kernels' parameter structs, one C header that Swift and NVRTC both compile.
    .target(name: "_FlashAttentionKernelABI"),
    .target(
      name: "FlashAttentionCUDA", dependencies: ["FlashAttentionCore", "_FlashAttentionKernelABI"],
      exclude: ["Kernels"],
      plugins: ["EmbedKernelSources"]),
    .executableTarget(name: "embed-kernel-sources"),
    .plugin(name: "EmbedKernelSources", capability: .buildTool(), dependencies: ["embed-kernel-sources"]),
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
      name: "FlashAttentionCUDATests",
      dependencies: ["FlashAttentionCUDA", "_FlashAttentionKernelABI", "FlashAttentionTestSupport"]),
    .testTarget(
      name: "FlashAttentionTests", dependencies: ["FlashAttention", "FlashAttentionTestSupport"]),
  ],
  swiftLanguageModes: [.v6]
)
