// Standard attention, the benchmark's baseline: S and P materialized in fp32 device memory,
// GEMMs on CUDA cores in fp32 (a plain 64 x 64 shared-memory tiling), a row softmax between
// them. Five kernels (one NVRTC program each, by entry): standard_gemm_abt, standard_softmax,
// standard_gemm_pb, standard_gemm_ptb, standard_softmax_backward.
#include "common/mask.cuh"
#include "common/math.cuh"
#define ST_TILE 64
#define ST_K 16
#define ST_THREADS 256

__device__ __forceinline__ u16 st_store(float x) { return (u16)(pack2(x, 0.f) & 0xffff); }

// 64 x 64 fp32 output tile, each thread 4 x 4, K in steps of 16 through shared memory.
// As[k][row] and Bs[k][col] hold the operands already widened to fp32.
__device__ __forceinline__ void st_tile_fma(float (*As)[ST_TILE + 4], float (*Bs)[ST_TILE + 4],
                                            float acc[4][4], int ty, int tx) {
  #pragma unroll
  for (int kk = 0; kk < ST_K; ++kk) {
    float a[4], b[4];
    #pragma unroll
    for (int r = 0; r < 4; ++r) { a[r] = As[kk][ty * 4 + r]; b[r] = Bs[kk][tx * 4 + r]; }
    #pragma unroll
    for (int r = 0; r < 4; ++r)
      #pragma unroll
      for (int c = 0; c < 4; ++c) acc[r][c] += a[r] * b[c];
  }
}

// C[bh, i, j] = sum_k A[b, i, h, k] * B[b, j, h / group, k]  (A·Bᵀ over the head dim), then
// mode 0: S = scale·C, invisible keys -inf;  mode 1: P = exp(scale·C - lse), invisible 0;
// mode 2: C as is (dP = dO·Vᵀ).
extern "C" __global__ void __launch_bounds__(ST_THREADS) standard_gemm_abt(
    const __grid_constant__ FAStandardScoresParams params) {
  const u16* A = params.a;
  const i64 a_sb = params.a_strides.batch, a_ss = params.a_strides.row, a_sh = params.a_strides.head;
  const u16* B = params.b;
  const i64 b_sb = params.b_strides.batch, b_ss = params.b_strides.row, b_sh = params.b_strides.head;
  float* C = params.c;
  const float* lse = params.lse;
  const i64 lse_sb = params.lse_strides.batch, lse_sh = params.lse_strides.head;
  const int M = params.rows, N = params.columns, K = params.depth, heads = params.heads_q, group = params.group;
  const float scale = params.scale;
  const int left = params.window_left, right = params.window_right, mode = params.mode;
  __shared__ float As[ST_K][ST_TILE + 4];
  __shared__ float Bs[ST_K][ST_TILE + 4];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int bh = blockIdx.z, b = bh / heads, h = bh % heads;
  const int i0 = blockIdx.y * ST_TILE, j0 = blockIdx.x * ST_TILE;
  const u16* Ab = A + b * a_sb + h * a_sh;
  const u16* Bb = B + b * b_sb + (h / group) * b_sh;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += ST_K) {
    for (int e = tid; e < ST_TILE * ST_K; e += ST_THREADS) {
      int r = e / ST_K, c = e % ST_K, k = k0 + c;
      As[c][r] = (i0 + r < M && k < K) ? to_float(Ab[(i64)(i0 + r) * a_ss + k]) : 0.f;
      Bs[c][r] = (j0 + r < N && k < K) ? to_float(Bb[(i64)(j0 + r) * b_ss + k]) : 0.f;
    }
    __syncthreads();
    st_tile_fma(As, Bs, acc, ty, tx);
    __syncthreads();
  }
  #pragma unroll
  for (int r = 0; r < 4; ++r) {
    int i = i0 + ty * 4 + r;
    if (i >= M) continue;
    const ColumnRange keys = Mask<MaskKind::window>(M, N, left, right).key_columns(i, 0);
    float row_lse = mode == 1 ? lse[b * lse_sb + h * lse_sh + i] : 0.f;
    #pragma unroll
    for (int c = 0; c < 4; ++c) {
      int j = j0 + tx * 4 + c;
      if (j >= N) continue;
      const bool visible = !keys.hides(j);
      float value = acc[r][c];
      if (mode == 0) value = visible ? value * scale : -FA_INF;
      else if (mode == 1) value = visible ? ex2((value * scale - row_lse) * FA_LOG2E) : 0.f;
      C[((i64)bh * M + i) * N + j] = value;
    }
  }
}

// Row softmax in place: P = exp(S - max) / sum, lse = max + log(sum); a row that sees no key
// gets P = 0 and lse = -inf. One block per row.
extern "C" __global__ void __launch_bounds__(ST_THREADS) standard_softmax(
    const __grid_constant__ FAStandardSoftmaxParams params) {
  float* S = params.scores;
  float* lse = params.lse;
  const i64 lse_sb = params.lse_strides.batch, lse_sh = params.lse_strides.head;
  const int M = params.seqlen_q, N = params.seqlen_k, heads = params.heads_q;
  __shared__ float partial[ST_THREADS / 32];
  const int i = blockIdx.x, bh = blockIdx.y, b = bh / heads, h = bh % heads;
  float* row = S + ((i64)bh * M + i) * N;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float m = -FA_INF;
  for (int j = threadIdx.x; j < N; j += ST_THREADS) m = fmaxf(m, row[j]);
  for (int o = 16; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, o));
  if (lane == 0) partial[warp] = m;
  __syncthreads();
  m = partial[0];
  for (int w = 1; w < ST_THREADS / 32; ++w) m = fmaxf(m, partial[w]);
  __syncthreads();
  const float shift = m == -FA_INF ? 0.f : m * FA_LOG2E;
  float sum = 0.f;
  for (int j = threadIdx.x; j < N; j += ST_THREADS) sum += ex2(row[j] * FA_LOG2E - shift);
  for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffff, sum, o);
  if (lane == 0) partial[warp] = sum;
  __syncthreads();
  sum = 0.f;
  for (int w = 0; w < ST_THREADS / 32; ++w) sum += partial[w];
  // sum == 0, not sum > 0: a NaN sum (NaN in an input) stays NaN in P and the LSE (see softmax.cuh).
  const float inverse = sum == 0.f ? 0.f : 1.f / sum;
  for (int j = threadIdx.x; j < N; j += ST_THREADS) row[j] = ex2(row[j] * FA_LOG2E - shift) * inverse;
  if (threadIdx.x == 0) lse[b * lse_sb + h * lse_sh + i] = sum == 0.f ? -FA_INF : (m + lg2(sum) * FA_LN2);
}

// Out[b, i, h, :] = factor · sum_j P[bh, i, j] · B[b, j, h / group, :]   (P·V and dS·K).
extern "C" __global__ void __launch_bounds__(ST_THREADS) standard_gemm_pb(
    const __grid_constant__ FAStandardProductParams params) {
  const float* P = params.p;
  const u16* B = params.b;
  const i64 b_sb = params.b_strides.batch, b_ss = params.b_strides.row, b_sh = params.b_strides.head;
  u16* Out = params.out;
  const i64 o_sb = params.out_strides.batch, o_ss = params.out_strides.row, o_sh = params.out_strides.head;
  const int M = params.seqlen_q, N = params.seqlen_k, D = params.width, heads = params.heads_q, group = params.group;
  const float factor = params.factor;
  __shared__ float As[ST_K][ST_TILE + 4];
  __shared__ float Bs[ST_K][ST_TILE + 4];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int bh = blockIdx.z, b = bh / heads, h = bh % heads;
  const int i0 = blockIdx.y * ST_TILE, d0 = blockIdx.x * ST_TILE;
  const float* Pb = P + (i64)bh * M * N;
  const u16* Bb = B + b * b_sb + (h / group) * b_sh;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < N; k0 += ST_K) {
    for (int e = tid; e < ST_TILE * ST_K; e += ST_THREADS) {
      int r = e / ST_K, c = e % ST_K, k = k0 + c;
      As[c][r] = (i0 + r < M && k < N) ? Pb[(i64)(i0 + r) * N + k] : 0.f;
      int kr = e / ST_TILE, dc = e % ST_TILE;
      Bs[kr][dc] = (k0 + kr < N && d0 + dc < D) ? to_float(Bb[(i64)(k0 + kr) * b_ss + d0 + dc]) : 0.f;
    }
    __syncthreads();
    st_tile_fma(As, Bs, acc, ty, tx);
    __syncthreads();
  }
  #pragma unroll
  for (int r = 0; r < 4; ++r)
    #pragma unroll
    for (int c = 0; c < 4; ++c) {
      int i = i0 + ty * 4 + r, d = d0 + tx * 4 + c;
      if (i < M && d < D) Out[b * o_sb + (i64)i * o_ss + h * o_sh + d] = st_store(factor * acc[r][c]);
    }
}

// Out[b, j, hk, :] = factor · sum_{h in group of hk} sum_i P[b·heads + h, i, j] · B[b, i, h, :]
// (Pᵀ·dO and dSᵀ·Q; the GQA group sum happens here).
extern "C" __global__ void __launch_bounds__(ST_THREADS) standard_gemm_ptb(
    const __grid_constant__ FAStandardProductParams params) {
  const float* P = params.p;
  const u16* B = params.b;
  const i64 b_sb = params.b_strides.batch, b_ss = params.b_strides.row, b_sh = params.b_strides.head;
  u16* Out = params.out;
  const i64 o_sb = params.out_strides.batch, o_ss = params.out_strides.row, o_sh = params.out_strides.head;
  const int M = params.seqlen_q, N = params.seqlen_k, D = params.width, heads = params.heads_q, group = params.group;
  const float factor = params.factor;
  __shared__ float As[ST_K][ST_TILE + 4];
  __shared__ float Bs[ST_K][ST_TILE + 4];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int kv_heads = heads / group;
  const int bhk = blockIdx.z, b = bhk / kv_heads, hk = bhk % kv_heads;
  const int j0 = blockIdx.y * ST_TILE, d0 = blockIdx.x * ST_TILE;
  float acc[4][4] = {};
  for (int g = 0; g < group; ++g) {
    const int h = hk * group + g;
    const float* Pb = P + (i64)(b * heads + h) * M * N;
    const u16* Bb = B + b * b_sb + h * b_sh;
    for (int k0 = 0; k0 < M; k0 += ST_K) {
      for (int e = tid; e < ST_TILE * ST_K; e += ST_THREADS) {
        int kr = e / ST_TILE, col = e % ST_TILE, k = k0 + kr;
        As[kr][col] = (k < M && j0 + col < N) ? Pb[(i64)k * N + j0 + col] : 0.f;
        Bs[kr][col] = (k < M && d0 + col < D) ? to_float(Bb[(i64)k * b_ss + d0 + col]) : 0.f;
      }
      __syncthreads();
      st_tile_fma(As, Bs, acc, ty, tx);
      __syncthreads();
    }
  }
  #pragma unroll
  for (int r = 0; r < 4; ++r)
    #pragma unroll
    for (int c = 0; c < 4; ++c) {
      int j = j0 + ty * 4 + r, d = d0 + tx * 4 + c;
      if (j < N && d < D) Out[b * o_sb + (i64)j * o_ss + hk * o_sh + d] = st_store(factor * acc[r][c]);
    }
}

// dS = P ∘ (dP - D) in place over dP, with D_i = sum_d dO[b, i, h, d] · O[b, i, h, d]. One block per row.
extern "C" __global__ void __launch_bounds__(ST_THREADS) standard_softmax_backward(
    const __grid_constant__ FAStandardSoftmaxBackwardParams params) {
  const float* P = params.p;
  float* dP = params.ds;
  const u16* dO = params.dout;
  const i64 do_sb = params.dout_strides.batch, do_ss = params.dout_strides.row, do_sh = params.dout_strides.head;
  const u16* O = params.out;
  const i64 o_sb = params.out_strides.batch, o_ss = params.out_strides.row, o_sh = params.out_strides.head;
  const int M = params.seqlen_q, N = params.seqlen_k, Dv = params.head_dim_v, heads = params.heads_q;
  __shared__ float partial[ST_THREADS / 32];
  const int i = blockIdx.x, bh = blockIdx.y, b = bh / heads, h = bh % heads;
  const u16* dOrow = dO + b * do_sb + (i64)i * do_ss + h * do_sh;
  const u16* Orow = O + b * o_sb + (i64)i * o_ss + h * o_sh;
  float dot = 0.f;
  for (int d = threadIdx.x; d < Dv; d += ST_THREADS) dot += to_float(dOrow[d]) * to_float(Orow[d]);
  for (int o = 16; o > 0; o /= 2) dot += __shfl_xor_sync(0xffffffff, dot, o);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = dot;
  __syncthreads();
  float D = 0.f;
  for (int w = 0; w < ST_THREADS / 32; ++w) D += partial[w];
  const i64 base = ((i64)bh * M + i) * N;
  for (int j = threadIdx.x; j < N; j += ST_THREADS) dP[base + j] = P[base + j] * (dP[base + j] - D);
}
