import FlashAttentionCore
import Glibc

/// A CUDA C++ program to compile: its source, the kernel entry point, and extra NVRTC options.
///
/// Anything that changes the machine code belongs in `source` or `options`, because the caches
/// key on them; problem sizes belong in kernel arguments.
package struct CUDAProgram: Hashable, Sendable {
  /// `extern "C"` name of the `__global__` function.
  package var entry: String
  package var source: String
  package var options: [String]

  package init(entry: String, source: String, options: [String] = []) {
    self.entry = entry
    self.source = source
    self.options = options
  }
}

/// What ptxas reports for one compiled kernel (parsed from NVRTC's `-Xptxas=-v` log).
package struct KernelResources: Sendable, Hashable {
  package var registers: Int
  package var staticSharedMemory: Int
  package var stackFrame: Int
  package var spillStores: Int
  package var spillLoads: Int

  package var spills: Bool { spillStores > 0 || spillLoads > 0 }
}

/// A compiled CUBIN and what was learned compiling it.
package struct CompiledKernel: Sendable {
  package var entry: String
  package var arch: String
  package var cubin: [UInt8]
  package var resources: KernelResources?
  /// Wall-clock seconds NVRTC took (0 when loaded from the disk cache).
  package var compileSeconds: Double
  package var log: String
}

/// NVRTC to CUBIN for one exact architecture.
package enum KernelCompiler {
  /// NVRTC's version, or `.backendUnavailable` with how to install it.
  package static func nvrtcVersion() throws(FlashAttentionError) -> (major: Int, minor: Int) {
    try loaded().version
  }

  static func loaded() throws(FlashAttentionError) -> NVRTCAPI {
    switch NVRTCAPI.shared {
    case let .success(api): return api
    case let .failure(failure): throw .backendUnavailable(backend: "cuda", reason: failure.message)
    }
  }

  /// The options every kernel is compiled with, before the program's own.
  static func baseOptions(arch: String) -> [String] {
    ["--gpu-architecture=\(arch)", "--std=c++17", "-default-device", "--use_fast_math", "-Xptxas=-v"]
  }

  /// Compiles `program` for `arch` (`sm_80`, `sm_90a`, ...).
  /// - Throws: `.compilation` with NVRTC's log when the source does not compile.
  package static func compile(_ program: CUDAProgram, arch: String) throws(FlashAttentionError) -> CompiledKernel {
    let api = try loaded()
    let start = monotonicSeconds()
    var handle: NVRTCAPI.Program?
    // Every embedded kernel file is offered as a header; `#include` picks what it needs.
    let headers = KernelSources.files
    let created = withCStrings(headers.map(\.text)) { texts in
      withCStrings(headers.map(\.name)) { names in
        program.source.withCString { source in
          program.entry.withCString { name in
            api.nvrtcCreateProgram(&handle, source, name, Int32(texts.count), texts.baseAddress, names.baseAddress)
          }
        }
      }
    }
    if created != 0 {
      throw .cuda(message: "nvrtcCreateProgram(\(program.entry)) failed: \(api.errorString(created))")
    }
    defer { _ = api.nvrtcDestroyProgram(&handle) }
    let options = baseOptions(arch: arch) + program.options
    let compiled = withCStrings(options) { pointers in
      api.nvrtcCompileProgram(handle, Int32(pointers.count), pointers.baseAddress)
    }
    let log = programLog(api, handle)
    if compiled != 0 {
      throw .compilation(kernel: "\(program.entry) [\(arch)]", log: "\(api.errorString(compiled))\n\(log)")
    }
    var size = 0
    try check(api, api.nvrtcGetCUBINSize(handle, &size), "nvrtcGetCUBINSize")
    var cubin = [UInt8](repeating: 0, count: size)
    let fetched = cubin.withUnsafeMutableBytes { raw in
      api.nvrtcGetCUBIN(handle, raw.baseAddress!.assumingMemoryBound(to: CChar.self))
    }
    try check(api, fetched, "nvrtcGetCUBIN")
    return CompiledKernel(
      entry: program.entry, arch: arch, cubin: cubin, resources: parseResources(log: log, entry: program.entry),
      compileSeconds: monotonicSeconds() - start, log: log)
  }

  /// Reads registers, shared memory, stack and spills from ptxas's verbose lines, of `entry`
  /// when the program holds several kernels (ptxas reports each after "Compiling entry
  /// function 'NAME'"), else of the only one.
  static func parseResources(log: String, entry: String? = nil) -> KernelResources? {
    var resources = KernelResources(registers: 0, staticSharedMemory: 0, stackFrame: 0, spillStores: 0, spillLoads: 0)
    var found = false
    var inEntry = entry == nil
    // Lines look like "Used 168 registers, used 1 barriers, 1024 bytes smem" and
    // "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads".
    for line in log.split(separator: "\n") {
      if let entry, line.contains("Compiling entry function") {
        inEntry = line.contains("'\(entry)'")
        continue
      }
      guard inEntry else { continue }
      for part in line.split(separator: ",") {
        guard let value = part.split(separator: " ").lazy.compactMap({ Int($0) }).first else { continue }
        if part.contains("registers") {
          resources.registers = value
          found = true
        } else if part.contains("smem") {
          resources.staticSharedMemory = value
        } else if part.contains("stack frame") {
          resources.stackFrame = value
        } else if part.contains("spill stores") {
          resources.spillStores = value
        } else if part.contains("spill loads") {
          resources.spillLoads = value
        }
      }
    }
    return found ? resources : nil
  }

  private static func programLog(_ api: NVRTCAPI, _ handle: NVRTCAPI.Program?) -> String {
    var size = 0
    guard api.nvrtcGetProgramLogSize(handle, &size) == 0, size > 1 else { return "" }
    var buffer = [CChar](repeating: 0, count: size)
    guard api.nvrtcGetProgramLog(handle, &buffer) == 0 else { return "" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  private static func check(_ api: NVRTCAPI, _ status: Int32, _ call: String) throws(FlashAttentionError) {
    if status != 0 { throw .cuda(message: "\(call) failed: \(api.errorString(status))") }
  }

  private static func withCStrings<R>(
    _ strings: [String], _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> R
  ) -> R {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    let pointers = duplicates.map { UnsafePointer<CChar>($0) }
    return pointers.withUnsafeBufferPointer(body)
  }
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
  var time = timespec()
  clock_gettime(CLOCK_MONOTONIC, &time)
  return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}
