import FlashAttentionCore

/// Tile sizes of one FlashAttention-2 kernel variant: query rows per CTA (forward: 16 · m-tiles
/// per warp), keys per CTA or step, warps, and whether each warp keeps its Q fragments in
/// registers (forward with one m-tile per warp and d ≤ 128 only).
package struct AttentionTile: Hashable, Sendable, CustomStringConvertible {
  package var blockM: Int
  package var blockN: Int
  package var warps: Int
  package var qInRegisters: Bool

  package init(blockM: Int, blockN: Int, warps: Int, qInRegisters: Bool) {
    self.blockM = blockM
    self.blockN = blockN
    self.warps = warps
    self.qInRegisters = qInRegisters
  }

  package var description: String {
    "\(blockM)x\(blockN)/\(warps)w" + (qInRegisters ? "/qreg" : "")
  }

  /// Parses a forward tile `BMxBNxWARPS` (e.g. `128x64x4`); whether Q stays in registers is
  /// decided per head dim when the key is made.
  package static func forward(parsing text: String) -> AttentionTile? {
    let parts = text.split(separator: "x").compactMap { Int($0) }
    guard parts.count == 3, (1...32).contains(parts[2]), parts[0] > 0, parts[0] % (16 * parts[2]) == 0,
      parts[1] > 0, parts[1] % 16 == 0, parts[1] <= 256
    else { return nil }
    return AttentionTile(blockM: parts[0], blockN: parts[1], warps: parts[2], qInRegisters: false)
  }

  /// Parses a backward key/value tile `BMxBNxWARPS` (BM queries per step, BN keys per CTA).
  package static func backward(parsing text: String) -> AttentionTile? {
    let parts = text.split(separator: "x").compactMap { Int($0) }
    guard parts.count == 3, parts[0] % 16 == 0, parts[0] > 0, parts[0] <= 256, parts[1] % 16 == 0, parts[1] > 0,
      parts[1] <= 256, [1, 2, 4, 8].contains(parts[2])
    else { return nil }
    return AttentionTile(blockM: parts[0], blockN: parts[1], warps: parts[2], qInRegisters: false)
  }
}

/// The `--hopper-forward-tile` text form of a Hopper forward tile.
extension HopperForwardTile: CustomStringConvertible {
  /// Parses `BNxSTAGESxQSTAGES` with optional `+pingpong`, `+overlap`, `+wg3` (three consumer
  /// warpgroups, no ping-pong), e.g. `128x3x2+pingpong+overlap`; nil when malformed.
  package init?(parsing text: String) {
    let parts = text.split(separator: "+").map(String.init)
    guard let sizes = parts.first?.split(separator: "x").compactMap({ Int($0) }), sizes.count == 3 else { return nil }
    let flags = Set(parts.dropFirst())
    guard flags.isSubset(of: ["pingpong", "overlap", "wg3"]), sizes[0] > 0, sizes[0] % 16 == 0, sizes[0] <= 256,
      (1...8).contains(sizes[1]), (1...2).contains(sizes[2]), !(flags.contains("wg3") && flags.contains("pingpong"))
    else { return nil }
    self.init(
      blockN: sizes[0], stages: sizes[1], qStages: sizes[2], pingPong: flags.contains("pingpong"),
      overlap: flags.contains("overlap"), consumers: flags.contains("wg3") ? 3 : 2)
  }

  package var description: String {
    "\(blockN)x\(stages)x\(qStages)" + (pingPong ? "+pingpong" : "") + (overlap ? "+overlap" : "") + (consumers == 3 ? "+wg3" : "")
  }
}

/// Overrides of the tile tables for tuning runs (`flash-attention bench|verify|kernels
/// --forward-tile ... --backward-tile ... --forward-kernel fa2`); the default is the tables.
/// The library reads no environment variable for these: a caller passes them to
/// `CUDABackend(device:tuning:)`.
package struct CUDAKernelTuning: Sendable, Hashable {
  /// Which kernels may run the forward pass.
  package enum ForwardKernels: String, Sendable, Hashable, CaseIterable {
    /// The Hopper kernels where they apply, the FlashAttention-2 kernels elsewhere.
    case automatic = "auto"
    /// The FlashAttention-2 kernels only (to compare against them on a Hopper GPU).
    case flashAttention2 = "fa2"
  }

  /// Which kernels run calls with ALiBi slopes (forward and backward).
  package enum AlibiKernels: String, Sendable, Hashable, CaseIterable {
    /// The Hopper kernels where they apply (compiled with `FA_ALIBI`), else FlashAttention-2's.
    case hopper
    /// The FlashAttention-2 (sm80) kernels only: the route before the Hopper kernels had ALiBi,
    /// to time the two in one run.
    case sm80
  }

  /// Which kernels run calls with dropout, forward and backward.
  package enum DropoutKernels: String, Sendable, Hashable, CaseIterable {
    /// The Hopper kernels where they apply (compiled with `FA_DROPOUT`; the backward at d = 64
    /// and 128), else FlashAttention-2's.
    case hopper
    /// The FlashAttention-2 (sm80) kernels only: the route before the Hopper kernels had
    /// dropout, to time the two in one run.
    case sm80
  }

  /// How the Hopper backward computes dQ (`--hopper-backward-form`), for calls that are not
  /// deterministic (that mode is always split); `.automatic` is the table's
  /// (`KernelSelection.hopperBackwardForm`).
  package enum HopperBackwardForm: String, Sendable, Hashable, CaseIterable {
    case automatic = "auto"
    /// A key/value kernel without dQ, then a dQ kernel per query block (no atomics).
    case split
    /// One kernel; dQ added by per-thread `red.global.add`.
    case fused
    /// One kernel; dQ staged in shared memory and added by bulk reductions (d = 64 and 128;
    /// the table's form at other head dims).
    case fusedBulk = "fused-bulk"
    /// As `fusedBulk`, each step issuing dQ's GEMM before dV's and dK's
    /// (`HopperBackwardKey.dqFirst`).
    case fusedBulkDQFirst = "fused-bulk-dq-first"
  }

  /// Replaces the FlashAttention-2 forward table's tile at every head dim.
  package var forwardTile: AttentionTile?
  /// Replaces the FlashAttention-2 backward table's tile at every head dim where it fits.
  package var backwardTile: AttentionTile?
  package var forwardKernels: ForwardKernels
  /// Replaces the decode table's warps and stages (KV-cache calls).
  package var decodeTile: DecodeTuning?
  /// How the decode kernel loads K and V (`--decode-loader`, default `.cpAsyncLines`); `.bulk`
  /// falls back to `.cpAsync` off sm_90 or on caches whose rows break the bulk copy's alignment
  /// rules, `.cpAsyncLines` above d = 128.
  package var decodeLoader: DecodeLoader

  /// How the Hopper kernels' blocks cover a packed variable-length batch.
  package enum VarlenSchedule: String, Sendable, Hashable, CaseIterable {
    /// A grid padded to the longest sequence for every sequence, in batch order: blocks past a
    /// sequence's end exit (or, in the forward, walk empty work items).
    case padded
    /// A work list written on the device before each kernel (`flash_varlen_schedule`): only
    /// real units, longest sequence first (the list schedule LPT).
    case packed
  }

  /// The schedule of packed variable-length batches on the Hopper kernels (default `.packed`:
  /// H100, 2026-12-06, 0.97-1.02 of the fixed-length throughput where `.padded` gave 0.92-1.10).
  package var varlenSchedule: VarlenSchedule
  /// Which kernels run ALiBi calls (`--alibi-kernels`).
  package var alibiKernels: AlibiKernels
  /// How the decode kernel's key splits are merged (`--decode-combine`, default `.fused`: H100,
  /// 2026-12-06, bit-identical to `.separate` and 0.5-2 µs faster at batch 1-4, never slower):
  /// a second launch, or the last split CTA of each row block inside the decode kernel.
  package var decodeCombine: DecodeCombine
  /// Which kernels run the forward of dropout calls (`--dropout-kernels`).
  package var dropoutKernels: DropoutKernels = .hopper
  /// Replaces the Hopper forward tile of every call (`--hopper-forward-tile`; fp8 calls only
  /// where the block N is a multiple of 128, whole V^T panels).
  package var hopperForwardTile: HopperForwardTile?
  /// fp8 forward calls without softcap: one chunk of four exponentials in this many on the FMA
  /// pipe (`--fp8-exp2-fma-period`, `HopperForwardKey.exp2OnFMAPeriod`); 0, the default, none.
  package var float8Exp2OnFMAPeriod: Int = 0
  /// The Hopper backward's form (`--hopper-backward-form`, default the table's).
  package var hopperBackwardForm: HopperBackwardForm = .automatic

  /// How the FlashAttention-2 forward covers a V wider than 256 columns (`--wide-value`).
  package enum WideValue: String, Sendable, Hashable, CaseIterable {
    /// One launch whose warps form groups, each group holding O for its share of the columns
    /// (`FlashAttention2Key.valueGroups`): K and V read once, every group computing the same S.
    case groups
    /// One launch per chunk of at most 256 columns (`FlashAttention2Key.forwardValueChunks`).
    case chunks
  }

  /// How the forward covers a V wider than 256 columns (default `.groups`).
  package var wideValue: WideValue = .groups

  /// How the Hopper forward adds the ALiBi bias's part that varies along a row (`--alibi-bias`).
  package enum AlibiBias: String, Sendable, Hashable, CaseIterable {
    /// One FFMA per score in the softmax.
    case fma
    /// One more k-step of QKᵀ on the tensor cores (`HopperForwardKey.alibiOnTensorCores`).
    case tensorCores = "tensor-cores"
  }

  /// How the Hopper forward adds ALiBi's column part (default `.fma` until measured).
  package var alibiBias: AlibiBias = .fma

  package init(
    forwardTile: AttentionTile? = nil, backwardTile: AttentionTile? = nil, forwardKernels: ForwardKernels = .automatic,
    decodeTile: DecodeTuning? = nil, decodeLoader: DecodeLoader = .cpAsyncLines, varlenSchedule: VarlenSchedule = .packed,
    alibiKernels: AlibiKernels = .hopper, decodeCombine: DecodeCombine = .fused
  ) {
    self.forwardTile = forwardTile
    self.backwardTile = backwardTile
    self.forwardKernels = forwardKernels
    self.decodeTile = decodeTile
    self.decodeLoader = decodeLoader
    self.varlenSchedule = varlenSchedule
    self.alibiKernels = alibiKernels
    self.decodeCombine = decodeCombine
  }
}
