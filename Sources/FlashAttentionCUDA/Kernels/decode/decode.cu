// KV-cache attention for decoding (sm80 and later): a few query tokens per sequence against a
// long contiguous or paged cache. Memory-bound, so the design is about bytes in flight, not
// FLOPs:
//
// - One CTA per (block of packed query rows, key split, kv head, sequence). The rows of a block
//   are the query heads of one kv head's group times the query tokens (GQA packing: row
//   r = token * group + head in group), so every K/V row loaded feeds the whole group.
// - Each warp streams its own 16-key tiles (tile w, w + WARPS, ... of the CTA's split) through a
//   private ring of FA_STAGES shared-memory stages with cp.async, 16 bytes per copy, two lanes
//   per key row; a lane looks up its row's page itself (any page size), one tile ahead of the
//   copy, so the page-table read is off the critical path. Warps never wait for each other
//   until the end, where their (max, sum, O) merge exactly in shared memory.
// - S = Q K^T and O += P V run on mma.sync m16n8k16 (the rows of a block are one or two m16
//   tiles; with FA_SWAP at most 8 rows are the MMA's N and the keys its M, S^T = K Q^T and
//   O^T += V^T P^T, decode/swapped_warp.cuh); the softmax is the online one of
//   common/softmax.cuh (lazy in the swapped warp), the mask common/mask.cuh's, aligned to the end
//   of each sequence's keys (read on the device).
// - Keys at or past the sequence's length are never read: their cp.async is a zero-fill, so the
//   K and V rows of a partial last page are 0 in shared memory (P is 0 there too, and no NaN of
//   an unused slot can reach P V), and their scores are -inf before the softmax.
// - With one split the CTA writes O and the LSE; with several, its split's normalized O and LSE
//   in fp32, merged by decode/combine.cu (a second launch) or, with `split_counters` (the fused
//   merge), by the last of the row block's split CTAs to finish: each takes a ticket from the
//   row block's counter after its partials are written, and the one that draws the last ticket
//   merges every split's partials (decode/merge.cuh, the same arithmetic as combine.cu) and
//   leaves the counter at 0 for the next launch.
// - FA_BULK (sm_90 only) swaps the loader: instead of 16-byte cp.async, lanes 0-15 each issue
//   one bulk copy of their key's K row and lanes 16-31 one of its V row (decode/bulk.cuh), and
//   each stage of a warp's ring completes on its own mbarrier (lane 0 arrives with the stage's
//   byte count). Same ring, same math. A key past the sequence's length is still never read:
//   its lane stores zeros into its K or V row of the stage instead of copying (so P V sees
//   0 * 0, never 0 * NaN of a stale or uninitialized row), and its score is -inf as before.
//   Padding columns (FA_D < D_PAD) are zeroed once; no bulk copy writes them.
// - FA_LINES (any arch) keeps cp.async but changes which lane copies which chunk: consecutive
//   lanes take consecutive 16-byte chunks of a row (d 128: lanes 0-15 row r, 16-31 row r + 1), so
//   each copy instruction asks for whole 128-byte lines (4 per instruction at d 128) instead of
//   one 32-byte sector of each of 16 rows (16 lines per instruction, each asked for four times
//   over a tile). A lane no longer copies its own row, so the rows' places (page-table reads,
//   still one per lane) travel by shuffle.
//
// The host prepends: FA_D, FA_DV (multiples of 8), FA_BF16, FA_MASK (0 none, 2 a window with
// run-time bounds; causal is (left, 0)), FA_SOFTCAP, FA_PAGED, FA_WARPS, FA_STAGES (>= 2),
// FA_MT (m16 tiles of packed rows per CTA), FA_BULK (0 cp.async, 1 bulk copies; sm_90 only),
// FA_LINES (with FA_BULK 0: the line-coalesced cp.async mapping), FA_SWAP (1: at most 8 packed
// rows, the swapped-operand warp of decode/swapped_warp.cuh; FA_MT is then 1).
#include "common/mask.cuh"
#include "common/softmax.cuh"
#include "sm80/ptx.cuh"
#include "sm80/online_softmax.cuh"
#include "decode/cache.cuh"
#include "decode/merge.cuh"
#ifndef FA_BULK
#define FA_BULK 0
#endif
#ifndef FA_LINES
#define FA_LINES 0
#endif
#ifndef FA_SWAP
#define FA_SWAP 0
#endif
#if FA_BULK
#include "decode/bulk.cuh"
#endif

#define D_PAD ((FA_D + 15) / 16 * 16)
#define DV_PAD ((FA_DV + 15) / 16 * 16)
// Rows padded by 16 bytes: the eight row addresses of one ldmatrix hit eight bank groups.
#define K_PITCH (D_PAD + 8)
#define V_PITCH (DV_PAD + 8)
#define THREADS (FA_WARPS * 32)
#define ROWS (FA_SWAP ? 8 : 16 * FA_MT)
#define TILE_KEYS 16
// Q fragments stay in registers when they are few (one m16 tile up to d = 128).
#define Q_IN_REGS (FA_MT * D_PAD <= 128)

constexpr MaskKind MASK = MaskKind(FA_MASK);
constexpr bool PAGED = FA_PAGED;
// One stage of a warp's ring: 16 K rows, then 16 V rows.
constexpr int STAGE_ELEMENTS = TILE_KEYS * (K_PITCH + V_PITCH);
constexpr u32 STAGE_BYTES = STAGE_ELEMENTS * 2;
static_assert(FA_STAGES >= 2, "the ring needs a stage in flight beside the one computed");
#if FA_BULK
static_assert(FA_D % 8 == 0 && FA_DV % 8 == 0, "bulk copies move multiples of 16 bytes");
static_assert((K_PITCH * 2) % 16 == 0 && (V_PITCH * 2) % 16 == 0, "bulk copies land on 16-byte aligned rows");
// The mbarriers (one per stage per warp) live past everything else, so the warps' final merge,
// which reuses the ring, never overwrites them. DecodeKey.sharedMemory matches this layout.
constexpr u32 STREAM_BYTES = (ROWS * K_PITCH + FA_WARPS * FA_STAGES * STAGE_ELEMENTS) * 2;
constexpr u32 MERGE_BYTES = (FA_WARPS * ROWS * DV_PAD + 2 * FA_WARPS * ROWS) * 4;
constexpr u32 BARRIER_OFFSET = ((STREAM_BYTES > MERGE_BYTES ? STREAM_BYTES : MERGE_BYTES) + 15) / 16 * 16;
#endif

// Where one lane's key row of a tile lives: its block (page or cache row) and the row in it.
struct RowPlace {
  int block, row;
};

#if FA_LINES
// The line-coalesced copy of one tile's 16 rows of K or V whose rows lie `row_stride` elements
// apart from `src` (one block, consecutive places): slot lane + 32 i is row (lane + 32 i) /
// CHUNKS, chunk (lane + 32 i) % CHUNKS. Where CHUNKS divides 32 a lane keeps its chunk and steps
// 32 / CHUNKS rows a copy: one 64-bit add per copy instead of a multiply. Padding chunks (past
// `DIM`) zero-fill, reading nothing (the address is then the cache's base, `any`).
template <int CHUNKS, int DIM, int PITCH>
__device__ __forceinline__ void copy_rows_affine(u16* dst, const u16* src, i64 row_stride, const u16* any, int lane) {
  if constexpr (32 % CHUNKS == 0) {
    constexpr int ROWS_PER_COPY = 32 / CHUNKS;
    const int c = lane % CHUNKS, r = lane / CHUNKS;
    const bool ok = c * 8 < DIM;
    const u16* from = src + r * row_stride + c * 8;
    const u32 to = smem_u32(dst + r * PITCH + c * 8);
    const i64 step = ROWS_PER_COPY * row_stride;
    #pragma unroll
    for (int i = 0; i < TILE_KEYS / ROWS_PER_COPY; ++i) {
      cp_async16(to + i * ROWS_PER_COPY * PITCH * 2, ok ? from : any, ok);
      from += step;
    }
  } else {
    #pragma unroll
    for (int i = 0; i < TILE_KEYS * CHUNKS / 32; ++i) {
      const int idx = lane + 32 * i, row = idx / CHUNKS, c = idx % CHUNKS;
      const bool ok = c * 8 < DIM;
      cp_async16(smem_u32(dst + row * PITCH + c * 8), ok ? src + row * row_stride + c * 8 : any, ok);
    }
  }
}
#endif

// One warp's share of the CTA: its rows' O and softmax state over the keys it streamed.
struct DecodeWarp {
  float acc_o[FA_MT][DV_PAD / 8][4];
  float acc_s[FA_MT][2][4];
  float row_max[FA_MT][2], row_sum[FA_MT][2];
  float raw_max[FA_MT][2];  // the raw score whose product row_max is (the exact exponent's offset)
  // The query token of each of this thread's rows (row r = token * group + head).
  int token[FA_MT][2];
  int t;  // the column pair of the lane within an mma fragment
  u32 q_base;
#if Q_IN_REGS
  u32 q_frag[FA_MT][D_PAD / 16][4];
#endif

  __device__ __forceinline__ void init(int r0, int group, int lane) {
    t = lane % 4;
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt) {
      #pragma unroll
      for (int i = 0; i < DV_PAD / 8; ++i) acc_o[mt][i][0] = acc_o[mt][i][1] = acc_o[mt][i][2] = acc_o[mt][i][3] = 0.f;
      #pragma unroll
      for (int half = 0; half < 2; ++half) {
        row_max[mt][half] = -FA_INF;
        raw_max[mt][half] = -FA_INF;
        row_sum[mt][half] = 0.f;
        token[mt][half] = (r0 + mt * 16 + half * 8 + lane / 4) / group;
      }
    }
  }

  // The block's packed rows of Q: the ldmatrix base address, and the fragments when they stay
  // in registers.
  __device__ __forceinline__ void load_q(const u16* sQ) {
    const int lane = threadIdx.x % 32;
    q_base = smem_u32(sQ + (lane % 16) * K_PITCH + (lane / 16) * 8);
#if Q_IN_REGS
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int kk = 0; kk < D_PAD / 16; ++kk)
        ldmatrix_x4(q_base + (mt * 16 * K_PITCH + kk * 16) * 2, q_frag[mt][kk][0], q_frag[mt][kk][1],
                    q_frag[mt][kk][2], q_frag[mt][kk][3]);
#endif
  }

  // The ldmatrix lane address of K rows in stage 0 of the warp's ring, as the B operand of Q K^T.
  __device__ __forceinline__ static u32 k_lane_address(const u16* ring, int lane) {
    return smem_u32(ring + ((lane & 7) + ((lane >> 4) << 3)) * K_PITCH + ((lane >> 3) & 1) * 8);
  }

  // The ldmatrix.trans lane address of V rows (`v_rows`, stage 0) as the B operand of P V:
  // matrices (keys 0-7, dims 0-7), (keys 8-15, dims 0-7), (keys 0-7, dims 8-15), (8-15, 8-15).
  __device__ __forceinline__ static u32 v_lane_address(const u16* v_rows, int lane) {
    return smem_u32(v_rows + ((lane & 7) + (((lane >> 3) & 1) << 3)) * V_PITCH + (lane >> 4) * 8);
  }

  // s = softcap * tanh(s * pre).
  __device__ __forceinline__ void apply_softcap(float softcap, float pre) {
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int n = 0; n < 2; ++n)
        #pragma unroll
        for (int e = 0; e < 4; ++e) acc_s[mt][n][e] = softcap * tanh_approx(acc_s[mt][n][e] * pre);
  }

  // S = Q K^T over one 16-key tile whose K rows start at lane address `k_lane`.
  __device__ __forceinline__ void qk(u32 k_lane) {
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int n = 0; n < 2; ++n) acc_s[mt][n][0] = acc_s[mt][n][1] = acc_s[mt][n][2] = acc_s[mt][n][3] = 0.f;
    #pragma unroll
    for (int kk = 0; kk < D_PAD / 16; ++kk) {
      u32 b0, b1, b2, b3;
      ldmatrix_x4(k_lane + kk * 32, b0, b1, b2, b3);
      #pragma unroll
      for (int mt = 0; mt < FA_MT; ++mt) {
        u32 a[4];
#if Q_IN_REGS
        a[0] = q_frag[mt][kk][0]; a[1] = q_frag[mt][kk][1]; a[2] = q_frag[mt][kk][2]; a[3] = q_frag[mt][kk][3];
#else
        ldmatrix_x4(q_base + (mt * 16 * K_PITCH + kk * 16) * 2, a[0], a[1], a[2], a[3]);
#endif
        mma16816(acc_s[mt][0], a[0], a[1], a[2], a[3], b0, b1);
        mma16816(acc_s[mt][1], a[0], a[1], a[2], a[3], b2, b3);
      }
    }
  }

  // Hides the keys of the tile at n0 that a row may not see, then the online softmax: P in
  // place of S, O and the row sums rescaled. `c` is scale·log2(e) (1·log2(e) after a softcap).
  __device__ __forceinline__ void softmax(const Mask<MASK>& mask, int n0, bool masked, float c) {
    if (masked) {
      #pragma unroll
      for (int mt = 0; mt < FA_MT; ++mt)
        #pragma unroll
        for (int half = 0; half < 2; ++half) {
          const ColumnRange keys = mask.key_columns(token[mt][half], n0 + 2 * t);
          #pragma unroll
          for (int n = 0; n < 2; ++n)
            #pragma unroll
            for (int e = 0; e < 2; ++e)
              if (keys.hides(n * 8 + e)) acc_s[mt][n][half * 2 + e] = -FA_INF;
        }
    }
    online_softmax_step(acc_s, acc_o, row_max, raw_max, row_sum, c);
  }

  // O += P V over the tile whose V rows start at lane address `v_lane`: P's accumulator layout
  // is the A-operand layout, so it never leaves registers.
  __device__ __forceinline__ void pv(u32 v_lane) {
    u32 a[FA_MT][4];
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt) {
      a[mt][0] = pack2(acc_s[mt][0][0], acc_s[mt][0][1]);
      a[mt][1] = pack2(acc_s[mt][0][2], acc_s[mt][0][3]);
      a[mt][2] = pack2(acc_s[mt][1][0], acc_s[mt][1][1]);
      a[mt][3] = pack2(acc_s[mt][1][2], acc_s[mt][1][3]);
    }
    #pragma unroll
    for (int nn = 0; nn < DV_PAD / 16; ++nn) {
      u32 b0, b1, b2, b3;
      ldmatrix_x4_trans(v_lane + nn * 32, b0, b1, b2, b3);
      #pragma unroll
      for (int mt = 0; mt < FA_MT; ++mt) {
        mma16816(acc_o[mt][2 * nn], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b0, b1);
        mma16816(acc_o[mt][2 * nn + 1], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b2, b3);
      }
    }
  }

  // The warp's rows for the CTA's merge: max, sum (reduced over the row's quad) and O in
  // row-major fp32 (`o` [ROWS][DV_PAD], `max`/`sum` [ROWS], this warp's slices).
  __device__ __forceinline__ void store_merge(float* o, float* max, float* sum) const {
    const int lane = threadIdx.x % 32;
    #pragma unroll
    for (int mt = 0; mt < FA_MT; ++mt)
      #pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = mt * 16 + half * 8 + lane / 4;
        const float total = quad_sum(row_sum[mt][half]);
        if (t == 0) {
          max[row] = row_max[mt][half];
          sum[row] = total;
        }
        #pragma unroll
        for (int i = 0; i < DV_PAD / 8; ++i)
          *reinterpret_cast<float2*>(o + row * DV_PAD + i * 8 + 2 * t) =
            make_float2(acc_o[mt][i][half * 2], acc_o[mt][i][half * 2 + 1]);
      }
  }
};

#if FA_SWAP
#include "decode/swapped_warp.cuh"
static_assert(FA_MT == 1, "the swapped warp holds one block of 8 rows");
using Warp = DecodeWarpSwapped;
#else
using Warp = DecodeWarp;
#endif

// The fused merge (`split_counters` set, several splits): called by every thread of a split CTA
// once its partials are stored. Thread 0 takes a ticket from the row block's counter with a
// gpu-scope acq_rel atomic after a CTA barrier (the barrier orders every thread's partial stores
// before the release; the CUTLASS semaphore's pattern); atom.inc wraps the counter to 0 on the
// last ticket (num_splits - 1), so a finished launch leaves every counter at 0 for the next one,
// with no memset. The CTA that drew the last ticket has acquired every other split's release,
// and merges the block's rows, one warp per row (decode/merge.cuh, coherent loads). The others
// return. `scratch` is the dynamic shared memory: its first word carries the ticket's verdict
// (the merge above is done reading it by the first barrier).
// Everything is recomputed from the block index and `params` (cheap, after the loop) rather
// than kept live from the kernel's start: passing them in raised the main loop's registers and
// spilled 8 bytes on sm_80 (d 128, 32 rows, paged, masked, softcap).
__device__ __forceinline__ void merge_if_last(const FADecodeParams& params, u16* scratch) {
  const int num_splits = params.num_splits;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int kv_head = blockIdx.y, b = blockIdx.z;
  const int r0 = (blockIdx.x / num_splits) * ROWS;
  const int rows = params.seqlen_q * params.group;
  const i64 rows_total = (i64)params.batch * params.heads_q * params.seqlen_q;
  volatile int* last = reinterpret_cast<volatile int*>(scratch);
  __syncthreads();  // every thread's partial stores happen before thread 0's release
  if (tid == 0) {
    // One counter per (row block, kv head, sequence): the CTAs of one row block are the
    // num_splits consecutive blockIdx.x.
    const int row_blocks = gridDim.x / num_splits;
    const i64 group = ((i64)b * gridDim.y + kv_head) * row_blocks + blockIdx.x / num_splits;
    u32 ticket;
    asm volatile("atom.acq_rel.gpu.global.inc.u32 %0, [%1], %2;"
                 : "=r"(ticket) : "l"(params.split_counters + group), "r"((u32)(num_splits - 1)) : "memory");
    *last = ticket == (u32)(num_splits - 1);
  }
  __syncthreads();  // the verdict, and thread 0's acquire, reach every thread
  if (!*last) return;
  const int group_size = params.group;
  const int block_rows = min(ROWS, rows - r0);
  for (int row = warp; row < block_rows; row += FA_WARPS) {
    const int r = r0 + row;
    const int token = r / group_size, head = kv_head * group_size + (r - token * group_size);
    u16* out_row = params.o + b * params.o_strides.batch + token * params.o_strides.row + head * params.o_strides.head;
    const float lse = merge_split_row<true>(
      params.o_partial, params.lse_partial, rows_total, ((i64)b * params.heads_q + head) * params.seqlen_q + token,
      num_splits, lane, out_row);
    if (lane == 0) params.lse[b * params.lse_strides.batch + head * params.lse_strides.head + token] = lse;
  }
}

extern "C" __global__ void __launch_bounds__(THREADS, 1)
flash_decode(const __grid_constant__ FADecodeParams params) {
  const u16* __restrict__ q = params.q;
  const u16* __restrict__ k_cache = params.k_cache;
  const u16* __restrict__ v_cache = params.v_cache;
  extern __shared__ __align__(128) u16 smem[];
  u16* sQ = smem;
  u16* ring = sQ + ROWS * K_PITCH;

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int num_splits = params.num_splits;
  const int split = blockIdx.x % num_splits;
  const int r0 = (blockIdx.x / num_splits) * ROWS;
  const int kv_head = blockIdx.y, b = blockIdx.z;
  const int group = params.group;
  const int rows = params.seqlen_q * group;  // packed rows of this (sequence, kv head)

  const CacheIndex cache(params.index);
  const int keys = cache.cached_tokens(b) + params.index.seqlen_new;
  const int cache_row = PAGED ? 0 : cache.cache_row(b);
  const Mask<MASK> mask(params.seqlen_q, keys, params.window_left, params.window_right);

  // The keys some row of this block can see, [lo, hi), cut into 16-key tiles, the tiles into
  // num_splits near-equal runs; this CTA takes run `split`, its warps every FA_WARPS-th tile.
  const int first_token = r0 / group;
  const int last_token = (min(r0 + ROWS, rows) - 1) / group;
  int lo = 0, hi = keys;
  if (mask.left >= 0) lo = max(0, first_token + mask.offset - mask.left);
  if (mask.right >= 0) hi = min(hi, last_token + mask.offset + mask.right + 1);
  const int tiles = hi > lo ? (hi - lo + TILE_KEYS - 1) / TILE_KEYS : 0;
  // The run's bounds in 32-bit arithmetic while tiles * num_splits fits (every cache below 2^31 /
  // 8 keys at 128 splits): a 64-bit division costs ~70 instructions on the path to the first copy.
  int split_begin, split_end;
  if (tiles <= 0x7fffffff / num_splits) {
    split_begin = (int)((u32)(split * tiles) / (u32)num_splits);
    split_end = (int)((u32)((split + 1) * tiles) / (u32)num_splits);
  } else {
    split_begin = (int)((i64)split * tiles / num_splits);
    split_end = (int)((i64)(split + 1) * tiles / num_splits);
  }
  const int my_first = split_begin + warp;
  const int my_count = my_first < split_end ? (split_end - my_first + FA_WARPS - 1) / FA_WARPS : 0;

  // Q: the block's packed rows (zero past the last row and past FA_D), one group of copies.
  {
    constexpr int CHUNKS = D_PAD / 8;
    const u16* q_batch = q + b * params.q_strides.batch;
    for (int idx = tid; idx < ROWS * CHUNKS; idx += THREADS) {
      const int row = idx / CHUNKS, chunk = idx % CHUNKS;
      const int r = r0 + row;
      const bool valid = r < rows && chunk * 8 < FA_D;
      const int token = r / group, head = kv_head * group + (r - token * group);
      const u16* src = valid ? q_batch + token * params.q_strides.row + head * params.q_strides.head + chunk * 8 : q;
      cp_async16(smem_u32(sQ + row * K_PITCH + chunk * 8), src, valid);
    }
    cp_async_commit();
  }

  // This lane's key row in a tile (two lanes per row, chunks alternating between them) and the
  // tile's first key; tile k of this warp starts at key lo + (my_first + k * FA_WARPS) * 16.
  const int lane_row = lane % TILE_KEYS, lane_half = lane / TILE_KEYS;
  auto tile_key = [&](int k) { return lo + (my_first + k * FA_WARPS) * TILE_KEYS; };
  // The place of the lane's row in tile k (the page-table read, for a paged cache): issued one
  // tile before the copy that needs it. Rows at or past `keys` are never looked up.
  auto place = [&](int k) -> RowPlace {
    RowPlace p{0, 0};
    const int key = tile_key(k) + lane_row;
    if (k < my_count && key < keys) cache.locate<PAGED>(b, cache_row, key, p.block, p.row);
    return p;
  };
  u16* my_ring = ring + warp * FA_STAGES * STAGE_ELEMENTS;
#if FA_BULK
  // This warp's barriers, one per stage, initialized by lane 0 before any copy of the warp.
  const u32 my_bars = smem_u32(reinterpret_cast<unsigned char*>(smem) + BARRIER_OFFSET) + warp * FA_STAGES * 8;
  if (lane == 0) {
    #pragma unroll
    for (int s = 0; s < FA_STAGES; ++s) bulk_mbar_init(my_bars + s * 8, 1);
    bulk_mbar_init_fence();
  }
  // Padding columns of every row of the warp's ring: zero once, never written by a copy.
  if (D_PAD != FA_D || DV_PAD != FA_DV) {
    for (int r = lane; r < FA_STAGES * TILE_KEYS; r += 32) {
      u16* sK = my_ring + (r / TILE_KEYS) * STAGE_ELEMENTS + (r % TILE_KEYS) * K_PITCH;
      u16* sV = my_ring + (r / TILE_KEYS) * STAGE_ELEMENTS + TILE_KEYS * K_PITCH + (r % TILE_KEYS) * V_PITCH;
      for (int c = FA_D; c < D_PAD; ++c) sK[c] = 0;
      for (int c = FA_DV; c < DV_PAD; ++c) sV[c] = 0;
    }
  }
  __syncwarp();  // the barriers exist before any lane's copy names them
  // Copies tile k (its lane rows at `p`) into `stage`: lane l < 16 copies K row l, lane 16 + l
  // V row l, one bulk copy each; lane 0 arrives on the stage's barrier expecting the bytes of
  // the tile's keys inside the sequence. A row past the sequence's keys is zeroed instead (only
  // the sequence's last tile has one, and no later copy of this warp lands in its stage).
  auto issue = [&](int k, int stage, RowPlace p) {
    const int first = tile_key(k);
    const int valid_rows = min(max(keys - first, 0), TILE_KEYS);
    const u32 bar = my_bars + stage * 8;
    if (lane == 0) bulk_mbar_arrive_expect(bar, (u32)valid_rows * (FA_D + FA_DV) * 2);
    // The copies start after the arrival, so the tx-count never runs ahead of the expectation
    // (called by the whole warp: `k < my_count` is the same on every lane).
    __syncwarp();
    const bool is_k = lane_half == 0;
    u16* dst = my_ring + stage * STAGE_ELEMENTS + (is_k ? lane_row * K_PITCH : TILE_KEYS * K_PITCH + lane_row * V_PITCH);
    if (lane_row < valid_rows) {
      const u16* src = is_k ? k_cache + cache_offset(params.k_strides, p.block, p.row, kv_head)
                            : v_cache + cache_offset(params.v_strides, p.block, p.row, kv_head);
      bulk_copy_g2s(smem_u32(dst), src, (is_k ? FA_D : FA_DV) * 2, bar);
    } else {
      const int words = (is_k ? FA_D : FA_DV) / 8;
      for (int c = 0; c < words; ++c) reinterpret_cast<uint4*>(dst)[c] = make_uint4(0, 0, 0, 0);
      bulk_fence_proxy();
    }
  };
#elif FA_LINES
  // Copies tile k into `stage`: slot idx = lane + 32 i of the tile's 16 x (D_PAD / 8) chunks is
  // row idx / CHUNKS_K, chunk idx % CHUNKS_K (then the same over V), so one instruction covers
  // whole rows. Lane r computes row r's offsets from its place `p` (as the two-lane mapping
  // does) and the copying lanes take them by shuffle; zero-filled past the sequence's keys and
  // past the head dims, reading nothing there (the address is then the cache's base). The host
  // uses it up to d = d_v = 128 (above, the extra live offsets spill at d = 256).
  //
  // Most tiles have their 16 rows at consecutive places of one block (a contiguous cache's whole
  // tiles; a paged cache's tiles inside one page): row r's offset is then row 0's plus r row
  // strides, and no offset travels by shuffle (r27's ncu: the shuffles and their 64-bit address
  // arithmetic were over half of the loop's instructions). The others (a tile across pages,
  // the sequence's last tile) take the shuffles.
  auto issue = [&](int k, int stage, RowPlace p) {
    constexpr int CHUNKS_K = D_PAD / 8, CHUNKS_V = DV_PAD / 8;
    static_assert((TILE_KEYS * CHUNKS_K) % 32 == 0 && (TILE_KEYS * CHUNKS_V) % 32 == 0, "whole instructions");
    const int first = tile_key(k);
    u16* sK = my_ring + stage * STAGE_ELEMENTS;
    u16* sV = sK + TILE_KEYS * K_PITCH;
    const int block0 = __shfl_sync(0xffffffffu, p.block, 0), row0 = __shfl_sync(0xffffffffu, p.row, 0);
    const bool affine = first + TILE_KEYS <= keys && __all_sync(0xffffffffu, p.block == block0 && p.row == row0 + lane_row);
    if (affine) {
      copy_rows_affine<D_PAD / 8, FA_D, K_PITCH>(
        sK, k_cache + cache_offset(params.k_strides, block0, row0, kv_head), params.k_strides.row, k_cache, lane);
      copy_rows_affine<DV_PAD / 8, FA_DV, V_PITCH>(
        sV, v_cache + cache_offset(params.v_strides, block0, row0, kv_head), params.v_strides.row, v_cache, lane);
      return;
    }
    const i64 k_row = cache_offset(params.k_strides, p.block, p.row, kv_head);
    const i64 v_row = cache_offset(params.v_strides, p.block, p.row, kv_head);
    #pragma unroll
    for (int i = 0; i < TILE_KEYS * CHUNKS_K / 32; ++i) {
      const int idx = lane + 32 * i, row = idx / CHUNKS_K, c = idx % CHUNKS_K;
      const i64 offset = __shfl_sync(0xffffffffu, k_row, row);
      const bool ok = first + row < keys && c * 8 < FA_D;
      cp_async16(smem_u32(sK + row * K_PITCH + c * 8), k_cache + (ok ? offset + c * 8 : 0), ok);
    }
    #pragma unroll
    for (int i = 0; i < TILE_KEYS * CHUNKS_V / 32; ++i) {
      const int idx = lane + 32 * i, row = idx / CHUNKS_V, c = idx % CHUNKS_V;
      const i64 offset = __shfl_sync(0xffffffffu, v_row, row);
      const bool ok = first + row < keys && c * 8 < FA_DV;
      cp_async16(smem_u32(sV + row * V_PITCH + c * 8), v_cache + (ok ? offset + c * 8 : 0), ok);
    }
  };
#else
  // Copies tile k (its lane rows at `p`) into `stage`: 16-byte chunks, zero-filled past the
  // sequence's keys and past the head dims. A zero-fill reads nothing; its address is still one
  // inside the cache (block 0, row 0 for a row past the keys; column 0 for padding).
  auto issue = [&](int k, int stage, RowPlace p) {
    const bool valid = tile_key(k) + lane_row < keys;
    const i64 k_offset = cache_offset(params.k_strides, p.block, p.row, kv_head);
    const i64 v_offset = cache_offset(params.v_strides, p.block, p.row, kv_head);
    u16* sK = my_ring + stage * STAGE_ELEMENTS + lane_row * K_PITCH;
    u16* sV = my_ring + stage * STAGE_ELEMENTS + TILE_KEYS * K_PITCH + lane_row * V_PITCH;
    #pragma unroll
    for (int i = 0; i < D_PAD / 16; ++i) {
      const int c = 2 * i + lane_half;
      const bool ok = valid && c * 8 < FA_D;
      cp_async16(smem_u32(sK + c * 8), k_cache + k_offset + (ok ? c * 8 : 0), ok);
    }
    #pragma unroll
    for (int i = 0; i < DV_PAD / 16; ++i) {
      const int c = 2 * i + lane_half;
      const bool ok = valid && c * 8 < FA_DV;
      cp_async16(smem_u32(sV + c * 8), v_cache + v_offset + (ok ? c * 8 : 0), ok);
    }
  };
#endif

  // The prologue: the places of the first FA_STAGES tiles, then FA_STAGES - 1 tiles in flight.
  RowPlace places[FA_STAGES - 1];
  #pragma unroll
  for (int s = 0; s < FA_STAGES - 1; ++s) places[s] = place(s);
  RowPlace next_place = place(FA_STAGES - 1);
  #pragma unroll
  for (int s = 0; s < FA_STAGES - 1; ++s) {
    if (s < my_count) issue(s, s, places[s]);
#if !FA_BULK
    cp_async_commit();
#endif
  }

  Warp w;
  w.init(r0, group, lane);
  // ldmatrix lane addresses in stage 0 of this warp's ring (each warp's operand patterns).
  const u32 k_lane = Warp::k_lane_address(my_ring, lane);
  const u32 v_lane = Warp::v_lane_address(my_ring + TILE_KEYS * K_PITCH, lane);

#if FA_BULK
  cp_async_wait<0>();  // this thread's Q copies (the only cp.async groups)
#else
  cp_async_wait<FA_STAGES - 1>();  // this thread's Q copies
#endif
  __syncthreads();                 // everyone's
  w.load_q(sQ);
#if FA_SOFTCAP
  const float pre = params.scale / params.softcap;  // s = softcap * tanh(qk * scale / softcap)
  const float c = FA_LOG2E;
#else
  const float c = params.scale * FA_LOG2E;
#endif

  int read_stage = 0, write_stage = FA_STAGES - 1;
#if FA_BULK
  u32 phases = 0;  // bit s: the parity of stage s's barrier phase that the next wait waits for
#endif
  for (int j = 0; j < my_count; ++j) {
#if FA_BULK
    bulk_mbar_wait(my_bars + read_stage * 8, (phases >> read_stage) & 1u);  // tile j's rows
    phases ^= 1u << read_stage;
    __syncwarp();  // every lane's zeroed rows; and every lane is done with tile j - 1's stage
#else
    cp_async_wait<FA_STAGES - 2>();  // tile j's copies of this thread
    __syncwarp();                    // of every lane; and every lane is done with tile j - 1's stage
#endif
    const int k = j + FA_STAGES - 1;
    if (k < my_count) {
      // The copies take the place first, then the next tile's page-table read lands in the same
      // registers: no copy of a pending load, so nothing waits for it before the next tile.
      issue(k, write_stage, next_place);
      next_place = place(k + 1);
    }
#if !FA_BULK
    cp_async_commit();
#endif
    write_stage = write_stage + 1 == FA_STAGES ? 0 : write_stage + 1;

    const int n0 = tile_key(j);
    w.qk(k_lane + read_stage * STAGE_BYTES);
#if FA_SOFTCAP
    w.apply_softcap(params.softcap, pre);
#endif
    // Only tiles with a hidden pair are masked: the sequence's last tile and window edges.
    bool masked = n0 + TILE_KEYS > keys;
    if (mask.right >= 0 && n0 + TILE_KEYS - 1 > first_token + mask.offset + mask.right) masked = true;
    if (mask.left >= 0 && n0 < last_token + mask.offset - mask.left) masked = true;
    w.softmax(mask, n0, masked, c);
    w.pv(v_lane + read_stage * STAGE_BYTES);
    read_stage = read_stage + 1 == FA_STAGES ? 0 : read_stage + 1;
  }

  // The warps' results, merged exactly: O = sum_w 2^(m_w - m) O_w / sum_w 2^(m_w - m) l_w.
  cp_async_wait<0>();
  __syncthreads();  // every warp is done with Q and its ring, which the merge reuses
  float* sO = reinterpret_cast<float*>(smem);  // [warp][row][DV_PAD]
  float* sMax = sO + FA_WARPS * ROWS * DV_PAD;  // [warp][row]
  float* sSum = sMax + FA_WARPS * ROWS;
  w.store_merge(sO + warp * ROWS * DV_PAD, sMax + warp * ROWS, sSum + warp * ROWS);
  __syncthreads();

  const i64 rows_total = (i64)params.batch * params.heads_q * params.seqlen_q;
  for (int idx = tid; idx < ROWS * (DV_PAD / 4); idx += THREADS) {
    const int row = idx / (DV_PAD / 4), col = (idx % (DV_PAD / 4)) * 4;
    const int r = r0 + row;
    if (r >= rows || col >= FA_DV) continue;
    float m = -FA_INF;
    #pragma unroll
    for (int v = 0; v < FA_WARPS; ++v) m = fmaxf(m, sMax[v * ROWS + row]);
    const float base = exponent_offset(m);
    float l = 0.f, o[4] = {0.f, 0.f, 0.f, 0.f};
    #pragma unroll
    for (int v = 0; v < FA_WARPS; ++v) {
      const float f = ex2(sMax[v * ROWS + row] - base);  // 0 for a warp that saw no key of the row
      l += f * sSum[v * ROWS + row];
      const float4 part = *reinterpret_cast<const float4*>(sO + (v * ROWS + row) * DV_PAD + col);
      o[0] += f * part.x; o[1] += f * part.y; o[2] += f * part.z; o[3] += f * part.w;
    }
    const float inv = inverse_sum(l);
    const int token = r / group, head = kv_head * group + (r - token * group);
    if (num_splits == 1) {
      u16* __restrict__ out = params.o;
      u16* dst = out + b * params.o_strides.batch + token * params.o_strides.row + head * params.o_strides.head + col;
      *reinterpret_cast<uint2*>(dst) = make_uint2(pack2(o[0] * inv, o[1] * inv), pack2(o[2] * inv, o[3] * inv));
      if (col == 0) {
        float* __restrict__ lse = params.lse;
        lse[b * params.lse_strides.batch + head * params.lse_strides.head + token] = row_lse(m, l);
      }
    } else {
      const i64 partial_row = split * rows_total + ((i64)b * params.heads_q + head) * params.seqlen_q + token;
      float* __restrict__ o_partial = params.o_partial;
      *reinterpret_cast<float4*>(o_partial + partial_row * FA_DV + col) = make_float4(o[0] * inv, o[1] * inv, o[2] * inv, o[3] * inv);
      if (col == 0) {
        float* __restrict__ lse_partial = params.lse_partial;
        lse_partial[partial_row] = row_lse(m, l);
      }
    }
  }
  if (num_splits > 1 && params.split_counters != nullptr) merge_if_last(params, smem);
}
