/* core/tensor/ops/common.c - kernels several ops share: GEMM through the backend with logical strides,
 * deterministic column sums, strided copies. */
#include "tensor/tensor_internal.h"

#include <omp.h>

/* Profiling: a backend GEMM called from outside any parallel region (one thread: the op's own
 * call) is timed and its FLOPs counted; calls inside the core's parallel loops are their op's
 * (attention counts its FLOPs itself). */
static bool prof_gemm(const sm_ctx *ctx) { return ctx->prof && omp_get_level() == 0; }

static void prof_gemm_done(sm_ctx *ctx, double t0, double flop)
{
    ctx->prof->gemm += sm_profile_now() - t0;
    sm__prof_flop(ctx, flop);
}

void sm__gemm(sm_ctx *ctx, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
              int64_t ar, int64_t ac, const float *b, int64_t br, int64_t bc, float beta,
              float *c, int64_t cr, int64_t cc)
{
    bool prof = prof_gemm(ctx);
    double t0 = prof ? sm_profile_now() : 0.0;
    sm_backend_sgemm(ctx->backend, SM_NO_TRANS, SM_NO_TRANS, m, n, k, alpha, a, ar, ac, b, br,
                     bc, beta, c, cr, cc);
    if (prof) prof_gemm_done(ctx, t0, 2.0 * (double)m * (double)n * (double)k);
}

void sm__gemm_bias(sm_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *a, int64_t ar,
                   int64_t ac, const float *b, int64_t br, int64_t bc, const float *bias, float *c,
                   int64_t cr)
{
    bool prof = prof_gemm(ctx);
    double t0 = prof ? sm_profile_now() : 0.0;
    sm_backend_sgemm_bias(ctx->backend, SM_NO_TRANS, SM_NO_TRANS, m, n, k, a, ar, ac, b, br, bc,
                          bias, c, cr);
    if (prof) prof_gemm_done(ctx, t0, 2.0 * (double)m * (double)n * (double)k);
}

void sm__gemm_batched(sm_ctx *ctx, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      int64_t ar, int64_t ac, int64_t sa, const float *b, int64_t br, int64_t bc,
                      int64_t sb, float beta, float *c, int64_t cr, int64_t cc, int64_t sc,
                      int64_t batch)
{
    if (batch == 1) {
        sm__gemm(ctx, m, n, k, alpha, a, ar, ac, b, br, bc, beta, c, cr, cc);
        return;
    }
    bool prof = prof_gemm(ctx);
    double t0 = prof ? sm_profile_now() : 0.0;
    sm_backend_sgemm_batched(ctx->backend, SM_NO_TRANS, SM_NO_TRANS, m, n, k, alpha, a, ar, ac,
                             sa, b, br, bc, sb, beta, c, cr, cc, sc, batch);
    if (prof) prof_gemm_done(ctx, t0, 2.0 * (double)m * (double)n * (double)k * (double)batch);
}

/* part[j] = Σ_{r < rows} w[r]·src[r·ld + j] (float, in row order; w NULL = 1). */
SM__KERNEL static void colsum_block(const float *src, int64_t rows, int64_t cols, int64_t ld,
                                    const float *w, float *part)
{
    for (int64_t j = 0; j < cols; j++) part[j] = 0.0f;
    for (int64_t r = 0; r < rows; r++) {
        const float *s = src + r * ld;
        float wr = w ? w[r] : 1.0f;
        if (wr == 0.0f) continue;
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) part[j] += wr * s[j];
    }
}

void sm__colsum_acc(sm_ctx *ctx, const float *src, int64_t rows, int64_t cols, int64_t ld,
                    const float *row_w, float *dst)
{
    int64_t nb = (rows + SM__ROW_BLOCK - 1) / SM__ROW_BLOCK;
    if (nb == 0 || cols == 0) return;
    float *part = sm_ctx_alloc(ctx, (size_t)(nb * cols) * sizeof(float));
    if (!part) return;
    int nt = sm__threads_for(ctx, rows * cols);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t blk = 0; blk < nb; blk++) {
        int64_t r0 = blk * SM__ROW_BLOCK, r1 = SM__MIN(rows, r0 + SM__ROW_BLOCK);
        colsum_block(src + r0 * ld, r1 - r0, cols, ld, row_w ? row_w + r0 : NULL, part + blk * cols);
    }
    /* combine block partials in block order, parallel over columns */
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, nb * cols))
    for (int64_t j = 0; j < cols; j++) {
        double acc = 0.0;
        for (int64_t blk = 0; blk < nb; blk++) acc += part[blk * cols + j];
        dst[j] += (float)acc;
    }
}

/* Offset of row `row` (all dims but the last, row-major) in a strided view. */
static int64_t row_offset(const sm_tensor *t, int64_t row)
{
    int64_t off = 0;
    for (int d = t->ndim - 2; d >= 0; d--) {
        int64_t i = row % t->shape[d];
        row /= t->shape[d];
        off += i * t->stride[d];
    }
    return off;
}

void sm__strided_copy(sm_ctx *ctx, const sm_tensor *src, float *dst)
{
    if (src->ndim == 0) {
        dst[0] = src->data[0];
        return;
    }
    int64_t cols = src->shape[src->ndim - 1], cs = src->stride[src->ndim - 1];
    int64_t rows = cols ? sm_tensor_numel(src) / cols : 0;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, rows * cols))
    for (int64_t r = 0; r < rows; r++) {
        const float *s = src->data + row_offset(src, r);
        float *d = dst + r * cols;
        for (int64_t j = 0; j < cols; j++) d[j] = s[j * cs];
    }
}

void sm__strided_acc(sm_ctx *ctx, const sm_tensor *dst_view, float *dst_data, const float *src)
{
    if (dst_view->ndim == 0) {
        dst_data[0] += src[0];
        return;
    }
    int64_t cols = dst_view->shape[dst_view->ndim - 1];
    int64_t cs = dst_view->stride[dst_view->ndim - 1];
    int64_t rows = cols ? sm_tensor_numel(dst_view) / cols : 0;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, rows * cols))
    for (int64_t r = 0; r < rows; r++) {
        float *d = dst_data + row_offset(dst_view, r);
        const float *s = src + r * cols;
        for (int64_t j = 0; j < cols; j++) d[j * cs] += s[j];
    }
}
