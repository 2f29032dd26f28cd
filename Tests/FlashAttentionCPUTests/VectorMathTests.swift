@testable import FlashAttentionCPU
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

@Suite("CPU vector math")
struct VectorMathTests {
  /// The kernels' 2^x over the softmax's useful range, against libm's in Double: the polynomial
  /// and the 2^n assembly together stay within 2.5e-7 relative error (about 2 ULP).
  @Test("exp2 is accurate from -126 to 127", arguments: CPUInstructionSet.supported)
  func exp2Accuracy(_ instructionSet: CPUInstructionSet) throws {
    let kernels = try #require(CPUKernels(instructionSet))
    var generator = SystemRandomNumberGenerator()
    let x = (0..<65_536).map { _ in Float.random(in: -126...127, using: &generator) }
    let y = exp2(x, kernels)
    var worst = 0.0
    for (input, output) in zip(x, y) {
      let exact = libmExp2(Double(input))
      worst = max(worst, abs(Double(output) - exact) / exact)
    }
    #expect(worst < 2.5e-7, "worst relative error \(worst)")
  }

  /// Masked scores are -inf: their probability must be exactly 0 (the backward pass selects
  /// dS = 0 where P == 0), as for everything at or below -127; (-127, -126) stays tiny; NaN stays
  /// NaN (a NaN input must reach the output, not look like a masked score); large arguments
  /// saturate instead of wrapping around.
  @Test("exp2: exactly 0 at and below -127, NaN stays NaN, no wrap-around above 127", arguments: CPUInstructionSet.supported)
  func exp2EdgeCases(_ instructionSet: CPUInstructionSet) throws {
    let kernels = try #require(CPUKernels(instructionSet))
    let low: [Float] = [
      -.infinity, -.greatestFiniteMagnitude, -1e30, -1000, -200, -128, -127.5, -127,
      -126.999, -126.75, -126.5, -126.25, -126.001, -.infinity, -127, -300, -126.6,
    ]
    for (input, output) in zip(low, exp2(low, kernels)) {
      if input <= -127 {
        #expect(output == 0 && output.sign == .plus, "exp2(\(input)) = \(output)")
      } else {
        #expect(output >= 0 && output < 0x1p-125, "exp2(\(input)) = \(output)")
      }
    }
    let nans: [Float] = [.nan, -.nan, Float(bitPattern: 0x7FC0_0001), Float(bitPattern: 0xFFC1_2345), .signalingNaN]
    for (input, output) in zip(nans, exp2(nans, kernels)) {
      #expect(output.isNaN, "exp2(\(input.bitPattern)) = \(output)")
    }
    let high: [Float] = [0, 1e-3, 1, 126.9, 127, 128, 1e30, .infinity]
    let out = exp2(high, kernels)
    #expect(out[0] == 1)
    for (input, output) in zip(high, out).dropFirst() {
      #expect(output >= 1 && output.isFinite, "exp2(\(input)) = \(output)")
    }
  }

  private func exp2(_ x: [Float], _ kernels: CPUKernels) -> [Float] {
    var y = [Float](repeating: .nan, count: x.count)
    x.withUnsafeBufferPointer { input in
      y.withUnsafeMutableBufferPointer { output in
        // Both non-empty here.
        guard let source = input.baseAddress, let target = output.baseAddress else { return }
        kernels.table.pointee.exp2_values(source, target, x.count)
      }
    }
    return y
  }
}

/// libm's double-precision exp2 (a name apart from the test's `exp2`).
private func libmExp2(_ x: Double) -> Double { Glibc.exp2(x) }
