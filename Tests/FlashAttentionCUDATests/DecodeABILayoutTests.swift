import Testing
import _FlashAttentionKernelABI

/// The KV-cache kernels' parameter structs as Swift imported them: the offsets and sizes the
/// header's static asserts pin for the host C compiler and NVRTC.
@Suite("Kernel ABI layout (KV cache)")
struct DecodeABILayoutTests {
  @Test("offsets and sizes match the header's static asserts")
  func layouts() {
    let layout = KernelABILayoutTests()
    layout.expectLayout(FACacheIndex.self, size: 64, [
      (\FACacheIndex.seqlens, 0),
      (\FACacheIndex.batch_idx, 8),
      (\FACacheIndex.page_table, 16),
      (\FACacheIndex.seqlens_stride, 24),
      (\FACacheIndex.batch_idx_stride, 32),
      (\FACacheIndex.page_table_batch_stride, 40),
      (\FACacheIndex.page_table_page_stride, 48),
      (\FACacheIndex.page_size, 56),
      (\FACacheIndex.seqlen_new, 60)
    ])
    layout.expectLayout(FAKVAppendParams.self, size: 208, [
      (\FAKVAppendParams.k_new, 0),
      (\FAKVAppendParams.v_new, 8),
      (\FAKVAppendParams.k_cache, 16),
      (\FAKVAppendParams.v_cache, 24),
      (\FAKVAppendParams.k_new_strides, 32),
      (\FAKVAppendParams.v_new_strides, 56),
      (\FAKVAppendParams.k_cache_strides, 80),
      (\FAKVAppendParams.v_cache_strides, 104),
      (\FAKVAppendParams.index, 128),
      (\FAKVAppendParams.heads_kv, 192),
      (\FAKVAppendParams.head_dim, 196),
      (\FAKVAppendParams.head_dim_v, 200),
      (\FAKVAppendParams.padding, 204)
    ])
    layout.expectLayout(FADecodeParams.self, size: 280, [
      (\FADecodeParams.q, 0),
      (\FADecodeParams.k_cache, 8),
      (\FADecodeParams.v_cache, 16),
      (\FADecodeParams.o, 24),
      (\FADecodeParams.lse, 32),
      (\FADecodeParams.o_partial, 40),
      (\FADecodeParams.lse_partial, 48),
      (\FADecodeParams.q_strides, 56),
      (\FADecodeParams.k_strides, 80),
      (\FADecodeParams.v_strides, 104),
      (\FADecodeParams.o_strides, 128),
      (\FADecodeParams.lse_strides, 152),
      (\FADecodeParams.index, 168),
      (\FADecodeParams.batch, 232),
      (\FADecodeParams.seqlen_q, 236),
      (\FADecodeParams.heads_q, 240),
      (\FADecodeParams.group, 244),
      (\FADecodeParams.num_splits, 248),
      (\FADecodeParams.scale, 252),
      (\FADecodeParams.softcap, 256),
      (\FADecodeParams.window_left, 260),
      (\FADecodeParams.window_right, 264),
      (\FADecodeParams.padding, 268),
      (\FADecodeParams.split_counters, 272)
    ])
    layout.expectLayout(FADecodeCombineParams.self, size: 88, [
      (\FADecodeCombineParams.o_partial, 0),
      (\FADecodeCombineParams.lse_partial, 8),
      (\FADecodeCombineParams.o, 16),
      (\FADecodeCombineParams.lse, 24),
      (\FADecodeCombineParams.o_strides, 32),
      (\FADecodeCombineParams.lse_strides, 56),
      (\FADecodeCombineParams.batch, 72),
      (\FADecodeCombineParams.seqlen_q, 76),
      (\FADecodeCombineParams.heads_q, 80),
      (\FADecodeCombineParams.num_splits, 84)
    ])
    layout.expectLayout(FAL2SweepParams.self, size: 16, [
      (\FAL2SweepParams.data, 0),
      (\FAL2SweepParams.count, 8)
    ])
  }
}
