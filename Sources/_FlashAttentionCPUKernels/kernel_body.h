// The kernels, written once against the vector layer (vector_avx2.h or vector_avx512.h, which
// define fa_vf, FA_LANES, FA_NAME and the v_* operations) and included by one translation unit
// per instruction set.

#include "body_math.h"
#include "body_gemm.h"
#include "body_rows.h"
#include "body_dropout.h"
#include "body_forward.h"
#include "body_backward.h"
#include "body_standard.h"
#include "body_probe.h"
#include "body_table.h"
