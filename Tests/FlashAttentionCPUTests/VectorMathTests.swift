@testable import _FlashAttentionCPUKernels
import FlashAttentionCPU
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

@Suite("CPU vector math")
struct VectorMathTests {
  /// The softmax's exp2 over its whole useful range, against libm's in Double: the polynomial
  /// and the 2^n assembly together stay within 2.5e-7 relative error (about 2 ULP).
  @Test("exp2(nonPositive:) is accurate from -126 to 127")
  func exp2Accuracy() {
    var generator = SystemRandomNumberGenerator()
    var worst = 0.0
    for _ in 0..<4096 {
      var x = SIMD16<Float>()
      for lane in 0..<16 { x[lane] = Float.random(in: -126...127, using: &generator) }
      let y = VectorMath.exp2(nonPositive: x)
      for lane in 0..<16 {
        let exact = libmExp2(Double(x[lane]))
        worst = max(worst, abs(Double(y[lane]) - exact) / exact)
      }
    }
    #expect(worst < 2.5e-7, "worst relative error \(worst)")
  }

  /// Masked scores are -inf: their probability must be exactly 0 (the backward pass selects
  /// dS = 0 where P == 0), as for everything at or below -127; and (-127, -126) stays tiny.
  @Test("exp2(nonPositive:) gives exactly 0 at and below -127, never NaN below -126")
  func exp2Underflow() {
    let inputs: [Float] = [
      -.infinity, -.greatestFiniteMagnitude, -1e30, -1000, -200, -128, -127.5, -127,
      -126.999, -126.75, -126.5, -126.25, -126.001, -.infinity, -127, -300,
    ]
    let y = VectorMath.exp2(nonPositive: SIMD16(inputs))
    for lane in 0..<16 {
      if inputs[lane] <= -127 {
        #expect(y[lane] == 0 && y[lane].sign == .plus, "exp2(\(inputs[lane])) = \(y[lane])")
      } else {
        #expect(y[lane] >= 0 && y[lane] < 0x1p-125, "exp2(\(inputs[lane])) = \(y[lane])")
      }
    }
    #expect(VectorMath.exp2(nonPositive: SIMD16(repeating: 0)) == SIMD16(repeating: 1))
  }
}

/// libm's double-precision exp2 (a name apart from `VectorMath.exp2`).
private func libmExp2(_ x: Double) -> Double { exp2(x) }
