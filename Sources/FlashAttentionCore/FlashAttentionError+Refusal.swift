extension FlashAttentionError {
  /// Throws `.backendUnavailable` with a C-string reason.
  ///
  /// For backends compiled for a newer ISA than the baseline (the CPU kernels target
  /// x86-64-v3): building and throwing the error here, in Core (compiled for the baseline),
  /// keeps the refusal path free of instructions the CPU may lack, so an old CPU gets this error
  /// instead of SIGILL.
  @inline(never)
  public static func throwBackendUnavailable(
    backend: StaticString, reason: UnsafePointer<CChar>
  ) throws(FlashAttentionError) -> Never {
    throw .backendUnavailable(backend: backend.description, reason: String(cString: reason))
  }
}
