// The FMA-peak probe: enough independent FMA chains on full-width vectors to keep every FMA pipe
// busy. Two pipes of 4-cycle latency need 8 chains; FA_PROBE_CHAINS leaves room for longer
// latencies or more pipes (checked on the machine: docs/perf-notes/cpu.md).

#define FA_PROBE_STEP(i) a##i = v_fma(a##i, x, y);

static float FA_NAME(fma_chains)(int64_t iterations, float seed) {
  const fa_vf x = v_set1(0.999999f), y = v_set1(1e-7f * (seed + 1));
  fa_vf a0 = v_set1(seed), a1 = v_add(a0, x), a2 = v_add(a1, x), a3 = v_add(a2, x);
  fa_vf a4 = v_add(a3, x), a5 = v_add(a4, x), a6 = v_add(a5, x), a7 = v_add(a6, x);
  fa_vf a8 = v_add(a7, x), a9 = v_add(a8, x), a10 = v_add(a9, x), a11 = v_add(a10, x);
#if FA_PROBE_CHAINS == 24
  fa_vf a12 = v_add(a11, x), a13 = v_add(a12, x), a14 = v_add(a13, x), a15 = v_add(a14, x);
  fa_vf a16 = v_add(a15, x), a17 = v_add(a16, x), a18 = v_add(a17, x), a19 = v_add(a18, x);
  fa_vf a20 = v_add(a19, x), a21 = v_add(a20, x), a22 = v_add(a21, x), a23 = v_add(a22, x);
#endif
  for (int64_t i = 0; i < iterations; i++) {
    FA_PROBE_STEP(0) FA_PROBE_STEP(1) FA_PROBE_STEP(2) FA_PROBE_STEP(3)
    FA_PROBE_STEP(4) FA_PROBE_STEP(5) FA_PROBE_STEP(6) FA_PROBE_STEP(7)
    FA_PROBE_STEP(8) FA_PROBE_STEP(9) FA_PROBE_STEP(10) FA_PROBE_STEP(11)
#if FA_PROBE_CHAINS == 24
    FA_PROBE_STEP(12) FA_PROBE_STEP(13) FA_PROBE_STEP(14) FA_PROBE_STEP(15)
    FA_PROBE_STEP(16) FA_PROBE_STEP(17) FA_PROBE_STEP(18) FA_PROBE_STEP(19)
    FA_PROBE_STEP(20) FA_PROBE_STEP(21) FA_PROBE_STEP(22) FA_PROBE_STEP(23)
#endif
  }
  fa_vf total = v_add(v_add(v_add(a0, a1), v_add(a2, a3)), v_add(v_add(a4, a5), v_add(a6, a7)));
  total = v_add(total, v_add(v_add(a8, a9), v_add(a10, a11)));
#if FA_PROBE_CHAINS == 24
  total = v_add(total, v_add(v_add(v_add(a12, a13), v_add(a14, a15)), v_add(v_add(a16, a17), v_add(a18, a19))));
  total = v_add(total, v_add(v_add(a20, a21), v_add(a22, a23)));
#endif
  return v_reduce_add(total);
}
#undef FA_PROBE_STEP
