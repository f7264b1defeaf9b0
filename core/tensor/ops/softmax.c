/* core/tensor/ops/softmax.c - softmax over the last dim, and the row kernels attention shares.
 *   x (..., n) -> same shape; p = exp(x - max) / Σ exp(x - max)
 *   backward: dx += p ⊙ (dy - Σ_j dy_j·p_j) */
#include "tensor/tensor_internal.h"

/* One row in place: s = softmax(s + bias + mask) (bias, mask: NULL or n floats). Inlined into
 * the row-loop kernels below, so each ISA clone compiles it for its ISA and short rows (36 in
 * Swin windows) pay no call per row. */
static inline __attribute__((always_inline)) void softmax_row(float *s, int64_t n,
                                                              const float *bias,
                                                              const float *mask)
{
    if (bias) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) s[j] += bias[j];
    }
    if (mask) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) s[j] += mask[j];
    }
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    float sum = 0.0f; /* terms in (0, 1], split over the vector lanes: float is enough */
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; j++) {
        float e = sm__expf(s[j] - mx);
        s[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) s[j] *= inv;
}

SM__KERNEL void sm__softmax_rows(float *s, int64_t rows, int64_t n, const float *bias,
                                 const float *mask)
{
    for (int64_t r = 0; r < rows; r++)
        softmax_row(s + r * n, n, bias ? bias + r * n : NULL, mask ? mask + r * n : NULL);
}

/* One row: dx (= or +=) p ⊙ (g - Σ g·p). dx may alias g when !acc. */
static inline __attribute__((always_inline)) void softmax_row_bwd(const float *p,
                                                                  const float *g, float *dx,
                                                                  int64_t n, bool acc)
{
    double dot = 0.0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; j++) dot += (double)g[j] * p[j];
    float d = (float)dot;
    if (acc) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) dx[j] += p[j] * (g[j] - d);
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) dx[j] = p[j] * (g[j] - d);
    }
}

SM__KERNEL void sm__softmax_rows_bwd(const float *p, const float *g, float *dx, int64_t rows,
                                     int64_t n, bool acc)
{
    for (int64_t r = 0; r < rows; r++) softmax_row_bwd(p + r * n, g + r * n, dx + r * n, n, acc);
}

sm_tensor *sm_softmax(sm_ctx *ctx, sm_tensor *x)
{
    if (!SM__OK(ctx, x)) return NULL;
    if (x->ndim < 1)
        return sm__shape_error(ctx, "softmax", "x needs at least one dim", "x", x, NULL);
    x = sm__contig(ctx, x);
    if (!x) return NULL;
    sm_tensor *y = sm__empty(ctx, x->ndim, x->shape);
    if (!y) return NULL;
    int64_t n = x->shape[x->ndim - 1], rows = sm__rows(x);
    memcpy(y->data, x->data, (size_t)(rows * n) * sizeof(float));
    int64_t nb = (rows + SM__ROW_BLOCK - 1) / SM__ROW_BLOCK;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, rows * n * 4))
    for (int64_t blk = 0; blk < nb; blk++) {
        int64_t r0 = blk * SM__ROW_BLOCK;
        sm__softmax_rows(y->data + r0 * n, SM__MIN(SM__ROW_BLOCK, rows - r0), n, NULL, NULL);
    }
    return sm__track(ctx, SM__OP_SOFTMAX, y, 1, &x, NULL, 0);
}

void sm__softmax_backward(sm_ctx *ctx, sm__node *node)
{
    sm_tensor *x = node->in[0], *y = node->out;
    bool fresh;
    float *gx = sm__grad_w(ctx, x, &fresh);
    if (!gx) return;
    int64_t n = x->shape[x->ndim - 1], rows = sm__rows(x);
    int64_t nb = (rows + SM__ROW_BLOCK - 1) / SM__ROW_BLOCK;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, rows * n * 2))
    for (int64_t blk = 0; blk < nb; blk++) {
        int64_t r0 = blk * SM__ROW_BLOCK, len = SM__MIN(SM__ROW_BLOCK, rows - r0);
        sm__softmax_rows_bwd(y->data + r0 * n, y->grad + r0 * n, gx + r0 * n, len, n, !fresh);
    }
}
