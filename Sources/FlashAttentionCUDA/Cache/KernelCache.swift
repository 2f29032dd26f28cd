import FlashAttentionCore
import Synchronization

/// The process-wide kernel cache: each (program, device) is compiled and loaded once, even
/// when many threads ask for it at the same time.
///
/// Lookups go memory → disk (`KernelDiskCache`) → NVRTC. A slot per key holds its own lock, so
/// a compile blocks only the callers of that key, and the map's lock is held only to find the
/// slot.
package final class KernelCache: Sendable {
  package static let shared = KernelCache()

  struct Key: Hashable, Sendable {
    /// A kernel key (hashed as it is, without building its program) or an ad-hoc program.
    enum Kernel: Hashable, Sendable {
      case key(AnyKernelKey)
      case program(CUDAProgram)
    }
    var kernel: Kernel
    var device: Int
  }

  final class Slot: Sendable {
    let state = Mutex<Result<CUDAFunction, FlashAttentionError>?>(nil)
  }

  private let slots = Mutex<[Key: Slot]>([:])
  private let compiles = Atomic<Int>(0)
  private let compilesOfProgram = Mutex<[CUDAProgram: Int]>([:])

  /// How many NVRTC compiles this cache ran.
  package var compileCount: Int { compiles.load(ordering: .relaxed) }

  /// How many NVRTC compiles of `program` this cache ran (tests use it to prove compile-once
  /// while other tests compile their own kernels concurrently).
  package func compileCount(of program: CUDAProgram) -> Int {
    compilesOfProgram.withLock { $0[program] ?? 0 }
  }

  /// The loaded kernel for `key` on `device`, compiled for `device.arch` if needed. The lookup
  /// hashes the key, not its program (tens of kilobytes of source), so a launch costs no more
  /// than a dictionary probe once the kernel is loaded.
  /// - Throws: `.compilation` with NVRTC's log, `.cuda` when loading fails. A failure is cached
  ///   for the process so a broken kernel is not recompiled on every call.
  package func function(for key: some CUDAKernelKey, device: CUDADevice) throws(FlashAttentionError) -> CUDAFunction {
    try function(Key(kernel: .key(AnyKernelKey(key)), device: device.ordinal), device: device) { key.program }
  }

  /// The loaded kernel of an ad-hoc program (tests, experiments) on `device`.
  package func function(for program: CUDAProgram, device: CUDADevice) throws(FlashAttentionError) -> CUDAFunction {
    try function(Key(kernel: .program(program), device: device.ordinal), device: device) { program }
  }

  private func function(
    _ key: Key, device: CUDADevice, program makeProgram: () -> CUDAProgram
  ) throws(FlashAttentionError) -> CUDAFunction {
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
        let program = makeProgram()
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
    compilesOfProgram.withLock { $0[program, default: 0] += 1 }
    let kernel = try KernelCompiler.compile(program, arch: arch)
    disk?.store(kernel, program: program, nvrtc: nvrtc)
    return kernel.cubin
  }
}

/// A kernel key of any family as a dictionary key (equal when the type and the value are).
struct AnyKernelKey: Hashable, Sendable {
  let base: any CUDAKernelKey

  init(_ base: any CUDAKernelKey) {
    self.base = base
  }

  static func == (lhs: AnyKernelKey, rhs: AnyKernelKey) -> Bool {
    lhs.base.isEqual(to: rhs.base)
  }

  func hash(into hasher: inout Hasher) {
    hasher.combine(ObjectIdentifier(type(of: base)))
    base.hash(into: &hasher)
  }
}

extension CUDAKernelKey {
  func isEqual(to other: any CUDAKernelKey) -> Bool {
    (other as? Self) == self
  }
}
