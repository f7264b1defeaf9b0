/* core/tensor/ops/gelu.c - exact GELU (torch.nn.GELU(), erf form).
 *   x (any) -> same shape;  y = 0.5·x·(1 + erf(x/√2))
 *   backward: dx += dy·g(x), g(x) = Φ(x) + x·φ(x), Φ(x) = 0.5·(1 + erf(x/√2)),
 *             φ(x) = e^(-x²/2)/√(2π); in place over dy (dx = 0 + dy·g) when x takes over dy's
 *             buffer
 *   remat:    y again from x, the same kernel over the same chunks (bitwise the forward's y):
 *             a released y is dropped in forward and made again where fc2's backward reads it
 * Both directions are bound by the vector units, not memory: erf is a rational function with
 * one division (sm__erff), and g(x) - 1/2, an odd function, is one too (gelu_slope), so the
 * backward needs neither erf nor exp (it had both, and one exp inside erf: 4x faster). */
#include "tensor/tensor_internal.h"

SM__KERNEL static void gelu_fwd(const float *x, float *y, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + sm__erff(x[i] * 0.70710678118654752f));
}

/* GELU's slope g(x) = Φ(x) + x·φ(x) as 1/2 + x·P(x²)/Q(x²) on |x| <= 5.9 (beyond, g is 0 or 1
 * to within 7e-8): P of degree 7 and Q of degree 5 in x², our own minimax fit of (g - 1/2)
 * on [0, 5.9] (tools/fit_rational.py, as for sm__erff). Absolute error of the
 * float evaluation with FMAs below 3e-7 over [-8, 8] in steps of 1e-5 (mean 5e-8). */
static inline float gelu_slope(float x)
{
    float c = x > 5.9f ? 5.9f : x;
    c = c < -5.9f ? -5.9f : c;
    float s = c * c;
    float p = -1.648033223e-11f;
    p = p * s + 3.029559554e-09f;
    p = p * s - 1.348133005e-07f;
    p = p * s + 3.226537416e-05f;
    p = p * s - 1.625518679e-04f;
    p = p * s + 1.453302684e-02f;
    p = p * s - 4.251628370e-02f;
    p = p * s + 7.978847340e-01f;
    float q = 5.039367163e-06f;
    q = q * s + 1.455095899e-04f;
    q = q * s + 2.888884083e-03f;
    q = q * s + 3.655886901e-02f;
    q = q * s + 2.800498357e-01f;
    q = q * s + 1.0f;
    return 0.5f + c * p / q;
}

SM__KERNEL static void gelu_bwd(const float *x, const float *dy, float *dx, int64_t n, bool acc)
{
    if (!acc) /* fresh buffer: never read it */
        for (int64_t i = 0; i < n; i++) dx[i] = 0.0f;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * gelu_slope(x[i]);
}

/* g[i] = 0 + g[i]·slope: the value a zeroed dx gets in gelu_bwd, written over dy */
SM__KERNEL static void gelu_bwd_over(const float *x, float *g, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) g[i] = 0.0f + g[i] * gelu_slope(x[i]);
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
