import Testing
import _FlashAttentionKernelABI

/// The kernel parameter structs as Swift imported them (Kernels' FlashAttentionKernelABI.h): every
/// offset and size must be the ones the header's static asserts pin for the host C compiler and
/// NVRTC, or a launch hands a kernel misplaced fields.
@Suite("Kernel ABI layout")
struct KernelABILayoutTests {
  func expectLayout<Parameters>(
    _ type: Parameters.Type, size: Int, _ fields: [(PartialKeyPath<Parameters>, Int)],
    sourceLocation: SourceLocation = #_sourceLocation
  ) {
    #expect(MemoryLayout<Parameters>.size == size, "\(Parameters.self) size", sourceLocation: sourceLocation)
    for (index, (field, offset)) in fields.enumerated() {
      #expect(
        MemoryLayout<Parameters>.offset(of: field) == offset, "\(Parameters.self) field \(index)",
        sourceLocation: sourceLocation)
    }
  }

  @Test("offsets and sizes match the header's static asserts")
  func layouts() {
    #expect(MemoryLayout<FATensorMap>.size == 128)
    expectLayout(FAStrides.self, size: 24, [
      (\FAStrides.batch, 0),
      (\FAStrides.row, 8),
      (\FAStrides.head, 16)
    ])
    expectLayout(FAStatsStrides.self, size: 16, [
      (\FAStatsStrides.batch, 0),
      (\FAStatsStrides.head, 8)
    ])
    expectLayout(FADropoutParams.self, size: 32, [
      (\FADropoutParams.seed, 0),
      (\FADropoutParams.offset, 8),
      (\FADropoutParams.threshold, 16),
      (\FADropoutParams.keep_scale, 20),
      (\FADropoutParams.batch_head_base, 24),
      (\FADropoutParams.heads_q, 28)
    ])
    expectLayout(FAForwardParams.self, size: 264, [
      (\FAForwardParams.q, 0),
      (\FAForwardParams.k, 8),
      (\FAForwardParams.v, 16),
      (\FAForwardParams.o, 24),
      (\FAForwardParams.lse, 32),
      (\FAForwardParams.q_strides, 40),
      (\FAForwardParams.k_strides, 64),
      (\FAForwardParams.v_strides, 88),
      (\FAForwardParams.o_strides, 112),
      (\FAForwardParams.lse_strides, 136),
      (\FAForwardParams.seqlen_q, 152),
      (\FAForwardParams.seqlen_k, 156),
      (\FAForwardParams.group, 160),
      (\FAForwardParams.scale, 164),
      (\FAForwardParams.softcap, 168),
      (\FAForwardParams.window_left, 172),
      (\FAForwardParams.window_right, 176),
      (\FAForwardParams.alibi_slopes, 184),
      (\FAForwardParams.alibi_batch_stride, 192),
      (\FAForwardParams.cu_seqlens_q, 200),
      (\FAForwardParams.cu_seqlens_k, 208),
      (\FAForwardParams.seqused_q, 216),
      (\FAForwardParams.seqused_k, 224),
      (\FAForwardParams.dropout, 232)
    ])
    expectLayout(FABackwardPreprocessParams.self, size: 320, [
      (\FABackwardPreprocessParams.o, 0),
      (\FABackwardPreprocessParams.dout, 8),
      (\FABackwardPreprocessParams.lse, 16),
      (\FABackwardPreprocessParams.lse2, 24),
      (\FABackwardPreprocessParams.delta, 32),
      (\FABackwardPreprocessParams.o_strides, 40),
      (\FABackwardPreprocessParams.dout_strides, 64),
      (\FABackwardPreprocessParams.lse_strides, 88),
      (\FABackwardPreprocessParams.seqlen_q, 104),
      (\FABackwardPreprocessParams.heads_q, 108),
      (\FABackwardPreprocessParams.cu_seqlens_q, 112),
      (\FABackwardPreprocessParams.seqused_q, 120),
      (\FABackwardPreprocessParams.q, 128),
      (\FABackwardPreprocessParams.k, 136),
      (\FABackwardPreprocessParams.v, 144),
      (\FABackwardPreprocessParams.q_strides, 152),
      (\FABackwardPreprocessParams.k_strides, 176),
      (\FABackwardPreprocessParams.v_strides, 200),
      (\FABackwardPreprocessParams.seqlen_k, 224),
      (\FABackwardPreprocessParams.group, 228),
      (\FABackwardPreprocessParams.scale, 232),
      (\FABackwardPreprocessParams.softcap, 236),
      (\FABackwardPreprocessParams.window_left, 240),
      (\FABackwardPreprocessParams.window_right, 244),
      (\FABackwardPreprocessParams.alibi_slopes, 248),
      (\FABackwardPreprocessParams.alibi_batch_stride, 256),
      (\FABackwardPreprocessParams.cu_seqlens_k, 264),
      (\FABackwardPreprocessParams.seqused_k, 272),
      (\FABackwardPreprocessParams.dropout, 280),
      (\FABackwardPreprocessParams.packed_rows, 312)
    ])
    expectLayout(FABackwardKeyValueParams.self, size: 328, [
      (\FABackwardKeyValueParams.q, 0),
      (\FABackwardKeyValueParams.k, 8),
      (\FABackwardKeyValueParams.v, 16),
      (\FABackwardKeyValueParams.dout, 24),
      (\FABackwardKeyValueParams.lse2, 32),
      (\FABackwardKeyValueParams.delta, 40),
      (\FABackwardKeyValueParams.dq_accum, 48),
      (\FABackwardKeyValueParams.dk, 56),
      (\FABackwardKeyValueParams.dv, 64),
      (\FABackwardKeyValueParams.q_strides, 72),
      (\FABackwardKeyValueParams.k_strides, 96),
      (\FABackwardKeyValueParams.v_strides, 120),
      (\FABackwardKeyValueParams.dout_strides, 144),
      (\FABackwardKeyValueParams.dk_strides, 168),
      (\FABackwardKeyValueParams.dv_strides, 192),
      (\FABackwardKeyValueParams.seqlen_q, 216),
      (\FABackwardKeyValueParams.seqlen_k, 220),
      (\FABackwardKeyValueParams.group, 224),
      (\FABackwardKeyValueParams.scale, 228),
      (\FABackwardKeyValueParams.softcap, 232),
      (\FABackwardKeyValueParams.window_left, 236),
      (\FABackwardKeyValueParams.window_right, 240),
      (\FABackwardKeyValueParams.key_block_base, 244),
      (\FABackwardKeyValueParams.alibi_slopes, 248),
      (\FABackwardKeyValueParams.alibi_batch_stride, 256),
      (\FABackwardKeyValueParams.cu_seqlens_q, 264),
      (\FABackwardKeyValueParams.cu_seqlens_k, 272),
      (\FABackwardKeyValueParams.seqused_q, 280),
      (\FABackwardKeyValueParams.seqused_k, 288),
      (\FABackwardKeyValueParams.dropout, 296)
    ])
    expectLayout(FAVarlenScheduleParams.self, size: 72, [
      (\FAVarlenScheduleParams.work, 0),
      (\FAVarlenScheduleParams.cu_seqlens, 8),
      (\FAVarlenScheduleParams.seqused, 16),
      (\FAVarlenScheduleParams.cu_other, 24),
      (\FAVarlenScheduleParams.seqused_other, 32),
      (\FAVarlenScheduleParams.batch, 40),
      (\FAVarlenScheduleParams.heads, 44),
      (\FAVarlenScheduleParams.block_rows, 48),
      (\FAVarlenScheduleParams.paired, 52),
      (\FAVarlenScheduleParams.max_rows, 56),
      (\FAVarlenScheduleParams.max_other, 60),
      (\FAVarlenScheduleParams.capacity, 64),
      (\FAVarlenScheduleParams.padding, 68),
    ])
    expectLayout(FAVarlenClearParams.self, size: 72, [
      (\FAVarlenClearParams.tensor, 0),
      (\FAVarlenClearParams.row_stride, 8),
      (\FAVarlenClearParams.head_stride, 16),
      (\FAVarlenClearParams.lse, 24),
      (\FAVarlenClearParams.lse_head_stride, 32),
      (\FAVarlenClearParams.cu_seqlens, 40),
      (\FAVarlenClearParams.seqused, 48),
      (\FAVarlenClearParams.batch, 56),
      (\FAVarlenClearParams.total, 60),
      (\FAVarlenClearParams.heads, 64),
      (\FAVarlenClearParams.width, 68)
    ])
    expectLayout(FABackwardConvertParams.self, size: 80, [
      (\FABackwardConvertParams.dq_accum, 0),
      (\FABackwardConvertParams.dq, 8),
      (\FABackwardConvertParams.dq_strides, 16),
      (\FABackwardConvertParams.seqlen_q, 40),
      (\FABackwardConvertParams.heads_q, 44),
      (\FABackwardConvertParams.scale, 48),
      (\FABackwardConvertParams.cu_seqlens_q, 56),
      (\FABackwardConvertParams.seqused_q, 64),
      (\FABackwardConvertParams.packed_rows, 72)
    ])
    expectLayout(FAHopperForwardParams.self, size: 704, [
      (\FAHopperForwardParams.tm_q, 0),
      (\FAHopperForwardParams.tm_k, 128),
      (\FAHopperForwardParams.tm_v, 256),
      (\FAHopperForwardParams.o, 384),
      (\FAHopperForwardParams.lse, 392),
      (\FAHopperForwardParams.seqlen_q, 400),
      (\FAHopperForwardParams.seqlen_k, 404),
      (\FAHopperForwardParams.heads_q, 408),
      (\FAHopperForwardParams.group, 412),
      (\FAHopperForwardParams.m_blocks, 416),
      (\FAHopperForwardParams.num_items, 420),
      (\FAHopperForwardParams.o_strides, 424),
      (\FAHopperForwardParams.lse_strides, 448),
      (\FAHopperForwardParams.scale_log2, 464),
      (\FAHopperForwardParams.softcap_over, 468),
      (\FAHopperForwardParams.softcap_log2, 472),
      (\FAHopperForwardParams.window_left, 476),
      (\FAHopperForwardParams.window_right, 480),
      (\FAHopperForwardParams.alignment_padding, 484),
      (\FAHopperForwardParams.q_descale, 488),
      (\FAHopperForwardParams.k_descale, 496),
      (\FAHopperForwardParams.v_descale, 504),
      (\FAHopperForwardParams.descale_strides, 512),
      (\FAHopperForwardParams.cu_seqlens_q, 560),
      (\FAHopperForwardParams.cu_seqlens_k, 568),
      (\FAHopperForwardParams.seqused_q, 576),
      (\FAHopperForwardParams.seqused_k, 584),
      (\FAHopperForwardParams.schedule, 592),
      (\FAHopperForwardParams.alibi_slopes, 600),
      (\FAHopperForwardParams.alibi_batch_stride, 608),
      (\FAHopperForwardParams.dropout, 616),
      (\FAHopperForwardParams.padding, 648)
    ])
    expectLayout(FAHopperBackwardParams.self, size: 768, [
      (\FAHopperBackwardParams.tm_q, 0),
      (\FAHopperBackwardParams.tm_k, 128),
      (\FAHopperBackwardParams.tm_v, 256),
      (\FAHopperBackwardParams.tm_dout, 384),
      (\FAHopperBackwardParams.lse2, 512),
      (\FAHopperBackwardParams.delta, 520),
      (\FAHopperBackwardParams.dq_accum, 528),
      (\FAHopperBackwardParams.dk, 536),
      (\FAHopperBackwardParams.dv, 544),
      (\FAHopperBackwardParams.dk_strides, 552),
      (\FAHopperBackwardParams.dv_strides, 576),
      (\FAHopperBackwardParams.seqlen_q, 600),
      (\FAHopperBackwardParams.seqlen_k, 604),
      (\FAHopperBackwardParams.heads_q, 608),
      (\FAHopperBackwardParams.group, 612),
      (\FAHopperBackwardParams.scale, 616),
      (\FAHopperBackwardParams.scale_log2, 620),
      (\FAHopperBackwardParams.window_left, 624),
      (\FAHopperBackwardParams.window_right, 628),
      (\FAHopperBackwardParams.padding, 632),
      (\FAHopperBackwardParams.cu_seqlens_q, 640),
      (\FAHopperBackwardParams.cu_seqlens_k, 648),
      (\FAHopperBackwardParams.seqused_q, 656),
      (\FAHopperBackwardParams.seqused_k, 664),
      (\FAHopperBackwardParams.schedule, 672),
      (\FAHopperBackwardParams.packed_rows, 680),
      (\FAHopperBackwardParams.varlen_padding, 684),
      (\FAHopperBackwardParams.alibi_slopes, 688),
      (\FAHopperBackwardParams.alibi_batch_stride, 696),
      (\FAHopperBackwardParams.dropout, 704),
      (\FAHopperBackwardParams.dropout_padding, 736),
    ])
    expectLayout(FAHopperBackwardDQParams.self, size: 768, [
      (\FAHopperBackwardDQParams.tm_q, 0),
      (\FAHopperBackwardDQParams.tm_k, 128),
      (\FAHopperBackwardDQParams.tm_v, 256),
      (\FAHopperBackwardDQParams.tm_dout, 384),
      (\FAHopperBackwardDQParams.lse2, 512),
      (\FAHopperBackwardDQParams.delta, 520),
      (\FAHopperBackwardDQParams.dq, 528),
      (\FAHopperBackwardDQParams.dq_strides, 536),
      (\FAHopperBackwardDQParams.seqlen_q, 560),
      (\FAHopperBackwardDQParams.seqlen_k, 564),
      (\FAHopperBackwardDQParams.heads_q, 568),
      (\FAHopperBackwardDQParams.group, 572),
      (\FAHopperBackwardDQParams.scale, 576),
      (\FAHopperBackwardDQParams.scale_log2, 580),
      (\FAHopperBackwardDQParams.window_left, 584),
      (\FAHopperBackwardDQParams.window_right, 588),
      (\FAHopperBackwardDQParams.padding, 592),
      (\FAHopperBackwardDQParams.cu_seqlens_q, 640),
      (\FAHopperBackwardDQParams.cu_seqlens_k, 648),
      (\FAHopperBackwardDQParams.seqused_q, 656),
      (\FAHopperBackwardDQParams.seqused_k, 664),
      (\FAHopperBackwardDQParams.schedule, 672),
      (\FAHopperBackwardDQParams.packed_rows, 680),
      (\FAHopperBackwardDQParams.varlen_padding, 684),
      (\FAHopperBackwardDQParams.alibi_slopes, 688),
      (\FAHopperBackwardDQParams.alibi_batch_stride, 696),
      (\FAHopperBackwardDQParams.dropout, 704),
      (\FAHopperBackwardDQParams.dropout_padding, 736),
    ])
    expectLayout(FAStandardScoresParams.self, size: 136, [
      (\FAStandardScoresParams.a, 0),
      (\FAStandardScoresParams.a_strides, 8),
      (\FAStandardScoresParams.b, 32),
      (\FAStandardScoresParams.b_strides, 40),
      (\FAStandardScoresParams.c, 64),
      (\FAStandardScoresParams.lse, 72),
      (\FAStandardScoresParams.lse_strides, 80),
      (\FAStandardScoresParams.rows, 96),
      (\FAStandardScoresParams.columns, 100),
      (\FAStandardScoresParams.depth, 104),
      (\FAStandardScoresParams.heads_q, 108),
      (\FAStandardScoresParams.group, 112),
      (\FAStandardScoresParams.scale, 116),
      (\FAStandardScoresParams.window_left, 120),
      (\FAStandardScoresParams.window_right, 124),
      (\FAStandardScoresParams.mode, 128)
    ])
    expectLayout(FAStandardSoftmaxParams.self, size: 48, [
      (\FAStandardSoftmaxParams.scores, 0),
      (\FAStandardSoftmaxParams.lse, 8),
      (\FAStandardSoftmaxParams.lse_strides, 16),
      (\FAStandardSoftmaxParams.seqlen_q, 32),
      (\FAStandardSoftmaxParams.seqlen_k, 36),
      (\FAStandardSoftmaxParams.heads_q, 40)
    ])
    expectLayout(FAStandardProductParams.self, size: 96, [
      (\FAStandardProductParams.p, 0),
      (\FAStandardProductParams.b, 8),
      (\FAStandardProductParams.b_strides, 16),
      (\FAStandardProductParams.out, 40),
      (\FAStandardProductParams.out_strides, 48),
      (\FAStandardProductParams.seqlen_q, 72),
      (\FAStandardProductParams.seqlen_k, 76),
      (\FAStandardProductParams.width, 80),
      (\FAStandardProductParams.heads_q, 84),
      (\FAStandardProductParams.group, 88),
      (\FAStandardProductParams.factor, 92)
    ])
    expectLayout(FAStandardSoftmaxBackwardParams.self, size: 96, [
      (\FAStandardSoftmaxBackwardParams.p, 0),
      (\FAStandardSoftmaxBackwardParams.ds, 8),
      (\FAStandardSoftmaxBackwardParams.dout, 16),
      (\FAStandardSoftmaxBackwardParams.dout_strides, 24),
      (\FAStandardSoftmaxBackwardParams.out, 48),
      (\FAStandardSoftmaxBackwardParams.out_strides, 56),
      (\FAStandardSoftmaxBackwardParams.seqlen_q, 80),
      (\FAStandardSoftmaxBackwardParams.seqlen_k, 84),
      (\FAStandardSoftmaxBackwardParams.head_dim_v, 88),
      (\FAStandardSoftmaxBackwardParams.heads_q, 92)
    ])
  }
}
