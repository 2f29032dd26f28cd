/// Opaque driver handles (`CUcontext`, `CUstream`, ...) are plain pointers to the caller.
typealias CUhandle = OpaquePointer
/// `CUdeviceptr` is a 64-bit integer on every 64-bit platform.
typealias CUdeviceptr = UInt64

/// The driver entry points the backend uses, resolved once from `libcuda.so.1`.
///
/// Symbols that `cuda.h` renames with macros are resolved under their `_v2` names, the ABI the
/// header would have bound to.
struct CUDADriverAPI: @unchecked Sendable {
  typealias Status = Int32

  let library: DynamicLibrary
  let cuInit: @convention(c) (UInt32) -> Status
  let cuDriverGetVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Status
  let cuGetErrorName: @convention(c) (Status, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Status
  let cuDeviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Status
  let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Status
  let cuDeviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Status
  let cuDeviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Status
  let cuDeviceTotalMem: @convention(c) (UnsafeMutablePointer<Int>, Int32) -> Status
  let cuDevicePrimaryCtxRetain: @convention(c) (UnsafeMutablePointer<CUhandle?>, Int32) -> Status
  let cuCtxSetCurrent: @convention(c) (CUhandle?) -> Status
  let cuCtxSynchronize: @convention(c) () -> Status
  let cuMemGetInfo: @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> Status
  let cuMemAlloc: @convention(c) (UnsafeMutablePointer<CUdeviceptr>, Int) -> Status
  let cuMemFree: @convention(c) (CUdeviceptr) -> Status
  let cuMemcpyHtoDAsync: @convention(c) (CUdeviceptr, UnsafeRawPointer, Int, CUhandle?) -> Status
  let cuMemcpyDtoHAsync: @convention(c) (UnsafeMutableRawPointer, CUdeviceptr, Int, CUhandle?) -> Status
  let cuMemcpyDtoDAsync: @convention(c) (CUdeviceptr, CUdeviceptr, Int, CUhandle?) -> Status
  let cuMemsetD8Async: @convention(c) (CUdeviceptr, UInt8, Int, CUhandle?) -> Status
  let cuMemsetD32Async: @convention(c) (CUdeviceptr, UInt32, Int, CUhandle?) -> Status
  let cuStreamCreate: @convention(c) (UnsafeMutablePointer<CUhandle?>, UInt32) -> Status
  let cuStreamDestroy: @convention(c) (CUhandle?) -> Status
  let cuStreamSynchronize: @convention(c) (CUhandle?) -> Status
  let cuEventCreate: @convention(c) (UnsafeMutablePointer<CUhandle?>, UInt32) -> Status
  let cuEventDestroy: @convention(c) (CUhandle?) -> Status
  let cuEventRecord: @convention(c) (CUhandle?, CUhandle?) -> Status
  let cuEventSynchronize: @convention(c) (CUhandle?) -> Status
  let cuEventElapsedTime: @convention(c) (UnsafeMutablePointer<Float>, CUhandle?, CUhandle?) -> Status
  let cuModuleLoadData: @convention(c) (UnsafeMutablePointer<CUhandle?>, UnsafeRawPointer) -> Status
  let cuModuleUnload: @convention(c) (CUhandle?) -> Status
  let cuModuleGetFunction: @convention(c) (UnsafeMutablePointer<CUhandle?>, CUhandle?, UnsafePointer<CChar>) -> Status
  let cuFuncSetAttribute: @convention(c) (CUhandle?, Int32, Int32) -> Status
  let cuFuncGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, CUhandle?) -> Status
  let cuLaunchKernel: @convention(c) (
    CUhandle?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, CUhandle?,
    UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
  ) -> Status
  /// Stream-ordered allocation from a memory pool (CUDA 11.2+), for scratch memory that needs
  /// no synchronization to reuse; nil on older drivers (`DeviceScratchPool` then allocates
  /// plainly and waits before freeing).
  let cuMemPoolCreate: (@convention(c) (UnsafeMutablePointer<CUhandle?>, UnsafeRawPointer) -> Status)?
  let cuMemPoolSetAttribute: (@convention(c) (CUhandle?, Int32, UnsafeMutableRawPointer) -> Status)?
  let cuMemAllocFromPoolAsync: (@convention(c) (UnsafeMutablePointer<CUdeviceptr>, Int, CUhandle?, CUhandle?) -> Status)?
  let cuMemFreeAsync: (@convention(c) (CUdeviceptr, CUhandle?) -> Status)?
  /// `cuStreamIsCapturing` (CUDA 10+): whether work queued on a stream is being captured into a
  /// graph (the fused decode merge then falls back to its second launch); nil if absent.
  let cuStreamIsCapturing: (@convention(c) (CUhandle?, UnsafeMutablePointer<Int32>) -> Status)?
  /// `cuTensorMapEncodeTiled` (CUDA 12+), for TMA descriptors of the Hopper kernels; nil on
  /// older drivers.
  let cuTensorMapEncodeTiled: (@convention(c) (
    UnsafeMutableRawPointer, Int32, UInt32, UnsafeMutableRawPointer?, UnsafePointer<UInt64>,
    UnsafePointer<UInt64>, UnsafePointer<UInt32>, UnsafePointer<UInt32>, Int32, Int32, Int32, Int32
  ) -> Status)?

  init(library: DynamicLibrary) throws(LoadFailure) {
    self.library = library
    cuInit = try library.function("cuInit")
    cuDriverGetVersion = try library.function("cuDriverGetVersion")
    cuGetErrorName = try library.function("cuGetErrorName")
    cuDeviceGetCount = try library.function("cuDeviceGetCount")
    cuDeviceGet = try library.function("cuDeviceGet")
    cuDeviceGetName = try library.function("cuDeviceGetName")
    cuDeviceGetAttribute = try library.function("cuDeviceGetAttribute")
    cuDeviceTotalMem = try library.function("cuDeviceTotalMem_v2")
    cuDevicePrimaryCtxRetain = try library.function("cuDevicePrimaryCtxRetain")
    cuCtxSetCurrent = try library.function("cuCtxSetCurrent")
    cuCtxSynchronize = try library.function("cuCtxSynchronize")
    cuMemGetInfo = try library.function("cuMemGetInfo_v2")
    cuMemAlloc = try library.function("cuMemAlloc_v2")
    cuMemFree = try library.function("cuMemFree_v2")
    cuMemcpyHtoDAsync = try library.function("cuMemcpyHtoDAsync_v2")
    cuMemcpyDtoHAsync = try library.function("cuMemcpyDtoHAsync_v2")
    cuMemcpyDtoDAsync = try library.function("cuMemcpyDtoDAsync_v2")
    cuMemsetD8Async = try library.function("cuMemsetD8Async")
    cuMemsetD32Async = try library.function("cuMemsetD32Async")
    cuStreamCreate = try library.function("cuStreamCreate")
    cuStreamDestroy = try library.function("cuStreamDestroy_v2")
    cuStreamSynchronize = try library.function("cuStreamSynchronize")
    cuEventCreate = try library.function("cuEventCreate")
    cuEventDestroy = try library.function("cuEventDestroy_v2")
    cuEventRecord = try library.function("cuEventRecord")
    cuEventSynchronize = try library.function("cuEventSynchronize")
    cuEventElapsedTime = try library.function("cuEventElapsedTime")
    cuModuleLoadData = try library.function("cuModuleLoadData")
    cuModuleUnload = try library.function("cuModuleUnload")
    cuModuleGetFunction = try library.function("cuModuleGetFunction")
    cuFuncSetAttribute = try library.function("cuFuncSetAttribute")
    cuFuncGetAttribute = try library.function("cuFuncGetAttribute")
    cuLaunchKernel = try library.function("cuLaunchKernel")
    cuTensorMapEncodeTiled = library.optionalFunction("cuTensorMapEncodeTiled")
    cuMemPoolCreate = library.optionalFunction("cuMemPoolCreate")
    cuMemPoolSetAttribute = library.optionalFunction("cuMemPoolSetAttribute")
    cuMemAllocFromPoolAsync = library.optionalFunction("cuMemAllocFromPoolAsync")
    cuMemFreeAsync = library.optionalFunction("cuMemFreeAsync")
    cuStreamIsCapturing = library.optionalFunction("cuStreamIsCapturing")
  }

  /// The driver library, loaded and initialized once per process; the failure says what is
  /// missing and how to get it.
  static let shared: Result<CUDADriverAPI, LoadFailure> = {
    var failures: [String] = []
    for name in ["libcuda.so.1", "libcuda.so"] {
      switch DynamicLibrary.open(name) {
      case let .success(library):
        do throws(LoadFailure) {
          let api = try CUDADriverAPI(library: library)
          let status = api.cuInit(0)
          if status != 0 {
            return .failure(LoadFailure(
              path: name, message: "cuInit failed with \(CUDAResult(rawValue: status)) (\(api.errorName(status)))"))
          }
          return .success(api)
        } catch {
          return .failure(error)
        }
      case let .failure(failure):
        failures.append(failure.message)
      }
    }
    return .failure(LoadFailure(
      path: "libcuda.so.1",
      message: "the NVIDIA driver library libcuda.so.1 was not found (\(failures.first ?? "")); "
        + "install the NVIDIA driver for your GPU"))
  }()

  /// `cuGetErrorName` text for a status, e.g. `CUDA_ERROR_OUT_OF_MEMORY`.
  func errorName(_ status: Status) -> String {
    var pointer: UnsafePointer<CChar>?
    guard cuGetErrorName(status, &pointer) == 0, let pointer else { return "CUresult \(status)" }
    return String(cString: pointer)
  }
}
