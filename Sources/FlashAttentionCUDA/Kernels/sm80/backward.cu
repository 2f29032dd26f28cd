#include "common/alibi.cuh"
#include "common/dropout.cuh"
#include "common/mask.cuh"
#include "common/math.cuh"
#include "common/varlen.cuh"
#include "sm80/ptx.cuh"
#include "sm80/tiles.cuh"

constexpr MaskKind MASK = MaskKind(FA_MASK);
// FlashAttention-2 backward, three kernels:
//   flash_backward_preprocess  D = rowsum(dO * O) and the LSE in log2 units, per query row;
//   flash_backward_kv          one CTA per (FA_BN keys, kv head, batch): steps over the query
//                              blocks (FA_BM rows) of every query head of the GQA group, and per
//                              step recomputes S = Q K^T and dP = dO V^T, stages P and dS in
//                              shared memory (16-bit), then accumulates dV += P^T dO and
//                              dK += dS^T Q in registers and adds dQ += dS K into an fp32
//                              buffer with atomics;
//   flash_backward_convert_dq  dQ = scale * accumulator, to the storage dtype.
// The P/dS round trip through shared memory is what lets every GEMM use a large warp tile: the
// FA_WARPS warps form a different 2-D grid for each GEMM (FA_BWD_WM_S x .. over queries x keys
// for S and dP, FA_BWD_WN_KV x .. over keys x head dim for dK and dV, FA_BWD_WM_Q x .. over
// queries x head dim for dQ), so each ldmatrix feeds two or more MMAs. With FA_BWD_DOUBLE the
// next step's Q, dO, LSE and D are prefetched with cp.async into a second buffer.
// With FA_VARLEN the batch index selects a packed sequence (common/varlen.cuh): its own lengths
// bound the tiles and the mask, while the scratch (LSE2, D, the dQ accumulator) keeps
// seqlen_q = the longest sequence's rows per (batch, head), as for a padded batch.
#define THREADS (FA_WARPS * 32)
// Head dims padded to 32 so that up to four warps split them into tiles of whole n8 columns.
#define D_PAD ((FA_D + 31) / 32 * 32)
#define DV_PAD ((FA_DV + 31) / 32 * 32)
#define QK_PITCH (D_PAD + 8)
#define V_PITCH (DV_PAD + 8)
#define P_PITCH (FA_BN + 8)

// The dQ accumulator (fp32). FA_DQ_BULK 0: [batch, sq, hq, FA_D], each thread adds its MMA
// fragments element pair by element pair (red.global). FA_DQ_BULK 1 (sm_90 and later): each warp
// stages its TM_Q x TD_Q piece of a step's dQ in shared memory and adds the whole piece with one
// bulk reduction (cp.reduce.async.bulk), which the TMA unit carries out while the warp goes on
// with the next step; the accumulator is laid out in those pieces, [batch, hq, query block,
// warp, TM_Q x TD_Q], and within a piece the 8-column chunks of row r are permuted (chunk index
// XOR r mod DQ_SWIZZLE) so that the fragment stores of one warp do not conflict in shared memory
// banks. The pieces live in a buffer of their own (FA_DQ_BULK 1) or, where that does not fit
// beside two Q/dO buffers (d = 256), in the step's own Q and dO buffer once every warp is done
// with it (FA_DQ_BULK 2; the next loads into that buffer wait until the pieces have been read).
// The convert kernel is compiled with the same tile and undoes the layout.
#define WD_Q (FA_WARPS / FA_BWD_WM_Q)
#define TM_Q (FA_BM / FA_BWD_WM_Q)
#define TD_Q (D_PAD / WD_Q)
#define DQ_PIECE (TM_Q * TD_Q)
#define DQ_SWIZZLE ((TD_Q / 8) % 8 == 0 ? 8 : (TD_Q / 8) % 4 == 0 ? 4 : (TD_Q / 8) % 2 == 0 ? 2 : 1)
#if FA_DQ_BULK
#include "common/dq_pieces.cuh"
// Element (r, c) of a piece (r < TM_Q, c < TD_Q), in floats from the piece's start.
__device__ __forceinline__ int dq_piece_offset(int r, int c) {
  return r * TD_Q + (c ^ ((r & (DQ_SWIZZLE - 1)) * 8));
}
// The piece of warp `warp` for query block `block` of (batch, head), in pieces from the start.
__device__ __forceinline__ i64 dq_piece_index(int batch, int head, int hq, int sq, int block, int warp) {
  return dq_piece_number(batch, head, hq, sq, FA_BM, block, FA_WARPS, warp);
}
// Where the accumulator holds dQ's row i, head h, column c of batch entry `batch` (the convert's
// inverse of the layout).
__device__ __forceinline__ const float* dq_piece_element(const float* accum, int batch, int h, int hq, int sq, int i,
                                                         int c) {
  const int r = i % FA_BM, warp = (r / TM_Q) * WD_Q + c / TD_Q;
  return accum + dq_piece_index(batch, h, hq, sq, i / FA_BM, warp) * DQ_PIECE + dq_piece_offset(r % TM_Q, c % TD_Q);
}
#endif

#ifdef FA_ENTRY_flash_backward_preprocess
// |LSE| past which a row's D comes from its scores (exact_row_delta) rather than from O. Ordinary
// attention stays far below it (|LSE| is about ln(seqlen_k) plus the largest score); past it the
// scale that such scores need makes D's error count (issue #16). The CPU backward uses the same
// threshold (FlashBackward.exactStatisticsThreshold).
#define FA_EXACT_D_LSE 64.f

// D for a row with scores far beyond ordinary attention's. D = rowsum(dO * O) carries the 16-bit
// rounding of O (times |dO|), and dS = P (dP - D) then dQ = scale dS K multiply D's error by the
// scale, which such scores make large: 6-30x a standard attention's dQ error at |scale s| = 1e4.
// Here D = sum_j P_j dP_j / sum_j P_j from the scores, with P_j = 2^(s_j c - lse2) formed as the
// key/value kernels form it and dP_j = dO . v_j. Dividing by sum_j P_j cancels the factor that
// lse2's float32 rounding puts on every P of the row (up to 1e-3 at |LSE| = 1e4): with it, a
// one-hot row gives dS = 0 as it should, where the factor alone would leave dS = -eps dP.
// A given LSE that is not this row's own softmax (a block of a longer one: ring attention passes
// the merged LSE) keeps `from_o`, as the backward's contract says; the sum tells them apart.
// One warp walks the row's visible keys, lanes splitting the head dims, a butterfly summing each
// dot product: a scalar pass over the keys (a forward's work without tensor cores), only for
// such rows. Mask, softcap, ALiBi and dropout are read at run time: they cost nothing elsewhere.
__device__ __forceinline__ float exact_row_delta(
    const FABackwardPreprocessParams& params, int batch, int head, int row, SequenceRows seq_q,
    const u16* __restrict__ pd, float lse2, float from_o, int lane) {
  constexpr int CQ = (FA_D + 31) / 32, CV = (FA_DV + 31) / 32;
  const SequenceRows seq_k = sequence_rows(params.cu_seqlens_k, params.seqused_k, batch, params.seqlen_k);
  const int kv_head = head / params.group;
  const u16* __restrict__ pq = params.q + batch * params.q_strides.batch + head * params.q_strides.head
      + (i64)(seq_q.start + row) * params.q_strides.row;
  const u16* __restrict__ k = params.k + batch * params.k_strides.batch + kv_head * params.k_strides.head
      + (i64)seq_k.start * params.k_strides.row;
  const u16* __restrict__ v = params.v + batch * params.v_strides.batch + kv_head * params.v_strides.head
      + (i64)seq_k.start * params.v_strides.row;
  float qv[CQ], dov[CV];
  #pragma unroll
  for (int i = 0; i < CQ; ++i) qv[i] = lane + 32 * i < FA_D ? to_float(pq[lane + 32 * i]) : 0.f;
  #pragma unroll
  for (int i = 0; i < CV; ++i) dov[i] = lane + 32 * i < FA_DV ? to_float(pd[lane + 32 * i]) : 0.f;
  const Mask<MaskKind::window> mask(seq_q.used, seq_k.used, params.window_left, params.window_right);
  const ColumnRange keys = mask.key_columns(row, 0);
  const int first = max(keys.lo, 0), last = min(keys.hi, seq_k.used - 1);
  // The key/value kernels' units: raw q.k, or softcap * tanh(scale q.k / softcap) with the
  // scale then folded in; ALiBi's slope divided by that unit (common/alibi.cuh).
  const bool capped = params.softcap > 0.f;
  const float pre = capped ? params.scale / params.softcap : 0.f;
  const float scale_log2 = capped ? FA_LOG2E : params.scale * FA_LOG2E;
  // The kernels' own Alibi, from the slope's value (0 without slopes; a pointer to a local zero
  // cost the kernel a stack frame).
  const bool biased = params.alibi_slopes != nullptr;
  const Alibi alibi(biased ? params.alibi_slopes[batch * params.alibi_batch_stride + head] : 0.f,
                    capped ? 1.f : params.scale, seq_q.used, seq_k.used);
  const bool dropped = params.dropout.keep_scale > 0.f;
  const Dropout dropout(params.dropout, batch, head);
  float sum_p = 0.f, sum_pdp = 0.f;
  for (int j = first; j <= last; ++j) {
    const u16* __restrict__ kj = k + (i64)j * params.k_strides.row;
    const u16* __restrict__ vj = v + (i64)j * params.v_strides.row;
    float s = 0.f, dp = 0.f;
    #pragma unroll
    for (int i = 0; i < CQ; ++i) if (lane + 32 * i < FA_D) s += qv[i] * to_float(kj[lane + 32 * i]);
    #pragma unroll
    for (int i = 0; i < CV; ++i) if (lane + 32 * i < FA_DV) dp += dov[i] * to_float(vj[lane + 32 * i]);
    #pragma unroll
    for (int off = 16; off > 0; off /= 2) {
      s += __shfl_xor_sync(0xffffffff, s, off);
      dp += __shfl_xor_sync(0xffffffff, dp, off);
    }
    if (capped) s = params.softcap * tanh_approx(s * pre);
    if (biased) s += alibi.bias(row, j);
    const float p = ex2(s * scale_log2 - lse2);
    sum_p += p;
    // With dropout, D = sum_j P_j Z_j dP_j (Z the keep factor), still over sum_j P_j.
    sum_pdp += dropped ? p * dp * dropout.one(row, j) : p * dp;
  }
  // sum_p = 2^(this row's own lse2 - the given lse2): 1 up to the scores' float32 rounding (a
  // few units of 2^-23 |lse2|) for the row's own LSE; a merged LSE is larger by ln(1 + the other
  // blocks' mass). NaN anywhere fails the test and keeps from_o, which is NaN too.
  const bool own = sum_p > 0.f && fabsf(lg2(sum_p)) <= fabsf(lse2) * 0x1p-18f;
  return own ? sum_pdp / sum_p : from_o;
}

// Lanes of a warp split a row into 8-column chunks (LANES_PER_ROW lanes a row, the next power of
// two at or above the chunks; ROWS_PER_LOAD rows per warp-wide load), and each warp takes
// FA_PRE_ROWS consecutive rows (FlashAttention2Key.preprocessRowsPerWarp), loading all of them
// (O, dO, the LSE) before it sums any: 16-byte loads where O's and dO's addresses and strides
// allow (else the same chunks element by element), so a warp has FA_PRE_ROWS / ROWS_PER_LOAD
// 16-byte loads per lane and tensor in flight. A block of FA_PRE_WARPS warps covers
// FA_PRE_WARPS * FA_PRE_ROWS rows. With 2-byte loads of one column per lane and four rows a warp,
// the pass read O and dO at 1.2-2.0 TB/s (r26, d 64-128; 86-96 registers).
// Past 256 columns (32 chunks) a lane holds CHUNKS_PER_LANE chunks of its row, 32 apart.
#define PRE_CHUNKS ((FA_DV + 7) / 8)
#define LANES_PER_ROW (PRE_CHUNKS <= 1 ? 1 : PRE_CHUNKS <= 2 ? 2 : PRE_CHUNKS <= 4 ? 4 : PRE_CHUNKS <= 8 ? 8 : PRE_CHUNKS <= 16 ? 16 : 32)
#define CHUNKS_PER_LANE ((PRE_CHUNKS + 31) / 32)
#define ROWS_PER_LOAD (32 / LANES_PER_ROW)
#define PRE_LOADS ((FA_PRE_ROWS + ROWS_PER_LOAD - 1) / ROWS_PER_LOAD)
static_assert(PRE_LOADS * ROWS_PER_LOAD == FA_PRE_ROWS, "rows per warp: a multiple of the rows per load");

// This lane's 8 columns (chunk `chunk`) of a row at `row` (16-bit values, two a word; zero past
// FA_DV): one 16-byte load when `whole`, else element by element.
__device__ __forceinline__ uint4 load_chunk(const u16* __restrict__ row, int chunk, bool whole) {
  const int c = chunk * 8;
  if (c + 8 <= FA_DV && whole) return *reinterpret_cast<const uint4*>(row + c);
  u32 w[4] = {0u, 0u, 0u, 0u};
  #pragma unroll
  for (int e = 0; e < 8; ++e)
    if (c + e < FA_DV) w[e / 2] |= (u32)row[c + e] << (16 * (e % 2));
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// The dot product of two chunks, in float32.
__device__ __forceinline__ float chunk_dot(uint4 a, uint4 b) {
  float a0, a1, b0, b1, sum = 0.f;
  unpack2(a.x, a0, a1); unpack2(b.x, b0, b1); sum = fmaf(a0, b0, sum); sum = fmaf(a1, b1, sum);
  unpack2(a.y, a0, a1); unpack2(b.y, b0, b1); sum = fmaf(a0, b0, sum); sum = fmaf(a1, b1, sum);
  unpack2(a.z, a0, a1); unpack2(b.z, b0, b1); sum = fmaf(a0, b0, sum); sum = fmaf(a1, b1, sum);
  unpack2(a.w, a0, a1); unpack2(b.w, b0, b1); sum = fmaf(a0, b0, sum); sum = fmaf(a1, b1, sum);
  return sum;
}

extern "C" __global__ void __launch_bounds__(FA_PRE_WARPS * 32, 2)
flash_backward_preprocess(const __grid_constant__ FABackwardPreprocessParams params) {
  const u16* __restrict__ o = params.o;
  const u16* __restrict__ dout = params.dout;
  const float* __restrict__ lse = params.lse;
  float* __restrict__ lse2_out = params.lse2;
  float* __restrict__ delta_out = params.delta;
  const i64 o_bs = params.o_strides.batch, o_rs = params.o_strides.row, o_hs = params.o_strides.head;
  const i64 do_bs = params.dout_strides.batch, do_rs = params.dout_strides.row, do_hs = params.dout_strides.head;
  const i64 lse_bs = params.lse_strides.batch, lse_hs = params.lse_strides.head;
  const int sq = params.seqlen_q, hq = params.heads_q;
  const int row0 = (blockIdx.x * FA_PRE_WARPS + threadIdx.x / 32) * FA_PRE_ROWS;
  const int lane = threadIdx.x % 32;
  const int chunk = lane % LANES_PER_ROW, sub = lane / LANES_PER_ROW;  // this lane's chunk, and row within a load
  const int head = blockIdx.y, batch = blockIdx.z;
  SequenceRows seq;
  if (FA_VARLEN && params.packed_rows > 0) {
    // Packed scratch: every packed row, no sequence lookup (rows of no sequence are never read).
    seq.start = 0;
    seq.used = params.packed_rows;
  } else {
    seq = sequence_rows(params.cu_seqlens_q, params.seqused_q, batch, sq);
  }
  if (row0 >= seq.used) return;  // warp-uniform: every row of the warp is past the sequence
  const u16* po = o + batch * o_bs + head * o_hs + (i64)(seq.start + row0) * o_rs;
  const u16* pd = dout + batch * do_bs + head * do_hs + (i64)(seq.start + row0) * do_rs;
  const float* pl = lse + batch * lse_bs + head * lse_hs + seq.start + row0;
  // A row's statistics, LSE2 and D, into the scratch.
  auto write_stats = [&](int row, float l2, float d) {
    const i64 idx = stats_row(FA_VARLEN ? params.packed_rows : 0, batch, hq, head, sq, seq.start, row);
    lse2_out[idx] = l2;
    delta_out[idx] = d;
  };
  // 16-byte loads need 16-byte aligned rows: both bases and every stride a multiple of 8.
  const bool whole = ((unsigned long long)po % 16 == 0) && ((unsigned long long)pd % 16 == 0) && o_rs % 8 == 0
                     && do_rs % 8 == 0;
  // Every load first; lanes past FA_DV's chunks and rows past the sequence load nothing.
  uint4 ov[PRE_LOADS][CHUNKS_PER_LANE], dv[PRE_LOADS][CHUNKS_PER_LANE];
  float lv[PRE_LOADS];
  #pragma unroll
  for (int j = 0; j < PRE_LOADS; ++j) {
    const int r = j * ROWS_PER_LOAD + sub;
    #pragma unroll
    for (int c = 0; c < CHUNKS_PER_LANE; ++c) {
      const bool live = row0 + r < seq.used && chunk + 32 * c < PRE_CHUNKS;
      ov[j][c] = live ? load_chunk(po + (i64)r * o_rs, chunk + 32 * c, whole) : make_uint4(0u, 0u, 0u, 0u);
      dv[j][c] = live ? load_chunk(pd + (i64)r * do_rs, chunk + 32 * c, whole) : make_uint4(0u, 0u, 0u, 0u);
    }
    lv[j] = row0 + r < seq.used ? pl[r] : 0.f;
  }
  // D from O for every row; rows with scores far beyond ordinary attention's (rare) are marked
  // (bit j * 32 + lane of their chunk-0 lane) and take exact_row_delta, a whole warp a row,
  // afterwards.
  float sums[PRE_LOADS];
  u32 exact[PRE_LOADS];
  bool any_exact = false;
  #pragma unroll
  for (int j = 0; j < PRE_LOADS; ++j) {
    const int row = row0 + j * ROWS_PER_LOAD + sub;
    float sum = chunk_dot(ov[j][0], dv[j][0]);
    #pragma unroll
    for (int c = 1; c < CHUNKS_PER_LANE; ++c) sum += chunk_dot(ov[j][c], dv[j][c]);
    #pragma unroll
    for (int off = LANES_PER_ROW / 2; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffff, sum, off);
    const float l = lv[j];
    // A row that saw no key has LSE -inf and P = 0 everywhere: +inf makes exp2(s - lse) = 0.
    const float l2 = l == -FA_INF ? FA_INF : l * FA_LOG2E;
    sums[j] = sum;
    const bool live = row < seq.used;
    const bool marked = live && fabsf(l) > FA_EXACT_D_LSE && fabsf(l) < FA_INF;
    exact[j] = __ballot_sync(0xffffffff, marked && chunk == 0);
    any_exact |= exact[j] != 0u;
    if (live && !marked && chunk == 0) write_stats(row, l2, sum);
  }
  if (__builtin_expect(!any_exact, 1)) return;  // warp-uniform (ballots)
  #pragma unroll
  for (int j = 0; j < PRE_LOADS; ++j) {
    u32 marks = exact[j];
    while (marks != 0u) {  // warp-uniform
      const int holder = __ffs(marks) - 1;
      marks &= marks - 1u;
      const int r = j * ROWS_PER_LOAD + holder / LANES_PER_ROW;
      const int row = row0 + r;
      float sum = __shfl_sync(0xffffffff, sums[j], holder);
      const float l2 = __shfl_sync(0xffffffff, lv[j], holder) * FA_LOG2E;
      int b = batch, rr = row;
      SequenceRows rows = seq;
      if (FA_VARLEN && params.packed_rows > 0) {
        // Packed scratch covers packed rows: this row's sequence b has cu[b] <= row < cu[b + 1].
        int lo = 0, hi = params.sequences;
        while (hi - lo > 1) {
          const int mid = (lo + hi) / 2;
          if (params.cu_seqlens_q[mid] <= row) lo = mid;
          else hi = mid;
        }
        b = lo;
        rows = sequence_rows(params.cu_seqlens_q, params.seqused_q, lo, sq);
        rr = row - rows.start;
      }
      if (rr >= 0 && rr < rows.used) sum = exact_row_delta(params, b, head, rr, rows, pd + (i64)r * do_rs, l2, sum, lane);
      if (lane == 0) write_stats(row, l2, sum);
    }
  }
}
#endif

#ifdef FA_ENTRY_flash_backward_convert_dq
extern "C" __global__ void __launch_bounds__(256)
flash_backward_convert_dq(const __grid_constant__ FABackwardConvertParams params) {
  const float* __restrict__ accum = params.dq_accum;
  u16* __restrict__ dq = params.dq;
  const i64 dq_bs = params.dq_strides.batch, dq_rs = params.dq_strides.row, dq_hs = params.dq_strides.head;
  const int sq = params.seqlen_q, hq = params.heads_q;
  const float scale = params.scale;
  // Each thread converts one column pair of one (row, head); the accumulator's layout is
  // described above FA_DQ_BULK.
  const int batch = blockIdx.y;
  // The rows of this batch entry's sequence (fixed length: all sq); the accumulator keeps sq rows.
  // Packed scratch (FA_VARLEN, atomics layout only): one batch entry of every packed row.
  const bool packed = FA_VARLEN && !FA_DQ_BULK && params.packed_rows > 0;
  SequenceRows seq;
  if (packed) {
    seq.start = 0;
    seq.used = batch == 0 ? params.packed_rows : 0;
  } else {
    seq = sequence_rows(params.cu_seqlens_q, params.seqused_q, batch, sq);
  }
#if FA_DQ_BULK && TD_Q % 8 == 0
  // One thread per 8-column chunk of a (row, head): a piece keeps each chunk of 8 columns whole
  // and 32-byte aligned (the swizzle permutes whole chunks), so two 16-byte loads; dQ takes one
  // 16-byte store where its address and strides allow it (FlashAttention2Key.convertColumnsPerThread
  // sizes the grid). The index is split in 32 bits where the count fits (the 64-bit divisions of
  // a pair per thread held this pass to ~2 TB/s, r25).
  constexpr int CHUNKS = (FA_D + 7) / 8;
  const int per_row = hq * CHUNKS;
  const i64 chunks = (i64)seq.used * per_row;
  u16* dq_batch = dq + batch * dq_bs + (i64)seq.start * dq_rs;
  const bool whole_stores = ((unsigned long long)dq_batch % 16 == 0) && dq_rs % 8 == 0 && dq_hs % 8 == 0;
  const bool narrow = chunks <= 0x7fffffff;
  for (i64 p = (i64)blockIdx.x * blockDim.x + threadIdx.x; p < chunks; p += (i64)gridDim.x * blockDim.x) {
    int i, t;
    if (narrow) {
      i = (int)p / per_row;
      t = (int)p - i * per_row;
    } else {
      i = (int)(p / per_row);
      t = (int)(p - (i64)i * per_row);
    }
    const int h = t / CHUNKS, c = (t - h * CHUNKS) * 8;
    const float* src = dq_piece_element(accum, batch, h, hq, sq, i, c);
    u16* dst = dq_batch + (i64)i * dq_rs + (i64)h * dq_hs + c;
    if (c + 8 <= FA_D) {
      const float4 a = *reinterpret_cast<const float4*>(src), b = *reinterpret_cast<const float4*>(src + 4);
      const u32 w0 = pack2(a.x * scale, a.y * scale), w1 = pack2(a.z * scale, a.w * scale);
      const u32 w2 = pack2(b.x * scale, b.y * scale), w3 = pack2(b.z * scale, b.w * scale);
      if (whole_stores) {
        *reinterpret_cast<uint4*>(dst) = make_uint4(w0, w1, w2, w3);
      } else {
        u32* d32 = reinterpret_cast<u32*>(dst);
        d32[0] = w0;
        d32[1] = w1;
        d32[2] = w2;
        d32[3] = w3;
      }
    } else {
      // The last, partial chunk of a head dim that is not a multiple of 8 (column pairs).
      for (int e = 0; c + e < FA_D; e += 2) *(u32*)(dst + e) = pack2(src[e] * scale, src[e + 1] * scale);
    }
  }
#else
  // One thread per column pair (the atomics layout, and pieces narrower than a chunk).
  i64 pairs = (i64)seq.used * hq * (FA_D / 2);
  for (i64 p = (i64)blockIdx.x * blockDim.x + threadIdx.x; p < pairs; p += (i64)gridDim.x * blockDim.x) {
    int c = (int)(p % (FA_D / 2)) * 2;
    i64 rest = p / (FA_D / 2);
    int h = (int)(rest % hq);
    int i = (int)(rest / hq);
#if FA_DQ_BULK
    const float* src = dq_piece_element(accum, batch, h, hq, sq, i, c);
#else
    const float* src = accum + (accumulator_row(packed ? params.packed_rows : 0, batch, sq, seq.start, i) * hq + h) * FA_D + c;
#endif
    *(u32*)(dq + batch * dq_bs + (i64)(seq.start + i) * dq_rs + h * dq_hs + c) = pack2(src[0] * scale, src[1] * scale);
  }
#endif
}
#endif

#ifdef FA_ENTRY_flash_backward_kv
#if !FA_DQ_BULK
// dQ accumulation (with FA_DQ_BULK, whole pieces by common/dq_pieces.cuh instead): one vector
// reduction of a column pair on Hopper, two scalar ones before.
__device__ __forceinline__ void red_add2(float* address, float a, float b) {
#if __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" :: "l"(address), "f"(a), "f"(b) : "memory");
#else
  asm volatile("red.global.add.f32 [%0], %1;\n" :: "l"(address), "f"(a) : "memory");
  asm volatile("red.global.add.f32 [%0], %1;\n" :: "l"(address + 1), "f"(b) : "memory");
#endif
}
#endif

template <int MT, int NT>
__device__ __forceinline__ void zero(float (&acc)[MT][NT][4]) {
  #pragma unroll
  for (int i = 0; i < MT; ++i)
    #pragma unroll
    for (int j = 0; j < NT; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.f;
}

// One warp: acc (MT*16 x NT*8) += A (MT*16 x KSTEPS*16) * B (KSTEPS*16 x NT*8), operands in
// shared memory. `a` is the tile's origin: A[m][k] rows (A_T false) or A stored transposed as
// [k][m] (A_T true, read with ldmatrix.trans). `b` likewise: B^T stored as [n][k] (B_T false)
// or B as [k][n] (B_T true). Pitches in elements.
template <int MT, int NT, int KSTEPS, bool A_T, bool B_T, int A_PITCH, int B_PITCH>
__device__ __forceinline__ void warp_gemm(float (&acc)[MT][NT][4], const u16* a, const u16* b, int lane) {
  const u32 a_base = A_T
      ? smem_u32(a + ((lane & 7) + ((lane >> 4) << 3)) * A_PITCH + ((lane >> 3) & 1) * 8)
      : smem_u32(a + (lane % 16) * A_PITCH + (lane / 16) * 8);
  const u32 b_base = B_T
      ? smem_u32(b + ((lane & 7) + (((lane >> 3) & 1) << 3)) * B_PITCH + (lane >> 4) * 8)
      : smem_u32(b + ((lane & 7) + ((lane >> 4) << 3)) * B_PITCH + ((lane >> 3) & 1) * 8);
  // FA_BWD_UNROLL k-steps at a time: fully unrolled loops let ptxas hoist the next step's
  // fragments and run out of registers beside the dK and dV accumulators.
  #pragma unroll FA_BWD_UNROLL
  for (int ks = 0; ks < KSTEPS; ++ks) {
    u32 af[MT][4], bf[NT][2];
    #pragma unroll
    for (int i = 0; i < MT; ++i) {
      const int off = A_T ? (ks * 16 * A_PITCH + i * 16) * 2 : (i * 16 * A_PITCH + ks * 16) * 2;
      if (A_T) ldmatrix_x4_trans(a_base + off, af[i][0], af[i][1], af[i][2], af[i][3]);
      else ldmatrix_x4(a_base + off, af[i][0], af[i][1], af[i][2], af[i][3]);
    }
    #pragma unroll
    for (int j = 0; j < NT; j += 2) {
      const int off = B_T ? (ks * 16 * B_PITCH + j * 8) * 2 : (j * 8 * B_PITCH + ks * 16) * 2;
      if (j + 1 < NT) {
        if (B_T) ldmatrix_x4_trans(b_base + off, bf[j][0], bf[j][1], bf[j + 1][0], bf[j + 1][1]);
        else ldmatrix_x4(b_base + off, bf[j][0], bf[j][1], bf[j + 1][0], bf[j + 1][1]);
      } else {
        if (B_T) ldmatrix_x2_trans(b_base + off, bf[j][0], bf[j][1]);
        else ldmatrix_x2(b_base + off, bf[j][0], bf[j][1]);
      }
    }
    #pragma unroll
    for (int i = 0; i < MT; ++i)
      #pragma unroll
      for (int j = 0; j < NT; ++j) mma16816(acc[i][j], af[i][0], af[i][1], af[i][2], af[i][3], bf[j][0], bf[j][1]);
  }
}

// Q and dO tile loads with a compile-time trip count (each thread copies one 16-byte column
// chunk of rows r0, r0 + THREADS / CHUNKS, ...): the per-step address arithmetic of load_tile's
// generic loop cost 3-4% at d = 64 and 128 (runs 4 and 5 in docs/perf-notes/cuda-sm80.md).
// Only where it measured faster and fits the registers: unpadded heads up to 128 wide, whole
// rows per pass.
#define WHOLE_ROW_LOADS (FA_D == D_PAD && FA_DV == DV_PAD \
    && THREADS % (D_PAD / 8) == 0 && THREADS % (DV_PAD / 8) == 0 \
    && FA_BM % (THREADS / (D_PAD / 8)) == 0 && FA_BM % (THREADS / (DV_PAD / 8)) == 0)
#define FIXED_LOADS (WHOLE_ROW_LOADS && D_PAD <= 128)
// Wider heads (8 or more rows per thread) walk the rows in a loop with one pointer increment
// per row: unrolled, the addresses spill (68 bytes at d = 256), and load_tile's generic loop
// recomputes a 64-bit row offset per chunk (~430 instructions per step at d = 256).
#define STRIDED_LOADS (WHOLE_ROW_LOADS && !FIXED_LOADS)
template <int ROWS, int COLS, int PITCH>
__device__ __forceinline__ void load_rows(u16* smem, const u16* gmem, i64 row_stride, int valid_rows, int tid) {
  constexpr int CHUNKS = COLS / 8;
  constexpr int STEP = THREADS / CHUNKS;
  static_assert(THREADS % CHUNKS == 0 && ROWS % STEP == 0, "whole rows per pass");
  const int r0 = tid / CHUNKS, c = tid % CHUNKS;
  const u16* src = gmem + r0 * row_stride + c * 8;
  const u32 dst = smem_u32(smem + r0 * PITCH + c * 8);
  #pragma unroll
  for (int it = 0; it < ROWS / STEP; ++it) {
    const bool valid = r0 + it * STEP < valid_rows;
    cp_async16(dst + it * STEP * PITCH * 2, valid ? src + it * STEP * row_stride : gmem, valid);
  }
}

template <int ROWS, int COLS, int PITCH>
__device__ __forceinline__ void load_rows_strided(u16* smem, const u16* gmem, i64 row_stride, int valid_rows, int tid) {
  constexpr int CHUNKS = COLS / 8;
  constexpr int STEP = THREADS / CHUNKS;
  static_assert(THREADS % CHUNKS == 0 && ROWS % STEP == 0, "whole rows per pass");
  int row = tid / CHUNKS;
  const u16* src = gmem + row * row_stride + (tid % CHUNKS) * 8;
  const i64 src_step = STEP * row_stride;
  u32 dst = smem_u32(smem + row * PITCH + (tid % CHUNKS) * 8);
  #pragma unroll 2
  for (int it = 0; it < ROWS / STEP; ++it) {
    const bool valid = row < valid_rows;
    cp_async16(dst, valid ? src : gmem, valid);
    src += src_step;
    dst += STEP * PITCH * 2;
    row += STEP;
  }
}

// Warp grids of the three GEMM shapes (rows x columns of warps) and each warp's tile.
#define WN_S (FA_WARPS / FA_BWD_WM_S)
#define TM_S (FA_BM / FA_BWD_WM_S)
#define TN_S (FA_BN / WN_S)
#define WD_KV (FA_WARPS / FA_BWD_WN_KV)
#define TN_KV (FA_BN / FA_BWD_WN_KV)
#define TD_K (D_PAD / WD_KV)
#define TD_V (DV_PAD / WD_KV)
#define NBUF (FA_BWD_DOUBLE ? 2 : 1)

extern "C" __global__ void __launch_bounds__(THREADS, 1)
flash_backward_kv(const __grid_constant__ FABackwardKeyValueParams params) {
  const u16* __restrict__ q = params.q;
  const u16* __restrict__ k = params.k;
  const u16* __restrict__ v = params.v;
  const u16* __restrict__ dout = params.dout;
  const float* __restrict__ lse2 = params.lse2;
  const float* __restrict__ delta = params.delta;
  float* __restrict__ dq_accum = params.dq_accum;
  u16* __restrict__ dk = params.dk;
  u16* __restrict__ dv = params.dv;
  const i64 q_bs = params.q_strides.batch, q_rs = params.q_strides.row, q_hs = params.q_strides.head;
  const i64 k_bs = params.k_strides.batch, k_rs = params.k_strides.row, k_hs = params.k_strides.head;
  const i64 v_bs = params.v_strides.batch, v_rs = params.v_strides.row, v_hs = params.v_strides.head;
  const i64 do_bs = params.dout_strides.batch, do_rs = params.dout_strides.row, do_hs = params.dout_strides.head;
  const i64 dk_bs = params.dk_strides.batch, dk_rs = params.dk_strides.row, dk_hs = params.dk_strides.head;
  const i64 dv_bs = params.dv_strides.batch, dv_rs = params.dv_strides.row, dv_hs = params.dv_strides.head;
#if FA_VARLEN
  const int group = params.group;
#else
  // (The fixed-length kernel declares these where it always did: the same machine code.)
  const int sq = params.seqlen_q, sk = params.seqlen_k, group = params.group;
#endif
  const float scale = params.scale, softcap = params.softcap;
  const int left = params.window_left, right = params.window_right, key_block_base = params.key_block_base;
  static_assert(TM_S % 16 == 0 && TN_S % 8 == 0 && TN_KV % 16 == 0 && TD_K % 8 == 0 && TD_V % 8 == 0
                && TM_Q % 16 == 0 && TD_Q % 8 == 0 && FA_BM % 16 == 0 && FA_BN % 16 == 0, "warp tiles");
  extern __shared__ __align__(128) u16 smem[];
  u16* sK = smem;                                   // [FA_BN][QK_PITCH]
  u16* sV = sK + FA_BN * QK_PITCH;                  // [FA_BN][V_PITCH]
  u16* sQbuf = sV + FA_BN * V_PITCH;                // [NBUF][FA_BM][QK_PITCH]
  u16* sdObuf = sQbuf + NBUF * FA_BM * QK_PITCH;    // [NBUF][FA_BM][V_PITCH]
  u16* sP = sdObuf + NBUF * FA_BM * V_PITCH;        // [FA_BM][P_PITCH], queries x keys
  u16* sdS = sP + FA_BM * P_PITCH;                  // [FA_BM][P_PITCH]
  float* sLSEbuf = (float*)(sdS + FA_BM * P_PITCH); // [NBUF][FA_BM]
  float* sDeltabuf = sLSEbuf + NBUF * FA_BM;        // [NBUF][FA_BM]
  // Then, with FA_DQ_BULK, the dQ pieces: [FA_WARPS][DQ_PIECE] floats, addressed as a constant
  // offset from the shared window (a pointer kept live through the loop costs registers).
#define SDQ_BYTES ((FA_BN * (QK_PITCH + V_PITCH) + NBUF * FA_BM * (QK_PITCH + V_PITCH) \
    + 2 * FA_BM * P_PITCH) * 2 + 2 * NBUF * FA_BM * 4)
  // With FA_DQ_BULK 2 the first PIECES_IN_Q pieces fill the Q buffer, the rest the dO buffer.
#define PIECES_IN_Q (FA_BM * QK_PITCH * 2 / (DQ_PIECE * 4) < FA_WARPS ? FA_BM * QK_PITCH * 2 / (DQ_PIECE * 4) : FA_WARPS)
#if FA_DQ_BULK == 2
  static_assert(FA_BWD_DOUBLE && FA_WARPS - PIECES_IN_Q <= FA_BM * V_PITCH * 2 / (DQ_PIECE * 4), "dQ pieces fit the Q/dO buffer");
#endif

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  // key_block_base > 0 only in the deterministic mode, which launches one key block at a time.
  const int key_block = blockIdx.x + key_block_base;
  const int n0 = key_block * FA_BN;
  const int kv_head = blockIdx.y, batch = blockIdx.z;
  const int hq = gridDim.y * group;
  // This batch entry's sequence (fixed length: start 0, the parameters' lengths); the scratch
  // has sq_ws rows per (batch, head) either way.
#if FA_VARLEN
  const int sq_ws = params.seqlen_q;
  const SequenceRows seq_q = sequence_rows(params.cu_seqlens_q, params.seqused_q, batch, params.seqlen_q);
  const SequenceRows seq_k = sequence_rows(params.cu_seqlens_k, params.seqused_k, batch, params.seqlen_k);
  const int sq = seq_q.used, sk = seq_k.used;
  const int q_start = seq_q.start, k_start = seq_k.start;
  if (n0 >= sk) return;   // the grid covers the longest sequence; this one is shorter
#else
  const int sq_ws = sq;
  constexpr int q_start = 0, k_start = 0;
#endif
  const int off = sk - sq;   // bottom-right alignment

  load_tile<FA_BN, FA_D, D_PAD, QK_PITCH, THREADS>(sK, k + batch * k_bs + kv_head * k_hs + (i64)(k_start + n0) * k_rs, k_rs, sk - n0, tid);
  load_tile<FA_BN, FA_DV, DV_PAD, V_PITCH, THREADS>(sV, v + batch * v_bs + kv_head * v_hs + (i64)(k_start + n0) * v_rs, v_rs, sk - n0, tid);
  cp_async_commit();

  // The query blocks that see a key of this block: [m_first, m_last).
  const Mask<MASK> mask(sq, sk, left, right);
  const BlockRange query_blocks = mask.query_blocks<FA_BM, FA_BN>(n0, sq);
  const int m_first = query_blocks.lo;
  const int m_last = query_blocks.hi;

#if FA_SOFTCAP
  const float pre = scale / softcap;
  const float scale_log2 = FA_LOG2E;
#else
  const float scale_log2 = scale * FA_LOG2E;
#endif

  // This warp's tiles in the three warp grids.
  const int s_m = (warp / WN_S) * TM_S, s_n = (warp % WN_S) * TN_S;
  const int kv_n = (warp / WD_KV) * TN_KV, kv_d = (warp % WD_KV);
  const int q_m = (warp / WD_Q) * TM_Q, q_d = (warp % WD_Q) * TD_Q;

  float acc_dk[TN_KV / 16][TD_K / 8][4];
  float acc_dv[TN_KV / 16][TD_V / 8][4];
  zero(acc_dk);
  zero(acc_dv);

  // Steps run over (query head of the group, query block), each key block starting at another
  // one (rotated by blockIdx.x), so the CTAs running at the same time add into different dQ rows
  // instead of all into the same ones (neutral to +2%, run 5); step s uses buffer s % NBUF.
  // The walk keeps (head in the group, block) and advances it, rather than dividing the step
  // index by blocks_per_head every step (two integer divisions, ~50 instructions per step).
  const int blocks_per_head = m_last - m_first;
  const int steps = group * blocks_per_head;
  const int rot0 = steps > 0 ? (int)((unsigned)key_block % (unsigned)steps) : 0;
  int walk_head = steps > 0 ? rot0 / blocks_per_head : 0;
  int walk_block = steps > 0 ? rot0 - walk_head * blocks_per_head : 0;
  // The (head, block) after (h, b).
  auto advance = [&](int& h, int& b) {
    if (++b == blocks_per_head) {
      b = 0;
      h = h + 1 == group ? 0 : h + 1;
    }
  };
  auto issue_load = [&](int step, int head_in_group, int block) {
    const int head = kv_head * group + head_in_group;
    const int m0 = (m_first + block) * FA_BM;
    const int buf = step % NBUF;
    const u16* q_tile = q + batch * q_bs + head * q_hs + (i64)(q_start + m0) * q_rs;
    const u16* do_tile = dout + batch * do_bs + head * do_hs + (i64)(q_start + m0) * do_rs;
#if FIXED_LOADS
    load_rows<FA_BM, FA_D, QK_PITCH>(sQbuf + buf * FA_BM * QK_PITCH, q_tile, q_rs, sq - m0, tid);
    load_rows<FA_BM, FA_DV, V_PITCH>(sdObuf + buf * FA_BM * V_PITCH, do_tile, do_rs, sq - m0, tid);
#elif STRIDED_LOADS
    load_rows_strided<FA_BM, FA_D, QK_PITCH>(sQbuf + buf * FA_BM * QK_PITCH, q_tile, q_rs, sq - m0, tid);
    load_rows_strided<FA_BM, FA_DV, V_PITCH>(sdObuf + buf * FA_BM * V_PITCH, do_tile, do_rs, sq - m0, tid);
#else
    load_tile<FA_BM, FA_D, D_PAD, QK_PITCH, THREADS>(sQbuf + buf * FA_BM * QK_PITCH, q_tile, q_rs, sq - m0, tid);
    load_tile<FA_BM, FA_DV, DV_PAD, V_PITCH, THREADS>(sdObuf + buf * FA_BM * V_PITCH, do_tile, do_rs, sq - m0, tid);
#endif
    const i64 ws = ((i64)batch * hq + head) * sq_ws;
    // A compile-time trip count (usually one pass, FA_BM <= THREADS): the generic strided
    // loop compiled into an unrolled loop with a remainder, ~35 instructions for one row.
    #pragma unroll
    for (int pass = 0; pass < (FA_BM + THREADS - 1) / THREADS; ++pass) {
      const int r = tid + pass * THREADS;
      if (FA_BM % THREADS == 0 || r < FA_BM) {
        // Rows past sq are masked out below; their LSE and D are zero-filled.
        bool in = m0 + r < sq;
        cp_async4(smem_u32(sLSEbuf + buf * FA_BM + r), lse2 + (in ? ws + m0 + r : 0), in);
        cp_async4(smem_u32(sDeltabuf + buf * FA_BM + r), delta + (in ? ws + m0 + r : 0), in);
      }
    }
    cp_async_commit();
  };
  if (steps > 0) issue_load(0, walk_head, walk_block);

  for (int step = 0; step < steps; ++step) {
    const int head = kv_head * group + walk_head;
    const int m0 = (m_first + walk_block) * FA_BM;
    const int buf = step % NBUF;
    int next_head = walk_head, next_block = walk_block;
    advance(next_head, next_block);
    const u16* sQ = sQbuf + buf * FA_BM * QK_PITCH;
    const u16* sdO = sdObuf + buf * FA_BM * V_PITCH;
    const float* sLSE = sLSEbuf + buf * FA_BM;
    const float* sDelta = sDeltabuf + buf * FA_BM;
#if FA_ALIBI
    // This step's query head; raw scores are qk (unit: the scale) or capped scores (unit 1).
    const Alibi alibi(params.alibi_slopes, batch * params.alibi_batch_stride + head, FA_SOFTCAP ? 1.f : scale, sq, sk);
#endif
#if FA_DROPOUT
    const Dropout dropout(params.dropout, batch, head);
#endif
    cp_async_wait<0>();
    // This step's Q, dO, LSE, D (and K, V on the first step) landed; every warp is done with
    // the previous step, so the other buffer, sP and sdS may be overwritten.
    __syncthreads();

    {
      // S = Q K^T and dP = dO V^T for this warp's TM_S queries x TN_S keys.
      float acc_s[TM_S / 16][TN_S / 8][4];
      float acc_dp[TM_S / 16][TN_S / 8][4];
      zero(acc_s);
      zero(acc_dp);
      warp_gemm<TM_S / 16, TN_S / 8, D_PAD / 16, false, false, QK_PITCH, QK_PITCH>(
          acc_s, sQ + s_m * QK_PITCH, sK + s_n * QK_PITCH, lane);
      warp_gemm<TM_S / 16, TN_S / 8, DV_PAD / 16, false, false, V_PITCH, V_PITCH>(
          acc_dp, sdO + s_m * V_PITCH, sV + s_n * V_PITCH, lane);
      // The next step's loads into the other buffer (free since the barrier above), issued
      // here rather than before the GEMMs: their address arithmetic then fills issue slots
      // while the MMAs drain instead of delaying the GEMMs' start.
      if (FA_BWD_DOUBLE && FA_DQ_BULK != 2 && step + 1 < steps) issue_load(step + 1, next_head, next_block);

      // P = exp2(s * c - lse2), zero where masked or out of range; dS = P * (dP - D)
      // (times the softcap derivative). Both to shared memory as [query][key].
      const bool need_mask = m0 + FA_BM > sq || mask.tile_needs_mask<FA_BM, FA_BN>(m0, n0);
      #pragma unroll
      for (int i = 0; i < TM_S / 16; ++i) {
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = s_m + i * 16 + h * 8 + g;   // query within the block
          const float row_lse = sLSE[row], row_delta = sDelta[row];
          // The row's visible keys (as absolute key indices: offsets from key 0). Relative to the
          // thread's first column, as the other kernels take them, the d = 128 kernel spills.
          ColumnRange keys;
          keys.lo = 0;
          keys.hi = sk - 1;
          if (need_mask) keys = mask.key_columns(m0 + row, 0);
#if FA_DROPOUT
          // The quad's lanes share the Philox calls (a quarter of them each), except with
          // softcap, where the shared form's registers spilled the d = 40 128 x 128 tile on
          // sm_80 (4 bytes): there each lane makes its own.
          const u64 keep = dropout.keep_bits<TN_S / 8, !FA_SOFTCAP>(m0 + row, (n0 + s_n) >> 3, t);
#endif
          // A masked and an unmasked copy of the row, chosen per step: the unmasked one (most steps)
          // spends no compare on its elements.
          auto row_elements = [&](auto masked) {
            constexpr bool MASKED = decltype(masked)::value;
            const bool row_in = m0 + row < sq;
            #pragma unroll
            for (int j = 0; j < TN_S / 8; ++j) {
              float pv[2], dsv[2];
              #pragma unroll
              for (int e = 0; e < 2; ++e) {
                float s = acc_s[i][j][h * 2 + e];
#if FA_SOFTCAP
                const float th = tanh_approx(s * pre);
                s = softcap * th;
#endif
#if FA_ALIBI
                s += alibi.bias(m0 + row, n0 + s_n + j * 8 + 2 * t + e);
#endif
                float p = ex2(s * scale_log2 - row_lse);
                if (MASKED) {
                  const int key = n0 + s_n + j * 8 + 2 * t + e;
                  if (!row_in || keys.hides(key)) p = 0.f;
                }
#if FA_DROPOUT
                // The keep factor Z (0 or 1 / (1 - p)): dV takes (P * Z)^T dO and
                // dS = P * (dP * Z - D), D from the dropped output (FA2's backward).
                const float ze = dropout.factor(keep, 2 * j + e);
                float ds = p * (acc_dp[i][j][h * 2 + e] * ze - row_delta);
                p *= ze;
#else
                float ds = p * (acc_dp[i][j][h * 2 + e] - row_delta);
#endif
#if FA_SOFTCAP
                ds *= 1.f - th * th;
#endif
                pv[e] = p;
                dsv[e] = ds;
              }
              const int col = s_n + j * 8 + 2 * t;
              *(u32*)(sP + row * P_PITCH + col) = pack2(pv[0], pv[1]);
              *(u32*)(sdS + row * P_PITCH + col) = pack2(dsv[0], dsv[1]);
            }
          };
          if (need_mask) row_elements(StaticFlag<true>());
          else row_elements(StaticFlag<false>());
        }
      }
    }
#if FA_DQ_BULK == 2
    // The previous step's pieces, in the buffer the next loads go to, must have been read.
    if (lane == 0) bulk_wait_read();
#endif
    __syncthreads();   // sP and sdS complete
#if FA_DQ_BULK == 2
    if (step + 1 < steps) issue_load(step + 1, next_head, next_block);
#endif

    // dV += P^T dO and dK += dS^T Q for this warp's TN_KV keys x head-dim slice.
    warp_gemm<TN_KV / 16, TD_V / 8, FA_BM / 16, true, true, P_PITCH, V_PITCH>(
        acc_dv, sP + kv_n, sdO + kv_d * TD_V, lane);
    warp_gemm<TN_KV / 16, TD_K / 8, FA_BM / 16, true, true, P_PITCH, QK_PITCH>(
        acc_dk, sdS + kv_n, sQ + kv_d * TD_K, lane);

    {
      // dQ[m0.., :] += dS K for this warp's TM_Q queries x TD_Q columns.
      float acc_dq[TM_Q / 16][TD_Q / 8][4];
      zero(acc_dq);
      warp_gemm<TM_Q / 16, TD_Q / 8, FA_BN / 16, false, true, P_PITCH, QK_PITCH>(
          acc_dq, sdS + q_m * P_PITCH, sK + q_d, lane);
#if FA_DQ_BULK
      // This warp's piece: wait until the previous step's reduction has read it, stage the
      // fragments, make them visible to the async proxy, and hand the piece to the TMA unit.
      // The lane is read from %laneid here so that ptxas computes the store addresses in the
      // loop: hoisted out of it, they stay live through the GEMMs and spill.
      u32 lane_now;
      asm volatile("mov.u32 %0, %%laneid;\n" : "=r"(lane_now));
#if FA_DQ_BULK == 2
      __syncthreads();   // every warp is done with this step's Q and dO
      const u32 piece = warp < PIECES_IN_Q ? smem_u32(sQ) + warp * DQ_PIECE * 4
                                           : smem_u32(sdO) + (warp - PIECES_IN_Q) * DQ_PIECE * 4;
#else
      const u32 piece = smem_u32(smem) + SDQ_BYTES + warp * DQ_PIECE * 4;
      if (lane == 0) bulk_wait_read();
      __syncwarp();
#endif
      // dq_piece_offset(r, c) for r = 16 i + 8 h + g and c = 8 j + 2 t, spelled out: every row
      // of this lane has r mod 8 = g, so column chunk j lands in chunk j ^ (g mod DQ_SWIZZLE)
      // and the (i, h) rows are immediate offsets from one address per chunk.
      const u32 g_now = (lane_now >> 2) & 7, t_now = lane_now & 3;
      const u32 row_base = piece + (g_now * TD_Q + 2 * t_now) * 4;
      const u32 chunk_xor = (g_now & (DQ_SWIZZLE - 1)) * 32;
      #pragma unroll
      for (int j = 0; j < TD_Q / 8; ++j) {
        const u32 address = row_base + (((u32)j * 32) ^ chunk_xor);
        #pragma unroll
        for (int i = 0; i < TM_Q / 16; ++i) {
          #pragma unroll
          for (int h = 0; h < 2; ++h) {
            asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n"
                         :: "r"(address + (i * 16 + h * 8) * TD_Q * 4),
                            "f"(acc_dq[i][j][h * 2]), "f"(acc_dq[i][j][h * 2 + 1]));
          }
        }
      }
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
      __syncwarp();
      if (lane == 0) {
        bulk_reduce_add(dq_accum + dq_piece_index(batch, head, hq, sq_ws, m0 / FA_BM, warp) * DQ_PIECE, piece, DQ_PIECE * 4);
      }
#else
      #pragma unroll
      for (int i = 0; i < TM_Q / 16; ++i) {
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = m0 + q_m + i * 16 + h * 8 + g;
          if (row < sq) {
            float* dst = dq_accum + (((i64)batch * sq_ws + row) * hq + head) * FA_D;
            #pragma unroll
            for (int j = 0; j < TD_Q / 8; ++j) {
              const int col = q_d + j * 8 + 2 * t;
              if (col < FA_D) red_add2(dst + col, acc_dq[i][j][h * 2], acc_dq[i][j][h * 2 + 1]);
            }
          }
        }
      }
#endif
    }
    if (!FA_BWD_DOUBLE && step + 1 < steps) {
      __syncthreads();   // the single buffer is free
      issue_load(step + 1, next_head, next_block);
    }
    walk_head = next_head;
    walk_block = next_block;
  }

#if FA_DQ_BULK
  if (lane == 0) bulk_wait_all();   // the shared memory stays until the reductions have read it
#endif
  // Write dK (scaled) and dV for this warp's keys.
  #pragma unroll
  for (int i = 0; i < TN_KV / 16; ++i) {
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int key = n0 + kv_n + i * 16 + h * 8 + g;
      if (key < sk) {
        u16* pk = dk + batch * dk_bs + kv_head * dk_hs + (i64)(k_start + key) * dk_rs;
        #pragma unroll
        for (int j = 0; j < TD_K / 8; ++j) {
          const int col = kv_d * TD_K + j * 8 + 2 * t;
          if (col < FA_D) *(u32*)(pk + col) = pack2(acc_dk[i][j][h * 2] * scale, acc_dk[i][j][h * 2 + 1] * scale);
        }
        u16* pv = dv + batch * dv_bs + kv_head * dv_hs + (i64)(k_start + key) * dv_rs;
        #pragma unroll
        for (int j = 0; j < TD_V / 8; ++j) {
          const int col = kv_d * TD_V + j * 8 + 2 * t;
          if (col < FA_DV) *(u32*)(pv + col) = pack2(acc_dv[i][j][h * 2], acc_dv[i][j][h * 2 + 1]);
        }
      }
    }
  }
}
#endif
