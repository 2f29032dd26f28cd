import ArgumentParser
import FlashAttention
import FlashAttentionCUDA
import Foundation

/// `bench --grid decode`: KV-cache decoding on the GPU (issue 15's grid: bf16, d 128, GQA 32/8,
/// one query token, batch 1-64, caches 1k-128k, contiguous and pages of 1/16/64/256), each
/// shape's bandwidth (bytes of K and V read per second) beside the device-to-device copy
/// bandwidth measured in the same run, as a table and `--json`.
extension BenchCommand {
  /// The most K and V bytes one shape allocates (batch 64 × 128k tokens would be 32 GiB).
  static let decodeCacheBytesLimit = 8 << 30

  func runDecodeGrid() throws {
    let batches = try integers(decodeBatches, "--decode-batches") ?? [1, 4, 16, 64]
    let cacheLengths = try integers(seqlens, "--seqlens") ?? [1024, 4096, 8192, 16384, 32768, 65536, 131072]
    let pages = try (pageSizes ?? "0,1,16,64,256").split(separator: ",").map { text -> Int? in
      guard let value = Int(text), value >= 0 else { throw CommandLineFailure("--page-sizes: \(text) is not a size") }
      return value == 0 ? nil : value
    }
    let splitCounts = try (decodeSplits ?? "0").split(separator: ",").map { text -> Int in
      guard let value = Int(text), value >= 0 else { throw CommandLineFailure("--decode-splits: \(text) is not a count") }
      return value
    }
    let dtype = try (dtypes ?? "bf16").split(separator: ",").first.map { text in
      guard let dtype = DType(argument: String(text)), dtype != .float32 else {
        throw CommandLineFailure("--dtypes for the decode grid: bf16 or fp16")
      }
      return dtype
    } ?? .bfloat16
    // One backend per --decode-tile × --decode-loader × --decode-combine entry (all the
    // backend's tuning), all measured in this one window against one copy bandwidth, alternating
    // per shape; each of them under every --decode-flush mode, side by side.
    let tileEntries = try cudaTuning.decodeTiles()
    let loaders = try cudaTuning.decodeLoaders()
    let combines = try cudaTuning.decodeCombines()
    let flushes = try decodeFlushModes()
    let entries = (tileEntries.isEmpty ? [nil] : tileEntries).flatMap { tile in
      loaders.flatMap { loader in combines.map { (tile, loader, $0) } }
    }
    let timers = try entries.map { entry, loader, combine in
      var tuning = try cudaTuning.tuning()
      tuning.decodeTile = entry
      tuning.decodeLoader = loader
      tuning.decodeCombine = combine
      var timer = CUDADecodeTimer(backend: try CUDABackend(device: 0, tuning: tuning))
      timer.repetitions = reps
      timer.warmup = warmup
      return timer
    }
    let backend = timers[0].backend
    let copy = try timers[0].copyBandwidth()
    print("device: \(backend.device.name) (\(backend.device.arch), \(backend.device.multiprocessors) SMs)")
    print(String(format: "device-to-device copy (cuMemcpyDtoD, 1 GiB, read + write): %.0f GB/s", copy))
    print("decode \(dtype) d=128 heads 32/8, one query token; GB/s = bytes of K and V read / median time; before each run: "
      + flushes.map { "\($0.rawValue) (\(Self.flushDescription($0)))" }.joined(separator: "; "))
    let modeColumns = flushes.map { flush in
      let suffix = flushes.count > 1 ? " " + flush.rawValue : ""
      return ("us" + suffix).padded(12) + ("GB/s" + suffix).padded(12) + ("%" + suffix).padded(10)
        + (decodeReadFloor ? ("floor us" + suffix).padded(15) + ("% floor" + suffix).padded(14) : "")
    }
    print("batch".padded(7) + "cache".padded(9) + "page".padded(7) + "splits".padded(8) + "tile".padded(36)
      + modeColumns.joined())
    var rows: [CUDADecodeTimer.Measurement] = []
    var entryOfRow: [Int] = []  // which `timers` entry measured rows[i]
    for batch in batches {
      for tokens in cacheLengths {
        if batch * tokens * 8 * 128 * 2 * dtype.byteSize > Self.decodeCacheBytesLimit { continue }
        for page in pages {
          for (entry, timer, requested) in timers.enumerated().flatMap({ entry, timer in
            splitCounts.map { (entry, timer, $0) }
          }) {
            do {
              var line: [CUDADecodeTimer.Measurement] = []
              for flush in flushes {
                line.append(
                  try timer.measure(
                    batch: batch, cacheTokens: tokens, pageSize: page, dtype: dtype, numSplits: requested, flush: flush,
                    readFloor: decodeReadFloor))
              }
              rows += line
              entryOfRow += line.map { _ in entry }
              let m = line[0]
              print("\(batch)".padded(7) + "\(tokens)".padded(9) + (page.map(String.init) ?? "-").padded(7)
                + "\(m.splits)".padded(8) + "\(m.tile) \(m.loader) \(m.combine)".padded(36)
                + line.map { m in
                  String(format: "%.1f", m.microseconds).padded(12) + String(format: "%.0f", m.gigabytesPerSecond).padded(12)
                    + String(format: "%.1f", 100 * m.gigabytesPerSecond / copy).padded(10)
                    + (m.readFloorMicroseconds.map { floor in
                      String(format: "%.1f", floor).padded(15) + String(format: "%.1f", 100 * floor / m.microseconds).padded(14)
                    } ?? "")
                }.joined())
            } catch {
              print("batch \(batch) cache \(tokens) page \(page.map(String.init) ?? "-"): \(error)")
            }
          }
        }
      }
    }
    // One summary per entry (tile, loader, merge) and flush mode.
    for (entry, timer) in timers.enumerated() {
      let tuning = timer.backend.tuning
      let label = timers.count > 1
        ? " [tile \(tuning.decodeTile.map { "\($0.warps)x\($0.stages)" } ?? "auto"), \(tuning.decodeLoader.rawValue), "
          + "\(tuning.decodeCombine.rawValue) merge]" : ""
      for flush in flushes {
        let long = zip(rows, entryOfRow).filter { row, rowEntry in
          rowEntry == entry && row.cacheTokens >= 8192 && row.flush == flush.rawValue
        }.map(\.0)
        if let worst = long.min(by: { $0.gigabytesPerSecond < $1.gigabytesPerSecond }) {
          let median = long.map(\.gigabytesPerSecond).sorted()[long.count / 2]
          print(String(format: "caches >= 8k, flush %@%@: median %.1f %%, lowest %.1f %% of copy (batch %d, cache %d, page %@)",
            flush.rawValue, label, 100 * median / copy, 100 * worst.gigabytesPerSecond / copy, worst.batch,
            worst.cacheTokens, worst.pageSize.map(String.init) ?? "-"))
          let ofFloor = long.compactMap { row in row.readFloorMicroseconds.map { ($0 / row.microseconds, row) } }
          if let lowest = ofFloor.min(by: { $0.0 < $1.0 }) {
            let median = ofFloor.map(\.0).sorted()[ofFloor.count / 2]
            print(String(format: "caches >= 8k, flush %@%@: median %.1f %%, lowest %.1f %% of the read floor (batch %d, cache %d, page %@)",
              flush.rawValue, label, 100 * median, 100 * lowest.0, lowest.1.batch, lowest.1.cacheTokens,
              lowest.1.pageSize.map(String.init) ?? "-"))
          }
        }
      }
    }
    if let json {
      let report = DecodeBenchReport(
        device: backend.device.name, arch: backend.device.arch, dtype: dtype.rawValue, copyGigabytesPerSecond: copy,
        reps: reps, warmup: warmup, records: rows)
      try OutputFiles.writeJSON(report, to: json)
    }
  }
}

extension BenchCommand {
  /// The `--decode-flush` modes in order: `[.dirty]` without the flag (`[.none]` with
  /// `--decode-keep-l2`).
  func decodeFlushModes() throws -> [CUDADecodeTimer.L2Flush] {
    guard let decodeFlush else { return [decodeKeepL2 ? .none : .dirty] }
    if decodeKeepL2 { throw CommandLineFailure("--decode-keep-l2 is --decode-flush none; give one of them") }
    let modes = try decodeFlush.split(separator: ",").map { text in
      guard let mode = CUDADecodeTimer.L2Flush(rawValue: String(text)) else {
        throw CommandLineFailure("--decode-flush takes dirty, clean or none (a comma list), got \(text)")
      }
      return mode
    }
    guard !modes.isEmpty else { throw CommandLineFailure("--decode-flush: no mode given") }
    return modes
  }

  static func flushDescription(_ flush: CUDADecodeTimer.L2Flush) -> String {
    switch flush {
    case .dirty: "memset of 2x L2"
    case .clean: "memset of 2x L2, then a read-only sweep of another 2x L2"
    case .none: "no L2 flush"
    }
  }
}

/// The `--json` document of `bench --grid decode`.
struct DecodeBenchReport: Encodable {
  var device: String
  var arch: String
  var dtype: String
  /// cuMemcpyDtoD of 1 GiB, (read + write) bytes per second / 1e9.
  var copyGigabytesPerSecond: Double
  var reps: Int
  var warmup: Int
  var records: [CUDADecodeTimer.Measurement]
}

extension String {
  fileprivate func padded(_ width: Int) -> String {
    count >= width ? self + " " : self + String(repeating: " ", count: width - count)
  }
}
