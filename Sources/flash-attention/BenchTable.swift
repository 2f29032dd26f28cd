import FlashAttention
import FlashAttentionTools
import Foundation

/// The text table of `flash-attention bench`: one line per record. CPU tables show GFLOP/s and
/// the percentage of the probed FMA peak; GPU tables show TFLOP/s.
struct BenchTable {
  let cpuPeakGFLOPs: Double?

  var header: String {
    var columns = [left("impl", 9), left("pass", 16), left("dtype", 8), right("b", 4), right("h", 4), right("N", 8),
                   right("d", 4), left("causal", 6), right("median ms", 10)]
    columns += cpuPeakGFLOPs == nil ? [right("TFLOP/s", 8)] : [right("GFLOP/s", 8), right("%peak", 6)]
    columns += [right("peak MiB", 10), "status"]
    return columns.joined(separator: " ")
  }

  func row(_ record: BenchmarkRecord) -> String {
    var columns = [left(record.impl, 9), left(record.pass, 16), left(record.dtype, 8), right("\(record.batch)", 4),
                   right("\(record.headsQ)", 4), right("\(record.seqlenQ)", 8), right("\(record.headDim)", 4),
                   left(record.causal ? "yes" : "no", 6),
                   right(record.medianMs.map { String(format: "%.3f", $0) } ?? "-", 10)]
    if let peak = cpuPeakGFLOPs {
      columns.append(right(record.tflops.map { String(format: "%.1f", $0 * 1000) } ?? "-", 8))
      columns.append(right(record.tflops.map { String(format: "%.1f", $0 * 1e5 / peak) } ?? "-", 6))
    } else {
      columns.append(right(record.tflops.map { String(format: "%.1f", $0) } ?? "-", 8))
    }
    columns.append(right(record.peakBytes.map { String(format: "%.1f", Double($0) / 1_048_576) } ?? "-", 10))
    columns.append(record.status + (record.status == "ok" || record.note.isEmpty ? "" : ": \(record.note)"))
    return columns.joined(separator: " ")
  }

  private func left(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
  }

  private func right(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
  }
}

/// Progress lines on stderr: `[i/n] impl pass case: time` (silenced by --quiet).
final class BenchProgress: @unchecked Sendable {
  private let total: Int
  private var done = 0

  init(total: Int) { self.total = total }

  func report(_ record: BenchmarkRecord) {
    done += 1
    let result = record.medianMs.map { String(format: "%.3f ms, %.2f TFLOP/s", $0, record.tflops ?? 0) } ?? record.status
    writeStandardError(
      "[\(done)/\(total)] \(record.impl) \(record.pass) \(record.dtype) b=\(record.batch) h=\(record.headsQ) "
        + "N=\(record.seqlenQ) d=\(record.headDim)\(record.causal ? " causal" : ""): \(result)\n")
  }
}
