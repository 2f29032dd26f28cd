// swift-tools-version: 6.0
import PackageDescription

let package = Package(
  name: "flash-attention-swift",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "FlashAttention", targets: ["FlashAttention"]),
    // The C interface (flash_attention.h) as libflashattention.so; build it self-contained with
    // `swift build -c release --product flashattention -Xswiftc -static-stdlib`.
    .library(name: "flashattention", type: .dynamic, targets: ["FlashAttentionCABI"]),
    .executable(name: "flash-attention", targets: ["flash-attention"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  targets: [
    .target(name: "FlashAttentionCore"),
    // The CPU-feature probe, compiled for the baseline ISA so it can run on any x86-64 CPU.
    .target(name: "_CPUFeatureShims"),
    // The CPU kernels' vector code: one C body compiled for x86-64-v3 and for AVX-512 through
    // `#pragma clang attribute push(__attribute__((target(...))))`, chosen at run time from
    // cpuid. No unsafe flags: SwiftPM refuses them in a package resolved by version, and a
    // CPU target per function needs none.
    // Dropout's generator (fa_philox.h) comes from the kernel ABI's headers, the one definition the
    // CUDA kernels compile too.
    .target(name: "_FlashAttentionCPUKernels", dependencies: ["_CPUFeatureShims", "_FlashAttentionKernelABI"]),
    // The CPU backend: tiling, work order and threads in Swift (no vector arithmetic).
    .target(
      name: "FlashAttentionCPU",
      dependencies: ["FlashAttentionCore", "_CPUFeatureShims", "_FlashAttentionCPUKernels"]),
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
    // The C interface: the header (and the per-thread error message) in C, the functions in Swift.
    .target(name: "CFlashAttention"),
    .target(name: "FlashAttentionCABI", dependencies: ["CFlashAttention", "FlashAttention"]),
    // What the command-line tool and the tests use and the library product does not ship: the
    // float64 reference, verification, benchmark runners and records, `.npy` I/O.
    .target(
      name: "FlashAttentionTools",
      dependencies: ["FlashAttention", "FlashAttentionCPU", "FlashAttentionCUDA"]),
    .executableTarget(
      name: "flash-attention",
      dependencies: [
        "FlashAttention", "FlashAttentionTools",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .target(
      name: "FlashAttentionTestSupport", dependencies: ["FlashAttention", "FlashAttentionTools"],
      path: "Tests/Support"),
    .testTarget(
      name: "FlashAttentionCoreTests", dependencies: ["FlashAttentionCore", "FlashAttentionTestSupport"]),
    .testTarget(
      name: "FlashAttentionCPUTests",
      dependencies: [
        "FlashAttentionCPU", "_FlashAttentionCPUKernels", "FlashAttentionTestSupport",
      ]),
    .testTarget(
      name: "FlashAttentionCUDATests",
      dependencies: ["FlashAttentionCUDA", "_FlashAttentionKernelABI", "FlashAttentionTestSupport"]),
    .testTarget(
      name: "FlashAttentionTests",
      dependencies: ["FlashAttention", "FlashAttentionCABI", "CFlashAttention", "FlashAttentionTestSupport"]),
  ],
  swiftLanguageModes: [.v6]
)
