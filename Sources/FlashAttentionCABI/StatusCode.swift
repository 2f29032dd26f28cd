import CFlashAttention
import FlashAttention

/// Runs one C entry point: a success clears this thread's message, a thrown error becomes its
/// status code and message. Nothing escapes as a Swift error or a trap.
enum StatusCode {
  static func run(_ body: () throws(FlashAttentionError) -> Void) -> Int32 {
    do {
      try body()
      fa_internal_set_last_error("")
      return Int32(FA_SUCCESS.rawValue)
    } catch {
      fa_internal_set_last_error(error.description)
      return code(of: error)
    }
  }

  static func code(of error: FlashAttentionError) -> Int32 {
    let status: fa_status =
      switch error {
      case .invalidArgument: FA_ERROR_INVALID_ARGUMENT
      case .unsupported: FA_ERROR_UNSUPPORTED
      case .backendUnavailable: FA_ERROR_BACKEND_UNAVAILABLE
      case .outOfMemory: FA_ERROR_OUT_OF_MEMORY
      case .cuda: FA_ERROR_CUDA
      case .compilation: FA_ERROR_COMPILATION
      }
    return Int32(status.rawValue)
  }
}
