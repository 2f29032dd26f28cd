import FlashAttentionCore

/// A CUDA driver status (`CUresult`), open over the raw code like swift-system's `Errno`.
///
/// The known values carry the `cuda.h` constant's name in their doc comment; `description` asks
/// the loaded driver (`cuGetErrorName`) so that codes this list does not name still read well.
package struct CUDAResult: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
  package var rawValue: Int32
  package init(rawValue: Int32) { self.rawValue = rawValue }

  /// `CUDA_SUCCESS`
  package static let success = CUDAResult(rawValue: 0)
  /// `CUDA_ERROR_INVALID_VALUE`
  package static let invalidValue = CUDAResult(rawValue: 1)
  /// `CUDA_ERROR_OUT_OF_MEMORY`
  package static let outOfMemory = CUDAResult(rawValue: 2)
  /// `CUDA_ERROR_NOT_INITIALIZED`
  package static let notInitialized = CUDAResult(rawValue: 3)
  /// `CUDA_ERROR_NO_DEVICE`
  package static let noDevice = CUDAResult(rawValue: 100)
  /// `CUDA_ERROR_INVALID_DEVICE`
  package static let invalidDevice = CUDAResult(rawValue: 101)
  /// `CUDA_ERROR_INVALID_IMAGE`
  package static let invalidImage = CUDAResult(rawValue: 200)
  /// `CUDA_ERROR_NO_BINARY_FOR_GPU`
  package static let noBinaryForGPU = CUDAResult(rawValue: 209)
  /// `CUDA_ERROR_ILLEGAL_ADDRESS`
  package static let illegalAddress = CUDAResult(rawValue: 700)
  /// `CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES`
  package static let launchOutOfResources = CUDAResult(rawValue: 701)
  /// `CUDA_ERROR_LAUNCH_FAILED`
  package static let launchFailed = CUDAResult(rawValue: 719)

  package var description: String {
    switch CUDADriverAPI.shared {
    case let .success(api): api.errorName(rawValue)
    case .failure: "CUresult \(rawValue)"
    }
  }
}

extension CUDADriverAPI {
  /// Turns a driver status into the library's error, naming the call that failed.
  func check(_ status: Status, _ call: @autoclosure () -> String) throws(FlashAttentionError) {
    if status == 0 { return }
    throw .cuda(message: "\(call()) failed: \(errorName(status)) (\(status))")
  }

  /// The loaded driver, or `.backendUnavailable` with what is missing.
  static func loaded() throws(FlashAttentionError) -> CUDADriverAPI {
    switch shared {
    case let .success(api): return api
    case let .failure(failure): throw .backendUnavailable(backend: "cuda", reason: failure.message)
    }
  }
}
