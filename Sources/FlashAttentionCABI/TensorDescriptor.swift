import CFlashAttention
import FlashAttention

/// Reads a caller's `fa_tensor` into a `TensorView`, checking what C cannot: a pointer, a known
/// dtype and device, a rank in range, sizes and strides that are not negative and whose byte
/// extent fits in the address space.
enum TensorDescriptor {
  /// A stand-in address for a tensor with no elements whose caller passed NULL (PyTorch gives
  /// empty tensors a null data pointer); never dereferenced, because nothing is read or written.
  private static var emptyAddress: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: 64)! }

  static func view(_ pointer: UnsafePointer<fa_tensor>?, name: String) throws(FlashAttentionError) -> TensorView {
    guard let pointer else {
      throw .invalidArgument(name: name, value: "NULL", reason: "a tensor descriptor is required")
    }
    let dtype = try dtype(pointer.pointee.dtype, name: name)
    let (address, shape, strides, location) = try layout(pointer.pointee, elementBytes: dtype.byteSize, name: name)
    return TensorView(baseAddress: address, dtype: dtype, shape: shape, strides: strides, location: location)
  }

  /// An int32 index tensor (`cu_seqlens`, `page_table` ...); nil for a NULL descriptor.
  static func indexView(_ pointer: UnsafePointer<fa_tensor>?, name: String) throws(FlashAttentionError) -> IndexTensorView? {
    guard let pointer else { return nil }
    if pointer.pointee.dtype != Int32(FA_DTYPE_INT32.rawValue) {
      throw .invalidArgument(
        name: "\(name).dtype", value: "\(pointer.pointee.dtype)", reason: "index tensors must be FA_DTYPE_INT32 (3)")
    }
    let (address, shape, strides, location) = try layout(pointer.pointee, elementBytes: 4, name: name)
    return IndexTensorView(baseAddress: address, shape: shape, strides: strides, location: location)
  }

  static func requiredIndexView(_ pointer: UnsafePointer<fa_tensor>?, name: String) throws(FlashAttentionError) -> IndexTensorView {
    guard let view = try indexView(pointer, name: name) else {
      throw .invalidArgument(name: name, value: "NULL", reason: "a tensor descriptor is required")
    }
    return view
  }

  private static func layout(
    _ tensor: fa_tensor, elementBytes: Int, name: String
  ) throws(FlashAttentionError) -> (UnsafeMutableRawPointer, [Int], [Int], MemoryLocation) {
    let location = try location(tensor, name: name)
    let rank = Int(tensor.rank)
    guard (1...Int(FA_MAX_RANK)).contains(rank) else {
      throw .invalidArgument(name: "\(name).rank", value: "\(rank)", reason: "must be 1 ... \(FA_MAX_RANK)")
    }
    let shape = leading(rank, of: tensor.shape)
    let strides = leading(rank, of: tensor.strides)
    for axis in 0..<rank where shape[axis] < 0 {
      throw .invalidArgument(name: "\(name).shape[\(axis)]", value: "\(shape[axis])", reason: "must be >= 0")
    }
    for axis in 0..<rank where strides[axis] < 0 {
      throw .invalidArgument(name: "\(name).strides[\(axis)]", value: "\(strides[axis])", reason: "must be >= 0")
    }
    let isEmpty = shape.contains(0)
    if !isEmpty { try checkExtent(shape: shape, strides: strides, elementBytes: elementBytes, name: name) }
    let address: UnsafeMutableRawPointer
    if let data = tensor.data {
      address = data
    } else if isEmpty {
      address = emptyAddress
    } else {
      throw .invalidArgument(name: "\(name).data", value: "NULL", reason: "a tensor with elements needs memory")
    }
    return (address, shape, strides, location)
  }

  /// The first `count` entries of a C array of `int64_t` (imported as a tuple).
  private static func leading<Tuple>(_ count: Int, of array: Tuple) -> [Int] {
    withUnsafeBytes(of: array) { raw in
      (0..<count).map { Int(raw.load(fromByteOffset: $0 * MemoryLayout<Int64>.stride, as: Int64.self)) }
    }
  }

  /// The last element's byte offset, `Σ (shape[i] - 1) · strides[i] · size`, must not overflow:
  /// a descriptor claiming more memory than an address space holds is a caller's error, and
  /// every index computed later stays in range once this holds.
  private static func checkExtent(shape: [Int], strides: [Int], elementBytes: Int, name: String) throws(FlashAttentionError) {
    var extent = 0
    for axis in 0..<shape.count {
      let (step, stepOverflow) = (shape[axis] - 1).multipliedReportingOverflow(by: strides[axis])
      let (sum, sumOverflow) = extent.addingReportingOverflow(step)
      if stepOverflow || sumOverflow {
        throw .invalidArgument(
          name: "\(name).shape", value: "\(shape) with strides \(strides)", reason: "spans more memory than exists")
      }
      extent = sum
    }
    let (bytes, overflow) = extent.multipliedReportingOverflow(by: elementBytes)
    if overflow || bytes > Int(Int64.max / 2) {
      throw .invalidArgument(
        name: "\(name).shape", value: "\(shape) with strides \(strides)", reason: "spans more memory than exists")
    }
  }

  private static func dtype(_ raw: Int32, name: String) throws(FlashAttentionError) -> DType {
    switch raw {
    case Int32(FA_DTYPE_FLOAT32.rawValue): .float32
    case Int32(FA_DTYPE_FLOAT16.rawValue): .float16
    case Int32(FA_DTYPE_BFLOAT16.rawValue): .bfloat16
    case Int32(FA_DTYPE_FLOAT8_E4M3.rawValue): .float8E4M3
    default:
      throw .invalidArgument(
        name: "\(name).dtype", value: "\(raw)",
        reason: "must be FA_DTYPE_FLOAT32 (0), FA_DTYPE_FLOAT16 (1), FA_DTYPE_BFLOAT16 (2) or FA_DTYPE_FLOAT8_E4M3 (4)"
          + (raw == Int32(FA_DTYPE_INT32.rawValue) ? " (int32 is for index tensors)" : ""))
    }
  }

  private static func location(_ tensor: fa_tensor, name: String) throws(FlashAttentionError) -> MemoryLocation {
    switch tensor.device_type {
    case Int32(FA_DEVICE_CPU.rawValue):
      return .host
    case Int32(FA_DEVICE_CUDA.rawValue):
      guard tensor.device_index >= 0 else {
        throw .invalidArgument(name: "\(name).device_index", value: "\(tensor.device_index)", reason: "must be >= 0")
      }
      return .cuda(device: Int(tensor.device_index))
    default:
      throw .invalidArgument(
        name: "\(name).device_type", value: "\(tensor.device_type)",
        reason: "must be FA_DEVICE_CPU (0) or FA_DEVICE_CUDA (1)")
    }
  }
}
