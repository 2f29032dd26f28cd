import FlashAttentionCore
import Synchronization

/// The counters of the fused split merge (`DecodeCombine.fused`): for each stream that has run a
/// fused decode, `capacity` int32 counters in device memory, zeroed once when made (in the
/// stream's order) and never again: every decode launch leaves each counter it used at 0
/// (the last of a row block's split CTAs wraps it with `atom.inc`), so the next launch on the
/// stream finds them zeroed with no memset.
///
/// One set per stream, because two streams may run decodes at the same time and a counter must
/// see the tickets of one launch only; launches on one stream run one after the other. The sets
/// live as long as the process (64 KB each, one per stream handle that ever ran a fused decode),
/// like the scratch pool.
///
/// A launch that stops part-way would leave counters above 0 and make a later launch's merge run
/// early with partials missing. In CUDA a kernel does not stop part-way and leave a usable
/// context: a fault, trap or timeout inside a kernel is a sticky error, after which every call
/// in that context fails and the context (with these counters) must be destroyed; a launch that
/// fails to start never touches them. Streams being captured into a graph get no counters (the
/// merge runs as its own launch there): a graph can be launched on other streams, concurrently
/// with the capturing stream's own work, which one set of counters cannot serve.
final class DecodeSplitCounters: Sendable {
  /// Counters per stream: row blocks × kv heads × sequences of one fused launch at most (larger
  /// grids merge in a second launch). The automatic split rule splits only grids below one wave
  /// of CTAs (a few hundred row blocks); a caller's `num_splits` on a large batch can exceed it.
  static let capacity = 16384

  let device: CUDADevice
  private let sets = Mutex<[UInt: UInt64]>([:])
  private static let registries = Mutex<[Int: DecodeSplitCounters]>([:])

  private init(device: CUDADevice) {
    self.device = device
  }

  /// The counters of `device`, made once per process.
  static func shared(for device: CUDADevice) -> DecodeSplitCounters {
    registries.withLock { registries in
      if let counters = registries[device.ordinal] { return counters }
      let counters = DecodeSplitCounters(device: device)
      registries[device.ordinal] = counters
      return counters
    }
  }

  /// The address of `stream`'s counters (allocated and zeroed on first use, the memset queued on
  /// `stream` before anything that uses them), or nil where the fused merge must not run: the
  /// stream is being captured, its capture state cannot be read, or `groups` exceeds `capacity`.
  func counters(for stream: CUDAStream, groups: Int) throws(FlashAttentionError) -> UInt64? {
    guard groups <= Self.capacity, let isCapturing = device.api.cuStreamIsCapturing else { return nil }
    try device.makeCurrent()
    var status: Int32 = 0
    guard isCapturing(stream.handle, &status) == 0, status == 0 else { return nil }
    let key = UInt(bitPattern: Int(bitPattern: stream.handle))
    let result: Result<UInt64, FlashAttentionError> = sets.withLock { sets in
      if let address = sets[key] { return .success(address) }
      let api = device.api
      var address: CUdeviceptr = 0
      let bytes = Self.capacity * 4
      let allocated = api.cuMemAlloc(&address, bytes)
      if allocated == CUDAResult.outOfMemory.rawValue {
        return .failure(.outOfMemory(bytes: bytes, context: "decode split counters on \(device.name)"))
      }
      do throws(FlashAttentionError) {
        try api.check(allocated, "cuMemAlloc_v2 (decode split counters)")
        try api.check(api.cuMemsetD32Async(address, 0, Self.capacity, stream.handle), "cuMemsetD32Async")
      } catch {
        if address != 0 { _ = api.cuMemFree(address) }
        return .failure(error)
      }
      sets[key] = address
      return .success(address)
    }
    return try result.get()
  }
}
