import FlashAttentionCore
import FlashAttentionTestSupport
import Testing

@testable import FlashAttentionCUDA

/// The caller's-stream path on a GPU: forward and backward queued on two streams at once, one of
/// them a borrowed `CUstream` (as another framework passes it) with a caller's workspace, the
/// other with scratch from the pool; nothing is synchronized until both are in flight.
@Suite("CUDA streams (GPU)")
struct StreamTests {
  /// One problem's host data, its device copies (outputs poisoned with NaN), and its reference.
  struct Problem {
    let shape: AttentionShape
    let options: AttentionOptions
    let dtype: DType
    let host: [String: HostTensor]
    var buffers: [String: CUDABuffer] = [:]

    init(shape: AttentionShape, options: AttentionOptions, dtype: DType, random: inout TestRandom) {
      self.shape = shape
      self.options = options
      self.dtype = dtype
      host = [
        "q": random.tensor(shape.qShape, dtype: dtype), "k": random.tensor(shape.kShape, dtype: dtype),
        "v": random.tensor(shape.vShape, dtype: dtype), "dout": random.tensor(shape.oShape, dtype: dtype),
      ]
    }

    mutating func upload(device: CUDADevice, stream: CUDAStream) throws {
      for (name, tensor) in host {
        let buffer = try CUDABuffer(device: device, byteCount: tensor.byteCount)
        try buffer.upload(tensor, stream: stream)
        buffers[name] = buffer
      }
      for (name, shape, type) in [
        ("out", shape.oShape, dtype), ("lse", shape.lseShape, DType.float32), ("dq", shape.qShape, dtype),
        ("dk", shape.kShape, dtype), ("dv", shape.vShape, dtype),
      ] {
        let buffer = try CUDABuffer(device: device, byteCount: shape.reduce(1, *) * type.byteSize)
        try buffer.fill(byte: 0xFF, stream: stream)
        buffers[name] = buffer
      }
      try stream.synchronize()
    }

    func view(_ name: String) throws -> TensorView {
      let buffer = try #require(buffers[name])
      let shapes = [
        "q": shape.qShape, "k": shape.kShape, "v": shape.vShape, "dout": shape.oShape, "out": shape.oShape,
        "lse": shape.lseShape, "dq": shape.qShape, "dk": shape.kShape, "dv": shape.vShape,
      ]
      return buffer.view(dtype: name == "lse" ? .float32 : dtype, shape: try #require(shapes[name]))
    }

    func forwardArguments() throws -> ForwardArguments {
      try ForwardArguments(
        q: view("q"), k: view("k"), v: view("v"), out: view("out"), lse: view("lse"), options: options)
    }

    func backwardArguments() throws -> BackwardArguments {
      try BackwardArguments(
        q: view("q"), k: view("k"), v: view("v"), out: view("out"), lse: view("lse"), dOut: view("dout"),
        dQ: view("dq"), dK: view("dk"), dV: view("dv"), options: options)
    }

    /// Each result against float64 under `VerificationRule` (the pass rule of `verify` and every
    /// backend's tests: at most twice the error of a same-precision standard attention, LSE to
    /// 1e-4, NaN never passes).
    func check(device: CUDADevice, stream: CUDAStream, seed: UInt64) throws {
      func download(_ name: String, _ shape: [Int], _ type: DType) throws -> [Float] {
        let tensor = HostTensor(shape: shape, dtype: type)
        try #require(buffers[name]).download(tensor, stream: stream)
        return tensor.floats()
      }
      let q = try #require(host["q"]).view, k = try #require(host["k"]).view, v = try #require(host["v"]).view
      let dOut = try #require(host["dout"]).view
      let exact = try ReferenceAttention.forward(q: q, k: k, v: v, options: options)
      let same = try ReferenceAttention.samePrecisionForward(q: q, k: k, v: v, options: options)
      let exactGradients = try ReferenceAttention.backward(q: q, k: k, v: v, dOut: dOut, options: options)
      let sameGradients = try ReferenceAttention.samePrecisionBackward(q: q, k: k, v: v, dOut: dOut, options: options)
      let context = "seed \(seed), \(shape) \(dtype)"
      expectMatchesReference(
        "out", actual: try download("out", shape.oShape, dtype), expected: exact.out, baseline: same.out, dtype: dtype,
        context)
      expectMatchesReference("lse", actual: try download("lse", shape.lseShape, .float32), expected: exact.lse, context)
      expectMatchesReference(
        "dq", actual: try download("dq", shape.qShape, dtype), expected: exactGradients.dQ, baseline: sameGradients.dQ,
        dtype: dtype, context)
      expectMatchesReference(
        "dk", actual: try download("dk", shape.kShape, dtype), expected: exactGradients.dK, baseline: sameGradients.dK,
        dtype: dtype, context)
      expectMatchesReference(
        "dv", actual: try download("dv", shape.vShape, dtype), expected: exactGradients.dV, baseline: sameGradients.dV,
        dtype: dtype, context)
    }
  }

  @Test(
    "two streams, one borrowed with a caller's workspace, run forward and backward concurrently",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device (see `flash-attention info`)"))
  func twoStreams() throws {
    var random = TestRandom()
    let backend = try CUDABackend(device: 0)
    let device = backend.device
    let own = try CUDAStream(device: device)
    let foreign = try CUDAStream(device: device)
    // What another framework hands over: a raw CUstream the library must not destroy.
    let borrowed = CUDAStream(borrowing: foreign.rawHandle, device: device)
    #expect(!borrowed.isOwned)
    var first = Problem(
      shape: AttentionShape(batch: 2, seqlenQ: 257, seqlenK: 1000, headsQ: 4, headsKV: 2, headDim: 64),
      options: AttentionOptions(causal: true), dtype: .bfloat16, random: &random)
    var second = Problem(
      shape: AttentionShape(batch: 1, seqlenQ: 129, seqlenK: 129, headsQ: 2, headDim: 128),
      options: AttentionOptions(window: SlidingWindow(left: 40, right: 7)), dtype: .float16, random: &random)
    try first.upload(device: device, stream: own)
    try second.upload(device: device, stream: own)

    let backward = try second.backwardArguments()
    let workspace = try CUDABuffer(device: device, byteCount: backend.backwardWorkspaceBytes(for: backward))
    // Both problems in flight before either stream is waited for.
    try backend.enqueueForward(first.forwardArguments(), on: own)
    try backend.enqueueForward(second.forwardArguments(), on: borrowed)
    try backend.enqueueBackward(first.backwardArguments(), on: own)
    try backend.enqueueBackward(
      backward, on: borrowed, workspace: CUDAWorkspace(address: workspace.address, byteCount: workspace.byteCount))
    try own.synchronize()
    try foreign.synchronize()

    try first.check(device: device, stream: own, seed: random.seed)
    try second.check(device: device, stream: own, seed: random.seed)
    withExtendedLifetime(workspace) {}
  }

  @Test(
    "a workspace that is too small is a typed error",
    .enabled(if: gpuAvailable, "skipped: no usable CUDA device"))
  func smallWorkspace() throws {
    var random = TestRandom()
    let backend = try CUDABackend(device: 0)
    var problem = Problem(
      shape: AttentionShape(batch: 1, seqlenQ: 64, seqlenK: 64, headsQ: 2, headDim: 64), options: AttentionOptions(),
      dtype: .bfloat16, random: &random)
    try problem.upload(device: backend.device, stream: backend.stream)
    let arguments = try problem.backwardArguments()
    let buffer = try CUDABuffer(device: backend.device, byteCount: 256)
    #expect(throws: FlashAttentionError.self) {
      try backend.enqueueBackward(
        arguments, on: backend.stream, workspace: CUDAWorkspace(address: buffer.address, byteCount: 256))
    }
  }
}
