/* tests/check_backend.c - every compute backend that is built (the built-in `ref`, the `blis`
 * and `onednn` plugins) against an exact double-precision product and the `ref` oracle: every
 * transpose combination, row/column/general strides, odd and degenerate shapes, alpha/beta
 * (beta = 0 ignores NaN in C), batched calls (broadcast and interleaved operands), calls from
 * inside OpenMP regions and from several threads at once, thread counts, and ops running on
 * the backend. Then the bf16 precision: the rounding itself, ref-bf16 against ref on
 * hand-rounded inputs (bitwise), onednn-bf16 against ref-bf16 where the CPU allows it (and
 * its refusal where it does not), blis's refusal, old (ABI 1.0) backends, and the config key.
 * A plugin that was not built is left out of the loops (and said so on stderr). */
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

typedef struct be_info {
    const char *name;
    const char *so;        /* NULL: built in */
    bool thread_invariant; /* the same bits whatever the thread count */
} be_info;

static const be_info all_backends[] = {
    {"ref", NULL, true},
    {"blis", "../plugins/.libs/sm_blis.so", true},
    /* oneDNN's sgemm splits k across threads for small m·n (see plugins/onednn) */
    {"onednn", "../plugins/.libs/sm_onednn.so", false},
};
static be_info built[3];
static int n_built;

static sm_registry *reg;

static void load_plugins(void)
{
    reg = sm_registry_new();
    ck_assert_ptr_nonnull(reg);
    for (int i = 0; i < n_built; i++) {
        if (!built[i].so) continue;
        sm_error err = {0};
        int rc = sm_plugin_load(reg, sm_test_build(built[i].so), &err);
        ck_assert_msg(rc == 0, "loading %s: %s", built[i].so, err.text);
    }
}
static void unload(void)
{
    sm_registry_free(reg);
    reg = NULL;
}

static bool is_built(const char *name)
{
    for (int i = 0; i < n_built; i++)
        if (strcmp(built[i].name, name) == 0) return true;
    return false;
}

static sm_backend *open_be(const char *name, int threads)
{
    sm_backend *be = NULL;
    sm_error err = {0};
    ck_assert_msg(sm_backend_new(reg, name, NULL, threads, &be, &err) == 0, "%s: %s", name,
                  err.text);
    return be;
}

static sm_backend *open_bf16(const char *name, int threads)
{
    sm_backend *be = open_be(name, threads);
    sm_error err = {0};
    ck_assert_msg(sm_backend_set_precision(be, SM_PRECISION_BF16, &err) == 0, "%s: %s", name,
                  err.text);
    return be;
}

/* onednn in bf16, or NULL (with the refusal checked) when this CPU cannot run it. */
static sm_backend *open_onednn_bf16(int threads)
{
    sm_backend *be = open_be("onednn", threads);
    sm_error err = {0};
    int rc = sm_backend_set_precision(be, SM_PRECISION_BF16, &err);
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    if (!avx512) {
        /* oneDNN 2.x has no optimised bf16 matmul below AVX-512: refused, never emulated */
        ck_assert_int_eq(rc, SM_EUNSUPPORTED);
        ck_assert_str_eq(err.path, "backend.precision");
        ck_assert_msg(strstr(err.text, "backend 'onednn' cannot run precision bf16 on this CPU") &&
                          strstr(err.text, "AVX-512"),
                      "%s", err.text);
        ck_assert_int_eq(sm_backend_precision(be), SM_PRECISION_FP32);
        sm_backend_free(be);
        return NULL;
    }
    ck_assert_msg(rc == 0, "onednn bf16 on an AVX-512 CPU: %s", err.text);
    ck_assert_int_eq(sm_backend_precision(be), SM_PRECISION_BF16);
    return be;
}

/* A stored matrix of rows × cols with a layout: 0 row-major padded, 1 column-major padded,
 * 2 and 3 general strides (neither unit; rows further apart, or columns). Returns its strides
 * and the storage size. */
#define N_LAYOUTS 4
static size_t layout(int kind, int64_t rows, int64_t cols, int64_t *rs, int64_t *cs)
{
    switch (kind) {
    case 0: *rs = cols + 3, *cs = 1; break;
    case 1: *rs = 1, *cs = rows + 2; break;
    case 2: *rs = 2 * cols + 1, *cs = 2; break;
    default: *rs = 2, *cs = 2 * rows + 1; break;
    }
    if (rows == 0 || cols == 0) return 1;
    return (size_t)((rows - 1) * *rs + (cols - 1) * *cs + 1);
}

static void fill(float *x, size_t n, uint64_t seed)
{
    sm_rng r;
    sm_rng_init(&r, seed, 0, 0, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)(sm_rng_uniform(&r) * 2 - 1);
}

/* One GEMM on `be` and on `ref`, both compared with an error bound from a double product (of
 * the bf16-rounded inputs when bf16). */
static void gemm_case(sm_backend *be, sm_backend *ref, bool bf16, int64_t m, int64_t n,
                      int64_t k, sm_trans ta, sm_trans tb, int la, int lb, int lc, float alpha,
                      float beta)
{
    int64_t rsa, csa, rsb, csb, rsc, csc;
    size_t na = layout(la, ta ? k : m, ta ? m : k, &rsa, &csa);
    size_t nb = layout(lb, tb ? n : k, tb ? k : n, &rsb, &csb);
    size_t nc = layout(lc, m, n, &rsc, &csc);
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c0 = malloc(nc * 4), *c1 = malloc(nc * 4),
          *c2 = malloc(nc * 4);
    fill(a, na, 1);
    fill(b, nb, 2);
    fill(c0, nc, 3);
    if (beta == 0.0f)
        for (size_t i = 0; i < nc; i++) c0[i] = NAN; /* must be ignored */
    memcpy(c1, c0, nc * 4);
    memcpy(c2, c0, nc * 4);
    sm_backend_sgemm(be, ta, tb, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c1, rsc, csc);
    sm_backend_sgemm(ref, ta, tb, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c2, rsc, csc);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, bound = 0;
            for (int64_t p = 0; p < k; p++) {
                float af = ta ? a[p * rsa + i * csa] : a[i * rsa + p * csa];
                float bf = tb ? b[j * rsb + p * csb] : b[p * rsb + j * csb];
                double av = bf16 ? sm_bf16_round(af) : af, bv = bf16 ? sm_bf16_round(bf) : bf;
                s += av * bv;
                bound += fabs(av * bv);
            }
            double cold = beta == 0.0f ? 0.0 : c0[i * rsc + j * csc];
            double want = alpha * s + beta * cold;
            double tol = 1e-6 * (fabs(alpha) * bound + fabs(beta * cold)) + 1e-7;
            float got = c1[i * rsc + j * csc], oracle = c2[i * rsc + j * csc];
            ck_assert_msg(fabs(got - want) <= tol && fabs(oracle - want) <= tol,
                          "%s%s %lldx%lldx%lld ta%d tb%d layouts %d%d%d alpha %g beta %g: "
                          "C[%lld][%lld] got %.8g ref %.8g exact %.8g",
                          sm_backend_name(be), bf16 ? "-bf16" : "", (long long)m, (long long)n,
                          (long long)k, ta, tb, la, lb, lc, alpha, beta, (long long)i,
                          (long long)j, got, oracle, want);
        }
    /* elements of C outside the matrix are untouched */
    bool *inside = calloc(nc, 1);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) inside[i * rsc + j * csc] = true;
    for (size_t e = 0; e < nc; e++)
        if (!inside[e])
            ck_assert_msg(memcmp(&c1[e], &c0[e], 4) == 0, "%s wrote outside C at %zu",
                          sm_backend_name(be), e);
    free(inside);
    free(a);
    free(b);
    free(c0);
    free(c1);
    free(c2);
}

static const int64_t shapes[][3] = {{1, 1, 1},    {1, 7, 5},     {6, 1, 4},   {5, 3, 1},
                                    {37, 29, 53}, {64, 96, 128}, {2, 3, 300}, {0, 4, 5},
                                    {4, 0, 5},    {4, 5, 0}};
static const float alpha_beta[][2] = {{1.0f, 0.0f}, {-0.5f, 1.0f}, {2.0f, 0.25f}};

/* every shape × transposes × a rotation of layouts × alpha/beta */
static void all_cases(sm_backend *be, sm_backend *ref, bool bf16)
{
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int l = 0; l < N_LAYOUTS; l++) {
                const float *p = alpha_beta[(s + (size_t)t + (size_t)l) % 3];
                gemm_case(be, ref, bf16, shapes[s][0], shapes[s][1], shapes[s][2], t & 1,
                          t >> 1, l, (l + 1) % N_LAYOUTS, (l + 2) % N_LAYOUTS, p[0], p[1]);
            }
}

START_TEST(test_sgemm_vs_ref)
{
    sm_backend *be = open_be(built[_i].name, 2), *ref = open_be("ref", 2);
    all_cases(be, ref, false);
    if (strcmp(built[_i].name, "onednn") == 0) {
        /* every layout above reached an optimised oneDNN implementation */
        char buf[512];
        sm_backend_describe(be, buf, sizeof buf);
        ck_assert_msg(strstr(buf, "(0 on oneDNN's reference code), 0 fallback calls"), "%s",
                          buf);
    }
    sm_backend_free(be);
    sm_backend_free(ref);
}
END_TEST

/* ---- GEMM with a bias (the linear layer's forward) ------------------------------------------ */

/* sm_backend_sgemm_bias on be against ref's (ref has no slot: the core's rows-then-beta-1
 * path), over transposes, a padded C (row stride > n: the padding must stay untouched), and
 * the one-row and one-column shapes; then nothing ran on oneDNN's reference code or fell back. */
static void bias_cases(sm_backend *be, sm_backend *ref)
{
    static const int64_t bias_shapes[][3] = {{37, 29, 45}, {1, 33, 20}, {40, 1, 17}, {130, 96, 70}};
    for (size_t s = 0; s < sizeof bias_shapes / sizeof bias_shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            const int64_t *sh = bias_shapes[s];
            int64_t m = sh[0], n = sh[1], k = sh[2], ldc = n + 3;
            sm_trans ta = (t & 1) ? SM_TRANS : SM_NO_TRANS, tb = (t & 2) ? SM_TRANS : SM_NO_TRANS;
            float *a = malloc((size_t)(m * k) * 4), *b = malloc((size_t)(k * n) * 4);
            float *bias = malloc((size_t)n * 4);
            float *got = malloc((size_t)(m * ldc) * 4), *want = malloc((size_t)(m * ldc) * 4);
            fill(a, (size_t)(m * k), 31 + s);
            fill(b, (size_t)(k * n), 41 + s);
            fill(bias, (size_t)n, 51 + s);
            for (int64_t i = 0; i < m * ldc; i++) got[i] = want[i] = NAN; /* beta 0: ignored */
            /* stored row-major: A m×k (k×m when transposed), B k×n (n×k) */
            int64_t rsa = ta ? m : k, rsb = tb ? k : n;
            sm_backend_sgemm_bias(be, ta, tb, m, n, k, a, rsa, 1, b, rsb, 1, bias, got, ldc);
            sm_backend_sgemm_bias(ref, ta, tb, m, n, k, a, rsa, 1, b, rsb, 1, bias, want, ldc);
            double worst = 0;
            for (int64_t i = 0; i < m; i++) {
                for (int64_t j = 0; j < n; j++) {
                    double d = fabs((double)got[i * ldc + j] - want[i * ldc + j]);
                    worst = d > worst ? d : worst;
                }
                for (int64_t j = n; j < ldc; j++)
                    ck_assert_msg(isnan(got[i * ldc + j]), "%s wrote C's padding",
                                  sm_backend_name(be));
            }
            ck_assert_msg(worst < 1e-5 * (double)k, "%s %lldx%lldx%lld trans %d: %g",
                          sm_backend_name(be), (long long)m, (long long)n, (long long)k, t, worst);
            free(a);
            free(b);
            free(bias);
            free(got);
            free(want);
        }
    if (strcmp(sm_backend_name(be), "onednn") == 0) {
        char buf[512];
        sm_backend_describe(be, buf, sizeof buf);
        ck_assert_msg(strstr(buf, "(0 on oneDNN's reference code), 0 fallback calls"), "%s",
                      buf);
    }
}

START_TEST(test_sgemm_bias)
{
    sm_backend *be = open_be(built[_i].name, 2), *ref = open_be("ref", 2);
    bias_cases(be, ref);
    sm_backend_free(be);
    sm_backend_free(ref);
}
END_TEST

START_TEST(test_onednn_bf16_bias)
{
    sm_backend *be = open_onednn_bf16(2);
    if (!be) return;
    sm_backend *ref = open_bf16("ref", 2);
    bias_cases(be, ref);
    sm_backend_free(be);
    sm_backend_free(ref);
}
END_TEST

/* onednn bf16, batched, with the C items interleaved as attention writes its heads (item h at
 * column h·k of rows H·k long: computed tight and copied in by the plugin), beta 0 over NaN and
 * beta 1, against ref-bf16 on the same call. */
START_TEST(test_onednn_bf16_interleaved_c)
{
    sm_backend *be = open_onednn_bf16(2);
    if (!be) return;
    sm_backend *ref = open_bf16("ref", 2);
    const int64_t m = 70, k = 24, H = 3, rs = H * k;
    float *p = malloc(H * m * m * 4), *v = malloc(m * rs * 4), *got = malloc(m * rs * 4),
          *want = malloc(m * rs * 4);
    fill(p, (size_t)(H * m * m), 11);
    fill(v, (size_t)(m * rs), 12);
    for (int beta = 0; beta < 2; beta++) {
        for (int64_t i = 0; i < m * rs; i++) {
            got[i] = beta ? 0.25f * (float)(i % 7) : NAN;
            want[i] = beta ? got[i] : 0.0f;
        }
        sm_backend_sgemm_batched(be, SM_NO_TRANS, SM_NO_TRANS, m, k, m, 1.0f, p, m, 1, m * m, v,
                                 rs, 1, k, (float)beta, got, rs, 1, k, H);
        sm_backend_sgemm_batched(ref, SM_NO_TRANS, SM_NO_TRANS, m, k, m, 1.0f, p, m, 1, m * m, v,
                                 rs, 1, k, (float)beta, want, rs, 1, k, H);
        double e = sm_test_rel_err(got, want, m * rs);
        ck_assert_msg(e < 1e-5, "interleaved C, beta %d: %g", beta, e);
    }
    free(p);
    free(v);
    free(got);
    free(want);
    sm_backend_free(be);
    sm_backend_free(ref);
}
END_TEST

/* C[t] (m×n row-major) = A[t]·B[t]ᵀ for t < batch, one dot product at a time, in double. */
static void batch_exact(const float *a, int64_t sa, const float *b, int64_t sb, int64_t rsa,
                        int64_t rsb, int64_t m, int64_t n, int64_t k, int64_t batch, float *c)
{
    for (int64_t t = 0; t < batch; t++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += (double)a[t * sa + i * rsa + p] * b[t * sb + j * rsb + p];
                c[(t * m + i) * n + j] = (float)s;
            }
}

START_TEST(test_batched_and_threads)
{
    /* batched calls with 1, 2 and 3 threads against ref, then one big threaded call: bitwise
     * identical for thread-invariant backends, bitwise repeatable for every backend */
    const be_info *bi = &built[_i];
    const int64_t m = 67, n = 45, k = 301, batch = 5;
    float *a = malloc(batch * m * k * 4), *b = malloc(batch * k * n * 4);
    fill(a, (size_t)(batch * m * k), 4);
    fill(b, (size_t)(batch * k * n), 5);
    float *c[4];
    for (int i = 0; i < 4; i++) c[i] = calloc((size_t)(batch * m * n), 4);
    float *first = NULL, *again = calloc((size_t)(m * batch * n), 4);
    sm_backend *ref = open_be("ref", 1);
    sm_backend_sgemm_batched(ref, SM_NO_TRANS, SM_TRANS, m, n, k, 1.0f, a, k, 1, m * k, b, k, 1,
                             k * n, 0.0f, c[0], n, 1, m * n, batch);
    for (int t = 1; t <= 3; t++) {
        sm_backend *be = open_be(bi->name, t);
        sm_backend_sgemm_batched(be, SM_NO_TRANS, SM_TRANS, m, n, k, 1.0f, a, k, 1, m * k, b, k,
                                 1, k * n, 0.0f, c[t], n, 1, m * n, batch);
        double e = sm_test_rel_err(c[t], c[0], batch * m * n);
        ck_assert_msg(e < 1e-6, "batched %s vs ref: %g", bi->name, e);
        if (t > 1 && bi->thread_invariant)
            ck_assert_msg(memcmp(c[t], c[1], (size_t)(batch * m * n) * 4) == 0,
                          "batched results differ with %d threads", t);
        /* one big threaded call */
        float *big = calloc((size_t)(m * batch * n), 4);
        sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, m * batch, n, k / 5, 1.0f, a, k / 5, 1, b,
                         n, 1, 0.0f, big, n, 1);
        sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, m * batch, n, k / 5, 1.0f, a, k / 5, 1, b,
                         n, 1, 0.0f, again, n, 1);
        ck_assert_msg(memcmp(big, again, (size_t)(m * batch * n) * 4) == 0,
                      "%s: the same call gave other bits the second time (%d threads)",
                      bi->name, t);
        if (t == 1) {
            first = big;
        } else {
            if (bi->thread_invariant)
                ck_assert_msg(memcmp(big, first, (size_t)(m * batch * n) * 4) == 0,
                              "sgemm results differ with %d threads", t);
            else
                ck_assert_msg(sm_test_rel_err(big, first, m * batch * n) < 1e-6,
                              "sgemm results with %d threads too far from 1 thread's", t);
            free(big);
        }
        sm_backend_free(be);
    }
    sm_backend_free(ref);
    free(first);
    free(again);
    free(a);
    free(b);
    for (int i = 0; i < 4; i++) free(c[i]);
}
END_TEST

START_TEST(test_batched_layouts)
{
    /* what the ops pass: a broadcast operand (batch stride 0: conv1x1's weights), heads
     * interleaved in one packed tensor (batch stride smaller than the row stride), transposed
     * operands; checked against a double product */
    sm_backend *be = open_be(built[_i].name, 2);
    const int64_t m = 19, n = 23, k = 33, batch = 6, H = 3;
    float *w = malloc(m * k * 4), *x = malloc(batch * n * k * 4), *want = malloc(batch * m * n * 4),
          *got = malloc(batch * m * n * 4), *qkv = malloc(2 * m * H * k * 4);
    fill(w, (size_t)(m * k), 6);
    fill(x, (size_t)(batch * n * k), 7);
    /* C[t] = W · X[t]ᵀ: W broadcast */
    batch_exact(w, 0, x, n * k, k, k, m, n, k, batch, want);
    sm_backend_sgemm_batched(be, SM_NO_TRANS, SM_TRANS, m, n, k, 1.0f, w, k, 1, 0, x, k, 1, n * k,
                             0.0f, got, n, 1, m * n, batch);
    ck_assert_msg(sm_test_rel_err(got, want, batch * m * n) < 1e-6, "broadcast A: %g",
                  sm_test_rel_err(got, want, batch * m * n));
    /* C[h] = Q[h] · K[h]ᵀ with Q[h] rows m·H·k... apart: heads of a (2, m, H·k) tensor, batch H
     * over the heads of item 0 (q) against item 1 (k) */
    fill(qkv, (size_t)(2 * m * H * k), 8);
    const float *q = qkv, *kk = qkv + m * H * k;
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < m; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += (double)q[i * H * k + h * k + p] * kk[j * H * k + h * k + p];
                want[(h * m + i) * m + j] = (float)s;
            }
    sm_backend_sgemm_batched(be, SM_NO_TRANS, SM_TRANS, m, m, k, 1.0f, q, H * k, 1, k, kk, H * k,
                             1, k, 0.0f, got, m, 1, m * m, H);
    ck_assert_msg(sm_test_rel_err(got, want, H * m * m) < 1e-6, "interleaved heads: %g",
                  sm_test_rel_err(got, want, H * m * m));
    /* the same with column-major C (written transposed) and beta: C[h]ᵀ += ... */
    float *ct = calloc((size_t)(H * m * m), 4);
    sm_backend_sgemm_batched(be, SM_NO_TRANS, SM_TRANS, m, m, k, 1.0f, q, H * k, 1, k, kk, H * k,
                             1, k, 1.0f, ct, 1, m, m * m, H);
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < m; j++)
                ck_assert_msg(fabsf(ct[h * m * m + j * m + i] - want[(h * m + i) * m + j]) < 1e-5,
                              "column-major C, head %lld (%lld, %lld)", (long long)h,
                              (long long)i, (long long)j);
    free(ct);
    free(w);
    free(x);
    free(want);
    free(got);
    free(qkv);
    sm_backend_free(be);
}
END_TEST

/* ---- several threads at once --------------------------------------------------------------- */

typedef struct job {
    sm_backend *be;
    int64_t m, n, k;
    float *a, *b, *c;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    for (int rep = 0; rep < 10; rep++)
        sm_backend_sgemm(j->be, SM_NO_TRANS, SM_TRANS, j->m, j->n, j->k, 1.0f, j->a, j->k, 1, j->b,
                         j->k, 1, rep == 0 ? 0.0f : 1.0f, j->c, j->n, 1);
    return NULL;
}

START_TEST(test_concurrent_calls)
{
    /* 4 plain threads (not OpenMP's) share one instance, two shapes each twice: results equal
     * 10 × the product (beta 1 accumulates), as computed by ref */
    sm_backend *be = open_be(built[_i].name, 2), *ref = open_be("ref", 1);
    job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        job *j = &jobs[i];
        j->be = be;
        j->m = 40 + 7 * (i % 2), j->n = 33, j->k = 70;
        j->a = malloc((size_t)(j->m * j->k) * 4);
        j->b = malloc((size_t)(j->n * j->k) * 4);
        j->c = malloc((size_t)(j->m * j->n) * 4);
        fill(j->a, (size_t)(j->m * j->k), 10 + (uint64_t)i);
        fill(j->b, (size_t)(j->n * j->k), 20 + (uint64_t)i);
    }
    for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        job *j = &jobs[i];
        float *want = malloc((size_t)(j->m * j->n) * 4);
        sm_backend_sgemm(ref, SM_NO_TRANS, SM_TRANS, j->m, j->n, j->k, 10.0f, j->a, j->k, 1, j->b,
                         j->k, 1, 0.0f, want, j->n, 1);
        double e = sm_test_rel_err(j->c, want, j->m * j->n);
        ck_assert_msg(e < 1e-5, "%s, thread %d: %g", built[_i].name, i, e);
        free(want);
        free(j->a);
        free(j->b);
        free(j->c);
    }
    sm_backend_free(be);
    sm_backend_free(ref);
}
END_TEST

START_TEST(test_describe)
{
    const char *name = built[_i].name;
    sm_backend *be = open_be(name, 2);
    char buf[512];
    sm_backend_describe(be, buf, sizeof buf);
    ck_assert_str_eq(sm_backend_name(be), name);
    ck_assert_msg(strstr(buf, "2 threads"), "%s", buf);
    if (strcmp(name, "blis") == 0) {
        ck_assert_msg(strstr(buf, "BLIS 0.") && strstr(buf, "kernels "), "%s", buf);
        /* never BLIS's slow reference kernels on an x86-64 with AVX2 */
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && !getenv("BLIS_ARCH_TYPE"))
            ck_assert_msg(!strstr(buf, "kernels generic"), "%s", buf);
    } else if (strcmp(name, "onednn") == 0) {
        ck_assert_msg(strstr(buf, "oneDNN 2.") && strstr(buf, ", fp32, ") &&
                          strstr(buf, "0 matmul primitives cached"),
                      "%s", buf);
        /* one primitive per distinct call, made once */
        float a[6] = {1, 2, 3, 4, 5, 6}, c[4];
        for (int rep = 0; rep < 3; rep++) {
            sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, 2, 2, 3, 1.0f, a, 3, 1, a, 2, 1, 0.0f, c,
                             2, 1);
            sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, 2, 2, 3, 1.0f, a, 3, 1, a, 2, 1, 0.5f, c,
                             2, 1);
        }
        sm_backend_describe(be, buf, sizeof buf);
        ck_assert_msg(strstr(buf, "2 matmul primitives cached"), "%s", buf);
        /* the caller's OpenMP thread count is restored after a call (the backend sets its own
         * for oneDNN, which follows omp_get_max_threads) */
        omp_set_num_threads(3);
        sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, 2, 2, 3, 1.0f, a, 3, 1, a, 2, 1, 0.0f, c, 2,
                         1);
        ck_assert_int_eq(omp_get_max_threads(), 3);
    } else {
        ck_assert_msg(strstr(buf, "reference GEMM"), "%s", buf);
    }
    sm_backend_free(be);
}
END_TEST

/* A few ops forward + backward on a given backend; returns loss, fills grads. */
static float ops_chain(sm_backend *be, int threads, float *gw, float *gx)
{
    sm_ctx *ctx = sm_ctx_new(be);
    sm_ctx_set_threads(ctx, threads);
    sm_rng r;
    sm_rng_init(&r, 8, 0, 0, 0);
    const int64_t B = 3, N = 67, C = 48, H = 3; /* N > 64: attention GEMMs on the backend */
    sm_tensor *x = sm_ctx_tensor(ctx, 3, SM_SHAPE(B, N, C));
    sm_tensor *w = sm_ctx_tensor(ctx, 2, SM_SHAPE(3 * C, C));
    sm_init_uniform(x, -1, 1, &r);
    sm_init_uniform(w, -0.3, 0.3, &r);
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    w->flags |= SM_TENSOR_REQUIRES_GRAD;
    sm_tensor *qkv = sm_linear(ctx, x, w, NULL);
    sm_tensor *att = sm_attention(ctx, qkv, (int)H, 0.25f, NULL, NULL);
    sm_tensor *img = sm_reshape(ctx, att, 4, SM_SHAPE(B, C, N, 1));
    sm_tensor *conv = sm_conv1x1(ctx, img, sm_slice(ctx, w, 0, 0, 5), NULL);
    sm_tensor *seq = sm_reshape(ctx, conv, 3, SM_SHAPE(B, 5, N));
    sm_tensor *mm = sm_matmul(ctx, seq, seq, false, true);
    sm_tensor *loss = sm_mean(ctx, sm_reshape(ctx, sm_gelu(ctx, mm), 1, SM_SHAPE(-1)), 0);
    ck_assert_msg(loss != NULL, "%s", sm_ctx_error(ctx)->text);
    ck_assert_int_eq(sm_backward(ctx, loss), 0);
    memcpy(gw, sm_tensor_grad(ctx, w), (size_t)(3 * C * C) * 4);
    memcpy(gx, sm_tensor_grad(ctx, x), (size_t)(B * N * C) * 4);
    float l = loss->data[0];
    sm_ctx_free(ctx);
    return l;
}
#define CHAIN_NW (3 * 48 * 48)
#define CHAIN_NX (3 * 67 * 48)

START_TEST(test_ops_on_backend)
{
    const be_info *bi = &built[_i];
    float *gw[4], *gx[4], l[4];
    sm_backend *ref = open_be("ref", 2);
    gw[0] = malloc(CHAIN_NW * 4);
    gx[0] = malloc(CHAIN_NX * 4);
    l[0] = ops_chain(ref, 2, gw[0], gx[0]);
    for (int t = 1; t <= 3; t++) {
        sm_backend *be = open_be(bi->name, t);
        gw[t] = malloc(CHAIN_NW * 4);
        gx[t] = malloc(CHAIN_NX * 4);
        l[t] = ops_chain(be, t, gw[t], gx[t]);
        if (strcmp(bi->name, "onednn") == 0) {
            char buf[512];
            sm_backend_describe(be, buf, sizeof buf);
            ck_assert_msg(strstr(buf, "(0 on oneDNN's reference code), 0 fallback calls"), "%s",
                          buf);
        }
        sm_backend_free(be);
        ck_assert_msg(fabs(l[t] - l[0]) <= 1e-5 * fabs(l[0]), "loss %g vs ref %g", l[t], l[0]);
        double ew = sm_test_rel_err(gw[t], gw[0], CHAIN_NW);
        double ex = sm_test_rel_err(gx[t], gx[0], CHAIN_NX);
        ck_assert_msg(ew < 1e-5 && ex < 1e-5, "grads %s vs ref: w %g, x %g", bi->name, ew, ex);
        if (t > 1 && bi->thread_invariant) {
            ck_assert(memcmp(&l[t], &l[1], 4) == 0);
            ck_assert_msg(memcmp(gw[t], gw[1], CHAIN_NW * 4) == 0 &&
                              memcmp(gx[t], gx[1], CHAIN_NX * 4) == 0,
                          "gradients on %s differ between 1 and %d threads", bi->name, t);
        }
    }
    for (int t = 0; t <= 3; t++) {
        free(gw[t]);
        free(gx[t]);
    }
    sm_backend_free(ref);
}
END_TEST

/* ---- bf16 ------------------------------------------------------------------------------------ */

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

START_TEST(test_bf16_rounding)
{
    /* round to nearest, ties to even, on the 16 bits dropped */
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        {0x3f800000, 0x3f80}, /* 1 */
        {0x3f808000, 0x3f80}, /* 1 + 2^-8: a tie, to the even 1 */
        {0x3f818000, 0x3f82}, /* 1 + 3·2^-8: a tie, to the even 1 + 2^-6 */
        {0x3f808001, 0x3f81}, /* just above the tie */
        {0x3f807fff, 0x3f80}, /* just below */
        {0xbf80c000, 0xbf81}, /* negative, above the tie */
        {0x00000001, 0x0000}, /* smallest denormal */
        {0x00008000, 0x0000}, /* denormal tie to even 0 */
        {0x00018000, 0x0002}, /* denormal tie to even 2 */
        {0x7f7fffff, 0x7f80}, /* largest float: beyond the largest bf16, becomes inf */
        {0x7f7f0000, 0x7f7f}, /* the largest bf16 itself */
        {0x7f800000, 0x7f80}, /* inf */
        {0xff800000, 0xff80}, /* -inf */
        {0x7fc00000, 0x7fc0}, /* quiet NaN */
        {0x7f800001, 0x7fc0}, /* a signalling NaN with low payload stays NaN (quietened) */
        {0xffff0001, 0xffff}, /* a NaN whose rounding would carry out stays NaN */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = sm_bf16_from_float(from_bits(cases[i].in));
        ck_assert_msg(h == cases[i].out, "0x%08x -> 0x%04x, want 0x%04x", cases[i].in, h,
                      cases[i].out);
    }
    ck_assert(isnan(sm_bf16_round(NAN)));
    /* the round trip is exact on bf16 values, and the error on others at most 2^-8 relative
     * (8 significant bits: half an ulp) */
    sm_rng r;
    sm_rng_init(&r, 3, 0, 0, 0);
    for (int i = 0; i < 100000; i++) {
        float x = (float)((sm_rng_uniform(&r) * 2 - 1) * pow(2.0, (double)(i % 60) - 30));
        float y = sm_bf16_round(x);
        ck_assert(sm_bf16_round(y) == y);
        ck_assert_msg(fabsf(y - x) <= ldexpf(fabsf(x), -8), "%.9g -> %.9g", x, y);
    }
}
END_TEST

START_TEST(test_ref_bf16_is_rounded_fp32)
{
    /* ref-bf16 on any inputs == ref-fp32 on inputs rounded by hand, bit for bit, and differs
     * from ref-fp32 on the raw inputs (the rounding happens) */
    sm_backend *r16 = open_bf16("ref", 2), *r32 = open_be("ref", 2);
    ck_assert_int_eq(sm_backend_precision(r16), SM_PRECISION_BF16);
    char buf[256];
    sm_backend_describe(r16, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "inputs rounded to bf16"), "%s", buf);
    for (int t = 0; t < 4; t++)
        for (int l = 0; l < N_LAYOUTS; l++) {
            sm_trans ta = t & 1, tb = t >> 1;
            const int64_t m = 13, n = 11, k = 29;
            int64_t rsa, csa, rsb, csb, rsc, csc;
            size_t na = layout(l, ta ? k : m, ta ? m : k, &rsa, &csa);
            size_t nb = layout((l + 1) % N_LAYOUTS, tb ? n : k, tb ? k : n, &rsb, &csb);
            size_t nc = layout((l + 2) % N_LAYOUTS, m, n, &rsc, &csc);
            float *a = malloc(na * 4), *b = malloc(nb * 4), *ar = malloc(na * 4),
                  *br = malloc(nb * 4), *c16 = malloc(nc * 4), *c32 = malloc(nc * 4),
                  *craw = malloc(nc * 4);
            fill(a, na, 30 + (uint64_t)t);
            fill(b, nb, 40 + (uint64_t)l);
            fill(c16, nc, 50);
            memcpy(c32, c16, nc * 4);
            memcpy(craw, c16, nc * 4);
            for (size_t i = 0; i < na; i++) ar[i] = sm_bf16_round(a[i]);
            for (size_t i = 0; i < nb; i++) br[i] = sm_bf16_round(b[i]);
            sm_backend_sgemm(r16, ta, tb, m, n, k, 0.5f, a, rsa, csa, b, rsb, csb, 0.25f, c16,
                             rsc, csc);
            sm_backend_sgemm(r32, ta, tb, m, n, k, 0.5f, ar, rsa, csa, br, rsb, csb, 0.25f, c32,
                             rsc, csc);
            sm_backend_sgemm(r32, ta, tb, m, n, k, 0.5f, a, rsa, csa, b, rsb, csb, 0.25f, craw,
                             rsc, csc);
            ck_assert_msg(memcmp(c16, c32, nc * 4) == 0, "ta%d tb%d layout %d", ta, tb, l);
            ck_assert_msg(memcmp(c16, craw, nc * 4) != 0, "ta%d tb%d layout %d: no rounding", ta,
                          tb, l);
            free(a);
            free(b);
            free(ar);
            free(br);
            free(c16);
            free(c32);
            free(craw);
        }
    sm_backend_free(r16);
    sm_backend_free(r32);
}
END_TEST

/* Attention with a bias that needs its gradient and a window mask (-100: subnormal weights), N
 * above the small-matrix limit, its qkv also read by a second op (the gradient into qkv then
 * accumulates): in bf16 the heads go to the backend as batched GEMMs. Returns the loss, fills
 * the gradients of qkv and of the bias. */
#define ATT_B 4
#define ATT_N 70
#define ATT_H 2
#define ATT_C 24
static float att_chain(sm_backend *be, float *gq, float *gb)
{
    sm_ctx *ctx = sm_ctx_new(be);
    sm_ctx_set_threads(ctx, 2);
    sm_rng r;
    sm_rng_init(&r, 9, 0, 0, 0);
    const int64_t B = ATT_B, N = ATT_N, H = ATT_H, C = ATT_C;
    sm_tensor *qkv = sm_ctx_tensor(ctx, 3, SM_SHAPE(B, N, 3 * C));
    sm_tensor *bias = sm_ctx_tensor(ctx, 3, SM_SHAPE(H, N, N));
    sm_tensor *mask = sm_ctx_tensor(ctx, 3, SM_SHAPE(2, N, N));
    sm_init_uniform(qkv, -1, 1, &r);
    sm_init_uniform(bias, -0.5, 0.5, &r);
    for (int64_t w = 0; w < 2; w++)
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < N; j++)
                mask->data[(w * N + i) * N + j] = i != j && (i + j + w) % 5 == 0 ? -100.0f : 0.0f;
    qkv->flags |= SM_TENSOR_REQUIRES_GRAD;
    bias->flags |= SM_TENSOR_REQUIRES_GRAD;
    sm_tensor *att = sm_attention(ctx, qkv, (int)H, 0.3f, bias, mask);
    sm_tensor *a = sm_mean(ctx, sm_reshape(ctx, sm_gelu(ctx, att), 1, SM_SHAPE(-1)), 0);
    sm_tensor *b = sm_mean(ctx, sm_reshape(ctx, sm_mul(ctx, qkv, qkv), 1, SM_SHAPE(-1)), 0);
    sm_tensor *loss = sm_add(ctx, a, b);
    ck_assert_msg(loss != NULL, "%s", sm_ctx_error(ctx)->text);
    ck_assert_int_eq(sm_backward(ctx, loss), 0);
    memcpy(gq, sm_tensor_grad(ctx, qkv), (size_t)(B * N * 3 * C) * 4);
    memcpy(gb, sm_tensor_grad(ctx, bias), (size_t)(H * N * N) * 4);
    float l = loss->data[0];
    sm_ctx_free(ctx);
    return l;
}

START_TEST(test_attention_bf16_batched)
{
    /* ref-bf16 (batched heads) against fp32 ref (per (b, h)): bf16 noise only; onednn-bf16
     * (batched, C of P·v and of the gradients copied in) against ref-bf16 */
    enum { NQ = ATT_B * ATT_N * 3 * ATT_C, NB = ATT_H * ATT_N * ATT_N };
    float *gq[3], *gb[3], l[3];
    for (int i = 0; i < 3; i++) {
        gq[i] = malloc(NQ * 4);
        gb[i] = malloc(NB * 4);
    }
    sm_backend *r32 = open_be("ref", 2), *r16 = open_bf16("ref", 2);
    l[0] = att_chain(r32, gq[0], gb[0]);
    l[1] = att_chain(r16, gq[1], gb[1]);
    double el = fabs(l[1] - l[0]) / fabs(l[0]), eq = sm_test_rel_err(gq[1], gq[0], NQ),
           eb = sm_test_rel_err(gb[1], gb[0], NB);
    ck_assert_msg(eq > 1e-6 && eb > 1e-6, "bf16 changed nothing: %g %g", eq, eb);
    ck_assert_msg(el < 1e-2 && eq < 3e-2 && eb < 3e-2, "ref-bf16 vs fp32: loss %g, qkv %g, bias %g",
                  el, eq, eb);
    sm_backend *o16 = is_built("onednn") ? open_onednn_bf16(2) : NULL;
    if (o16) {
        l[2] = att_chain(o16, gq[2], gb[2]);
        double e2 = fabs(l[2] - l[1]) / fabs(l[1]), q2 = sm_test_rel_err(gq[2], gq[1], NQ),
               b2 = sm_test_rel_err(gb[2], gb[1], NB);
        ck_assert_msg(e2 < 1e-4 && q2 < 1e-3 && b2 < 1e-3,
                      "onednn-bf16 vs ref-bf16: loss %g, qkv %g, bias %g", e2, q2, b2);
        sm_backend_free(o16);
    }
    sm_backend_free(r32);
    sm_backend_free(r16);
    for (int i = 0; i < 3; i++) {
        free(gq[i]);
        free(gb[i]);
    }
}
END_TEST

START_TEST(test_ops_bf16)
{
    /* the chain in bf16 on ref: close to fp32 (bf16's 2^-9 per input), but not equal; and on
     * onednn-bf16 (where the CPU has it) close to ref-bf16: both round the same inputs, so
     * only the accumulation order differs, plus the odd element of an intermediate (softmax
     * output, activation) that lies on a bf16 rounding boundary and rounds one ulp (2^-8)
     * apart */
    float *gw[3], *gx[3], l[3];
    for (int i = 0; i < 3; i++) {
        gw[i] = malloc(CHAIN_NW * 4);
        gx[i] = malloc(CHAIN_NX * 4);
    }
    sm_backend *r32 = open_be("ref", 2), *r16 = open_bf16("ref", 2);
    l[0] = ops_chain(r32, 2, gw[0], gx[0]);
    l[1] = ops_chain(r16, 2, gw[1], gx[1]);
    double el = fabs(l[1] - l[0]) / fabs(l[0]), ew = sm_test_rel_err(gw[1], gw[0], CHAIN_NW),
           ex = sm_test_rel_err(gx[1], gx[0], CHAIN_NX);
    ck_assert_msg(el > 0 && ew > 1e-6 && ex > 1e-6, "bf16 changed nothing: %g %g %g", el, ew, ex);
    ck_assert_msg(el < 1e-2 && ew < 3e-2 && ex < 3e-2, "ref-bf16 vs fp32: loss %g, w %g, x %g",
                  el, ew, ex);
    if (is_built("onednn")) {
        sm_backend *o16 = open_onednn_bf16(2);
        if (o16) {
            l[2] = ops_chain(o16, 2, gw[2], gx[2]);
            double e2 = fabs(l[2] - l[1]) / fabs(l[1]);
            double w2 = sm_test_rel_err(gw[2], gw[1], CHAIN_NW);
            double x2 = sm_test_rel_err(gx[2], gx[1], CHAIN_NX);
            ck_assert_msg(e2 < 1e-4 && w2 < 1e-3 && x2 < 1e-3,
                          "onednn-bf16 vs ref-bf16: loss %g, w %g, x %g", e2, w2, x2);
            sm_backend_free(o16);
        }
    }
    sm_backend_free(r32);
    sm_backend_free(r16);
    for (int i = 0; i < 3; i++) {
        free(gw[i]);
        free(gx[i]);
    }
}
END_TEST

START_TEST(test_onednn_bf16_vs_ref)
{
    /* every GEMM case in bf16 (exact product of the rounded inputs as the judge), or the
     * refusal on CPUs without AVX-512 */
    sm_backend *be = open_onednn_bf16(2);
    if (!be) return;
    sm_backend *ref = open_bf16("ref", 2);
    all_cases(be, ref, true);
    char buf[512];
    sm_backend_describe(be, buf, sizeof buf);
    ck_assert_msg(strstr(buf, ", bf16, ") &&
                      strstr(buf, "(0 on oneDNN's reference code), 0 fallback calls"),
                  "%s", buf);
    sm_backend_free(be);
    sm_backend_free(ref);
}
END_TEST

START_TEST(test_blis_refuses_bf16)
{
    sm_backend *be = open_be("blis", 1);
    sm_error err = {0};
    ck_assert_int_eq(sm_backend_set_precision(be, SM_PRECISION_BF16, &err), SM_EUNSUPPORTED);
    ck_assert_str_eq(err.path, "backend.precision");
    ck_assert_msg(strstr(err.text, "backend 'blis' cannot run precision bf16: BLIS 0.") &&
                      strstr(err.text, "has no bf16 GEMM"),
                  "%s", err.text);
    ck_assert_int_eq(sm_backend_precision(be), SM_PRECISION_FP32);
    ck_assert_int_eq(sm_backend_set_precision(be, SM_PRECISION_FP32, &err), 0);
    sm_backend_free(be);
}
END_TEST

/* ---- an ABI 1.0 backend (no set_precision slot) --------------------------------------------- */

static int old_create(const sm_cfg *section, int threads, void **self, sm_error *err)
{
    (void)section, (void)threads, (void)err;
    *self = NULL;
    return 0;
}
static void old_destroy(void *self) { (void)self; }
static void old_sgemm(void *self, sm_trans ta, sm_trans tb, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t rsa, int64_t csa, const float *b,
                      int64_t rsb, int64_t csb, float beta, float *c, int64_t rsc, int64_t csc)
{
    (void)self, (void)ta, (void)tb, (void)k, (void)alpha, (void)a, (void)rsa, (void)csa;
    (void)b, (void)rsb, (void)csb, (void)beta;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) c[i * rsc + j * csc] = 7.0f;
}
/* beyond the vtable an ABI 1.0 plugin compiled: must never be called */
static int old_set_precision(void *self, sm_precision p, sm_error *err)
{
    (void)self, (void)p, (void)err;
    ck_abort_msg("the core read set_precision beyond an ABI 1.0 vtable's struct_size");
    return 0;
}
static const sm_backend_vtbl old_vtbl = {
    .hdr = {.abi_major = SM_ABI_MAJOR,
            .struct_size = offsetof(sm_backend_vtbl, set_precision),
            .kind = SM_KIND_BACKEND,
            .name = "old_abi",
            .description = "a backend compiled against ABI 1.0"},
    .create = old_create,
    .destroy = old_destroy,
    .sgemm = old_sgemm,
    .set_precision = old_set_precision,
};

START_TEST(test_abi_1_0_backend)
{
    sm_error err = {0};
    ck_assert_msg(sm_registry_add(reg, &old_vtbl.hdr, &err) == 0, "%s", err.text);
    sm_backend *be = open_be("old_abi", 1);
    float c[4] = {0};
    sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, 2, 2, 1, 1.0f, c, 1, 1, c, 2, 1, 0.0f, c, 2, 1);
    ck_assert(c[3] == 7.0f);
    ck_assert_int_eq(sm_backend_set_precision(be, SM_PRECISION_FP32, &err), 0);
    ck_assert_int_eq(sm_backend_set_precision(be, SM_PRECISION_BF16, &err), SM_EUNSUPPORTED);
    ck_assert_str_eq(err.path, "backend.precision");
    ck_assert_str_eq(err.text, "backend 'old_abi' does not support precision bf16: it computes "
                               "in fp32 only");
    sm_backend_free(be);
    /* a vtable shorter than ABI 1.0's is still refused */
    sm_backend_vtbl tiny = old_vtbl;
    tiny.hdr.name = "tiny";
    tiny.hdr.struct_size = offsetof(sm_backend_vtbl, describe);
    ck_assert_int_eq(sm_registry_add(reg, &tiny.hdr, &err), SM_EABI);
}
END_TEST

/* ---- the config ------------------------------------------------------------------------------- */

/* The `backend` section of a config (read, not validated: only the backend keys matter). */
static sm_config *backend_config(const char *name, const char *key, const char *value)
{
    char text[256];
    snprintf(text, sizeof text, "backend:\n  name: %s\n  %s: %s\n", name, key, value);
    sm_config *cfg = NULL;
    sm_diag *d = sm_diag_new();
    ck_assert_int_eq(sm_config_read_string(text, strlen(text), "inline.yaml", NULL, 0, &cfg, d), 0);
    sm_diag_free(d);
    return cfg;
}

static int open_with(const char *name, const char *key, const char *value, sm_backend **be,
                     sm_error *err)
{
    sm_config *cfg = backend_config(name, key, value);
    int rc = sm_backend_new(reg, name, sm_cfg_get(sm_config_root(cfg), "backend"), 1, be, err);
    sm_config_free(cfg);
    return rc;
}

START_TEST(test_precision_from_config)
{
    sm_backend *be = NULL;
    sm_error err = {0};
    ck_assert_int_eq(open_with("ref", "precision", "bf16", &be, &err), 0);
    ck_assert_int_eq(sm_backend_precision(be), SM_PRECISION_BF16);
    sm_backend_free(be);
    ck_assert_int_eq(open_with("ref", "precision", "FP32", &be, &err), 0);
    ck_assert_int_eq(sm_backend_precision(be), SM_PRECISION_FP32);
    sm_backend_free(be);
    be = NULL;
    if (is_built("blis")) {
        ck_assert_int_eq(open_with("blis", "precision", "bf16", &be, &err), SM_EUNSUPPORTED);
        ck_assert_ptr_null(be);
        ck_assert_str_eq(err.path, "backend.precision");
        ck_assert_msg(strstr(err.text, "backend 'blis'"), "%s", err.text);
        sm_error_clear(&err);
    }
    ck_assert_int_eq(open_with("ref", "precision", "fp16", &be, &err), SM_ECONFIG);
    ck_assert_ptr_null(be);
    ck_assert_str_eq(err.text, "unknown precision 'fp16' (fp32 or bf16)");
    /* the core schema has the key, fp32 by default, and only the two values */
    const sm_key *k = sm_config_core_keys("backend");
    while (k && k->name && strcmp(k->name, "precision") != 0) k++;
    ck_assert_msg(k && k->name, "backend.precision is not a core key");
    ck_assert_str_eq(k->def, "fp32");
    ck_assert_str_eq(k->range, "fp32|bf16");
    ck_assert_str_eq(sm_precision_name(SM_PRECISION_BF16), "bf16");
}
END_TEST

/* Kernel selection is process-wide (BLIS initialises once); Check runs each test in its own
 * process, so each test here starts with BLIS uninitialised. */
START_TEST(test_arch_from_config)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
        getenv("BLIS_ARCH_TYPE"))
        return; /* nothing to select on this machine */
    sm_backend *be = NULL;
    sm_error err = {0};
    ck_assert_int_eq(open_with("blis", "arch", "haswell", &be, &err), 0);
    char buf[512];
    sm_backend_describe(be, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "kernels haswell (config arch: haswell), 1 thread"), "%s", buf);
    sm_backend_free(be);
    /* once chosen, a different set cannot be asked for in the same process */
    ck_assert_int_eq(open_with("blis", "arch", "generic", &be, &err), SM_ECONFIG);
    ck_assert_msg(strstr(err.text, "already selected in this process (arch haswell)"), "%s",
                  err.text);
}
END_TEST

/* backend.packed_from: 1 sends every whole-problem product down BLIS's packed path, 0 leaves
 * BLIS's own choice (its unpacked "sup" path for any shape with one small dimension); both are
 * checked against the reference on every layout, and on shapes BLIS would give to sup. */
START_TEST(test_packed_from)
{
    static const char *values[] = {"1", "0"};
    static const int64_t sup_shapes[][3] = {{40, 600, 300}, {600, 40, 300}, {300, 600, 16}};
    sm_backend *ref = open_be("ref", 2);
    for (int v = 0; v < 2; v++) {
        sm_backend *be = NULL;
        sm_error err = {0};
        ck_assert_int_eq(open_with("blis", "packed_from", values[v], &be, &err), 0);
        char buf[512];
        sm_backend_describe(be, buf, sizeof buf);
        ck_assert_msg(strstr(buf, v == 0 ? "packed path from m*n*k 1" : "sup path as BLIS chooses"),
                      "%s", buf);
        all_cases(be, ref, false);
        for (int s = 0; s < 3; s++)
            for (int t = 0; t < 4; t++)
                gemm_case(be, ref, false, sup_shapes[s][0], sup_shapes[s][1], sup_shapes[s][2],
                          t & 1, t >> 1, t % N_LAYOUTS, (t + 1) % N_LAYOUTS, 0, 1.0f,
                          t == 3 ? 0.5f : 0.0f);
        sm_backend_free(be);
    }
    sm_backend_free(ref);
    /* with no config section (an embedder's call) the backend uses the key's default */
    sm_backend *be = open_be("blis", 2);
    char buf[512];
    sm_backend_describe(be, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "packed path from m*n*k 33554432"), "%s", buf);
    sm_backend_free(be);
}
END_TEST

START_TEST(test_arch_unknown)
{
    sm_backend *be = NULL;
    sm_error err = {0};
    ck_assert_int_eq(open_with("blis", "arch", "pentium4", &be, &err), SM_ECONFIG);
    ck_assert_ptr_null(be);
    ck_assert_str_eq(err.path, "backend.arch");
    ck_assert_msg(strstr(err.text, "unknown BLIS kernel set 'pentium4' (available: auto, skx"),
                  "%s", err.text);
}
END_TEST

START_TEST(test_unknown_backend)
{
    sm_backend *be = NULL;
    sm_error err = {0};
    ck_assert_int_eq(sm_backend_new(reg, "mkl", NULL, 1, &be, &err), SM_ENOTFOUND);
    ck_assert_ptr_null(be);
    ck_assert_msg(strstr(err.text, "mkl") && strstr(err.text, "ref"), "%s", err.text);
    for (int i = 0; i < n_built; i++) ck_assert_msg(strstr(err.text, built[i].name), "%s", err.text);
}
END_TEST

int main(void)
{
    for (size_t i = 0; i < sizeof all_backends / sizeof all_backends[0]; i++) {
        const be_info *b = &all_backends[i];
        if (b->so && access(sm_test_build(b->so), R_OK) != 0) {
            fprintf(stderr, "%s not built: its cases are left out\n", b->so);
            continue;
        }
        built[n_built++] = *b;
    }
    Suite *s = suite_create("backend");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, load_plugins, unload);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_sgemm_vs_ref, 0, n_built);
    tcase_add_loop_test(tc, test_batched_and_threads, 0, n_built);
    tcase_add_loop_test(tc, test_batched_layouts, 0, n_built);
    tcase_add_loop_test(tc, test_concurrent_calls, 0, n_built);
    tcase_add_loop_test(tc, test_sgemm_bias, 0, n_built);
    tcase_add_loop_test(tc, test_describe, 0, n_built);
    tcase_add_loop_test(tc, test_ops_on_backend, 0, n_built);
    suite_add_tcase(s, tc);
    tc = tcase_create("bf16");
    tcase_add_checked_fixture(tc, load_plugins, unload);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bf16_rounding);
    tcase_add_test(tc, test_ref_bf16_is_rounded_fp32);
    tcase_add_test(tc, test_ops_bf16);
    tcase_add_test(tc, test_attention_bf16_batched);
    if (is_built("onednn")) {
        tcase_add_test(tc, test_onednn_bf16_vs_ref);
        tcase_add_test(tc, test_onednn_bf16_bias);
        tcase_add_test(tc, test_onednn_bf16_interleaved_c);
    }
    if (is_built("blis")) tcase_add_test(tc, test_blis_refuses_bf16);
    tcase_add_test(tc, test_abi_1_0_backend);
    tcase_add_test(tc, test_precision_from_config);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, load_plugins, unload);
    tcase_add_test(tc, test_unknown_backend);
    if (is_built("blis")) {
        tcase_add_test(tc, test_arch_from_config);
        tcase_add_test(tc, test_arch_unknown);
        tcase_add_test(tc, test_packed_from);
    }
    suite_add_tcase(s, tc);
    return sm_test_run(s);
}
