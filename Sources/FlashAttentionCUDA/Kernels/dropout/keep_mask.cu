// Dropout's keep mask as the CUDA kernels see it, written out whole: the GPU side of the test
// that the GPU and the CPU drop the same entries (the CPU kernels and the float64 reference
// compile the same fa_philox.h). One thread per group of sixteen keys of one query row: one
// Philox call.
#include "fa_philox.h"

struct DropoutKeepMaskParams {
  unsigned char* mask;      // [batch * heads_q, seqlen_q, seqlen_k]: 1 kept, 0 dropped
  unsigned long long seed;
  unsigned long long offset;
  unsigned int threshold;
  int batch_heads;
  int seqlen_q;
  int seqlen_k;
  unsigned int first_batch_head;  // the generator's (batch * heads_q + head) of mask row 0
};

extern "C" __global__ void dropout_keep_mask(const __grid_constant__ DropoutKeepMaskParams p) {
  const int groups = (p.seqlen_k + 15) / 16;
  const long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const long long rows = (long long)p.batch_heads * p.seqlen_q;
  if (index >= rows * groups) return;
  const int group = (int)(index % groups);
  const long long row_index = index / groups;
  const int row = (int)(row_index % p.seqlen_q);
  const unsigned int batch_head = p.first_batch_head + (unsigned int)(row_index / p.seqlen_q);
  const fa_philox_words w = fa_dropout_words(p.seed, p.offset, batch_head, (unsigned int)row, (unsigned int)group);
  unsigned char* out = p.mask + row_index * p.seqlen_k;
  #pragma unroll
  for (int slot = 0; slot < 16; ++slot) {
    const int key = group * 16 + slot;
    if (key < p.seqlen_k) out[key] = fa_dropout_number(w, slot) < p.threshold ? 1 : 0;
  }
}
