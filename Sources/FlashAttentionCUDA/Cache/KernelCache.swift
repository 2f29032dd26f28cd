import FlashAttentionCore
import Synchronization

/// The process-wide kernel cache: each (program, device) is compiled and loaded once, even
/// when many threads ask for it at the same time.
///
/// Lookups go memory → disk (`KernelDiskCache`) → NVRTC. A slot per key holds its own lock, so
/// a compile blocks only the callers of that key, and the map's lock is held only to find the
/// slot.
public final class KernelCache: Sendable {
  public static let shared = KernelCache()

  struct Key: Hashable, Sendable {
    var program: CUDAProgram
    var device: Int
  }

  final class Slot: Sendable {
    let state = Mutex<Result<CUDAFunction, FlashAttentionError>?>(nil)
  }

  private let slots = Mutex<[Key: Slot]>([:])
  private let compiles = Atomic<Int>(0)

  /// How many NVRTC compiles this cache ran (tests use it to prove compile-once).
  public var compileCount: Int { compiles.load(ordering: .relaxed) }

  /// The loaded kernel for `program` on `device`, compiled for `device.arch` if needed.
  /// - Throws: `.compilation` with NVRTC's log, `.cuda` when loading fails. A failure is cached
  ///   for the process so a broken kernel is not recompiled on every call.
  public func function(for program: CUDAProgram, device: CUDADevice) throws(FlashAttentionError) -> CUDAFunction {
    let key = Key(program: program, device: device.ordinal)
    let slot = slots.withLock { slots in
      if let slot = slots[key] { return slot }
      let slot = Slot()
      slots[key] = slot
      return slot
    }
    let result = slot.state.withLock { state in
      if let state { return state }
      let loaded: Result<CUDAFunction, FlashAttentionError>
      do throws(FlashAttentionError) {
        let cubin = try self.cubin(for: program, arch: device.arch)
        loaded = .success(try CUDAFunction(cubin: cubin, entry: program.entry, device: device))
      } catch {
        loaded = .failure(error)
      }
      state = loaded
      return loaded
    }
    return try result.get()
  }

  private func cubin(for program: CUDAProgram, arch: String) throws(FlashAttentionError) -> [UInt8] {
    let nvrtc = try KernelCompiler.nvrtcVersion()
    let disk = KernelDiskCache.configured()
    if let cached = disk?.load(program, arch: arch, nvrtc: nvrtc) { return cached }
    compiles.add(1, ordering: .relaxed)
    let kernel = try KernelCompiler.compile(program, arch: arch)
    disk?.store(kernel, program: program, nvrtc: nvrtc)
    return kernel.cubin
  }
}
