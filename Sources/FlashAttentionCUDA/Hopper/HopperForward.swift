import FlashAttentionCore
import _FlashAttentionKernelABI

/// The sm_90a forward kernel family: when it applies, and how to launch it (TMA descriptors,
/// argument packing, grid).
public enum HopperForward {
  /// Why the Hopper kernel cannot run this call on `device`, or nil when it can.
  ///
  /// TMA needs 16-byte aligned base addresses and strides that are multiples of 16 bytes; the
  /// output is written as 4-byte pairs and the LSE rows must be contiguous.
  public static func unsupportedReason(_ arguments: ForwardArguments, device: CUDADevice) -> String? {
    if device.arch != "sm_90a" { return "device arch \(device.arch) is not sm_90a" }
    // No keys: nothing for TMA to describe; the generic kernels write the zeros and -inf.
    if arguments.shape.seqlenK == 0 { return "seqlen_k is 0" }
    guard key(for: arguments) != nil else {
      return "dtype \(arguments.q.dtype), head dims \(arguments.shape.headDim)/\(arguments.shape.headDimV)"
    }
    for (tensor, name) in [(arguments.q, "q"), (arguments.k, "k"), (arguments.v, "v")] {
      if tensor.deviceAddress % 16 != 0 { return "\(name) is not 16-byte aligned" }
      if tensor.strides.dropLast().contains(where: { $0 * tensor.dtype.byteSize % 16 != 0 }) {
        return "\(name) strides \(tensor.strides) are not multiples of 16 bytes"
      }
    }
    if arguments.out.deviceAddress % 4 != 0 || arguments.out.strides.dropLast().contains(where: { $0 % 2 != 0 }) {
      return "out is not 4-byte aligned per row"
    }
    if arguments.shape.seqlenQ > 1, arguments.lse.strides[2] != 1 { return "lse rows are not contiguous" }
    let shape = arguments.shape
    if (shape.seqlenQ + 255) / 256 * shape.headsQ * shape.batch > Int(Int32.max) { return "grid too large" }
    return nil
  }

  /// The kernel key for a call, or nil when no Hopper variant covers it.
  public static func key(for arguments: ForwardArguments) -> HopperForwardKey? {
    let resolved = arguments.mask
    let mask: HopperForwardKey.MaskKind =
      resolved.right == 0 ? .causal : resolved.isMasking ? .window : .none
    return HopperForwardKey(
      headDim: arguments.shape.headDim, headDimV: arguments.shape.headDimV, dtype: arguments.q.dtype,
      mask: mask, softcap: arguments.options.softcap > 0,
      persistent: arguments.shape.seqlenK <= persistentMaxSeqlenK, seqlenK: arguments.shape.seqlenK)
  }

  /// Sequence lengths up to which one block per SM walking the work items beats one block per
  /// item (measured: +6–8% at N ≤ 2k, −3 to −8% at N = 16k on the H100).
  static let persistentMaxSeqlenK = 4096

  /// Queues the forward pass on `stream`. Call only when `unsupportedReason` is nil.
  public static func launch(
    _ arguments: ForwardArguments, device: CUDADevice, stream: CUDAStream,
    cache: KernelCache = .shared
  ) throws(FlashAttentionError) {
    if let reason = unsupportedReason(arguments, device: device) {
      throw .unsupported(backend: "cuda:\(device.ordinal)", feature: "Hopper forward kernel: \(reason)")
    }
    guard let key = key(for: arguments) else { return }
    let function = try cache.function(for: key.program, device: device)
    try function.setMaxDynamicSharedMemory(key.sharedMemoryBytes)

    let shape = arguments.shape
    let log2e: Float = 1.442_695_04
    let softcap = arguments.options.softcap
    let mBlocks = (shape.seqlenQ + key.blockM - 1) / key.blockM
    // Work items pair query blocks m and M-1-m of one (batch, head) (see the kernel's tile_at).
    let items = (mBlocks + 1) / 2 * shape.headsQ * shape.batch
    var parameters = FAHopperForwardParams()
    try HopperTensorMaps.encode(
      [(arguments.q, key.blockM, \.tm_q), (arguments.k, key.blockN, \.tm_k), (arguments.v, key.blockN, \.tm_v)],
      into: &parameters, device: device)
    parameters.o = deviceMutablePointer(arguments.out.deviceAddress)
    parameters.lse = deviceMutablePointer(arguments.lse.deviceAddress)
    parameters.seqlen_q = Int32(shape.seqlenQ)
    parameters.seqlen_k = Int32(shape.seqlenK)
    parameters.heads_q = Int32(shape.headsQ)
    parameters.group = Int32(shape.groupSize)
    parameters.m_blocks = Int32(mBlocks)
    parameters.num_items = Int32(items)
    parameters.o_strides = FAStrides(arguments.out)
    parameters.lse_strides = FAStatsStrides(arguments.lse)
    parameters.scale_log2 = arguments.scale * log2e
    parameters.softcap_over = softcap > 0 ? arguments.scale / softcap : 0
    parameters.softcap_log2 = softcap * log2e
    (parameters.window_left, parameters.window_right) = kernelWindow(arguments.mask)

    let persistent = shape.seqlenK <= persistentMaxSeqlenK
    let blocks = persistent ? min(items, device.multiprocessors) : items
    try function.launch(
      grid: (blocks, 1, 1), block: (key.threads, 1, 1),
      sharedMemory: key.sharedMemoryBytes, parameters: parameters, stream: stream)
  }
}

/// Registers the Hopper kernels with `CUDABackend` (see `ForwardKernelProviders`): calls it
/// covers run on sm_90a, everything else falls through to the FlashAttention-2 kernels.
public struct HopperForwardProvider: ForwardKernelProvider {
  public init() {}

  public func enqueueForward(
    _ arguments: ForwardArguments, device: CUDADevice, stream: CUDAStream
  ) throws(FlashAttentionError) -> Bool {
    guard HopperForward.unsupportedReason(arguments, device: device) == nil else { return false }
    try HopperForward.launch(arguments, device: device, stream: stream)
    return true
  }
}
