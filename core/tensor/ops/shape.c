/* core/tensor/ops/shape.c - views and layout: reshape (a view when possible), strided views, permute,
 * contiguous copies. A view shares data AND gradient storage with its base (the tensor that
 * owns the storage): its gradient is the base's gradient at the same offset and strides, so
 * views need no tape node. */
#include "tensor/tensor_internal.h"

/* A view header over base storage; shape/stride as given. */
static sm_tensor *make_view(sm_ctx *ctx, sm_tensor *x, int ndim, const int64_t *shape,
                            const int64_t *stride, int64_t offset)
{
    sm_tensor *v = sm_ctx_wrap(ctx, x->data + offset, ndim, shape);
    if (!v) return NULL;
    for (int i = 0; i < ndim; i++) v->stride[i] = stride[i];
    v->base = x->base ? x->base : x;
    v->offset = x->offset + offset;
    v->flags |= x->flags & SM_TENSOR_REQUIRES_GRAD;
    return v;
}

/* out = contiguous copy of the (strided) x. */
static sm_tensor *copy_op(sm_ctx *ctx, sm_tensor *x)
{
    sm_tensor *out = sm__empty(ctx, x->ndim, x->shape);
    if (!out) return NULL;
    sm__strided_copy(ctx, x, out->data);
    return sm__track(ctx, SM__OP_COPY, out, 1, &x, NULL, 0);
}

/* dx (x's strides) += dout */
void sm__copy_backward(sm_ctx *ctx, sm__node *n)
{
    sm_tensor *x = n->in[0];
    float *gx = sm__grad(ctx, x);
    if (gx) sm__strided_acc(ctx, x, gx, n->out->grad);
}

sm_tensor *sm_contiguous(sm_ctx *ctx, sm_tensor *x)
{
    if (!SM__OK(ctx, x)) return NULL;
    return sm_tensor_is_contiguous(x) ? x : copy_op(ctx, x);
}

sm_tensor *sm__contig(sm_ctx *ctx, sm_tensor *x) { return sm_contiguous(ctx, x); }

/* x (any shape, n elements) -> shape (n elements); one dim may be -1. */
sm_tensor *sm_reshape(sm_ctx *ctx, sm_tensor *x, int ndim, const int64_t *shape)
{
    if (!SM__OK(ctx, x)) return NULL;
    if (ndim < 0 || ndim > SM_MAX_DIMS)
        return sm__shape_error(ctx, "reshape", "the new shape must have 0 to 6 dims", "x", x,
                               NULL);
    int64_t sh[SM_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        sh[i] = shape[i];
        if (shape[i] == -1 && infer < 0) {
            infer = i;
        } else if (shape[i] < 0) {
            return sm__shape_error(ctx, "reshape", "invalid dimension in the new shape", "x", x,
                                   NULL);
        } else {
            known *= shape[i];
        }
    }
    int64_t n = sm_tensor_numel(x);
    if (infer >= 0) {
        if (known == 0 || n % known)
            return sm__shape_error(ctx, "reshape", "cannot infer the -1 dimension", "x", x,
                                   NULL);
        sh[infer] = n / known;
    } else if (known != n) {
        char msg[96];
        snprintf(msg, sizeof msg, "element count %lld != %lld of the new shape", (long long)n,
                 (long long)known);
        return sm__shape_error(ctx, "reshape", msg, "x", x, NULL);
    }
    sm_tensor *c = sm_contiguous(ctx, x);
    if (!c) return NULL;
    sm_tensor tmp;
    if (!sm__set_shape(&tmp, ndim, sh))
        return sm__shape_error(ctx, "reshape", "invalid new shape", "x", x, NULL);
    return make_view(ctx, c, ndim, sh, tmp.stride, 0);
}

sm_tensor *sm_view(sm_ctx *ctx, sm_tensor *x, int ndim, const int64_t *shape,
                   const int64_t *stride, int64_t offset)
{
    if (!SM__OK(ctx, x)) return NULL;
    if (ndim < 0 || ndim > SM_MAX_DIMS)
        return sm__shape_error(ctx, "view", "a view has 0 to 6 dims", "x", x, NULL);
    const sm_tensor *base = x->base ? x->base : x;
    int64_t start = x->offset + offset, span = 0, numel = 1;
    int order[SM_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || stride[i] < 0)
            return sm__shape_error(ctx, "view", "negative size or stride", "x", x, NULL);
        numel *= shape[i];
        order[i] = i;
    }
    if (numel > 0) {
        /* non-overlap: sorted by stride, each stride must step over the span of the smaller
         * ones (a sufficient condition that covers permutes and slices) */
        for (int i = 1; i < ndim; i++)
            for (int j = i; j > 0 && stride[order[j]] < stride[order[j - 1]]; j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        for (int i = 0; i < ndim; i++) {
            int d = order[i];
            if (shape[d] == 1) continue;
            if (stride[d] <= span)
                return sm__shape_error(ctx, "view", "strides address some element twice", "x",
                                       x, NULL);
            span += (shape[d] - 1) * stride[d];
        }
        if (start < 0 || start + span >= sm_tensor_numel(base))
            return sm__shape_error(ctx, "view", "the view reaches outside the storage", "x", x,
                                   "storage", base, NULL);
    }
    return make_view(ctx, x, ndim, shape, stride, offset);
}

sm_tensor *sm_permute(sm_ctx *ctx, sm_tensor *x, const int *perm)
{
    if (!SM__OK(ctx, x)) return NULL;
    int64_t sh[SM_MAX_DIMS], st[SM_MAX_DIMS];
    bool seen[SM_MAX_DIMS] = {false};
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]])
            return sm__shape_error(ctx, "permute", "perm is not a permutation of the dims", "x",
                                   x, NULL);
        seen[perm[i]] = true;
        sh[i] = x->shape[perm[i]];
        st[i] = x->stride[perm[i]];
    }
    sm_tensor *v = make_view(ctx, x, x->ndim, sh, st, 0);
    return v ? sm_contiguous(ctx, v) : NULL;
}
