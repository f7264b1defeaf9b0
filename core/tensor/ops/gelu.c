/* core/tensor/ops/gelu.c - exact GELU (torch.nn.GELU(), erf form).
 *   x (any) -> same shape;  y = 0.5·x·(1 + erf(x/√2))
 *   backward: dx += dy·(Φ(x) + x·φ(x)), Φ(x) = 0.5·(1 + erf(x/√2)), φ(x) = e^(-x²/2)/√(2π);
 *             in place over dy (dx = 0 + dy·(...)) when x takes over dy's buffer
 *   remat:    y again from x, the same kernel over the same chunks (bitwise the forward's y):
 *             a released y is dropped in forward and made again where fc2's backward reads it */
#include "tensor/tensor_internal.h"

SM__KERNEL static void gelu_fwd(const float *x, float *y, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + sm__erff(x[i] * 0.70710678118654752f));
}

SM__KERNEL static void gelu_bwd(const float *x, const float *dy, float *dx, int64_t n, bool acc)
{
    if (!acc) /* fresh buffer: never read it */
        for (int64_t i = 0; i < n; i++) dx[i] = 0.0f;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + sm__erff(v * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * sm__expf(-0.5f * v * v);
        dx[i] += dy[i] * (cdf + v * pdf);
    }
}

/* g[i] = 0 + g[i]·(Φ + x·φ): the value a zeroed dx gets in gelu_bwd, written over dy */
SM__KERNEL static void gelu_bwd_over(const float *x, float *g, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + sm__erff(v * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * sm__expf(-0.5f * v * v);
        g[i] = 0.0f + g[i] * (cdf + v * pdf);
    }
}

sm_tensor *sm_gelu(sm_ctx *ctx, sm_tensor *x)
{
    if (!SM__OK(ctx, x)) return NULL;
    x = sm__contig(ctx, x);
    if (!x) return NULL;
    sm_tensor *y = sm__empty(ctx, x->ndim, x->shape);
    if (!y) return NULL;
    SM__CHUNKED(ctx, sm_tensor_numel(x), gelu_fwd(x->data + i0, y->data + i0, len));
    return sm__track(ctx, SM__OP_GELU, y, 1, &x, NULL, 0);
}

void sm__gelu_remat(sm_ctx *ctx, const sm__node *n, float *out)
{
    const sm_tensor *x = n->in[0];
    SM__CHUNKED(ctx, sm_tensor_numel(x), gelu_fwd(x->data + i0, out + i0, len));
}

void sm__gelu_backward(sm_ctx *ctx, sm__node *n)
{
    sm_tensor *x = n->in[0];
    float *over = sm__grad_take(ctx, x, n->out);
    if (over) {
        SM__CHUNKED(ctx, sm_tensor_numel(x), gelu_bwd_over(x->data + i0, over + i0, len));
        return;
    }
    bool fresh;
    float *gx = sm__grad_w(ctx, x, &fresh);
    const float *dy = n->out->grad;
    if (gx)
        SM__CHUNKED(ctx, sm_tensor_numel(x),
                    gelu_bwd(x->data + i0, dy + i0, gx + i0, len, !fresh));
}
