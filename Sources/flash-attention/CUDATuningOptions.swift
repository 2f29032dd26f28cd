import ArgumentParser
import FlashAttentionCUDA

/// Overrides of the CUDA tile tables for tuning runs, shared by `bench`, `verify` and
/// `kernels`. They reach the library as a `CUDAKernelTuning` in `CUDABackend(device:tuning:)`;
/// the library reads no environment variable for them.
struct CUDATuningOptions: ParsableArguments {
  @Option(help: "CUDA: the FlashAttention-2 forward tile at every head dim, BMxBNxWARPS (e.g. 128x64x4; BM a multiple of 16·WARPS).")
  var forwardTile: String?

  @Option(help: "CUDA: the FlashAttention-2 backward key/value tile, BMxBNxWARPS (e.g. 64x128x8), where it fits.")
  var backwardTile: String?

  @Option(help: "CUDA: the forward kernels allowed: auto (Hopper where it applies) or fa2 (FlashAttention-2 only).")
  var forwardKernel: CUDAKernelTuning.ForwardKernels = .automatic

  @Option(help: "CUDA: the KV-cache decode tile, WARPSxSTAGES[+m16] (warps 1/2/4/8, 2-8 stages of 16 keys per warp; +m16 keeps m16 tiles of rows where the swapped 8-row tile would serve); bench --grid decode takes a comma list to sweep, auto for the table's tile (e.g. auto,4x3,4x6,8x4).")
  var decodeTile: String?

  @Option(help: "CUDA: how the KV-cache decode kernel loads K and V: cpasync (16-byte cp.async, two lanes per row, every GPU), cpasync-lines (cp.async, whole 128-byte lines per instruction, every GPU) or bulk (Hopper bulk copies, one per K/V row; falls back to cpasync off sm_90 or on unaligned caches); bench --grid decode takes a comma list and alternates them per shape (e.g. cpasync,bulk,cpasync-lines).")
  var decodeLoader: String?

  @Option(help: "CUDA: how the Hopper kernels cover a packed variable-length batch: padded (a grid for the longest sequence, per sequence) or packed (a work list of real tiles written on the device, longest sequence first); bench --grid varlen takes a comma list and times each in turn (e.g. padded,packed).")
  var varlenSchedule: String?

  @Option(help: "CUDA: how the KV-cache decode kernel's key splits are merged: separate (a second launch, flash_decode_combine) or fused (the last split CTA of each row block merges them inside the decode kernel, the default; same arithmetic, same bits); bench --grid decode takes a comma list and alternates them per shape (e.g. separate,fused).")
  var decodeCombine: String?

  @Option(help: "CUDA: the kernels of calls with ALiBi: hopper (the Hopper kernels where they apply) or sm80 (FlashAttention-2 only, the old route).")
  var alibiKernels: CUDAKernelTuning.AlibiKernels = .hopper

  @Option(help: "CUDA: the kernels of calls with dropout, forward and backward: hopper (the Hopper kernels where they apply; the backward at head dims 64 and 128) or sm80 (FlashAttention-2 only, the old route).")
  var dropoutKernels: CUDAKernelTuning.DropoutKernels = .hopper

  @Option(help: "CUDA: the Hopper forward tile of every call, BNxSTAGESxQSTAGES with +pingpong, +overlap, +wg3 (e.g. 128x3x2+pingpong+overlap); fp8 calls take it only with BN a multiple of 128. For tuning runs: a tile that does not fit the shared memory fails at launch.")
  var hopperForwardTile: String?

  @Option(help: "CUDA: fp8 forward calls without softcap compute one chunk of four exponentials in every N on the FMA pipe instead of the MUFU (N 2-16; 0, the default, none). For tuning runs.")
  var fp8Exp2FmaPeriod: Int = 0

  @Option(help: "CUDA: how the Hopper backward computes dQ (the deterministic mode always splits): auto (the table's), split (a dQ kernel per query block), fused (one kernel, per-thread atomic adds), fused-bulk (one kernel, dQ staged in shared memory and added by bulk reductions; head dims 64 and 128, the table's there) or fused-bulk-dq-first (as fused-bulk, each step's dQ GEMM issued before dV's and dK's). For tuning runs.")
  var hopperBackwardForm: CUDAKernelTuning.HopperBackwardForm = .automatic

  @Option(help: "CUDA: how the forward covers a V wider than 256 columns (heads past 256): groups (one launch, warp groups splitting O's columns, the default) or chunks (one launch per chunk of at most 256 columns). For tuning runs.")
  var wideValue: CUDAKernelTuning.WideValue = .groups

  @Option(help: "CUDA: how the Hopper forward adds the ALiBi bias's part that varies along a row: fma (one FFMA per score, the default) or tensor-cores (one more k-step of Q K^T). For tuning runs.")
  var alibiBias: CUDAKernelTuning.AlibiBias = .fma

  func validate() throws {
    _ = try tuning()
  }

  /// The overrides, or a validation error naming the flag.
  func tuning() throws -> CUDAKernelTuning {
    var tuning = CUDAKernelTuning(forwardKernels: forwardKernel, alibiKernels: alibiKernels)
    tuning.dropoutKernels = dropoutKernels
    if let forwardTile {
      guard let tile = AttentionTile.forward(parsing: forwardTile) else {
        throw ValidationError("--forward-tile must be BMxBNxWARPS with BM a multiple of 16·WARPS and BN of 16, got \(forwardTile)")
      }
      tuning.forwardTile = tile
    }
    if let backwardTile {
      guard let tile = AttentionTile.backward(parsing: backwardTile) else {
        throw ValidationError("--backward-tile must be BMxBNxWARPS (multiples of 16, WARPS 1, 2, 4 or 8), got \(backwardTile)")
      }
      tuning.backwardTile = tile
    }
    if let hopperForwardTile {
      guard let tile = HopperForwardTile(parsing: hopperForwardTile) else {
        throw ValidationError(
          "--hopper-forward-tile must be BNxSTAGESxQSTAGES (BN a multiple of 16 up to 256, 1-8 stages, 1-2 Q buffers) with +pingpong, +overlap or +wg3 (not with +pingpong), got \(hopperForwardTile)")
      }
      tuning.hopperForwardTile = tile
    }
    guard HopperForwardKey.exp2OnFMAPeriods.contains(fp8Exp2FmaPeriod) else {
      throw ValidationError("--fp8-exp2-fma-period must be 0 (none) or 2-16, got \(fp8Exp2FmaPeriod)")
    }
    tuning.float8Exp2OnFMAPeriod = fp8Exp2FmaPeriod
    tuning.hopperBackwardForm = hopperBackwardForm
    tuning.wideValue = wideValue
    tuning.alibiBias = alibiBias
    // A sweep list (bench --grid decode) runs its entries itself; a single command takes the first.
    tuning.decodeTile = try decodeTiles().first ?? nil
    tuning.decodeLoader = try decodeLoaders().first ?? CUDAKernelTuning().decodeLoader
    tuning.varlenSchedule = try varlenSchedules().first ?? CUDAKernelTuning().varlenSchedule
    tuning.decodeCombine = try decodeCombines().first ?? CUDAKernelTuning().decodeCombine
    return tuning
  }

  /// The `--varlen-schedule` entries in order; the default schedule without the flag.
  func varlenSchedules() throws -> [CUDAKernelTuning.VarlenSchedule] {
    try Self.entries(
      of: varlenSchedule, default: CUDAKernelTuning().varlenSchedule,
      invalid: "--varlen-schedule takes padded or packed (a comma list for bench --grid varlen)")
  }

  /// The `--decode-loader` entries in order; the default loader without the flag.
  func decodeLoaders() throws -> [DecodeLoader] {
    try Self.entries(
      of: decodeLoader, default: CUDAKernelTuning().decodeLoader,
      invalid: "--decode-loader must be cpasync, cpasync-lines or bulk (a comma list for bench --grid decode)")
  }

  /// The `--decode-combine` entries in order; the default merge without the flag.
  func decodeCombines() throws -> [DecodeCombine] {
    try Self.entries(
      of: decodeCombine, default: CUDAKernelTuning().decodeCombine,
      invalid: "--decode-combine must be separate or fused (a comma list for bench --grid decode)")
  }

  /// A comma list of an enum's raw values (`[fallback]` without the flag); a validation error
  /// `invalid, got ENTRY` for an entry that is not one of them.
  private static func entries<Choice: RawRepresentable>(
    of text: String?, default fallback: Choice, invalid: String
  ) throws -> [Choice] where Choice.RawValue == String {
    guard let text else { return [fallback] }
    return try text.split(separator: ",").map { entry in
      guard let choice = Choice(rawValue: String(entry)) else { throw ValidationError("\(invalid), got \(entry)") }
      return choice
    }
  }

  /// The `--decode-tile` entries in order, nil for `auto` (the tile table's choice); `[nil]`
  /// without the flag.
  func decodeTiles() throws -> [DecodeTuning?] {
    guard let decodeTile else { return [nil] }
    return try decodeTile.split(separator: ",").map { text -> DecodeTuning? in
      if text == "auto" { return nil }
      guard let tile = DecodeTuning(parsing: String(text)) else {
        throw ValidationError("--decode-tile must be WARPSxSTAGES (warps 1, 2, 4 or 8; 2 to 8 stages; +m16 keeps m16 row tiles for few rows) or auto, got \(text)")
      }
      return tile
    }
  }

  /// Whether any flag was given.
  var isSet: Bool {
    forwardTile != nil || backwardTile != nil || forwardKernel != .automatic || decodeTile != nil || decodeLoader != nil
      || varlenSchedule != nil
      || alibiKernels != .hopper || decodeCombine != nil || dropoutKernels != .hopper || hopperForwardTile != nil
      || fp8Exp2FmaPeriod != 0 || hopperBackwardForm != .automatic || wideValue != .groups
      || alibiBias != .fma
  }
}

extension CUDAKernelTuning.ForwardKernels: ExpressibleByArgument {}
extension CUDAKernelTuning.AlibiKernels: ExpressibleByArgument {}
extension CUDAKernelTuning.DropoutKernels: ExpressibleByArgument {}
extension CUDAKernelTuning.HopperBackwardForm: ExpressibleByArgument {}
extension CUDAKernelTuning.WideValue: ExpressibleByArgument {}
extension CUDAKernelTuning.AlibiBias: ExpressibleByArgument {}
