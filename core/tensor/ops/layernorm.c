/* core/tensor/ops/layernorm.c - LayerNorm over the last dim (torch.nn.functional.layer_norm).
 *   x (..., C) -> rows T; w (C) or NULL; b (C) or NULL; biased variance, eps inside the sqrt
 *   forward:  mean, var in double (two passes); y = (x - mean)·rstd·w + b; saves mean, rstd
 *   backward: xhat = (x - mean)·rstd, g = dy·w
 *             dx += rstd·(g - mean(g) - xhat·mean(g·xhat))
 *             dw += Σ_rows dy·xhat, db += Σ_rows dy  (fixed row blocks, combined in order) */
#include "tensor/tensor_internal.h"

typedef struct ln_saved {
    float *mean, *rstd;
} ln_saved;

SM__KERNEL static void ln_row(const float *x, float *y, int64_t C, const float *w,
                              const float *b, float eps, float *mean_out, float *rstd_out)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < C; j++) s += x[j];
    float mean = (float)(s / (double)C);
    double v = 0.0;
#pragma omp simd reduction(+ : v)
    for (int64_t j = 0; j < C; j++) {
        double d = (double)x[j] - (double)mean;
        v += d * d;
    }
    float rstd = (float)(1.0 / sqrt(v / (double)C + (double)eps));
    if (w && b) {
#pragma omp simd
        for (int64_t j = 0; j < C; j++) y[j] = (x[j] - mean) * rstd * w[j] + b[j];
    } else {
        for (int64_t j = 0; j < C; j++)
            y[j] = (x[j] - mean) * rstd * (w ? w[j] : 1.0f) + (b ? b[j] : 0.0f);
    }
    *mean_out = mean;
    *rstd_out = rstd;
}

sm_tensor *sm_layernorm(sm_ctx *ctx, sm_tensor *x, sm_tensor *w, sm_tensor *b, float eps)
{
    if (!SM__OK(ctx, x)) return NULL;
    if (x->ndim < 1)
        return sm__shape_error(ctx, "layernorm", "x needs at least one dim", "x", x, NULL);
    int64_t C = x->shape[x->ndim - 1];
    if (w && (w->ndim != 1 || w->shape[0] != C))
        return sm__shape_error(ctx, "layernorm", "w must be (C), C = last dim of x", "x", x,
                               "w", w, NULL);
    if (b && (b->ndim != 1 || b->shape[0] != C))
        return sm__shape_error(ctx, "layernorm", "b must be (C), C = last dim of x", "x", x,
                               "b", b, NULL);
    x = sm__contig(ctx, x);
    if (w) w = sm__contig(ctx, w);
    if (b) b = sm__contig(ctx, b);
    if (ctx->err.code) return NULL;
    sm_tensor *y = sm__empty(ctx, x->ndim, x->shape);
    int64_t T = sm__rows(x);
    float *stats = sm_ctx_alloc(ctx, (size_t)(2 * T) * sizeof(float));
    if (!y || !stats) return NULL;
    const float *wd = w ? w->data : NULL, *bd = b ? b->data : NULL;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, T * C))
    for (int64_t r = 0; r < T; r++)
        ln_row(x->data + r * C, y->data + r * C, C, wd, bd, eps, stats + r, stats + T + r);
    sm_tensor *ins[3] = {x, w, b};
    ln_saved sv = {stats, stats + T};
    return sm__track(ctx, SM__OP_LAYERNORM, y, 3, ins, &sv, sizeof sv);
}

/* One block of rows: dx for each row, and this block's partial dw, db. */
SM__KERNEL static void ln_back_block(const float *x, const float *dy, int64_t rows, int64_t C,
                                     const float *w, const float *mean, const float *rstd,
                                     float *dx, bool acc, float *pw, float *pb)
{
    if (pw)
        for (int64_t j = 0; j < C; j++) pw[j] = 0.0f;
    if (pb)
        for (int64_t j = 0; j < C; j++) pb[j] = 0.0f;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C, *gr = dy + r * C;
        float mu = mean[r], rs = rstd[r];
        if (dx) {
            double s1 = 0.0, s2 = 0.0;
#pragma omp simd reduction(+ : s1, s2)
            for (int64_t j = 0; j < C; j++) {
                float g = gr[j] * (w ? w[j] : 1.0f), xh = (xr[j] - mu) * rs;
                s1 += g;
                s2 += (double)g * xh;
            }
            float m1 = (float)(s1 / (double)C), m2 = (float)(s2 / (double)C);
            float *dxr = dx + r * C;
            if (!acc) /* fresh buffer: never read it */
                for (int64_t j = 0; j < C; j++) dxr[j] = 0.0f;
#pragma omp simd
            for (int64_t j = 0; j < C; j++) {
                float g = gr[j] * (w ? w[j] : 1.0f), xh = (xr[j] - mu) * rs;
                dxr[j] += rs * (g - m1 - xh * m2);
            }
        }
        if (pw) {
#pragma omp simd
            for (int64_t j = 0; j < C; j++) pw[j] += gr[j] * ((xr[j] - mu) * rs);
        }
        if (pb) {
#pragma omp simd
            for (int64_t j = 0; j < C; j++) pb[j] += gr[j];
        }
    }
}

void sm__layernorm_backward(sm_ctx *ctx, sm__node *n)
{
    sm_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    const ln_saved *sv = n->saved;
    const float *dy = n->out->grad;
    int64_t C = x->shape[x->ndim - 1], T = sm__rows(x);
    bool fresh;
    float *gx = sm__grad_w(ctx, x, &fresh), *gw = sm__grad(ctx, w), *gb = sm__grad(ctx, b);
    int64_t nb = (T + SM__ROW_BLOCK - 1) / SM__ROW_BLOCK;
    float *pw = gw ? sm_ctx_alloc(ctx, (size_t)(nb * C) * sizeof(float)) : NULL;
    float *pb = gb ? sm_ctx_alloc(ctx, (size_t)(nb * C) * sizeof(float)) : NULL;
    if (ctx->err.code) return;
    const float *wd = w ? w->data : NULL;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, T * C))
    for (int64_t blk = 0; blk < nb; blk++) {
        int64_t r0 = blk * SM__ROW_BLOCK, rows = SM__MIN(T - r0, SM__ROW_BLOCK);
        ln_back_block(x->data + r0 * C, dy + r0 * C, rows, C, wd, sv->mean + r0, sv->rstd + r0,
                      gx ? gx + r0 * C : NULL, !fresh, pw ? pw + blk * C : NULL,
                      pb ? pb + blk * C : NULL);
    }
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, nb * C))
    for (int64_t j = 0; j < C; j++) {
        double sw = 0.0, sb = 0.0;
        for (int64_t blk = 0; blk < nb; blk++) {
            if (pw) sw += pw[blk * C + j];
            if (pb) sb += pb[blk * C + j];
        }
        if (gw) gw[j] += (float)sw;
        if (gb) gb[j] += (float)sb;
    }
}
