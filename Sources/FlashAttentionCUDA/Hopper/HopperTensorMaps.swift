import FlashAttentionCore

/// The TMA descriptors (`CUtensorMap`, 128 bytes each) of one Hopper kernel call: Q, K, V for
/// the forward, Q, K, V, dO for the backward.
///
/// Each `[batch, seqlen, heads, head_dim]` tensor is described as 4-D (head_dim, seqlen, heads,
/// batch) with its own strides, boxes of 64 columns (128 bytes, the 128-byte swizzle span) by a
/// tile of rows. Rows and columns past the tensor's end read as zeros, which is how the kernel
/// handles sequence tails and head dims that are not a multiple of 64.
struct HopperTensorMaps {
  /// 128 bytes per map; the driver writes each map, the launch copies them as kernel parameters.
  private var storage: [UInt8]

  /// The forward's maps: Q in tiles of `blockM` rows, K and V in tiles of `blockN`.
  init(
    q: TensorView, k: TensorView, v: TensorView, blockM: Int, blockN: Int, device: CUDADevice
  ) throws(FlashAttentionError) {
    try self.init([(q, blockM), (k, blockN), (v, blockN)], device: device)
  }

  /// One map per tensor, each read in boxes of 64 columns by `rows`.
  init(_ tensors: [(tensor: TensorView, rows: Int)], device: CUDADevice) throws(FlashAttentionError) {
    storage = [UInt8](repeating: 0, count: tensors.count * 128)
    for (index, (tensor, boxRows)) in tensors.enumerated() {
      let element = tensor.dtype.byteSize
      let dims = [tensor.shape[3], tensor.shape[1], tensor.shape[2], tensor.shape[0]].map { UInt64(max($0, 1)) }
      // Strides of dims 1...3 in bytes; a size-1 dim's stride is free, so give it a legal one.
      let strides = [tensor.strides[1], tensor.strides[2], tensor.strides[0]].map { UInt64($0 * element) }
        .map { $0 == 0 ? 16 : $0 }
      // CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6, BFLOAT16 = 9; SWIZZLE_128B = 3; L2 promotion 128B = 2.
      let dataType: Int32 = tensor.dtype == .float16 ? 6 : 9
      let box = [UInt32(64), UInt32(boxRows), 1, 1]
      let status: FlashAttentionError? = storage.withUnsafeMutableBytes { raw in
        do throws(FlashAttentionError) {
          try device.encodeTensorMapTiled(
            raw.baseAddress! + index * 128, dataType: dataType, rank: 4, globalAddress: tensor.deviceAddress,
            globalDims: dims, globalStrides: strides, boxDims: box, elementStrides: [1, 1, 1, 1],
            swizzle: 3, l2Promotion: 2)
          return nil
        } catch {
          return error
        }
      }
      if let status { throw status }
    }
  }

  /// Appends the maps as the kernel's first (`__grid_constant__`, 64-byte aligned) parameters.
  func append(to arguments: inout CUDAKernelArguments) {
    storage.withUnsafeBytes { raw in
      for index in 0..<storage.count / 128 {
        arguments.appendBytes(UnsafeRawBufferPointer(rebasing: raw[index * 128..<(index + 1) * 128]), alignment: 64)
      }
    }
  }
}
