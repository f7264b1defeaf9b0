/* core/tensor/tensor.c - tensor headers: element counts, layout queries, heap tensors, gradients. */
#include "tensor/tensor_internal.h"

int64_t sm_tensor_numel(const sm_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

bool sm_tensor_is_contiguous(const sm_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

bool sm_tensor_same_shape(const sm_tensor *a, const sm_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

size_t sm_tensor_shape_str(const sm_tensor *t, char *buf, size_t n)
{
    size_t len = 0;
    char tmp[32];
#define SM__PUT(s)                                                                             \
    do {                                                                                       \
        size_t l_ = strlen(s);                                                                 \
        if (len < n) sm__strlcpy(buf + len, s, n - len);                                       \
        len += l_;                                                                             \
    } while (0)
    if (n) buf[0] = '\0';
    SM__PUT("(");
    for (int i = 0; t && i < t->ndim; i++) {
        snprintf(tmp, sizeof tmp, i ? ", %lld" : "%lld", (long long)t->shape[i]);
        SM__PUT(tmp);
    }
    SM__PUT(")");
#undef SM__PUT
    return len;
}

/* Fills shape and contiguous strides; false on a bad shape or element-count overflow. */
bool sm__set_shape(sm_tensor *t, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > SM_MAX_DIMS) return false;
    t->ndim = ndim;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] < 0) return false;
        if (shape[i] > 0 && s > INT64_MAX / 4 / shape[i]) return false;
        t->shape[i] = shape[i];
        t->stride[i] = s;
        s *= shape[i];
    }
    for (int i = ndim; i < SM_MAX_DIMS; i++) t->shape[i] = 1, t->stride[i] = 0;
    return true;
}

sm_tensor *sm_tensor_new(int ndim, const int64_t *shape)
{
    sm_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (!sm__set_shape(t, ndim, shape)) {
        free(t);
        return NULL;
    }
    size_t bytes = (size_t)sm_tensor_numel(t) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    t->data = aligned_alloc(64, bytes ? bytes : 64);
    if (!t->data) {
        free(t);
        return NULL;
    }
    memset(t->data, 0, bytes);
    return t;
}

void sm_tensor_free(sm_tensor *t)
{
    if (!t) return;
    free(t->data);
    free(t);
}

/* Allocates the gradient of a storage-owning tensor (zeroed or not) in the gradient arena. */
static float *grad_alloc(sm_ctx *ctx, sm_tensor *t, bool zero)
{
    /* a storage-owning tensor: its data are contiguous (params already have their block) */
    size_t n = (size_t)sm_tensor_numel(t);
    float *g = sm__arena_get(&ctx->grads, sm__block_bytes((int64_t)n));
    sm__foreign *fl = NULL;
    if (g && !(t->flags & SM__TENSOR_ARENA)) /* a heap tensor: forget its gradient at reset */
        fl = sm__arena_alloc(&ctx->grads, (sizeof *fl + 63) & ~(size_t)63);
    if (!g || (!fl && !(t->flags & SM__TENSOR_ARENA))) {
        sm_ctx_fail(ctx, SM_ENOMEM, "arena: out of memory for a gradient of %zu floats", n);
        return NULL;
    }
    sm__note_peak(ctx);
    if (zero) memset(g, 0, n * sizeof(float));
    if (fl) {
        fl->t = t;
        fl->next = ctx->foreign;
        ctx->foreign = fl;
    } else {
        t->flags |= SM__TENSOR_GRAD_OWNED;
    }
    t->grad = g;
    return g;
}

float *sm_tensor_grad(sm_ctx *ctx, sm_tensor *t)
{
    if (!t || !(t->flags & SM_TENSOR_REQUIRES_GRAD)) return NULL;
    if (t->grad) return t->grad;
    if (t->base) {
        float *g = sm_tensor_grad(ctx, t->base);
        if (!g) return NULL;
        t->grad = g + t->offset;
        return t->grad;
    }
    return grad_alloc(ctx, t, true);
}

float *sm__grad_w(sm_ctx *ctx, sm_tensor *t, bool *fresh)
{
    *fresh = false;
    if (!t || !(t->flags & SM_TENSOR_REQUIRES_GRAD)) return NULL;
    if (t->grad || t->base) return sm_tensor_grad(ctx, t);
    *fresh = true;
    return grad_alloc(ctx, t, false);
}

float *sm__grad_take(sm_ctx *ctx, sm_tensor *x, sm_tensor *out)
{
    const uint32_t need = SM_TENSOR_REQUIRES_GRAD | SM__TENSOR_ARENA;
    if (ctx->keep_grads || !x || x == out || (x->flags & need) != need || x->grad || x->base ||
        !(out->flags & SM__TENSOR_GRAD_OWNED) || sm_tensor_numel(x) != sm_tensor_numel(out))
        return NULL;
    x->grad = out->grad;
    x->flags |= SM__TENSOR_GRAD_OWNED;
    out->grad = NULL;
    out->flags &= ~SM__TENSOR_GRAD_OWNED;
    return x->grad;
}

void sm__grad_release(sm_ctx *ctx, sm_tensor *t)
{
    if (t->flags & SM__TENSOR_GRAD_OWNED)
        sm__arena_put(&ctx->grads, t->grad, sm__block_bytes(sm_tensor_numel(t)));
    t->flags &= ~SM__TENSOR_GRAD_OWNED;
    t->grad = NULL;
}
