// The table of one build, from the FA_NAME-suffixed functions of the bodies above.

static const fa_cpu_kernels FA_NAME(fa_kernels) = {
  .name = FA_ISA_NAME,
  .lanes = FA_LANES,
  .wide_columns = 2 * FA_LANES > 16 ? 2 * FA_LANES : 16,
  .gemm = FA_NAME(gemm),
  .forward_step = FA_NAME(forward_step),
  .forward_epilogue = FA_NAME(forward_epilogue),
  .weighted_column_sums = FA_NAME(weighted_column_sums),
  .backward_probabilities = FA_NAME(backward_probabilities),
  .score_gradient = FA_NAME(score_gradient),
  .pack_rows = FA_NAME(pack_rows),
  .pack_transposed = FA_NAME(pack_transposed),
  .pack_panels = FA_NAME(pack_panels),
  .store_rows = FA_NAME(store_rows),
  .row_dot = FA_NAME(row_dot),
  .add_rows = FA_NAME(add_rows),
  .standard_softmax_row = FA_NAME(standard_softmax_row),
  .fma_chains = FA_NAME(fma_chains),
  .fma_chain_count = FA_PROBE_CHAINS,
  .exp2_values = FA_NAME(exp2_values),
};
