/// Orders work items so that the most expensive start first (longest-processing-time
/// scheduling), which keeps threads busy to the end when item costs differ (causal, windows).
enum WorkOrder {
  /// Groups of `groupSize` consecutive items in their order, each group sorted heaviest first.
  static func heaviestFirst(count: Int, groupSize: Int, cost: (Int) -> Int) -> [Int] {
    let costs = (0..<count).map(cost)
    let size = max(groupSize, 1)
    return (0..<count).sorted { a, b in
      if a / size != b / size { return a < b }
      return costs[a] > costs[b] || (costs[a] == costs[b] && a < b)
    }
  }
}

/// Block sizes of the CPU kernels. In the forward pass queries are both the vector dimension of
/// Sᵀ and the row dimension of P·V (6 rows), and keys are rows of K·Qᵀ; in the backward pass keys
/// are the vector dimension of S and the rows of dK and dV. So both blocks are multiples of 48.
/// 96 × 96 fp32 tiles keep the operands of one block pair within L2.
enum TileSizes {
  static let queries = 96
  static let keys = 96
  /// Rows of the GEMM micro-kernel's blocks.
  static let rowBlock = 6
}

let log2e: Float = 1.442_695_04

/// Rounds `value` up to a multiple of `multiple`.
@inline(__always)
func roundUp(_ value: Int, _ multiple: Int) -> Int {
  (value + multiple - 1) / multiple * multiple
}
