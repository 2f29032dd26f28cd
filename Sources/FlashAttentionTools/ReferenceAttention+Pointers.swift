// The references run inside the tests, which build in debug mode: there an array's subscript is
// a function call and `+=` on an element a coroutine, several times the cost of the arithmetic.
// A pointer's subscript is transparent and inlined even then, so the inner loops index pointers.

extension Array {
  /// Calls `body` with a pointer to the elements (to scratch memory that `body` must not touch
  /// when the array is empty).
  mutating func withElementPointer<Result>(_ body: (UnsafeMutablePointer<Element>) -> Result) -> Result {
    withUnsafeMutableBufferPointer { buffer in
      if let base = buffer.baseAddress { return body(base) }
      return withUnsafeTemporaryAllocation(of: Element.self, capacity: 1) { body($0.baseAddress!) }
    }
  }

  /// Calls `body` with a read-only pointer to the elements (see ``withElementPointer(_:)``).
  func withReadPointer<Result>(_ body: (UnsafePointer<Element>) -> Result) -> Result {
    withUnsafeBufferPointer { buffer in
      if let base = buffer.baseAddress { return body(base) }
      return withUnsafeTemporaryAllocation(of: Element.self, capacity: 1) { body(UnsafePointer($0.baseAddress!)) }
    }
  }
}

/// Read-only pointers to the four inputs of a reference computation.
struct InputPointers<Element> {
  let q: UnsafePointer<Element>
  let k: UnsafePointer<Element>
  let v: UnsafePointer<Element>
  let dOut: UnsafePointer<Element>
}

/// Calls `body` with pointers to `q`, `k`, `v` and `dOut`, valid during the call.
func withInputPointers<Element, Result>(
  _ q: [Element], _ k: [Element], _ v: [Element], _ dOut: [Element], _ body: (InputPointers<Element>) -> Result
) -> Result {
  q.withReadPointer { q in
    k.withReadPointer { k in
      v.withReadPointer { v in
        dOut.withReadPointer { dOut in body(InputPointers(q: q, k: k, v: v, dOut: dOut)) }
      }
    }
  }
}
