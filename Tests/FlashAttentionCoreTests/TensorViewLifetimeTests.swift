import FlashAttentionCore
import Testing

/// A view lent by a `HostTensor` must keep the tensor's memory alive: Swift may release an owner
/// right after its last use, and a call that reads through the view afterwards would otherwise
/// read freed memory (seen once as NaN gradients in an optimized build).
@Suite struct TensorViewLifetimeTests {
  @Test func viewKeepsItsHostTensorAlive() {
    weak var released: HostTensor?
    let view: TensorView = {
      let tensor = HostTensor([1, 2, 3, 4], shape: [2, 2])
      released = tensor
      return tensor.view
    }()
    #expect(released != nil, "the view no longer holds its HostTensor")
    #expect(view.loadFloat(atElementOffset: 3) == 4)
  }

  @Test func viewOfCallerMemoryHasNoOwner() {
    var values: [Float] = [5, 6]
    values.withUnsafeMutableBytes { bytes in
      let view = TensorView(baseAddress: bytes.baseAddress!, dtype: .float32, shape: [2])
      #expect(view.owner == nil)
      #expect(view.loadFloat(atElementOffset: 1) == 6)
    }
  }
}
