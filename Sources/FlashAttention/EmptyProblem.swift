/// Problems with no work: answered here, before a backend sees them, so that no kernel loops
/// over heads or blocks that hold nothing (an empty q with 2^40 heads is a 0-byte tensor).
///
/// What an empty problem must still write: with no keys, every output row is 0 and its LSE
/// -inf (a row that sees no key); with no queries, dK and dV are 0 (no query attends to a key).
/// Host memory is written here; device memory goes to its backend, which clears it on the GPU.
enum EmptyProblem {
  /// Answers a forward with no query or no key in host memory; true when it did.
  static func forward(_ arguments: ForwardArguments) -> Bool {
    let shape = arguments.shape
    if shape.batch == 0 || shape.seqlenQ == 0 { return true }
    guard shape.seqlenK == 0, arguments.q.location == .host else { return false }
    fill(arguments.out, 0)
    fill(arguments.lse, -.infinity)
    return true
  }

  /// Answers a backward with no query or no key in host memory; true when it did.
  static func backward(_ arguments: BackwardArguments) -> Bool {
    let shape = arguments.shape
    if shape.batch == 0 || (shape.seqlenQ == 0 && shape.seqlenK == 0) { return true }
    guard shape.seqlenQ == 0 || shape.seqlenK == 0, arguments.q.location == .host else { return false }
    fill(arguments.dQ, 0)
    fill(arguments.dK, 0)
    fill(arguments.dV, 0)
    return true
  }

  /// Writes `value` to every element of a host view (any strides, a unit last stride; nothing
  /// for an empty one): an odometer over the outer axes, a plain loop along the last.
  private static func fill(_ view: TensorView, _ value: Float) {
    guard view.elementCount > 0, let rowLength = view.shape.last else { return }
    let outer = view.shape.dropLast()
    var index = [Int](repeating: 0, count: outer.count)
    while true {
      var start = 0
      for axis in 0..<index.count { start += index[axis] * view.strides[axis] }
      for column in 0..<rowLength { view.storeFloat(value, atElementOffset: start + column) }
      var axis = index.count - 1
      while axis >= 0 {
        index[axis] += 1
        if index[axis] < outer[axis] { break }
        index[axis] = 0
        axis -= 1
      }
      if axis < 0 { return }
    }
  }
}
