/* core/tensor/ops/linear.c - y = x·wᵀ + b (torch.nn.functional.linear), as one GEMM each way.
 *   x (..., in) -> rows T = numel / in; w (out, in) [any strides]; b (out) or NULL
 *   forward:  Y (T, out) = X·Wᵀ + b (every row): one GEMM with a bias (the backend's
 *             sgemm_bias, else Y filled with b and a GEMM with beta 1)
 *   backward: dX (T, in) += dY·W ; dW (out, in) += dYᵀ·X ; db += column sums of dY */
#include "tensor/tensor_internal.h"

sm_tensor *sm_linear(sm_ctx *ctx, sm_tensor *x, sm_tensor *w, sm_tensor *b)
{
    if (!SM__OK(ctx, x, w)) return NULL;
    if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1])
        return sm__shape_error(ctx, "linear", "x (..., in) needs w (out, in)", "x", x, "w", w,
                               NULL);
    int64_t in = w->shape[1], nout = w->shape[0];
    if (b && (b->ndim != 1 || b->shape[0] != nout))
        return sm__shape_error(ctx, "linear", "b must be (out)", "w", w, "b", b, NULL);
    x = sm__contig(ctx, x);
    if (b) b = sm__contig(ctx, b);
    if (ctx->err.code) return NULL;
    int64_t sh[SM_MAX_DIMS];
    memcpy(sh, x->shape, sizeof sh);
    sh[x->ndim - 1] = nout;
    sm_tensor *ins[3] = {x, w, b};
    sm_tensor *y = sm__replayed(ctx, x->ndim, sh); /* kept by a checkpoint: Y is known */
    if (y) return sm__track(ctx, SM__OP_LINEAR, y, 3, ins, NULL, 0);
    y = sm__empty(ctx, x->ndim, sh);
    if (!y) return NULL;
    int64_t T = sm__rows(x);
    /* Y (T×out) = X (T×in) · Wᵀ (+ b): Wᵀ(p, j) = w[j·s0 + p·s1] */
    if (b)
        sm__gemm_bias(ctx, T, nout, in, x->data, in, 1, w->data, w->stride[1], w->stride[0],
                      b->data, y->data, nout);
    else
        sm__gemm(ctx, T, nout, in, 1.0f, x->data, in, 1, w->data, w->stride[1], w->stride[0],
                 0.0f, y->data, nout, 1);
    return sm__track(ctx, SM__OP_LINEAR, y, 3, ins, NULL, 0);
}

void sm__linear_backward(sm_ctx *ctx, sm__node *n)
{
    sm_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    const float *dy = n->out->grad;
    int64_t in = w->shape[1], nout = w->shape[0], T = sm__rows(x);
    bool fx;
    float *gx = sm__grad_w(ctx, x, &fx), *gw = sm__grad(ctx, w), *gb = sm__grad(ctx, b);
    if (gx) /* dX (T×in) (+)= dY (T×out) · W (out×in) */
        sm__gemm(ctx, T, in, nout, 1.0f, dy, nout, 1, w->data, w->stride[0], w->stride[1],
                 fx ? 0.0f : 1.0f, gx, in, 1);
    if (gw) /* dW (out×in) += dYᵀ · X: dYᵀ(i, p) = dy[p·out + i] */
        sm__gemm(ctx, nout, in, T, 1.0f, dy, 1, nout, x->data, in, 1, 1.0f, gw, w->stride[0],
                 w->stride[1]);
    if (gb) sm__colsum_acc(ctx, dy, T, nout, nout, NULL, gb);
}
