// Checks libflashattention through its header alone, as a C user would: forward and backward on
// random inputs against a float64 standard attention written here, strided (packed QKV) views,
// GQA, masks and softcap; then every kind of bad argument, which must return its error code and a
// message naming the argument, never crash and never write an output.
//
// Build and run: scripts/check-c-abi.sh (CI runs it).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flash_attention.h"

#include <stddef.h>

// fa_options grows by appending: version 1 ends at 40 bytes, version 2 (ALiBi, dropout) at the
// descale pointers, version 3 (fp8 descales) at sizeof. A field moved would break old callers.
_Static_assert(offsetof(fa_options, alibi_slopes) == 40, "version-2 fields start after the 40-byte version 1");
_Static_assert(offsetof(fa_options, q_descale) == 72, "version-3 fields start after version 2 (72 bytes)");
_Static_assert(sizeof(fa_options) == 96, "version 3 is 96 bytes");

static int failures = 0;

// The pass rule of `verify` and every test (VerificationRule in FlashAttentionTools): in float32,
// a relative L2 error against float64 of at most 1e-4, for every output including the LSE, and a
// NaN never passes. This program checks float32 only; the half precisions' rule (2x a
// same-precision standard attention) runs through the C interface in the Swift suite
// "C interface against the float64 reference".
#define FLOAT32_TOLERANCE 1e-4

#define CHECK(condition, ...)                  \
  do {                                         \
    if (!(condition)) {                        \
      failures++;                              \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);            \
      fprintf(stderr, "\n");                   \
    }                                          \
  } while (0)

// xorshift64* and Box-Muller: fresh inputs each run (seeded from the clock, printed for replay).
static uint64_t rng_state;
static double uniform(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return ((rng_state * 2685821657736338717ULL) >> 11) * 0x1.0p-53;
}
static float normal(void) {
  double u = uniform(), v = uniform();
  return (float)(sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v));
}

static fa_tensor tensor4(float *data, int64_t b, int64_t s, int64_t h, int64_t d, const int64_t strides[4]) {
  fa_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device_type = FA_DEVICE_CPU;
  t.dtype = FA_DTYPE_FLOAT32;
  t.rank = 4;
  int64_t shape[4] = {b, s, h, d};
  for (int i = 0; i < 4; i++) {
    t.shape[i] = shape[i];
    t.strides[i] = strides[i];
  }
  return t;
}

static fa_tensor contiguous4(float *data, int64_t b, int64_t s, int64_t h, int64_t d) {
  int64_t strides[4] = {s * h * d, h * d, d, 1};
  return tensor4(data, b, s, h, d, strides);
}

static fa_tensor lse3(float *data, int64_t b, int64_t h, int64_t s) {
  fa_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device_type = FA_DEVICE_CPU;
  t.dtype = FA_DTYPE_FLOAT32;
  t.rank = 3;
  t.shape[0] = b, t.shape[1] = h, t.shape[2] = s;
  t.strides[0] = h * s, t.strides[1] = s, t.strides[2] = 1;
  return t;
}

typedef struct problem {
  int b, sq, sk, hq, hkv, d, dv;
  int causal;
  long left, right;  // -1 unbounded
  float softcap;
} problem;

static int visible(const problem *p, int i, int j) {
  long diagonal = (long)i + p->sk - p->sq;
  long left = p->left, right = p->causal ? 0 : p->right;
  if (p->causal && right < 0) right = 0;
  if (left >= 0 && j < diagonal - left) return 0;
  if (right >= 0 && j > diagonal + right) return 0;
  return 1;
}

static double element(const float *base, const int64_t strides[4], int b, int s, int h, int c) {
  return base[b * strides[0] + s * strides[1] + h * strides[2] + c];
}

// Standard attention in float64: O, LSE and, when dout is given, dQ, dK, dV (dense, contiguous).
static void reference(const problem *p, double scale, const float *q, const int64_t qs[4], const float *k,
                      const int64_t ks[4], const float *v, const int64_t vs[4], const float *dout, double *o,
                      double *lse, double *dq, double *dk, double *dv) {
  int group = p->hq / p->hkv;
  double *s = malloc(sizeof(double) * p->sk), *prob = malloc(sizeof(double) * p->sk);
  double *dprob = malloc(sizeof(double) * p->sk), *tanh_s = malloc(sizeof(double) * p->sk);
  if (dq) {
    memset(dq, 0, sizeof(double) * p->b * p->sq * p->hq * p->d);
    memset(dk, 0, sizeof(double) * p->b * p->sk * p->hkv * p->d);
    memset(dv, 0, sizeof(double) * p->b * p->sk * p->hkv * p->dv);
  }
  for (int b = 0; b < p->b; b++)
    for (int h = 0; h < p->hq; h++)
      for (int i = 0; i < p->sq; i++) {
        int kh = h / group;
        double max = -INFINITY;
        for (int j = 0; j < p->sk; j++) {
          double dot = 0;
          for (int c = 0; c < p->d; c++) dot += element(q, qs, b, i, h, c) * element(k, ks, b, j, kh, c);
          dot *= scale;
          tanh_s[j] = 0;
          if (p->softcap > 0) {
            tanh_s[j] = tanh(dot / p->softcap);
            dot = p->softcap * tanh_s[j];
          }
          s[j] = visible(p, i, j) ? dot : -INFINITY;
          if (s[j] > max) max = s[j];
        }
        double sum = 0;
        for (int j = 0; j < p->sk; j++) {
          prob[j] = s[j] == -INFINITY ? 0 : exp(s[j] - max);
          sum += prob[j];
        }
        double *orow = o + ((b * p->sq + i) * p->hq + h) * p->dv;
        lse[(b * p->hq + h) * p->sq + i] = sum > 0 ? max + log(sum) : -INFINITY;
        for (int c = 0; c < p->dv; c++) {
          double acc = 0;
          for (int j = 0; j < p->sk; j++) acc += (sum > 0 ? prob[j] / sum : 0) * element(v, vs, b, j, kh, c);
          orow[c] = acc;
        }
        if (!dq || sum == 0) continue;
        const float *g = dout + ((b * p->sq + i) * p->hq + h) * p->dv;
        double rowd = 0;
        for (int c = 0; c < p->dv; c++) rowd += g[c] * orow[c];
        for (int j = 0; j < p->sk; j++) {
          double pj = prob[j] / sum, dp = 0;
          for (int c = 0; c < p->dv; c++) dp += g[c] * element(v, vs, b, j, kh, c);
          double ds = pj * (dp - rowd);
          if (p->softcap > 0) ds *= 1 - tanh_s[j] * tanh_s[j];
          ds *= scale;
          for (int c = 0; c < p->dv; c++) dv[((b * p->sk + j) * p->hkv + kh) * p->dv + c] += pj * g[c];
          for (int c = 0; c < p->d; c++) {
            dq[((b * p->sq + i) * p->hq + h) * p->d + c] += ds * element(k, ks, b, j, kh, c);
            dk[((b * p->sk + j) * p->hkv + kh) * p->d + c] += ds * element(q, qs, b, i, h, c);
          }
        }
        (void)dprob;
      }
  free(s), free(prob), free(dprob), free(tanh_s);
}

// ||a - ref|| / ||ref|| over n elements; NaN fails, and so does anything but the reference's own infinity.
static double relative_error(const float *a, const double *ref, size_t n) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; i++) {
    if (isinf(ref[i])) {  // LSE = -inf of a row that sees no key: exactly that, or a failure
      if (a[i] == ref[i]) continue;
      return INFINITY;
    }
    if (!isfinite(a[i])) return INFINITY;
    diff += (a[i] - ref[i]) * (a[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

static float *poisoned(size_t n) {
  float *x = malloc(sizeof(float) * (n ? n : 1));
  for (size_t i = 0; i < n; i++) x[i] = NAN;
  return x;
}

static float *random_floats(size_t n) {
  float *x = malloc(sizeof(float) * (n ? n : 1));
  for (size_t i = 0; i < n; i++) x[i] = normal();
  return x;
}

// One forward + backward through the C interface against the reference. q, k, v live in one
// packed buffer [b, s, 3, h, d] when `packed` (strided views), else in their own arrays.
static void check_problem(problem p, int packed) {
  size_t nq = (size_t)p.b * p.sq * p.hq * p.d, nk = (size_t)p.b * p.sk * p.hkv * p.d;
  size_t nv = (size_t)p.b * p.sk * p.hkv * p.dv, no = (size_t)p.b * p.sq * p.hq * p.dv;
  size_t nl = (size_t)p.b * p.hq * p.sq;
  float *q, *k, *v, *packed_buffer = NULL;
  int64_t qs[4], ks[4], vs[4];
  if (packed) {  // requires sq == sk, hq == hkv, d == dv
    packed_buffer = random_floats((size_t)p.b * p.sq * 3 * p.hq * p.d);
    int64_t row = 3 * (int64_t)p.hq * p.d;
    int64_t strides[4] = {p.sq * row, row, p.d, 1};
    memcpy(qs, strides, sizeof qs), memcpy(ks, strides, sizeof ks), memcpy(vs, strides, sizeof vs);
    q = packed_buffer, k = packed_buffer + p.hq * p.d, v = packed_buffer + 2 * p.hq * p.d;
  } else {
    q = random_floats(nq), k = random_floats(nk), v = random_floats(nv);
    int64_t a[4] = {p.sq * p.hq * p.d, p.hq * p.d, p.d, 1}, b[4] = {p.sk * p.hkv * p.d, p.hkv * p.d, p.d, 1};
    int64_t c[4] = {p.sk * p.hkv * p.dv, p.hkv * p.dv, p.dv, 1};
    memcpy(qs, a, sizeof qs), memcpy(ks, b, sizeof ks), memcpy(vs, c, sizeof vs);
  }
  float *out = poisoned(no), *lse = poisoned(nl), *dout = random_floats(no);
  float *dq = poisoned(nq), *dk = poisoned(nk), *dv = poisoned(nv);
  fa_tensor tq = tensor4(q, p.b, p.sq, p.hq, p.d, qs), tk = tensor4(k, p.b, p.sk, p.hkv, p.d, ks);
  fa_tensor tv = tensor4(v, p.b, p.sk, p.hkv, p.dv, vs), to = contiguous4(out, p.b, p.sq, p.hq, p.dv);
  fa_tensor tl = lse3(lse, p.b, p.hq, p.sq), tg = contiguous4(dout, p.b, p.sq, p.hq, p.dv);
  fa_tensor tdq = contiguous4(dq, p.b, p.sq, p.hq, p.d), tdk = contiguous4(dk, p.b, p.sk, p.hkv, p.d);
  fa_tensor tdv = contiguous4(dv, p.b, p.sk, p.hkv, p.dv);
  fa_options options = fa_options_default();
  options.causal = p.causal;
  options.window_left = p.left;
  options.window_right = p.right;
  options.softcap = p.softcap;

  int status = fa_forward(&tq, &tk, &tv, &to, &tl, &options, NULL);
  CHECK(status == FA_SUCCESS, "forward returned %d: %s", status, fa_last_error_message());
  status = fa_backward(&tq, &tk, &tv, &to, &tl, &tg, &tdq, &tdk, &tdv, &options, NULL);
  CHECK(status == FA_SUCCESS, "backward returned %d: %s", status, fa_last_error_message());

  double *ro = malloc(sizeof(double) * no), *rl = malloc(sizeof(double) * nl);
  double *rdq = malloc(sizeof(double) * nq), *rdk = malloc(sizeof(double) * nk), *rdv = malloc(sizeof(double) * nv);
  reference(&p, 1.0 / sqrt(p.d), q, qs, k, ks, v, vs, dout, ro, rl, rdq, rdk, rdv);
  const char *names[5] = {"out", "lse", "dq", "dk", "dv"};
  double errors[5] = {relative_error(out, ro, no), relative_error(lse, rl, nl), relative_error(dq, rdq, nq),
                      relative_error(dk, rdk, nk), relative_error(dv, rdv, nv)};
  for (int i = 0; i < 5; i++)
    CHECK(errors[i] <= FLOAT32_TOLERANCE, "b=%d sq=%d sk=%d hq=%d hkv=%d d=%d dv=%d causal=%d window=(%ld,%ld) softcap=%g packed=%d: %s relative error %.3g > %g",
          p.b, p.sq, p.sk, p.hq, p.hkv, p.d, p.dv, p.causal, p.left, p.right, p.softcap, packed, names[i], errors[i],
          FLOAT32_TOLERANCE);
  printf("  b=%d sq=%-4d sk=%-4d hq=%d hkv=%d d=%-3d dv=%-3d causal=%d window=(%ld,%ld) softcap=%-4g packed=%d  out %.1e lse %.1e dq %.1e dk %.1e dv %.1e\n",
         p.b, p.sq, p.sk, p.hq, p.hkv, p.d, p.dv, p.causal, p.left, p.right, p.softcap, packed, errors[0], errors[1],
         errors[2], errors[3], errors[4]);
  if (packed) free(packed_buffer);
  else free(q), free(k), free(v);
  free(out), free(lse), free(dout), free(dq), free(dk), free(dv), free(ro), free(rl), free(rdq), free(rdk), free(rdv);
}

// A bad call must return `expected`, name `needle` in its message, and leave `out` untouched.
static void expect_error(int status, int expected, const char *needle, float *out, size_t n, const char *what) {
  const char *message = fa_last_error_message();
  CHECK(status == expected, "%s: status %d, expected %d (message: %s)", what, status, expected, message);
  CHECK(message != NULL && strstr(message, needle) != NULL, "%s: message \"%s\" does not name \"%s\"", what,
        message ? message : "(null)", needle);
  for (size_t i = 0; i < n; i++)
    if (!isnan(out[i])) {
      CHECK(0, "%s: wrote out[%zu]", what, i);
      break;
    }
  for (size_t i = 0; i < n; i++) out[i] = NAN;  // the next check starts clean whatever happened
}

static void check_bad_arguments(void) {
  enum { b = 1, s = 17, h = 2, d = 16 };
  float *q = random_floats(b * s * h * d), *k = random_floats(b * s * h * d), *v = random_floats(b * s * h * d);
  float *out = poisoned(b * s * h * d), *lse = poisoned(b * h * s);
  fa_tensor tq = contiguous4(q, b, s, h, d), tk = contiguous4(k, b, s, h, d), tv = contiguous4(v, b, s, h, d);
  fa_tensor to = contiguous4(out, b, s, h, d), tl = lse3(lse, b, h, s);
  fa_options options = fa_options_default();
  size_t n = b * s * h * d;
  fa_tensor bad;

  expect_error(fa_forward(NULL, &tk, &tv, &to, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "q", out, n, "NULL q");
  bad = tq, bad.rank = 3;
  expect_error(fa_forward(&bad, &tk, &tv, &to, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "q.shape", out, n, "rank 3 q");
  bad = tq, bad.rank = 99;
  expect_error(fa_forward(&bad, &tk, &tv, &to, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "q.rank", out, n, "rank 99");
  bad = tk, bad.shape[1] = -5;
  expect_error(fa_forward(&tq, &bad, &tv, &to, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "k.shape[1]", out, n, "negative size");
  bad = tv, bad.dtype = 42;
  expect_error(fa_forward(&tq, &tk, &bad, &to, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "v.dtype", out, n, "unknown dtype");
  bad = tv, bad.device_type = 7;
  expect_error(fa_forward(&tq, &tk, &bad, &to, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "v.device_type", out, n, "unknown device");
  bad = tk, bad.strides[3] = 2;
  expect_error(fa_forward(&tq, &bad, &tv, &to, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "k.strides", out, n, "non-unit last stride");
  bad = tk, bad.strides[1] = INT64_MAX / 2;
  expect_error(fa_forward(&tq, &bad, &tv, &to, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "k.shape", out, n, "overflowing strides");
  bad = tk, bad.shape[2] = 3;
  expect_error(fa_forward(&tq, &bad, &tv, &to, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "v.shape[2]", out, n, "kv heads differ");
  bad = tk, bad.data = NULL;
  expect_error(fa_forward(&tq, &bad, &tv, &to, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "k.data", out, n, "NULL data");
  bad = to, bad.shape[1] = s + 1;
  expect_error(fa_forward(&tq, &tk, &tv, &bad, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "out.shape", out, n, "out shape");
  bad = tl, bad.dtype = FA_DTYPE_FLOAT16;
  expect_error(fa_forward(&tq, &tk, &tv, &to, &bad, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "lse.dtype", out, n, "lse dtype");
  int stream_token = 0;
  expect_error(fa_forward(&tq, &tk, &tv, &to, &tl, &options, &stream_token), FA_ERROR_INVALID_ARGUMENT, "stream", out, n,
               "stream with CPU tensors");

  fa_options bad_options = options;
  bad_options.struct_size = 3;
  expect_error(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL), FA_ERROR_INVALID_ARGUMENT, "options.struct_size", out, n, "struct_size");
  bad_options = options, bad_options.softmax_scale = -1;
  expect_error(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL), FA_ERROR_INVALID_ARGUMENT, "options.softmax_scale", out, n, "negative scale");
  bad_options = options, bad_options.softmax_scale = NAN;
  expect_error(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL), FA_ERROR_INVALID_ARGUMENT, "options.softmax_scale", out, n, "NaN scale");
  bad_options = options, bad_options.softcap = -2;
  expect_error(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL), FA_ERROR_INVALID_ARGUMENT, "options.softcap", out, n, "negative softcap");
  bad_options = options, bad_options.causal = 2;
  expect_error(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL), FA_ERROR_INVALID_ARGUMENT, "options.causal", out, n, "causal = 2");
  bad_options = options, bad_options.dropout_p = 1;
  expect_error(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL), FA_ERROR_INVALID_ARGUMENT, "dropout_p", out, n, "dropout_p = 1");
  float slopes[3] = {0.5f, 0.25f, 0.125f};
  fa_tensor tslopes = {.data = slopes, .dtype = FA_DTYPE_FLOAT32, .device_type = FA_DEVICE_CPU, .rank = 1, .shape = {3}, .strides = {1}};
  bad_options = options, bad_options.alibi_slopes = &tslopes;
  expect_error(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL), FA_ERROR_INVALID_ARGUMENT, "alibi_slopes", out, n,
               "3 slopes for 2 heads");
  // A caller built against the first fa_options (40 bytes, no ALiBi or dropout fields) still runs.
  bad_options = options, bad_options.struct_size = 40, bad_options.dropout_p = 0.5f;
  CHECK(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL) == FA_SUCCESS, "version-1 options: %s", fa_last_error_message());
  // Version 2 (through dropout_offset, no descale fields): the descale pointers past its end are
  // not read (here they point at a float32 tensor, which a version-3 caller would be refused).
  bad_options = options, bad_options.struct_size = (uint32_t)offsetof(fa_options, q_descale);
  bad_options.q_descale = &tq;
  CHECK(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL) == FA_SUCCESS, "version-2 options: %s", fa_last_error_message());
  for (size_t i = 0; i < n; i++) out[i] = NAN;
  bad_options.struct_size = (uint32_t)sizeof(fa_options);
  expect_error(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL), FA_ERROR_INVALID_ARGUMENT, "q_descale", out, n,
               "version-3 descales with float32 inputs");
  // A size between two versions ends inside a field: refused.
  bad_options = options, bad_options.struct_size = 48;
  expect_error(fa_forward(&tq, &tk, &tv, &to, &tl, &bad_options, NULL), FA_ERROR_INVALID_ARGUMENT, "options.struct_size", out, n,
               "struct_size between versions");
  for (size_t i = 0; i < n; i++) out[i] = NAN;

  fa_tensor dq = contiguous4(poisoned(n), b, s, h, d);
  expect_error(fa_backward(&tq, &tk, &tv, &to, &tl, NULL, &dq, &dq, &dq, &options, NULL), FA_ERROR_INVALID_ARGUMENT,
               "dout", out, n, "NULL dout");
  free(dq.data);

  int status = fa_backend_status(FA_DEVICE_CUDA, 0);
  printf("  CUDA backend status %d: %s\n", status, status == FA_SUCCESS ? "available" : fa_last_error_message());
  CHECK(status == FA_SUCCESS || strlen(fa_last_error_message()) > 0, "a CUDA refusal must say why");
  CHECK(fa_backend_status(FA_DEVICE_CPU, 0) == FA_SUCCESS, "CPU backend: %s", fa_last_error_message());
  CHECK(strcmp(fa_last_error_message(), "") == 0, "a success clears the message");
  free(q), free(k), free(v), free(out), free(lse);
}

static fa_tensor index_vector(int32_t *data, int64_t n) {
  fa_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device_type = FA_DEVICE_CPU;
  t.dtype = FA_DTYPE_INT32;
  t.rank = 1;
  t.shape[0] = n;
  t.strides[0] = 1;
  return t;
}

static fa_tensor rows3(float *data, int64_t total, int64_t h, int64_t d) {
  fa_tensor t = contiguous4(data, 1, total, h, d);
  t.rank = 3;
  for (int i = 0; i < 3; i++) t.shape[i] = t.shape[i + 1], t.strides[i] = t.strides[i + 1];
  return t;
}

// A packed batch of three causal sequences (lengths 5, 0, 19; keys 9, 4, 19) against the
// reference run on each sequence alone.
static void check_varlen(void) {
  enum { h = 2, d = 16, total_q = 24, total_k = 32 };
  int32_t cu_q[4] = {0, 5, 5, 24}, cu_k[4] = {0, 9, 13, 32};
  float *q = random_floats(total_q * h * d), *k = random_floats(total_k * h * d), *v = random_floats(total_k * h * d);
  float *out = poisoned(total_q * h * d), *lse = poisoned(h * total_q);
  fa_tensor tq = rows3(q, total_q, h, d), tk = rows3(k, total_k, h, d), tv = rows3(v, total_k, h, d);
  fa_tensor to = rows3(out, total_q, h, d), tl = lse3(lse, 1, h, total_q);
  tl.rank = 2, tl.shape[0] = h, tl.shape[1] = total_q, tl.strides[0] = total_q, tl.strides[1] = 1;
  fa_tensor cq = index_vector(cu_q, 4), ck = index_vector(cu_k, 4);
  fa_options options = fa_options_default();
  options.causal = 1;
  int status = fa_varlen_forward(&tq, &tk, &tv, &to, &tl, &cq, &ck, NULL, NULL, 19, 19, &options, NULL);
  CHECK(status == FA_SUCCESS, "varlen forward returned %d: %s", status, fa_last_error_message());
  for (int b = 0; b < 3; b++) {
    problem p = {1, cu_q[b + 1] - cu_q[b], cu_k[b + 1] - cu_k[b], h, h, d, d, 1, -1, -1, 0};
    if (p.sq == 0) continue;
    int64_t strides[4] = {0, h * d, d, 1};
    double *ro = malloc(sizeof(double) * p.sq * h * d), *rl = malloc(sizeof(double) * h * p.sq);
    reference(&p, 1.0 / sqrt(d), q + cu_q[b] * h * d, strides, k + cu_k[b] * h * d, strides, v + cu_k[b] * h * d,
              strides, NULL, ro, rl, NULL, NULL, NULL);
    double error = relative_error(out + cu_q[b] * h * d, ro, (size_t)p.sq * h * d);
    CHECK(error <= FLOAT32_TOLERANCE, "varlen sequence %d: out relative error %.3g", b, error);
    // The LSE rows of this sequence, gathered from [heads, total_q].
    float *sequence_lse = malloc(sizeof(float) * h * p.sq);
    for (int hh = 0; hh < h; hh++)
      for (int i = 0; i < p.sq; i++) sequence_lse[hh * p.sq + i] = lse[hh * total_q + cu_q[b] + i];
    error = relative_error(sequence_lse, rl, (size_t)h * p.sq);
    CHECK(error <= FLOAT32_TOLERANCE, "varlen sequence %d: lse relative error %.3g", b, error);
    free(sequence_lse);
    free(ro), free(rl);
  }
  cu_q[2] = 3;  // decreasing prefix sums: the message names the entry
  expect_error(fa_varlen_forward(&tq, &tk, &tv, &to, &tl, &cq, &ck, NULL, NULL, 19, 19, &options, NULL),
               FA_ERROR_INVALID_ARGUMENT, "cu_seqlens_q[2]", out, 0, "decreasing cu_seqlens");
  cq.dtype = FA_DTYPE_FLOAT32;
  expect_error(fa_varlen_forward(&tq, &tk, &tv, &to, &tl, &cq, &ck, NULL, NULL, 19, 19, &options, NULL),
               FA_ERROR_INVALID_ARGUMENT, "cu_seqlens_q.dtype", out, 0, "float cu_seqlens");
  printf("  varlen: 3 sequences checked\n");
  free(q), free(k), free(v), free(out), free(lse);
}

// One decode step against a paged cache (page size 3, shuffled pages, NaN in every slot the
// step must not read), appending one new token per sequence.
static void check_paged_kvcache(void) {
  enum { batch = 2, h = 4, hkv = 2, d = 16, page = 3, pages = 8, max_pages = 4 };
  int32_t seqlens[batch] = {4, 7}, table[batch * max_pages] = {5, 1, -9, -9, 0, 6, 3, -9};
  float *k_cache = poisoned(pages * page * hkv * d), *v_cache = poisoned(pages * page * hkv * d);
  float *q = random_floats(batch * h * d), *k_new = random_floats(batch * hkv * d), *v_new = random_floats(batch * hkv * d);
  float *out = poisoned(batch * h * d), *lse = poisoned(batch * h);
  float *keys = malloc(sizeof(float) * 8 * hkv * d), *values = malloc(sizeof(float) * 8 * hkv * d);
  for (int b = 0; b < batch; b++)
    for (int t = 0; t < seqlens[b]; t++)
      for (int c = 0; c < hkv * d; c++) {
        size_t slot = ((size_t)table[b * max_pages + t / page] * page + t % page) * hkv * d + c;
        k_cache[slot] = normal(), v_cache[slot] = normal();
      }
  fa_tensor tq = contiguous4(q, batch, 1, h, d), tkc = contiguous4(k_cache, pages, page, hkv, d);
  fa_tensor tvc = contiguous4(v_cache, pages, page, hkv, d), tkn = contiguous4(k_new, batch, 1, hkv, d);
  fa_tensor tvn = contiguous4(v_new, batch, 1, hkv, d), to = contiguous4(out, batch, 1, h, d), tl = lse3(lse, batch, h, 1);
  fa_tensor ts = index_vector(seqlens, batch), tt = index_vector(table, batch * max_pages);
  tt.rank = 2, tt.shape[0] = batch, tt.shape[1] = max_pages, tt.strides[0] = max_pages, tt.strides[1] = 1;
  fa_options options = fa_options_default();
  options.causal = 1;
  int status = fa_kvcache_forward(&tq, &tkc, &tvc, &tkn, &tvn, &ts, NULL, &tt, &to, &tl, 0, &options, NULL);
  CHECK(status == FA_SUCCESS, "kvcache forward returned %d: %s", status, fa_last_error_message());
  for (int b = 0; b < batch; b++) {
    int n = seqlens[b] + 1;
    for (int t = 0; t < n; t++)
      for (int c = 0; c < hkv * d; c++) {
        size_t slot = ((size_t)table[b * max_pages + t / page] * page + t % page) * hkv * d + c;
        keys[t * hkv * d + c] = k_cache[slot], values[t * hkv * d + c] = v_cache[slot];
        if (t == n - 1) CHECK(k_cache[slot] == k_new[b * hkv * d + c], "the new key was appended in place");
      }
    problem p = {1, 1, n, h, hkv, d, d, 1, -1, -1, 0};
    int64_t qs[4] = {h * d, h * d, d, 1}, ks[4] = {n * hkv * d, hkv * d, d, 1};
    double ro[h * d], rl[h];
    reference(&p, 1.0 / sqrt(d), q + b * h * d, qs, keys, ks, values, ks, NULL, ro, rl, NULL, NULL, NULL);
    double error = relative_error(out + b * h * d, ro, h * d);
    CHECK(error <= FLOAT32_TOLERANCE, "paged kvcache sequence %d: out relative error %.3g", b, error);
    error = relative_error(lse + b * h, rl, h);
    CHECK(error <= FLOAT32_TOLERANCE, "paged kvcache sequence %d: lse relative error %.3g", b, error);
  }
  table[1] = 99;  // a page the cache does not have
  expect_error(fa_kvcache_forward(&tq, &tkc, &tvc, NULL, NULL, &ts, NULL, &tt, &to, &tl, 0, &options, NULL),
               FA_ERROR_INVALID_ARGUMENT, "page_table[0, 1]", out, 0, "page out of range");
  printf("  paged KV cache: decode step checked\n");
  free(k_cache), free(v_cache), free(q), free(k_new), free(v_new), free(out), free(lse), free(keys), free(values);
}

// float8 e4m3 (no infinities) to float: 1 sign, 4 exponent (bias 7), 3 mantissa bits.
static double e4m3(uint8_t x) {
  int e = (x >> 3) & 15, m = x & 7;
  double v = e == 0 ? m * 0x1p-9 : (1 + m / 8.0) * ldexp(1.0, e - 7);
  return x & 0x80 ? -v : v;
}

static uint16_t bf16_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return (uint16_t)(u >> 16);
}

// fp8 inputs with descales on the CPU: V all 1.0, so out = v_descale exactly; the LSE against
// a float64 one on the decoded inputs; descales refused for other dtypes and other calls; a
// caller built against the first (40-byte) fa_options gets descales of 1.
static void check_fp8(void) {
  enum { b = 2, s = 9, h = 2, d = 16 };
  size_t n = b * s * h * d;
  uint8_t *q = malloc(n), *k = malloc(n), *v = malloc(n);
  for (size_t i = 0; i < n; i++) {
    uint64_t r = (uint64_t)(uniform() * 4294967296.0);
    q[i] = (uint8_t)((r & 0x80) | ((4 + r % 5) << 3) | ((r >> 8) & 7));
    r = (uint64_t)(uniform() * 4294967296.0);
    k[i] = (uint8_t)((r & 0x80) | ((4 + r % 5) << 3) | ((r >> 8) & 7));
    v[i] = 0x38;  // 1.0
  }
  uint16_t *out = malloc(n * 2);
  float *lse = poisoned(b * h * s);
  float qd[b * h], kd[b * h], vd[b * h];
  for (int i = 0; i < b * h; i++) qd[i] = 0.5f + 0.25f * i, kd[i] = 2.0f - 0.25f * i, vd[i] = 0.25f * (i + 1);
  fa_tensor tq = contiguous4((float *)q, b, s, h, d), tk = contiguous4((float *)k, b, s, h, d);
  fa_tensor tv = contiguous4((float *)v, b, s, h, d), to = contiguous4((float *)out, b, s, h, d);
  tq.dtype = tk.dtype = tv.dtype = FA_DTYPE_FLOAT8_E4M3;
  to.dtype = FA_DTYPE_BFLOAT16;
  fa_tensor tl = lse3(lse, b, h, s);
  fa_tensor descales[3];
  float *factors[3] = {qd, kd, vd};
  for (int i = 0; i < 3; i++) {
    memset(&descales[i], 0, sizeof descales[i]);
    descales[i].data = factors[i];
    descales[i].device_type = FA_DEVICE_CPU;
    descales[i].dtype = FA_DTYPE_FLOAT32;
    descales[i].rank = 2;
    descales[i].shape[0] = b, descales[i].shape[1] = h;
    descales[i].strides[0] = h, descales[i].strides[1] = 1;
  }
  fa_options options = fa_options_default();
  options.q_descale = &descales[0], options.k_descale = &descales[1], options.v_descale = &descales[2];
  int status = fa_forward(&tq, &tk, &tv, &to, &tl, &options, NULL);
  CHECK(status == FA_SUCCESS, "fp8 forward: %d %s", status, fa_last_error_message());
  double worst = 0;
  for (int bi = 0; bi < b; bi++)
    for (int hi = 0; hi < h; hi++)
      for (int i = 0; i < s; i++) {
        for (int c = 0; c < d; c++) {
          uint16_t got = out[((bi * s + i) * h + hi) * d + c];
          CHECK(got == bf16_bits(vd[bi * h + hi]), "fp8 out[%d,%d,%d,%d] = 0x%04x, want v_descale", bi, i, hi, c, got);
        }
        double m = -INFINITY, dots[s];
        for (int j = 0; j < s; j++) {
          double dot = 0;
          for (int c = 0; c < d; c++)
            dot += e4m3(q[((bi * s + i) * h + hi) * d + c]) * e4m3(k[((bi * s + j) * h + hi) * d + c]);
          dots[j] = dot * qd[bi * h + hi] * kd[bi * h + hi] / sqrt((double)d);
          if (dots[j] > m) m = dots[j];
        }
        double sum = 0;
        for (int j = 0; j < s; j++) sum += exp(dots[j] - m);
        double want = m + log(sum), got = lse[(bi * h + hi) * s + i];
        double error = fabs(got - want) / fmax(1.0, fabs(want));
        if (error > worst) worst = error;
      }
  CHECK(worst < 1e-5, "fp8 lse relative error %g", worst);

  CHECK(fa_options_default().struct_size == sizeof(fa_options), "fa_options_default sets the newest size");
  // Versions 1 (40 bytes) and 2 (no descale fields): factors of 1, so out = 1.0.
  uint32_t older_sizes[2] = {40, (uint32_t)offsetof(fa_options, q_descale)};
  for (int version = 0; version < 2; version++) {
    fa_options old = options;
    old.struct_size = older_sizes[version];
    for (size_t i = 0; i < n; i++) out[i] = 0x7FC0;  // bf16 NaN
    status = fa_forward(&tq, &tk, &tv, &to, &tl, &old, NULL);
    CHECK(status == FA_SUCCESS && out[0] == 0x3F80 && out[n - 1] == 0x3F80, "fp8 forward, %u-byte options: %d 0x%04x",
          old.struct_size, status, out[0]);
  }

  // The fp8 forward has no ALiBi or dropout: refused by name, out untouched.
  float slopes[h] = {0.5f, 0.25f};
  fa_tensor tslopes = {.data = slopes, .dtype = FA_DTYPE_FLOAT32, .device_type = FA_DEVICE_CPU, .rank = 1, .shape = {h}, .strides = {1}};
  fa_options features[2] = {options, options};
  features[0].alibi_slopes = &tslopes;
  features[1].dropout_p = 0.25f;
  const char *feature_names[2] = {"ALiBi", "dropout"};
  for (int f = 0; f < 2; f++) {
    for (size_t i = 0; i < n; i++) out[i] = 0x7FC0;
    status = fa_forward(&tq, &tk, &tv, &to, &tl, &features[f], NULL);
    CHECK(status == FA_ERROR_INVALID_ARGUMENT && strstr(fa_last_error_message(), feature_names[f]) != NULL,
          "fp8 with %s: status %d (%s)", feature_names[f], status, fa_last_error_message());
    CHECK(out[0] == 0x7FC0 && out[n - 1] == 0x7FC0, "fp8 with %s wrote out", feature_names[f]);
  }

  float *fout = poisoned(n);
  float *fq = random_floats(n);
  fa_tensor tfq = contiguous4(fq, b, s, h, d), tfo = contiguous4(fout, b, s, h, d);
  expect_error(fa_forward(&tfq, &tfq, &tfq, &tfo, &tl, &options, NULL), FA_ERROR_INVALID_ARGUMENT, "q_descale", fout, n,
               "descales with float32 inputs");
  fa_options plain = fa_options_default();
  fa_tensor td = contiguous4((float *)malloc(n), b, s, h, d);
  td.dtype = FA_DTYPE_FLOAT8_E4M3;
  expect_error(fa_backward(&tq, &tk, &tv, &to, &tl, &to, &td, &td, &td, &plain, NULL), FA_ERROR_INVALID_ARGUMENT,
               "q.dtype", fout, n, "fp8 backward");
  free(td.data), free(fq), free(fout), free(q), free(k), free(v), free(out), free(lse);
}

int main(void) {
  char expected[32];
  snprintf(expected, sizeof expected, "%d.%d.%d", FA_VERSION_MAJOR, FA_VERSION_MINOR, FA_VERSION_PATCH);
  CHECK(strcmp(fa_version(), expected) == 0, "fa_version() %s, header %s", fa_version(), expected);
  CHECK(fa_version_number() == FA_VERSION_MAJOR * 10000 + FA_VERSION_MINOR * 100 + FA_VERSION_PATCH, "version number");
  const char *seed_text = getenv("FA_TEST_SEED");
  rng_state = seed_text ? strtoull(seed_text, NULL, 10) : (uint64_t)time(NULL) * 2654435761u + 1;
  printf("libflashattention %s, seed %llu (FA_TEST_SEED replays it)\n", fa_version(), (unsigned long long)rng_state);

  problem problems[] = {
      {1, 1, 1, 1, 1, 8, 8, 0, -1, -1, 0},
      {2, 7, 17, 4, 2, 16, 16, 1, -1, -1, 0},
      {1, 129, 129, 2, 2, 64, 64, 1, -1, -1, 0},
      {1, 17, 129, 3, 1, 40, 24, 0, 8, 4, 0},
      {1, 129, 100, 2, 1, 32, 32, 1, 16, -1, 30},
      {1, 60, 20, 2, 2, 16, 16, 0, 3, 0, 0},  // window (3, 0) with sq > sk: rows that see no key
      {1, 1000, 1000, 1, 1, 64, 64, 0, -1, -1, 0},
  };
  for (size_t i = 0; i < sizeof problems / sizeof problems[0]; i++) check_problem(problems[i], 0);
  check_problem((problem){2, 33, 33, 2, 2, 32, 32, 1, -1, -1, 0}, 1);
  check_bad_arguments();
  check_varlen();
  check_paged_kvcache();
  check_fp8();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("C interface: all checks passed\n");
  return 0;
}
