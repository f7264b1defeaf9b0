/* core/tensor/ops/drop_path.c - stochastic depth per sample (timm DropPath).
 *   x (B, ...) -> same shape; in training mode with rate > 0 sample b is kept with probability
 *   1 - rate and scaled by 1/(1 - rate), else zeroed. The decision is a pure function of
 *   sm_rng_hash(seed, step, key, b), so it does not depend on threads or call order.
 *   backward: dx += dout·factor[b] (in place over dout, dx = 0 + dout·factor[b], when x takes
 *   over dout's buffer) */
#include "tensor/tensor_internal.h"

typedef struct dp_saved {
    float *factor; /* B */
} dp_saved;

sm_tensor *sm_drop_path(sm_ctx *ctx, sm_tensor *x, float rate, uint64_t key)
{
    if (!SM__OK(ctx, x)) return NULL;
    if (!(rate >= 0.0f && rate < 1.0f)) {
        sm_ctx_fail(ctx, SM_EINVAL, "drop_path: rate %g is outside [0, 1)", (double)rate);
        return NULL;
    }
    if (!ctx->train || rate == 0.0f) return x;
    if (x->ndim < 1)
        return sm__shape_error(ctx, "drop_path", "x needs a batch dim", "x", x, NULL);
    x = sm__contig(ctx, x);
    if (!x) return NULL;
    int64_t B = x->shape[0], per = B ? sm_tensor_numel(x) / B : 0;
    sm_tensor *out = sm__empty(ctx, x->ndim, x->shape);
    float *factor = sm_ctx_alloc(ctx, (size_t)(B > 0 ? B : 1) * sizeof(float));
    if (!out || !factor) return NULL;
    float keep = 1.0f - rate;
    for (int64_t b = 0; b < B; b++) {
        uint64_t h = sm_rng_hash(ctx->seed, ctx->step, key, (uint64_t)b);
        double u = (double)(h >> 11) * 0x1.0p-53;
        factor[b] = u < (double)keep ? 1.0f / keep : 0.0f;
    }
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, B * per))
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < per; i++) out->data[b * per + i] = x->data[b * per + i] * factor[b];
    dp_saved sv = {factor};
    return sm__track(ctx, SM__OP_DROP_PATH, out, 1, &x, &sv, sizeof sv);
}

void sm__drop_path_backward(sm_ctx *ctx, sm__node *n)
{
    sm_tensor *x = n->in[0];
    const float *f = ((const dp_saved *)n->saved)->factor, *g = n->out->grad;
    int64_t B = x->shape[0], per = B ? sm_tensor_numel(x) / B : 0;
    float *over = sm__grad_take(ctx, x, n->out);
    if (over) { /* the value a zeroed dx gets below */
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, B * per))
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < per; i++) over[b * per + i] = 0.0f + over[b * per + i] * f[b];
        return;
    }
    float *gx = sm__grad(ctx, x);
    if (!gx) return;
#pragma omp parallel for schedule(static) num_threads(sm__threads_for(ctx, B * per))
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < per; i++) gx[b * per + i] += g[b * per + i] * f[b];
}
