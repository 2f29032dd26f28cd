import FlashAttentionCore
import _FlashAttentionKernelABI

/// The TMA descriptors (`CUtensorMap`, 128 bytes each) of the Hopper kernels' parameter structs.
///
/// Each `[batch, seqlen, heads, head_dim]` tensor is described as 4-D (head_dim, seqlen, heads,
/// batch) with its own strides, boxes of 128 bytes (the 128-byte swizzle span: 64 columns of
/// 16-bit data, 128 of fp8) by a tile of rows. Rows and columns past the tensor's end read as zeros, which is how the kernels
/// handle sequence tails and head dims that are not a multiple of 64.
enum HopperTensorMaps {
  /// Encodes one map per tensor, read in boxes of 64 columns by `rows`, into the field of
  /// `parameters` that the key path names.
  static func encode<Parameters>(
    _ tensors: [(tensor: TensorView, rows: Int, field: WritableKeyPath<Parameters, FATensorMap>)],
    into parameters: inout Parameters, device: CUDADevice
  ) throws(FlashAttentionError) {
    for (tensor, rows, field) in tensors {
      parameters[keyPath: field] = try map(tensor, rows: rows, device: device)
    }
  }

  /// The map of one tensor, read in boxes of 64 columns by `rows`.
  static func map(_ tensor: TensorView, rows boxRows: Int, device: CUDADevice) throws(FlashAttentionError) -> FATensorMap {
    let element = tensor.dtype.byteSize
    let dims = [tensor.shape[3], tensor.shape[1], tensor.shape[2], tensor.shape[0]].map { UInt64(max($0, 1)) }
    // Strides of dims 1...3 in bytes; a size-1 dim's stride is free, so give it a legal one.
    let strides = [tensor.strides[1], tensor.strides[2], tensor.strides[0]].map { UInt64($0 * element) }
      .map { $0 == 0 ? 16 : $0 }
    // CU_TENSOR_MAP_DATA_TYPE_UINT8 = 0 (fp8 bytes), FLOAT16 = 6, BFLOAT16 = 9; SWIZZLE_128B = 3;
    // L2 promotion 128B = 2.
    let dataType: Int32 = tensor.dtype.isFloat8 ? 0 : tensor.dtype == .float16 ? 6 : 9
    let box = [UInt32(128 / element), UInt32(boxRows), 1, 1]
    var map = FATensorMap()
    let failure: FlashAttentionError? = withUnsafeMutableBytes(of: &map) { raw in
      guard let base = raw.baseAddress else { return .cuda(message: "no storage for a tensor map") }
      do throws(FlashAttentionError) {
        try device.encodeTensorMapTiled(
          base, dataType: dataType, rank: 4, globalAddress: tensor.deviceAddress, globalDims: dims,
          globalStrides: strides, boxDims: box, elementStrides: [1, 1, 1, 1], swizzle: 3, l2Promotion: 2)
        return nil
      } catch {
        return error
      }
    }
    if let failure { throw failure }
    return map
  }
}
