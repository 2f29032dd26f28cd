import Foundation

/// One measured case of `flash-attention bench`, in the JSON schema shared with the peer scripts
/// (`benchmarks/README.md`): snake_case keys, times in milliseconds, `null` where a case did not
/// run (`status` says why).
package struct BenchmarkRecord: Codable, Sendable, Equatable {
  /// `"cuda"` or `"cpu"`.
  package var backend: String
  /// `"flash"` or `"standard"` for ours; `"torch-cudnn"`, `"numpy-standard"`, ... for peers.
  package var impl: String
  /// `"bfloat16"`, `"float16"` or `"float32"`.
  package var dtype: String
  package var batch: Int
  package var headsQ: Int
  package var headsKV: Int
  package var seqlenQ: Int
  package var seqlenK: Int
  package var headDim: Int
  package var causal: Bool
  /// `"forward"`, `"backward"` or `"forward_backward"`.
  package var pass: String
  /// `"ok"`, `"out_of_memory"`, `"unsupported"`, `"error"` or `"skipped"`.
  package var status: String
  package var medianMs: Double?
  package var minMs: Double?
  package var runs: Int
  /// FLOPs by PERFORMANCE.md's count over the median time, in TFLOP/s.
  package var tflops: Double?
  /// Most memory the case held at once for one call (inputs, outputs, workspace), in bytes.
  package var peakBytes: Int?
  /// Device (GPU name, or CPU model and thread count).
  package var device: String
  package var note: String

  enum CodingKeys: String, CodingKey {
    case backend, impl, dtype, batch
    case headsQ = "heads_q"
    case headsKV = "heads_kv"
    case seqlenQ = "seqlen_q"
    case seqlenK = "seqlen_k"
    case headDim = "head_dim"
    case causal, pass, status
    case medianMs = "median_ms"
    case minMs = "min_ms"
    case runs, tflops
    case peakBytes = "peak_bytes"
    case device, note
  }

  /// Writes every key, `null` included (the synthesized encoder would drop nil values, and the
  /// schema promises each key in each record).
  package func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(backend, forKey: .backend)
    try container.encode(impl, forKey: .impl)
    try container.encode(dtype, forKey: .dtype)
    try container.encode(batch, forKey: .batch)
    try container.encode(headsQ, forKey: .headsQ)
    try container.encode(headsKV, forKey: .headsKV)
    try container.encode(seqlenQ, forKey: .seqlenQ)
    try container.encode(seqlenK, forKey: .seqlenK)
    try container.encode(headDim, forKey: .headDim)
    try container.encode(causal, forKey: .causal)
    try container.encode(pass, forKey: .pass)
    try container.encode(status, forKey: .status)
    try container.encode(medianMs, forKey: .medianMs)
    try container.encode(minMs, forKey: .minMs)
    try container.encode(runs, forKey: .runs)
    try container.encode(tflops, forKey: .tflops)
    try container.encode(peakBytes, forKey: .peakBytes)
    try container.encode(device, forKey: .device)
    try container.encode(note, forKey: .note)
  }

  /// A record of `benchmarkCase` run through `pass`; the statistics come from `samples` (ms).
  package init(
    backend: String, impl: String, case benchmarkCase: BenchmarkCase, pass: BenchmarkPass,
    device: String, status: BenchmarkStatus, samples: [Double] = [], peakBytes: Int? = nil,
    note: String = ""
  ) {
    self.backend = backend
    self.impl = impl
    self.dtype = benchmarkCase.dtype.rawValue
    self.batch = benchmarkCase.shape.batch
    self.headsQ = benchmarkCase.shape.headsQ
    self.headsKV = benchmarkCase.shape.headsKV
    self.seqlenQ = benchmarkCase.shape.seqlenQ
    self.seqlenK = benchmarkCase.shape.seqlenK
    self.headDim = benchmarkCase.shape.headDim
    self.causal = benchmarkCase.causal
    self.pass = pass.rawValue
    self.status = status.rawValue
    let statistics = SampleStatistics(samples)
    self.medianMs = statistics?.median
    self.minMs = statistics?.minimum
    self.runs = samples.count
    self.tflops = statistics.map { benchmarkCase.flops(pass) / ($0.median * 1e-3) / 1e12 }
    self.peakBytes = peakBytes
    self.device = device
    self.note = note
  }
}

/// Why a record has, or lacks, a time.
package enum BenchmarkStatus: String, Sendable {
  case ok
  case outOfMemory = "out_of_memory"
  case unsupported
  case error
  case skipped

  /// The status a library error maps to: memory → `out_of_memory`, a missing feature →
  /// `unsupported`, anything else → `error`.
  package init(_ error: FlashAttentionError) {
    switch error {
    case .outOfMemory: self = .outOfMemory
    case .unsupported: self = .unsupported
    default: self = .error
    }
  }
}

/// A whole benchmark file: where and when it was measured, and its records.
package struct BenchmarkReport: Codable, Sendable {
  package static let schemaName = "flash-attention-bench/1"

  package var schema: String
  package var generator: String
  package var backend: String
  package var device: String
  /// ISO 8601 UTC time the file was written.
  package var created: String
  package var host: String
  package var software: [String: String]
  /// The probed FMA peak of the host, GFLOP/s (CPU runs).
  package var fmaPeakGFLOPs: Double?
  package var records: [BenchmarkRecord]

  enum CodingKeys: String, CodingKey {
    case schema, generator, backend, device, created, host, software
    case fmaPeakGFLOPs = "fma_peak_gflops"
    case records
  }

  package init(
    backend: String, device: String, software: [String: String], fmaPeakGFLOPs: Double?,
    records: [BenchmarkRecord]
  ) {
    self.schema = BenchmarkReport.schemaName
    self.generator = "flash-attention bench"
    self.backend = backend
    self.device = device
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    self.created = formatter.string(from: Date())
    self.host = ProcessInfo.processInfo.hostName
    self.software = software
    self.fmaPeakGFLOPs = fmaPeakGFLOPs
    self.records = records
  }

  package func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(schema, forKey: .schema)
    try container.encode(generator, forKey: .generator)
    try container.encode(backend, forKey: .backend)
    try container.encode(device, forKey: .device)
    try container.encode(created, forKey: .created)
    try container.encode(host, forKey: .host)
    try container.encode(software, forKey: .software)
    try container.encode(fmaPeakGFLOPs, forKey: .fmaPeakGFLOPs)
    try container.encode(records, forKey: .records)
  }

  /// Writes pretty JSON to `path` through a temporary file renamed into place.
  package func write(to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try encoder.encode(self)
    let url = URL(fileURLWithPath: path)
    try (data + Data("\n".utf8)).write(to: url, options: .atomic)
  }
}
