/* tests/check_backend.c - the `blis` backend plugin against the built-in `ref` oracle: every
 * transpose combination, row/column/general strides, odd and degenerate shapes, alpha/beta
 * (beta = 0 ignores NaN in C), batched calls, calls from inside OpenMP regions, bitwise
 * independence of the thread count, and ops running on blis. Skipped (exit 77) if the plugin
 * was not built. */
#include "testutil.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static sm_registry *reg;

static void load_blis(void)
{
    reg = sm_registry_new();
    ck_assert_ptr_nonnull(reg);
    sm_error err = {0};
    int rc = sm_plugin_load(reg, sm_test_build("../plugins/.libs/sm_blis.so"), &err);
    ck_assert_msg(rc == 0, "loading sm_blis.so: %s", err.text);
}
static void unload(void)
{
    sm_registry_free(reg);
    reg = NULL;
}

static sm_backend *open_be(const char *name, int threads)
{
    sm_backend *be = NULL;
    sm_error err = {0};
    ck_assert_msg(sm_backend_new(reg, name, NULL, threads, &be, &err) == 0, "%s: %s", name,
                  err.text);
    return be;
}

/* A stored matrix of rows × cols with a layout: 0 row-major padded, 1 column-major padded,
 * 2 general strides (neither unit). Returns its strides and the storage size. */
static size_t layout(int kind, int64_t rows, int64_t cols, int64_t *rs, int64_t *cs)
{
    switch (kind) {
    case 0: *rs = cols + 3, *cs = 1; break;
    case 1: *rs = 1, *cs = rows + 2; break;
    default: *rs = 2 * cols + 1, *cs = 2; break;
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

/* One GEMM on blis and ref, compared with an error bound from a double reference. */
static void gemm_case(sm_backend *blis, sm_backend *ref, int64_t m, int64_t n, int64_t k,
                      sm_trans ta, sm_trans tb, int la, int lb, int lc, float alpha, float beta)
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
    sm_backend_sgemm(blis, ta, tb, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c1, rsc, csc);
    sm_backend_sgemm(ref, ta, tb, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c2, rsc, csc);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, bound = 0;
            for (int64_t p = 0; p < k; p++) {
                double av = ta ? a[p * rsa + i * csa] : a[i * rsa + p * csa];
                double bv = tb ? b[j * rsb + p * csb] : b[p * rsb + j * csb];
                s += av * bv;
                bound += fabs(av * bv);
            }
            double cold = beta == 0.0f ? 0.0 : c0[i * rsc + j * csc];
            double want = alpha * s + beta * cold;
            double tol = 1e-6 * (fabs(alpha) * bound + fabs(beta * cold)) + 1e-7;
            float got = c1[i * rsc + j * csc], oracle = c2[i * rsc + j * csc];
            ck_assert_msg(fabs(got - want) <= tol && fabs(oracle - want) <= tol,
                          "%lldx%lldx%lld ta%d tb%d layouts %d%d%d alpha %g beta %g: C[%lld][%lld] "
                          "blis %.8g ref %.8g exact %.8g",
                          (long long)m, (long long)n, (long long)k, ta, tb, la, lb, lc, alpha,
                          beta, (long long)i, (long long)j, got, oracle, want);
        }
    /* elements of C outside the matrix are untouched */
    bool *inside = calloc(nc, 1);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) inside[i * rsc + j * csc] = true;
    for (size_t e = 0; e < nc; e++)
        if (!inside[e])
            ck_assert_msg(memcmp(&c1[e], &c0[e], 4) == 0, "blis wrote outside C at %zu", e);
    free(inside);
    free(a);
    free(b);
    free(c0);
    free(c1);
    free(c2);
}

START_TEST(test_sgemm_vs_ref)
{
    sm_backend *blis = open_be("blis", 2), *ref = open_be("ref", 2);
    static const int64_t shapes[][3] = {{1, 1, 1},   {1, 7, 5},     {6, 1, 4},   {5, 3, 1},
                                        {37, 29, 53}, {64, 96, 128}, {2, 3, 300}, {0, 4, 5},
                                        {4, 0, 5},   {4, 5, 0}};
    static const float ab[][2] = {{1.0f, 0.0f}, {-0.5f, 1.0f}, {2.0f, 0.25f}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int l = 0; l < 3; l++) {
                const float *p = ab[(s + (size_t)t + (size_t)l) % 3];
                gemm_case(blis, ref, shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t >> 1, l,
                          (l + 1) % 3, (l + 2) % 3, p[0], p[1]);
            }
    sm_backend_free(blis);
    sm_backend_free(ref);
}
END_TEST

START_TEST(test_batched_and_threads)
{
    /* batched through the core dispatch (an OpenMP loop, one BLIS thread per call), and plain
     * calls with 1, 2 and 3 threads: bitwise identical results */
    const int64_t m = 67, n = 45, k = 301, batch = 5;
    float *a = malloc(batch * m * k * 4), *b = malloc(batch * k * n * 4);
    fill(a, (size_t)(batch * m * k), 4);
    fill(b, (size_t)(batch * k * n), 5);
    float *c[4];
    for (int i = 0; i < 4; i++) c[i] = calloc((size_t)(batch * m * n), 4);
    float *first = NULL;
    sm_backend *ref = open_be("ref", 1);
    sm_backend_sgemm_batched(ref, SM_NO_TRANS, SM_TRANS, m, n, k, 1.0f, a, k, 1, m * k, b, k, 1,
                             k * n, 0.0f, c[0], n, 1, m * n, batch);
    for (int t = 1; t <= 3; t++) {
        sm_backend *be = open_be("blis", t);
        sm_backend_sgemm_batched(be, SM_NO_TRANS, SM_TRANS, m, n, k, 1.0f, a, k, 1, m * k, b, k,
                                 1, k * n, 0.0f, c[t], n, 1, m * n, batch);
        double e = sm_test_rel_err(c[t], c[0], batch * m * n);
        ck_assert_msg(e < 1e-6, "batched blis vs ref: %g", e);
        if (t > 1)
            ck_assert_msg(memcmp(c[t], c[1], (size_t)(batch * m * n) * 4) == 0,
                          "batched results differ with %d threads", t);
        /* one big threaded call: same bits whatever the thread count */
        float *big = calloc((size_t)(m * batch * n), 4);
        sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, m * batch, n, k / 5, 1.0f, a, k / 5, 1, b,
                         n, 1, 0.0f, big, n, 1);
        if (t == 1) {
            first = big;
        } else {
            ck_assert_msg(memcmp(big, first, (size_t)(m * batch * n) * 4) == 0,
                          "sgemm results differ with %d threads", t);
            free(big);
        }
        sm_backend_free(be);
    }
    sm_backend_free(ref);
    free(first);
    free(a);
    free(b);
    for (int i = 0; i < 4; i++) free(c[i]);
}
END_TEST

START_TEST(test_describe)
{
    sm_backend *be = open_be("blis", 2);
    char buf[512];
    sm_backend_describe(be, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "BLIS 0.") && strstr(buf, "kernels ") && strstr(buf, "2 threads"),
                  "%s", buf);
    /* never BLIS's slow reference kernels on an x86-64 with AVX2 */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && !getenv("BLIS_ARCH_TYPE"))
        ck_assert_msg(!strstr(buf, "kernels generic"), "%s", buf);
    ck_assert_str_eq(sm_backend_name(be), "blis");
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

START_TEST(test_ops_on_blis)
{
    const size_t nw = 3 * 48 * 48, nx = 3 * 67 * 48;
    float *gw[4], *gx[4], l[4];
    sm_backend *ref = open_be("ref", 2);
    gw[0] = malloc(nw * 4);
    gx[0] = malloc(nx * 4);
    l[0] = ops_chain(ref, 2, gw[0], gx[0]);
    for (int t = 1; t <= 3; t++) {
        sm_backend *be = open_be("blis", t);
        gw[t] = malloc(nw * 4);
        gx[t] = malloc(nx * 4);
        l[t] = ops_chain(be, t, gw[t], gx[t]);
        sm_backend_free(be);
        ck_assert_msg(fabs(l[t] - l[0]) <= 1e-5 * fabs(l[0]), "loss %g vs ref %g", l[t], l[0]);
        double ew = sm_test_rel_err(gw[t], gw[0], (int64_t)nw);
        double ex = sm_test_rel_err(gx[t], gx[0], (int64_t)nx);
        ck_assert_msg(ew < 1e-5 && ex < 1e-5, "grads blis vs ref: w %g, x %g", ew, ex);
        if (t > 1) {
            ck_assert(memcmp(&l[t], &l[1], 4) == 0);
            ck_assert_msg(memcmp(gw[t], gw[1], nw * 4) == 0 && memcmp(gx[t], gx[1], nx * 4) == 0,
                          "gradients on blis differ between 1 and %d threads", t);
        }
    }
    for (int t = 0; t <= 3; t++) {
        free(gw[t]);
        free(gx[t]);
    }
    sm_backend_free(ref);
}
END_TEST

/* The `backend` section of a config (read, not validated: only the backend keys matter). */
static sm_config *backend_config(const char *arch)
{
    char text[256];
    snprintf(text, sizeof text, "backend:\n  name: blis\n  arch: %s\n", arch);
    sm_config *cfg = NULL;
    sm_diag *d = sm_diag_new();
    ck_assert_int_eq(sm_config_read_string(text, strlen(text), "inline.yaml", NULL, 0, &cfg, d), 0);
    sm_diag_free(d);
    return cfg;
}

/* Kernel selection is process-wide (BLIS initialises once); Check runs each test in its own
 * process, so each test here starts with BLIS uninitialised. */
START_TEST(test_arch_from_config)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
        getenv("BLIS_ARCH_TYPE"))
        return; /* nothing to select on this machine */
    sm_config *cfg = backend_config("haswell");
    const sm_cfg *sec = sm_cfg_get(sm_config_root(cfg), "backend");
    sm_backend *be = NULL;
    sm_error err = {0};
    ck_assert_int_eq(sm_backend_new(reg, "blis", sec, 1, &be, &err), 0);
    char buf[512];
    sm_backend_describe(be, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "kernels haswell (config arch: haswell), 1 thread"), "%s", buf);
    sm_backend_free(be);
    /* once chosen, a different set cannot be asked for in the same process */
    sm_config *cfg2 = backend_config("generic");
    ck_assert_int_eq(sm_backend_new(reg, "blis", sm_cfg_get(sm_config_root(cfg2), "backend"),
                                    1, &be, &err),
                     SM_ECONFIG);
    ck_assert_msg(strstr(err.text, "already selected in this process (arch haswell)"), "%s",
                  err.text);
    sm_config_free(cfg);
    sm_config_free(cfg2);
}
END_TEST

START_TEST(test_arch_unknown)
{
    sm_config *cfg = backend_config("pentium4");
    sm_backend *be = NULL;
    sm_error err = {0};
    ck_assert_int_eq(sm_backend_new(reg, "blis", sm_cfg_get(sm_config_root(cfg), "backend"), 1,
                                    &be, &err),
                     SM_ECONFIG);
    ck_assert_ptr_null(be);
    ck_assert_str_eq(err.path, "backend.arch");
    ck_assert_msg(strstr(err.text, "unknown BLIS kernel set 'pentium4' (available: auto, skx"),
                  "%s", err.text);
    sm_config_free(cfg);
}
END_TEST

START_TEST(test_unknown_backend)
{
    sm_backend *be = NULL;
    sm_error err = {0};
    ck_assert_int_eq(sm_backend_new(reg, "mkl", NULL, 1, &be, &err), SM_ENOTFOUND);
    ck_assert_ptr_null(be);
    ck_assert_msg(strstr(err.text, "mkl") && strstr(err.text, "blis"), "%s", err.text);
}
END_TEST

int main(void)
{
    if (access(sm_test_build("../plugins/.libs/sm_blis.so"), R_OK) != 0) {
        fprintf(stderr, "sm_blis.so not built: skipping\n");
        return 77;
    }
    Suite *s = suite_create("backend");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, load_blis, unload);
    tcase_add_test(tc, test_sgemm_vs_ref);
    tcase_add_test(tc, test_batched_and_threads);
    tcase_add_test(tc, test_describe);
    tcase_add_test(tc, test_ops_on_blis);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, load_blis, unload);
    tcase_add_test(tc, test_unknown_backend);
    tcase_add_test(tc, test_arch_from_config);
    tcase_add_test(tc, test_arch_unknown);
    suite_add_tcase(s, tc);
    return sm_test_run(s);
}
