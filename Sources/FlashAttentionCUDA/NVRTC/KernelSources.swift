/// The CUDA kernel files (`Kernels/**/*.cu`, `*.cuh` and the kernel ABI header), embedded in the
/// binary at build time by the EmbedKernelSources plugin.
///
/// NVRTC receives every file as an include-able header, so kernels `#include` each other by
/// their path under `Kernels/` (`"hopper/common.cuh"`) exactly as a CUDA compiler given
/// `-I Sources/FlashAttentionCUDA/Kernels` would.
enum KernelSources {
  /// (include name, text) of every embedded file, sorted by name.
  static let files: [(name: String, text: String)] = EmbeddedKernelSources.files
    .map { (name: $0.key, text: $0.value) }.sorted { $0.name < $1.name }

  /// The text of one embedded file. The names are the package's own (the compile tests build
  /// every program); were one missing, NVRTC would report it as a compile error.
  static func text(_ name: String) -> String {
    EmbeddedKernelSources.files[name] ?? "#error \"no embedded kernel file \(name)\"\n"
  }

  /// A digest of every embedded file, for cache keys: a program's machine code depends on the
  /// headers it includes as well as on its own text.
  static let digest: String = {
    var hash = StableHash()
    for file in files {
      hash.combine(file.name)
      hash.combine(file.text)
    }
    return hash.hexDigest
  }()
}
