/// Which pass of attention a measurement times.
package enum BenchmarkPass: String, Sendable, CaseIterable {
  case forward
  case backward
  case forwardBackward = "forward_backward"

  /// FLOPs relative to the forward pass (PERFORMANCE.md: backward = 2.5 × forward).
  package var flopFactor: Double {
    switch self {
    case .forward: 1
    case .backward: 2.5
    case .forwardBackward: 3.5
    }
  }
}

/// One problem of a benchmark grid: a shape, a mask and a storage dtype.
package struct BenchmarkCase: Sendable, Hashable, CustomStringConvertible {
  package var shape: AttentionShape
  package var causal: Bool
  package var dtype: DType

  package init(shape: AttentionShape, causal: Bool, dtype: DType) {
    self.shape = shape
    self.causal = causal
    self.dtype = dtype
  }

  /// Forward FLOPs by the FlashAttention papers' count: `4·b·h·sq·sk·d` (with `2·d + 2·d_v`),
  /// halved for causal attention on square problems. The same count as the peer scripts.
  package var forwardFLOPs: Double {
    let full = Double(shape.batch * shape.headsQ) * Double(shape.seqlenQ) * Double(shape.seqlenK)
      * Double(2 * shape.headDim + 2 * shape.headDimV)
    return causal ? full / 2 : full
  }

  package func flops(_ pass: BenchmarkPass) -> Double { pass.flopFactor * forwardFLOPs }

  package var description: String {
    "\(dtype) b=\(shape.batch) h=\(shape.headsQ) N=\(shape.seqlenQ) d=\(shape.headDim)\(causal ? " causal" : "")"
  }
}

/// The named grids of `flash-attention bench --grid` (the peer scripts define the same ones in
/// `benchmarks/peers/bench_common.py`).
package enum BenchmarkGrid: String, Sendable, CaseIterable {
  /// The FlashAttention-2/3 papers' grid: N 512…16k, batch = 16384 / N, heads = 2048 / d,
  /// d 64 / 128 / 256.
  case flash
  /// The CPU default, sized for minutes on 2 cores: N 512…4096, batch = 4096 / N (4096 tokens
  /// per case), 8 heads, d 64 / 128.
  case cpu
  /// The CPU kernel study: N 1024…16384, batch 1, 8 heads, d 64 / 128.
  case cpuKernels = "cpu-kernels"
  /// GPU scaling: batch 1, 16 heads, d 128, N 1024…131072, where standard attention's S and P
  /// outgrow the device.
  case scalingGPU = "scaling-gpu"
  /// CPU scaling: batch 1, one head, d 64, N 1024…65536 (standard attention stops fitting at 64k).
  case scalingCPU = "scaling-cpu"
  /// GPU long context: batch 1, one head, N = 1,048,576, d 128.
  case longGPU = "long-gpu"
  /// CPU long context: batch 1, one head, N = 131,072, d 64, causal.
  case longCPU = "long-cpu"
  /// Tiny shapes that check the tooling in seconds.
  case smoke
  /// Exactly the `--batch`, `--heads`, `--seqlens`, `--head-dims` given.
  case custom

  /// The cases of this grid for `dtypes`; explicit lists override the preset's.
  package func cases(
    dtypes: [DType], headDims: [Int]? = nil, seqlens: [Int]? = nil, causal: [Bool] = [false, true],
    batch: Int = 1, heads: Int = 8
  ) -> [BenchmarkCase] {
    func sweep(_ defaultDims: [Int], _ defaultLengths: [Int], _ shape: (Int, Int) -> AttentionShape) -> [BenchmarkCase] {
      var cases: [BenchmarkCase] = []
      for dtype in dtypes {
        for headDim in headDims ?? defaultDims {
          for isCausal in causal {
            for seqlen in seqlens ?? defaultLengths {
              cases.append(BenchmarkCase(shape: shape(seqlen, headDim), causal: isCausal, dtype: dtype))
            }
          }
        }
      }
      return cases
    }
    switch self {
    case .flash:
      return sweep([64, 128, 256], [512, 1024, 2048, 4096, 8192, 16384]) { n, d in
        AttentionShape(batch: max(1, 16384 / n), seqlenQ: n, headsQ: max(1, 2048 / d), headDim: d)
      }
    case .cpu:
      return sweep([64, 128], [512, 1024, 2048, 4096]) { n, d in
        AttentionShape(batch: max(1, 4096 / n), seqlenQ: n, headsQ: 8, headDim: d)
      }
    case .cpuKernels:
      return sweep([64, 128], [1024, 2048, 4096, 8192, 16384]) { n, d in
        AttentionShape(batch: 1, seqlenQ: n, headsQ: 8, headDim: d)
      }
    case .scalingGPU:
      return sweep([128], (10...17).map { 1 << $0 }) { n, d in AttentionShape(batch: 1, seqlenQ: n, headsQ: 16, headDim: d) }
    case .scalingCPU:
      return sweep([64], (10...16).map { 1 << $0 }) { n, d in AttentionShape(batch: 1, seqlenQ: n, headsQ: 1, headDim: d) }
    case .longGPU:
      return BenchmarkGrid.custom.cases(
        dtypes: dtypes, headDims: headDims ?? [128], seqlens: seqlens ?? [1 << 20],
        causal: causal.count == 1 ? causal : [false], batch: 1, heads: 1)
    case .longCPU:
      return BenchmarkGrid.custom.cases(
        dtypes: dtypes, headDims: headDims ?? [64], seqlens: seqlens ?? [1 << 17],
        causal: causal.count == 1 ? causal : [true], batch: 1, heads: 1)
    case .smoke:
      return sweep([64], [256, 512]) { n, d in AttentionShape(batch: 2, seqlenQ: n, headsQ: 4, headDim: d) }
    case .custom:
      return sweep([64], [1024]) { n, d in AttentionShape(batch: batch, seqlenQ: n, headsQ: heads, headDim: d) }
    }
  }
}
