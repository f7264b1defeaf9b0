/* bench/bench_ops.c - GFLOP/s of our GEMM-shaped ops (linear, fused attention), forward and
 * backward, beside raw BLIS sgemm on the same shapes in the same run, and the ratio.
 *
 *   bench/bench_ops [THREADS [REPS [FILTER]]]   (defaults: all cores, 5 repetitions; FILTER:
 *                                                only the rows whose name contains it; "peak":
 *                                                raw sgemm only, 2048³ and ViT's fc1 shape)
 *
 * Shapes: ViT-B/16 at batch 8 (T = 8·197 tokens, C 768, 12 heads of 64) and Swin-B@192 with
 * window 6 at batch 8 (stage 1: T = 8·2304, C 128, 4 heads, 512 windows of 36 tokens; stage 3:
 * T = 8·144, C 512, 16 heads, 32 windows), and Swin-B@224 with window 7 (49-token windows;
 * stage 1 fc1 and stage 4's fc1/fc2, 392 rows, where the backend's packed path beats raw BLIS's
 * own choice). For each row the two measurements alternate (ours, raw, ours, raw, ...) and the
 * medians are printed.
 *   linear fwd  = y = x·wᵀ + b                 raw: one sgemm NT          2·T·in·out FLOP
 *   linear bwd  = dx, dw, db                    raw: sgemm NN + sgemm TN   4·T·in·out FLOP
 *   attn fwd    = q·kᵀ, softmax(+bias), P·v     raw: the two GEMMs per (batch, head) on
 *                                               contiguous operands, OpenMP loop over them,
 *                                               1 BLIS thread each        4·B·H·N²·D FLOP
 *   attn bwd    = dv, dP, dS, dq, dk (+dbias)   raw: the four GEMMs       8·B·H·N²·D FLOP
 *   attn fwd-nograd = the forward without gradients (evaluation): P is not kept
 * The raw attention rows do only the GEMMs, so the ratio includes our softmax, bias and
 * strided-operand costs, and with gradients the cost of writing P (B·H·N² floats, 15 MB for
 * ViT) out to memory for the backward. The BLIS plugin is loaded from the build tree (SM_BENCH_PLUGIN).
 * Nothing here is asserted: this program prints figures, it is not a test. */
#include <simmim/simmim.h>

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef SM_BENCH_PLUGIN
#define SM_BENCH_PLUGIN "plugins/.libs/sm_blis.so"
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void fill(float *x, int64_t n, uint64_t seed)
{
    sm_rng r;
    sm_rng_init(&r, seed, 0, 0, 0);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(sm_rng_uniform(&r) - 0.5);
}

static sm_backend *be;
static int reps = 5;
static const char *filter = "";

/* ---- linear ------------------------------------------------------------------------------ */

typedef struct lin_state {
    sm_ctx *ctx;
    sm_params *p;
    sm_tensor *w, *b;
    float *x, *dy, *dx, *dw, *y;
    int64_t T, in, out;
} lin_state;

/* After a timed forward (t0 = its start) that produced y: seeds dL/dy as the next op's
 * backward would leave it (not timed), runs the timed backward, stores both times. */
static void finish(sm_ctx *ctx, sm_tensor *y, const float *dy, double t0, double *tf,
                   double *tb)
{
    double t1 = now();
    float *g = sm_tensor_grad(ctx, y);
    if (g) memcpy(g, dy, (size_t)sm_tensor_numel(y) * sizeof(float));
    double t2 = now();
    sm_backward_from(ctx, y, NULL);
    double t3 = now();
    if (sm_ctx_status(ctx)) {
        fprintf(stderr, "bench: %s\n", sm_ctx_error(ctx)->text);
        exit(1);
    }
    *tf = t1 - t0;
    *tb = t3 - t2;
}

/* ours: forward then backward, timed separately */
static void lin_ours(lin_state *s, double *tf, double *tb)
{
    sm_ctx_reset(s->ctx);
    sm_tensor *x = sm_ctx_wrap(s->ctx, s->x, 2, SM_SHAPE(s->T, s->in));
    x->flags |= SM_TENSOR_REQUIRES_GRAD;
    double t0 = now();
    sm_tensor *y = sm_linear(s->ctx, x, s->w, s->b);
    finish(s->ctx, y, s->dy, t0, tf, tb);
}

/* raw BLIS: y = x·wᵀ ; dx = dy·w ; dw += dyᵀ·x */
static void lin_raw(lin_state *s, double *tf, double *tb)
{
    int64_t T = s->T, in = s->in, out = s->out;
    double t0 = now();
    sm_backend_sgemm(be, SM_NO_TRANS, SM_TRANS, T, out, in, 1.0f, s->x, in, 1, s->w->data, in, 1,
                     0.0f, s->y, out, 1);
    double t1 = now();
    sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, T, in, out, 1.0f, s->dy, out, 1, s->w->data,
                     in, 1, 0.0f, s->dx, in, 1);
    sm_backend_sgemm(be, SM_TRANS, SM_NO_TRANS, out, in, T, 1.0f, s->dy, out, 1, s->x, in, 1,
                     1.0f, s->dw, in, 1);
    double t2 = now();
    *tf = t1 - t0;
    *tb = t2 - t1;
}

static void row(const char *name, const char *op, double flop, double ours, double raw)
{
    printf("%-22s %-10s %9.1f %9.1f %7.2f\n", name, op, flop / ours * 1e-9, flop / raw * 1e-9,
           raw / ours);
}

static void bench_linear(const char *name, int64_t T, int64_t in, int64_t out)
{
    if (!strstr(name, filter)) return;
    lin_state s = {.T = T, .in = in, .out = out};
    s.ctx = sm_ctx_new(be);
    s.p = sm_params_new();
    s.w = sm_params_add(s.p, "w", 2, SM_SHAPE(out, in), NULL);
    s.b = sm_params_add(s.p, "b", 1, SM_SHAPE(out), NULL);
    sm_params_finalize(s.p, NULL);
    fill(s.w->data, out * in, 1);
    fill(s.b->data, out, 2);
    s.x = malloc((size_t)(T * in) * 4);
    s.dx = malloc((size_t)(T * in) * 4);
    s.dy = malloc((size_t)(T * out) * 4);
    s.y = malloc((size_t)(T * out) * 4);
    s.dw = calloc((size_t)(out * in), 4);
    fill(s.x, T * in, 3);
    fill(s.dy, T * out, 4);
    double of[64], ob[64], rf[64], rb[64], d;
    for (int w = 0; w < 2; w++) { /* warm-up: the arena settles in its single chunk at the */
        lin_ours(&s, &d, &d);     /* second step; pages touched */
        lin_raw(&s, &d, &d);
    }
    for (int r = 0; r < reps; r++) {
        lin_ours(&s, &of[r], &ob[r]);
        lin_raw(&s, &rf[r], &rb[r]);
    }
    double flop = 2.0 * (double)T * (double)in * (double)out;
    row(name, "fwd", flop, median(of, reps), median(rf, reps));
    row(name, "bwd", 2 * flop, median(ob, reps), median(rb, reps));
    fflush(stdout);
    free(s.x);
    free(s.dx);
    free(s.dy);
    free(s.y);
    free(s.dw);
    sm_params_free(s.p);
    sm_ctx_free(s.ctx);
}

/* ---- the raw sgemm peak ------------------------------------------------------------------ */

/* C (m×n) = A (m×k) · B (k×n), row-major, through the backend alone: the reference for "fraction
 * of the BLIS peak" (bench/run). Rows named "peak ..." print the median GFLOP/s once. */
static void bench_peak(const char *name, int64_t m, int64_t n, int64_t k)
{
    if (!strstr(name, filter)) return;
    float *a = malloc((size_t)(m * k) * 4), *b = malloc((size_t)(k * n) * 4);
    float *c = malloc((size_t)(m * n) * 4);
    fill(a, m * k, 11);
    fill(b, k * n, 12);
    double t[64];
    for (int r = -2; r < reps; r++) { /* two warm-up calls */
        double t0 = now();
        sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, m, n, k, 1.0f, a, k, 1, b, n, 1, 0.0f, c,
                         n, 1);
        if (r >= 0) t[r] = now() - t0;
    }
    double flop = 2.0 * (double)m * (double)n * (double)k;
    printf("%-22s %-10s %9s %9.1f\n", name, "NN", "-", flop / median(t, reps) * 1e-9);
    fflush(stdout);
    free(a);
    free(b);
    free(c);
}

/* ---- attention --------------------------------------------------------------------------- */

typedef struct att_state {
    sm_ctx *ctx;
    int64_t B, N, H, D;
    float *qkv, *dout, *bias;
    float *q, *k, *v, *s, *o; /* raw: contiguous per-head operands */
} att_state;

/* ours: forward and backward (tf, tb), then a forward without gradients (tn: evaluation,
 * P is not kept, so it is not written out to memory) */
static void att_ours(att_state *s, double *tf, double *tb, double *tn)
{
    int64_t B = s->B, N = s->N, H = s->H, D = s->D;
    sm_ctx_reset(s->ctx);
    sm_tensor *qkv = sm_ctx_wrap(s->ctx, s->qkv, 3, SM_SHAPE(B, N, 3 * H * D));
    sm_tensor *bias = sm_ctx_wrap(s->ctx, s->bias, 3, SM_SHAPE(H, N, N));
    qkv->flags |= SM_TENSOR_REQUIRES_GRAD;
    bias->flags |= SM_TENSOR_REQUIRES_GRAD;
    double t0 = now();
    sm_tensor *o = sm_attention(s->ctx, qkv, (int)H, 0.125f, bias, NULL);
    finish(s->ctx, o, s->dout, t0, tf, tb);
    sm_ctx_reset(s->ctx);
    sm_ctx_set_grad(s->ctx, false);
    qkv = sm_ctx_wrap(s->ctx, s->qkv, 3, SM_SHAPE(B, N, 3 * H * D));
    bias = sm_ctx_wrap(s->ctx, s->bias, 3, SM_SHAPE(H, N, N));
    t0 = now();
    o = sm_attention(s->ctx, qkv, (int)H, 0.125f, bias, NULL);
    *tn = now() - t0;
    sm_ctx_set_grad(s->ctx, true);
    if (!o) {
        fprintf(stderr, "bench: %s\n", sm_ctx_error(s->ctx)->text);
        exit(1);
    }
}

/* raw: per (b, h) S = q·kᵀ, O = S·v (fwd); dV = Sᵀ·dO, dP = dO·vᵀ, dq = dP·k, dk = dPᵀ·q (bwd),
 * contiguous operands, OpenMP loop with one BLIS thread per call */
static void att_raw(att_state *s, int threads, double *tf, double *tb)
{
    int64_t BH = s->B * s->H, N = s->N, D = s->D, NN = N * N, ND = N * D;
    double t0 = now();
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < BH; i++) {
        float *S = s->s + (int64_t)omp_get_thread_num() * NN;
        sm_backend_sgemm(be, SM_NO_TRANS, SM_TRANS, N, N, D, 1.0f, s->q + i * ND, D, 1,
                         s->k + i * ND, D, 1, 0.0f, S, N, 1);
        sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, N, D, N, 1.0f, S, N, 1, s->v + i * ND, D,
                         1, 0.0f, s->o + i * ND, D, 1);
    }
    double t1 = now();
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < BH; i++) {
        float *S = s->s + (int64_t)omp_get_thread_num() * NN, *dP = S + (int64_t)threads * NN;
        float *o = s->o + i * ND;
        sm_backend_sgemm(be, SM_TRANS, SM_NO_TRANS, N, D, N, 1.0f, S, N, 1, o, D, 1, 1.0f,
                         s->v + i * ND, D, 1);
        sm_backend_sgemm(be, SM_NO_TRANS, SM_TRANS, N, N, D, 1.0f, o, D, 1, s->v + i * ND, D, 1,
                         0.0f, dP, N, 1);
        sm_backend_sgemm(be, SM_NO_TRANS, SM_NO_TRANS, N, D, N, 1.0f, dP, N, 1, s->k + i * ND, D,
                         1, 1.0f, s->q + i * ND, D, 1);
        sm_backend_sgemm(be, SM_TRANS, SM_NO_TRANS, N, D, N, 1.0f, dP, N, 1, s->q + i * ND, D, 1,
                         1.0f, s->k + i * ND, D, 1);
    }
    double t2 = now();
    *tf = t1 - t0;
    *tb = t2 - t1;
}

static void bench_attention(const char *name, int64_t B, int64_t N, int64_t H, int64_t D,
                            int threads)
{
    if (!strstr(name, filter)) return;
    att_state s = {.B = B, .N = N, .H = H, .D = D};
    int64_t n_qkv = B * N * 3 * H * D, nh = B * H * N * D;
    s.ctx = sm_ctx_new(be);
    s.qkv = malloc((size_t)n_qkv * 4);
    s.dout = malloc((size_t)(B * N * H * D) * 4);
    s.bias = malloc((size_t)(H * N * N) * 4);
    s.q = malloc((size_t)nh * 4);
    s.k = malloc((size_t)nh * 4);
    s.v = malloc((size_t)nh * 4);
    s.o = malloc((size_t)nh * 4);
    s.s = malloc((size_t)(2 * threads * N * N) * 4);
    fill(s.qkv, n_qkv, 5);
    fill(s.dout, B * N * H * D, 6);
    fill(s.bias, H * N * N, 7);
    fill(s.q, nh, 8);
    fill(s.k, nh, 9);
    fill(s.v, nh, 10);
    double of[64], ob[64], on[64], rf[64], rb[64], d;
    for (int w = 0; w < 2; w++) {
        att_ours(&s, &d, &d, &d);
        att_raw(&s, threads, &d, &d);
    }
    for (int r = 0; r < reps; r++) {
        att_ours(&s, &of[r], &ob[r], &on[r]);
        att_raw(&s, threads, &rf[r], &rb[r]);
    }
    double flop = 4.0 * (double)(B * H) * (double)(N * N) * (double)D;
    row(name, "fwd", flop, median(of, reps), median(rf, reps));
    row(name, "bwd", 2 * flop, median(ob, reps), median(rb, reps));
    row(name, "fwd-nograd", flop, median(on, reps), median(rf, reps));
    fflush(stdout);
    free(s.qkv);
    free(s.dout);
    free(s.bias);
    free(s.q);
    free(s.k);
    free(s.v);
    free(s.o);
    free(s.s);
    sm_ctx_free(s.ctx);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    if (argc > 2) reps = atoi(argv[2]);
    if (argc > 3) filter = argv[3];
    if (threads <= 0) threads = omp_get_num_procs();
    if (reps < 1 || reps > 64) reps = 5;
    sm_registry *reg = sm_registry_new();
    sm_error err = {0};
    const char *plugin = getenv("SM_BENCH_PLUGIN") ? getenv("SM_BENCH_PLUGIN") : SM_BENCH_PLUGIN;
    if (!reg || sm_plugin_load(reg, plugin, &err) != 0 ||
        sm_backend_new(reg, "blis", NULL, threads, &be, &err) != 0) {
        fprintf(stderr, "bench_ops: cannot open the blis backend: %s\n", err.text);
        return 1;
    }
    omp_set_num_threads(threads);
    char desc[256];
    sm_backend_describe(be, desc, sizeof desc);
    printf("backend: %s\ncore threads: %d, repetitions: %d (medians)\n\n", desc, threads, reps);
    printf("%-22s %-10s %9s %9s %7s\n", "shape", "op", "ours", "blis", "ratio");
    printf("%-22s %-10s %9s %9s %7s\n", "", "", "GFLOP/s", "GFLOP/s", "");
    /* the raw peak (only with FILTER "peak") */
    if (strstr(filter, "peak")) {
        bench_peak("peak 2048x2048x2048", 2048, 2048, 2048);
        bench_peak("peak 1576x3072x768", 1576, 3072, 768);
    }
    /* ViT-B/16, batch 8 */
    bench_linear("vit.qkv 1576x768>2304", 1576, 768, 2304);
    bench_linear("vit.proj 1576x768>768", 1576, 768, 768);
    bench_linear("vit.fc1 1576x768>3072", 1576, 768, 3072);
    bench_linear("vit.fc2 1576x3072>768", 1576, 3072, 768);
    bench_attention("vit.attn 8x12 N197 D64", 8, 197, 12, 64, threads);
    /* Swin-B@192 window 6, batch 8 */
    bench_linear("swin1.qkv 18432x128>384", 18432, 128, 384);
    bench_linear("swin1.proj 18432x128>128", 18432, 128, 128);
    bench_linear("swin1.fc1 18432x128>512", 18432, 128, 512);
    bench_linear("swin1.fc2 18432x512>128", 18432, 512, 128);
    bench_attention("swin1.attn 512x4 N36 D32", 512, 36, 4, 32, threads);
    bench_linear("swin3.qkv 1152x512>1536", 1152, 512, 1536);
    bench_linear("swin3.fc1 1152x512>2048", 1152, 512, 2048);
    bench_linear("swin3.fc2 1152x2048>512", 1152, 2048, 512);
    bench_attention("swin3.attn 32x16 N36 D32", 32, 36, 16, 32, threads);
    /* Swin-B@224 window 7 (fine-tuning), batch 8: 49-token windows; stage 4's 392 rows and
     * stage 1's 128 channels are the skinny products BLIS sends to its unpacked path */
    bench_linear("swin224.1.fc1 25088x128>512", 25088, 128, 512);
    bench_attention("swin224.1.attn 512x4 N49 D32", 512, 49, 4, 32, threads);
    bench_attention("swin224.3.attn 32x16 N49 D32", 32, 49, 16, 32, threads);
    bench_linear("swin224.4.fc1 392x1024>4096", 392, 1024, 4096);
    bench_linear("swin224.4.fc2 392x4096>1024", 392, 4096, 1024);
    sm_backend_free(be);
    sm_registry_free(reg);
    return 0;
}
