// The packed schedule of a variable-length batch (CUDAKernelTuning.varlenSchedule = packed): the
// list of work units that the Hopper kernels' grid blocks take, one entry per block, instead of
// a grid padded to the longest sequence for every sequence (where a short sequence's blocks are
// mostly empty and the blocks come in batch order, so the longest ones may start last).
//
// An entry (VarlenWork, common/varlen.cuh): the sequence, the head, the unit and the sequence's block count n. A unit is
// a block of `block_rows` rows of the sequence (the backward's key or query blocks) or, with
// `paired`, the pair of blocks u and n-1-u (the forward's pairing, balanced under a causal mask).
// Sequences come longest-first by the used rows of the other side (the cost of one unit grows
// with them: keys for a forward or dQ tile, queries for a key block), ties by index; each
// sequence's units for every head in turn, a head's units consecutive (they share its K/V in
// L2). The hardware hands out blocks roughly in index order to the SMs that become free, so this
// is the longest-processing-time-first list schedule. The tail of the list (entries past the
// real units, at most about `batch` per head: the host sizes the grid from total rows) is -1.
//
// One block of 1024 threads; sequences in chunks of 1024 (sorted when the batch fits one chunk,
// else kept in order), each chunk's entries placed after the previous chunk's.
#include "common/varlen.cuh"

constexpr int SCHEDULE_THREADS = 1024;

// As sequence_rows (common/varlen.cuh): the used rows of sequence b, clamped into
// [0, min(length, maximum)], so the units never reach past the rows the kernels are sized for.
__device__ __forceinline__ int schedule_used_rows(const fa_i32* cu, const fa_i32* seqused, int b, int maximum) {
  const int start = cu[b];
  const int length = max(0, cu[b + 1] - start);
  return min(seqused ? min(max(seqused[b], 0), length) : length, maximum);
}

extern "C" __global__ void __launch_bounds__(SCHEDULE_THREADS)
flash_varlen_schedule(const __grid_constant__ FAVarlenScheduleParams params) {
  __shared__ int sequence_at[SCHEDULE_THREADS];  // the sequence at each position of the chunk's order
  __shared__ int units_at[SCHEDULE_THREADS];
  __shared__ int blocks_at[SCHEDULE_THREADS];
  __shared__ int weight_of[SCHEDULE_THREADS];    // by index within the chunk
  __shared__ long long end_at[SCHEDULE_THREADS];  // inclusive prefix sum of units * heads, in order
  VarlenWork* __restrict__ work = reinterpret_cast<VarlenWork*>(params.work);
  const int t = threadIdx.x;
  const int heads = params.heads;
  const long long capacity = params.capacity;
  const bool sorted = params.batch <= SCHEDULE_THREADS;
  long long base = 0;  // entries of the earlier chunks
  for (int chunk = 0; chunk < params.batch; chunk += SCHEDULE_THREADS) {
    const int n = min(SCHEDULE_THREADS, params.batch - chunk);
    int blocks = 0, units = 0, weight = 0;
    if (t < n) {
      const int rows = schedule_used_rows(params.cu_seqlens, params.seqused, chunk + t, params.max_rows);
      blocks = (rows + params.block_rows - 1) / params.block_rows;
      units = params.paired ? (blocks + 1) / 2 : blocks;
      weight = schedule_used_rows(params.cu_other, params.seqused_other, chunk + t, params.max_other);
      weight_of[t] = weight;
    }
    __syncthreads();
    int position = t;
    if (sorted && t < n) {
      position = 0;
      for (int j = 0; j < n; ++j) {
        const int w = weight_of[j];
        position += w > weight || (w == weight && j < t);
      }
    }
    if (t < n) {
      sequence_at[position] = chunk + t;
      units_at[position] = units;
      blocks_at[position] = blocks;
    }
    __syncthreads();
    end_at[t] = t < n ? (long long)units_at[t] * heads : 0;
    __syncthreads();
    for (int d = 1; d < SCHEDULE_THREADS; d *= 2) {
      const long long add = t >= d ? end_at[t - d] : 0;
      __syncthreads();
      end_at[t] += add;
      __syncthreads();
    }
    const long long entries = end_at[n - 1];
    const long long last = min(base + entries, capacity);
    for (long long e = base + t; e < last; e += SCHEDULE_THREADS) {
      const long long local = e - base;
      // The first position whose range ends past `local` (positions without units end where
      // the previous one does and are skipped).
      int lo = 0, hi = n - 1;
      while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (end_at[mid] > local) hi = mid;
        else lo = mid + 1;
      }
      const long long begin = lo > 0 ? end_at[lo - 1] : 0;
      const int within = (int)(local - begin);
      const int u = units_at[lo];
      work[e] = VarlenWork{sequence_at[lo], within / u, within % u, blocks_at[lo]};
    }
    base += entries;
    __syncthreads();  // the next chunk overwrites the shared arrays
  }
  for (long long e = min(base, capacity) + t; e < capacity; e += SCHEDULE_THREADS) work[e] = VarlenWork{-1, 0, 0, 0};
}
