#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// The library avoids Foundation; these name the libm functions the reference needs.
extension Double {
  @inlinable var expValue: Double { exp(self) }
  @inlinable var logValue: Double { log(self) }
  @inlinable var tanhValue: Double { tanh(self) }
}
